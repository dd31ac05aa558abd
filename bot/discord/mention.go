package discord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/internal/redact"
)

// MentionIntents are the gateway intents Config.Mentions requests: guild
// messages, and Message Content, which is privileged (it must be switched
// on in the Developer Portal, or the gateway closes with 4014).
const MentionIntents = discordgo.IntentsGuildMessages | discordgo.IntentMessageContent

// botUser remembers the bot's own user id from READY, so a mention of it
// can be told from a mention of anyone else. The session runs each event's
// handlers on a goroutine of their own, so a message can be handled
// before READY's handler has run: wait covers that.
type botUser struct {
	mu    sync.Mutex
	id    string
	known chan struct{} // closed once id is set
}

func (b *botUser) set(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.known == nil {
		b.known = make(chan struct{})
	}
	if b.id == "" {
		close(b.known)
	}
	b.id = id
}

func (b *botUser) get() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.id
}

// wait returns the bot's id once READY has given it, or "" if it hasn't
// within d or ctx ends first.
func (b *botUser) wait(ctx context.Context, d time.Duration) string {
	b.mu.Lock()
	if b.known == nil {
		b.known = make(chan struct{})
	}
	known := b.known
	b.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-known:
	case <-t.C:
	case <-ctx.Done():
	}
	return b.get()
}

// mentionQuestion returns the question of m, a message that mentions the
// bot (botID) in a guild channel, with the mentions of the bot removed,
// and whether m is one classbot answers: not from a bot (itself included),
// in a guild, mentioning botID, with content. Content is empty when the
// Message Content intent is not granted: then nothing is answered.
func mentionQuestion(m *discordgo.Message, botID string) (string, bool) {
	if m == nil || m.Author == nil || m.Author.Bot || m.GuildID == "" || botID == "" {
		return "", false
	}
	if m.Type != discordgo.MessageTypeDefault && m.Type != discordgo.MessageTypeReply {
		return "", false
	}
	mentioned := false
	for _, u := range m.Mentions {
		mentioned = mentioned || (u != nil && u.ID == botID)
	}
	if !mentioned {
		return "", false
	}
	q := strings.NewReplacer("<@"+botID+">", " ", "<@!"+botID+">", " ").Replace(m.Content)
	q = strings.TrimSpace(q)
	return q, q != ""
}

// handleMessage answers a MESSAGE_CREATE that mentions the bot as /ask:
// the message id is the interaction id (so a redelivered message is a
// duplicate in the ledger), the question is the text without the
// mention, and the answer is a reply to the message.
func (a *Adapter) handleMessage(ctx context.Context, m *discordgo.Message) {
	q, ok := mentionQuestion(m, a.self.wait(ctx, 5*time.Second))
	if !ok || !isSnowflake(m.ID) || !isSnowflake(m.ChannelID) || !isSnowflake(m.Author.ID) {
		return
	}
	c := bot.Command{
		Platform:      bot.PlatformDiscord,
		InteractionID: m.ID,
		Workspace:     m.GuildID,
		Channel:       m.ChannelID,
		User:          m.Author.ID,
		Name:          "ask",
		Options:       map[string]string{"question": q},
		ReceivedAt:    time.Now(),
	}
	a.cfg.Dispatcher.Go(ctx, c, &mentionResponder{a: a, message: m.ID, channel: m.ChannelID, guild: m.GuildID})
}

// mentionResponder answers a mention with a reply to its message, over
// REST with the bot token. There is no interaction to acknowledge: Ack
// sends nothing (the answer comes as the reply).
type mentionResponder struct {
	a       *Adapter
	message string // the message replied to
	channel string
	guild   string
	posts   bot.PostLog // queue mode: where the reply is recorded; nil: nowhere
	reply   string      // the reply's id once posted (or found in posts)
	preview preview
}

var (
	_ bot.Responder  = (*mentionResponder)(nil)
	_ bot.Addressed  = (*mentionResponder)(nil)
	_ bot.PostLogger = (*mentionResponder)(nil)
)

// postKindMention is the bot.PostLog kind of a mention's reply.
const postKindMention = "discord_mention"

func (r *mentionResponder) Ack(context.Context, bot.Reply) error { return nil }

func (r *mentionResponder) Respond(ctx context.Context, rep bot.Reply) error {
	return r.FollowUp(ctx, rep)
}

// UsePostLog makes the first Stream or FollowUp record the reply in l, and
// edit the reply l holds instead of posting one: a retried queued job does
// not answer twice.
func (r *mentionResponder) UsePostLog(l bot.PostLog) { r.posts = l }

// Address says where the reply goes: the message, its channel and guild.
// It holds no secret (the bot token comes from the worker's Config).
func (r *mentionResponder) Address() (json.RawMessage, error) {
	return json.Marshal(address{Message: r.message, Channel: r.channel, Guild: r.guild})
}

// replyID returns the id of the reply already posted (by this attempt or,
// per the PostLog, an earlier one), or "" when there is none.
func (r *mentionResponder) replyID() string {
	if r.reply == "" && r.posts != nil {
		r.reply = r.posts.Posted(postKindMention)
	}
	return r.reply
}

// Stream shows the answer so far (see preview.next): the first time by
// posting the reply, recorded in the PostLog before any edit of it, then
// by editing it.
func (r *mentionResponder) Stream(ctx context.Context, text string) {
	id := r.replyID()
	bucket := discordgo.EndpointChannelMessages(r.channel)
	if id != "" {
		bucket = discordgo.EndpointChannelMessage(r.channel, "") // discordgo's bucket for edits
	}
	content, ok := r.preview.next(r.a, bucket, text)
	if !ok {
		return
	}
	var err error
	if id == "" {
		err = r.post(ctx, content, nil, nil)
	} else {
		err = r.editOrRepost(ctx, id, content, nil, nil)
	}
	r.preview.sent(content, err)
	if err != nil {
		r.a.log.LogAttrs(ctx, slog.LevelInfo, "discord: streamed reply failed; the answer comes whole",
			slog.String("message", r.message), slog.Any("error", err))
	}
}

// FollowUp answers with one reply to the message, laid out by OneMessage
// (content, the rest in embeds), with no mention parsed and the author not
// pinged by the reply, and an /ask answer's feedback buttons: it edits the
// reply Stream or an earlier attempt posted, or else posts it; when that
// reply was deleted (Unknown Message), it posts a new one. Ephemeral
// cannot be honoured in a channel message; only /ask answers and its
// refusals come here.
func (r *mentionResponder) FollowUp(ctx context.Context, rep bot.Reply) error {
	text := rep.Text
	if rep.File != nil && rep.File.Inline != "" {
		text += "\n\n" + rep.File.Inline
	}
	content, parts := OneMessage(text)
	buttons := feedbackButtons(rep)
	if id := r.replyID(); id != "" {
		if buttons == nil {
			buttons = []discordgo.MessageComponent{} // a retry's refusal loses an earlier attempt's buttons
		}
		return r.editOrRepost(ctx, id, content, embedsOf(parts), buttons)
	}
	return r.post(ctx, content, embedsOf(parts), buttons)
}

// editOrRepost edits the reply id (see edit); when Discord answers that
// it no longer exists (deleted by a moderator or the student: Unknown
// Message), it posts a new reply instead, which the PostLog then records
// in its place, so a retry does not fail on it forever.
func (r *mentionResponder) editOrRepost(ctx context.Context, id, content string, embeds []*discordgo.MessageEmbed, buttons []discordgo.MessageComponent) error {
	err := r.edit(ctx, id, content, embeds, buttons)
	if !unknownMessage(err) {
		return err
	}
	r.a.log.LogAttrs(ctx, slog.LevelInfo, "discord: the reply to a mention was deleted; posting a new one",
		slog.String("message", r.message), slog.String("reply", id))
	r.reply = ""
	if len(buttons) == 0 {
		buttons = nil
	}
	return r.post(ctx, content, embeds, buttons)
}

// unknownMessage reports whether err is Discord's answer that the message
// does not exist: 404 with code 10008, Unknown Message.
func unknownMessage(err error) bool {
	var re *discordgo.RESTError
	return errors.As(err, &re) && re.Message != nil && re.Message.Code == discordgo.ErrCodeUnknownMessage
}

// post sends the reply, with buttons when not nil, and records its id in
// the PostLog, if any.
func (r *mentionResponder) post(ctx context.Context, content string, embeds []*discordgo.MessageEmbed, buttons []discordgo.MessageComponent) error {
	no := false
	sent, err := r.a.session.ChannelMessageSendComplex(r.channel, &discordgo.MessageSend{
		Content:         content,
		Embeds:          embeds,
		Components:      buttons,
		Reference:       &discordgo.MessageReference{MessageID: r.message, ChannelID: r.channel, GuildID: r.guild, FailIfNotExists: &no},
		AllowedMentions: noMentions(),
	}, discordgo.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("discord: reply to message %s: %w", r.message, redact.Secret(err, r.a.cfg.BotToken, "[token]"))
	}
	r.reply = sent.ID
	if r.posts != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bot.RecordPostTimeout)
		defer cancel()
		if err := r.posts.RecordPost(rctx, postKindMention, sent.ID); err != nil {
			r.a.log.LogAttrs(ctx, slog.LevelWarn, "discord: recording a mention's reply failed",
				slog.String("message", r.message), slog.Any("err", err))
		}
	}
	return nil
}

// edit replaces the reply id's content and embeds (nil: none), with no
// mention parsed, and its buttons when buttons is not nil (empty: none).
func (r *mentionResponder) edit(ctx context.Context, id, content string, embeds []*discordgo.MessageEmbed, buttons []discordgo.MessageComponent) error {
	if embeds == nil {
		embeds = []*discordgo.MessageEmbed{}
	}
	m := &discordgo.MessageEdit{ID: id, Channel: r.channel, Content: &content, Embeds: &embeds, AllowedMentions: noMentions()}
	if buttons != nil {
		m.Components = &buttons
	}
	_, err := r.a.session.ChannelMessageEditComplex(m, discordgo.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("discord: edit the reply to message %s: %w", r.message, redact.Secret(err, r.a.cfg.BotToken, "[token]"))
	}
	return nil
}

// reopenMention is Reopen for an address a mentionResponder made.
func (a *Adapter) reopenMention(c bot.Command, ad address) (bot.Responder, error) {
	if ad.Channel == "" {
		ad.Channel = c.Channel
	}
	if !isSnowflake(ad.Message) || !isSnowflake(ad.Channel) || (ad.Guild != "" && !isSnowflake(ad.Guild)) {
		return nil, fmt.Errorf("discord: reopen %s: the address's message, channel or guild id is malformed", c.InteractionID)
	}
	if a.cfg.BotToken == "" {
		return nil, fmt.Errorf("discord: reopen %s: replying to a mention needs the bot token (DISCORD_BOT_TOKEN)", c.InteractionID)
	}
	return &mentionResponder{a: a, message: ad.Message, channel: ad.Channel, guild: ad.Guild}, nil
}

// addMentionHandlers makes the session answer mentions (Config.Mentions)
// and returns what removes the handlers.
func (a *Adapter) addMentionHandlers(ctx context.Context) func() {
	removeReady := a.session.AddHandler(func(_ *discordgo.Session, r *discordgo.Ready) {
		if r.User != nil {
			a.self.set(r.User.ID)
		}
	})
	if !a.cfg.Mentions {
		return removeReady
	}
	removeMsg := a.session.AddHandler(func(_ *discordgo.Session, m *discordgo.MessageCreate) {
		if m.Message == nil {
			return
		}
		a.handleMessage(ctx, m.Message)
	})
	a.log.LogAttrs(ctx, slog.LevelInfo, "discord: answering mentions (Message Content intent requested)")
	return func() { removeReady(); removeMsg() }
}

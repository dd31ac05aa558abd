package discord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/bwmarrin/discordgo"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/internal/chunk"
)

const (
	// TokenLife is how long after the interaction its token works for
	// edits and follow-ups.
	TokenLife = 15 * time.Minute
	// ExpiryMargin is how long before the end of TokenLife a reopened
	// Responder already treats the token as dead, so that no edit is
	// started into a window that closes while it is on the wire.
	ExpiryMargin = 30 * time.Second

	// Discord's limits on the embeds of one message, in characters
	// (counted here as UTF-16 code units, like MaxMessageLen).
	MaxEmbeds       = 10   // embeds in one message
	MaxEmbedLen     = 4096 // an embed's description
	MaxEmbedsLenSum = 6000 // all the embeds' text together
)

// OneMessage lays text out as one Discord message, the way a reopened
// Responder sends an answer: content holds the first MaxMessageLen
// characters (cut at a line break or space when it can, like Split), and
// the rest goes into embed descriptions of at most MaxEmbedLen characters,
// at most MaxEmbeds of them, MaxEmbedsLenSum characters in all. Text past
// that is cut off, the last embed ending with "…". embeds is empty (not
// nil) when content holds everything.
func OneMessage(text string) (content string, embeds []string) {
	text = strings.TrimSpace(text)
	// Only the first part is used: two parts cut it exactly as no limit
	// would, without cutting up the rest of a long text. chunk.Split's
	// first part is a prefix of the trimmed text.
	content = chunk.Split(text, MaxMessageLen, 2, utf16.RuneLen)[0]
	rest := strings.TrimSpace(text[len(content):])
	if rest == "" {
		return content, []string{}
	}
	rest = chunk.Split(rest, MaxEmbedsLenSum, 1, utf16.RuneLen)[0]
	return content, chunk.Split(rest, MaxEmbedLen, MaxEmbeds, utf16.RuneLen)
}

func embedsOf(parts []string) []*discordgo.MessageEmbed {
	out := make([]*discordgo.MessageEmbed, 0, len(parts))
	for _, p := range parts {
		out = append(out, &discordgo.MessageEmbed{Description: p})
	}
	return out
}

// address is what Address stores of an interaction: where its answer
// goes. The names are short because it is kept in every queued job's row.
// Token is a secret: it is never logged or put in an error.
type address struct {
	App     string `json:"app,omitempty"`   // application id
	Token   string `json:"tok,omitempty"`   // interaction token
	ID      string `json:"id,omitempty"`    // interaction id, for logs
	Channel string `json:"ch,omitempty"`    // channel id
	User    string `json:"user,omitempty"`  // user id
	Guild   string `json:"guild,omitempty"` // guild id; empty in a DM
	Message string `json:"msg,omitempty"`   // a mention's message id: the answer is a reply to it
}

// Address says where the interaction's answer goes, for bot.Addressed:
// application id, interaction token and id, channel, user and guild, as a
// small JSON object. It holds the token, a secret: keep it where secrets
// are kept (the job's row) and never log it.
func (w webhook) Address() (json.RawMessage, error) {
	return json.Marshal(address{App: w.appID, Token: w.token, ID: w.interaction, Channel: w.channel, User: w.user, Guild: w.guild})
}

var (
	_ bot.Addressed = (*httpResponder)(nil)
	_ bot.Addressed = (*gatewayResponder)(nil)
	_ bot.Reopener  = (*Adapter)(nil)
)

// Reopen rebuilds the Responder of command c from the address its
// Responder gave (see bot.Reopener), in a queue worker of any process
// configured like this one. Fields the address lacks are taken from c and
// Config.AppID. It does no I/O; it fails when the address is not one
// Address made (ids that are not snowflakes, a malformed token: they
// would become parts of REST paths). Only FollowUp may be called on what
// it returns; see its doc. It is safe for concurrent use.
func (a *Adapter) Reopen(_ context.Context, c bot.Command, raw json.RawMessage) (bot.Responder, error) {
	if c.Platform != "" && c.Platform != bot.PlatformDiscord {
		return nil, fmt.Errorf("discord: cannot reopen a %q command", c.Platform)
	}
	var ad address
	if err := json.Unmarshal(raw, &ad); err != nil {
		return nil, fmt.Errorf("discord: reopen %s: address not understood: %w", c.InteractionID, err)
	}
	if ad.Message != "" {
		return a.reopenMention(c, ad)
	}
	if ad.App == "" {
		ad.App = a.cfg.AppID
	}
	if ad.ID == "" {
		ad.ID = c.InteractionID
	}
	if ad.Channel == "" {
		ad.Channel = c.Channel
	}
	if ad.User == "" {
		ad.User = c.User
	}
	if !isSnowflake(ad.App) || !validToken(ad.Token) || (ad.User != "" && !isSnowflake(ad.User)) {
		return nil, fmt.Errorf("discord: reopen %s: the address's application id, token or user id is malformed", c.InteractionID)
	}
	return &reopened{
		webhook:  webhook{a: a, appID: ad.App, token: ad.Token, interaction: ad.ID, channel: ad.Channel, user: ad.User, guild: ad.Guild},
		received: c.ReceivedAt,
		command:  c.Name,
	}, nil
}

// errReopened is what a reopened Responder's Ack and Respond return: the
// first response was given by the process that received the interaction.
var errReopened = errors.New("discord: a reopened interaction was answered already; only FollowUp may be called")

// reopened is an interaction's Responder rebuilt in a queue worker.
type reopened struct {
	webhook
	received time.Time   // the command's ReceivedAt; zero: unknown
	command  string      // the command's name, for the DM fallback
	posts    bot.PostLog // where the direct message fallback is recorded; nil: nowhere
	preview  preview
}

// postKindDM is the bot.PostLog kind of the direct message fallback.
const postKindDM = "discord_dm"

// UsePostLog makes FollowUp record its direct message fallback in l and
// skip it when l holds one already (bot.PostLogger): a second one would
// be a second answer.
func (r *reopened) UsePostLog(l bot.PostLog) { r.posts = l }

var _ bot.PostLogger = (*reopened)(nil)

func (r *reopened) Ack(context.Context, bot.Reply) error     { return errReopened }
func (r *reopened) Respond(context.Context, bot.Reply) error { return errReopened }

// FollowUp delivers the whole answer with one edit of the original
// (deferred) response, laid out by OneMessage: content, the rest in
// embeds, allowed_mentions empty. Running it again (a retried or rescued
// job) edits the same message, so one answer stays visible, the last. It
// never posts follow-up messages.
//
// If the token can no longer be used (TokenLife minus ExpiryMargin has
// passed since the command's ReceivedAt, checked with Config.NowFunc
// before anything is sent; or Discord answers the edit with 401 or 404,
// such as "Unknown Webhook"), the answer goes to the student in a direct
// message when a bot token is configured (registration answers hold an
// email: they must stay private), and otherwise FollowUp returns an error
// wrapping bot.ErrExpired. It also wraps bot.ErrExpired when Discord
// refuses the direct message (the student accepts none from the server):
// nothing else can reach them. Other failures (a timeout, a 5xx) return
// an error that does not wrap it, so the job may be retried. Errors never
// show the token. With a PostLog (UsePostLog), a direct message recorded
// by an earlier attempt means the student has the answer: FollowUp sends
// nothing and returns nil.
func (r *reopened) FollowUp(ctx context.Context, rep bot.Reply) error {
	if r.posts != nil && r.posts.Posted(postKindDM) != "" {
		return nil
	}
	if !r.received.IsZero() && !r.a.cfg.NowFunc().Before(r.received.Add(TokenLife-ExpiryMargin)) {
		return r.expired(ctx, rep, fmt.Errorf("its token expired %s after the interaction", TokenLife))
	}
	content, parts := OneMessage(rep.Text)
	embeds := embedsOf(parts)
	err := r.edit(ctx, content, &embeds, feedbackButtons(rep), filesOf(rep)...)
	switch {
	case err == nil:
		return nil
	case deadToken(err):
		return r.expired(ctx, rep, err)
	default:
		return fmt.Errorf("discord: follow-up of %s: %w", r.interaction, err)
	}
}

// deadToken reports whether err is Discord's answer that the interaction
// token no longer works: 401, 404, Unknown Webhook or Invalid Webhook Token.
func deadToken(err error) bool {
	var re *discordgo.RESTError
	if !errors.As(err, &re) {
		return false
	}
	if re.Response != nil && (re.Response.StatusCode == http.StatusUnauthorized || re.Response.StatusCode == http.StatusNotFound) {
		return true
	}
	return re.Message != nil && (re.Message.Code == discordgo.ErrCodeUnknownWebhook || re.Message.Code == discordgo.ErrCodeInvalidWebhookTokenProvided)
}

// refused reports whether err is Discord refusing a request for good (a
// 4xx other than 429): trying again would not help.
func refused(err error) bool {
	var re *discordgo.RESTError
	return errors.As(err, &re) && re.Response != nil &&
		re.Response.StatusCode >= 400 && re.Response.StatusCode < 500 && re.Response.StatusCode != http.StatusTooManyRequests
}

// expired sends the answer to the student in a direct message with the
// bot token when it can, since the interaction token cannot (why), and
// otherwise returns an error wrapping bot.ErrExpired.
func (r *reopened) expired(ctx context.Context, rep bot.Reply, why error) error {
	if r.a.cfg.BotToken == "" || !isSnowflake(r.user) {
		return fmt.Errorf("discord: follow-up of %s: %w (%w), and no bot token is configured", r.interaction, bot.ErrExpired, why)
	}
	r.a.log.LogAttrs(ctx, slog.LevelWarn, "discord: interaction token no longer usable; sending the answer in a direct message",
		slog.String("interaction", r.interaction), slog.Any("reason", why))
	text := rep.Text
	if r.command != "" {
		text = "Your answer to /" + r.command + ":\n" + text
	}
	content, parts := OneMessage(text)
	err := r.dm(ctx, content, embedsOf(parts), feedbackButtons(rep), filesOf(rep))
	switch {
	case err == nil:
		return nil
	case refused(err):
		return fmt.Errorf("discord: follow-up of %s: %w (%w); the direct message was refused: %w", r.interaction, bot.ErrExpired, why, err)
	default:
		return fmt.Errorf("discord: follow-up of %s: token unusable (%w); direct message: %w", r.interaction, why, err)
	}
}

// dm opens (or finds) the direct message channel with the student and
// sends the answer there, allowed_mentions empty, with an /ask answer's
// feedback buttons (buttons; nil: none): a click in a direct message comes
// back as an interaction like any other.
func (r *reopened) dm(ctx context.Context, content string, embeds []*discordgo.MessageEmbed, buttons []discordgo.MessageComponent, files []*bot.File) error {
	ch, err := r.a.session.UserChannelCreate(r.user, discordgo.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("open direct message channel: %w", err)
	}
	if ch == nil || !isSnowflake(ch.ID) {
		return errors.New("open direct message channel: Discord answered without a channel id")
	}
	m, err := r.a.session.ChannelMessageSendComplex(ch.ID, &discordgo.MessageSend{
		Content: content, Embeds: embeds, Components: buttons, AllowedMentions: noMentions(), Files: discordFiles(files),
	}, discordgo.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("send direct message: %w", err)
	}
	r.recordDM(ctx, m)
	return nil
}

// recordDM records the direct message's id in the PostLog, with its own
// time budget. A failure is logged: the answer was delivered, and the
// worst a later attempt can do is deliver it again.
func (r *reopened) recordDM(ctx context.Context, m *discordgo.Message) {
	if r.posts == nil {
		return
	}
	id := "sent" // Discord gave no message: the post still happened
	if m != nil && m.ID != "" {
		id = m.ChannelID + "/" + m.ID
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bot.RecordPostTimeout)
	defer cancel()
	if err := r.posts.RecordPost(rctx, postKindDM, id); err != nil {
		r.a.log.LogAttrs(ctx, slog.LevelWarn, "discord: recording the direct message fallback failed",
			slog.String("interaction", r.interaction), slog.Any("err", err))
	}
}

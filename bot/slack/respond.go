package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/internal/chunk"
	"github.com/classbot/classbot/internal/redact"
)

const (
	// MaxMessageLen is the most characters classbot puts in one Slack
	// message, counted after escaping (Slack's own limit on a message's
	// text is far higher, but it truncates long ones and a block's text
	// stops at 3,000).
	MaxMessageLen = 3000
	// MaxMessages is the most messages one answer is cut into: a
	// response_url takes up to five posts. Text past them is cut off, ending
	// with "…".
	MaxMessages = 5
)

// responseURLTimeout bounds one post to a response_url, leaving the rest of
// the Dispatcher's reply time for the chat.postEphemeral fallback.
const responseURLTimeout = 5 * time.Second

// escaper turns Slack's three control characters into entities.
var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// Escape makes s safe to show in a Slack message: &, < and > become
// entities, so <!channel>, <!here>, <@U123> or <https://x|y> in it are shown
// as typed and cannot ping anyone or become a link.
func Escape(s string) string { return escaper.Replace(s) }

// escapedLen is what a rune counts towards MaxMessageLen: its length
// once escaped.
func escapedLen(r rune) int {
	switch r {
	case '&':
		return len("&amp;")
	case '<', '>':
		return len("&lt;")
	}
	return 1
}

// Messages escapes text and cuts it into Slack messages of at most
// MaxMessageLen characters each, counted after escaping (chunk.Split: it
// prefers line breaks, then spaces, and cuts inside a word only when a word
// alone is too long; never inside a UTF-8 sequence or an entity). It
// returns at most MaxMessages messages: if the text needs more, the last one
// is cut short and ends with "…". It never returns an empty list: empty
// text gives one empty message.
func Messages(text string) []string {
	parts := chunk.Split(text, MaxMessageLen, MaxMessages, escapedLen)
	for i, p := range parts {
		parts[i] = Escape(p)
	}
	return parts
}

// Response types of a slash command's replies.
const (
	ephemeral = "ephemeral"  // only the student sees it
	inChannel = "in_channel" // the whole channel sees it
)

func responseType(r bot.Reply) string {
	if r.Ephemeral {
		return ephemeral
	}
	return inChannel
}

// message is a slash command's immediate response: the HTTP body, or the
// payload of a Socket Mode acknowledgement.
type message struct {
	ResponseType string          `json:"response_type"`
	Text         string          `json:"text"`
	Blocks       *slackgo.Blocks `json:"blocks,omitempty"`
}

// delivery sends what comes after the first response: posts to the
// command's response_url and, when those fail, chat.postEphemeral with the
// bot token. It is shared by both transports.
type delivery struct {
	a           *Adapter
	id          string // trigger id, for logs
	responseURL string // a secret: never logged
	channel     string
	user        string
	team        string // team id (or enterprise id), for the Address
}

func (a *Adapter) delivery(sc slackgo.SlashCommand) delivery {
	team := sc.TeamID
	if team == "" {
		team = sc.EnterpriseID
	}
	return delivery{a: a, id: sc.TriggerID, responseURL: sc.ResponseURL, channel: sc.ChannelID, user: sc.UserID, team: team}
}

// FollowUp posts the answer to the response_url, cut into Messages; if a
// post fails and a bot token is configured, it and the rest go through
// chat.postEphemeral instead.
//
// A reply's file goes to the user's direct message first (see withFile).
func (d delivery) FollowUp(ctx context.Context, r bot.Reply) error {
	return d.send(ctx, r, Messages(d.withFile(ctx, r, nil)))
}

// send delivers parts (already escaped) in order.
func (d delivery) send(ctx context.Context, r bot.Reply, parts []string) error {
	for i, p := range parts {
		err := d.post(ctx, r, p, i == len(parts)-1)
		if err == nil {
			continue
		}
		err = fmt.Errorf("response_url message %d of %d: %w", i+1, len(parts), err)
		if !d.canFallback() {
			return err
		}
		d.a.log.LogAttrs(ctx, slog.LevelWarn, "slack: response_url failed; sending through chat.postEphemeral",
			slog.String("interaction", d.id), slog.Any("err", err))
		for j, q := range parts[i:] {
			var blocks *slackgo.Blocks
			if i+j == len(parts)-1 {
				blocks = feedbackBlocks(r, q) // the last message carries the buttons, as on the response_url
			}
			if ferr := d.postEphemeral(ctx, q, blocks); ferr != nil {
				return errors.Join(err, fmt.Errorf("chat.postEphemeral message %d of %d: %w", i+j+1, len(parts), ferr))
			}
		}
		return nil
	}
	return nil
}

// post sends one message to the response_url; the last of an answer
// carries its feedback buttons. Its error never shows the URL
// (platformhttp.Redact), however net/http renders it.
func (d delivery) post(ctx context.Context, r bot.Reply, text string, last bool) error {
	if d.responseURL == "" {
		return errors.New("the command has no response_url")
	}
	ctx, cancel := context.WithTimeout(ctx, responseURLTimeout)
	defer cancel()
	msg := &slackgo.WebhookMessage{Text: text, ResponseType: responseType(r)}
	if last {
		msg.Blocks = feedbackBlocks(r, text)
	}
	err := slackgo.PostWebhookCustomHTTPContext(ctx, d.responseURL, d.a.hooks, msg)
	return redact.Secret(err, d.responseURL, "[response_url]")
}

func (d delivery) canFallback() bool {
	return d.a.cfg.BotToken != "" && d.channel != "" && d.user != ""
}

// postEphemeral sends one message to the student with chat.postEphemeral,
// with blocks when they are not nil. It is always ephemeral: the bot may
// not be a member of the channel, and an ephemeral message needs no
// membership.
func (d delivery) postEphemeral(ctx context.Context, text string, blocks *slackgo.Blocks) error {
	_, err := d.a.api.PostEphemeralContext(ctx, d.channel, d.user, append(msgBlocks(blocks), slackgo.MsgOptionText(text, false))...)
	return err
}

// httpResponder answers an HTTP slash command: the first response is the
// HTTP response; later ones go to the response_url. The Dispatcher calls it
// from one goroutine at a time (see bot.Responder).
type httpResponder struct {
	delivery
	w       http.ResponseWriter
	written bool
}

var _ bot.Responder = (*httpResponder)(nil)

// write sends body (nil: an empty body) as the whole HTTP response with
// status 200 and flushes it, so Slack has it before anything else happens.
func (h *httpResponder) write(body []byte) error {
	if h.written {
		return errors.New("slack: command already answered")
	}
	h.written = true
	hd := h.w.Header()
	if body != nil {
		hd.Set("Content-Type", "application/json")
	}
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	h.w.WriteHeader(http.StatusOK)
	if _, err := h.w.Write(body); err != nil {
		return fmt.Errorf("write slash command response: %w", err)
	}
	if err := http.NewResponseController(h.w).Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("flush slash command response: %w", err)
	}
	return nil
}

// Ack answers 200 with r.Text as an ephemeral message (it is a progress
// note for the student alone), or with an empty body when r.Text is empty.
func (h *httpResponder) Ack(_ context.Context, r bot.Reply) error {
	if strings.TrimSpace(r.Text) == "" {
		return h.write(nil)
	}
	b, err := json.Marshal(message{ResponseType: ephemeral, Text: Messages(r.Text)[0]})
	if err != nil {
		return err
	}
	return h.write(b)
}

// Respond answers 200 with the answer's first message as the body; the
// rest of a long answer follows through the response_url once the
// response is flushed, with ctx: the Dispatcher passes one that outlives
// the request, since Slack may close the connection as soon as it has read
// the response.
func (h *httpResponder) Respond(ctx context.Context, r bot.Reply) error {
	parts := Messages(h.withFile(ctx, r, nil))
	m := message{ResponseType: responseType(r), Text: parts[0]}
	if len(parts) == 1 {
		m.Blocks = feedbackBlocks(r, parts[0])
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := h.write(b); err != nil {
		return err
	}
	return h.send(ctx, r, parts[1:])
}

package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/internal/chunk"
	"github.com/classbot/classbot/internal/redact"
)

const (
	// ResponseURLLife is how long after the command Slack accepts posts to
	// its response_url.
	ResponseURLLife = 30 * time.Minute
	// ExpiryMargin is how long before the end of ResponseURLLife a reopened
	// Responder already treats the response_url as dead, so that no post
	// is started into a window that closes while it is on the wire.
	ExpiryMargin = 30 * time.Second
	// MaxFollowUpLen is the most characters (counted after escaping) of a
	// reopened Responder's answer, which is always one message: as much
	// as MaxMessages messages carry in the other modes. Longer text is cut
	// short and ends with "…".
	MaxFollowUpLen = MaxMessageLen * MaxMessages
)

// address is what Address stores of a command: where its answer goes.
// The names are short because it is kept in every queued job's row. URL
// is a credential: it is never logged or put in an error.
type address struct {
	URL     string `json:"url,omitempty"`  // response_url
	Channel string `json:"ch,omitempty"`   // channel id
	User    string `json:"user,omitempty"` // user id
	Team    string `json:"team,omitempty"` // team id (or enterprise id)
	Trigger string `json:"trig,omitempty"` // trigger id, for logs
	// An event's question: the thread the answer goes to (no response_url).
	Thread    string `json:"ts,omitempty"`
	Assistant bool   `json:"ai,omitempty"` // an assistant thread
}

// Address says where the command's answer goes, for bot.Addressed: its
// response_url, channel, user, team and trigger id, as a small JSON
// object. It holds the response_url, a credential: keep it where secrets
// are kept (the job's row) and never log it. Whether the answer is
// ephemeral is decided by each Reply, so it is not part of the address.
func (d delivery) Address() (json.RawMessage, error) {
	return json.Marshal(address{URL: d.responseURL, Channel: d.channel, User: d.user, Team: d.team, Trigger: d.id})
}

var (
	_ bot.Addressed = (*httpResponder)(nil)
	_ bot.Addressed = (*socketResponder)(nil)
	_ bot.Reopener  = (*Adapter)(nil)
)

// Reopen rebuilds the Responder of command c from the address its
// Responder gave (see bot.Reopener), in a queue worker of any process
// configured like this one. Fields the address lacks are taken from c. It
// does no I/O; it fails when the address is not one Address made, or when
// its response_url is outside Config.ResponseURLPrefixes (a job's row is
// not trusted more than a request). Only FollowUp may be called on what it
// returns; see its doc. It is safe for concurrent use.
func (a *Adapter) Reopen(_ context.Context, c bot.Command, raw json.RawMessage) (bot.Responder, error) {
	if c.Platform != "" && c.Platform != bot.PlatformSlack {
		return nil, fmt.Errorf("slack: cannot reopen a %q command", c.Platform)
	}
	var ad address
	if err := json.Unmarshal(raw, &ad); err != nil {
		return nil, fmt.Errorf("slack: reopen %s: address not understood: %w", c.InteractionID, err)
	}
	if ad.Thread != "" && ad.URL == "" {
		return a.reopenThread(c, ad)
	}
	if ad.Channel == "" {
		ad.Channel = c.Channel
	}
	if ad.User == "" {
		ad.User = c.User
	}
	if ad.Team == "" {
		ad.Team = c.Workspace
	}
	if ad.Trigger == "" {
		ad.Trigger = c.InteractionID
	}
	if err := a.checkResponseURL(ad.URL); err != nil {
		return nil, fmt.Errorf("slack: reopen %s: %w", ad.Trigger, err)
	}
	return &reopened{
		delivery: delivery{a: a, id: ad.Trigger, responseURL: ad.URL, channel: ad.Channel, user: ad.User, team: ad.Team},
		received: c.ReceivedAt,
	}, nil
}

// errReopened is what a reopened Responder's Ack and Respond return: the
// first response was given by the process that received the command.
var errReopened = errors.New("slack: a reopened command was answered already; only FollowUp may be called")

// reopened is a command's Responder rebuilt in a queue worker.
type reopened struct {
	delivery
	received time.Time   // the command's ReceivedAt; zero: unknown
	posts    bot.PostLog // where the chat.postEphemeral fallback is recorded; nil: nowhere
}

// postKindEphemeral is the bot.PostLog kind of the chat.postEphemeral
// fallback.
const postKindEphemeral = "slack_ephemeral"

// UsePostLog makes FollowUp record its chat.postEphemeral fallback in l
// and skip it when l holds one already (bot.PostLogger): an ephemeral
// message cannot be edited, and a second one would be a second answer.
func (r *reopened) UsePostLog(l bot.PostLog) { r.posts = l }

var _ bot.PostLogger = (*reopened)(nil)

func (r *reopened) Ack(context.Context, bot.Reply) error     { return errReopened }
func (r *reopened) Respond(context.Context, bot.Reply) error { return errReopened }

// FollowUp delivers the whole answer as one message (escaped, at most
// MaxFollowUpLen characters) posted to the response_url with
// replace_original: true, so running it again (a retried or rescued job)
// replaces the answer instead of adding a second one. An /ask answer
// (rep.Feedback) carries the feedback buttons, its text in sections above
// them, on whichever way it goes.
//
// If the response_url can no longer be used (ResponseURLLife minus
// ExpiryMargin has passed since the command's ReceivedAt, checked with
// Config.NowFunc before anything is posted; or Slack answers 404, 410 or
// one of its dead-URL errors such as expired_url or used_url), the answer
// goes to the student with chat.postEphemeral when a bot token is
// configured, and otherwise FollowUp returns an error wrapping
// bot.ErrExpired. It also wraps bot.ErrExpired when Slack refuses the
// chat.postEphemeral (not_in_channel, channel_not_found, …): nothing else
// can reach the student. Other failures (a timeout, a 5xx) return an error
// that does not wrap it, so the job may be retried. Errors never show the
// response_url. With a PostLog (UsePostLog), a fallback recorded by an
// earlier attempt means the student has the answer: FollowUp posts
// nothing and returns nil.
func (r *reopened) FollowUp(ctx context.Context, rep bot.Reply) error {
	if r.posts != nil && r.posts.Posted(postKindEphemeral) != "" {
		return nil
	}
	raw := chunk.Split(r.withFile(ctx, rep, r.posts), MaxFollowUpLen, 1, escapedLen)[0]
	text, blocks := Escape(raw), answerBlocks(rep, raw)
	switch {
	case r.responseURL == "":
		return r.expired(ctx, text, blocks, errors.New("the command has no response_url"))
	case !r.received.IsZero() && !r.a.cfg.NowFunc().Before(r.received.Add(ResponseURLLife-ExpiryMargin)):
		return r.expired(ctx, text, blocks, fmt.Errorf("its response_url expired %s after the command", ResponseURLLife))
	}
	err := r.replace(ctx, rep, text, blocks)
	var dead *deadURLError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &dead):
		return r.expired(ctx, text, blocks, err)
	default:
		return fmt.Errorf("slack: follow-up of %s: %w", r.id, err)
	}
}

// deadWords are the bodies Slack answers a response_url post with when
// the URL will never take another one.
var deadWords = map[string]bool{"expired_url": true, "used_url": true, "no_active_hooks": true, "invalid_token": true, "no_service": true}

// deadURLError is Slack's answer that a response_url is dead.
type deadURLError struct {
	status int
	body   string
}

func (e *deadURLError) Error() string {
	return fmt.Sprintf("response_url answered %d %.40q", e.status, e.body)
}

// replace posts text (and blocks, when not nil) to the response_url with
// replace_original: true. It reads Slack's answer (slack-go's PostWebhook
// drops the body, which says why a URL is dead); its errors never show
// the URL.
func (r *reopened) replace(ctx context.Context, rep bot.Reply, text string, blocks *slackgo.Blocks) error {
	body, err := json.Marshal(&slackgo.WebhookMessage{Text: text, Blocks: blocks, ResponseType: responseType(rep), ReplaceOriginal: true})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, responseURLTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.responseURL, bytes.NewReader(body))
	if err != nil {
		return redact.Secret(fmt.Errorf("post to response_url: %w", err), r.responseURL, "[response_url]")
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.a.hooks.Do(req)
	if err != nil {
		return redact.Secret(fmt.Errorf("post to response_url: %w", err), r.responseURL, "[response_url]")
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	word := strings.TrimSpace(string(b))
	switch {
	case deadWords[word], resp.StatusCode == http.StatusNotFound, resp.StatusCode == http.StatusGone:
		return &deadURLError{status: resp.StatusCode, body: redactedBody(word, r.responseURL)}
	case resp.StatusCode == http.StatusOK:
		return nil
	default:
		return fmt.Errorf("response_url answered %d %.40q", resp.StatusCode, redactedBody(word, r.responseURL))
	}
}

// redactedBody is body with any copy of the response_url removed.
func redactedBody(body, responseURL string) string {
	return strings.ReplaceAll(body, responseURL, "[response_url]")
}

// expired delivers text, with its blocks (the feedback buttons) when they
// are not nil, with chat.postEphemeral when it can, since the response_url
// cannot (why), and otherwise returns an error wrapping bot.ErrExpired.
func (r *reopened) expired(ctx context.Context, text string, blocks *slackgo.Blocks, why error) error {
	if !r.canFallback() {
		return fmt.Errorf("slack: follow-up of %s: %w (%w), and no bot token is configured", r.id, bot.ErrExpired, why)
	}
	r.a.log.LogAttrs(ctx, slog.LevelWarn, "slack: response_url no longer usable; sending through chat.postEphemeral",
		slog.String("interaction", r.id), slog.Any("reason", why))
	ts, err := r.a.api.PostEphemeralContext(ctx, r.channel, r.user, append(msgBlocks(blocks), slackgo.MsgOptionText(text, false))...)
	if err == nil {
		r.recordFallback(ctx, ts)
		return nil
	}
	var refused slackgo.SlackErrorResponse
	if errors.As(err, &refused) {
		return fmt.Errorf("slack: follow-up of %s: %w (%w); chat.postEphemeral refused: %w", r.id, bot.ErrExpired, why, err)
	}
	return fmt.Errorf("slack: follow-up of %s: response_url unusable (%w); chat.postEphemeral: %w", r.id, why, err)
}

// recordFallback records the chat.postEphemeral message ts in the PostLog,
// with its own time budget. A failure is logged: the answer was delivered,
// and the worst a later attempt can do is deliver it again.
func (r *reopened) recordFallback(ctx context.Context, ts string) {
	if r.posts == nil {
		return
	}
	if ts == "" {
		ts = "sent" // Slack gave no message ts: the post still happened
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bot.RecordPostTimeout)
	defer cancel()
	if err := r.posts.RecordPost(rctx, postKindEphemeral, ts); err != nil {
		r.a.log.LogAttrs(ctx, slog.LevelWarn, "slack: recording the chat.postEphemeral fallback failed",
			slog.String("interaction", r.id), slog.Any("err", err))
	}
}

package slack

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/internal/chunk"
)

// Action ids of the feedback buttons; each button's value is the /ask's
// interaction id (its trigger_id).
const (
	actionHelpful    = "classbot_helpful"
	actionNotHelpful = "classbot_not_helpful"
)

// maxBlocks is the most blocks Slack takes in one message.
const maxBlocks = 50

// feedbackActions returns the actions block of r's "helpful" / "not
// helpful" buttons, or nil when r asks for none.
func feedbackActions(r bot.Reply) slackgo.Block {
	if r.Feedback == "" {
		return nil
	}
	helpful := slackgo.NewButtonBlockElement(actionHelpful, r.Feedback, slackgo.NewTextBlockObject(slackgo.PlainTextType, "👍 Helpful", true, false))
	notHelpful := slackgo.NewButtonBlockElement(actionNotHelpful, r.Feedback, slackgo.NewTextBlockObject(slackgo.PlainTextType, "👎 Not helpful", true, false))
	return slackgo.NewActionBlock("classbot_feedback", helpful, notHelpful)
}

// feedbackBlocks returns text (already escaped, at most MaxMessageLen
// characters: one section) as a section followed by the "helpful" / "not
// helpful" buttons for r, or nil when r asks for none.
func feedbackBlocks(r bot.Reply, text string) *slackgo.Blocks {
	actions := feedbackActions(r)
	if actions == nil || text == "" {
		return nil
	}
	return &slackgo.Blocks{BlockSet: []slackgo.Block{section(text), actions}}
}

// answerBlocks returns raw, plain text of any length a message takes, as
// escaped sections of at most MaxMessageLen characters each (a section's
// limit), followed by r's buttons; nil when r asks for none. With blocks,
// Slack shows them instead of the message's text.
func answerBlocks(r bot.Reply, raw string) *slackgo.Blocks {
	actions := feedbackActions(r)
	if actions == nil || strings.TrimSpace(raw) == "" {
		return nil
	}
	parts := chunk.Split(raw, MaxMessageLen, maxBlocks-1, escapedLen)
	set := make([]slackgo.Block, 0, len(parts)+1)
	for _, p := range parts {
		set = append(set, section(Escape(p)))
	}
	return &slackgo.Blocks{BlockSet: append(set, actions)}
}

// section is escaped text as a section block, shown as typed (verbatim).
func section(text string) slackgo.Block {
	return slackgo.NewSectionBlock(slackgo.NewTextBlockObject(slackgo.MarkdownType, text, false, true), nil, nil)
}

// msgBlocks is the chat.* option that sends b, or nothing when b is nil.
func msgBlocks(b *slackgo.Blocks) []slackgo.MsgOption {
	if b == nil {
		return nil
	}
	return []slackgo.MsgOption{slackgo.MsgOptionBlocks(b.BlockSet...)}
}

// InteractionsHandler serves POST /slack/interactions: clicks on the
// feedback buttons of answers (block_actions), signed and checked like
// slash commands (413, 401, 400 as Handler). A click becomes a
// bot.FeedbackCommand whose answer goes to the clicker alone through the
// click's response_url; the HTTP response is an empty 200, as Slack wants.
// Other interactions are acknowledged and ignored. It is safe for
// concurrent use.
func (a *Adapter) InteractionsHandler() http.Handler {
	return http.HandlerFunc(a.serveInteraction)
}

func (a *Adapter) serveInteraction(w http.ResponseWriter, r *http.Request) {
	received := time.Now()
	ctx := r.Context()
	body, ok := a.readSigned(w, r)
	if !ok {
		return
	}
	var cb slackgo.InteractionCallback
	form, err := url.ParseQuery(string(body))
	if err == nil {
		err = json.Unmarshal([]byte(form.Get("payload")), &cb)
	}
	if err != nil || cb.Type == "" {
		a.refuse(r, http.StatusBadRequest, RefuseBadBody)
		http.Error(w, "body is not an interaction", http.StatusBadRequest)
		return
	}
	c, ok := feedbackCommand(cb, received)
	if !ok {
		w.WriteHeader(http.StatusOK) // not classbot's button: nothing to do
		return
	}
	if err := a.checkResponseURL(cb.ResponseURL); err != nil || cb.ResponseURL == "" {
		a.refuse(r, http.StatusBadRequest, RefuseResponseURL, slog.String("response_url_host", responseURLHost(cb.ResponseURL)))
		http.Error(w, "response_url not allowed", http.StatusBadRequest)
		return
	}
	resp := &actionResponder{httpResponder{delivery: delivery{a: a, id: cb.TriggerID, responseURL: cb.ResponseURL,
		channel: c.Channel, user: c.User, team: c.Workspace}, w: w}}
	if err := a.cfg.Dispatcher.Dispatch(ctx, c, resp); err != nil {
		a.log.LogAttrs(ctx, slog.LevelWarn, "slack: answer to a click failed",
			slog.String("interaction", cb.TriggerID), slog.Any("err", err))
	}
	if !resp.written {
		w.WriteHeader(http.StatusOK)
	}
}

// feedbackCommand turns a click on a feedback button into a
// bot.FeedbackCommand; ok is false for anything else.
func feedbackCommand(cb slackgo.InteractionCallback, received time.Time) (bot.Command, bool) {
	if cb.Type != slackgo.InteractionTypeBlockActions || cb.TriggerID == "" || cb.User.ID == "" {
		return bot.Command{}, false
	}
	for _, act := range cb.ActionCallback.BlockActions {
		helpful := ""
		switch act.ActionID {
		case actionHelpful:
			helpful = "true"
		case actionNotHelpful:
			helpful = "false"
		default:
			continue
		}
		ws := cb.Team.ID
		if ws == "" {
			ws = cb.User.TeamID
		}
		return bot.Command{
			Platform: bot.PlatformSlack, InteractionID: cb.TriggerID, Workspace: ws,
			Channel: cb.Channel.ID, User: cb.User.ID, Name: bot.FeedbackCommand,
			Options:    map[string]string{bot.FeedbackAnswer: act.Value, bot.FeedbackHelpful: helpful},
			ReceivedAt: received,
		}, true
	}
	return bot.Command{}, false
}

// actionResponder answers a click: Slack ignores the HTTP response's body,
// so every answer goes through the click's response_url as a new message
// (replace_original false: the answer and its buttons stay).
type actionResponder struct{ httpResponder }

// Ack answers 200 with an empty body.
func (a *actionResponder) Ack(context.Context, bot.Reply) error { return a.write(nil) }

// Respond answers 200 with an empty body, then posts r to the response_url.
func (a *actionResponder) Respond(ctx context.Context, r bot.Reply) error {
	if err := a.write(nil); err != nil {
		return err
	}
	return a.FollowUp(ctx, r)
}

// handleClick hands a Socket Mode click on a feedback button, already
// acknowledged, to the Dispatcher; anything else is ignored.
func (a *Adapter) handleClick(ctx context.Context, cb slackgo.InteractionCallback) {
	c, ok := feedbackCommand(cb, time.Now())
	if !ok {
		return
	}
	if err := a.checkResponseURL(cb.ResponseURL); err != nil || cb.ResponseURL == "" {
		a.log.LogAttrs(ctx, slog.LevelWarn, "slack: click refused", slog.String("reason", RefuseResponseURL),
			slog.String("response_url_host", responseURLHost(cb.ResponseURL)))
		return
	}
	d := delivery{a: a, id: cb.TriggerID, responseURL: cb.ResponseURL, channel: c.Channel, user: c.User, team: c.Workspace}
	a.cfg.Dispatcher.Go(ctx, c, &ackedResponder{delivery: d})
}

// ackedResponder answers a Socket Mode click whose envelope was
// acknowledged already: every answer goes to the response_url.
type ackedResponder struct{ delivery }

// Ack does nothing: the envelope was acknowledged on arrival.
func (r *ackedResponder) Ack(context.Context, bot.Reply) error { return nil }

// Respond posts rep to the response_url.
func (r *ackedResponder) Respond(ctx context.Context, rep bot.Reply) error {
	return r.FollowUp(ctx, rep)
}

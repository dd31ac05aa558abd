package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/classbot/classbot/bot"
)

// badResponseURLText answers a Socket Mode command whose response_url is
// outside Config.ResponseURLPrefixes.
const badResponseURLText = "Sorry, I can't answer this command: Slack gave me a reply address I'm not allowed to use. Please tell your teacher."

const (
	// ackTimeout bounds queueing one acknowledgement for the websocket.
	ackTimeout = 5 * time.Second
	// stopTimeout bounds how long Run waits for slack-go's connection loop
	// to end after ctx is done.
	stopTimeout = 5 * time.Second
)

// Run connects to Slack in Socket Mode with the app-level token and handles
// slash commands until ctx is done. slack-go's client asks
// apps.connections.open for a websocket URL, answers Slack's pings, and
// reconnects on its own (with backoff) when the connection drops or Slack
// asks it to. Run reads its events continuously and acknowledges every
// envelope: a slash command with the Dispatcher's first response, anything
// else at once with no payload. Each slash command is handed to
// Dispatcher.Go, which runs it (first response included) in a goroutine it
// owns, bounded by its MaxInFlight ("busy" past it), so the event loop
// never waits for a command.
//
// When ctx is done Run closes the connection (waiting up to 5 s for
// slack-go to let go of it) and returns nil: the commands in flight are the
// Dispatcher's to drain (Dispatcher.Shutdown). It
// returns an error if there is no app token or dispatcher, or if Slack
// refuses the token (invalid_auth, token_revoked, …): retrying would not
// help, and the teacher must fix SLACK_APP_TOKEN.
func (a *Adapter) Run(ctx context.Context) error {
	if a.cfg.AppToken == "" {
		return errors.New("slack: Socket Mode needs an app-level token (SLACK_APP_TOKEN)")
	}
	if a.cfg.Dispatcher == nil {
		return errors.New("slack: Socket Mode needs Config.Dispatcher")
	}
	client := socketmode.New(a.api, socketmode.OptionLog(slog.NewLogLogger(a.log.Handler(), slog.LevelDebug)))

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- client.RunContext(runCtx) }()

	for {
		select {
		case <-ctx.Done():
			cancel()
			t := time.NewTimer(stopTimeout)
			select {
			case <-done:
			case <-t.C:
				a.log.Warn("slack: Socket Mode connection still closing at shutdown")
			}
			t.Stop()
			return nil
		case err := <-done:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("slack: Socket Mode stopped; check SLACK_APP_TOKEN: %w", err)
		case evt := <-client.Events:
			a.handleEvent(ctx, client, evt)
		}
	}
}

// handleEvent handles one event of slack-go's client. It must not block:
// the client's event channel holds 50 and its reader waits when it is full.
func (a *Adapter) handleEvent(ctx context.Context, client *socketmode.Client, evt socketmode.Event) {
	switch evt.Type {
	case socketmode.EventTypeConnecting:
		a.log.LogAttrs(ctx, slog.LevelDebug, "slack: Socket Mode connecting")
	case socketmode.EventTypeConnected:
		a.log.LogAttrs(ctx, slog.LevelInfo, "slack: Socket Mode connected")
	case socketmode.EventTypeHello:
		a.log.LogAttrs(ctx, slog.LevelDebug, "slack: Socket Mode hello")
	case socketmode.EventTypeConnectionError:
		var err error
		if e, ok := evt.Data.(*slackgo.ConnectionErrorEvent); ok {
			err = e.ErrorObj
		}
		a.log.LogAttrs(ctx, slog.LevelWarn, "slack: Socket Mode connection failed; retrying", slog.Any("err", err))
	case socketmode.EventTypeInvalidAuth:
		a.log.LogAttrs(ctx, slog.LevelError, "slack: Socket Mode token refused; check SLACK_APP_TOKEN")
	case socketmode.EventTypeDisconnect:
		a.log.LogAttrs(ctx, slog.LevelInfo, "slack: Socket Mode disconnect requested; reconnecting")
	case socketmode.EventTypeIncomingError, socketmode.EventTypeErrorWriteFailed:
		a.log.LogAttrs(ctx, slog.LevelWarn, "slack: Socket Mode connection error", slog.String("event", string(evt.Type)))
	case socketmode.EventTypeErrorBadMessage:
		// An envelope slack-go could not parse: ack it so Slack does not
		// redeliver it forever.
		if e, ok := evt.Data.(*socketmode.ErrorBadMessage); ok {
			var env struct {
				EnvelopeID string `json:"envelope_id"`
			}
			if json.Unmarshal(e.Message, &env) == nil && env.EnvelopeID != "" {
				a.ack(ctx, client, env.EnvelopeID, nil)
			}
		}
		a.log.LogAttrs(ctx, slog.LevelWarn, "slack: Socket Mode message not understood")
	case socketmode.EventTypeSlashCommand:
		if evt.Request == nil || evt.Request.EnvelopeID == "" {
			return
		}
		sc, ok := evt.Data.(slackgo.SlashCommand)
		if !ok {
			a.ack(ctx, client, evt.Request.EnvelopeID, nil)
			return
		}
		a.handleCommand(ctx, client, evt.Request.EnvelopeID, sc)
	case socketmode.EventTypeEventsAPI:
		// Acknowledged at once, like an HTTP event; a redelivery carries
		// the same event_id (see handleCallback).
		if evt.Request != nil && evt.Request.EnvelopeID != "" {
			a.ack(ctx, client, evt.Request.EnvelopeID, nil)
		}
		if ev, ok := evt.Data.(slackevents.EventsAPIEvent); ok {
			a.handleCallback(ctx, ev, time.Now(), false, a.noteContext(ev))
		}
	case socketmode.EventTypeInteractive:
		if evt.Request == nil || evt.Request.EnvelopeID == "" {
			return
		}
		// Acknowledged at once: a click's answer goes to its response_url.
		a.ack(ctx, client, evt.Request.EnvelopeID, nil)
		if cb, ok := evt.Data.(slackgo.InteractionCallback); ok {
			a.handleClick(ctx, cb)
		}
	default:
		// anything else: classbot has nothing to do with it,
		// but Slack waits for every envelope's acknowledgement.
		if evt.Request != nil && evt.Request.EnvelopeID != "" {
			a.ack(ctx, client, evt.Request.EnvelopeID, nil)
		}
	}
}

func (a *Adapter) ack(ctx context.Context, client *socketmode.Client, envelope string, payload any) {
	actx, cancel := context.WithTimeout(ctx, ackTimeout)
	defer cancel()
	if err := client.AckCtx(actx, envelope, payload); err != nil {
		a.log.LogAttrs(ctx, slog.LevelWarn, "slack: Socket Mode ack failed", slog.Any("err", err))
	}
}

// handleCommand hands one slash command to the Dispatcher, which owns its
// goroutine, its bound and its end; it returns at once. A command that is
// not one, or whose response_url is not allowed, is acknowledged here and
// not dispatched.
func (a *Adapter) handleCommand(ctx context.Context, client *socketmode.Client, envelope string, sc slackgo.SlashCommand) {
	received := time.Now()
	if !valid(sc) {
		a.log.LogAttrs(ctx, slog.LevelWarn, "slack: Socket Mode slash command without command, trigger, user or team")
		a.ack(ctx, client, envelope, nil)
		return
	}
	if err := a.checkResponseURL(sc.ResponseURL); err != nil {
		a.log.LogAttrs(ctx, slog.LevelWarn, "slack: command refused", slog.String("reason", RefuseResponseURL),
			slog.String("interaction", sc.TriggerID), slog.String("response_url_host", responseURLHost(sc.ResponseURL)))
		a.ack(ctx, client, envelope, message{ResponseType: ephemeral, Text: Escape(badResponseURLText)})
		return
	}
	resp := &socketResponder{delivery: a.delivery(sc), client: client, envelope: envelope}
	a.cfg.Dispatcher.Go(ctx, command(sc, received), resp)
}

// socketResponder answers a Socket Mode slash command: the first response
// is the envelope's acknowledgement; later ones go to the response_url. The
// Dispatcher calls it from one goroutine at a time (see bot.Responder).
type socketResponder struct {
	delivery
	client   *socketmode.Client
	envelope string
	acked    bool
}

var _ bot.Responder = (*socketResponder)(nil)

// sendAck queues the acknowledgement for the websocket; slack-go's single
// writer sends it in order, before anything this command posts later.
func (s *socketResponder) sendAck(ctx context.Context, payload any) error {
	if s.acked {
		return errors.New("slack: envelope already acknowledged")
	}
	s.acked = true
	actx, cancel := context.WithTimeout(ctx, ackTimeout)
	defer cancel()
	if err := s.client.AckCtx(actx, s.envelope, payload); err != nil {
		return fmt.Errorf("socket mode ack: %w", err)
	}
	return nil
}

// Ack acknowledges the envelope, with r.Text as an ephemeral message when
// there is one.
func (s *socketResponder) Ack(ctx context.Context, r bot.Reply) error {
	if r.Text == "" {
		return s.sendAck(ctx, nil)
	}
	return s.sendAck(ctx, message{ResponseType: ephemeral, Text: Messages(r.Text)[0]})
}

// Respond acknowledges the envelope with the answer's first message; the
// rest of a long answer follows through the response_url, with ctx (the
// Dispatcher's, detached from the event loop).
func (s *socketResponder) Respond(ctx context.Context, r bot.Reply) error {
	parts := Messages(s.withFile(ctx, r, nil))
	m := message{ResponseType: responseType(r), Text: parts[0]}
	if len(parts) == 1 {
		m.Blocks = feedbackBlocks(r, parts[0])
	}
	if err := s.sendAck(ctx, m); err != nil {
		return err
	}
	return s.send(ctx, r, parts[1:])
}

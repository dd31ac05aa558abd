package slack

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack/slackevents"

	"github.com/classbot/classbot/bot"
)

// eventTimeout bounds the work the adapter does itself for one event (the
// greeting of an assistant thread); questions are the Dispatcher's.
const eventTimeout = 15 * time.Second

// EventsHandler serves POST /slack/events, the Events API: it reads at
// most 64 KiB (413 past it), verifies X-Slack-Signature like a slash
// command (401 for a bad signature or a timestamp more than 5 minutes
// off), answers url_verification with its challenge, and answers an
// event_callback with 200 at once, before any work: Slack retries an
// event not answered within 3 seconds (X-Slack-Retry-Num), and a retry
// carries the same event_id, which is the ledger's interaction id, so it
// is answered once. It is safe for concurrent use.
//
// Events handled (see handleCallback): assistant_thread_started (a
// greeting and suggested prompts), assistant_thread_context_changed (the
// student moved to another channel), message.im (a question in the
// assistant's thread or a direct message) and app_mention (a question in
// a class channel), both answered as /ask in a thread of the question; a
// question in an assistant thread from the course of the channel the
// student is viewing (see threadContexts).
func (a *Adapter) EventsHandler() http.Handler {
	return http.HandlerFunc(a.serveEvents)
}

func (a *Adapter) serveEvents(w http.ResponseWriter, r *http.Request) {
	received := time.Now()
	body, ok := a.readSigned(w, r)
	if !ok {
		return
	}
	ev, err := slackevents.ParseEvent(json.RawMessage(body), slackevents.OptionNoVerifyToken())
	if err != nil {
		a.refuse(r, http.StatusBadRequest, RefuseBadBody)
		http.Error(w, "body is not an event", http.StatusBadRequest)
		return
	}
	switch ev.Type {
	case slackevents.URLVerification:
		var ch slackevents.ChallengeResponse
		if json.Unmarshal(body, &ch) != nil || ch.Challenge == "" {
			a.refuse(r, http.StatusBadRequest, RefuseBadBody)
			http.Error(w, "no challenge", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(len(ch.Challenge)))
		_, _ = io.WriteString(w, ch.Challenge)
		return
	case slackevents.CallbackEvent:
	default:
		w.WriteHeader(http.StatusOK)
		return
	}
	// A thread's context is remembered before the answer, so a question
	// Slack sends once it has the answer finds it.
	moved := a.noteContext(ev)
	// Answer first: what follows may call the Web API.
	w.WriteHeader(http.StatusOK)
	if err := http.NewResponseController(w).Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		a.log.LogAttrs(r.Context(), slog.LevelDebug, "slack: flushing an event's answer", slog.Any("err", err))
	}
	if n := r.Header.Get("X-Slack-Retry-Num"); n != "" {
		a.log.LogAttrs(r.Context(), slog.LevelInfo, "slack: retried event delivery",
			slog.String("retry", n), slog.String("reason", r.Header.Get("X-Slack-Retry-Reason")))
	}
	a.handleCallback(context.WithoutCancel(r.Context()), ev, received, true, moved)
}

// noteContext remembers the context of an assistant thread event
// (assistant_thread_started, assistant_thread_context_changed) and reports
// whether it moved the thread to another channel; it does no I/O.
func (a *Adapter) noteContext(ev slackevents.EventsAPIEvent) bool {
	switch e := ev.InnerEvent.Data.(type) {
	case *slackevents.AssistantThreadStartedEvent:
		return a.contexts.remember(e.AssistantThread)
	case *slackevents.AssistantThreadContextChangedEvent:
		return a.contexts.remember(e.AssistantThread)
	}
	return false
}

// handleCallback handles one event_callback, from HTTP or Socket Mode.
// Questions go to Dispatcher.Go, which returns at once. The greeting of
// an assistant thread, and its prompts when the student moves to a
// channel of another course, are set here (eventWork).
//
// moved is noteContext's answer for ev, which the caller calls first.
func (a *Adapter) handleCallback(ctx context.Context, ev slackevents.EventsAPIEvent, received time.Time, wait, moved bool) {
	cb, ok := ev.Data.(*slackevents.EventsAPICallbackEvent)
	if !ok || cb.EventID == "" {
		return
	}
	team := ev.TeamID
	if team == "" {
		team = ev.EnterpriseID
	}
	switch e := ev.InnerEvent.Data.(type) {
	case *slackevents.AssistantThreadStartedEvent:
		if !a.firstDelivery(cb.EventID) {
			return
		}
		a.eventWork(ctx, wait, func(ctx context.Context) { a.greet(ctx, team, e.AssistantThread) })
	case *slackevents.AssistantThreadContextChangedEvent:
		if moved {
			a.eventWork(ctx, wait, func(ctx context.Context) {
				a.keepContext(ctx, e.AssistantThread)
				a.refreshPrompts(ctx, team, e.AssistantThread)
			})
		}
	case *slackevents.AppMentionEvent:
		if e.BotID != "" || e.User == "" || e.Channel == "" {
			return
		}
		thread := e.ThreadTimeStamp
		if thread == "" {
			thread = e.TimeStamp
		}
		a.question(ctx, cb.EventID, team, e.Channel, e.User, thread, "", e.Text, false, received)
	case *slackevents.MessageEvent:
		// Only what a person typed in a direct message with the app: not
		// edits, joins or bots (classbot's own answers included).
		if e.ChannelType != "im" || e.SubType != "" || e.BotID != "" || e.User == "" || e.Channel == "" {
			return
		}
		if e.ThreadTimeStamp == "" {
			a.question(ctx, cb.EventID, team, e.Channel, e.User, e.TimeStamp, "", e.Text, false, received)
			return
		}
		// An assistant thread: its context, remembered or (once per
		// thread and process) read from Slack, says the course.
		if c, ok := a.contexts.lookup(e.Channel, e.ThreadTimeStamp); ok {
			a.question(ctx, cb.EventID, team, e.Channel, e.User, e.ThreadTimeStamp, c.viewing, e.Text, true, received)
			return
		}
		a.eventWork(ctx, wait, func(wctx context.Context) {
			viewing := a.viewing(wctx, e.Channel, e.ThreadTimeStamp)
			a.question(ctx, cb.EventID, team, e.Channel, e.User, e.ThreadTimeStamp, viewing, e.Text, true, received)
		})
	}
}

// eventWork runs f, the adapter's own work for an event, bounded by
// eventTimeout: at once when wait is true (HTTP: the request is answered
// already), and in a goroutine when it is not (Socket Mode: the event loop
// must not wait).
func (a *Adapter) eventWork(ctx context.Context, wait bool, f func(context.Context)) {
	run := func() {
		wctx, cancel := context.WithTimeout(ctx, eventTimeout)
		defer cancel()
		f(wctx)
	}
	if wait {
		run()
	} else {
		go run()
	}
}

// leadingMentions matches the mentions a message to the app starts with,
// <@U0BOT> or <@U0BOT|classbot>.
var leadingMentions = regexp.MustCompile(`^\s*(<@[A-Z0-9]+(\|[^>]*)?>[\s,:]*)+`)

// question hands a question typed in a thread, a direct message or a
// mention to the Dispatcher as /ask. The event id is the interaction id;
// the channel is the memory key's; the answer goes to the thread. With
// viewing (an assistant thread's context), the answer comes from the
// course of that channel instead of channel's.
func (a *Adapter) question(ctx context.Context, eventID, team, channel, user, thread, viewing, text string, assistant bool, received time.Time) {
	q := PlainText(leadingMentions.ReplaceAllString(text, ""))
	if strings.TrimSpace(q) == "" || team == "" {
		return
	}
	c := bot.Command{
		Platform:      bot.PlatformSlack,
		InteractionID: eventID,
		Workspace:     team,
		Channel:       channel,
		User:          user,
		Name:          "ask",
		Text:          q,
		CourseChannel: viewing,
		ReceivedAt:    received,
	}
	a.cfg.Dispatcher.Go(ctx, c, &threadResponder{a: a, channel: channel, user: user, team: team, thread: thread, assistant: assistant})
}

// seenEvents is how many event ids firstDelivery remembers.
const seenEvents = 4096

// recentEvents remembers the ids of the events the adapter handles itself
// (greetings), so a retried delivery does not greet twice. Questions are
// deduplicated by the Dispatcher's ledger instead.
type recentEvents struct {
	mu    sync.Mutex
	seen  map[string]bool
	order []string
}

// firstDelivery reports whether event id is seen for the first time.
func (a *Adapter) firstDelivery(id string) bool {
	r := &a.events
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = make(map[string]bool, seenEvents)
	}
	if r.seen[id] {
		return false
	}
	r.seen[id] = true
	r.order = append(r.order, id)
	if len(r.order) > seenEvents {
		delete(r.seen, r.order[0])
		r.order = r.order[1:]
	}
	return true
}

package slack_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/classbot/classbot/agent"
	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/slack"
	"github.com/classbot/classbot/store"
)

// courseLog is the bot's CourseNotes over the fixture's store, recording
// the classes whose course /ask looked up.
type courseLog struct {
	*store.Memory
	mu      sync.Mutex
	classes []store.Class
}

func (c *courseLog) CourseFor(ctx context.Context, cl store.Class) (store.Course, error) {
	c.mu.Lock()
	c.classes = append(c.classes, cl)
	c.mu.Unlock()
	return c.Memory.CourseFor(ctx, cl)
}

func (c *courseLog) channels() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, cl := range c.classes {
		out = append(out, cl.Channel)
	}
	return out
}

// A question in an assistant thread is answered from the course of the
// channel the student is viewing: the one the thread started in, then the
// one assistant_thread_context_changed moved it to. What the student asked
// stays remembered under the thread's own channel. A thread whose context
// is not known (started before a restart) uses the direct message's class.
func TestSlackAssistantThreadUsesTheViewedChannelsCourse(t *testing.T) {
	const other, third = "C0OTHER0001", "C0THIRD0001"
	var courses *courseLog
	f := setup(t, options{mode: bot.ModeAsync, botToken: botToken, open: true, courses: true,
		notes: func(m *store.Memory) bot.CourseNotes { courses = &courseLog{Memory: m}; return courses }})
	// The model searches the notes once per question, as it is told to.
	f.agent.useTools = func(ctx context.Context, a agent.Agent) {
		for _, tool := range a.Tools {
			_, _ = tool.Func(ctx, []byte(`{"query":"late policy"}`))
		}
	}
	ctx := t.Context()
	for _, name := range []string{"cs101", "cs202"} {
		if _, err := f.store.PutCourse(ctx, name, "/notes/"+name); err != nil {
			t.Fatal(err)
		}
	}
	for ch, name := range map[string]string{channel: "cs101", other: "cs202", third: "cs202"} {
		if err := f.store.BindCourse(ctx, name, store.Class{Platform: bot.PlatformSlack, Workspace: team, Channel: ch}); err != nil {
			t.Fatal(err)
		}
	}
	srv := f.eventsServer()
	thread := func(ts, viewing string) map[string]any {
		return map[string]any{"user_id": asker, "channel_id": imChan, "thread_ts": ts,
			"context": map[string]any{"channel_id": viewing, "team_id": team}}
	}
	n := 0
	ask := func(ts string) []string {
		t.Helper()
		n++
		q := callback(t, "Ev0CTXQ"+string(rune('0'+n)), map[string]any{
			"type": "message", "channel_type": "im", "user": asker, "text": "What is the late policy?",
			"ts": "1764648010.00000" + string(rune('0'+n)), "thread_ts": ts, "channel": imChan,
		})
		if status, _ := f.postEvent(srv.URL, q, time.Now(), 0); status != http.StatusOK {
			t.Fatalf("message.im = %d", status)
		}
		if err := f.slack.Wait(wait, func() bool { return f.agent.stats() == n && len(courses.channels()) >= n }); err != nil {
			t.Fatalf("question %d not searched: %v", n, err)
		}
		return courses.channels()
	}
	send := func(id string, inner map[string]any) {
		t.Helper()
		if status, _ := f.postEvent(srv.URL, callback(t, id, inner), time.Now(), 0); status != http.StatusOK {
			t.Fatalf("%s = %d", inner["type"], status)
		}
	}

	send("Ev0CTXSTART", map[string]any{"type": "assistant_thread_started", "event_ts": threadTS, "assistant_thread": thread(threadTS, channel)})
	if err := f.slack.Wait(wait, func() bool { return len(f.slack.APICalls("assistant.threads.setSuggestedPrompts")) == 1 }); err != nil {
		t.Fatalf("no greeting: %v", err)
	}
	if got := ask(threadTS); got[len(got)-1] != channel {
		t.Fatalf("courses looked up for %v, want the viewed channel %s's last", got, channel)
	}
	send("Ev0CTXMOVE", map[string]any{"type": "assistant_thread_context_changed", "event_ts": threadTS, "assistant_thread": thread(threadTS, other)})
	if got := ask(threadTS); got[len(got)-1] != other {
		t.Fatalf("courses looked up for %v, want the channel moved to, %s, last", got, other)
	}
	// The suggested prompts follow the course: set again for cs202, not
	// again for a third channel of the same course.
	if err := f.slack.Wait(wait, func() bool { return len(f.slack.APICalls("assistant.threads.setSuggestedPrompts")) == 2 }); err != nil {
		t.Fatalf("prompts not set again for the new course: %v", err)
	}
	if p := f.slack.APICalls("assistant.threads.setSuggestedPrompts")[1].Form; !strings.Contains(p.Get("prompts"), "cs202") || p.Get("thread_ts") != threadTS {
		t.Fatalf("prompts %v, want cs202's for the thread", p)
	}
	send("Ev0CTXMOVE2", map[string]any{"type": "assistant_thread_context_changed", "event_ts": threadTS, "assistant_thread": thread(threadTS, third)})
	if got := ask(threadTS); got[len(got)-1] != third {
		t.Fatalf("courses looked up for %v, want the channel moved to, %s, last", got, third)
	}
	if n := len(f.slack.APICalls("assistant.threads.setSuggestedPrompts")); n != 2 {
		t.Fatalf("%d setSuggestedPrompts calls, want 2: the course did not change", n)
	}
	// A thread this process knows nothing of: the direct message's class.
	if got := ask("1764640000.000900"); got[len(got)-1] != imChan {
		t.Fatalf("courses looked up for %v, want the direct message %s's last", got, imChan)
	}
	f.shutdown()
	if slices.Contains(courses.channels()[:3], imChan) {
		t.Errorf("the direct message's course was looked up for a thread with a context: %v", courses.channels())
	}
	// Memory stays the thread's: both questions of the thread are there.
	turns, err := f.store.AskTurns(ctx, store.AskKey{Platform: bot.PlatformSlack, Workspace: team, Channel: imChan, User: asker}, time.Time{}, 10)
	if err != nil || len(turns) != 4 {
		t.Fatalf("turns under the direct message: %d (%v), want 4", len(turns), err)
	}
}

// The context is kept in Slack too, in the metadata of classbot's
// greeting: a process that did not receive the thread's events (a
// restart, another replica) reads it there once (conversations.replies)
// and answers from the viewed channel's course.
func TestSlackAssistantContextSurvivesARestart(t *testing.T) {
	const other = "C0OTHER0001"
	var courses *courseLog
	f := setup(t, options{mode: bot.ModeAsync, botToken: botToken, open: true, courses: true,
		notes: func(m *store.Memory) bot.CourseNotes { courses = &courseLog{Memory: m}; return courses }})
	f.agent.useTools = func(ctx context.Context, a agent.Agent) {
		for _, tool := range a.Tools {
			_, _ = tool.Func(ctx, []byte(`{"query":"late policy"}`))
		}
	}
	srv := f.eventsServer()
	thread := map[string]any{"user_id": asker, "channel_id": imChan, "thread_ts": threadTS,
		"context": map[string]any{"channel_id": channel, "team_id": team}}
	f.postEvent(srv.URL, callback(t, "Ev0KEEP1", map[string]any{"type": "assistant_thread_started", "event_ts": threadTS, "assistant_thread": thread}), time.Now(), 0)
	if err := f.slack.Wait(wait, func() bool {
		m := f.slack.Streamed(imChan)
		return len(m) == 1 && strings.Contains(m[0].Metadata, `"channel_id":"`+channel+`"`)
	}); err != nil {
		t.Fatalf("greeting %+v: want the context %s in its metadata", f.slack.Streamed(imChan), channel)
	}
	thread["context"] = map[string]any{"channel_id": other, "team_id": team}
	f.postEvent(srv.URL, callback(t, "Ev0KEEP2", map[string]any{"type": "assistant_thread_context_changed", "event_ts": threadTS, "assistant_thread": thread}), time.Now(), 0)
	if err := f.slack.Wait(wait, func() bool {
		m := f.slack.Streamed(imChan)
		return len(m) == 1 && strings.Contains(m[0].Metadata, other)
	}); err != nil {
		t.Fatalf("the greeting's metadata does not follow the move to %s: %+v", other, f.slack.Streamed(imChan))
	}

	// A new process: same stand-in, same dispatcher, nothing remembered.
	restarted, err := slack.New(slack.Config{Courses: f.store, SigningSecret: secret, BotToken: botToken,
		APIURL: f.slack.APIURL, Dispatcher: f.disp, ResponseURLPrefixes: []string{f.slack.URL + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewServer(restarted.EventsHandler())
	t.Cleanup(srv2.Close)
	for i, ts := range []string{"1764648020.000001", "1764648020.000002"} {
		q := callback(t, "Ev0KEEPQ"+string(rune('1'+i)), map[string]any{
			"type": "message", "channel_type": "im", "user": asker, "text": "What is the late policy?",
			"ts": ts, "thread_ts": threadTS, "channel": imChan,
		})
		if status, _ := f.postEvent(srv2.URL, q, time.Now(), 0); status != http.StatusOK {
			t.Fatalf("message.im = %d", status)
		}
		if err := f.slack.Wait(wait, func() bool { return f.agent.stats() == i+1 }); err != nil {
			t.Fatal(err)
		}
	}
	f.shutdown()
	if got := courses.channels(); len(got) == 0 || got[0] != other {
		t.Fatalf("courses looked up for %v, want the context kept in Slack, %s", got, other)
	}
	if n := len(f.slack.APICalls("conversations.replies")); n != 1 {
		t.Fatalf("%d conversations.replies calls for two questions, want 1: read once, then remembered", n)
	}
}

package slack_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/slack"
	"github.com/classbot/classbot/bot/slack/slacktest"
	"github.com/classbot/classbot/store"
)

const (
	asker    = "U0STUDENT1"
	imChan   = "D0STUDENT1"
	threadTS = "1764648000.000100"
)

// eventsServer serves the adapter's EventsHandler.
func (f *fixture) eventsServer() *httptest.Server {
	srv := httptest.NewServer(f.adapter.EventsHandler())
	f.t.Cleanup(srv.Close)
	return srv
}

// callback is an event_callback around inner, as Slack sends it.
func callback(t *testing.T, eventID string, inner any) []byte {
	t.Helper()
	b, err := slacktest.EventCallback(team, eventID, inner)
	if err != nil {
		t.Fatal(err)
	}
	// The body parses as slack-go parses Slack's own.
	if _, err := slackevents.ParseEvent(json.RawMessage(b), slackevents.OptionNoVerifyToken()); err != nil {
		t.Fatalf("slackevents cannot parse %s: %v", b, err)
	}
	return b
}

func (f *fixture) postEvent(url string, body []byte, at time.Time, retry int) (int, []byte) {
	f.t.Helper()
	req, err := slacktest.NewEventRequest(f.t.Context(), url, secret, at, body, retry)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.do(req)
}

// posted returns the chat.postMessage calls in thread ts of channel ch.
func (f *fixture) posted(ch, ts string) []slacktest.Call {
	var out []slacktest.Call
	for _, c := range f.slack.APICalls("chat.postMessage") {
		if c.Form.Get("channel") == ch && c.Form.Get("thread_ts") == ts {
			out = append(out, c)
		}
	}
	return out
}

func TestSlackEventsURLVerificationAndSignature(t *testing.T) {
	f := setup(t, options{open: true, botToken: botToken})
	srv := f.eventsServer()
	body := []byte(`{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`)
	status, got := f.postEvent(srv.URL, body, time.Now(), 0)
	if status != http.StatusOK || string(got) != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Fatalf("url_verification = %d %q, want the challenge", status, got)
	}
	ev := callback(t, "Ev0BAD", map[string]any{"type": "app_mention", "user": asker, "text": "<@U0BOT0000> hi", "ts": threadTS, "channel": channel})
	if status, _ := f.postEvent(srv.URL, ev, time.Now().Add(-6*time.Minute), 0); status != http.StatusUnauthorized {
		t.Fatalf("stale event = %d, want 401", status)
	}
	req, _ := slacktest.NewEventRequest(t.Context(), srv.URL, "wrong-secret", time.Now(), ev, 0)
	if status, _ := f.do(req); status != http.StatusUnauthorized {
		t.Fatalf("badly signed event = %d, want 401", status)
	}
	f.shutdown()
	if n := f.agent.stats(); n != 0 {
		t.Fatalf("refused events reached the model %d times", n)
	}
}

func TestSlackAppMentionIsAnsweredInThread(t *testing.T) {
	f := setup(t, options{mode: bot.ModeAsync, botToken: botToken}) // the model waits for its gate
	f.agent.answerFunc = func(string) string { return "Homework 2 is due Friday. <!channel>" }
	srv := f.eventsServer()
	ev := callback(t, "Ev0MENTION1", map[string]any{
		"type": "app_mention", "user": asker, "text": "<@U0BOT0000> when is hw 2 due? &lt;!here&gt;",
		"ts": threadTS, "channel": channel, "event_ts": threadTS,
	})
	// Answered 200 while the model is still held: the answer comes later.
	if status, _ := f.postEvent(srv.URL, ev, time.Now(), 0); status != http.StatusOK {
		t.Fatalf("event = %d, want 200", status)
	}
	f.waitModel(1)
	if in := f.agent.lastInput(); !strings.Contains(in, "when is hw 2 due? <!here>") || strings.Contains(in, "U0BOT0000") {
		t.Fatalf("the model got %q, want the plain question without the mention", in)
	}
	// Slack's retry of the same event is answered 200 and not worked on.
	if status, _ := f.postEvent(srv.URL, ev, time.Now(), 1); status != http.StatusOK {
		t.Fatalf("retry = %d, want 200", status)
	}
	f.agent.open()
	if err := f.slack.Wait(wait, func() bool { return len(f.posted(channel, threadTS)) == 1 }); err != nil {
		t.Fatalf("no answer in the thread: %v", err)
	}
	f.shutdown()
	posts := f.posted(channel, threadTS)
	if len(posts) != 1 {
		t.Fatalf("%d answers for one event delivered twice, want 1", len(posts))
	}
	text := posts[0].Form.Get("text")
	if !strings.Contains(text, "Homework 2 is due Friday") || strings.Contains(text, "<!channel>") {
		t.Fatalf("answer %q: want the answer, with the model's <!channel> escaped", text)
	}
	if n := f.agent.stats(); n != 1 {
		t.Fatalf("model called %d times, want 1", n)
	}
	if n := len(f.slack.APICalls("assistant.threads.setStatus")); n != 0 {
		t.Fatalf("%d setStatus calls in a channel thread, want 0", n)
	}
	in, err := f.store.GetInteraction(t.Context(), bot.PlatformSlack, "Ev0MENTION1")
	if err != nil || in.Command != "ask" {
		t.Fatalf("ledger row %+v, %v; want an ask under the event id", in, err)
	}
}

// A mention whose model streams its answer in pieces gets it in the
// thread as one streamed message (chat.startStream, appendStream,
// stopStream) showing the whole answer, escaped, and no other post.
func TestSlackAppMentionAnswerStreams(t *testing.T) {
	f := setup(t, options{mode: bot.ModeAsync, botToken: botToken, open: true})
	f.agent.parts = []string{"Homework 2 ", "is due <!chan", "nel> Friday & ", "not later."}
	final := "Homework 2 is due <!channel> Friday & not later."
	srv := f.eventsServer()
	ev := callback(t, "Ev0MENTION2", map[string]any{
		"type": "app_mention", "user": asker, "text": "<@U0BOT0000> when is hw 2 due?",
		"ts": threadTS, "channel": channel, "event_ts": threadTS,
	})
	if status, _ := f.postEvent(srv.URL, ev, time.Now(), 0); status != http.StatusOK {
		t.Fatalf("event = %d, want 200", status)
	}
	f.shutdown()
	msgs := f.slack.Streamed(channel)
	if len(msgs) != 1 {
		t.Fatalf("%d messages in the channel, want 1 streamed: %+v", len(msgs), msgs)
	}
	m := msgs[0]
	if !m.Stopped || m.Updated || m.ThreadTS != threadTS || m.RecipientUserID != asker || m.RecipientTeamID != team {
		t.Errorf("message %+v: want a stopped stream in the thread, for the asker", m)
	}
	if m.Text != slack.Escape(final) || strings.Contains(m.Text, "<!channel>") {
		t.Errorf("message shows %q, want %q", m.Text, slack.Escape(final))
	}
	for _, method := range []string{"chat.startStream", "chat.appendStream", "chat.stopStream"} {
		if len(f.slack.APICalls(method)) == 0 {
			t.Errorf("no %s call", method)
		}
	}
	if n := len(f.posted(channel, threadTS)); n != 0 {
		t.Errorf("%d chat.postMessage calls besides the stream, want 0", n)
	}
}

func TestSlackAssistantThread(t *testing.T) {
	f := setup(t, options{mode: bot.ModeAsync, botToken: botToken, courses: true})
	ctx := t.Context()
	if _, err := f.store.PutCourse(ctx, "cs101", "/notes/cs101"); err != nil {
		t.Fatal(err)
	}
	if err := f.store.BindCourse(ctx, "cs101", store.Class{Platform: bot.PlatformSlack, Workspace: team, Channel: channel}); err != nil {
		t.Fatal(err)
	}
	srv := f.eventsServer()

	started := callback(t, "Ev0START1", map[string]any{
		"type": "assistant_thread_started", "event_ts": threadTS,
		"assistant_thread": map[string]any{"user_id": asker, "channel_id": imChan, "thread_ts": threadTS,
			"context": map[string]any{"channel_id": channel, "team_id": team}},
	})
	if status, _ := f.postEvent(srv.URL, started, time.Now(), 0); status != http.StatusOK {
		t.Fatalf("assistant_thread_started = %d", status)
	}
	f.postEvent(srv.URL, started, time.Now(), 1) // a retry greets no one twice
	if len(f.posted(imChan, threadTS)) != 1 {
		t.Fatalf("%d greetings, want 1", len(f.posted(imChan, threadTS)))
	}
	sp := f.slack.APICalls("assistant.threads.setSuggestedPrompts")
	if len(sp) != 1 || sp[0].Form.Get("channel_id") != imChan || sp[0].Form.Get("thread_ts") != threadTS {
		t.Fatalf("setSuggestedPrompts calls %+v, want one for the thread", sp)
	}
	var prompts []slackgo.AssistantThreadsPrompt
	if err := json.Unmarshal([]byte(sp[0].Form.Get("prompts")), &prompts); err != nil || len(prompts) != 3 {
		t.Fatalf("prompts %q: %v, want three", sp[0].Form.Get("prompts"), err)
	}
	if !strings.Contains(prompts[0].Title+prompts[0].Message, "cs101") || prompts[1].Message != "When is the next deadline?" {
		t.Fatalf("prompts %+v: want the course's name and the next deadline", prompts)
	}

	// A question in the thread: status while the model works, then the
	// answer in the thread.
	q := callback(t, "Ev0IM1", map[string]any{
		"type": "message", "channel_type": "im", "user": asker, "text": "What is the late policy?",
		"ts": "1764648001.000200", "thread_ts": threadTS, "channel": imChan,
	})
	if status, _ := f.postEvent(srv.URL, q, time.Now(), 0); status != http.StatusOK {
		t.Fatalf("message.im = %d", status)
	}
	f.waitModel(1)
	if err := f.slack.Wait(wait, func() bool { return len(f.slack.APICalls("assistant.threads.setStatus")) == 1 }); err != nil {
		t.Fatalf("no status while the model works: %v", err)
	}
	st := f.slack.APICalls("assistant.threads.setStatus")[0]
	if st.Form.Get("status") != slack.StatusText || st.Form.Get("thread_ts") != threadTS || st.Form.Get("channel_id") != imChan {
		t.Fatalf("setStatus %v", st.Form)
	}
	if n := len(f.posted(imChan, threadTS)); n != 1 {
		t.Fatalf("%d posts in the thread before the model answered, want the greeting only", n)
	}
	f.agent.open()
	if err := f.slack.Wait(wait, func() bool { return len(f.posted(imChan, threadTS)) == 2 }); err != nil {
		t.Fatalf("no answer in the assistant thread: %v", err)
	}

	// classbot's own messages, edits and other channel types are not questions.
	for i, inner := range []map[string]any{
		{"type": "message", "channel_type": "im", "bot_id": "B0BOT0000", "text": "Welcome", "ts": "1764648002.000300", "thread_ts": threadTS, "channel": imChan},
		{"type": "message", "channel_type": "im", "subtype": "message_changed", "ts": "1764648003.000400", "channel": imChan},
		{"type": "message", "channel_type": "channel", "user": asker, "text": "hi", "ts": "1764648004.000500", "channel": channel},
	} {
		f.postEvent(srv.URL, callback(t, "Ev0OTHER"+string(rune('A'+i)), inner), time.Now(), 0)
	}
	f.shutdown()
	if n := f.agent.stats(); n != 1 {
		t.Fatalf("model called %d times, want 1", n)
	}
}

// The same events over Socket Mode: acknowledged at once, answered in the
// thread, a redelivered envelope answered once.
func TestSlackEventsOverSocketMode(t *testing.T) {
	f := setup(t, options{mode: bot.ModeAsync, open: true, botToken: botToken, appToken: appToken})
	stop := f.runSocket()
	defer stop()
	ev := callback(t, "Ev0SOCK1", map[string]any{
		"type": "app_mention", "user": asker, "text": "<@U0BOT0000> when is hw 2 due?", "ts": threadTS, "channel": channel,
	})
	env, n := f.slack.SendEvent(ev)
	if n != 1 {
		t.Fatalf("envelope sent on %d connections", n)
	}
	if _, err := f.slack.WaitAck(wait, env); err != nil {
		t.Fatalf("no ack: %v", err)
	}
	if err := f.slack.Wait(wait, func() bool { return len(f.posted(channel, threadTS)) == 1 }); err != nil {
		t.Fatalf("no answer in the thread: %v", err)
	}
	env2, _ := f.slack.SendEvent(ev)
	if _, err := f.slack.WaitAck(wait, env2); err != nil {
		t.Fatalf("no ack of the redelivery: %v", err)
	}
	f.shutdown()
	if n := len(f.posted(channel, threadTS)); n != 1 {
		t.Fatalf("%d answers for one event delivered twice", n)
	}
}

// waitModel polls, up to wait, until the model has had n calls.
func (f *fixture) waitModel(n int) {
	f.t.Helper()
	deadline := time.Now().Add(wait)
	for f.agent.stats() < n {
		if time.Now().After(deadline) {
			f.t.Fatalf("the model got %d calls, want %d", f.agent.stats(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// In queue mode a worker reopens an event's Responder from its address
// and answers in the thread once, however often the job runs.
func TestSlackThreadReopenedAnswersOnce(t *testing.T) {
	w := setupWorker(t, botToken)
	raw, err := slack.ThreadResponder(w.adapter, imChan, asker, threadTS, true).(bot.Addressed).Address()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), botToken) {
		t.Fatalf("address %s holds the bot token", raw)
	}
	c := bot.Command{Platform: bot.PlatformSlack, InteractionID: "Ev0Q1", Workspace: team, Channel: imChan, User: asker, Name: "ask"}
	log := &memPostLog{}
	for range 2 {
		r, err := w.adapter.Reopen(t.Context(), c, raw)
		if err != nil {
			t.Fatal(err)
		}
		r.(bot.PostLogger).UsePostLog(log)
		if err := r.FollowUp(t.Context(), bot.Reply{Text: "Friday. <!channel>"}); err != nil {
			t.Fatal(err)
		}
	}
	posts := w.slack.APICalls("chat.postMessage")
	if len(posts) != 1 || posts[0].Form.Get("thread_ts") != threadTS || posts[0].Form.Get("channel") != imChan {
		t.Fatalf("posts %+v, want one in the thread", posts)
	}
	if text := posts[0].Form.Get("text"); strings.Contains(text, "<!channel>") {
		t.Fatalf("answer %q not escaped", text)
	}
	// Without a bot token nothing can post in a thread: Reopen says so.
	w2 := setupWorker(t, "")
	if _, err := w2.adapter.Reopen(t.Context(), c, raw); err == nil {
		t.Fatal("a thread answer was reopened without a bot token")
	}
}

package slack_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/slack"
	"github.com/classbot/classbot/bot/slack/slacktest"
)

// clock is a settable Config.NowFunc.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// worker is what a queue worker has: an adapter configured like the one
// that received the command, a stand-in for Slack, and a clock.
type worker struct {
	t       *testing.T
	slack   *slacktest.Server
	adapter *slack.Adapter
	clock   *clock
	logs    *logBuffer
	// received is the commands' ReceivedAt; the clock starts a minute later.
	received time.Time
}

func setupWorker(t *testing.T, botToken string) *worker {
	t.Helper()
	w := &worker{t: t, slack: slacktest.New(), logs: &logBuffer{}, received: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	t.Cleanup(w.slack.Close)
	w.clock = &clock{now: w.received.Add(time.Minute)}
	var err error
	w.adapter, err = slack.New(slack.Config{
		BotToken: botToken, APIURL: w.slack.APIURL, ResponseURLPrefixes: []string{w.slack.URL + "/"},
		Logger:  slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		NowFunc: w.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// slashCommand is a command as Slack sends it, its response_url at the stand-in.
func (w *worker) slashCommand(trigger string) slackgo.SlashCommand {
	return slackgo.SlashCommand{
		Command: "/ask", Text: "what is due friday?", TriggerID: trigger, ResponseURL: w.slack.ResponseURL(trigger),
		TeamID: team, ChannelID: channel, UserID: "U0STUDENT1",
	}
}

// command is sc as the adapter hands it to the Dispatcher.
func (w *worker) command(sc slackgo.SlashCommand) bot.Command {
	return bot.Command{
		Platform: bot.PlatformSlack, InteractionID: sc.TriggerID, Workspace: sc.TeamID, Channel: sc.ChannelID,
		User: sc.UserID, Name: "ask", Text: sc.Text, ReceivedAt: w.received,
	}
}

// reopen does what a queue worker does with a command received by an
// HTTP responder: Address, then Reopen from that JSON.
func (w *worker) reopen(trigger string) bot.Responder {
	w.t.Helper()
	sc := w.slashCommand(trigger)
	addr, err := slack.Responders(w.adapter, sc)["http"].(bot.Addressed).Address()
	if err != nil {
		w.t.Fatal(err)
	}
	r, err := w.adapter.Reopen(w.t.Context(), w.command(sc), addr)
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

// noSecrets fails if the response_url of trigger, or its path (the
// credential), shows in err or in the logs.
func (w *worker) noSecrets(trigger string, err error) {
	w.t.Helper()
	url := w.slack.ResponseURL(trigger)
	path := strings.TrimPrefix(url, w.slack.URL)
	for what, s := range map[string]string{"error": errString(err), "logs": w.logs.String()} {
		if strings.Contains(s, path) {
			w.t.Fatalf("the response_url shows in the %s: %s", what, s)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestSlackAddressReopensToTheSameResponseURL(t *testing.T) {
	w := setupWorker(t, "")
	for kind, r := range slack.Responders(w.adapter, w.slashCommand("7700000000001.1.address")) {
		t.Run(kind, func(t *testing.T) {
			a, ok := r.(bot.Addressed)
			if !ok {
				t.Fatalf("%T does not implement bot.Addressed", r)
			}
			raw, err := a.Address()
			if err != nil {
				t.Fatal(err)
			}
			if len(raw) > 400 {
				t.Errorf("address is %d bytes, want a small object: %s", len(raw), raw)
			}
			var got map[string]string
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatalf("address %s: %v", raw, err)
			}
			for _, want := range []string{w.slack.ResponseURL("7700000000001.1.address"), channel, "U0STUDENT1", team, "7700000000001.1.address"} {
				found := false
				for _, v := range got {
					found = found || v == want
				}
				if !found {
					t.Errorf("address %s lacks %q", raw, want)
				}
			}
		})
	}

	trigger := "7700000000001.1.roundtrip"
	r := w.reopen(trigger)
	if err := r.FollowUp(t.Context(), bot.Reply{Text: "Read <chapter 3> & 4"}); err != nil {
		t.Fatal(err)
	}
	posts := w.slack.Posts(trigger)
	if len(posts) != 1 {
		t.Fatalf("%d posts to the response_url, want 1", len(posts))
	}
	m := message(t, posts[0])
	if !m.ReplaceOriginal || m.Text != "Read &lt;chapter 3&gt; &amp; 4" || m.ResponseType != "in_channel" {
		t.Fatalf("post %+v, want the escaped answer in_channel with replace_original", m)
	}
	if r.Ack(t.Context(), bot.Reply{}) == nil || r.Respond(t.Context(), bot.Reply{Text: "x"}) == nil {
		t.Fatal("a reopened Responder's Ack and Respond succeeded; the first response was given long ago")
	}
	if got := len(w.slack.Posts(trigger)); got != 1 {
		t.Fatalf("Ack or Respond posted: %d posts", got)
	}
}

func TestSlackReopenedFollowUpTwiceLeavesOneAnswer(t *testing.T) {
	w := setupWorker(t, botToken)
	trigger := "7700000000001.2.twice"
	// A job that posted, crashed before recording it, and ran again:
	// each run reopens from the stored address.
	for _, text := range []string{"Welcome, Ada! (first run)", "Welcome, Ada! (second run)"} {
		if err := w.reopen(trigger).FollowUp(t.Context(), bot.Reply{Text: text, Ephemeral: true}); err != nil {
			t.Fatal(err)
		}
	}
	posts := w.slack.Posts(trigger)
	if len(posts) != 2 {
		t.Fatalf("%d posts, want 2", len(posts))
	}
	for i, p := range posts {
		if m := message(t, p); !m.ReplaceOriginal || m.ResponseType != "ephemeral" {
			t.Fatalf("post %d: %+v, want replace_original, ephemeral", i+1, m)
		}
	}
	if v := w.slack.Visible(trigger); len(v) != 1 || v[0].Text != "Welcome, Ada! (second run)" {
		t.Fatalf("visible %+v, want only the second run's answer", v)
	}
	if n := len(w.slack.APICalls("chat.postEphemeral")); n != 0 {
		t.Fatalf("%d chat.postEphemeral calls, want none", n)
	}
}

func TestSlackReopenedLongAnswerIsOneMessage(t *testing.T) {
	w := setupWorker(t, botToken)
	trigger := "7700000000001.3.long"
	text := strings.Repeat("Office hours are on Tuesday <room 4> & Thursday.\n", 1000) // 50,000 characters
	if err := w.reopen(trigger).FollowUp(t.Context(), bot.Reply{Text: text}); err != nil {
		t.Fatal(err)
	}
	posts := w.slack.Posts(trigger)
	if len(posts) != 1 {
		t.Fatalf("%d posts, want the whole answer in 1", len(posts))
	}
	m := message(t, posts[0])
	escapedOnly(t, m.Text)
	if n := len([]rune(m.Text)); n > slack.MaxFollowUpLen || n < slack.MaxFollowUpLen-200 {
		t.Fatalf("message has %d characters, want close to %d", n, slack.MaxFollowUpLen)
	}
	if !strings.HasSuffix(m.Text, "…") || !strings.HasPrefix(unescape(m.Text), "Office hours are on Tuesday <room 4> & Thursday.\n") {
		t.Fatalf("message %.80q…%q: want the answer's start, cut with …", m.Text, m.Text[len(m.Text)-20:])
	}
}

func TestSlackReopenedExpiry(t *testing.T) {
	const student = "U0STUDENT1"
	tests := []struct {
		name     string
		late     time.Duration // how long after the command the worker runs
		status   int           // what the response_url answers, if not 0
		body     string
		wantPost bool // a post reached the response_url first
	}{
		{"window passed", slack.ResponseURLLife - slack.ExpiryMargin + time.Second, 0, "", false},
		{"window nearly over", slack.ResponseURLLife - 10*time.Second, 0, "", false},
		{"404 expired_url", 5 * time.Minute, http.StatusNotFound, "expired_url", true},
		{"410", 5 * time.Minute, http.StatusGone, "gone", true},
		{"used_url", 5 * time.Minute, http.StatusBadRequest, "used_url", true},
	}
	for _, tt := range tests {
		for _, withToken := range []bool{true, false} {
			name := tt.name + "/no bot token"
			token := ""
			if withToken {
				name, token = tt.name+"/bot token", botToken
			}
			t.Run(name, func(t *testing.T) {
				w := setupWorker(t, token)
				trigger := "7700000000001.4.expired"
				if tt.status != 0 {
					w.slack.FailResponseURLWith(trigger, tt.status, tt.body)
				}
				r := w.reopen(trigger)
				w.clock.set(w.received.Add(tt.late))
				err := r.FollowUp(t.Context(), bot.Reply{Text: "Welcome, Ada <ada@example.com>", Ephemeral: true})

				if got := len(w.slack.Posts(trigger)); got != map[bool]int{true: 1, false: 0}[tt.wantPost] {
					t.Fatalf("%d posts to the response_url, want %v", got, tt.wantPost)
				}
				if v := w.slack.Visible(trigger); len(v) != 0 {
					t.Fatalf("the dead response_url shows %+v", v)
				}
				eph := w.slack.APICalls("chat.postEphemeral")
				if withToken {
					if err != nil {
						t.Fatalf("FollowUp: %v, want the answer sent with chat.postEphemeral", err)
					}
					if len(eph) != 1 {
						t.Fatalf("%d chat.postEphemeral calls, want 1", len(eph))
					}
					f := eph[0].Form
					if f.Get("channel") != channel || f.Get("user") != student || f.Get("text") != "Welcome, Ada &lt;ada@example.com&gt;" {
						t.Fatalf("chat.postEphemeral %v, want the escaped answer to %s in %s", f, student, channel)
					}
				} else {
					if !errors.Is(err, bot.ErrExpired) {
						t.Fatalf("FollowUp: %v, want an error wrapping bot.ErrExpired", err)
					}
					if len(eph) != 0 {
						t.Fatalf("%d chat.postEphemeral calls without a bot token", len(eph))
					}
				}
				w.noSecrets(trigger, err)
			})
		}
	}
}

func TestSlackReopenedWithinWindowPosts(t *testing.T) {
	w := setupWorker(t, botToken)
	trigger := "7700000000001.5.intime"
	r := w.reopen(trigger)
	w.clock.set(w.received.Add(slack.ResponseURLLife - slack.ExpiryMargin - time.Second))
	if err := r.FollowUp(t.Context(), bot.Reply{Text: "Welcome!"}); err != nil {
		t.Fatal(err)
	}
	if len(w.slack.Posts(trigger)) != 1 || len(w.slack.APICalls("chat.postEphemeral")) != 0 {
		t.Fatalf("posts %d, chat.postEphemeral %d: want the response_url used while it lives",
			len(w.slack.Posts(trigger)), len(w.slack.APICalls("chat.postEphemeral")))
	}
}

func TestSlackReopenedTransientFailureIsRetried(t *testing.T) {
	w := setupWorker(t, botToken)
	trigger := "7700000000001.6.flaky"
	w.slack.FailResponseURLWith(trigger, http.StatusInternalServerError, "internal_error")
	err := w.reopen(trigger).FollowUp(t.Context(), bot.Reply{Text: "Welcome!"})
	if err == nil || errors.Is(err, bot.ErrExpired) {
		t.Fatalf("FollowUp: %v, want an error for a retry, not ErrExpired", err)
	}
	if n := len(w.slack.APICalls("chat.postEphemeral")); n != 0 {
		t.Fatalf("%d chat.postEphemeral calls: a retry of the job would show the answer twice", n)
	}
	w.noSecrets(trigger, err)

	// The retry, once Slack is back, replaces rather than adds.
	w.slack.FailResponseURLWith(trigger, 0, "")
	if err := w.reopen(trigger).FollowUp(t.Context(), bot.Reply{Text: "Welcome!"}); err != nil {
		t.Fatal(err)
	}
	if v := w.slack.Visible(trigger); len(v) != 1 {
		t.Fatalf("visible %+v, want one answer", v)
	}
}

func TestSlackReopenRefusesBadAddresses(t *testing.T) {
	w := setupWorker(t, botToken)
	c := w.command(w.slashCommand("7700000000001.7.bad"))
	for name, raw := range map[string]string{
		"not JSON":              `{"url":`,
		"url outside prefixes":  `{"url":"https://evil.example/commands/x"}`,
		"url with user info":    `{"url":"` + strings.Replace(w.slack.URL, "http://", "http://u:p@", 1) + `/commands/x"}`,
		"url with dot segments": `{"url":"` + w.slack.URL + `/commands/../../x"}`,
	} {
		t.Run(name, func(t *testing.T) {
			r, err := w.adapter.Reopen(t.Context(), c, json.RawMessage(raw))
			if err == nil {
				t.Fatalf("Reopen(%s) = %T, want an error", raw, r)
			}
			if strings.Contains(err.Error(), "evil.example") || strings.Contains(err.Error(), "/commands/") {
				t.Fatalf("error shows the URL: %v", err)
			}
		})
	}
	if n := len(w.slack.Calls()); n != 0 {
		t.Fatalf("the stand-in got %d calls", n)
	}
}

func TestSlackReopenedEphemeralRefused(t *testing.T) {
	w := setupWorker(t, "xoxp-not-a-bot-token") // the stand-in answers not_authed
	trigger := "7700000000001.8.refused"
	r := w.reopen(trigger)
	w.clock.set(w.received.Add(slack.ResponseURLLife))
	err := r.FollowUp(t.Context(), bot.Reply{Text: "Welcome!"})
	if !errors.Is(err, bot.ErrExpired) {
		t.Fatalf("FollowUp: %v, want bot.ErrExpired: Slack refused the only other way", err)
	}
	if n := len(w.slack.APICalls("chat.postEphemeral")); n != 1 {
		t.Fatalf("%d chat.postEphemeral calls, want 1", n)
	}
	if n := len(w.slack.Posts(trigger)); n != 0 {
		t.Fatalf("%d posts to the expired response_url", n)
	}
	w.noSecrets(trigger, err)
}

// memPostLog is a bot.PostLog in memory, as the queue keeps one per command.
type memPostLog struct {
	mu    sync.Mutex
	posts map[string]string
}

func (l *memPostLog) Posted(kind string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.posts[kind]
}

func (l *memPostLog) RecordPost(_ context.Context, kind, id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.posts == nil {
		l.posts = map[string]string{}
	}
	l.posts[kind] = id
	return nil
}

// The chat.postEphemeral fallback is recorded as it is made, and a later
// attempt of the same command, finding it, posts nothing more.
func TestSlackReopenedFallbackIsPostedOnce(t *testing.T) {
	w := setupWorker(t, botToken)
	trigger := "7700000000001.9.fallback"
	w.slack.FailResponseURLWith(trigger, http.StatusNotFound, "expired_url")
	log := &memPostLog{}
	for attempt := 1; attempt <= 2; attempt++ {
		r := w.reopen(trigger)
		pl, ok := r.(bot.PostLogger)
		if !ok {
			t.Fatal("a reopened Slack responder takes no PostLog")
		}
		pl.UsePostLog(log)
		if err := r.FollowUp(t.Context(), bot.Reply{Text: "Welcome!", Ephemeral: true}); err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
		if n := len(w.slack.APICalls("chat.postEphemeral")); n != 1 {
			t.Fatalf("after attempt %d: %d chat.postEphemeral calls, want 1", attempt, n)
		}
	}
	if log.Posted("slack_ephemeral") == "" {
		t.Error("the fallback was not recorded")
	}
}

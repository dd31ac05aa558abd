package slack_test

import (
	"bytes"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/slack"
	"github.com/classbot/classbot/bot/slack/slacktest"
	"github.com/classbot/classbot/store"
)

func TestSlackHTTPRefusals(t *testing.T) {
	tests := []struct {
		name   string
		req    func(f *fixture, body []byte) *http.Request
		status int
		reason string
		now    func() time.Time
	}{
		{"bad signature", func(f *fixture, b []byte) *http.Request {
			r, _ := slacktest.NewRequest(t.Context(), f.srv.URL, "not-the-secret", time.Now(), b)
			return r
		}, http.StatusUnauthorized, slack.RefuseBadSignature, nil},
		{"body changed after signing", func(f *fixture, b []byte) *http.Request {
			r := f.signed(b, time.Now())
			forged := f.signed(bytes.Replace(b, []byte("Ada+Lovelace"), []byte("Eve+Mallory!"), 1), time.Now())
			forged.Header = r.Header
			return forged
		}, http.StatusUnauthorized, slack.RefuseBadSignature, nil},
		{"signature not hex", func(f *fixture, b []byte) *http.Request {
			r := f.signed(b, time.Now())
			r.Header.Set("X-Slack-Signature", "v0=zz")
			return r
		}, http.StatusUnauthorized, slack.RefuseBadSignature, nil},
		{"missing headers", func(f *fixture, b []byte) *http.Request {
			r := f.signed(b, time.Now())
			r.Header.Del("X-Slack-Signature")
			r.Header.Del("X-Slack-Request-Timestamp")
			return r
		}, http.StatusUnauthorized, slack.RefuseMissingSignature, nil},
		{"stale timestamp", func(f *fixture, b []byte) *http.Request {
			return f.signed(b, time.Now().Add(-6*time.Minute))
		}, http.StatusUnauthorized, slack.RefuseStale, nil},
		{"future timestamp", func(f *fixture, b []byte) *http.Request {
			return f.signed(b, time.Now().Add(6*time.Minute))
		}, http.StatusUnauthorized, slack.RefuseStale, nil},
		{"timestamp off by Config.NowFunc", func(f *fixture, b []byte) *http.Request {
			return f.signed(b, time.Now())
		}, http.StatusUnauthorized, slack.RefuseStale, func() time.Time { return time.Now().Add(10 * time.Minute) }},
		{"oversized body", func(f *fixture, b []byte) *http.Request {
			big := append(append(b[:len(b):len(b)], "&pad="...), bytes.Repeat([]byte("a"), 65<<10)...)
			return f.signed(big, time.Now())
		}, http.StatusRequestEntityTooLarge, slack.RefuseTooLarge, nil},
		{"garbage body", func(f *fixture, _ []byte) *http.Request {
			return f.signed([]byte("%zz&&=%%%"), time.Now())
		}, http.StatusBadRequest, slack.RefuseBadBody, nil},
		{"JSON body", func(f *fixture, _ []byte) *http.Request {
			return f.signed([]byte(`{"command":"/register","trigger_id":"1.2.3"}`), time.Now())
		}, http.StatusBadRequest, slack.RefuseBadBody, nil},
		{"no trigger_id", func(f *fixture, b []byte) *http.Request {
			return f.signed(bytes.Replace(b, []byte("trigger_id="), []byte("xtrigger_id="), 1), time.Now())
		}, http.StatusBadRequest, slack.RefuseBadBody, nil},
		{"no command", func(f *fixture, b []byte) *http.Request {
			return f.signed(bytes.Replace(b, []byte("command=%2Fregister"), []byte("command="), 1), time.Now())
		}, http.StatusBadRequest, slack.RefuseBadBody, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t, options{open: true, botToken: botToken, now: tt.now})
			trigger := "7712345678901.7700000000001.refused"
			status, body := f.do(tt.req(f, f.command(registerForm, trigger, nil)))
			if status != tt.status {
				t.Fatalf("status %d (%s), want %d", status, body, tt.status)
			}
			if n, _ := f.store.CountRegistrations(t.Context()); n != 0 {
				t.Fatalf("%d registrations after a refusal, want none", n)
			}
			if _, err := f.store.GetInteraction(t.Context(), bot.PlatformSlack, trigger); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("ledger lookup after a refusal: %v, want ErrNotFound", err)
			}
			if calls := f.agent.stats(); calls != 0 {
				t.Fatalf("the agent was called %d times after a refusal", calls)
			}
			f.shutdown()
			if n := len(f.slack.Calls()); n != 0 {
				t.Fatalf("Slack got %d calls after a refusal", n)
			}
			if got := f.refusals(); !slices.Equal(got, []string{tt.reason}) {
				t.Fatalf("OnRefuseFunc got %q, want [%q]", got, tt.reason)
			}
		})
	}
}

func TestSlackHTTPRegisterAsync(t *testing.T) {
	f := setup(t, options{mode: bot.ModeAsync}) // the agent waits for its gate…
	f.agent.releaseAfter = 5 * time.Second      // …or 5 s, if the adapter waits for it
	trigger := "7712345678901.7700000000001.async"
	status, body := f.post(f.command(registerForm, trigger, nil))
	f.events.add("ack")
	if status != http.StatusOK {
		t.Fatalf("status %d %s", status, body)
	}
	if ack := decode(t, body); ack.ResponseType != "ephemeral" || ack.Text != "Registering you…" {
		t.Fatalf("acknowledgement %s, want an ephemeral \"Registering you…\"", body)
	}
	if n := len(f.slack.Calls()); n != 0 {
		t.Fatalf("Slack got %d calls before the model answered", n)
	}

	// Slack retries a command it did not see answered in time: same
	// trigger_id, X-Slack-Retry-Num set. It arrives while the first is
	// still being worked on.
	retry := f.signed(f.command(registerForm, trigger, nil), time.Now())
	retry.Header.Set("X-Slack-Retry-Num", "1")
	retry.Header.Set("X-Slack-Retry-Reason", "http_timeout")
	status, body = f.do(retry)
	if status != http.StatusOK || len(body) != 0 {
		t.Fatalf("retried delivery = %d %q, want 200 with an empty body", status, body)
	}

	f.agent.open()
	posts, err := f.slack.WaitPosts(wait, trigger, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !f.events.before("ack", "model answered") {
		t.Fatalf("events %s: the acknowledgement waited for the model", f.events)
	}
	m := message(t, posts[0])
	if m.ResponseType != "ephemeral" {
		t.Fatalf("follow-up response_type %q, want ephemeral: it shows the email", m.ResponseType)
	}
	if !strings.Contains(m.Text, "Ada Lovelace") || !strings.Contains(m.Text, "ada@example.com") || !strings.Contains(m.Text, "Welcome to the class!") {
		t.Fatalf("follow-up %q lacks the name, the email or the welcome", m.Text)
	}
	reg, ok := f.registration("U0A1B2C3D4E")
	if !ok || reg.Name != "Ada Lovelace" || reg.Email != "ada@example.com" || reg.Channel != channel {
		t.Fatalf("registration %+v (found %v)", reg, ok)
	}

	f.shutdown() // every follow-up that will be posted has been
	if n := len(f.slack.Posts(trigger)); n != 1 {
		t.Fatalf("%d follow-ups for one command delivered twice, want 1", n)
	}
	if calls := f.agent.stats(); calls != 1 {
		t.Fatalf("agent called %d times for one command delivered twice", calls)
	}
	if n, _ := f.store.CountRegistrations(t.Context()); n != 1 {
		t.Fatalf("%d registrations, want 1", n)
	}
	in, err := f.store.GetInteraction(t.Context(), bot.PlatformSlack, trigger)
	if err != nil || in.Outcome != bot.OutcomeOK || in.Workspace != team || in.Command != "register" {
		t.Fatalf("ledger row %+v, %v", in, err)
	}
}

func TestSlackHTTPRegisterSync(t *testing.T) {
	f := setup(t, options{mode: bot.ModeSync, open: true})
	trigger := "7712345678901.7700000000001.sync"
	status, body := f.post(f.command(registerForm, trigger, nil))
	if status != http.StatusOK {
		t.Fatalf("status %d %s", status, body)
	}
	m := decode(t, body)
	if m.ResponseType != "ephemeral" || !strings.Contains(m.Text, "Welcome to the class!") || !strings.Contains(m.Text, "ada@example.com") {
		t.Fatalf("sync answer %s, want the ephemeral welcome", body)
	}
	if _, ok := f.registration("U0A1B2C3D4E"); !ok {
		t.Fatal("not registered")
	}
	f.shutdown()
	if n := len(f.slack.Calls()); n != 0 {
		t.Fatalf("sync mode made %d calls for a short answer, want 0", n)
	}
}

func TestSlackHTTPHelp(t *testing.T) {
	f := setup(t, options{open: true})
	for _, tt := range []struct{ command, text string }{{"/frobnicate", "x"}, {"/register", ""}} {
		status, body := f.post(f.command(registerForm, "help-"+tt.command, map[string]string{"command": tt.command, "text": tt.text}))
		m := decode(t, body)
		if status != http.StatusOK || m.ResponseType != "ephemeral" || m.Text == "" {
			t.Fatalf("%s %q = %d %s, want an ephemeral answer", tt.command, tt.text, status, body)
		}
		escapedOnly(t, m.Text)
	}
	if calls := f.agent.stats(); calls != 0 {
		t.Fatal("help called the model")
	}
}

func TestSlackMentionsAreEscaped(t *testing.T) {
	// Names as the students typed them; Slack sends them with &, < and >
	// escaped, and they must come back as text, never as markup.
	names := []string{"<!channel>", "<!here|here>", "<#C123|general> Ada", "Tom & Jerry", "<https://evil.example|click>", "&lt;b&gt;"}
	for _, mode := range []bot.Mode{bot.ModeAsync, bot.ModeSync} {
		t.Run(string(mode), func(t *testing.T) {
			f := setup(t, options{mode: mode, open: true})
			// The model echoes the name and tries a ping of its own.
			f.agent.answerFunc = func(in string) string {
				_, name, _ := strings.Cut(in, "Student name: ")
				return "Hello " + name + " <!everyone>"
			}
			for i, name := range names {
				trigger := "escape-" + string(mode) + "-" + string(rune('a'+i))
				user := "U00000000" + string(rune('A'+i))
				status, body := f.post(f.command(registerForm, trigger, map[string]string{"text": slack.Escape(name) + " s@example.com", "user_id": user}))
				if status != http.StatusOK {
					t.Fatalf("%q: status %d %s", name, status, body)
				}
				text := decode(t, body).Text
				if mode == bot.ModeAsync {
					posts, err := f.slack.WaitPosts(wait, trigger, 1)
					if err != nil {
						t.Fatalf("%q: %v", name, err)
					}
					text = message(t, posts[0]).Text
				}
				escapedOnly(t, text)
				if !strings.Contains(text, slack.Escape(name)) || !strings.Contains(unescape(text), name) {
					t.Fatalf("answer %q does not show the name %q as text", text, name)
				}
				if reg, ok := f.registration(user); !ok || reg.Name != name {
					t.Fatalf("stored name %q, want %q as typed", reg.Name, name)
				}
			}
		})
	}
}

func TestSlackResponseURLFallback(t *testing.T) {
	t.Run("with a bot token", func(t *testing.T) {
		f := setup(t, options{mode: bot.ModeAsync, open: true, botToken: botToken})
		trigger := "fallback-1"
		f.slack.FailResponseURL(trigger, http.StatusNotFound) // expired
		if status, body := f.post(f.command(registerForm, trigger, map[string]string{"text": "Ada &lt;b&gt; &amp; Co ada@example.com"})); status != http.StatusOK {
			t.Fatalf("status %d %s", status, body)
		}
		var calls []slacktest.Call
		err := f.slack.Wait(wait, func() bool { calls = f.slack.APICalls("chat.postEphemeral"); return len(calls) > 0 })
		if err != nil {
			t.Fatalf("no chat.postEphemeral after the response_url failed: %v", err)
		}
		c := calls[0]
		if got := c.Form.Get("token"); got != botToken && c.Header.Get("Authorization") != "Bearer "+botToken {
			t.Fatal("chat.postEphemeral was not sent with the bot token")
		}
		if c.Form.Get("channel") != channel || c.Form.Get("user") != "U0A1B2C3D4E" {
			t.Fatalf("chat.postEphemeral to channel %q user %q", c.Form.Get("channel"), c.Form.Get("user"))
		}
		text := c.Form.Get("text")
		if !strings.Contains(text, "Welcome to the class!") || !strings.Contains(text, "Ada &lt;b&gt; &amp; Co") {
			t.Fatalf("chat.postEphemeral text %q, want the escaped welcome", text)
		}
		escapedOnly(t, text)
		if n := len(f.slack.Posts(trigger)); n != 1 {
			t.Fatalf("%d response_url posts, want the one that failed", n)
		}
		f.shutdown()
		if in, _ := f.store.GetInteraction(t.Context(), bot.PlatformSlack, trigger); in.Outcome != bot.OutcomeOK || in.RepliedAt.IsZero() {
			t.Fatalf("ledger row %+v, want ok and replied", in)
		}
	})
	t.Run("without a bot token", func(t *testing.T) {
		f := setup(t, options{mode: bot.ModeAsync, open: true})
		trigger := "fallback-2"
		f.slack.FailResponseURL(trigger, http.StatusInternalServerError)
		if status, body := f.post(f.command(registerForm, trigger, nil)); status != http.StatusOK {
			t.Fatalf("status %d %s", status, body)
		}
		if _, err := f.slack.WaitPosts(wait, trigger, 1); err != nil {
			t.Fatal(err)
		}
		f.shutdown()
		if n := len(f.slack.APICalls("chat.postEphemeral")); n != 0 {
			t.Fatalf("%d chat.postEphemeral calls without a bot token", n)
		}
		if in, _ := f.store.GetInteraction(t.Context(), bot.PlatformSlack, trigger); in.Outcome != bot.OutcomeError || !in.RepliedAt.IsZero() {
			t.Fatalf("ledger row %+v, want an undelivered error", in)
		}
	})
}

func TestSlackLongAnswerIsSplit(t *testing.T) {
	para := strings.Repeat("R&D <b> ", 60) // 480 characters, 1,080 escaped
	long := strings.TrimSpace(strings.Repeat(para+"\n", 8))
	for _, mode := range []bot.Mode{bot.ModeAsync, bot.ModeSync} {
		t.Run(string(mode), func(t *testing.T) {
			f := setup(t, options{mode: mode, open: true})
			f.agent.answerFunc = func(string) string { return long }
			trigger := "long-" + string(mode)
			status, body := f.post(f.command(askForm, trigger, nil))
			if status != http.StatusOK {
				t.Fatalf("status %d %s", status, body)
			}
			want := slack.Messages(long)
			if len(want) < 3 || len(want) > slack.MaxMessages {
				t.Fatalf("answer cut into %d messages, want 3 to %d", len(want), slack.MaxMessages)
			}
			var texts []string
			if mode == bot.ModeSync {
				m := decode(t, body)
				if m.ResponseType != "in_channel" {
					t.Fatalf("answer response_type %q, want in_channel", m.ResponseType)
				}
				texts = append(texts, m.Text)
			}
			posts, err := f.slack.WaitPosts(wait, trigger, len(want)-len(texts))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range posts {
				m := message(t, p)
				if m.ResponseType != "in_channel" {
					t.Fatalf("part response_type %q, want in_channel", m.ResponseType)
				}
				texts = append(texts, m.Text)
			}
			if !slices.Equal(texts, want) {
				t.Fatalf("Slack got %d messages, not the %d parts of the answer in order", len(texts), len(want))
			}
			var joined []string
			for i, text := range texts {
				if n := len([]rune(text)); n == 0 || n > slack.MaxMessageLen {
					t.Fatalf("message %d has %d characters", i, n)
				}
				escapedOnly(t, text)
				joined = append(joined, unescape(text))
			}
			if strings.Join(strings.Fields(strings.Join(joined, " ")), " ") != strings.Join(strings.Fields(long), " ") {
				t.Fatal("the messages do not add up to the answer")
			}
		})
	}
}

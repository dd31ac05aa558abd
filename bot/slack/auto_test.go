package slack_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/classbot/classbot/bot"
)

// Auto mode over HTTP: fast work is the HTTP answer itself, nothing posted
// after; slow work is acknowledged and the same model call's answer is
// posted to the response_url.
func TestSlackHTTPAuto(t *testing.T) {
	t.Run("inline", func(t *testing.T) {
		f := setup(t, options{mode: bot.ModeAuto, open: true, autoBudget: time.Minute})
		status, body := f.post(f.command(registerForm, "7712345678901.7700000000001.auto-inline", nil))
		m := decode(t, body)
		if status != http.StatusOK || m.ResponseType != "ephemeral" || !strings.Contains(m.Text, "Welcome to the class!") {
			t.Fatalf("auto, fast model: %d %s, want the ephemeral welcome", status, body)
		}
		f.shutdown()
		if n := len(f.slack.Calls()); n != 0 {
			t.Fatalf("%d calls to Slack after an inline answer, want 0", n)
		}
	})
	t.Run("deferred", func(t *testing.T) {
		f := setup(t, options{mode: bot.ModeAuto, autoBudget: time.Millisecond}) // the model waits for its gate
		trigger := "7712345678901.7700000000001.auto-deferred"
		status, body := f.post(f.command(registerForm, trigger, nil))
		f.events.add("ack")
		if ack := decode(t, body); status != http.StatusOK || ack.Text != "Registering you…" {
			t.Fatalf("auto, held model: %d %s, want the acknowledgement", status, body)
		}
		deferredFollowUp(t, f, trigger)
	})
}

// Auto mode in Socket Mode: the ack carries the answer when the work is
// fast; otherwise the ack says "Registering you…" and one follow-up
// carries the same model call's answer.
func TestSlackSocketModeAuto(t *testing.T) {
	t.Run("inline", func(t *testing.T) {
		f := setup(t, options{mode: bot.ModeAuto, open: true, appToken: appToken, autoBudget: time.Minute})
		f.runSocket()
		env := f.envelope(registerForm, "socket-auto-inline", nil)
		ack, err := f.slack.WaitAck(wait, env)
		if err != nil {
			t.Fatal(err)
		}
		if p := ackPayload(t, ack); !strings.Contains(p.Text, "Welcome to the class!") {
			t.Fatalf("ack payload %s, want the welcome", ack.Payload)
		}
		f.shutdown()
		if n := len(f.slack.Posts("socket-auto-inline")); n != 0 {
			t.Fatalf("%d follow-ups after an inline answer, want 0", n)
		}
	})
	t.Run("deferred", func(t *testing.T) {
		f := setup(t, options{mode: bot.ModeAuto, appToken: appToken, botToken: botToken, autoBudget: time.Millisecond})
		f.runSocket()
		trigger := "socket-auto-deferred"
		env := f.envelope(registerForm, trigger, nil)
		ack, err := f.slack.WaitAck(wait, env)
		if err != nil {
			t.Fatal(err)
		}
		f.events.add("ack")
		if p := ackPayload(t, ack); p.Text != "Registering you…" {
			t.Fatalf("ack payload %s, want \"Registering you…\"", ack.Payload)
		}
		deferredFollowUp(t, f, trigger)
	})
}

// deferredFollowUp lets f's held model answer a command acknowledged in
// auto mode past its budget, and checks that the one model call's welcome
// came as the one follow-up, after the acknowledgement.
func deferredFollowUp(t *testing.T, f *fixture, trigger string) {
	t.Helper()
	f.agent.open()
	posts, err := f.slack.WaitPosts(wait, trigger, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !f.events.before("ack", "model answered") {
		t.Fatalf("events %s: the acknowledgement waited for the model", f.events)
	}
	if m := message(t, posts[0]); !strings.Contains(m.Text, "Welcome to the class!") {
		t.Fatalf("follow-up %q lacks the welcome", m.Text)
	}
	f.shutdown()
	if calls := f.agent.stats(); calls != 1 {
		t.Fatalf("model called %d times, want 1", calls)
	}
	if n := len(f.slack.Posts(trigger)); n != 1 {
		t.Fatalf("%d follow-ups, want 1", n)
	}
}

package slack_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/slack"
	"github.com/classbot/classbot/bot/slack/slacktest"
)

// runSocket starts the adapter's Socket Mode loop and waits for the
// connection. The returned stop cancels it and returns what Run returned.
func (f *fixture) runSocket() (stop func() error) {
	f.t.Helper()
	ctx, cancel := context.WithCancel(f.t.Context())
	done := make(chan error, 1)
	go func() { done <- f.adapter.Run(ctx) }()
	var (
		once   sync.Once
		result error
	)
	stop = func() error { // may be called again by the cleanup
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(30 * time.Second):
				f.t.Error("Run did not return within 30s of its context being cancelled")
			}
		})
		return result
	}
	f.t.Cleanup(func() { _ = stop() })
	if err := f.slack.Wait(wait, func() bool { return f.slack.Socket().Open == 1 }); err != nil {
		f.t.Fatalf("no Socket Mode connection: %v", err)
	}
	return stop
}

// envelope sends the recorded command as a slash_commands envelope.
func (f *fixture) envelope(file, trigger string, fields map[string]string) string {
	f.t.Helper()
	payload, err := slacktest.Payload(f.command(file, trigger, fields))
	if err != nil {
		f.t.Fatal(err)
	}
	id, n := f.slack.SendSlashCommand(payload)
	if n != 1 {
		f.t.Fatalf("envelope sent on %d connections, want 1", n)
	}
	return id
}

func ackPayload(t *testing.T, a slacktest.Ack) immediate {
	t.Helper()
	if len(a.Payload) == 0 || string(a.Payload) == "null" {
		return immediate{}
	}
	return decode(t, a.Payload)
}

func TestSlackSocketModeAsync(t *testing.T) {
	f := setup(t, options{mode: bot.ModeAsync, appToken: appToken, botToken: botToken})
	f.agent.releaseAfter = 5 * time.Second // the model answers when the test opens its gate, or after 5 s
	stop := f.runSocket()

	trigger := "socket-async-1"
	env := f.envelope(registerForm, trigger, nil)
	ack, err := f.slack.WaitAck(wait, env)
	if err != nil {
		t.Fatalf("no ack for %s: %v", env, err)
	}
	f.events.add("ack")
	if p := ackPayload(t, ack); p.ResponseType != "ephemeral" || p.Text != "Registering you…" {
		t.Fatalf("ack payload %s, want an ephemeral \"Registering you…\"", ack.Payload)
	}

	// Slack redelivers an envelope it did not see acked: same trigger_id.
	again := f.envelope(registerForm, trigger, nil)
	if ack, err := f.slack.WaitAck(wait, again); err != nil || len(ackPayload(t, ack).Text) != 0 {
		t.Fatalf("redelivered envelope: ack %s, %v; want an empty ack", ack.Payload, err)
	}

	f.agent.open()
	posts, err := f.slack.WaitPosts(wait, trigger, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !f.events.before("ack", "model answered") {
		t.Fatalf("events %s: the ack waited for the model", f.events)
	}
	if m := message(t, posts[0]); m.ResponseType != "ephemeral" || !strings.Contains(m.Text, "Welcome to the class!") || !strings.Contains(m.Text, "ada@example.com") {
		t.Fatalf("follow-up %s, want the ephemeral welcome", posts[0].Body)
	}
	if _, ok := f.registration("U0A1B2C3D4E"); !ok {
		t.Fatal("not registered")
	}

	// Pings are answered, so the connection stays up.
	if err := f.slack.Wait(wait, func() bool { return f.slack.Socket().Pongs >= 2 }); err != nil {
		t.Fatalf("no pongs: %v", err)
	}
	// Other envelopes are acked without a payload.
	ev, _ := f.slack.SendEnvelope("events_api", json.RawMessage(`{"type":"event_callback","event":{"type":"app_mention"}}`))
	if a, err := f.slack.WaitAck(wait, ev); err != nil || len(ackPayload(t, a).Text) != 0 {
		t.Fatalf("events_api envelope: ack %s, %v", a.Payload, err)
	}

	// Slack asks for a reconnect; commands keep working on the new connection.
	f.slack.Disconnect()
	if err := f.slack.Wait(wait, func() bool { s := f.slack.Socket(); return s.Opens >= 2 && s.Connections >= 2 && s.Open == 1 }); err != nil {
		t.Fatalf("no reconnect after disconnect: %+v", f.slack.Socket())
	}
	env = f.envelope(askForm, "socket-async-2", nil)
	if _, err := f.slack.WaitAck(wait, env); err != nil {
		t.Fatalf("no ack after reconnecting: %v", err)
	}
	if _, err := f.slack.WaitPosts(wait, "socket-async-2", 1); err != nil {
		t.Fatal(err)
	}

	if err := stop(); err != nil {
		t.Fatalf("Run returned %v after its context was cancelled, want nil", err)
	}
	if err := f.slack.Wait(wait, func() bool { return f.slack.Socket().Open == 0 }); err != nil {
		t.Fatal("still connected after Run returned")
	}
	f.shutdown()
	if n := len(f.slack.Posts(trigger)); n != 1 {
		t.Fatalf("%d follow-ups for one command delivered twice, want 1", n)
	}
	if calls := f.agent.stats(); calls != 2 {
		t.Fatalf("agent called %d times for two commands, want 2", calls)
	}
}

func TestSlackSocketModeSync(t *testing.T) {
	f := setup(t, options{mode: bot.ModeSync, open: true, appToken: appToken})
	f.runSocket()
	// A student typed "<!channel> a@example.com"; Slack escapes the < and >.
	env := f.envelope(registerForm, "socket-sync-1", map[string]string{"text": "&lt;!channel&gt; a@example.com"})
	ack, err := f.slack.WaitAck(wait, env)
	if err != nil {
		t.Fatal(err)
	}
	p := ackPayload(t, ack)
	if p.ResponseType != "ephemeral" || !strings.Contains(p.Text, "Welcome to the class!") || !strings.Contains(p.Text, "&lt;!channel&gt;") {
		t.Fatalf("ack payload %s, want the escaped welcome", ack.Payload)
	}
	escapedOnly(t, p.Text)
	f.shutdown()
	if n := len(f.slack.Posts("socket-sync-1")); n != 0 {
		t.Fatalf("sync mode posted %d follow-ups for a short answer, want 0", n)
	}
}

// Socket Mode runs no pool of its own: past the Dispatcher's MaxInFlight a
// command is acked at once with "busy", and the loop goes on reading.
func TestSlackSocketModeBusy(t *testing.T) {
	for _, mode := range []bot.Mode{bot.ModeAsync, bot.ModeSync} {
		t.Run(string(mode), func(t *testing.T) {
			f := setup(t, options{mode: mode, appToken: appToken, maxInFlight: 1}) // the model waits for its gate
			f.runSocket()
			first := f.envelope(askForm, "busy-1-"+string(mode), nil)
			if err := f.slack.Wait(wait, func() bool { return f.agent.stats() == 1 }); err != nil {
				t.Fatal("the first command never reached the model")
			}
			second := f.envelope(askForm, "busy-2-"+string(mode), nil)
			ack, err := f.slack.WaitAck(wait, second)
			if err != nil {
				t.Fatalf("no ack for the command past the limit: %v", err)
			}
			if p := ackPayload(t, ack); p.ResponseType != "ephemeral" || !strings.Contains(p.Text, "busy") {
				t.Fatalf("ack %s, want an ephemeral busy answer", ack.Payload)
			}
			// Other envelopes are still acked while the first command holds the only slot.
			ev, _ := f.slack.SendEnvelope("events_api", json.RawMessage(`{"type":"event_callback"}`))
			if _, err := f.slack.WaitAck(wait, ev); err != nil {
				t.Fatal("events_api envelope not acked while a command was in flight")
			}
			f.agent.open()
			if _, err := f.slack.WaitAck(wait, first); err != nil {
				t.Fatal(err)
			}
			f.shutdown()
			if calls := f.agent.stats(); calls != 1 {
				t.Fatalf("the model was called %d times, want once", calls)
			}
		})
	}
}

func TestSlackSocketModeRefusedToken(t *testing.T) {
	f := setup(t, options{appToken: appToken})
	f.slack.AppToken = "xapp-1-another-token"
	done := make(chan error, 1)
	go func() { done <- f.adapter.Run(t.Context()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "SLACK_APP_TOKEN") {
			t.Fatalf("Run = %v, want an error naming SLACK_APP_TOKEN", err)
		}
		if strings.Contains(err.Error(), appToken) {
			t.Fatal("the error shows the token")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run kept retrying a refused token")
	}
}

func TestSlackNewChecksConfig(t *testing.T) {
	for _, cfg := range []slack.Config{
		{APIURL: "ftp://slack.example/"},
		{APIURL: "not a url"},
		{AppToken: "xoxb-not-an-app-token"},
	} {
		if _, err := slack.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted a bad configuration", cfg)
		}
	}
	a, err := slack.New(slack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "SLACK_APP_TOKEN") {
		t.Fatalf("Run without an app token = %v, want an error naming SLACK_APP_TOKEN", err)
	}
}

package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/classbot/classbot/bot/slack/slacktest"
	"github.com/classbot/classbot/store"
)

const (
	slackPayload  = "../../bot/slack/testdata/register_command.form"
	slackTeam     = "T0A1B2C3D" // team_id in the recording
	slackSecret   = "e2b1c3d4f5a6b7c8d9e0f1a2b3c4d5e6"
	slackBotToken = "xoxb-17-serve-test-bot-token"
	slackAppToken = "xapp-1-A0A1B2C3D4E-serve-test-app-token"
	slackLatency  = 2 * time.Second
	slackWait     = 20 * time.Second
)

// slackServe is classbot serve with Slack turned on, a Slack stand-in, the
// model stand-in (answering after slackLatency) and PostgreSQL.
type slackServe struct {
	*served
	slack *slacktest.Server
	model *countingModel
}

func startSlackServe(t *testing.T, extra map[string]string, args ...string) *slackServe {
	t.Helper()
	s := &slackServe{slack: slacktest.New(), model: newCountingModel(t, slackLatency)}
	t.Cleanup(s.slack.Close)
	env := map[string]string{
		"SLACK_SIGNING_SECRET": slackSecret,
		"SLACK_API_URL":        s.slack.APIURL,
		// The stand-in's response_urls are on loopback: allowed only
		// because the prefix names that exact host and port.
		"SLACK_RESPONSE_URL_PREFIX": s.slack.URL + "/commands/",
		"DATABASE_URL":              testDatabaseURL,
		"LLM_BASE_URL":              s.model.URL + "/v1",
		"SHUTDOWN_TIMEOUT":          "5s",
	}
	for k, v := range extra {
		env[k] = v
	}
	s.served = startServe(t, env, args...)
	return s
}

// slackCommand is the recorded /register from a fresh user, with a fresh
// trigger id and its response_url at the stand-in.
func (s *slackServe) slackCommand(t *testing.T, trigger, user, text string) []byte {
	t.Helper()
	b, err := slacktest.Command(slackPayload, map[string]string{
		"trigger_id": trigger, "user_id": user, "text": text, "response_url": s.slack.ResponseURL(trigger),
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// post sends body to /slack/commands signed with secret at time at.
func (s *slackServe) post(t *testing.T, secret string, at time.Time, body []byte) (int, []byte) {
	t.Helper()
	req, err := slacktest.NewRequest(t.Context(), s.URL+"/slack/commands", secret, at, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: slackWait}).Do(req)
	if err != nil {
		t.Fatalf("POST /slack/commands: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// slackReply is an immediate response, an ack payload or a response_url post.
type slackReply struct {
	ResponseType string `json:"response_type"`
	Text         string `json:"text"`
}

func decodeSlack(t *testing.T, b []byte) slackReply {
	t.Helper()
	var r slackReply
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("reply %q: %v", b, err)
	}
	return r
}

// noSecretsLogged fails if the logs carry one of secrets (an email, a
// response_url) or the signing secret or a token.
func noSecretsLogged(t *testing.T, logs string, secrets ...string) {
	t.Helper()
	for _, s := range append(secrets, slackSecret, slackBotToken, slackAppToken) {
		if strings.Contains(logs, s) {
			t.Fatalf("the logs carry %q", s)
		}
	}
}

func TestSlackServeSlashCommands(t *testing.T) {
	t.Run("async", func(t *testing.T) {
		s := startSlackServe(t, map[string]string{"HANDLER_MODE": "async", "SLACK_BOT_TOKEN": slackBotToken})
		trigger, user := newID()+".7700000000001.async", "U"+newID()
		status, body := s.post(t, slackSecret, time.Now(), s.slackCommand(t, trigger, user, "Ada Lovelace <mailto:Ada@Example.com|Ada@Example.com>"))
		answered, posted := s.model.answered.Load(), len(s.slack.Posts(trigger))
		if status != http.StatusOK {
			t.Fatalf("/register = %d %s", status, body)
		}
		// The 200 came back while the model was still sleeping.
		if answered != 0 || posted != 0 {
			t.Fatalf("the 200 came after the model answered (%d) or the follow-up was posted (%d): it must not wait for them", answered, posted)
		}
		if r := decodeSlack(t, body); r.ResponseType != "ephemeral" || r.Text != "Registering you…" {
			t.Fatalf("/register first response %s, want an ephemeral \"Registering you…\"", body)
		}

		posts, err := s.slack.WaitPosts(slackWait, trigger, 1)
		if err != nil {
			t.Fatalf("%v\nstderr:\n%s", err, s.Stderr)
		}
		r := decodeSlack(t, posts[0].Body)
		if r.ResponseType != "ephemeral" || !strings.Contains(r.Text, discordWelcome+"Ada Lovelace") || !strings.Contains(r.Text, "ada@example.com") {
			t.Fatalf("follow-up %s, want the model's welcome and the email, ephemeral", posts[0].Body)
		}
		if s.model.answered.Load() != 1 {
			t.Fatal("the follow-up did not come from the model")
		}

		pg := openStore(t)
		reg, err := pg.GetRegistration(t.Context(), "slack", slackTeam, user)
		if err != nil {
			t.Fatalf("registration not in PostgreSQL: %v", err)
		}
		if reg.Name != "Ada Lovelace" || reg.Email != "ada@example.com" || reg.Channel != "C0A1B2C3D4E" {
			t.Fatalf("stored %+v", reg)
		}
		if err := s.slack.Wait(slackWait, func() bool {
			in, err := pg.GetInteraction(t.Context(), "slack", trigger)
			return err == nil && in.Outcome == "ok" && !in.RepliedAt.IsZero()
		}); err != nil {
			t.Fatal("the ledger row was not finished as ok")
		}
		noSecretsLogged(t, s.Stderr.String(), "ada@example.com", s.slack.ResponseURL(trigger))
	})

	t.Run("sync", func(t *testing.T) {
		s := startSlackServe(t, nil, "--mode", "sync")
		trigger, user := newID()+".7700000000001.sync", "U"+newID()
		status, body := s.post(t, slackSecret, time.Now(), s.slackCommand(t, trigger, user, "Grace Hopper grace@example.com"))
		if status != http.StatusOK {
			t.Fatalf("/register = %d %s", status, body)
		}
		r := decodeSlack(t, body)
		if r.ResponseType != "ephemeral" || !strings.Contains(r.Text, discordWelcome+"Grace Hopper") {
			t.Fatalf("sync /register answered %s, want the welcome, ephemeral", body)
		}
		if s.model.answered.Load() != 1 {
			t.Fatal("sync mode answered before the model did")
		}
		if _, err := openStore(t).GetRegistration(t.Context(), "slack", slackTeam, user); err != nil {
			t.Fatalf("registration not in PostgreSQL: %v", err)
		}
		if n := len(s.slack.Calls()); n != 0 {
			t.Fatalf("sync mode made %d calls to Slack for a short answer, want 0", n)
		}
	})
}

func TestSlackServeRefusals(t *testing.T) {
	s := startSlackServe(t, nil)
	pg := openStore(t)
	tests := []struct {
		name   string
		secret string
		at     time.Time
		body   func([]byte) []byte
		status int
		reason string // the label counted in classbot_refused_requests_total
	}{
		{"bad signature", "another-secret", time.Now(), nil, http.StatusUnauthorized, "bad_signature"},
		{"stale timestamp", slackSecret, time.Now().Add(-10 * time.Minute), nil, http.StatusUnauthorized, "stale_timestamp"},
		{"oversized body", slackSecret, time.Now(), func(b []byte) []byte {
			return append(b, "&pad="+strings.Repeat("x", 65<<10)...)
		}, http.StatusRequestEntityTooLarge, "too_large"},
		{"garbage body", slackSecret, time.Now(), func([]byte) []byte { return []byte("%zz;;%%") }, http.StatusBadRequest, "bad_body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, err := pg.CountRegistrations(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			requests := s.model.Requests()
			trigger := newID() + ".7700000000001.refused"
			body := s.slackCommand(t, trigger, "U"+newID(), "Mallory mallory@example.com")
			if tt.body != nil {
				body = tt.body(body)
			}
			status, resp := s.post(t, tt.secret, tt.at, body)
			if status != tt.status {
				t.Fatalf("status %d (%s), want %d", status, resp, tt.status)
			}
			if after, err := pg.CountRegistrations(t.Context()); err != nil || after != before {
				t.Fatalf("registrations went from %d to %d (%v) after a refusal", before, after, err)
			}
			if _, err := pg.GetInteraction(t.Context(), "slack", trigger); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("ledger lookup after a refusal: %v, want ErrNotFound", err)
			}
			if s.model.Requests() != requests {
				t.Fatal("the model was called after a refusal")
			}
			if n := len(s.slack.Calls()); n != 0 {
				t.Fatalf("Slack got %d calls after a refusal", n)
			}
			want := `classbot_refused_requests_total{platform="slack",reason="` + tt.reason + `"} 1`
			if m := getBody(t, s.MetricsURL+"/metrics"); !strings.Contains(m, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		})
	}
}

func TestSlackServeSocketMode(t *testing.T) {
	s := startSlackServe(t, map[string]string{
		"SLACK_SIGNING_SECRET": "", "SLACK_APP_TOKEN": slackAppToken, "SLACK_BOT_TOKEN": slackBotToken,
	})
	if err := s.slack.Wait(slackWait, func() bool { return s.slack.Socket().Open == 1 }); err != nil {
		t.Fatalf("no Socket Mode connection: %v\nstderr:\n%s", err, s.Stderr)
	}
	trigger, user := newID()+".7700000000001.socket", "U"+newID()
	payload, err := slacktest.Payload(s.slackCommand(t, trigger, user, "Katherine Johnson kj@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	env, _ := s.slack.SendSlashCommand(payload)
	ack, err := s.slack.WaitAck(slackWait, env)
	if err != nil {
		t.Fatalf("no ack: %v", err)
	}
	if s.model.answered.Load() != 0 {
		t.Fatal("the ack waited for the model")
	}
	if r := decodeSlack(t, ack.Payload); r.Text != "Registering you…" {
		t.Fatalf("ack payload %s", ack.Payload)
	}
	posts, err := s.slack.WaitPosts(slackWait, trigger, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r := decodeSlack(t, posts[0].Body); !strings.Contains(r.Text, discordWelcome+"Katherine Johnson") {
		t.Fatalf("follow-up %s lacks the welcome", posts[0].Body)
	}
	if _, err := openStore(t).GetRegistration(t.Context(), "slack", slackTeam, user); err != nil {
		t.Fatalf("registration not in PostgreSQL: %v", err)
	}
	if resp, err := http.Post(s.URL+"/slack/commands", "application/x-www-form-urlencoded", strings.NewReader("")); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("POST /slack/commands without a signing secret = %d, want no route", resp.StatusCode)
		}
	}
	// Stopping serve closes the connection. (startServe's cleanup collects
	// run's result; served.Stop would take it first.)
	s.cancel()
	if err := s.slack.Wait(slackWait, func() bool { return s.slack.Socket().Open == 0 }); err != nil {
		t.Fatal("Socket Mode still connected after serve stopped")
	}
	noSecretsLogged(t, s.Stderr.String(), "kj@example.com", s.slack.ResponseURL(trigger))
}

package slack_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/classbot/classbot/agent"
	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/slack"
	"github.com/classbot/classbot/bot/slack/slacktest"
	"github.com/classbot/classbot/store"
)

const (
	registerForm = "testdata/register_command.form"
	askForm      = "testdata/ask_command.form"
	team         = "T0A1B2C3D"   // team_id in the recordings
	channel      = "C0A1B2C3D4E" // channel_id in the recordings
	secret       = "8f742231b10e8888abcd99yyyzzz85a5"
	botToken     = "xoxb-17-test-bot-token"
	appToken     = "xapp-1-A0A1B2C3D4E-test-app-token"
	wait         = 10 * time.Second
)

// gatedAgent answers with answerFunc once its gate is open, so a test can
// hold the "model" while it checks the acknowledgement.
type gatedAgent struct {
	gate       chan struct{}
	answerFunc func(input string) string
	once       sync.Once
	mu         sync.Mutex
	calls      int
	done       int
}

func newAgent(open bool) *gatedAgent {
	g := &gatedAgent{gate: make(chan struct{}), answerFunc: func(string) string { return "Welcome to the class!" }}
	if open {
		g.open()
	}
	return g
}

// open lets every call, waiting or future, answer.
func (g *gatedAgent) open() { g.once.Do(func() { close(g.gate) }) }

func (g *gatedAgent) Run(ctx context.Context, _ agent.Agent, input string) (agent.Result, error) {
	g.mu.Lock()
	g.calls++
	g.mu.Unlock()
	select {
	case <-g.gate:
	case <-ctx.Done():
		return agent.Result{}, ctx.Err()
	}
	g.mu.Lock()
	g.done++
	g.mu.Unlock()
	return agent.Result{Output: g.answerFunc(input)}, nil
}

func (g *gatedAgent) stats() (calls, done int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls, g.done
}

// fixture is an adapter wired to a Slack stand-in, the in-memory store and
// a gated agent, with its Handler served on 127.0.0.1.
type fixture struct {
	t       *testing.T
	slack   *slacktest.Server
	store   *store.Memory
	agent   *gatedAgent
	disp    *bot.Dispatcher
	adapter *slack.Adapter
	srv     *httptest.Server

	mu      sync.Mutex
	refused []string
}

type options struct {
	mode     bot.Mode
	open     bool // the agent answers at once
	botToken string
	appToken string
	now      func() time.Time
}

func setup(t *testing.T, o options) *fixture {
	t.Helper()
	f := &fixture{t: t, slack: slacktest.New(), store: store.NewMemory(), agent: newAgent(o.open)}
	t.Cleanup(f.slack.Close)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b := bot.New(f.store, f.agent, bot.Options{Logger: log})
	f.disp = bot.NewDispatcher(t.Context(), b, bot.Config{Mode: o.mode, Logger: log})
	t.Cleanup(func() { f.shutdown() })
	var err error
	f.adapter, err = slack.New(slack.Config{
		SigningSecret: secret, BotToken: o.botToken, AppToken: o.appToken,
		APIURL: f.slack.APIURL, Dispatcher: f.disp, Logger: log, Now: o.now,
		OnRefuse: func(reason string) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.refused = append(f.refused, reason)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(f.adapter.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

// shutdown lets the agent answer and waits for the dispatcher's work in
// flight: after it, every follow-up that will ever be posted has been.
func (f *fixture) shutdown() {
	f.agent.open()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := f.disp.Shutdown(ctx); err != nil {
		f.t.Errorf("dispatcher shutdown: %v", err)
	}
}

func (f *fixture) refusals() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.refused...)
}

// command returns a recorded slash command with a fresh trigger id, its
// response_url at the stand-in, and fields replaced.
func (f *fixture) command(file, trigger string, fields map[string]string) []byte {
	f.t.Helper()
	all := map[string]string{"trigger_id": trigger, "response_url": f.slack.ResponseURL(trigger)}
	for k, v := range fields {
		all[k] = v
	}
	b, err := slacktest.Command(file, all)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func (f *fixture) signed(body []byte, at time.Time) *http.Request {
	f.t.Helper()
	req, err := slacktest.NewRequest(f.t.Context(), f.srv.URL, secret, at, body)
	if err != nil {
		f.t.Fatal(err)
	}
	return req
}

// post sends body signed now and returns the status and body.
func (f *fixture) post(body []byte) (int, []byte) {
	f.t.Helper()
	return f.do(f.signed(body, time.Now()))
}

func (f *fixture) do(req *http.Request) (int, []byte) {
	f.t.Helper()
	resp, err := (&http.Client{Timeout: wait}).Do(req)
	if err != nil {
		f.t.Fatalf("POST slash command: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// registration returns the stored registration of user, if any.
func (f *fixture) registration(user string) (store.Registration, bool) {
	f.t.Helper()
	r, err := f.store.GetRegistration(f.t.Context(), bot.PlatformSlack, team, user)
	if errors.Is(err, store.ErrNotFound) {
		return r, false
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return r, true
}

// immediate is a slash command's immediate response (HTTP body or ack payload).
type immediate struct {
	ResponseType string `json:"response_type"`
	Text         string `json:"text"`
}

func decode(t *testing.T, b []byte) immediate {
	t.Helper()
	var m immediate
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("response %q: %v", b, err)
	}
	return m
}

func message(t *testing.T, c slacktest.Call) slacktest.Message {
	t.Helper()
	m, err := c.Message()
	if err != nil {
		t.Fatalf("response_url post %q: %v", c.Body, err)
	}
	return m
}

// unescape undoes slack.Escape.
func unescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">").Replace(s)
}

// escapedOnly fails unless s has no raw < or > and every & starts an entity.
func escapedOnly(t *testing.T, s string) {
	t.Helper()
	if strings.ContainsAny(s, "<>") {
		t.Fatalf("text %q has a raw < or >", s)
	}
	for i := strings.IndexByte(s, '&'); i >= 0; i = strings.IndexByte(s, '&') {
		rest := s[i:]
		if !strings.HasPrefix(rest, "&amp;") && !strings.HasPrefix(rest, "&lt;") && !strings.HasPrefix(rest, "&gt;") {
			t.Fatalf("text %q has a raw &", s)
		}
		s = rest[1:]
	}
}

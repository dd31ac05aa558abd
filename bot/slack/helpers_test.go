package slack_test

import (
	"bytes"
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

// events records, in order, what the stand-ins and the test saw happen, so
// a test can assert an order ("the ack came back before the model
// answered") instead of a duration.
type events struct {
	mu   sync.Mutex
	list []string
}

func (e *events) add(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, name)
}

// before reports whether a was recorded, and recorded before any b.
func (e *events) before(a, b string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, name := range e.list {
		switch name {
		case a:
			return true
		case b:
			return false
		}
	}
	return false
}

func (e *events) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.list, " → ")
}

// gatedAgent answers with answerFunc once its gate is open, so a test can
// hold the "model" while it checks the acknowledgement. With releaseAfter
// set, the gate opens by itself after that long: an adapter that wrongly
// waits for the model then shows up as events in the wrong order, not as a
// hang.
type gatedAgent struct {
	gate       chan struct{}
	answerFunc func(input string) string
	// parts, when set, is the answer streamed (RunStream) in these pieces.
	parts        []string
	releaseAfter time.Duration
	events       *events
	once         sync.Once
	mu           sync.Mutex
	calls        int
	inputs       []string
	// onRun, if set, runs at the start of each call (a test reports a
	// line for the model through agent.WaitFunc).
	onRun func(ctx context.Context)
	// useTools, if set, runs at the start of each call with the Agent the
	// bot gave (a test calls its tools, as a model would).
	useTools func(ctx context.Context, a agent.Agent)
}

func newAgent(open bool, ev *events) *gatedAgent {
	g := &gatedAgent{gate: make(chan struct{}), events: ev, answerFunc: func(string) string { return "Welcome to the class!" }}
	if open {
		g.open()
	}
	return g
}

// open lets every call, waiting or future, answer.
func (g *gatedAgent) open() { g.once.Do(func() { close(g.gate) }) }

func (g *gatedAgent) Run(ctx context.Context, a agent.Agent, input string) (agent.Result, error) {
	g.mu.Lock()
	g.calls++
	g.inputs = append(g.inputs, input)
	g.mu.Unlock()
	if g.onRun != nil {
		g.onRun(ctx)
	}
	if g.useTools != nil {
		g.useTools(ctx, a)
	}
	g.events.add("model called")
	var release <-chan time.Time
	if g.releaseAfter > 0 {
		t := time.NewTimer(g.releaseAfter)
		defer t.Stop()
		release = t.C
	}
	select {
	case <-g.gate:
	case <-release:
	case <-ctx.Done():
		return agent.Result{}, ctx.Err()
	}
	g.events.add("model answered")
	return agent.Result{Output: g.answerFunc(input)}, nil
}

// RunStream is Run; with parts set, the answer is those parts joined,
// each growing prefix given to onText first.
func (g *gatedAgent) RunStream(ctx context.Context, a agent.Agent, input string, onText func(string)) (agent.Result, error) {
	res, err := g.Run(ctx, a, input)
	if err != nil || g.parts == nil {
		return res, err
	}
	var sb strings.Builder
	for _, p := range g.parts {
		sb.WriteString(p)
		onText(sb.String())
	}
	return agent.Result{Output: sb.String()}, nil
}

func (g *gatedAgent) stats() (calls int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls
}

// lastInput is the input of the model's last call.
func (g *gatedAgent) lastInput() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.inputs) == 0 {
		return ""
	}
	return g.inputs[len(g.inputs)-1]
}

// logBuffer collects log output from many goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fixture is an adapter wired to a Slack stand-in, the in-memory store and
// a gated agent, with its Handler served on 127.0.0.1.
type fixture struct {
	t       *testing.T
	slack   *slacktest.Server
	store   *store.Memory
	agent   *gatedAgent
	events  *events
	logs    *logBuffer // everything the adapter and the Dispatcher logged
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
	// prefixes returns the ResponseURLPrefixes given the stand-in's base
	// URL; default: that URL.
	prefixes func(standIn string) []string
	// maxInFlight is the Dispatcher's MaxInFlight; default its own.
	maxInFlight int
	// autoBudget is the Dispatcher's AutoInlineBudget; default its own.
	autoBudget time.Duration
	// handler wraps the adapter's Handler in the test server, if set.
	handler func(http.Handler) http.Handler
	// teachers turns on the roster and courses over the fixture's store,
	// with these teachers.
	teachers []string
	// courses gives the adapter the fixture's store as Config.Courses.
	courses bool
	// notes, if set, gives the bot's Options.Notes (/ask searches it)
	// from the fixture's store, which becomes its Options.Memory too.
	notes func(*store.Memory) bot.CourseNotes
}

func setup(t *testing.T, o options) *fixture {
	t.Helper()
	ev := &events{}
	f := &fixture{t: t, slack: slacktest.New(), store: store.NewMemory(), agent: newAgent(o.open, ev), events: ev, logs: &logBuffer{}}
	t.Cleanup(f.slack.Close)
	log := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	prefixes := []string{f.slack.URL + "/"}
	if o.prefixes != nil {
		prefixes = o.prefixes(f.slack.URL)
	}
	bo := bot.Options{Logger: log}
	if o.notes != nil {
		bo.Notes, bo.Memory = o.notes(f.store), f.store
	}
	if o.teachers != nil {
		bo.Teachers, bo.Roster, bo.Courses = o.teachers, f.store, f.store
	}
	b := bot.New(f.store, f.agent, bo)
	f.disp = bot.NewDispatcher(t.Context(), b, bot.Config{Mode: o.mode, Logger: log, MaxInFlight: o.maxInFlight, AutoInlineBudget: o.autoBudget})
	t.Cleanup(func() { f.shutdown() })
	var err error
	var courses slack.CourseFinder
	if o.courses {
		courses = f.store
	}
	f.adapter, err = slack.New(slack.Config{
		Courses:       courses,
		SigningSecret: secret, BotToken: o.botToken, AppToken: o.appToken,
		APIURL: f.slack.APIURL, Dispatcher: f.disp, Logger: log, NowFunc: o.now,
		ResponseURLPrefixes: prefixes,
		OnRefuseFunc: func(reason string) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.refused = append(f.refused, reason)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := f.adapter.Handler()
	if o.handler != nil {
		h = o.handler(h)
	}
	f.srv = httptest.NewServer(h)
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

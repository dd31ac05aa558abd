package discord_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/classbot/classbot/agent"
	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/discord"
	"github.com/classbot/classbot/bot/discord/discordtest"
	"github.com/classbot/classbot/store"
)

const (
	appID   = "1100000000000000001"
	guildID = "1100000000000000002"
	payload = "testdata/register_interaction.json"
	wait    = 10 * time.Second
)

// gatedAgent answers with answerFunc once its gate is open, so a test can
// hold the "model" while it checks the acknowledgement.
type gatedAgent struct {
	gate       chan struct{}
	answerFunc func(input string) string
	called     chan struct{} // gets one value per call, when the call arrives
	mu         sync.Mutex
	calls      int
	done       int
	once       sync.Once
	// onRun, if set, runs at the start of each call (a test reports a
	// line for the model through agent.WaitFunc).
	onRun func(ctx context.Context)
}

// open lets every call, waiting or future, answer.
func (g *gatedAgent) open() { g.once.Do(func() { close(g.gate) }) }

func newAgent(open bool) *gatedAgent {
	g := &gatedAgent{
		gate:       make(chan struct{}),
		called:     make(chan struct{}, 100),
		answerFunc: func(string) string { return "Welcome to the class!" },
	}
	if open {
		g.open()
	}
	return g
}

func (g *gatedAgent) Run(ctx context.Context, _ agent.Agent, input string) (agent.Result, error) {
	g.mu.Lock()
	g.calls++
	g.mu.Unlock()
	if g.onRun != nil {
		g.onRun(ctx)
	}
	select {
	case g.called <- struct{}{}:
	default:
	}
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

// waitCalled waits until the agent has received a request.
func (g *gatedAgent) waitCalled(t *testing.T) {
	t.Helper()
	select {
	case <-g.called:
	case <-time.After(wait):
		t.Fatal("the agent was never called")
	}
}

// fixture is an adapter wired to a Discord stand-in, a store and an agent.
type fixture struct {
	t       *testing.T
	discord *discordtest.Server
	store   *store.Memory
	agent   *gatedAgent
	adapter *discord.Adapter
	key     ed25519.PrivateKey
	srv     *httptest.Server // serves the adapter's Handler
	disp    *bot.Dispatcher

	mu          sync.Mutex
	refused     []string // reasons passed to OnRefuseFunc
	regResults  []error  // errors passed to RegisterResultFunc
	regReported chan struct{}
}

type options struct {
	mode     bot.Mode
	botToken string
	guild    string
	open     bool // the agent answers at once
	// autoBudget is the Dispatcher's AutoInlineBudget; default its own.
	autoBudget time.Duration
	// handler wraps the adapter's Handler in the test server, when set.
	handler func(http.Handler) http.Handler
	// teachers turns on the roster and courses over the fixture's store,
	// with these teachers.
	teachers []string
	// mentions turns on Config.Mentions.
	mentions bool
	// model, when set, answers instead of the fixture's gated agent.
	model bot.Agent
	// streamInterval is Config.StreamInterval; default its own.
	streamInterval time.Duration
}

func setup(t *testing.T, o options) *fixture {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{
		t: t, discord: discordtest.New(), store: store.NewMemory(), agent: newAgent(o.open), key: priv,
		regReported: make(chan struct{}, 100),
	}
	t.Cleanup(f.discord.Close)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bo := bot.Options{Logger: log}
	if o.teachers != nil {
		bo.Teachers, bo.Roster, bo.Courses = o.teachers, f.store, f.store
	}
	var model bot.Agent = f.agent
	if o.model != nil {
		model = o.model
	}
	b := bot.New(f.store, model, bo)
	f.disp = bot.NewDispatcher(t.Context(), b, bot.Config{Mode: o.mode, Logger: log, AutoInlineBudget: o.autoBudget})
	t.Cleanup(f.shutdown)
	f.adapter, err = discord.New(discord.Config{
		AppID: appID, PublicKey: pub, BotToken: o.botToken, GuildID: o.guild,
		APIURL: f.discord.APIURL, Dispatcher: f.disp, Logger: log, Mentions: o.mentions,
		StreamInterval: o.streamInterval,
		OnRefuseFunc: func(reason string) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.refused = append(f.refused, reason)
		},
		RegisterResultFunc: func(err error) {
			f.mu.Lock()
			f.regResults = append(f.regResults, err)
			f.mu.Unlock()
			f.regReported <- struct{}{}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	discord.SetRegisterBackoff(f.adapter, 5*time.Millisecond, 100*time.Millisecond)
	var h http.Handler = f.adapter.Handler()
	if o.handler != nil {
		h = o.handler(h)
	}
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

// shutdown lets the agent answer and waits for the Dispatcher's work in
// flight: after it, every answer that will ever be sent has been. It may be
// called more than once.
func (f *fixture) shutdown() {
	f.openAgent()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := f.disp.Shutdown(ctx); err != nil {
		f.t.Errorf("dispatcher shutdown: %v", err)
	}
}

func (f *fixture) openAgent() { f.agent.open() }

// refusals returns the reasons passed to OnRefuseFunc so far.
func (f *fixture) refusals() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.refused...)
}

// registerResults returns the errors passed to RegisterResultFunc so far.
func (f *fixture) registerResults() []error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]error(nil), f.regResults...)
}

// waitRegisterResults waits until RegisterResultFunc has been called and
// cond holds for its results.
func (f *fixture) waitRegisterResults(cond func([]error) bool) []error {
	f.t.Helper()
	deadline := time.After(wait)
	for {
		if got := f.registerResults(); cond(got) {
			return got
		}
		select {
		case <-f.regReported:
		case <-deadline:
			f.t.Fatalf("registration results %v: condition not met within %s", f.registerResults(), wait)
		}
	}
}

// registration returns the stored registration of user in the test guild.
func (f *fixture) registration(user string) (store.Registration, bool) {
	f.t.Helper()
	r, err := f.store.GetRegistration(f.t.Context(), bot.PlatformDiscord, guildID, user)
	if errors.Is(err, store.ErrNotFound) {
		return r, false
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return r, true
}

// nothingStored fails the test if the store holds a registration or a
// ledger row for interaction id.
func (f *fixture) nothingStored(id string) {
	f.t.Helper()
	if n, err := f.store.CountRegistrations(f.t.Context()); err != nil || n != 0 {
		f.t.Fatalf("store has %d registrations (err %v), want none", n, err)
	}
	if _, err := f.store.GetInteraction(f.t.Context(), bot.PlatformDiscord, id); !errors.Is(err, store.ErrNotFound) {
		f.t.Fatalf("ledger lookup of %s: %v, want ErrNotFound", id, err)
	}
}

// interaction returns a recorded /name interaction with a fresh id and token.
func interaction(t *testing.T, id, name string, opts map[string]string) []byte {
	t.Helper()
	b, err := discordtest.Interaction(payload, id, "token-"+id, name, opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// patch decodes the interaction b, lets edit change it, and encodes it.
func patch(t *testing.T, b []byte, edit func(in map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// withOptions replaces the interaction's options with raw JSON.
func withOptions(t *testing.T, b []byte, options string) []byte {
	t.Helper()
	return patch(t, b, func(m map[string]any) {
		m["data"].(map[string]any)["options"] = json.RawMessage(options)
	})
}

// post sends body signed at now and returns the status and body.
func (f *fixture) post(body []byte) (int, []byte) {
	f.t.Helper()
	return f.postRequest(f.signed(body, time.Now()))
}

func (f *fixture) signed(body []byte, at time.Time) *http.Request {
	f.t.Helper()
	req, err := discordtest.NewRequest(f.t.Context(), f.srv.URL, f.key, at, body)
	if err != nil {
		f.t.Fatal(err)
	}
	return req
}

func (f *fixture) postRequest(req *http.Request) (int, []byte) {
	f.t.Helper()
	client := &http.Client{Timeout: wait}
	resp, err := client.Do(req)
	if err != nil {
		f.t.Fatalf("POST interaction: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp.StatusCode, b
}

func decodeResponse(t *testing.T, b []byte) discordtest.Response {
	t.Helper()
	var r discordtest.Response
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("response %s: %v", b, err)
	}
	return r
}

func isEdit(token string) func(discordtest.Request) bool {
	return func(r discordtest.Request) bool {
		return r.Method == http.MethodPatch && r.Path == fmt.Sprintf("webhooks/%s/%s/messages/@original", appID, token)
	}
}

func isCallback(id string) func(discordtest.Request) bool {
	return func(r discordtest.Request) bool {
		return r.Method == http.MethodPost && r.Path == fmt.Sprintf("interactions/%s/token-%s/callback", id, id)
	}
}

func content(t *testing.T, r discordtest.Request) string {
	t.Helper()
	var m struct {
		Content string `json:"content"`
		Flags   int    `json:"flags"`
	}
	if err := r.JSON(&m); err != nil {
		t.Fatalf("%s %s body %q: %v", r.Method, r.Path, r.Body, err)
	}
	return m.Content
}

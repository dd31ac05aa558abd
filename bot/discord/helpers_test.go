package discord_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
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

// memStore is a small bot.Store for the adapter's tests; the real stores are
// tested in package store and end to end in cmd/classbot.
type memStore struct {
	mu     sync.Mutex
	regs   map[string]store.Registration
	ledger map[string]store.Interaction
}

func newMemStore() *memStore {
	return &memStore{regs: map[string]store.Registration{}, ledger: map[string]store.Interaction{}}
}

func (m *memStore) UpsertRegistration(_ context.Context, r store.Registration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := r.Platform + "/" + r.Workspace + "/" + r.User
	_, existed := m.regs[k]
	m.regs[k] = r
	return !existed, nil
}

func (m *memStore) RecordInteraction(_ context.Context, in store.Interaction) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := in.Platform + "/" + in.ID
	if _, ok := m.ledger[k]; ok {
		return store.ErrDuplicate
	}
	m.ledger[k] = in
	return nil
}

func (m *memStore) FinishInteraction(_ context.Context, in store.Interaction) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ledger[in.Platform+"/"+in.ID] = in
	return nil
}

func (m *memStore) counts() (regs, interactions int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.regs), len(m.ledger)
}

func (m *memStore) registration(user string) (store.Registration, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.regs["discord/"+guildID+"/"+user]
	return r, ok
}

// gatedAgent answers with answerFunc once its gate is open, so a test can
// hold the "model" while it checks the acknowledgement.
type gatedAgent struct {
	gate       chan struct{}
	answerFunc func(input string) string
	mu         sync.Mutex
	calls      int
	done       int
	once       sync.Once
}

// open lets every call, waiting or future, answer.
func (g *gatedAgent) open() { g.once.Do(func() { close(g.gate) }) }

func newAgent(open bool) *gatedAgent {
	g := &gatedAgent{gate: make(chan struct{}), answerFunc: func(string) string { return "Welcome to the class!" }}
	if open {
		g.open()
	}
	return g
}

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

// fixture is an adapter wired to a Discord stand-in, a store and an agent.
type fixture struct {
	t       *testing.T
	discord *discordtest.Server
	store   *memStore
	agent   *gatedAgent
	adapter *discord.Adapter
	key     ed25519.PrivateKey
	srv     *httptest.Server // serves the adapter's Handler
	disp    *bot.Dispatcher
}

type options struct {
	mode     bot.Mode
	botToken string
	guild    string
	open     bool // the agent answers at once
}

func setup(t *testing.T, o options) *fixture {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, discord: discordtest.New(), store: newMemStore(), agent: newAgent(o.open), key: priv}
	t.Cleanup(f.discord.Close)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b := bot.New(f.store, f.agent, bot.Options{Logger: log})
	f.disp = bot.NewDispatcher(t.Context(), b, bot.Config{Mode: o.mode, Logger: log})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		f.openAgent()
		_ = f.disp.Shutdown(ctx)
	})
	f.adapter, err = discord.New(discord.Config{
		AppID: appID, PublicKey: pub, BotToken: o.botToken, GuildID: o.guild,
		APIURL: f.discord.APIURL, Dispatcher: f.disp, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(f.adapter.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) openAgent() { f.agent.open() }

// interaction returns a recorded /name interaction with a fresh id and token.
func interaction(t *testing.T, id, name string, opts map[string]string) []byte {
	t.Helper()
	b, err := discordtest.Interaction(payload, id, "token-"+id, name, opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
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

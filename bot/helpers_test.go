package bot_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/classbot/classbot/agent"
	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/store"
)

// recorder is a Responder that keeps every reply and signals the final one.
type recorder struct {
	mu        sync.Mutex
	acks      []bot.Reply
	responds  []bot.Reply
	followUps []bot.Reply
	final     chan struct{}
	once      sync.Once
}

func newRecorder() *recorder { return &recorder{final: make(chan struct{})} }

func (r *recorder) Ack(_ context.Context, rep bot.Reply) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.acks = append(r.acks, rep)
	return nil
}

func (r *recorder) Respond(_ context.Context, rep bot.Reply) error {
	r.mu.Lock()
	r.responds = append(r.responds, rep)
	r.mu.Unlock()
	r.once.Do(func() { close(r.final) })
	return nil
}

func (r *recorder) FollowUp(_ context.Context, rep bot.Reply) error {
	r.mu.Lock()
	r.followUps = append(r.followUps, rep)
	r.mu.Unlock()
	r.once.Do(func() { close(r.final) })
	return nil
}

// counts returns how many acks, responds and follow-ups arrived.
func (r *recorder) counts() (acks, responds, followUps int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.acks), len(r.responds), len(r.followUps)
}

// answer waits for the final reply and returns it.
func (r *recorder) answer(t *testing.T) bot.Reply {
	t.Helper()
	select {
	case <-r.final:
	case <-time.After(10 * time.Second):
		t.Fatal("no final reply within 10s")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.followUps) > 0 {
		return r.followUps[len(r.followUps)-1]
	}
	return r.responds[len(r.responds)-1]
}

// fakeAgent stands in for the model runner inside the bot package's tests
// (the runner itself is tested against an HTTP stand-in in package agent).
// By default it answers "Welcome, NAME!" at once.
type fakeAgent struct {
	calls atomic.Int64
	mu    sync.Mutex
	seen  []seenCall
	run   func(ctx context.Context, input string) (string, error)
}

type seenCall struct{ instructions, input string }

func (f *fakeAgent) Run(ctx context.Context, a agent.Agent, input string) (agent.Result, error) {
	f.calls.Add(1)
	f.mu.Lock()
	f.seen = append(f.seen, seenCall{a.Instructions, input})
	f.mu.Unlock()
	run := f.run
	if run == nil {
		run = func(_ context.Context, input string) (string, error) {
			return fmt.Sprintf("Welcome, %s!", nameIn(input)), nil
		}
	}
	out, err := run(ctx, input)
	return agent.Result{Output: out, Turns: 1}, err
}

func nameIn(input string) string {
	for _, line := range strings.Split(input, "\n") {
		if n, ok := strings.CutPrefix(line, "Student name: "); ok {
			return n
		}
	}
	return "?"
}

// gate returns an agent body that waits until release is closed.
func gate(started chan<- struct{}, release <-chan struct{}) func(context.Context, string) (string, error) {
	return func(ctx context.Context, input string) (string, error) {
		if started != nil {
			// Never block: callers wait for the first start only, and
			// later callers (commands that raced a shutdown) must not hang.
			select {
			case started <- struct{}{}:
			default:
			}
		}
		select {
		case <-release:
			return "Welcome, " + nameIn(input) + "!", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// hookStore wraps the real in-memory store with an optional hook before
// each registration write and counts the writes.
type hookStore struct {
	*store.Memory
	writes atomic.Int64
	before func(ctx context.Context) error
	// beforeRecord, if set, runs before each ledger insert (a slow or
	// hung database); an error from it is the insert's.
	beforeRecord func(ctx context.Context) error
	// beforeFinish, if set, runs before each ledger finish.
	beforeFinish func(ctx context.Context) error
}

func (s *hookStore) FinishInteraction(ctx context.Context, in store.Interaction) error {
	if s.beforeFinish != nil {
		if err := s.beforeFinish(ctx); err != nil {
			return err
		}
	}
	return s.Memory.FinishInteraction(ctx, in)
}

func (s *hookStore) RecordInteraction(ctx context.Context, in store.Interaction) error {
	if s.beforeRecord != nil {
		if err := s.beforeRecord(ctx); err != nil {
			return err
		}
	}
	return s.Memory.RecordInteraction(ctx, in)
}

func (s *hookStore) UpsertRegistration(ctx context.Context, r store.Registration) (bool, error) {
	s.writes.Add(1)
	if s.before != nil {
		if err := s.before(ctx); err != nil {
			return false, err
		}
	}
	return s.Memory.UpsertRegistration(ctx, r)
}

type fixture struct {
	store *hookStore
	agent *fakeAgent
	disp  *bot.Dispatcher
}

// setup returns a dispatcher over the in-memory store and a fake agent,
// shut down at cleanup.
func setup(t *testing.T, cfg bot.Config) *fixture {
	t.Helper()
	f := &fixture{store: &hookStore{Memory: store.NewMemory()}, agent: &fakeAgent{}}
	log := slog.New(slog.NewTextHandler(t.Output(), nil)) // shown only when the test fails
	b := bot.New(f.store, f.agent, bot.Options{CourseInstructions: "Course: Go 101. Teacher: Ms Hopper.", Logger: log})
	if cfg.Logger == nil {
		cfg.Logger = log
	}
	f.disp = bot.NewDispatcher(t.Context(), b, cfg)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 5*time.Second)
		defer cancel()
		_ = f.disp.Shutdown(ctx)
	})
	return f
}

var nextID atomic.Int64

func registerCmd(text string) bot.Command {
	return bot.Command{
		Platform: bot.PlatformConsole, InteractionID: fmt.Sprintf("test-%d", nextID.Add(1)),
		Workspace: "W1", Channel: "C1", User: "U1", Name: "register", Text: text,
	}
}

func askCmd(q string) bot.Command {
	c := registerCmd(q)
	c.Name = "ask"
	return c
}

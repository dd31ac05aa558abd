package queue_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/classbot/classbot/agent"
	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/internal/pgtest"
	"github.com/classbot/classbot/queue"
	"github.com/classbot/classbot/store"
)

// What the tests below know about the two students. Ada forgets herself;
// Bob must keep everything.
const (
	adaID, adaName, adaEmail = "U_ADA_7f3", "Ada Lovelace", "ada.lovelace@school.example"
	bobID, bobName, bobEmail = "U_BOB_9c1", "Bob Babbage", "bob.babbage@school.example"
	adaQuestion              = "What did Ada ask about monads?"
	adaPending               = "Ada's pending question about functors"
	bobQuestion              = "What did Bob ask about closures?"
)

// gatedModel answers at once, except a question holding "pending", which
// it starts (telling started) and finishes only when gate is closed.
type gatedModel struct {
	started chan struct{}
	gate    chan struct{}
}

func (m *gatedModel) Run(ctx context.Context, _ agent.Agent, input string) (agent.Result, error) {
	if strings.Contains(input, "pending") {
		m.started <- struct{}{}
		select {
		case <-m.gate:
		case <-ctx.Done():
			return agent.Result{}, ctx.Err()
		}
	}
	return agent.Result{Output: "Here is a short answer."}, nil
}

// inbox is what students see: every reply, by interaction id, whether it
// came as the first response or a follow-up (sync, async) or from a queue
// worker; it is the Reopener of queue mode too.
type inbox struct {
	mu      sync.Mutex
	replies map[string]bot.Reply
	got     chan string
}

func newInbox() *inbox { return &inbox{replies: map[string]bot.Reply{}, got: make(chan string, 100)} }

func (b *inbox) put(id string, r bot.Reply) {
	b.mu.Lock()
	b.replies[id] = r
	b.mu.Unlock()
	b.got <- id
}

// wait waits for id's answer.
func (b *inbox) wait(t *testing.T, id string) bot.Reply {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		b.mu.Lock()
		r, ok := b.replies[id]
		b.mu.Unlock()
		if ok {
			return r
		}
		select {
		case <-b.got:
		case <-deadline:
			t.Fatalf("no answer to %s", id)
		}
	}
}

func (b *inbox) Reopen(_ context.Context, c bot.Command, _ json.RawMessage) (bot.Responder, error) {
	return &reply{b: b, id: c.InteractionID}, nil
}

// reply is one command's Responder.
type reply struct {
	b  *inbox
	id string
}

func (r *reply) Address() (json.RawMessage, error) {
	return json.Marshal(map[string]string{"id": r.id})
}
func (r *reply) Ack(context.Context, bot.Reply) error { return nil }
func (r *reply) Respond(_ context.Context, rep bot.Reply) error {
	r.b.put(r.id, rep)
	return nil
}
func (r *reply) FollowUp(_ context.Context, rep bot.Reply) error {
	r.b.put(r.id, rep)
	return nil
}

// class is one classbot over a fresh database in one mode.
type class struct {
	pg    *store.Postgres
	disp  *bot.Dispatcher
	q     *queue.Queue
	inbox *inbox
	model *gatedModel
	once  sync.Once
	url   string // the database, for pg_dump
}

func newClass(t *testing.T, mode bot.Mode, workers int) *class {
	t.Helper()
	ctx := context.Background()
	u := newDB(t)
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	pg, err := store.Open(ctx, u+sep+"pool_max_conns=6")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := &class{pg: pg, url: u, inbox: newInbox(), model: &gatedModel{started: make(chan struct{}, 1), gate: make(chan struct{})}}
	bt := bot.New(pg, c.model, bot.Options{Memory: pg, Logger: log})
	cfg := bot.Config{Mode: mode, Logger: log}
	if mode == bot.ModeQueue {
		c.q, err = queue.New(pg, queue.Config{Workers: workers, Logger: log, RetryBase: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Enqueuer = c.q
	}
	c.disp = bot.NewDispatcher(ctx, bt, cfg)
	if c.q != nil {
		if err := c.q.Start(ctx, c.disp, map[string]bot.Reopener{bot.PlatformConsole: c.inbox}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		c.stop(t)
		pg.Close()
	})
	return c
}

// stop drains the dispatcher and the queue's workers: every write of the
// commands sent so far has been made.
func (c *class) stop(t *testing.T) {
	t.Helper()
	c.once.Do(func() { c.drain(t) })
}

func (c *class) drain(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.disp.Shutdown(ctx); err != nil {
		t.Errorf("dispatcher shutdown: %v", err)
	}
	if c.q != nil {
		if err := c.q.Stop(ctx); err != nil {
			t.Errorf("queue stop: %v", err)
		}
	}
}

func (c *class) send(t *testing.T, id, user, name, text string) {
	t.Helper()
	cmd := bot.Command{Platform: bot.PlatformConsole, InteractionID: id, Workspace: "W1", Channel: "C1",
		User: user, Name: name, Text: text}
	if err := c.disp.Dispatch(context.Background(), cmd, &reply{b: c.inbox, id: id}); err != nil {
		t.Fatalf("dispatch %s: %v", id, err)
	}
}

// waitJobsDone waits until no job of the queue is still to run or running.
func (c *class) waitJobsDone(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var n int
		if err := c.pg.Pool().QueryRow(context.Background(),
			`SELECT count(*) FROM river_job WHERE state NOT IN ('completed', 'cancelled', 'discarded')`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs still not done", n)
		}
		time.Sleep(20 * time.Millisecond) // polling the database, with a deadline
	}
}

func (c *class) data(t *testing.T, user string) store.StudentData {
	t.Helper()
	d, err := c.pg.StudentData(context.Background(), store.Student{Platform: bot.PlatformConsole, Workspace: "W1", User: user}, 10)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (c *class) traces(t *testing.T, needles ...string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	found, err := pgtest.Traces(ctx, c.pg.Pool(), needles...)
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// dumped returns which of needles a pg_dump of the class's database
// holds (ignoring case), or skips that check where pg_dump is not
// installed (traces has searched every table already).
func (c *class) dumped(t *testing.T, needles ...string) (found []string, checked bool) {
	t.Helper()
	bin, err := exec.LookPath("pg_dump")
	if err != nil {
		t.Log("pg_dump not installed: the dump is not checked")
		return nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--data-only", c.url).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	dump := strings.ToLower(string(out))
	if !strings.Contains(dump, "copy public.interactions") {
		t.Fatalf("pg_dump's output has no ledger: %.200s", dump)
	}
	for _, n := range needles {
		if strings.Contains(dump, strings.ToLower(n)) {
			found = append(found, n)
		}
	}
	return found, true
}

// After /forget confirm, a search of every table of the database (the
// registrations, the ledger with its job input and outbox, /ask's memory,
// River's jobs with their arguments and errors) finds nothing of the
// student: not their id, name, email or questions; also when an /ask of
// theirs was still in flight and finished after the /forget, and not
// the ledger row of the /forget itself. /forget alone deletes nothing;
// /whoami shows the caller only their own data, ephemerally; the other
// student keeps everything.
func TestForgetLeavesNothingOfTheStudent(t *testing.T) {
	for _, mode := range []bot.Mode{bot.ModeSync, bot.ModeAsync, bot.ModeQueue} {
		t.Run(string(mode), func(t *testing.T) {
			c := newClass(t, mode, 4)
			in := c.inbox
			c.send(t, "r-ada", adaID, "register", adaName+" "+adaEmail)
			c.send(t, "r-bob", bobID, "register", bobName+" "+bobEmail)
			c.send(t, "a-ada", adaID, "ask", adaQuestion)
			c.send(t, "a-bob", bobID, "ask", bobQuestion)
			for _, id := range []string{"r-ada", "r-bob", "a-ada", "a-bob"} {
				in.wait(t, id)
			}
			if mode == bot.ModeQueue {
				c.waitJobsDone(t) // the memory turns are stored after the answers are posted
			}

			c.send(t, "w-ada", adaID, "whoami", "")
			who := in.wait(t, "w-ada")
			if !who.Ephemeral {
				t.Error("/whoami's answer is visible to the channel")
			}
			for _, want := range []string{adaName, adaEmail, adaQuestion} {
				if !strings.Contains(who.Text, want) {
					t.Errorf("/whoami lacks %q: %s", want, who.Text)
				}
			}
			for _, other := range []string{bobName, bobEmail, bobQuestion, bobID} {
				if strings.Contains(who.Text, other) {
					t.Errorf("/whoami shows another student's %q", other)
				}
			}

			before := c.data(t, adaID)
			c.send(t, "f0-ada", adaID, "forget", "")
			preview := in.wait(t, "f0-ada")
			if !preview.Ephemeral || !strings.Contains(preview.Text, "/forget confirm") || !strings.Contains(preview.Text, "Nothing has been deleted") {
				t.Errorf("/forget alone: %+v", preview)
			}
			if mode == bot.ModeQueue {
				c.waitJobsDone(t)
			}
			if after := c.data(t, adaID); after.Registration == nil || after.AskTurns != before.AskTurns {
				t.Fatalf("/forget without confirm deleted something: %+v, before %+v", after, before)
			}

			if mode != bot.ModeSync {
				// An /ask of Ada's in flight: the model has it when she
				// forgets herself, and answers after.
				c.send(t, "p-ada", adaID, "ask", adaPending)
				<-c.model.started
			}
			c.send(t, "f1-ada", adaID, "forget", "confirm")
			done := in.wait(t, "f1-ada")
			if !done.Ephemeral || !strings.Contains(done.Text, "Done") || !strings.Contains(done.Text, "your registration") {
				t.Errorf("/forget confirm: %+v", done)
			}
			close(c.model.gate)
			if mode != bot.ModeSync {
				if mode != bot.ModeQueue {
					in.wait(t, "p-ada") // async: the answer still reaches her
				}
			}
			if mode == bot.ModeQueue {
				c.waitJobsDone(t)
			}
			c.stop(t)

			if found := c.traces(t, adaID, adaName, adaEmail, adaQuestion, adaPending); len(found) > 0 {
				t.Errorf("left behind:\n%s", strings.Join(found, "\n"))
			}
			if found, _ := c.dumped(t, adaID, adaName, adaEmail, adaQuestion, adaPending); len(found) > 0 {
				t.Errorf("pg_dump holds %q", found)
			}
			if found, checked := c.dumped(t, bobEmail); checked && len(found) == 0 {
				t.Errorf("pg_dump lacks the other student's email: is it dumping the right database?")
			}
			bob := c.data(t, bobID)
			if bob.Registration == nil || bob.Registration.Email != bobEmail || bob.AskTurns != 1 || bob.Interactions != 2 {
				t.Errorf("the other student's data changed: %+v", bob)
			}
			if len(c.traces(t, bobQuestion)) == 0 {
				t.Error("the other student's question is gone")
			}
		})
	}
}

// A forgotten student's queued commands that no worker has started yet
// are deleted with the rest.
func TestForgetDeletesQueuedJobs(t *testing.T) {
	c := newClass(t, bot.ModeQueue, -1) // no workers: every job stays queued
	c.send(t, "r-ada", adaID, "register", adaName+" "+adaEmail)
	c.send(t, "r-bob", bobID, "register", bobName+" "+bobEmail)
	rep, err := c.pg.Forget(context.Background(), store.Student{Platform: bot.PlatformConsole, Workspace: "W1", User: adaID})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Jobs != 1 || rep.Interactions != 1 || rep.Registrations != 0 {
		t.Errorf("report %+v, want one job and one ledger row, no registration (never run)", rep)
	}
	if found := c.traces(t, adaID, adaName, adaEmail); len(found) > 0 {
		t.Errorf("left behind:\n%s", strings.Join(found, "\n"))
	}
	var left int
	if err := c.pg.Pool().QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE args->>'id' = 'r-bob'`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 1 {
		t.Errorf("the other student's job: %d rows, want 1", left)
	}
	if len(c.traces(t, bobEmail)) == 0 {
		t.Error("the other student's queued registration is gone")
	}
}

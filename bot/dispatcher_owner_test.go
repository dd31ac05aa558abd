package bot_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/store"
)

// The Dispatcher is the one owner of command concurrency: these tests cover
// Go (the entry for event loops), admission in every mode, and the recovery
// of panics outside the work itself.

func TestGoReturnsAtOnceAndRunsTheCommand(t *testing.T) {
	for _, mode := range []bot.Mode{bot.ModeSync, bot.ModeAsync} {
		t.Run(string(mode), func(t *testing.T) {
			f := setup(t, bot.Config{Mode: mode})
			started, release := make(chan struct{}, 1), make(chan struct{})
			f.agent.run = gate(started, release)
			r := newRecorder()
			returned := make(chan struct{})
			go func() { f.disp.Go(t.Context(), registerCmd("Ada ada@example.com"), r); close(returned) }()
			select {
			case <-returned:
			case <-time.After(10 * time.Second):
				close(release)
				t.Fatal("Go blocked while the model was still working")
			}
			<-started
			close(release)
			if got := r.answer(t); !strings.Contains(got.Text, "Welcome, Ada!") {
				t.Fatalf("answer = %q, want the welcome", got.Text)
			}
		})
	}
}

func TestAdmissionBoundsEveryMode(t *testing.T) {
	for _, mode := range []bot.Mode{bot.ModeSync, bot.ModeAsync} {
		t.Run(string(mode), func(t *testing.T) {
			f := setup(t, bot.Config{Mode: mode, MaxInFlight: 1})
			started, release := make(chan struct{}, 1), make(chan struct{})
			f.agent.run = gate(started, release)
			first := newRecorder()
			f.disp.Go(t.Context(), registerCmd("Ada ada@example.com"), first)
			<-started
			waitFor(t, func() bool { return f.store.writes.Load() == 1 })

			busy := registerCmd("Bo bo@example.com")
			r := newRecorder()
			if err := f.disp.Dispatch(t.Context(), busy, r); err != nil {
				t.Fatal(err)
			}
			if got := r.answer(t); !strings.Contains(got.Text, "busy") || !got.Ephemeral {
				t.Fatalf("over the limit: %+v, want an ephemeral busy answer", got)
			}
			if n := f.store.writes.Load(); n != 1 {
				t.Errorf("%d registration writes, want only the first command's", n)
			}
			// Refused before the ledger: a retry of it is welcome, not a duplicate.
			if _, err := f.store.GetInteraction(t.Context(), busy.Platform, busy.InteractionID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("ledger row for a refused command: err = %v, want ErrNotFound", err)
			}

			close(release)
			first.answer(t)
			// The burst has passed: the bot serves normally again.
			waitFor(t, func() bool { return f.disp.InFlight() == 0 })
			again := newRecorder()
			if err := f.disp.Dispatch(t.Context(), busy, again); err != nil {
				t.Fatal(err)
			}
			if got := again.answer(t); !strings.Contains(got.Text, "Welcome, Bo!") {
				t.Fatalf("after the burst: %q, want the welcome", got.Text)
			}
		})
	}
}

func TestGoDuringShutdownAnswersRestarting(t *testing.T) {
	f := setup(t, bot.Config{Mode: bot.ModeSync})
	if err := f.disp.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := newRecorder()
	f.disp.Go(t.Context(), registerCmd("Ada ada@example.com"), r)
	if got := r.answer(t); !strings.Contains(got.Text, "restarting") {
		t.Fatalf("answer during shutdown = %q, want \"restarting\"", got.Text)
	}
	if n := f.store.writes.Load(); n != 0 {
		t.Errorf("%d registration writes during shutdown, want 0", n)
	}
}

// panicky panics in the method named by where, and otherwise records.
type panicky struct {
	*recorder
	where string
}

func (p *panicky) Ack(ctx context.Context, r bot.Reply) error {
	if p.where == "ack" {
		panic("ack exploded")
	}
	return p.recorder.Ack(ctx, r)
}

func (p *panicky) FollowUp(ctx context.Context, r bot.Reply) error {
	if p.where == "followup" {
		panic("follow-up exploded")
	}
	return p.recorder.FollowUp(ctx, r)
}

func TestPanicsOutsideTheWorkAreRecovered(t *testing.T) {
	t.Run("in FollowUp", func(t *testing.T) {
		traces := make(chan bot.Trace, 4)
		f := setup(t, bot.Config{Mode: bot.ModeAsync, ObserveFunc: func(tr bot.Trace) { traces <- tr }})
		r := &panicky{recorder: newRecorder(), where: "followup"}
		if err := f.disp.Dispatch(t.Context(), registerCmd("Ada ada@example.com"), r); err != nil {
			t.Fatal(err)
		}
		tr := <-traces
		if tr.Outcome != bot.OutcomeError || tr.Err == nil || !strings.Contains(tr.Err.Error(), "follow-up exploded") {
			t.Fatalf("trace = %s %v, want an error outcome naming the panic", tr.Outcome, tr.Err)
		}
	})
	t.Run("in Ack, through Go: the student still hears back", func(t *testing.T) {
		f := setup(t, bot.Config{Mode: bot.ModeAsync})
		r := &panicky{recorder: newRecorder(), where: "ack"}
		f.disp.Go(t.Context(), registerCmd("Ada ada@example.com"), r)
		if got := r.answer(t); !strings.Contains(got.Text, "went wrong") {
			t.Fatalf("answer after a panicking ack = %q, want an apology", got.Text)
		}
		waitFor(t, func() bool { return f.disp.InFlight() == 0 })
	})
	t.Run("in the observer", func(t *testing.T) {
		f := setup(t, bot.Config{Mode: bot.ModeSync, ObserveFunc: func(bot.Trace) { panic("metrics exploded") }})
		for i := range 2 {
			r := newRecorder()
			if err := f.disp.Dispatch(t.Context(), registerCmd("Ada ada@example.com"), r); err != nil {
				t.Fatal(err)
			}
			if got := r.answer(t); !strings.Contains(got.Text, "Welcome") {
				t.Fatalf("command %d: %q, want the welcome", i, got.Text)
			}
		}
		waitFor(t, func() bool { return f.disp.InFlight() == 0 })
	})
}

// closingResponder stands for a platform that closes its request as soon as
// it has read the first response: Respond cancels the request's context,
// then records whether its own context survived (the later parts of a long
// answer, and the ledger write, use it).
type closingResponder struct {
	*recorder
	closeRequest context.CancelFunc
	mu           sync.Mutex
	ctxErr       error
}

func (c *closingResponder) Respond(ctx context.Context, r bot.Reply) error {
	c.closeRequest()
	c.mu.Lock()
	c.ctxErr = ctx.Err()
	c.mu.Unlock()
	return c.recorder.Respond(ctx, r)
}

func TestFirstResponseOutlivesTheRequest(t *testing.T) {
	tests := []struct {
		name    string
		mode    bot.Mode
		cmd     bot.Command
		outcome string
	}{
		{"sync answer", bot.ModeSync, registerCmd("Ada ada@example.com"), bot.OutcomeOK},
		{"help", bot.ModeAsync, bot.Command{Name: "nope"}, bot.OutcomeHelp},
		{"invalid input", bot.ModeAsync, registerCmd("Ada not-an-email"), bot.OutcomeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t, bot.Config{Mode: tt.mode})
			c := tt.cmd
			if c.InteractionID == "" {
				c = registerCmd("")
				c.Name = tt.cmd.Name
			}
			ctx, cancel := context.WithCancel(t.Context())
			r := &closingResponder{recorder: newRecorder(), closeRequest: cancel}
			_ = f.disp.Dispatch(ctx, c, r)
			r.answer(t)
			r.mu.Lock()
			err := r.ctxErr
			r.mu.Unlock()
			if err != nil {
				t.Errorf("Respond's context was %v once the request closed: the rest of the answer would be lost", err)
			}
			waitFor(t, func() bool { return f.disp.InFlight() == 0 }) // the ledger row is settled
			in, err := f.store.GetInteraction(t.Context(), c.Platform, c.InteractionID)
			if err != nil {
				t.Fatal(err)
			}
			if in.Outcome != tt.outcome || in.AcknowledgedAt.IsZero() {
				t.Errorf("ledger row outcome=%q acknowledged=%v, want %q and a time", in.Outcome, in.AcknowledgedAt, tt.outcome)
			}
		})
	}
}

func TestDuplicateIsAcknowledgedWithTheCommandsVisibility(t *testing.T) {
	for _, tt := range []struct {
		cmd       bot.Command
		ephemeral bool
	}{
		{registerCmd("Ada ada@example.com"), true}, // its answer shows the email
		{askCmd("When is the exam?"), false},
	} {
		t.Run(tt.cmd.Name, func(t *testing.T) {
			f := setup(t, bot.Config{Mode: bot.ModeAsync})
			first, second := newRecorder(), newRecorder()
			_ = f.disp.Dispatch(t.Context(), tt.cmd, first)
			first.answer(t)
			_ = f.disp.Dispatch(t.Context(), tt.cmd, second)
			if acks, _, _ := second.counts(); acks != 1 || second.acks[0].Ephemeral != tt.ephemeral {
				t.Fatalf("duplicate acks %+v, want one with Ephemeral=%v", second.acks, tt.ephemeral)
			}
		})
	}
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// failingAck is a Responder whose acknowledgement never reaches the
// platform (a closed connection, a Socket Mode write that failed).
type failingAck struct{ *recorder }

func (f *failingAck) Ack(context.Context, bot.Reply) error { return errors.New("connection reset") }

func TestRedeliveryAfterAFailedAckIsWorkedOn(t *testing.T) {
	f := setup(t, bot.Config{Mode: bot.ModeAsync})
	c := registerCmd("Ada ada@example.com")
	if err := f.disp.Dispatch(t.Context(), c, &failingAck{newRecorder()}); err == nil {
		t.Fatal("Dispatch hid the failed acknowledgement")
	}
	waitFor(t, func() bool { return f.disp.InFlight() == 0 })
	if in, err := f.store.GetInteraction(t.Context(), c.Platform, c.InteractionID); err != nil || in.Outcome != bot.OutcomeAckFailed {
		t.Fatalf("ledger row after a failed ack: %+v, %v; want outcome %q", in, err, bot.OutcomeAckFailed)
	}
	// The platform delivers it again: it is answered, not taken for a duplicate.
	r := newRecorder()
	if err := f.disp.Dispatch(t.Context(), c, r); err != nil {
		t.Fatal(err)
	}
	if got := r.answer(t); !strings.Contains(got.Text, "Welcome, Ada!") {
		t.Fatalf("redelivery answered %q, want the welcome", got.Text)
	}
}

func TestAcknowledgementDoesNotWaitForAHungDatabase(t *testing.T) {
	f := setup(t, bot.Config{Mode: bot.ModeAsync, AckBudget: 20 * time.Millisecond})
	hung := make(chan struct{})
	defer close(hung)
	f.store.beforeRecord = func(ctx context.Context) error {
		select { // a black hole: nothing comes back until the caller gives up
		case <-ctx.Done():
			return ctx.Err()
		case <-hung:
			return nil
		}
	}
	c := askCmd("Is the database up?")
	r := newRecorder()
	done := make(chan error, 1)
	go func() { done <- f.disp.Dispatch(t.Context(), c, r) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the acknowledgement waited on the database")
	}
	if acks, _, _ := r.counts(); acks != 1 {
		t.Fatalf("%d acks, want 1", acks)
	}
	if got := r.answer(t); !strings.Contains(got.Text, "Welcome") { // the fake model's answer
		t.Fatalf("answer = %q, want the model's answer", got.Text)
	}
	// A redelivery meanwhile is caught in memory, though the ledger never
	// confirmed the first.
	again := newRecorder()
	if err := f.disp.Dispatch(t.Context(), c, again); err != nil {
		t.Fatal(err)
	}
	if acks, responds, followUps := again.counts(); acks != 1 || responds+followUps != 0 || again.acks[0].Text != "" {
		t.Fatalf("redelivery: %d acks %+v, %d responds, %d follow-ups; want one silent ack", acks, again.acks, responds, followUps)
	}
	if n := f.agent.calls.Load(); n != 1 {
		t.Errorf("%d model calls, want 1", n)
	}
}

// The ledger row of an answered command is written after the platform's
// request: a slow database must not hold the handler, or the next command
// on a kept-alive connection waits behind it.
func TestAnsweredCommandsDoNotWaitForTheLedgerRow(t *testing.T) {
	for _, tt := range []struct {
		name string
		mode bot.Mode
		cmd  bot.Command
	}{
		{"sync answer", bot.ModeSync, registerCmd("Ada ada@example.com")},
		{"invalid input", bot.ModeAsync, registerCmd("Ada")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t, bot.Config{Mode: tt.mode})
			hung := make(chan struct{})
			f.store.beforeFinish = func(ctx context.Context) error {
				select {
				case <-hung:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			r := newRecorder()
			done := make(chan error, 1)
			go func() { done <- f.disp.Dispatch(t.Context(), tt.cmd, r) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Dispatch waited for the ledger row after answering")
			}
			if f.disp.InFlight() != 1 {
				t.Errorf("in flight = %d while the ledger row is pending, want 1 (the slot bounds pending writes)", f.disp.InFlight())
			}
			close(hung)
			waitFor(t, func() bool { return f.disp.InFlight() == 0 })
			in, err := f.store.GetInteraction(t.Context(), tt.cmd.Platform, tt.cmd.InteractionID)
			if err != nil || in.Outcome == "" {
				t.Fatalf("ledger row = %+v, %v; want its outcome once the database answers", in, err)
			}
		})
	}
}

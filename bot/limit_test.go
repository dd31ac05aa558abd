package bot_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/classbot/classbot/agent"
	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/store"
)

// Over STUDENT_ASK_RATE a student is told kindly when to try again, and
// the model is not called and nothing is remembered; another student is
// not affected, and /register is not counted.
func TestStudentAskRate(t *testing.T) {
	for _, mode := range []bot.Mode{bot.ModeSync, bot.ModeAsync, bot.ModeAuto} {
		t.Run(string(mode), func(t *testing.T) {
			f := setup(t, bot.Config{Mode: mode, StudentAskRate: 2})
			mem := store.NewMemory()
			f.disp = bot.NewDispatcher(t.Context(), bot.New(f.store, f.agent, bot.Options{Memory: mem}), bot.Config{Mode: mode, StudentAskRate: 2})
			t.Cleanup(func() { _ = f.disp.Shutdown(context.WithoutCancel(t.Context())) })
			ask := func(user string) bot.Reply {
				t.Helper()
				c := askCmd("What is a channel?")
				c.User = user
				r := newRecorder()
				if err := f.disp.Dispatch(t.Context(), c, r); err != nil {
					t.Fatal(err)
				}
				return r.answer(t)
			}
			for i := range 2 {
				if got := ask("U1"); strings.Contains(got.Text, "try again") {
					t.Fatalf("ask %d within the rate refused: %q", i+1, got.Text)
				}
			}
			turns, _ := mem.AskTurns(t.Context(), store.AskKey{Platform: bot.PlatformConsole, Workspace: "W1", Channel: "C1", User: "U1"}, time.Time{}, 10)
			before := len(turns)
			if before != 2 {
				t.Fatalf("%d remembered turns after two answered asks, want 2", before)
			}

			c := askCmd("And a mutex?")
			c.User = "U1"
			r := newRecorder()
			if err := f.disp.Dispatch(t.Context(), c, r); err != nil {
				t.Fatal(err)
			}
			got := r.answer(t)
			if !strings.Contains(got.Text, "2 questions a minute") || !strings.Contains(got.Text, "try again in ") || !got.Ephemeral {
				t.Fatalf("third ask in a minute: %+v, want a kind ephemeral answer with when to try again", got)
			}
			if acks, responds, _ := r.counts(); acks != 0 || responds != 1 {
				t.Errorf("the refusal came as %d acks and %d responds, want one response", acks, responds)
			}
			if n := f.agent.calls.Load(); n != 2 {
				t.Errorf("model called %d times, want 2: none for the refused ask", n)
			}
			turns, _ = mem.AskTurns(t.Context(), store.AskKey{Platform: bot.PlatformConsole, Workspace: "W1", Channel: "C1", User: "U1"}, time.Time{}, 10)
			if len(turns) != before {
				t.Errorf("%d remembered turns after the refused ask, want %d", len(turns), before)
			}
			waitOutcome(t, f, c, bot.OutcomeRateLimited)

			if got := ask("U2"); strings.Contains(got.Text, "try again") {
				t.Errorf("another student was refused: %q", got.Text)
			}
			reg := registerCmd("Ada ada@example.com")
			rr := newRecorder()
			if err := f.disp.Dispatch(t.Context(), reg, rr); err != nil {
				t.Fatal(err)
			}
			if got := rr.answer(t); !strings.Contains(got.Text, "registered") {
				t.Errorf("/register after the limit: %q, want it registered", got.Text)
			}
		})
	}
}

// A negative rate turns the limit off.
func TestStudentAskRateOff(t *testing.T) {
	f := setup(t, bot.Config{Mode: bot.ModeSync, StudentAskRate: -1})
	for i := range 20 {
		r := newRecorder()
		if err := f.disp.Dispatch(t.Context(), askCmd("Why?"), r); err != nil {
			t.Fatal(err)
		}
		if got := r.answer(t); strings.Contains(got.Text, "try again") {
			t.Fatalf("ask %d refused with the limit off: %q", i+1, got.Text)
		}
	}
}

// countingEnqueuer records how many commands were queued.
type countingEnqueuer struct{ n atomic.Int64 }

func (e *countingEnqueuer) Enqueue(context.Context, store.Interaction, bot.QueuedCommand) error {
	e.n.Add(1)
	return nil
}

// In queue mode an /ask over the rate gets no job at all.
func TestStudentAskRateQueueMode(t *testing.T) {
	enq := &countingEnqueuer{}
	f := setup(t, bot.Config{Mode: bot.ModeQueue, Enqueuer: enq, StudentAskRate: 1})
	var last *recorder
	for range 2 {
		last = newRecorder()
		if err := f.disp.Dispatch(t.Context(), askCmd("Why?"), addressed{last}); err != nil {
			t.Fatal(err)
		}
	}
	if n := enq.n.Load(); n != 1 {
		t.Fatalf("%d jobs queued for two asks at a rate of one a minute, want 1", n)
	}
	if got := last.answer(t); !strings.Contains(got.Text, "try again in ") {
		t.Fatalf("second ask: %q, want when to try again", got.Text)
	}
}

// The work's model calls carry the command's class, so the model's slots
// are shared fairly between classes (agent.WithClass).
func TestWorkCarriesTheClass(t *testing.T) {
	f := setup(t, bot.Config{Mode: bot.ModeSync})
	classes := make(chan string, 1)
	f.agent.run = func(ctx context.Context, _ string) (string, error) {
		classes <- agent.ClassOf(ctx)
		return "An answer.", nil
	}
	c := askCmd("Why?")
	c.Workspace, c.Channel = "T9", "C9"
	r := newRecorder()
	if err := f.disp.Dispatch(t.Context(), c, r); err != nil {
		t.Fatal(err)
	}
	if got, want := <-classes, bot.ClassOf(c); got != want || want != "console/T9/C9" {
		t.Fatalf("the model call's class is %q, want %q (console/T9/C9)", got, want)
	}
}

// estimatingAgent is a fakeAgent whose runner reports a line for the model.
type estimatingAgent struct {
	*fakeAgent
	place int
	wait  time.Duration
}

func (e *estimatingAgent) EstimateWait(string) (int, time.Duration) { return e.place, e.wait }

// An /ask that could not get a model slot within the command timeout is
// told so at once, with its place and when to try again; a registration
// goes ahead (it is saved even if the welcome cannot be written).
func TestAskToldEarlyWhenTheModelLineIsTooLong(t *testing.T) {
	for _, mode := range []bot.Mode{bot.ModeSync, bot.ModeAsync, bot.ModeAuto} {
		t.Run(string(mode), func(t *testing.T) {
			fa := &fakeAgent{}
			ea := &estimatingAgent{fakeAgent: fa, place: 412, wait: 3*time.Minute + 2*time.Second}
			s := &hookStore{Memory: store.NewMemory()}
			d := bot.NewDispatcher(t.Context(), bot.New(s, ea, bot.Options{}), bot.Config{Mode: mode, CommandTimeout: 2 * time.Minute})
			t.Cleanup(func() { _ = d.Shutdown(context.WithoutCancel(t.Context())) })

			r := newRecorder()
			if err := d.Dispatch(t.Context(), askCmd("Why?"), r); err != nil {
				t.Fatal(err)
			}
			got := r.answer(t)
			if !strings.Contains(got.Text, "#412 in line") || !strings.Contains(got.Text, "try again in 190 seconds") {
				t.Fatalf("answer %q, want the place and when to try again", got.Text)
			}
			if acks, _, _ := r.counts(); acks != 0 {
				t.Errorf("acknowledged %d times before saying it could not be answered", acks)
			}
			if n := fa.calls.Load(); n != 0 {
				t.Errorf("model called %d times for a refused ask", n)
			}

			rr := newRecorder()
			if err := d.Dispatch(t.Context(), registerCmd("Ada ada@example.com"), rr); err != nil {
				t.Fatal(err)
			}
			if got := rr.answer(t); !strings.Contains(got.Text, "registered") {
				t.Errorf("/register with a long line: %q, want it registered", got.Text)
			}

			ea.wait = time.Minute // within the command timeout: wait in line
			r = newRecorder()
			if err := d.Dispatch(t.Context(), askCmd("Why?"), r); err != nil {
				t.Fatal(err)
			}
			if got := r.answer(t); strings.Contains(got.Text, "in line") {
				t.Errorf("refused although the line fits the command timeout: %q", got.Text)
			}
		})
	}
}

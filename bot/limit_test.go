package bot_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// AdmitsWithin says no once the wait and one 2 s model call pass d.
func (e *estimatingAgent) AdmitsWithin(_ string, d time.Duration) (int, time.Duration, bool) {
	return e.place, e.wait, e.wait+2*time.Second <= d
}

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

// An /ask whose model call left the line for a slot (agent.LineError) is
// answered kindly with its place and when to try again, through the
// normal reply (one answer: in async mode the follow-up), with the ledger
// outcome "busy" and nothing remembered.
func TestAskThatLeftTheLineIsToldBusy(t *testing.T) {
	for _, mode := range []bot.Mode{bot.ModeSync, bot.ModeAsync, bot.ModeAuto} {
		t.Run(string(mode), func(t *testing.T) {
			f := setup(t, bot.Config{Mode: mode, AutoInlineBudget: time.Second})
			mem := store.NewMemory()
			f.disp = bot.NewDispatcher(t.Context(), bot.New(f.store, f.agent, bot.Options{Memory: mem}), bot.Config{Mode: mode, AutoInlineBudget: time.Second})
			t.Cleanup(func() { _ = f.disp.Shutdown(context.WithoutCancel(t.Context())) })
			f.agent.run = func(context.Context, string) (string, error) {
				return "", fmt.Errorf("run agent: turn 1: waiting for a model slot: %w", &agent.LineError{Place: 37, Wait: 95 * time.Second})
			}
			c := askCmd("What is a channel?")
			r := newRecorder()
			if err := f.disp.Dispatch(t.Context(), c, r); err != nil {
				t.Fatal(err)
			}
			got := r.answer(t)
			if !strings.Contains(got.Text, "you're #37 in line") || !strings.Contains(got.Text, "try again in 100 seconds") || !got.Ephemeral {
				t.Fatalf("answer %+v, want the place and when to try again, ephemeral", got)
			}
			if strings.Contains(got.Text, "in line for the assistant") {
				t.Errorf("answer %q reads like a place-in-line edit", got.Text)
			}
			acks, responds, followUps := r.counts()
			if want := map[bot.Mode][3]int{bot.ModeSync: {0, 1, 0}, bot.ModeAsync: {1, 0, 1}, bot.ModeAuto: {0, 1, 0}}[mode]; [3]int{acks, responds, followUps} != want {
				t.Errorf("acks, responds, follow-ups: %d, %d, %d; want %v", acks, responds, followUps, want)
			}
			waitOutcome(t, f, c, bot.OutcomeBusy)
			turns, _ := mem.AskTurns(t.Context(), store.AskKey{Platform: bot.PlatformConsole, Workspace: "W1", Channel: "C1", User: "U1"}, time.Time{}, 10)
			if len(turns) != 0 {
				t.Errorf("%d remembered turns for an ask that was never answered", len(turns))
			}
		})
	}
}

// With the real runner: a burst fills the model's one slot before any call
// has finished; a later /ask waits in line and, once the line shows it
// cannot get its slot within the command timeout, is answered "busy" then
// and there, not "took too long" at the timeout.
func TestAskLeavesTheLineBeforeTheCommandTimeout(t *testing.T) {
	runner := agent.NewRunner(agent.Config{Offline: true, OfflineLatency: time.Hour, MaxConcurrency: 1,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	s := &hookStore{Memory: store.NewMemory()}
	const timeout = 6 * time.Second
	d := bot.NewDispatcher(t.Context(), bot.New(s, runner, bot.Options{}), bot.Config{Mode: bot.ModeAsync, CommandTimeout: timeout})
	t.Cleanup(func() { _ = d.Shutdown(context.WithoutCancel(t.Context())) })
	f := &fixture{store: s, disp: d}

	first := askCmd("Why?")
	if err := d.Dispatch(t.Context(), first, newRecorder()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for place, _ := runner.EstimateWait(bot.ClassOf(first)); place == 0; place, _ = runner.EstimateWait(bot.ClassOf(first)) {
		if time.Now().After(deadline) {
			t.Fatal("the first ask never took the model's slot")
		}
		time.Sleep(time.Millisecond)
	}
	second := askCmd("And why not?")
	r := newRecorder()
	start := time.Now()
	if err := d.Dispatch(t.Context(), second, r); err != nil {
		t.Fatal(err)
	}
	got := r.answer(t)
	if !strings.Contains(got.Text, "you're #1 in line") || !strings.Contains(got.Text, "try again in ") {
		t.Fatalf("second ask: %q, want busy with its place", got.Text)
	}
	if took := time.Since(start); took >= timeout {
		t.Errorf("told after %s, not before the %s command timeout", took, timeout)
	}
	waitOutcome(t, f, second, bot.OutcomeBusy)
}

// failingPlaces is a placeRecorder whose edits never reach the platform.
type failingPlaces struct{ *placeRecorder }

func (p failingPlaces) Progress(ctx context.Context, r bot.Reply) error {
	_ = p.placeRecorder.Progress(ctx, r)
	return errors.New("edit refused")
}

// A model call that has waited 30 s in line without its place having been
// shown stops waiting (the wait function says so) and the student hears
// "busy"; one whose place was shown waits on.
func TestUntoldWaitEndsAfter30s(t *testing.T) {
	for _, tc := range []struct {
		name      string
		editsFail bool
	}{{"place shown", false}, {"edits fail", true}} {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t, bot.Config{Mode: bot.ModeAsync})
			pr := &placeRecorder{recorder: newRecorder()}
			var r bot.Responder = pr
			if tc.editsFail {
				r = failingPlaces{pr}
			}
			f.agent.run = func(ctx context.Context, _ string) (string, error) {
				wait := agent.WaitFunc(ctx)
				if !wait(7, 4*time.Second) { // the first edit is due
					t.Error("told to stop after 4 s")
				}
				deadline := time.Now().Add(10 * time.Second)
				for !strings.Contains(strings.Join(pr.list(), "|"), "progress") {
					if time.Now().After(deadline) {
						t.Error("no place edit tried")
						break
					}
					time.Sleep(time.Millisecond)
				}
				// Past 30 s: once the edit is over, a failed one ends the wait.
				for i := range 200 {
					if !wait(7, 31*time.Second) {
						if !tc.editsFail {
							t.Errorf("told to stop after 31 s (call %d) although the place was shown", i)
						}
						return "", &agent.LineError{Place: 7, Wait: time.Minute}
					}
					time.Sleep(time.Millisecond)
				}
				if tc.editsFail {
					t.Error("still waiting after 31 s although no edit showed the place")
				}
				return "An answer.", nil
			}
			if err := f.disp.Dispatch(t.Context(), askCmd("Why?"), r); err != nil {
				t.Fatal(err)
			}
			got := pr.answer(t)
			if busy := strings.Contains(got.Text, "try again"); busy != tc.editsFail {
				t.Errorf("answer %q; busy %v, want %v", got.Text, busy, tc.editsFail)
			}
		})
	}
}

// A queued /ask whose model call left the line is tried again while the
// job has attempts left, and its last attempt says "busy".
func TestQueuedAskThatLeftTheLine(t *testing.T) {
	for _, final := range []bool{false, true} {
		t.Run(fmt.Sprintf("final=%v", final), func(t *testing.T) {
			f := setup(t, bot.Config{Mode: bot.ModeQueue, Enqueuer: failingEnqueuer{}})
			f.agent.run = func(context.Context, string) (string, error) {
				return "", &agent.LineError{Place: 5, Wait: 40 * time.Second}
			}
			r := newRecorder()
			_, err := f.disp.RunQueued(t.Context(), bot.QueuedRun{Command: askCmd("What is Go?"), Responder: r, Attempt: 1, Final: final,
				SaveAnswer: func(context.Context, bot.QueuedAnswer) error { return nil },
				Finish:     func(context.Context, store.Interaction) error { return nil }})
			if !final {
				if err == nil {
					t.Fatal("a non-final attempt that left the line was not retried")
				}
				if _, _, followUps := r.counts(); followUps != 0 {
					t.Errorf("%d answers posted by an attempt that will be retried", followUps)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := r.answer(t); !strings.Contains(got.Text, "you're #5 in line") {
				t.Errorf("last attempt said %q, want busy with the place", got.Text)
			}
		})
	}
}

// A registration whose welcome left the model's line is saved and told so,
// without a personal welcome: the outcome is no_welcome, not an error.
func TestRegistrationWhoseWelcomeLeftTheLine(t *testing.T) {
	f := setup(t, bot.Config{Mode: bot.ModeAsync})
	f.agent.run = func(context.Context, string) (string, error) {
		return "", fmt.Errorf("run agent: waiting for a model slot: %w", &agent.LineError{Place: 400, Wait: 5 * time.Minute})
	}
	c := registerCmd("Ada Lovelace ada@example.com")
	r := newRecorder()
	if err := f.disp.Dispatch(t.Context(), c, r); err != nil {
		t.Fatal(err)
	}
	got := r.answer(t)
	if !strings.Contains(got.Text, "You're registered, Ada Lovelace") || !strings.Contains(got.Text, "registration is saved") || !got.Ephemeral {
		t.Fatalf("answer %+v", got)
	}
	if strings.Contains(strings.ToLower(got.Text), "couldn't") {
		t.Errorf("answer %q reads like a failure", got.Text)
	}
	waitOutcome(t, f, c, bot.OutcomeNoWelcome)
	if _, err := f.store.GetRegistration(t.Context(), c.Platform, c.Workspace, c.User); err != nil {
		t.Errorf("the registration was not saved: %v", err)
	}
}

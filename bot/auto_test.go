package bot_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/store"
)

func TestParseModeAuto(t *testing.T) {
	if m, err := bot.ParseMode("auto"); err != nil || m != bot.ModeAuto {
		t.Fatalf("ParseMode(auto) = %q, %v", m, err)
	}
}

// Work that ends within the budget is answered inline: one message, as in
// sync mode. The budget is far longer than the work can take.
func TestAutoAnswersInlineWhenTheWorkIsFast(t *testing.T) {
	f := setup(t, bot.Config{Mode: bot.ModeAuto, AutoInlineBudget: time.Minute})
	r := newRecorder()
	c := registerCmd("Ada ada@example.com")
	if err := f.disp.Dispatch(t.Context(), c, r); err != nil {
		t.Fatal(err)
	}
	acks, responds, followUps := r.counts()
	if acks != 0 || responds != 1 || followUps != 0 {
		t.Fatalf("auto, fast work: %d acks, %d responds, %d follow-ups; want 0, 1, 0", acks, responds, followUps)
	}
	if !strings.Contains(r.responds[0].Text, "Welcome, Ada!") || !r.responds[0].Ephemeral {
		t.Errorf("inline answer = %+v, want the ephemeral welcome", r.responds[0])
	}
	waitOutcome(t, f, c, bot.OutcomeOK)
}

// Work still going at the budget is acknowledged then, and the same work's
// answer follows up: the model is called once.
func TestAutoDefersSlowWorkWithoutRestartingIt(t *testing.T) {
	f := setup(t, bot.Config{Mode: bot.ModeAuto, AutoInlineBudget: time.Millisecond})
	started, release := make(chan struct{}, 1), make(chan struct{})
	f.agent.run = gate(started, release)

	r := newRecorder()
	c := askCmd("What is a goroutine?")
	if err := f.disp.Dispatch(t.Context(), c, r); err != nil {
		t.Fatal(err)
	}
	// Dispatch returned while the model is held: the acknowledgement.
	acks, responds, followUps := r.counts()
	if acks != 1 || responds != 0 || followUps != 0 {
		t.Fatalf("after Dispatch: %d acks, %d responds, %d follow-ups; want 1, 0, 0", acks, responds, followUps)
	}
	if r.acks[0].Text != "Thinking…" {
		t.Errorf("ack = %+v, want \"Thinking…\"", r.acks[0])
	}
	<-started
	close(release)
	if got := r.answer(t); !strings.Contains(got.Text, "Welcome") {
		t.Errorf("follow-up = %q, want the model's answer", got.Text)
	}
	waitOutcome(t, f, c, bot.OutcomeOK)
	if n := f.agent.calls.Load(); n != 1 {
		t.Fatalf("model called %d times, want 1", n)
	}
	if acks, responds, followUps := r.counts(); acks != 1 || responds != 0 || followUps != 1 {
		t.Fatalf("at the end: %d acks, %d responds, %d follow-ups; want 1, 0, 1", acks, responds, followUps)
	}
}

// Go (Socket Mode, the gateway) takes the same two paths.
func TestAutoThroughGo(t *testing.T) {
	f := setup(t, bot.Config{Mode: bot.ModeAuto, AutoInlineBudget: time.Millisecond})
	started, release := make(chan struct{}, 1), make(chan struct{})
	f.agent.run = gate(started, release)
	r := newRecorder()
	f.disp.Go(t.Context(), askCmd("Why channels?"), r)
	<-started
	// The ack comes at the budget, while the model is still held.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if acks, _, _ := r.counts(); acks == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no acknowledgement while the model was held")
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	r.answer(t)
	if acks, responds, followUps := r.counts(); acks != 1 || responds != 0 || followUps != 1 {
		t.Fatalf("%d acks, %d responds, %d follow-ups; want 1, 0, 1", acks, responds, followUps)
	}
	if n := f.agent.calls.Load(); n != 1 {
		t.Fatalf("model called %d times, want 1", n)
	}
}

// A failed acknowledgement stops the work and records ack_failed.
func TestAutoAckFailureStopsTheWork(t *testing.T) {
	f := setup(t, bot.Config{Mode: bot.ModeAuto, AutoInlineBudget: time.Millisecond})
	started := make(chan struct{}, 1)
	f.agent.run = gate(started, make(chan struct{})) // never released: only cancellation ends it
	c := askCmd("Why?")
	err := f.disp.Dispatch(t.Context(), c, &failingAckResponder{newRecorder()})
	if err == nil {
		t.Fatal("Dispatch returned nil for a failed acknowledgement")
	}
	waitOutcome(t, f, c, bot.OutcomeAckFailed)
}

type failingAckResponder struct{ *recorder }

func (failingAckResponder) Ack(context.Context, bot.Reply) error {
	return errors.New("connection reset")
}

// waitOutcome polls the ledger until c's row has outcome want.
func waitOutcome(t *testing.T, f *fixture, c bot.Command, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		in, err := f.store.GetInteraction(t.Context(), c.Platform, c.InteractionID)
		if err == nil && in.Outcome == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ledger row of %s: %+v, %v; want outcome %q", c.InteractionID, in, err, want)
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

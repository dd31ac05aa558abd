package bot_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/store"
)

// failingEnqueuer fails every Enqueue with err.
type failingEnqueuer struct{ err error }

func (f failingEnqueuer) Enqueue(context.Context, store.Interaction, bot.QueuedCommand) error {
	return f.err
}

// addressed is a recorder that can be queued.
type addressed struct{ *recorder }

func (addressed) Address() (json.RawMessage, error) { return json.RawMessage(`{}`), nil }

// Queue mode's answer when the durable write fails tells apart "nothing
// was written, try again" from "written, not confirmed": a student told to
// try again for a command that still runs gets two answers.
func TestQueueModeEnqueueFailureSaysWhatIsKnown(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"never queued", fmt.Errorf("%w: %w", store.ErrNotWritten, context.DeadlineExceeded), "Please try again in a minute."},
		{"refused", fmt.Errorf("store: queueing a command: connection refused"), "Please try again in a minute."},
		{"commit's outcome unknown", fmt.Errorf("store: queueing a command: %w: %w", store.ErrUncertain, io.ErrUnexpectedEOF), "If you don't hear back from me within a few minutes"},
		{"queued, not confirmed", fmt.Errorf("store: queueing a command: %w", context.DeadlineExceeded), "If you don't hear back from me within a few minutes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := setup(t, bot.Config{Mode: bot.ModeQueue, Enqueuer: failingEnqueuer{c.err}})
			r := addressed{newRecorder()}
			cmd := bot.Command{Platform: bot.PlatformConsole, InteractionID: "Q1", Workspace: "W1", User: "U1",
				Name: "register", Text: "Ada Lovelace ada@example.com"}
			if err := f.disp.Dispatch(t.Context(), cmd, r); err != nil {
				t.Fatal(err)
			}
			got := r.answer(t)
			if acks, _, _ := r.counts(); acks != 0 {
				t.Errorf("acknowledged %d times a command not known to be recorded", acks)
			}
			if !strings.Contains(got.Text, c.want) || !got.Ephemeral {
				t.Errorf("reply %+v, want it to contain %q", got, c.want)
			}
		})
	}
}

// wrappedStore wraps the bot's store as the demo's delay store does: it
// embeds bot.Store and adds nothing.
type wrappedStore struct{ bot.Store }

// A later attempt of a registration its earlier attempt saved still says
// "you're registered", through any wrapper of the store: what the check
// needs is part of bot.Store.
func TestQueuedRetryOfASavedRegistrationThroughAWrapper(t *testing.T) {
	mem := store.NewMemory()
	b := bot.New(wrappedStore{mem}, &fakeAgent{}, bot.Options{})
	d := bot.NewDispatcher(t.Context(), b, bot.Config{Mode: bot.ModeQueue, Enqueuer: failingEnqueuer{}})
	c := registerCmd("Ada Lovelace ada@example.com")
	c.ReceivedAt = time.Now()
	// The first attempt saved the student, then its model call failed.
	if _, err := mem.UpsertRegistration(t.Context(), store.Registration{Platform: c.Platform, Workspace: c.Workspace,
		User: c.User, Channel: c.Channel, Name: "Ada Lovelace", Email: "ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	r := newRecorder()
	out, err := d.RunQueued(t.Context(), bot.QueuedRun{Command: c, Responder: r, Attempt: 2,
		SaveAnswer: func(context.Context, bot.QueuedAnswer) error { return nil },
		Finish:     func(context.Context, store.Interaction) error { return nil }})
	if err != nil || out != bot.OutcomeOK {
		t.Fatalf("attempt 2: %q, %v", out, err)
	}
	if got := r.answer(t); !strings.HasPrefix(got.Text, "You're registered") {
		t.Errorf("attempt 2 said %q", got.Text)
	}
}

// An answer found in the outbox is posted as it is: no work, no model.
func TestQueuedAttemptPostsTheOutbox(t *testing.T) {
	f := setup(t, bot.Config{Mode: bot.ModeQueue, Enqueuer: failingEnqueuer{}})
	r := newRecorder()
	var saved, finished int
	out, err := f.disp.RunQueued(t.Context(), bot.QueuedRun{Command: askCmd("What is Go?"), Responder: r, Attempt: 3,
		Outbox:     &bot.QueuedAnswer{Text: "Go is a language.", Outcome: bot.OutcomeOK},
		SaveAnswer: func(context.Context, bot.QueuedAnswer) error { saved++; return nil },
		Finish:     func(context.Context, store.Interaction) error { finished++; return nil }})
	if err != nil || out != bot.OutcomeOK {
		t.Fatalf("%q, %v", out, err)
	}
	if got := r.answer(t); got.Text != "Go is a language." {
		t.Errorf("posted %q", got.Text)
	}
	if f.agent.calls.Load() != 0 || saved != 0 || finished != 1 {
		t.Errorf("model calls %d, outbox writes %d, finishes %d", f.agent.calls.Load(), saved, finished)
	}
}

// A registration whose commit's outcome is unknown (the connection lost
// during COMMIT) is never answered as if nothing was written.
func TestRegistrationWithUnknownOutcomeSaysUnconfirmed(t *testing.T) {
	f := setup(t, bot.Config{Mode: bot.ModeSync})
	f.store.before = func(context.Context) error {
		return fmt.Errorf("store: saving a registration: %w: %w", store.ErrUncertain, io.ErrUnexpectedEOF)
	}
	r := newRecorder()
	if err := f.disp.Dispatch(t.Context(), registerCmd("Ada Lovelace ada@example.com"), r); err != nil {
		t.Fatal(err)
	}
	if got := r.answer(t); !strings.Contains(got.Text, "couldn't confirm your registration") {
		t.Errorf("answer %q, want the unconfirmed one", got.Text)
	}
}

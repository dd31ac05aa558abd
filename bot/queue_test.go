package bot_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

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

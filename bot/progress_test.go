package bot_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/classbot/classbot/agent"
	"github.com/classbot/classbot/bot"
)

// placeRecorder is a recorder that can edit its acknowledgement, and keeps
// the order of everything it was asked to do.
type placeRecorder struct {
	*recorder
	mu     sync.Mutex
	events []string
}

func (p *placeRecorder) add(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, s)
}

func (p *placeRecorder) Ack(ctx context.Context, r bot.Reply) error {
	p.add("ack")
	return p.recorder.Ack(ctx, r)
}

func (p *placeRecorder) Progress(_ context.Context, r bot.Reply) error {
	p.add("progress: " + r.Text)
	return nil
}

func (p *placeRecorder) FollowUp(ctx context.Context, r bot.Reply) error {
	p.add("follow-up")
	return p.recorder.FollowUp(ctx, r)
}

func (p *placeRecorder) list() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.events...)
}

// A student whose model call waits in line sees their place as an edit of
// the acknowledgement, before the answer, in async and auto mode.
func TestWaitingStudentSeesTheirPlace(t *testing.T) {
	for _, mode := range []bot.Mode{bot.ModeAsync, bot.ModeAuto} {
		t.Run(string(mode), func(t *testing.T) {
			f := setup(t, bot.Config{Mode: mode, AutoInlineBudget: time.Millisecond})
			r := &placeRecorder{recorder: newRecorder()}
			f.agent.run = func(ctx context.Context, _ string) (string, error) {
				wait := agent.WaitFunc(ctx)
				if wait == nil {
					t.Error("the work's context has no wait function")
					return "An answer.", nil
				}
				// The model's line: the student is 7th after 4 s.
				deadline := time.Now().Add(10 * time.Second)
				for !strings.Contains(strings.Join(r.list(), "|"), "progress") {
					wait(7, 4*time.Second)
					if time.Now().After(deadline) {
						t.Error("no place edit while the model call waited in line")
						break
					}
					time.Sleep(time.Millisecond)
				}
				return "An answer.", nil
			}
			if err := f.disp.Dispatch(t.Context(), askCmd("Why?"), r); err != nil {
				t.Fatal(err)
			}
			r.answer(t)
			got := r.list()
			if len(got) != 3 || got[0] != "ack" || !strings.Contains(got[1], "Thinking… You're #7 in line") || got[2] != "follow-up" {
				t.Fatalf("the responder saw %q, want the ack, the place, the answer", got)
			}
		})
	}
}

package bot

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/classbot/classbot/store"
)

// progressRecorder records Progress calls.
type progressRecorder struct {
	mu    sync.Mutex
	texts []string
}

func (p *progressRecorder) Progress(_ context.Context, r Reply) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.texts = append(p.texts, r.Text)
	return nil
}

func (p *progressRecorder) Ack(context.Context, Reply) error      { return nil }
func (p *progressRecorder) Respond(context.Context, Reply) error  { return nil }
func (p *progressRecorder) FollowUp(context.Context, Reply) error { return nil }

func (p *progressRecorder) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.texts)
}

// Place edits come only after the acknowledgement and 1 s of waiting, at
// most one every 5 s, at most two, only when the place changed, and never
// after finish.
func TestPlaceEditsAreFewAndSpaced(t *testing.T) {
	d := NewDispatcher(t.Context(), New(store.NewMemory(), nil, Options{}), Config{})
	t.Cleanup(func() { _ = d.Shutdown(context.WithoutCancel(t.Context())) })
	now := time.Now()
	d.now = func() time.Time { return now }
	rec := &progressRecorder{}
	p := d.newPlaceEdits(t.Context(), rec, &Trace{Command: "ask"})
	step := func(place int, waited time.Duration, want int) {
		t.Helper()
		p.waiting(place, waited)
		p.wg.Wait() // the edit, if one started
		if got := rec.count(); got != want {
			t.Fatalf("after place %d, waited %s: %d edits, want %d (%q)", place, waited, got, want, rec.texts)
		}
	}
	step(9, 10*time.Second, 0) // not acknowledged yet
	p.ack()
	step(9, 999*time.Millisecond, 0) // waited under 1 s
	step(9, time.Second, 1)
	step(8, 4*time.Second, 1) // under 5 s since the last edit
	now = now.Add(5 * time.Second)
	step(8, 9*time.Second, 2)
	now = now.Add(5 * time.Second)
	step(7, 14*time.Second, 2) // two edits at most
	if !strings.Contains(rec.texts[0], "Thinking… You're #9 in line") || !strings.Contains(rec.texts[1], "#8 in line") {
		t.Fatalf("edits %q", rec.texts)
	}

	q := d.newPlaceEdits(t.Context(), rec, &Trace{Command: "ask"})
	q.ack()
	q.finish()
	q.waiting(3, time.Minute)
	q.wg.Wait()
	if rec.count() != 2 {
		t.Fatal("an edit after finish")
	}
}

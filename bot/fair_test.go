package bot_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/classbot/classbot/agent"
	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/store"
)

// The scene, with the real Runner (its offline model answering in
// 200 ms, one call at a time): 50 students of one class ask at once with
// CLASS_LLM_RPM=10; every one is acknowledged at once, the class's calls
// that waited for the model are answered in order of arrival, and a
// student of another class who asks meanwhile is answered while the first
// class's other forty still wait their minute.
func TestOneClassBurstDoesNotHoldAnotherClass(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	runner := agent.NewRunner(agent.Config{Offline: true, OfflineLatency: 200 * time.Millisecond, MaxConcurrency: 1, ClassRPM: 10, Logger: log})
	d := bot.NewDispatcher(t.Context(), bot.New(store.NewMemory(), runner, bot.Options{Logger: log}),
		bot.Config{Mode: bot.ModeAsync, StudentAskRate: -1, CommandTimeout: 5 * time.Minute, Logger: log})
	t.Cleanup(func() {
		// Class A's forty wait for their minute: interrupt them.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 100*time.Millisecond)
		defer cancel()
		_ = d.Shutdown(ctx)
	})

	var (
		mu      sync.Mutex
		answers []string // who was answered, in order
	)
	ask := func(class, user string) *orderRecorder {
		c := askCmd("What is a goroutine?")
		c.Workspace, c.Channel, c.User = "T-"+class, "C-"+class, user
		r := &orderRecorder{recorder: newRecorder(), name: user, mu: &mu, answers: &answers}
		if err := d.Dispatch(t.Context(), c, r); err != nil {
			t.Fatal(err)
		}
		if acks, _, _ := r.counts(); acks != 1 {
			t.Fatalf("%s: %d acknowledgements when Dispatch returned, want 1", user, acks)
		}
		return r
	}
	for i := range 50 {
		ask("A", fmt.Sprintf("a%02d", i))
	}
	b := ask("B", "b")
	b.answer(t)

	mu.Lock()
	got := append([]string(nil), answers...)
	mu.Unlock()
	if len(got) > 11 {
		t.Fatalf("%d answered before B's student: %v; want at most class A's ten of its minute", len(got)-1, got)
	}
	var a []string
	for _, name := range got {
		if strings.HasPrefix(name, "a") {
			a = append(a, name)
		}
	}
	// The first took the free slot as its goroutine came; the rest waited
	// in line, and are answered in order of arrival.
	for i := 2; i < len(a); i++ {
		if a[i] < a[i-1] {
			t.Fatalf("class A answered in the order %v, want the order of arrival after the first", a)
		}
	}
}

// orderRecorder notes, in a shared list, when its student was answered.
type orderRecorder struct {
	*recorder
	name    string
	mu      *sync.Mutex
	answers *[]string
}

func (o *orderRecorder) FollowUp(ctx context.Context, r bot.Reply) error {
	o.mu.Lock()
	*o.answers = append(*o.answers, o.name)
	o.mu.Unlock()
	return o.recorder.FollowUp(ctx, r)
}

package queue_test

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/queue"
)

// placed is a request whose acknowledgement can be edited (bot.Progresser):
// it keeps the edits.
type placed struct {
	*request
	mu    sync.Mutex
	edits []string
}

func (p *placed) Progress(_ context.Context, r bot.Reply) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.edits = append(p.edits, r.Text)
	return nil
}

func (p *placed) shown() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.edits...)
}

var placeRE = regexp.MustCompile(`You're #(\d+) in line`)

// Commands waiting for a worker are told their place in River's order,
// across the replicas (the web replica that enqueued them runs no worker),
// at most twice each; once a worker takes them, they are answered and no
// longer edited.
func TestQueueWaitingCommandsAreToldTheirPlace(t *testing.T) {
	dbURL := newDB(t)
	b := newBoard()
	web := startReplica(t, dbURL, &model{}, b, queue.Config{Workers: -1})
	const n = 6
	reqs := make([]*placed, n)
	for i := range n {
		c := register(fmt.Sprintf("P%d", i), fmt.Sprintf("UP%d", i))
		reqs[i] = &placed{request: &request{id: c.InteractionID, dbURL: dbURL}}
		if err := web.disp.Dispatch(context.Background(), c, reqs[i]); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for i, r := range reqs {
		for len(r.shown()) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s was never told its place", r.id)
			}
			time.Sleep(50 * time.Millisecond)
		}
		m := placeRE.FindStringSubmatch(r.shown()[0])
		if m == nil {
			t.Fatalf("%s was shown %q", r.id, r.shown()[0])
		}
		if place, _ := strconv.Atoi(m[1]); place != i+1 {
			t.Errorf("%s is #%d in line, want #%d", r.id, place, i+1)
		}
	}

	ids := make([]string, n)
	for i, r := range reqs {
		ids[i] = r.id
	}
	startReplica(t, dbURL, &model{}, b, queue.Config{Workers: 4})
	waitPosts(t, b, ids, 30*time.Second)
	waitCompleted(t, dbURL, n, 30*time.Second)
	edits := make([]int, n)
	for i, r := range reqs {
		edits[i] = len(r.shown())
	}
	// Past the next round of edits: none comes after the answer.
	time.Sleep(6 * time.Second)
	for i, r := range reqs {
		if got := len(r.shown()); got != edits[i] || got > 2 {
			t.Errorf("%s edited %d times (%d when answered), want at most 2, none after the answer: %q", r.id, got, edits[i], r.shown())
		}
	}
}

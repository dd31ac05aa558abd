package queue_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/classbot/classbot/queue"
)

func TestPriorityFor(t *testing.T) {
	for _, tt := range []struct{ ahead, want int }{
		{0, 1}, {1, 1}, {2, 2}, {7, 2}, {8, 3}, {31, 3}, {32, 4}, {1000, 4},
	} {
		if got := queue.PriorityFor(tt.ahead); got != tt.want {
			t.Errorf("PriorityFor(%d) = %d, want %d", tt.ahead, got, tt.want)
		}
	}
}

// One class's burst is enqueued before a lone command of another class;
// a worker that runs one job at a time (any replica: the order is River's,
// in the database) answers the lone command after the burst's first two,
// not after all of it.
func TestQueueLoneClassGoesBeforeAnotherClassBurst(t *testing.T) {
	dbURL := newDB(t)
	b := newBoard()
	web := startReplica(t, dbURL, &model{}, b, queue.Config{Workers: -1})
	const burst = 30
	var ids []string
	for i := range burst {
		c := register(fmt.Sprintf("A%02d", i), fmt.Sprintf("UA%02d", i))
		ids = append(ids, c.InteractionID)
		send(t, web, dbURL, c)
	}
	lone := register("B00", "UB00")
	lone.Channel = "C2"
	ids = append(ids, lone.InteractionID)
	send(t, web, dbURL, lone)

	var prio int
	query(t, dbURL, `SELECT priority FROM river_job WHERE args->>'id' = 'B00'`, nil, &prio)
	if prio != 1 {
		t.Errorf("the lone command's priority %d, want 1", prio)
	}
	query(t, dbURL, `SELECT max(priority) FROM river_job WHERE args->>'id' LIKE 'A%'`, nil, &prio)
	if prio != queue.PriorityFor(burst-1) {
		t.Errorf("the burst's last priority %d, want %d", prio, queue.PriorityFor(burst-1))
	}

	startReplica(t, dbURL, &model{}, b, queue.Config{Workers: 1})
	var order []string
	deadline := time.After(60 * time.Second)
	for len(order) < len(ids) {
		select {
		case id := <-b.done:
			order = append(order, id)
		case <-deadline:
			t.Fatalf("answered %d of %d: %v", len(order), len(ids), order)
		}
	}
	if at := slices.Index(order, "B00"); at > 2 {
		t.Errorf("the lone command was answered %d-th, after %v", at+1, order[:at])
	}
	// The burst itself in order of arrival.
	var burstOrder []string
	for _, id := range order {
		if id != "B00" {
			burstOrder = append(burstOrder, id)
		}
	}
	if !slices.IsSorted(burstOrder) {
		t.Errorf("the burst was answered out of order: %v", burstOrder)
	}
}

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/queue"
	"github.com/classbot/classbot/store"
)

func TestMetricsObserveQueueJobs(t *testing.T) {
	m := newMetrics(func() int { return 0 })
	m.observeJob(queue.Report{Attempt: 1, Wait: 20 * time.Millisecond, Run: time.Second, Retry: true})
	m.observeJob(queue.Report{Attempt: 2, Rescued: true, Wait: 30 * time.Second, Run: time.Second, Outcome: bot.OutcomeOK})
	m.observeJob(queue.Report{Attempt: 1, Run: time.Millisecond, Outcome: bot.OutcomeExpired})
	m.observeAck(bot.Trace{Platform: "discord", Mode: bot.ModeQueue, Received: time.Now(), Acknowledged: time.Now().Add(4 * time.Second)})

	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"attempts to retry", testutil.ToFloat64(m.jobAttempts.WithLabelValues("retry")), 1},
		{"attempts done", testutil.ToFloat64(m.jobAttempts.WithLabelValues("done")), 2},
		{"rescued", testutil.ToFloat64(m.jobRescued), 1},
		{"expired", testutil.ToFloat64(m.jobExpired), 1},
		{"queue-mode deadline misses", testutil.ToFloat64(m.deadlineMisses.WithLabelValues("discord", "queue")), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if n, err := testutil.GatherAndCount(m.reg, "classbot_queue_job_attempts", "classbot_queue_wait_seconds", "classbot_queue_run_seconds"); err != nil || n != 3 {
		t.Errorf("queue histograms = %d, %v", n, err)
	}

	// The depth comes from the database, every replica's jobs at once.
	pg, err := store.Open(t.Context(), testDatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if _, _, err := queue.Migrate(t.Context(), pg.Pool()); err != nil {
		t.Fatal(err)
	}
	m.watchQueue(pg.Pool())
	if n, err := testutil.GatherAndCount(m.reg, "classbot_queue_jobs"); err != nil || n != 4 {
		t.Errorf("classbot_queue_jobs series = %d, %v; want one per state", n, err)
	}
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(""), "classbot_queue_oldest_available_seconds"); err == nil {
		t.Error("no classbot_queue_oldest_available_seconds")
	}
}

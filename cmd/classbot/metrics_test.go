package main

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/classbot/classbot/bot"
)

func TestMetricsObserveCommands(t *testing.T) {
	m := newMetrics(func() int { return 7 })
	now := time.Now()
	m.observe(bot.Trace{Platform: "slack", Command: "register", Mode: bot.ModeAsync, Outcome: bot.OutcomeOK,
		Received: now, Acknowledged: now.Add(2 * time.Millisecond), Replied: now.Add(2 * time.Second),
		Store: 5 * time.Millisecond, Agent: 2 * time.Second})
	m.observe(bot.Trace{Platform: "slack", Command: "register", Mode: bot.ModeSync, Outcome: bot.OutcomeOK,
		Received: now, Acknowledged: now.Add(4 * time.Second), Replied: now.Add(4 * time.Second)})
	m.refuse("slack", "bad_signature")

	if got := testutil.ToFloat64(m.commands.WithLabelValues("slack", "register", "async", "ok")); got != 1 {
		t.Errorf("commands_total{async,ok} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.deadlineMisses.WithLabelValues("slack", "sync")); got != 1 {
		t.Errorf("deadline misses for the 4 s sync answer = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.deadlineMisses.WithLabelValues("slack", "async")); got != 0 {
		t.Errorf("deadline misses for the 2 ms async ack = %v, want 0", got)
	}
	if got := testutil.ToFloat64(m.refused.WithLabelValues("slack", "bad_signature")); got != 1 {
		t.Errorf("refused = %v, want 1", got)
	}
	want := `
# HELP classbot_in_flight Commands in progress (every mode), from arrival to the answer's delivery.
# TYPE classbot_in_flight gauge
classbot_in_flight 7
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), "classbot_in_flight"); err != nil {
		t.Error(err)
	}
	// The 3 s deadline is a bucket edge, so "acked within the deadline" is exact.
	if n, err := testutil.GatherAndCount(m.reg, "classbot_ack_latency_seconds"); err != nil || n != 2 {
		t.Errorf("ack latency series = %d, %v; want 2", n, err)
	}
}

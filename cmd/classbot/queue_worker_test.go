package main

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/classbot/classbot/bot/slack/slacktest"
)

// A web-only replica (QUEUE_WORKERS=0) acknowledges and runs nothing; a
// `classbot worker` process (no HTTP server) answers its commands.
func TestQueueWebReplicaAndWorkerProcess(t *testing.T) {
	dbURL := queueDB(t)
	sl := slacktest.New()
	t.Cleanup(sl.Close)
	model := newCountingModel(t, 10*time.Millisecond)
	env := queueEnv(dbURL, sl, model.URL)
	web := maps.Clone(env)
	web["QUEUE_WORKERS"] = "0"
	w := startServe(t, web)

	students := studentsOf("/register", 20, "split")
	sendSlackAll(sl, students, 8, func(int) string { return w.URL })
	requireAcked(t, students)
	time.Sleep(500 * time.Millisecond)
	if n := queryInt(t, dbURL, `SELECT count(*) FROM river_job WHERE state = 'available'`); n != len(students) {
		t.Fatalf("%d jobs waiting, want all %d: a web-only replica must run none", n, len(students))
	}

	workerEnv := maps.Clone(env)
	workerEnv["METRICS_ADDR"] = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(t.Context())
	var out, errOut lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"classbot", "worker"}, func(k string) string { return workerEnv[k] }, strings.NewReader(""), &out, &errOut)
	}()
	if _, _, left := waitAnswered(sl, students, 30*time.Second); left > 0 {
		cancel()
		t.Fatalf("%d commands unanswered by the worker\nstdout:\n%s\nstderr:\n%s", left, out.String(), tail(errOut.String(), 20))
	}
	checkAnsweredOnce(t, sl, students)
	waitLedgerOK(t, dbURL, students, 15*time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("worker stopped with %v\n%s", err, tail(errOut.String(), 20))
	}
	if !strings.Contains(out.String(), "classbot worker running") || strings.Contains(out.String(), "listening on") {
		t.Errorf("worker printed:\n%s", out.String())
	}

	// And a worker with nothing to do is bad usage.
	workerEnv["QUEUE_WORKERS"] = "0"
	if err := run(t.Context(), []string{"classbot", "worker"}, func(k string) string { return workerEnv[k] }, strings.NewReader(""), &out, &errOut); err == nil {
		t.Error("a worker with QUEUE_WORKERS=0 started")
	}
}

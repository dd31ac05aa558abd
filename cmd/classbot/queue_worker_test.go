package main

import (
	"context"
	"io"
	"maps"
	"net/http"
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

// A worker with no platform says so at start and in /readyz, takes none of
// the jobs (they wait in their platform's queue) and counts them as not
// taken; a full worker beside it answers every command once, at its first
// attempt.
func TestQueueWorkerWithoutPlatformBesideAFullOne(t *testing.T) {
	dbURL := queueDB(t)
	sl := slacktest.New()
	t.Cleanup(sl.Close)
	model := newCountingModel(t, 10*time.Millisecond)
	env := queueEnv(dbURL, sl, model.URL)
	web := maps.Clone(env)
	web["QUEUE_WORKERS"] = "0"
	w := startServe(t, web)
	students := studentsOf("/register", 10, "bare")
	sendSlackAll(sl, students, 4, func(int) string { return w.URL })
	requireAcked(t, students)

	bare := map[string]string{"HANDLER_MODE": "queue", "DATABASE_URL": env["DATABASE_URL"], "LLM_BASE_URL": env["LLM_BASE_URL"],
		"METRICS_ADDR": "127.0.0.1:0", "SHUTDOWN_TIMEOUT": "5s"}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errOut lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"classbot", "worker"}, func(k string) string { return bare[k] }, strings.NewReader(""), &out, &errOut)
	}()
	var addr string
	deadline := time.Now().Add(30 * time.Second)
	for addr == "" {
		if time.Now().After(deadline) {
			t.Fatalf("the platform-less worker never started\n%s\n%s", out.String(), tail(errOut.String(), 20))
		}
		if _, after, ok := strings.Cut(out.String(), "classbot metrics on http://"); ok {
			addr, _, _ = strings.Cut(after, "/metrics")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "no platform is configured") {
		t.Errorf("the worker did not say it has no platform:\n%s", out.String())
	}
	if body := httpBody(t, "http://"+addr+"/readyz"); !strings.Contains(body, "queue: no platform is configured") {
		t.Errorf("/readyz: %q", body)
	}
	// Its metrics count the Slack jobs it leaves for another process.
	want := `classbot_queue_not_taken_jobs{platform="slack"} 10`
	for body := httpBody(t, "http://"+addr+"/metrics"); !strings.Contains(body, want); body = httpBody(t, "http://"+addr+"/metrics") {
		if time.Now().After(deadline) {
			t.Fatalf("no %s in\n%s", want, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := queryInt(t, dbURL, `SELECT count(*) FROM river_job WHERE state <> 'available' OR attempt <> 0`); n != 0 {
		t.Errorf("the platform-less worker took %d jobs", n)
	}

	full := maps.Clone(env)
	full["METRICS_ADDR"] = "127.0.0.1:0"
	fctx, fcancel := context.WithCancel(t.Context())
	defer fcancel()
	fdone := make(chan error, 1)
	var fout, ferr lockedBuffer
	go func() {
		fdone <- run(fctx, []string{"classbot", "worker"}, func(k string) string { return full[k] }, strings.NewReader(""), &fout, &ferr)
	}()
	if _, _, left := waitAnswered(sl, students, 60*time.Second); left > 0 {
		t.Fatalf("%d commands unanswered\n%s\n%s\n%v\n%s", left, fout.String(), tail(ferr.String(), 20), queryInts(t, dbURL, `SELECT attempt FROM river_job`), tail(errOut.String(), 10))
	}
	checkAnsweredOnce(t, sl, students)
	waitLedgerOK(t, dbURL, students, 15*time.Second)
	if n := queryInt(t, dbURL, `SELECT coalesce(max(attempt), 0) FROM river_job`); n != 1 {
		t.Errorf("a job took %d attempts, want 1", n)
	}
	cancel()
	fcancel()
	for _, d := range []chan error{done, fdone} {
		if err := <-d; err != nil {
			t.Errorf("worker stopped with %v", err)
		}
	}
}

func httpBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

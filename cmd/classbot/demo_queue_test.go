package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// demo --mode queue: the acknowledgement comes before the work, the work
// (db and agent at once) is run by the process's River worker from the
// job in PostgreSQL, and the job ends completed with the ledger row
// answered.
func TestDemoQueueMode(t *testing.T) {
	env := map[string]string{"DATABASE_URL": testDatabaseURL}
	const db, agent = 300 * time.Millisecond, 600 * time.Millisecond
	out, err := runDemoCmd(t, env, "", "--mode", "queue", "--name", "Ada Queue", "--email", "ada.queue@example.com",
		"--db-delay", db.String(), "--agent-delay", agent.String())
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "mode=queue") || !strings.Contains(out, "Ada Queue") {
		t.Fatalf("not a queue-mode registration:\n%s", out)
	}
	tl := parseTimeline(t, out)
	if !(tl.first < tl.dbStart && tl.first < tl.agentStart) {
		t.Errorf("the first response must come before the work: %+v", tl)
	}
	if !(tl.agentStart < tl.dbEnd && tl.dbStart < tl.agentEnd) {
		t.Errorf("db and agent must overlap: %+v", tl)
	}
	if !(tl.answer >= tl.agentEnd && tl.answer >= tl.dbEnd) {
		t.Errorf("the answer must come after both: %+v", tl)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testDatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var state, outcome, mode string
	err = conn.QueryRow(ctx, `
SELECT j.state::text, i.outcome, i.mode FROM river_job j
JOIN interactions i ON i.platform = j.args->>'platform' AND i.id = j.args->>'id'
WHERE i.platform = 'console' ORDER BY j.id DESC LIMIT 1`).Scan(&state, &outcome, &mode)
	if err != nil {
		t.Fatalf("the demo's job: %v", err)
	}
	if state != "completed" || outcome != "ok" || mode != "queue" {
		t.Errorf("job %s, ledger outcome %q mode %q", state, outcome, mode)
	}
}

// classbot queue reads the state of every replica's jobs from the
// database: after a queue-mode demo it counts at least that answer.
func TestQueueSubcommand(t *testing.T) {
	env := map[string]string{"DATABASE_URL": testDatabaseURL}
	if out, err := runDemoCmd(t, env, "", "--mode", "queue", "--name", "Ada Shell", "--email", "ada.shell@example.com",
		"--db-delay", "0", "--agent-delay", "0"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var out, errOut lockedBuffer
	if err := run(t.Context(), []string{"classbot", "queue", "--since", "10m"}, envOf(env), strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	m := regexp.MustCompile(`last 10m0s: (\d+) answered`).FindStringSubmatch(out.String())
	if m == nil || m[1] == "0" {
		t.Fatalf("classbot queue printed:\n%s", out.String())
	}
	for _, want := range []string{"waiting for a worker", "enqueued→done p50", "after a rescue", "expired:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in:\n%s", want, out.String())
		}
	}
	err := run(t.Context(), []string{"classbot", "queue"}, envOf(nil), strings.NewReader(""), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Errorf("queue without DATABASE_URL: %v", err)
	}
}

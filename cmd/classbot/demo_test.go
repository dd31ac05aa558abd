package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/classbot/classbot/internal/pgtest"
)

var timelineRE = regexp.MustCompile(`timeline: first_response=([0-9.]+)ms db=([0-9.]+)ms–([0-9.]+)ms agent=([0-9.]+)ms–([0-9.]+)ms answer=([0-9.]+)ms`)

// timeline is the demo's "timeline:" line: moments from the command's
// receipt.
type timeline struct{ first, dbStart, dbEnd, agentStart, agentEnd, answer float64 }

func parseTimeline(t *testing.T, out string) timeline {
	t.Helper()
	m := timelineRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no timeline line in:\n%s", out)
	}
	var v [6]float64
	for i := range v {
		f, err := strconv.ParseFloat(m[i+1], 64)
		if err != nil {
			t.Fatal(err)
		}
		v[i] = f
	}
	return timeline{v[0], v[1], v[2], v[3], v[4], v[5]}
}

func runDemoCmd(t *testing.T, env map[string]string, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errOut lockedBuffer
	err := run(t.Context(), append([]string{"classbot", "demo"}, args...), envOf(env), strings.NewReader(stdin), &out, &errOut)
	if strings.Contains(errOut.String(), "@example.com") {
		t.Errorf("the logs carry an email:\n%s", errOut.String())
	}
	return out.String(), err
}

// The lesson, through the real dispatcher and PostgreSQL, as order and
// overlap rather than milliseconds (the README shows measured numbers):
// async answers first and runs db and agent at the same time; sync runs
// them one after the other and answers last.
func TestDemoAsyncOverlapsSyncSerialises(t *testing.T) {
	env := map[string]string{"DATABASE_URL": testDatabaseURL}
	const db, agent = 300 * time.Millisecond, 600 * time.Millisecond
	out, err := runDemoCmd(t, env, "", "--mode", "async", "--name", "Ada Lovelace", "--email", "ada@example.com",
		"--db-delay", db.String(), "--agent-delay", agent.String())
	if err != nil {
		t.Fatal(err)
	}
	async := parseTimeline(t, out)
	if !strings.Contains(out, "Welcome to the class, Ada Lovelace!") {
		t.Errorf("no welcome in:\n%s", out)
	}
	if async.first > async.dbEnd || async.first > async.agentEnd {
		t.Errorf("async: first response at %.1fms, after the work (db ends %.1fms, agent %.1fms); want it first", async.first, async.dbEnd, async.agentEnd)
	}
	if !(async.dbStart < async.agentEnd && async.agentStart < async.dbEnd) {
		t.Errorf("async: db %.1f–%.1fms and agent %.1f–%.1fms do not overlap", async.dbStart, async.dbEnd, async.agentStart, async.agentEnd)
	}
	if ack, follow := strings.Index(out, " ack "), strings.Index(out, " follow-up"); ack < 0 || follow < 0 || ack > follow {
		t.Errorf("async: want the acknowledgement printed before the follow-up:\n%s", out)
	}

	out, err = runDemoCmd(t, env, "", "--mode", "sync", "--name", "Ada Lovelace", "--email", "ada@example.com",
		"--db-delay", db.String(), "--agent-delay", agent.String())
	if err != nil {
		t.Fatal(err)
	}
	sync := parseTimeline(t, out)
	if sync.agentStart < sync.dbEnd {
		t.Errorf("sync: agent started at %.1fms, before db ended at %.1fms; want one after the other", sync.agentStart, sync.dbEnd)
	}
	if sync.first < sync.agentEnd {
		t.Errorf("sync: first response at %.1fms, before the agent ended at %.1fms; want it last", sync.first, sync.agentEnd)
	}
	if !strings.Contains(out, "Welcome back! I updated your registration") {
		t.Errorf("the second registration of the same student did not say it updated:\n%s", out)
	}

	var n int
	pgtest.QueryRow(t, testDatabaseURL, `SELECT count(*) FROM registrations WHERE platform = 'console' AND email = 'ada@example.com'`, nil, &n)
	if n != 1 {
		t.Errorf("%d console registrations for Ada in PostgreSQL, want 1", n)
	}
	pgtest.QueryRow(t, testDatabaseURL, `SELECT count(*) FROM interactions WHERE platform = 'console' AND outcome = 'ok' AND replied_at IS NOT NULL`, nil, &n)
	if n < 2 {
		t.Errorf("%d finished console interactions in the ledger, want at least 2", n)
	}
}

func TestDemoCompareShowsTheDeadline(t *testing.T) {
	out, err := runDemoCmd(t, map[string]string{}, "", "--compare", "--name", "Grace", "--email", "grace@example.com",
		"--db-delay", "0", "--fast-delay", "0", "--agent-delay", "3100ms")
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range []struct{ what, re string }{
		{"sync with the slow model missing the deadline", `sync\s+3\.10s\s+\S+\s+MISSED\s+1`},
		{"async meeting it in two messages", `async\s+3\.10s\s+\S+\s+met\s+2`},
		{"auto answering the fast model in one message", `auto\s+0\.00s\s+\S+\s+met\s+1`},
		{"auto meeting the deadline with the slow model in two", `auto\s+3\.10s\s+\S+\s+met\s+2`},
	} {
		if !regexp.MustCompile(`(?m)^\s*` + row.re + `\s`).MatchString(out) {
			t.Errorf("comparison does not show %s:\n%s", row.what, out)
		}
	}
	if !strings.Contains(out, "queue mode (durable jobs in PostgreSQL) is left out") {
		t.Errorf("without DATABASE_URL the comparison should say queue mode is left out:\n%s", out)
	}
}

// With PostgreSQL the comparison has queue mode's rows too.
func TestDemoCompareWithQueue(t *testing.T) {
	out, err := runDemoCmd(t, map[string]string{"DATABASE_URL": testDatabaseURL}, "", "--compare", "--name", "Grace", "--email", "grace@example.com",
		"--db-delay", "0", "--fast-delay", "0", "--agent-delay", "50ms")
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"sync", "async", "queue", "auto"} {
		if n := len(regexp.MustCompile(`(?m)^\s*`+mode+`\s+\d`).FindAllString(out, -1)); n != 2 {
			t.Errorf("%d %s rows, want 2 (fast and slow model):\n%s", n, mode, out)
		}
	}
}

func TestDemoAsksForNameAndEmail(t *testing.T) {
	out, err := runDemoCmd(t, map[string]string{}, "Katherine Johnson\nkj@example.com\n", "--agent-delay", "0", "--db-delay", "0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Your name: ") || !strings.Contains(out, "Your email: ") || !strings.Contains(out, "Katherine Johnson") {
		t.Errorf("prompts or answer missing:\n%s", out)
	}
}

func TestDemoBadEmailIsExplained(t *testing.T) {
	out, err := runDemoCmd(t, map[string]string{}, "", "--name", "Ada", "--email", "not-an-address", "--agent-delay", "0", "--db-delay", "0")
	if err != nil {
		t.Fatalf("bad input is the student's mistake, not the program's: %v", err)
	}
	if !strings.Contains(out, "doesn't look like an email address") {
		t.Errorf("no explanation:\n%s", out)
	}
}

func TestMigrateSubcommand(t *testing.T) {
	var out, errOut lockedBuffer
	err := run(t.Context(), []string{"classbot", "migrate"}, envOf(map[string]string{"DATABASE_URL": testDatabaseURL}), strings.NewReader(""), &out, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`schema version [1-9][0-9]* `).MatchString(out.String()) {
		t.Errorf("migrate printed %q", out.String())
	}
	err = run(t.Context(), []string{"classbot", "migrate"}, envOf(nil), strings.NewReader(""), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL is not set") {
		t.Errorf("migrate without DATABASE_URL: %v", err)
	}
}

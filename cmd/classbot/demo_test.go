package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/classbot/classbot/internal/pgtest"
)

var timingRE = regexp.MustCompile(`mode=(\w+) total=([0-9.]+)s db=([0-9.]+)s agent=([0-9.]+)s first_response=([0-9.]+)ms`)

type timing struct{ total, db, agent, first time.Duration }

func parseTiming(t *testing.T, out string) timing {
	t.Helper()
	m := timingRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no timing line in:\n%s", out)
	}
	d := func(s, unit string) time.Duration {
		v, err := time.ParseDuration(s + unit)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	return timing{d(m[2], "s"), d(m[3], "s"), d(m[4], "s"), d(m[5], "ms")}
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

// The seed's lesson, through the real dispatcher and PostgreSQL: async's
// answer comes after about max(db, agent), sync's after about their sum.
// The bounds are generous; the README shows measured numbers.
func TestDemoAsyncTakesMaxSyncTakesSum(t *testing.T) {
	env := map[string]string{"DATABASE_URL": testDatabaseURL}
	const db, agent = 300 * time.Millisecond, 600 * time.Millisecond
	out, err := runDemoCmd(t, env, "", "--mode", "async", "--name", "Ada Lovelace", "--email", "ada@example.com",
		"--db-delay", db.String(), "--agent-delay", agent.String())
	if err != nil {
		t.Fatal(err)
	}
	async := parseTiming(t, out)
	if !strings.Contains(out, "Welcome to the class, Ada Lovelace!") {
		t.Errorf("no welcome in:\n%s", out)
	}
	if async.total >= db+agent {
		t.Errorf("async total %s, want under db+agent = %s (db and agent run together)", async.total, db+agent)
	}
	if async.first >= db {
		t.Errorf("async first response after %s, want before the store finished (%s)", async.first, db)
	}

	out, err = runDemoCmd(t, env, "", "--mode", "sync", "--name", "Ada Lovelace", "--email", "ada@example.com",
		"--db-delay", db.String(), "--agent-delay", agent.String())
	if err != nil {
		t.Fatal(err)
	}
	sync := parseTiming(t, out)
	if sync.total < db+agent || sync.first < db+agent {
		t.Errorf("sync total %s, first response %s; want both at least db+agent = %s", sync.total, sync.first, db+agent)
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
		"--db-delay", "0", "--agent-delay", "3100ms")
	if err != nil {
		t.Fatal(err)
	}
	sync := regexp.MustCompile(`(?m)^\s+sync\s+\S+\s+MISSED`)
	async := regexp.MustCompile(`(?m)^\s+async\s+\S+\s+met`)
	if !sync.MatchString(out) || !async.MatchString(out) {
		t.Errorf("comparison does not show sync missing and async meeting the 3 s deadline:\n%s", out)
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
	if !strings.Contains(out.String(), "schema version 1") {
		t.Errorf("migrate printed %q", out.String())
	}
	err = run(t.Context(), []string{"classbot", "migrate"}, envOf(nil), strings.NewReader(""), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL is not set") {
		t.Errorf("migrate without DATABASE_URL: %v", err)
	}
}

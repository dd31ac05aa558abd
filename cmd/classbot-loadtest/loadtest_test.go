package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/classbot/classbot/internal/pgtest"
)

// lockedBuffer is an io.Writer safe for the concurrent writes of run.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// report is the part of the JSON report the tests read.
type report struct {
	Runs []struct {
		Label              string  `json:"label"`
		Mode               string  `json:"mode"`
		Store              string  `json:"store"`
		Sent               int     `json:"sent"`
		Acknowledged       int     `json:"acknowledged"`
		Errors             int     `json:"errors"`
		Timeouts           int     `json:"timeouts"`
		DeadlineMisses     int     `json:"deadline_misses"`
		Refused            int     `json:"refused"`
		FollowUpsExpected  int     `json:"follow_ups_expected"`
		FollowUpsDelivered int     `json:"follow_ups_delivered"`
		Complete           int     `json:"complete"`
		DistinctStudents   int     `json:"distinct_students_registered"`
		BotCPUSeconds      float64 `json:"bot_cpu_seconds"`
		BotPeakRSSMB       float64 `json:"bot_peak_rss_mb"`
		FirstError         string  `json:"first_error"`
		Postgres           *struct {
			Registrations      int64 `json:"registrations"`
			RegistrationsAdded int64 `json:"registrations_added"`
			InteractionsAdded  int64 `json:"interactions_added"`
		} `json:"postgres"`
	} `json:"runs"`
}

// runLoadtest runs "classbot-loadtest --bot-binary BOT ARGS" with env and
// returns the decoded JSON report (when --json is among args) and stderr.
func runLoadtest(t *testing.T, env map[string]string, args ...string) (report, string) {
	t.Helper()
	t.Setenv("TMPDIR", t.TempDir()) // the bot's directory and log go with the test
	var stdout, stderr lockedBuffer
	getenv := func(k string) string { return env[k] }
	all := append([]string{"classbot-loadtest", "--bot-binary", botBinary}, args...)
	if err := run(t.Context(), all, getenv, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatalf("classbot-loadtest %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var rep report
	if strings.Contains(strings.Join(args, " "), "--json") {
		if err := json.Unmarshal([]byte(stdout.String()), &rep); err != nil {
			t.Fatalf("the JSON report does not parse: %v\n%s", err, stdout.String())
		}
	}
	return rep, stderr.String()
}

// migrate runs "classbot migrate" on the test database.
func migrate(t *testing.T) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), botBinary, "migrate")
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"DATABASE_URL=" + testDatabaseURL}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("classbot migrate: %v\n%s", err, out)
	}
}

func TestLoadtestMixAgainstPostgres(t *testing.T) {
	// The load test's four classes (Slack teams T00001000…3, Discord guilds
	// 1100000000000000000 + 1000·class) start empty, also on -count=N.
	migrate(t)
	var deleted int64
	pgtest.QueryRow(t, testDatabaseURL, `WITH d AS (DELETE FROM registrations WHERE workspace = ANY($1) RETURNING 1) SELECT count(*) FROM d`,
		[]any{[]string{"T00001000", "T00001001", "T00001002", "T00001003",
			"1100000000000000000", "1100000000000001000", "1100000000000002000", "1100000000000003000"}}, &deleted)
	rep, stderr := runLoadtest(t, map[string]string{"DATABASE_URL": testDatabaseURL},
		"--platform", "mix", "--classes", "4", "--students", "30", "--rate", "50", "--duration", "1s",
		"--model-latency", "50ms", "--drain", "20s", "--json")
	if len(rep.Runs) != 1 {
		t.Fatalf("%d runs in the report, want 1", len(rep.Runs))
	}
	r := rep.Runs[0]
	if r.Store != "postgres" {
		t.Errorf("store = %q, want postgres", r.Store)
	}
	if r.Sent < 40 || r.Acknowledged != r.Sent || r.Errors+r.Timeouts+r.Refused != 0 {
		t.Fatalf("sent %d, acknowledged %d, errors %d, timeouts %d, busy %d: want about 50 sent, all acknowledged (first error: %s)\nstderr:\n%s",
			r.Sent, r.Acknowledged, r.Errors, r.Timeouts, r.Refused, r.FirstError, stderr)
	}
	if r.DeadlineMisses != 0 {
		t.Errorf("%d deadline misses, want 0", r.DeadlineMisses)
	}
	if r.FollowUpsExpected != r.Sent || r.FollowUpsDelivered != r.FollowUpsExpected {
		t.Errorf("follow-ups %d delivered of %d expected, for %d sent: want all", r.FollowUpsDelivered, r.FollowUpsExpected, r.Sent)
	}
	if r.Postgres == nil {
		t.Fatal("no PostgreSQL row counts in the report")
	}
	if r.DistinctStudents == 0 || r.Postgres.RegistrationsAdded != int64(r.DistinctStudents) {
		t.Errorf("registrations added in PostgreSQL = %d, want the %d distinct students who registered", r.Postgres.RegistrationsAdded, r.DistinctStudents)
	}
	if r.Postgres.InteractionsAdded != int64(r.Sent) {
		t.Errorf("interactions added in PostgreSQL = %d, want one per command (%d)", r.Postgres.InteractionsAdded, r.Sent)
	}
	var slack, discord int64
	pgtest.QueryRow(t, testDatabaseURL, "SELECT count(*) FILTER (WHERE platform = 'slack'), count(*) FILTER (WHERE platform = 'discord') FROM registrations", nil, &slack, &discord)
	if slack == 0 || discord == 0 {
		t.Errorf("registrations: %d on Slack, %d on Discord; a mix needs both", slack, discord)
	}
}

func TestLoadtestPlotsSyncAgainstAsync(t *testing.T) {
	file := filepath.Join(t.TempDir(), "latency.png")
	rep, stderr := runLoadtest(t, map[string]string{},
		"--platform", "discord", "--mode", "both", "--concurrency", "4", "--requests", "20",
		"--model-latency", "20ms", "--plot", file, "--json")
	if !strings.Contains(stderr, "MEMORY STORE") {
		t.Errorf("without DATABASE_URL the load test must say the bot uses its memory store; stderr:\n%s", stderr)
	}
	if len(rep.Runs) != 2 || rep.Runs[0].Mode != "sync" || rep.Runs[1].Mode != "async" {
		t.Fatalf("runs %+v, want sync then async", rep.Runs)
	}
	for _, r := range rep.Runs {
		if r.Complete != 20 {
			t.Errorf("%s: %d complete interactions, want 20 (first error: %s)", r.Mode, r.Complete, r.FirstError)
		}
		// The bot is a child process: its figures come from /proc.
		if r.BotCPUSeconds <= 0 || r.BotPeakRSSMB <= 0 {
			t.Errorf("%s: bot CPU %.3f s, peak memory %.1f MB: want both read from the child's /proc", r.Mode, r.BotCPUSeconds, r.BotPeakRSSMB)
		}
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("--plot wrote no valid PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 300 {
		t.Errorf("chart is %v, want a readable size", b)
	}
}

func TestLoadtestBareReference(t *testing.T) {
	rep, stderr := runLoadtest(t, map[string]string{},
		"--mode", "bare", "--concurrency", "4", "--requests", "40", "--json")
	if len(rep.Runs) != 1 {
		t.Fatalf("%d runs, want 1", len(rep.Runs))
	}
	r := rep.Runs[0]
	if r.Store != "none" || r.Acknowledged != 40 || r.FollowUpsDelivered != 40 {
		t.Fatalf("bare reference: store %q, %d acknowledged, %d follow-ups; want none, 40, 40 (first error: %s)",
			r.Store, r.Acknowledged, r.FollowUpsDelivered, r.FirstError)
	}
	if !strings.Contains(stderr, "bare reference pid") {
		t.Errorf("the bare reference must run as a child process; stderr:\n%s", stderr)
	}
}

func TestLoadtestUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad model latency", []string{"--model-latency", "soon"}, "--model-latency"},
		{"lognormal without p99", []string{"--model-latency", "lognormal:median=2s"}, "p99"},
		{"rate and concurrency", []string{"--rate", "10", "--concurrency", "5"}, "not both"},
		{"unknown platform", []string{"--platform", "teams"}, "--platform"},
		{"unknown mode", []string{"--mode", "queue"}, "--mode"},
		{"bare on discord", []string{"--mode", "bare", "--platform", "discord"}, "Slack only"},
		{"remote target", []string{"--target", "http://example.com:8080"}, "127.0.0.1"},
		{"bad cpu list", []string{"--bot-cpus", "first"}, "--bot-cpus"},
		{"missing bot binary", []string{"--bot-binary", "/nonexistent/classbot"}, "--bot-binary"},
		{"bot binary with target", []string{"--target", "http://127.0.0.1:8080", "--slack-secret", "s", "--bot-binary", "/bin/sh"}, "--bot-binary"},
		{"unknown flag", []string{"--in-process"}, "in-process"},
		{"argument", []string{"now"}, "no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr lockedBuffer
			err := run(t.Context(), append([]string{"classbot-loadtest"}, tt.args...), func(string) string { return "" },
				strings.NewReader(""), &stdout, &stderr)
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v, want a usage error (exit status 2)", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestLoadtestHelp(t *testing.T) {
	var stdout, stderr lockedBuffer
	if err := run(t.Context(), []string{"classbot-loadtest", "--help"}, func(string) string { return "" },
		strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-rate", "-concurrency", "-model-latency", "-plot", "-bot-cpus", "-bot-binary", "bare", "go run ./cmd/classbot-loadtest"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("--help does not mention %s", want)
		}
	}
}

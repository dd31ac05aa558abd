package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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
	Environment struct {
		CPU             string  `json:"cpu"`
		DBLatency       string  `json:"db_latency"`
		CommitLatencyMs float64 `json:"commit_latency_ms"`
	} `json:"environment"`
	Runs []struct {
		Label                 string   `json:"label"`
		DBLatency             string   `json:"db_latency"`
		PostgresCommits       *int64   `json:"postgres_commits"`
		CommitsPerInteraction *float64 `json:"postgres_commits_per_interaction"`
		Mode                  string   `json:"mode"`
		Store                 string   `json:"store"`
		Sent                  int      `json:"sent"`
		Acknowledged          int      `json:"acknowledged"`
		Errors                int      `json:"errors"`
		Timeouts              int      `json:"timeouts"`
		DeadlineMisses        int      `json:"deadline_misses"`
		Refused               int      `json:"refused"`
		FollowUpsExpected     int      `json:"follow_ups_expected"`
		FollowUpsDelivered    int      `json:"follow_ups_delivered"`
		FollowUpsExactlyOnce  int      `json:"follow_ups_exactly_once"`
		Inline                int      `json:"inline"`
		MessagesPerCommand    float64  `json:"messages_per_command"`
		FollowUpDuplicates    int      `json:"follow_up_duplicates"`
		FollowUpsUnknown      int      `json:"follow_ups_unknown"`
		QueueJobs             *struct {
			Inserted   int64 `json:"inserted"`
			Completed  int64 `json:"completed"`
			Unfinished int64 `json:"unfinished"`
		} `json:"queue_jobs"`
		Complete         int     `json:"complete"`
		DistinctStudents int     `json:"distinct_students_registered"`
		BotCPUSeconds    float64 `json:"bot_cpu_seconds"`
		BotPeakRSSMB     float64 `json:"bot_peak_rss_mb"`
		FirstError       string  `json:"first_error"`
		Postgres         *struct {
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

func TestLoadtestQueueModeAnswersEachCommandOnce(t *testing.T) {
	migrate(t)
	// A job an earlier, interrupted load test left unfinished: its sink is
	// gone, so the run deletes it before the bot's workers can take it.
	// The job carries ids; its ledger row holds the reply address.
	var stale int64
	pgtest.QueryRow(t, testDatabaseURL, `WITH row AS (
		INSERT INTO interactions (platform, id, command, mode, received_at, job_input)
		VALUES ('discord', 'stale-1', 'register', 'queue', now(),
			'{"command":{"Name":"register"},"address":{"tok":"lt7-abc-aW50ZXJhY3Rpb246bG9hZHRlc3Q"}}')
		RETURNING platform, id)
		INSERT INTO river_job (args, kind, max_attempts, queue, state, scheduled_at)
		SELECT jsonb_build_object('platform', platform, 'id', id), 'classbot_command', 10, 'classbot', 'available', now() + interval '1 hour'
		FROM row RETURNING id`, nil, &stale)
	rep, stderr := runLoadtest(t, map[string]string{"DATABASE_URL": testDatabaseURL},
		"--mode", "async,queue", "--platform", "mix", "--classes", "4", "--students", "30", "--rate", "50", "--duration", "1s",
		"--model-latency", "50ms", "--drain", "20s", "--json")
	if len(rep.Runs) != 2 || rep.Runs[0].Mode != "async" || rep.Runs[1].Mode != "queue" {
		t.Fatalf("runs %+v, want async then queue", rep.Runs)
	}
	if !strings.Contains(stderr, "deleted 1 unfinished jobs of earlier load-test runs") {
		t.Errorf("stderr does not say the stale job was deleted:\n%s", stderr)
	}
	var left int64
	pgtest.QueryRow(t, testDatabaseURL, "SELECT count(*) FROM river_job WHERE id = $1", []any{stale}, &left)
	if left != 0 {
		t.Error("the stale load-test job is still there")
	}
	r := rep.Runs[1]
	if r.Store != "postgres" || r.Sent < 40 || r.Acknowledged != r.Sent || r.Errors+r.Timeouts+r.Refused != 0 {
		t.Fatalf("store %s, sent %d, acknowledged %d, errors %d, timeouts %d, busy %d (first error: %s)\nstderr:\n%s",
			r.Store, r.Sent, r.Acknowledged, r.Errors, r.Timeouts, r.Refused, r.FirstError, stderr)
	}
	if r.FollowUpsExpected != r.Sent || r.FollowUpsDelivered != r.Sent || r.FollowUpsExactlyOnce != r.Sent || r.FollowUpDuplicates+r.FollowUpsUnknown != 0 {
		t.Errorf("follow-ups: %d expected, %d delivered, %d exactly once, %d more than once, %d unknown, for %d sent: want each exactly once",
			r.FollowUpsExpected, r.FollowUpsDelivered, r.FollowUpsExactlyOnce, r.FollowUpDuplicates, r.FollowUpsUnknown, r.Sent)
	}
	if r.QueueJobs == nil || r.QueueJobs.Inserted != int64(r.Sent) || r.QueueJobs.Completed != int64(r.Sent) || r.QueueJobs.Unfinished != 0 {
		t.Errorf("River jobs %+v, want %d inserted and completed", r.QueueJobs, r.Sent)
	}
	if r.CommitsPerInteraction == nil {
		t.Error("no commits per interaction for the queue run")
	}
	if rep.Runs[0].QueueJobs != nil {
		t.Error("the async run reports River jobs")
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
		{"unknown mode", []string{"--mode", "kafka"}, "--mode"},
		{"queue without PostgreSQL", []string{"--mode", "async,queue"}, "PostgreSQL"},
		{"queue on the memory store", []string{"--mode", "queue", "--store", "memory"}, "PostgreSQL"},
		{"too many queue workers", []string{"--mode", "queue", "--queue-workers", "20000"}, "--queue-workers"},
		{"bare on discord", []string{"--mode", "bare", "--platform", "discord"}, "Slack only"},
		{"remote target", []string{"--target", "http://example.com:8080"}, "127.0.0.1"},
		{"bad cpu list", []string{"--bot-cpus", "first"}, "--bot-cpus"},
		{"missing bot binary", []string{"--bot-binary", "/nonexistent/classbot"}, "--bot-binary"},
		{"bot binary with target", []string{"--target", "http://127.0.0.1:8080", "--slack-secret", "s", "--bot-binary", "/bin/sh"}, "--bot-binary"},
		{"unknown flag", []string{"--in-process"}, "in-process"},
		{"unknown store", []string{"--store", "sqlite"}, "--store"},
		{"postgres store without DATABASE_URL", []string{"--store", "postgres"}, "DATABASE_URL"},
		{"db latency without DATABASE_URL", []string{"--db-latency", "5ms"}, "DATABASE_URL"},
		{"db latency on the memory store", []string{"--store", "memory", "--db-latency", "5ms"}, "--store postgres"},
		{"negative db latency", []string{"--db-latency", "-5ms"}, "--db-latency"},
		{"huge db latency", []string{"--db-latency", "1m"}, "--db-latency"},
		{"references on discord", []string{"--references", "--platform", "discord"}, "Slack only"},
		{"references with target", []string{"--target", "http://127.0.0.1:8080", "--slack-secret", "s", "--references"}, "--references"},
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
	for _, want := range []string{"-rate", "-concurrency", "-model-latency", "-plot", "-bot-cpus", "-bot-binary", "bare", "go run ./cmd/classbot-loadtest",
		"-store", "-db-latency", "-references"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("--help does not mention %s", want)
		}
	}
}

func TestLoadtestDBLatencyReportsCommitsBesideItsReferences(t *testing.T) {
	migrate(t)
	file := filepath.Join(t.TempDir(), "latency.png")
	rep, stderr := runLoadtest(t, map[string]string{"DATABASE_URL": testDatabaseURL},
		"--store", "postgres", "--db-latency", "5ms", "--references", "--rate", "30", "--duration", "1s",
		"--model-latency", "20ms", "--drain", "20s", "--plot", file, "--json")
	if !strings.Contains(stderr, "through a proxy") {
		t.Errorf("stderr does not say the bot reaches PostgreSQL through the proxy:\n%s", stderr)
	}
	if rep.Environment.DBLatency != "5ms" || rep.Environment.CPU == "" {
		t.Errorf("environment %+v, want the CPU and db_latency 5ms", rep.Environment)
	}
	if len(rep.Runs) != 3 {
		t.Fatalf("%d runs, want the bare reference, the memory store, then PostgreSQL", len(rep.Runs))
	}
	for i, want := range []struct{ label, store string }{{"bare", "none"}, {"async, memory store", "memory"}, {"async, postgres +5ms", "postgres"}} {
		r := rep.Runs[i]
		if r.Label != want.label || r.Store != want.store {
			t.Errorf("run %d: %q on %q, want %q on %q", i, r.Label, r.Store, want.label, want.store)
		}
		if r.Sent < 20 || r.Complete != r.Sent || r.DeadlineMisses != 0 {
			t.Errorf("%s: sent %d, complete %d, deadline misses %d: want about 30, all complete, none missed (first error: %s)",
				r.Label, r.Sent, r.Complete, r.DeadlineMisses, r.FirstError)
		}
	}
	for _, r := range rep.Runs[:2] {
		if r.PostgresCommits != nil || r.CommitsPerInteraction != nil {
			t.Errorf("%s: commits reported (%v, %v), want null: it does not use PostgreSQL", r.Label, r.PostgresCommits, r.CommitsPerInteraction)
		}
	}
	pg := rep.Runs[2]
	if pg.DBLatency != "5ms" {
		t.Errorf("PostgreSQL run's db_latency %q, want 5ms", pg.DBLatency)
	}
	if pg.PostgresCommits == nil || pg.CommitsPerInteraction == nil {
		t.Fatalf("PostgreSQL run reports no commits (postgres_error: see stderr)\n%s", stderr)
	}
	// Every interaction writes its ledger row, so it commits something; a
	// run of one or two transactions per batch still commits at least
	// once, and no interaction takes more than a handful.
	if *pg.PostgresCommits <= 0 || *pg.CommitsPerInteraction <= 0 || *pg.CommitsPerInteraction > 10 {
		t.Errorf("%d commits, %.2f per interaction: want more than 0 and at most 10", *pg.PostgresCommits, *pg.CommitsPerInteraction)
	}
	if pg.Postgres == nil || pg.Postgres.InteractionsAdded != int64(pg.Sent) {
		t.Errorf("rows %+v: want one interaction row per command (%d) written through the proxy", pg.Postgres, pg.Sent)
	}
	if _, err := os.Stat(file); err != nil {
		t.Errorf("--plot: %v", err)
	}
}

func TestLoadtestTextShowsOneTableWithItsMachine(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	var stdout, stderr lockedBuffer
	args := []string{"classbot-loadtest", "--bot-binary", botBinary, "--store", "memory", "--references",
		"--concurrency", "2", "--requests", "10", "--model-latency", "10ms"}
	if err := run(t.Context(), args, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"classbot load test on ", "CPUs)", "no added database latency", "commits/interaction", "PostgreSQL commits  n/a"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	// The table: a header and a row per run (bare, then the memory store).
	i := strings.Index(out, "commits/interaction")
	rows := strings.Split(strings.TrimSpace(out[i:]), "\n")[1:]
	if len(rows) != 2 || !strings.HasPrefix(strings.TrimSpace(rows[0]), "bare") || !strings.Contains(rows[1], "memory") {
		t.Errorf("table rows %q, want bare then the memory store", rows)
	}
}

func TestPlanPutsReferencesFirst(t *testing.T) {
	tests := []struct {
		name       string
		modes      []string
		postgres   bool
		references bool
		dbLatency  time.Duration
		want       []runSpec
	}{
		{"as before", []string{"async"}, true, false, 0, []runSpec{{"async", "async", "postgres"}}},
		{"latency names the run", []string{"async"}, true, false, 5 * time.Millisecond, []runSpec{{"async, postgres +5ms", "async", "postgres"}}},
		{"references on postgres", []string{"async"}, true, true, 0, []runSpec{
			{"bare", "bare", "none"}, {"async, memory store", "async", "memory"}, {"async, postgres", "async", "postgres"}}},
		{"references on memory: bare only", []string{"sync", "async"}, false, true, 0, []runSpec{
			{"bare", "bare", "none"}, {"sync, memory store", "sync", "memory"}, {"async, memory store", "async", "memory"}}},
		{"queue has no memory reference", []string{"async", "queue"}, true, true, 0, []runSpec{
			{"bare", "bare", "none"}, {"async, memory store", "async", "memory"}, {"async, postgres", "async", "postgres"}, {"queue, postgres", "queue", "postgres"}}},
		{"async as queue's reference", []string{"async", "queue"}, true, false, 0, []runSpec{
			{"async", "async", "postgres"}, {"queue", "queue", "postgres"}}},
		{"bare already asked for", []string{"async", "bare"}, true, true, 0, []runSpec{
			{"async, memory store", "async", "memory"}, {"async, postgres", "async", "postgres"}, {"bare", "bare", "none"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := plan(tt.modes, tt.postgres, tt.references, tt.dbLatency); !slices.Equal(got, tt.want) {
				t.Errorf("plan = %v, want %v", got, tt.want)
			}
		})
	}
}

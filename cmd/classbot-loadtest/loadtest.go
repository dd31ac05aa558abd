package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/classbot/classbot/internal/dotenv"
	"github.com/classbot/classbot/internal/loadtest"
)

// botPackage is the command the load test builds and starts as its bot.
const botPackage = "github.com/classbot/classbot/cmd/classbot"

const synopsis = `[flags]

Plays many students in many classes typing /register (and some /ask) at once,
as signed Slack slash commands and signed Discord interactions, against a
classbot serve that it starts as a child process on 127.0.0.1 (or --target),
with local stand-ins for the model and for the platforms' follow-up endpoints.
It reports the acknowledgement latency against the 3-second deadline, the
follow-ups and their end-to-end latency, throughput, the bot's CPU time per
interaction and peak memory, and, on PostgreSQL, the rows written and the
commits per complete interaction (pg_stat_database.xact_commit before and
after, read directly, never through the proxy). The bot uses PostgreSQL when
DATABASE_URL is set (--store auto), otherwise its in-memory store, and says
so; --store postgres or --store memory makes the choice explicit.

The bot is the real classbot: built from this source tree once per
invocation (go build ./cmd/classbot into a temporary directory), or the
binary given with --bot-binary. It runs in a fresh private directory with
only the run's environment (no .env); this command reads DATABASE_URL (and,
with --target, the secrets) from the environment and from a .env file in the
working directory.

Open loop:   go run ./cmd/classbot-loadtest --rate 1000 --duration 30s
Closed loop: go run ./cmd/classbot-loadtest --concurrency 200 --duration 20s
Auto beside async: go run ./cmd/classbot-loadtest --mode async,auto --rate 200 --model-latency 300ms
Sync against async, charted: go run ./cmd/classbot-loadtest --mode both --rate 1000 \
  --model-latency lognormal:median=2s,p99=6s --plot latency.png
The reference (verify, acknowledge, post a follow-up; nothing else): --mode bare
PostgreSQL a few milliseconds away, with both references in one table:
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable \
  go run ./cmd/classbot-loadtest --store postgres --db-latency 5ms --references --rate 300

Flags:`

// usageError is bad usage: the command line was wrong. main exits 2 on it.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// flags are the command's flags.
type flags struct {
	platform, modes, modelLatency, botCPUs, plotFile, target   string
	slackSecret, discordKey, discordAppID, sinkAddr, modelAddr string
	botBinary, store                                           string
	classes, students, concurrency, requests, connections      int
	maxInFlight, llmConcurrency, queueWorkers, targetPID       int
	rate, askRatio, studentAskRate                             float64
	duration, drain, timeout, dbLatency, autoBudget            time.Duration
	jsonOut, bare, references                                  bool
}

// Stores the bot can use (--store).
const (
	storeAuto     = "auto"
	storePostgres = "postgres"
	storeMemory   = "memory"
)

// maxDBLatency bounds --db-latency: beyond it the bot's own timeouts, not
// the database, would be measured.
const maxDBLatency = 2 * time.Second

// run is the whole program; main only calls it, so tests run it in-process
// (the bots it starts are child processes all the same). It returns a
// *usageError for bad usage.
func run(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, stdout, stderr io.Writer) error {
	getenv, err := dotenv.Getenv(getenv)
	if err != nil {
		return err
	}
	args = args[1:]
	if len(args) > 0 && args[0] == "serve-bare" {
		// Hidden: the bare reference as a child process (see --mode bare).
		return loadtest.ServeBare(ctx, getenv("HTTP_ADDR"), getenv("SLACK_SIGNING_SECRET"), stdout)
	}

	var f flags
	fs := flag.NewFlagSet("classbot-loadtest", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: go run ./cmd/classbot-loadtest %s\n", synopsis)
		fs.PrintDefaults()
	}
	fs.StringVar(&f.platform, "platform", "slack", "slack, discord, or mix (even classes on Slack, odd ones on Discord)")
	fs.StringVar(&f.modes, "mode", "async", "the bot's handler mode: sync, async, queue (durable jobs on River: needs PostgreSQL), auto (inline within AUTO_INLINE_BUDGET, else acknowledged and followed up), both (sync then async), bare (the reference handler), or a list such as async,auto")
	fs.BoolVar(&f.bare, "bare", false, "same as --mode bare")
	fs.IntVar(&f.classes, "classes", 10, "classes (Slack workspaces, Discord guilds)")
	fs.IntVar(&f.students, "students", 500, "students per class")
	fs.Float64Var(&f.askRatio, "ask-ratio", 0.1, "share of /ask commands; the rest are /register")
	fs.Float64Var(&f.rate, "rate", 0, "open loop: commands per second for --duration")
	fs.IntVar(&f.concurrency, "concurrency", 0, "closed loop: students typing back to back, each waiting for its acknowledgement (default 50)")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "how long to send (at most 1h)")
	fs.IntVar(&f.requests, "requests", 0, "closed loop: stop after this many commands (--duration still caps it)")
	fs.DurationVar(&f.drain, "drain", 30*time.Second, "after sending, how long to wait for follow-ups")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "per-request timeout for the acknowledgement")
	fs.IntVar(&f.connections, "connections", 0, "connections to the bot (default: --concurrency for a closed loop, 4096 for an open loop)")
	fs.StringVar(&f.modelLatency, "model-latency", "2s", "the model stand-in's latency: a duration, or lognormal:median=2s,p99=6s")
	fs.Float64Var(&f.studentAskRate, "student-ask-rate", 0, "STUDENT_ASK_RATE for the bot it starts: /ask per student per minute (0: no limit)")
	fs.DurationVar(&f.autoBudget, "auto-inline-budget", 0, "AUTO_INLINE_BUDGET for the bot it starts in auto mode (default: the bot's, 2s)")
	fs.IntVar(&f.maxInFlight, "max-in-flight", 20000, "MAX_IN_FLIGHT for the bot it starts (async commands at once)")
	fs.IntVar(&f.llmConcurrency, "llm-concurrency", 20000, "LLM_MAX_CONCURRENCY for the bot it starts (model calls at once)")
	fs.IntVar(&f.queueWorkers, "queue-workers", 0, "QUEUE_WORKERS for the bot it starts in queue mode (jobs at once; default: --max-in-flight, at most River's 10000)")
	fs.StringVar(&f.botCPUs, "bot-cpus", "", "pin the bot to these CPUs (taskset list such as 0 or 0-1), so the load runs elsewhere")
	fs.StringVar(&f.botBinary, "bot-binary", "", "the classbot executable to start (default: go build ./cmd/classbot from this source tree into a temporary directory)")
	fs.BoolVar(&f.jsonOut, "json", false, "print the report as JSON")
	fs.StringVar(&f.plotFile, "plot", "", "write the acknowledgement latency chart to this PNG file")
	fs.StringVar(&f.target, "target", "", "use a running classbot at this 127.0.0.1 URL instead of starting one")
	fs.IntVar(&f.targetPID, "target-pid", 0, "with --target: its process id, for CPU and memory figures")
	fs.StringVar(&f.slackSecret, "slack-secret", "", "with --target: its SLACK_SIGNING_SECRET (default: $SLACK_SIGNING_SECRET)")
	fs.StringVar(&f.discordKey, "discord-private-key", "", "with --target: hex Ed25519 seed whose public key is its DISCORD_PUBLIC_KEY (default: $LOADTEST_DISCORD_PRIVATE_KEY)")
	fs.StringVar(&f.discordAppID, "discord-app-id", "", "with --target: its DISCORD_APP_ID (default: $DISCORD_APP_ID)")
	fs.StringVar(&f.sinkAddr, "sink-addr", "", "where the follow-up sink listens (default 127.0.0.1:0; with --target, its DISCORD_API_URL must be http://ADDR/api/v10/ and its SLACK_RESPONSE_URL_PREFIX http://ADDR/slack/commands/)")
	fs.StringVar(&f.modelAddr, "model-addr", "", "where the model stand-in listens (default 127.0.0.1:0; with --target, its LLM_BASE_URL must be http://ADDR/v1)")
	fs.StringVar(&f.store, "store", storeAuto, "the bot's store: postgres (DATABASE_URL must be set), memory (DATABASE_URL is ignored), or auto (postgres when DATABASE_URL is set)")
	fs.DurationVar(&f.dbLatency, "db-latency", 0, "put a TCP proxy between the bot and PostgreSQL that adds this latency each way, such as 5ms for a managed database nearby (postgres store only; at most 2s)")
	fs.BoolVar(&f.references, "references", false, "before the main runs, send the same traffic to the bare reference and (with the postgres store) to the in-memory store, and print every run in one table (Slack only, as the bare reference)")
	if err := parseFlags(fs, args, stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return usagef("takes no arguments, got %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })

	modes, cfg, err := f.config(set, getenv)
	if err != nil {
		return err
	}
	dbURL := strings.TrimSpace(getenv("DATABASE_URL"))
	switch f.store {
	case storeMemory:
		dbURL = ""
	case storePostgres:
		if dbURL == "" {
			return usagef("--store postgres needs DATABASE_URL, such as postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
		}
	}
	if slices.Contains(modes, "queue") && dbURL == "" && f.target == "" {
		return usagef("--mode queue keeps its jobs in PostgreSQL: set DATABASE_URL and give --store postgres (or auto), not memory")
	}
	if f.dbLatency > 0 && dbURL == "" {
		return usagef("--db-latency puts a proxy in front of PostgreSQL: set DATABASE_URL (and --store postgres)")
	}
	if dbURL == "" && f.target == "" && !onlyBare(modes) {
		why := "DATABASE_URL is not set"
		if f.store == storeMemory {
			why = "--store memory"
		}
		fmt.Fprintf(stderr, "loadtest: %s: the bot runs on its MEMORY STORE; nothing is written to PostgreSQL\n", why)
	}
	env := loadtest.Environment{CPU: loadtest.CPUModel(), CPUs: loadtest.MachineCPUs(), BotCPUs: f.botCPUs}
	botDBURL := dbURL
	if dbURL != "" {
		if lat, err := loadtest.CommitLatency(ctx, dbURL, 200); err != nil {
			fmt.Fprintf(stderr, "loadtest: PostgreSQL's commit latency not measured: %v\n", err)
		} else {
			env.CommitLatencyMs = float64(lat.Microseconds()) / 1000
		}
	}
	if f.dbLatency > 0 {
		proxy, u, err := loadtest.ProxyDatabase(ctx, dbURL, f.dbLatency)
		if err != nil {
			return err
		}
		defer proxy.Close()
		botDBURL, env.DBLatency = u, f.dbLatency.String()
		fmt.Fprintf(stderr, "loadtest: the bot reaches PostgreSQL through a proxy at %s adding %s each way\n", proxy.Addr(), f.dbLatency)
	}
	runs := plan(modes, dbURL != "", f.references, f.dbLatency)

	botPath, bareExe := f.botBinary, ""
	if f.target == "" {
		if !onlyBare(modes) && botPath == "" {
			dir, err := os.MkdirTemp("", "classbot-loadtest-build-*")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			fmt.Fprintf(stderr, "loadtest: building classbot from this source tree (go build %s)…\n", botPackage)
			if botPath, err = buildBot(ctx, dir); err != nil {
				return err
			}
		}
		if slices.Contains(modes, "bare") || f.references {
			if bareExe, err = os.Executable(); err != nil {
				return fmt.Errorf("find this executable for the bare reference: %w", err)
			}
		}
	}
	cpus, _ := parseCPUList(f.botCPUs) // checked with the flags

	var reports []*loadtest.Report
	for _, rs := range runs {
		c := cfg
		c.Label, c.Mode = rs.label, rs.mode
		opts := loadtest.Options{Progress: stderr, BotEnv: map[string]string{}}
		if rs.mode == "bare" {
			c.Mode = "async"
		}
		if rs.store == storePostgres {
			c.DatabaseURL, c.DBLatency = dbURL, f.dbLatency
		}
		if f.target != "" {
			c.Target, opts.TargetPID = f.target, f.targetPID
		} else {
			if rs.store == storePostgres {
				opts.BotEnv["DATABASE_URL"] = botDBURL
			}
			opts.BotEnv["MAX_IN_FLIGHT"] = strconv.Itoa(f.maxInFlight)
			opts.BotEnv["LLM_MAX_CONCURRENCY"] = strconv.Itoa(f.llmConcurrency)
			if rs.mode == "queue" {
				opts.BotEnv["QUEUE_WORKERS"] = strconv.Itoa(f.workers())
			}
			// The limits of one student's or one class's share are off
			// unless asked for: the load test measures the bot's capacity.
			opts.BotEnv["STUDENT_ASK_RATE"] = strconv.FormatFloat(f.studentAskRate, 'g', -1, 64)
			if rs.mode == "auto" && f.autoBudget > 0 {
				opts.BotEnv["AUTO_INLINE_BUDGET"] = f.autoBudget.String()
			}
			child := loadtest.Child{Path: botPath, Args: []string{"serve"}, Name: "bot", Store: rs.store,
				CPUs: cpus, CPUList: f.botCPUs, Progress: stderr}
			if rs.mode == "bare" {
				child.Path, child.Args, child.Name, child.Store = bareExe, []string{"serve-bare"}, "bare reference", "none"
			}
			opts.Start = child.Start
		}
		rep, err := loadtest.Run(ctx, c, opts)
		if err != nil {
			return fmt.Errorf("loadtest %s: %w", rs.label, err)
		}
		reports = append(reports, rep)
	}

	if f.plotFile != "" {
		if err := loadtest.Plot(f.plotFile, reports); err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		fmt.Fprintf(stderr, "loadtest: wrote %s\n", f.plotFile)
	}
	if f.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Environment loadtest.Environment `json:"environment"`
			Runs        []*loadtest.Report   `json:"runs"`
		}{env, reports})
	}
	env.WriteHeader(stdout)
	for _, r := range reports {
		fmt.Fprintln(stdout)
		r.WriteText(stdout)
	}
	if len(reports) > 1 {
		fmt.Fprintln(stdout)
		loadtest.WriteTable(stdout, reports)
	}
	return nil
}

// runSpec is one run of an invocation: a handler mode on a store.
type runSpec struct {
	label, mode, store string // store: postgres, memory or none (bare)
}

// plan lists the invocation's runs: with references, the bare reference
// and (when the main runs use PostgreSQL) each mode on the in-memory store
// first, then the main runs, all with the same traffic.
func plan(modes []string, postgres, references bool, dbLatency time.Duration) []runSpec {
	store := storeMemory
	if postgres {
		store = storePostgres
	}
	var runs []runSpec
	if references {
		if !slices.Contains(modes, "bare") {
			runs = append(runs, runSpec{label: "bare", mode: "bare", store: "none"})
		}
		if postgres {
			for _, m := range modes {
				if m != "bare" && m != "queue" { // queue mode keeps its jobs in PostgreSQL
					runs = append(runs, runSpec{label: m + ", memory store", mode: m, store: storeMemory})
				}
			}
		}
	}
	for _, m := range modes {
		if m == "bare" {
			runs = append(runs, runSpec{label: m, mode: m, store: "none"})
			continue
		}
		label := m
		if references || dbLatency > 0 {
			label = m + ", " + store
			if store == storeMemory {
				label += " store"
			}
			if dbLatency > 0 {
				label += " +" + dbLatency.String()
			}
		}
		runs = append(runs, runSpec{label: label, mode: m, store: store})
	}
	return runs
}

// buildBot builds classbot from the source tree this command runs in into
// dir and returns the executable's path. The go command's build cache makes
// every build after the first take about a second.
func buildBot(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "classbot")
	if runtime.GOOS == "windows" {
		out += ".exe"
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", errors.New("build classbot: the go command is not on PATH; give --bot-binary")
	}
	cmd := exec.CommandContext(ctx, goCmd, "build", "-o", out, botPackage)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build classbot (run from inside the classbot source tree, or give --bot-binary): %w\n%s",
			err, strings.TrimSpace(string(msg)))
	}
	return out, nil
}

// parseFlags parses args; --help prints usage to stdout and returns
// flag.ErrHelp; any other error is a usage error.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(stdout)
			fs.Usage()
			return flag.ErrHelp
		}
	}
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return usagef("%v (see --help)", err)
	}
	return nil
}

func onlyBare(modes []string) bool {
	for _, m := range modes {
		if m != "bare" {
			return false
		}
	}
	return true
}

// config checks the flags and turns them into the runs' modes and Config.
func (f *flags) config(set map[string]bool, getenv func(string) string) ([]string, loadtest.Config, error) {
	var cfg loadtest.Config
	if set["rate"] && set["concurrency"] {
		return nil, cfg, usagef("give --rate (open loop) or --concurrency (closed loop), not both")
	}
	if set["rate"] && f.rate <= 0 {
		return nil, cfg, usagef("--rate must be above 0")
	}
	if set["requests"] && set["rate"] {
		return nil, cfg, usagef("--requests bounds a closed loop; an open loop sends --rate × --duration")
	}
	if f.duration <= 0 || f.duration > time.Hour {
		return nil, cfg, usagef("--duration must be above 0 and at most 1h")
	}
	if f.drain <= 0 || f.drain > 30*time.Minute || f.timeout <= 0 {
		return nil, cfg, usagef("--drain and --timeout must be above 0 (--drain at most 30m)")
	}
	if f.classes <= 0 || f.students <= 0 || f.askRatio < 0 || f.askRatio > 1 {
		return nil, cfg, usagef("--classes and --students must be above 0 and --ask-ratio between 0 and 1")
	}
	if f.queueWorkers < 0 || f.queueWorkers > riverMaxWorkers {
		return nil, cfg, usagef("--queue-workers must be between 1 and %d (River's most per process)", riverMaxWorkers)
	}
	if f.concurrency < 0 || f.requests < 0 || f.connections < 0 || f.maxInFlight <= 0 || f.llmConcurrency <= 0 {
		return nil, cfg, usagef("--concurrency, --requests, --connections, --max-in-flight and --llm-concurrency must be positive")
	}
	switch f.platform {
	case "slack", "discord", "mix":
	default:
		return nil, cfg, usagef("--platform %q: use slack, discord or mix", f.platform)
	}
	lat, err := loadtest.ParseLatency(f.modelLatency)
	if err != nil {
		return nil, cfg, usagef("--model-latency: %v", err)
	}
	modes, err := parseModes(f.modes, f.bare)
	if err != nil {
		return nil, cfg, err
	}
	if (slices.Contains(modes, "bare") || f.references) && f.platform != "slack" {
		return nil, cfg, usagef("the bare reference (--mode bare, --references) speaks Slack only: use --platform slack")
	}
	switch f.store {
	case storeAuto, storePostgres, storeMemory:
	default:
		return nil, cfg, usagef("--store %q: use postgres, memory or auto", f.store)
	}
	if f.dbLatency < 0 || f.dbLatency > maxDBLatency {
		return nil, cfg, usagef("--db-latency must be between 0 and %s", maxDBLatency)
	}
	if f.dbLatency > 0 && f.store == storeMemory {
		return nil, cfg, usagef("--db-latency puts a proxy in front of PostgreSQL: it needs --store postgres, not memory")
	}
	if f.target != "" {
		if err := loadtest.CheckLoopbackURL(f.target); err != nil {
			return nil, cfg, usagef("--target: %v", err)
		}
		if len(modes) > 1 || f.botCPUs != "" || f.botBinary != "" {
			return nil, cfg, usagef("with --target, give one --mode (the target's) and neither --bot-cpus nor --bot-binary")
		}
		if f.dbLatency > 0 || f.references {
			return nil, cfg, usagef("with --target, the load test starts no bot: --db-latency and --references need a bot it starts")
		}
	} else if set["target-pid"] {
		return nil, cfg, usagef("--target-pid goes with --target")
	}
	if f.botCPUs != "" {
		if _, err := parseCPUList(f.botCPUs); err != nil {
			return nil, cfg, usagef("--bot-cpus: %v", err)
		}
	}
	if f.botBinary != "" {
		if st, err := os.Stat(f.botBinary); err != nil || st.IsDir() {
			return nil, cfg, usagef("--bot-binary %q is not an executable file", f.botBinary)
		}
	}
	cfg = loadtest.Config{
		Platform: f.platform, Classes: f.classes, Students: f.students, AskRatio: f.askRatio,
		Rate: f.rate, Concurrency: f.concurrency, Duration: f.duration, Requests: f.requests,
		Connections: f.connections, Timeout: f.timeout, Drain: f.drain, ModelLatency: lat,
		SinkAddr: f.sinkAddr, ModelAddr: f.modelAddr,
	}
	if f.target != "" {
		cfg.SlackSecret = firstNonEmpty(f.slackSecret, getenv("SLACK_SIGNING_SECRET"))
		cfg.DiscordAppID = firstNonEmpty(f.discordAppID, getenv("DISCORD_APP_ID"))
		if seed := firstNonEmpty(f.discordKey, getenv("LOADTEST_DISCORD_PRIVATE_KEY")); seed != "" {
			b, err := hex.DecodeString(seed)
			if err != nil || len(b) != ed25519.SeedSize {
				return nil, cfg, usagef("--discord-private-key must be 64 hex characters (an Ed25519 seed)")
			}
			cfg.DiscordKey = ed25519.NewKeyFromSeed(b)
		}
		if f.platform != "discord" && cfg.SlackSecret == "" {
			return nil, cfg, usagef("with --target, Slack requests need --slack-secret or SLACK_SIGNING_SECRET")
		}
		if f.platform != "slack" && cfg.DiscordKey == nil {
			return nil, cfg, usagef("with --target, Discord requests need --discord-private-key or LOADTEST_DISCORD_PRIVATE_KEY")
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, cfg, usagef("%v", err)
	}
	return modes, cfg, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

// riverMaxWorkers is the most workers River runs in one queue of one
// process (river.QueueNumWorkersMax).
const riverMaxWorkers = 10000

// workers is QUEUE_WORKERS for a queue-mode bot: --queue-workers, or as
// many as --max-in-flight allows commands in flight, so that the workers,
// not the queue, are never what limits a run (a job mostly waits on the
// model, as an async command does), capped at River's maximum.
func (f *flags) workers() int {
	if f.queueWorkers > 0 {
		return f.queueWorkers
	}
	return min(f.maxInFlight, riverMaxWorkers)
}

// parseModes reads --mode: sync, async, both, bare, or a comma list.
func parseModes(s string, bare bool) ([]string, error) {
	if bare {
		return []string{"bare"}, nil
	}
	var out []string
	for _, m := range strings.Split(s, ",") {
		switch m = strings.TrimSpace(m); m {
		case "both":
			out = append(out, "sync", "async")
		case "sync", "async", "queue", "auto", "bare":
			out = append(out, m)
		default:
			return nil, usagef("--mode %q: use sync, async, queue, auto, both, bare, or a list such as async,auto", m)
		}
	}
	return out, nil
}

// parseCPUList reads a taskset-style list: "0", "0-1", "0,2-3". The empty
// string is no list.
func parseCPUList(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var cpus []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a || b >= 1024 {
			return nil, fmt.Errorf("%q is not a CPU list such as 0, 0-1 or 0,2", s)
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

package main

import (
	"bufio"
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
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/classbot/classbot/internal/loadtest"
)

const loadtestSynopsis = `[flags]

Plays many students in many classes typing /register (and some /ask) at once,
as signed Slack slash commands and signed Discord interactions, against a
classbot serve that it starts as a child process on 127.0.0.1 (or --target),
with local stand-ins for the model and for the platforms' follow-up endpoints.
It reports the acknowledgement latency against the 3-second deadline, the
follow-ups and their end-to-end latency, throughput, the bot's CPU time per
interaction and peak memory, and the rows in PostgreSQL (when DATABASE_URL is
set; otherwise the bot uses its in-memory store and says so).

Open loop:   classbot loadtest --rate 1000 --duration 30s
Closed loop: classbot loadtest --concurrency 200 --duration 20s
Sync against async, charted: classbot loadtest --mode both --rate 1000 \
  --model-latency lognormal:median=2s,p99=6s --plot latency.png
The reference (verify, acknowledge, post a follow-up; nothing else): --mode bare

Flags:`

// loadtestFlags are the command's flags.
type loadtestFlags struct {
	platform, modes, modelLatency, botCPUs, plotFile, target   string
	slackSecret, discordKey, discordAppID, sinkAddr, modelAddr string
	classes, students, concurrency, requests, connections      int
	maxInFlight, llmConcurrency, targetPID                     int
	rate, askRatio                                             float64
	duration, drain, timeout                                   time.Duration
	jsonOut, bare, inProcess                                   bool
}

func runLoadtest(ctx context.Context, e env, args []string) error {
	if len(args) > 0 && args[0] == "serve-bare" {
		// Hidden: the bare reference as a child process (see --mode bare).
		return loadtest.ServeBare(ctx, e.getenv("HTTP_ADDR"), e.getenv("SLACK_SIGNING_SECRET"), e.stdout)
	}
	var f loadtestFlags
	fs := newFlagSet(e, "loadtest", loadtestSynopsis)
	fs.StringVar(&f.platform, "platform", "slack", "slack, discord, or mix (even classes on Slack, odd ones on Discord)")
	fs.StringVar(&f.modes, "mode", "async", "the bot's handler mode: sync, async, both (sync then async), bare (the reference handler), or a list such as sync,async,bare")
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
	fs.IntVar(&f.maxInFlight, "max-in-flight", 20000, "MAX_IN_FLIGHT for the bot it starts (async commands at once)")
	fs.IntVar(&f.llmConcurrency, "llm-concurrency", 20000, "LLM_MAX_CONCURRENCY for the bot it starts (model calls at once)")
	fs.StringVar(&f.botCPUs, "bot-cpus", "", "pin the bot to these CPUs (taskset list such as 0 or 0-1), so the load runs elsewhere")
	fs.BoolVar(&f.jsonOut, "json", false, "print the report as JSON")
	fs.StringVar(&f.plotFile, "plot", "", "write the acknowledgement latency chart to this PNG file")
	fs.BoolVar(&f.inProcess, "in-process", false, "run the bot inside this process (no CPU or memory figures; for tests)")
	fs.StringVar(&f.target, "target", "", "use a running classbot at this 127.0.0.1 URL instead of starting one")
	fs.IntVar(&f.targetPID, "target-pid", 0, "with --target: its process id, for CPU and memory figures")
	fs.StringVar(&f.slackSecret, "slack-secret", "", "with --target: its SLACK_SIGNING_SECRET (default: $SLACK_SIGNING_SECRET)")
	fs.StringVar(&f.discordKey, "discord-private-key", "", "with --target: hex Ed25519 seed whose public key is its DISCORD_PUBLIC_KEY (default: $LOADTEST_DISCORD_PRIVATE_KEY)")
	fs.StringVar(&f.discordAppID, "discord-app-id", "", "with --target: its DISCORD_APP_ID (default: $DISCORD_APP_ID)")
	fs.StringVar(&f.sinkAddr, "sink-addr", "", "where the follow-up sink listens (default 127.0.0.1:0; with --target, its DISCORD_API_URL must be http://ADDR/api/v10/)")
	fs.StringVar(&f.modelAddr, "model-addr", "", "where the model stand-in listens (default 127.0.0.1:0; with --target, its LLM_BASE_URL must be http://ADDR/v1)")
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("loadtest takes no arguments, got %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })

	modes, cfg, err := f.config(set, e)
	if err != nil {
		return err
	}
	dbURL := strings.TrimSpace(e.getenv("DATABASE_URL"))
	if dbURL == "" && f.target == "" && !onlyBare(modes) {
		fmt.Fprintln(e.stderr, "loadtest: DATABASE_URL is not set: the bot runs on its MEMORY STORE; nothing is written to PostgreSQL")
	}

	var reports []*loadtest.Report
	for _, mode := range modes {
		c := cfg
		c.Label, c.Mode = mode, mode
		c.DatabaseURL = dbURL
		opts := loadtest.Options{Progress: e.stderr, BotEnv: map[string]string{}}
		if mode == "bare" {
			c.Mode, c.DatabaseURL = "async", ""
		}
		switch {
		case f.target != "":
			c.Target, opts.TargetPID = f.target, f.targetPID
		default:
			if dbURL != "" {
				opts.BotEnv["DATABASE_URL"] = dbURL
			}
			opts.BotEnv["MAX_IN_FLIGHT"] = strconv.Itoa(f.maxInFlight)
			opts.BotEnv["LLM_MAX_CONCURRENCY"] = strconv.Itoa(f.llmConcurrency)
			if f.inProcess {
				opts.Start = inProcessBot(mode == "bare")
			} else {
				opts.Start = childBot(e, mode == "bare", f.botCPUs)
			}
		}
		rep, err := loadtest.Run(ctx, c, opts)
		if err != nil {
			return fmt.Errorf("loadtest %s: %w", mode, err)
		}
		reports = append(reports, rep)
	}

	if f.plotFile != "" {
		if err := loadtest.Plot(f.plotFile, reports); err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		fmt.Fprintf(e.stderr, "loadtest: wrote %s\n", f.plotFile)
	}
	if f.jsonOut {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Runs []*loadtest.Report `json:"runs"`
		}{reports})
	}
	for i, r := range reports {
		if i > 0 {
			fmt.Fprintln(e.stdout)
		}
		r.WriteText(e.stdout)
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
func (f *loadtestFlags) config(set map[string]bool, e env) ([]string, loadtest.Config, error) {
	var cfg loadtest.Config
	if set["rate"] && set["concurrency"] {
		return nil, cfg, usagef("loadtest: give --rate (open loop) or --concurrency (closed loop), not both")
	}
	if set["rate"] && f.rate <= 0 {
		return nil, cfg, usagef("loadtest: --rate must be above 0")
	}
	if set["requests"] && set["rate"] {
		return nil, cfg, usagef("loadtest: --requests bounds a closed loop; an open loop sends --rate × --duration")
	}
	if f.duration <= 0 || f.duration > time.Hour {
		return nil, cfg, usagef("loadtest: --duration must be above 0 and at most 1h")
	}
	if f.drain <= 0 || f.drain > 30*time.Minute || f.timeout <= 0 {
		return nil, cfg, usagef("loadtest: --drain and --timeout must be above 0 (--drain at most 30m)")
	}
	if f.classes <= 0 || f.students <= 0 || f.askRatio < 0 || f.askRatio > 1 {
		return nil, cfg, usagef("loadtest: --classes and --students must be above 0 and --ask-ratio between 0 and 1")
	}
	if f.concurrency < 0 || f.requests < 0 || f.connections < 0 || f.maxInFlight <= 0 || f.llmConcurrency <= 0 {
		return nil, cfg, usagef("loadtest: --concurrency, --requests, --connections, --max-in-flight and --llm-concurrency must be positive")
	}
	switch f.platform {
	case "slack", "discord", "mix":
	default:
		return nil, cfg, usagef("loadtest: --platform %q: use slack, discord or mix", f.platform)
	}
	lat, err := loadtest.ParseLatency(f.modelLatency)
	if err != nil {
		return nil, cfg, usagef("loadtest: --model-latency: %v", err)
	}
	modes, err := parseModes(f.modes, f.bare)
	if err != nil {
		return nil, cfg, err
	}
	for _, m := range modes {
		if m == "bare" && f.platform != "slack" {
			return nil, cfg, usagef("loadtest: the bare reference speaks Slack only: use --platform slack")
		}
	}
	if f.target != "" {
		if err := loadtest.CheckLoopbackURL(f.target); err != nil {
			return nil, cfg, usagef("loadtest: --target: %v", err)
		}
		if len(modes) > 1 || f.inProcess || f.botCPUs != "" {
			return nil, cfg, usagef("loadtest: with --target, give one --mode (the target's) and neither --in-process nor --bot-cpus")
		}
	} else if set["target-pid"] {
		return nil, cfg, usagef("loadtest: --target-pid goes with --target")
	}
	if f.botCPUs != "" {
		if _, err := parseCPUList(f.botCPUs); err != nil {
			return nil, cfg, usagef("loadtest: --bot-cpus: %v", err)
		}
		if f.inProcess {
			return nil, cfg, usagef("loadtest: --bot-cpus needs the bot in its own process (drop --in-process)")
		}
	}
	cfg = loadtest.Config{
		Platform: f.platform, Classes: f.classes, Students: f.students, AskRatio: f.askRatio,
		Rate: f.rate, Concurrency: f.concurrency, Duration: f.duration, Requests: f.requests,
		Connections: f.connections, Timeout: f.timeout, Drain: f.drain, ModelLatency: lat,
		SinkAddr: f.sinkAddr, ModelAddr: f.modelAddr,
	}
	if f.target != "" {
		cfg.SlackSecret = firstNonEmpty(f.slackSecret, e.getenv("SLACK_SIGNING_SECRET"))
		cfg.DiscordAppID = firstNonEmpty(f.discordAppID, e.getenv("DISCORD_APP_ID"))
		if seed := firstNonEmpty(f.discordKey, e.getenv("LOADTEST_DISCORD_PRIVATE_KEY")); seed != "" {
			b, err := hex.DecodeString(seed)
			if err != nil || len(b) != ed25519.SeedSize {
				return nil, cfg, usagef("loadtest: --discord-private-key must be 64 hex characters (an Ed25519 seed)")
			}
			cfg.DiscordKey = ed25519.NewKeyFromSeed(b)
		}
		if f.platform != "discord" && cfg.SlackSecret == "" {
			return nil, cfg, usagef("loadtest: with --target, Slack requests need --slack-secret or SLACK_SIGNING_SECRET")
		}
		if f.platform != "slack" && cfg.DiscordKey == nil {
			return nil, cfg, usagef("loadtest: with --target, Discord requests need --discord-private-key or LOADTEST_DISCORD_PRIVATE_KEY")
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, cfg, usagef("loadtest: %v", err)
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
		case "sync", "async", "bare":
			out = append(out, m)
		default:
			return nil, usagef("loadtest: --mode %q: use sync, async, both, bare, or a list such as sync,async,bare", m)
		}
	}
	return out, nil
}

// parseCPUList reads a taskset-style list: "0", "0-1", "0,2-3".
func parseCPUList(s string) ([]int, error) {
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

var botListening = regexp.MustCompile(`classbot listening on (http://[0-9.:]+)`)

// waitListening reads out until the "classbot listening on URL" line, then
// keeps draining it in the background.
func waitListening(out io.Reader, timeout time.Duration) (string, error) {
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			if !sent {
				if m := botListening.FindStringSubmatch(sc.Text()); m != nil {
					found <- m[1]
					sent = true
				}
			}
		}
		if !sent {
			close(found)
		}
	}()
	select {
	case u, ok := <-found:
		if !ok {
			return "", errors.New("the bot stopped before it listened")
		}
		return u, nil
	case <-time.After(timeout):
		return "", fmt.Errorf("the bot did not listen within %s", timeout)
	}
}

func storeOf(env map[string]string, bare bool) string {
	switch {
	case bare:
		return "none"
	case env["DATABASE_URL"] != "":
		return "postgres"
	}
	return "memory"
}

// childBot starts the bot as a child process of this binary ("classbot
// serve", or the hidden "classbot loadtest serve-bare"), in a temporary
// directory (so no .env is read) with only the environment the run gives
// it, pinned to cpus when set, its log in a temporary file.
func childBot(e env, bare bool, cpus string) loadtest.StartFunc {
	return func(ctx context.Context, vars map[string]string) (*loadtest.Bot, error) {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		args := []string{"serve"}
		if bare {
			args = []string{"loadtest", "serve-bare"}
		}
		name := exe
		useTaskset := false
		if cpus != "" {
			if ts, err := exec.LookPath("taskset"); err == nil {
				name, args, useTaskset = ts, append([]string{"-c", cpus, exe}, args...), true
			}
		}
		logf, err := os.CreateTemp("", "classbot-loadtest-*.log")
		if err != nil {
			return nil, err
		}
		defer logf.Close() // the child has its own descriptor
		cmd := exec.Command(name, args...)
		cmd.Dir = os.TempDir()
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
		for k, v := range vars {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Stderr = logf
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		loadtest.PrepareChild(cmd)
		if cpus != "" && !useTaskset {
			list, _ := parseCPUList(cpus) // checked with the flags
			err = loadtest.StartPinned(cmd, list)
		} else {
			err = cmd.Start()
		}
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", exe, err)
		}
		waited := make(chan error, 1)
		stopped := false
		stop := func(ctx context.Context) error {
			if !stopped {
				stopped = true
				_ = cmd.Process.Signal(syscall.SIGTERM)
				go func() { waited <- cmd.Wait() }()
			}
			select {
			case err := <-waited:
				return err
			case <-ctx.Done():
				_ = cmd.Process.Kill()
				return ctx.Err()
			}
		}
		u, err := waitListening(out, 60*time.Second)
		if err != nil {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = stop(sctx)
			return nil, fmt.Errorf("%w; its log: %s\n%s", err, logf.Name(), tail(logf.Name(), 20))
		}
		where := "bot"
		if bare {
			where = "bare reference"
		}
		pin := "not pinned"
		if cpus != "" {
			pin = "pinned to CPUs " + cpus
		}
		fmt.Fprintf(e.stderr, "loadtest: %s pid %d at %s (%s), log %s\n", where, cmd.Process.Pid, u, pin, logf.Name())
		return &loadtest.Bot{URL: u, PID: cmd.Process.Pid, Store: storeOf(vars, bare), Stop: stop}, nil
	}
}

func tail(file string, n int) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// inProcessBot runs serve (or the bare reference) in this process with the
// run's environment only (no .env). Its log is discarded.
func inProcessBot(bare bool) loadtest.StartFunc {
	return func(ctx context.Context, vars map[string]string) (*loadtest.Bot, error) {
		getenv := func(k string) string { return vars[k] }
		ctx, cancel := context.WithCancel(ctx)
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			var err error
			if bare {
				err = loadtest.ServeBare(ctx, vars["HTTP_ADDR"], vars["SLACK_SIGNING_SECRET"], pw)
			} else {
				var cfg Config
				if cfg, err = loadConfig(getenv); err == nil {
					err = serve(ctx, cfg, env{getenv: getenv, stdin: strings.NewReader(""), stdout: pw, stderr: io.Discard})
				}
			}
			pw.CloseWithError(fmt.Errorf("serve ended: %v", err))
			done <- err
		}()
		stop := func(sctx context.Context) error {
			cancel()
			select {
			case err := <-done:
				return err
			case <-sctx.Done():
				return sctx.Err()
			}
		}
		u, err := waitListening(pr, 60*time.Second)
		if err != nil {
			cancel()
			if serr := <-done; serr != nil {
				err = serr
			}
			return nil, err
		}
		return &loadtest.Bot{URL: u, Store: storeOf(vars, bare), Stop: stop}, nil
	}
}

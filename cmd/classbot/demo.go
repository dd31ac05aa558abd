package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/console"
	"github.com/classbot/classbot/store"
)

// delayStore adds the demo's simulated latency (--db-delay) to each
// registration write, on top of the real one.
type delayStore struct {
	bot.Store
	delay time.Duration
}

func (s delayStore) UpsertRegistration(ctx context.Context, r store.Registration) (bool, error) {
	t := time.NewTimer(s.delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	return s.Store.UpsertRegistration(ctx, r)
}

// demoFlags are shared by demo and ask.
type demoFlags struct {
	mode       string
	dbDelay    time.Duration
	agentDelay time.Duration

	courseFS     fs.FS  // demo ask: the example course, when COURSE_DIR is not set
	courseSource string // what courseFS is
}

func (f *demoFlags) register(fs interface {
	StringVar(*string, string, string, string)
	DurationVar(*time.Duration, string, time.Duration, string)
}, dbDelay bool) {
	fs.StringVar(&f.mode, "mode", "", "sync, async, queue or auto (queue needs DATABASE_URL; default: HANDLER_MODE, else async)")
	if dbDelay {
		fs.DurationVar(&f.dbDelay, "db-delay", time.Second, "simulated latency added to the store write")
	}
	fs.DurationVar(&f.agentDelay, "agent-delay", 2*time.Second, "the offline model's latency (ignored with a real model)")
}

func runDemo(ctx context.Context, e env, args []string) error {
	if len(args) > 0 && args[0] == "ask" {
		return runDemoAsk(ctx, e, args[1:])
	}
	fs := newFlagSet(e, "demo", "[--mode sync|async|queue|auto | --compare] [--name NAME --email EMAIL] [--db-delay 1s] [--agent-delay 2s]\n"+
		"       classbot demo ask [--mode sync|async] [--agent-delay 0s] \"QUESTION\"\n\n"+
		"demo registers a student and shows the timings. demo ask asks one question\n"+
		"about the example course (or COURSE_DIR's notes) and cites the notes; see\n"+
		"classbot demo ask --help. demo's flags:")
	var f demoFlags
	f.register(fs, true)
	compare := fs.Bool("compare", false, "run sync, async, queue (with DATABASE_URL) and auto, with a fast and a slow offline model, and print them side by side")
	fast := fs.Duration("fast-delay", 300*time.Millisecond, "--compare: the fast model's latency")
	name := fs.String("name", "", "the student's name (default: asked on the terminal)")
	email := fs.String("email", "", "the student's email (default: asked on the terminal)")
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("demo takes flags only, got %q", fs.Args())
	}
	if *compare && f.mode != "" {
		return usagef("demo: use --compare or --mode, not both")
	}
	cfg, err := configWithMode(e, f.mode)
	if err != nil {
		return err
	}
	runs := []demoRun{{mode: cfg.Mode, latency: f.agentDelay}}
	if *compare {
		// The slow model is --agent-delay when given, else one past the
		// deadline; a real model (LLM_API_KEY, LLM_BASE_URL) has one speed.
		slow := compareSlowDelay
		fs.Visit(func(fl *flag.Flag) {
			if fl.Name == "agent-delay" {
				slow = f.agentDelay
			}
		})
		latencies := []time.Duration{*fast, slow}
		if cfg.LLMAPIKey != "" || cfg.LLMBaseURL != "" {
			latencies = latencies[:1]
		}
		runs = runs[:0]
		for _, lat := range latencies {
			for _, m := range []bot.Mode{bot.ModeSync, bot.ModeAsync, bot.ModeQueue, bot.ModeAuto} {
				if m == bot.ModeQueue && cfg.DatabaseURL == "" {
					continue
				}
				runs = append(runs, demoRun{mode: m, latency: lat})
			}
		}
		if cfg.DatabaseURL == "" {
			fmt.Fprintln(e.stdout, "DATABASE_URL is not set: queue mode (durable jobs in PostgreSQL) is left out of the comparison.")
		}
	}

	in := bufio.NewReader(e.stdin)
	if *name == "" {
		if *name, err = prompt(in, e.stdout, "Your name: "); err != nil {
			return err
		}
	}
	if *email == "" {
		if *email, err = prompt(in, e.stdout, "Your email: "); err != nil {
			return err
		}
	}
	text := strings.TrimSpace(*name) + " " + strings.TrimSpace(*email)

	var results []demoResult
	for _, run := range runs {
		cfg.Mode, f.agentDelay = run.mode, run.latency
		tr, err := demoOnce(ctx, cfg, e, f, "register", text)
		if err != nil {
			return err
		}
		results = append(results, demoResult{Trace: tr, latency: run.latency})
	}
	if *compare {
		printComparison(e.stdout, results, cfg.AutoInlineBudget)
	}
	return nil
}

// compareSlowDelay is --compare's slow model: past the platforms' deadline.
const compareSlowDelay = 4 * time.Second

// demoRun is one run of demo: a mode and the offline model's latency.
type demoRun struct {
	mode    bot.Mode
	latency time.Duration
}

// demoResult is one run's trace and the model latency it ran with.
type demoResult struct {
	bot.Trace
	latency time.Duration
}

func runAsk(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "ask", "[--mode sync|async] [--agent-delay 2s] \"your question\"")
	var f demoFlags
	f.register(fs, false)
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("ask: what is your question? classbot ask \"When is the exam?\"")
	}
	cfg, err := configWithMode(e, f.mode)
	if err != nil {
		return err
	}
	_, err = demoOnce(ctx, cfg, e, f, "ask", strings.Join(fs.Args(), " "))
	return err
}

// runDemoAsk asks one question about the example course (or COURSE_DIR's
// notes): the offline model searches the notes with search_course and
// quotes and cites the best section, so the demo shows retrieval with no
// key and no network; with LLM_API_KEY or LLM_BASE_URL the real model answers.
func runDemoAsk(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "demo ask", "[--mode sync|async] [--agent-delay 0s] \"When is assignment 2 due?\"")
	var f demoFlags
	fs.StringVar(&f.mode, "mode", "", "sync or async (default: HANDLER_MODE, else async)")
	fs.DurationVar(&f.agentDelay, "agent-delay", 0, "the offline model's latency per call (ignored with a real model)")
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("demo ask: what is your question? classbot demo ask \"When is assignment 2 due?\"")
	}
	cfg, err := configWithMode(e, f.mode)
	if err != nil {
		return err
	}
	// The notes go into a scratch course: the demo never touches a live one.
	f.courseFS, f.courseSource = notesOf(cfg.CourseDir)
	if cfg.CourseDir == "" {
		fmt.Fprintln(e.stdout, "COURSE_DIR is not set: asking about the example course in examples/course.")
	}
	_, err = demoOnce(ctx, cfg, e, f, "ask", strings.Join(fs.Args(), " "))
	return err
}

// configWithMode loads the configuration, with mode (the --mode flag),
// when set, over HANDLER_MODE; a bad mode is a usage error.
func configWithMode(e env, mode string) (Config, error) {
	cfg, err := loadConfig(e.getenv)
	if err != nil {
		return cfg, err
	}
	if mode != "" {
		if cfg.Mode, err = bot.ParseMode(mode); err != nil {
			return cfg, usagef("--mode: %v", err)
		}
	}
	return cfg, nil
}

// demoOnce runs one command through the real dispatcher with the console
// adapter, waits for its answer, and prints the timing line.
func demoOnce(ctx context.Context, cfg Config, e env, f demoFlags, command, text string) (bot.Trace, error) {
	traces := make(chan bot.Trace, 1)
	if cfg.QueueWorkers == 0 {
		cfg.QueueWorkers = defaultQueueWorkers // the demo answers its own job
	}
	a, err := newApp(ctx, cfg, e, appOptions{
		logLevel:       slog.LevelWarn,
		offlineLatency: f.agentDelay,
		wrapStore: func(s bot.Store) bot.Store {
			if f.dbDelay <= 0 {
				return s
			}
			return delayStore{Store: s, delay: f.dbDelay}
		},
		observe: func(t bot.Trace) { traces <- t },
		// demo ask: its notes go into a scratch course, not the default one.
		skipCourseIndex: f.courseFS != nil,
		courseNotes:     f.courseFS != nil,
	})
	if err != nil {
		return bot.Trace{}, err
	}
	defer a.close()
	cmd := console.NewCommand(command, text, "demo-student")
	if f.courseFS != nil {
		course, remove, err := a.scratchCourse(ctx, f.courseFS, f.courseSource)
		if err != nil {
			return bot.Trace{}, err
		}
		defer remove()
		// The demo asks in a channel of its own, bound to the scratch course.
		cmd.Channel = course.Name
		cl := store.Class{Platform: cmd.Platform, Workspace: cmd.Workspace, Channel: cmd.Channel}
		if err := a.store.BindCourse(ctx, course.Name, cl); err != nil {
			return bot.Trace{}, err
		}
	}

	fmt.Fprintf(e.stdout, "\n== /%s in %s mode (%s, db delay %s", command, cfg.Mode, a.describe(), f.dbDelay)
	if a.runner.Offline() {
		fmt.Fprintf(e.stdout, ", model latency %s", f.agentDelay)
	}
	fmt.Fprintln(e.stdout, ")")

	start := time.Now()
	// Queue mode: this process's workers take the job from PostgreSQL
	// and answer on the same terminal.
	reopen := map[string]bot.Reopener{bot.PlatformConsole: console.NewReopener(e.stdout, start)}
	if a.queue != nil {
		if err := a.queue.Start(ctx, a.disp, reopen); err != nil {
			return bot.Trace{}, err
		}
	}
	stop := func(ctx context.Context) error {
		return errors.Join(a.disp.Shutdown(ctx), a.stopQueue(ctx))
	}
	cmd.ReceivedAt = start
	r := console.NewResponder(e.stdout, start)
	if err := a.disp.Dispatch(ctx, cmd, r); err != nil {
		return bot.Trace{}, fmt.Errorf("demo: %w", err)
	}
	firstResponse := time.Now() // queue mode's worker never sees the acknowledgement
	var tr bot.Trace
	select {
	case tr = <-traces:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = stop(sctx)
		return bot.Trace{}, ctx.Err()
	}
	if err := stop(ctx); err != nil {
		return tr, err
	}
	if tr.Acknowledged.IsZero() {
		tr.Acknowledged = firstResponse
	}
	fmt.Fprintf(e.stdout, "mode=%s total=%s db=%s agent=%s first_response=%s\n",
		tr.Mode, secs(tr.Total()), secs(tr.Store), secs(tr.Agent), ms(tr.Acknowledged.Sub(tr.Received)))
	printTimeline(e.stdout, tr)
	if tr.Err != nil && tr.Outcome != bot.OutcomeInvalid {
		return tr, fmt.Errorf("%s: %w", tr.Outcome, tr.Err)
	}
	return tr, nil
}

// printTimeline shows when each part of the command ran, from its receipt:
// in sync mode the store and the agent run one after the other and the first
// response comes last; in async mode the first response comes first and the
// store and the agent overlap.
func printTimeline(w io.Writer, tr bot.Trace) {
	at := func(t time.Time) time.Duration { return t.Sub(tr.Received) }
	span := func(end time.Time, d time.Duration) string {
		if end.IsZero() {
			return "-"
		}
		return ms(at(end)-d) + "–" + ms(at(end))
	}
	fmt.Fprintf(w, "timeline: first_response=%s db=%s agent=%s answer=%s\n",
		ms(at(tr.Acknowledged)), span(tr.Stored, tr.Store), span(tr.AgentDone, tr.Agent), ms(at(tr.Replied)))
}

func printComparison(w io.Writer, results []demoResult, budget time.Duration) {
	fmt.Fprintln(w, "\nblocking versus concurrent:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\tmodel\tfirst response\t3 s deadline\tmessages\tanswer after\tdb\tagent\t")
	for _, t := range results {
		first := t.Acknowledged.Sub(t.Received)
		deadline := "met"
		if first.Seconds() > platformDeadline {
			deadline = "MISSED"
		}
		// The answer was the first response itself, or came after it.
		messages := 2
		if t.Acknowledged.Equal(t.Replied) {
			messages = 1
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t\n", t.Mode, secs(t.latency), ms(first), deadline, messages, secs(t.Total()), secs(t.Store), secs(t.Agent))
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "sync works inside the platform's request: its first response comes after db + agent,")
	fmt.Fprintln(w, "and past 3 s Slack and Discord show the student an error instead.")
	fmt.Fprintln(w, "async acknowledges at once, runs db and agent together, and answers after max(db, agent).")
	fmt.Fprintln(w, "queue does async's work as durable jobs in PostgreSQL: a crash or a deploy loses nothing.")
	fmt.Fprintf(w, "auto starts the work at once: done within %s, it answers in one message as sync does;\n", budget)
	fmt.Fprintln(w, "otherwise it acknowledges then and the same work's answer follows, as in async.")
}

func prompt(in *bufio.Reader, out io.Writer, label string) (string, error) {
	fmt.Fprint(out, label)
	line, err := in.ReadString('\n')
	line = strings.TrimSpace(line)
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		if errors.Is(err, io.EOF) {
			return "", usagef("no input for %q: pass --name and --email", strings.TrimSuffix(label, ": "))
		}
		return "", fmt.Errorf("read %s: %w", strings.TrimSuffix(label, ": "), err)
	}
	return line, nil
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }
func ms(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

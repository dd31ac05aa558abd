package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/classbot/classbot/agent"
	"github.com/classbot/classbot/bot"
	examplecourse "github.com/classbot/classbot/examples/course"
	"github.com/classbot/classbot/store"
)

// Defaults of the course notes and /ask memory, documented in README.md
// and .env.example.
const (
	defaultAskMemoryTurns = bot.DefaultMemoryTurns
	defaultAskMemoryTTL   = bot.DefaultMemoryTTL
)

// loadCourseConfig reads COURSE_DIR, ASK_MEMORY_TURNS and ASK_MEMORY_TTL.
func loadCourseConfig(c *Config, env func(k, def string) string) []error {
	var errs []error
	c.CourseDir = env("COURSE_DIR", "")
	if c.CourseDir != "" {
		if st, err := os.Stat(c.CourseDir); err != nil || !st.IsDir() {
			errs = append(errs, fmt.Errorf("COURSE_DIR must be a folder of course notes; %s is not one", c.CourseDir))
		}
	}
	c.AskMemoryTurns = defaultAskMemoryTurns
	if s := env("ASK_MEMORY_TURNS", ""); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 50 {
			errs = append(errs, fmt.Errorf("ASK_MEMORY_TURNS must be a whole number from 0 (no memory) to 50, not %q", s))
		}
		c.AskMemoryTurns = n
	}
	var err error
	if c.AskMemoryTTL, err = positiveDuration(env("ASK_MEMORY_TTL", ""), defaultAskMemoryTTL); err != nil {
		errs = append(errs, fmt.Errorf("ASK_MEMORY_TTL %w", err))
	}
	return errs
}

// courseStore is what the app needs from a store for the course notes and
// the /ask memory; both stores implement it.
type courseStore interface {
	store.CourseIndex
	bot.CourseNotes
	bot.AskMemory
	PurgeAskTurns(ctx context.Context, olderThan time.Time) (int64, error)
}

var (
	_ courseStore = (*store.Postgres)(nil)
	_ courseStore = (*store.Memory)(nil)
)

// courseSetup is the course part of the app: where the notes come from
// and what indexing them at start did.
type courseSetup struct {
	source string // the folder, or "the example course"
	fsys   fs.FS  // nil: no notes
	report store.CourseIndexReport

	skipped []store.SkippedFile // files of the notes not indexed, and why
}

// courseBotOptions returns the bot's options for the course notes and the
// memory, indexing the notes first (only files whose content changed, see
// store.IndexCourse, or every file if force). fsys overrides COURSE_DIR
// (demo ask, course eval).
func (a *app) courseBotOptions(ctx context.Context, fsys fs.FS, source string, force bool) (bot.Options, error) {
	opts := bot.Options{Memory: a.store, MemoryTurns: a.cfg.AskMemoryTurns, MemoryTTL: a.cfg.AskMemoryTTL}
	if opts.MemoryTurns == 0 {
		opts.MemoryTurns = -1 // ASK_MEMORY_TURNS=0: no memory
	}
	if fsys == nil && a.cfg.CourseDir != "" {
		fsys, source = os.DirFS(a.cfg.CourseDir), a.cfg.CourseDir
	}
	if fsys == nil {
		return opts, nil
	}
	a.course = courseSetup{source: source, fsys: fsys}
	files, skipped, err := store.ReadCourse(fsys, store.ReadCourseOptions{MaxFileBytes: a.cfg.CourseMaxFileBytes})
	if err != nil {
		return opts, fmt.Errorf("COURSE_DIR %s: %w", source, err)
	}
	a.course.skipped = skipped
	for _, s := range skipped {
		a.log.Info(fmt.Sprintf("course notes: skipping %q: %s", s.Path, s.Reason))
	}
	if len(files) == 0 {
		a.log.Warn("course notes: no Markdown or text files found; /ask will find nothing", "dir", source)
	}
	ictx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if a.course.report, err = store.IndexCourse(ictx, a.store, files, force); err != nil {
		return opts, fmt.Errorf("indexing the course notes in %s: %w", source, err)
	}
	a.log.Info("course notes indexed", "dir", source, "files", a.course.report.Files, "sections", a.course.report.Sections,
		"reindexed", a.course.report.Indexed, "removed", a.course.report.Removed)
	opts.Notes = a.store
	return opts, nil
}

// purgeAskMemory deletes /ask turns older than ASK_MEMORY_TTL; serve calls
// it with the hourly ledger purge. A failure is logged and retried next time.
func purgeAskMemory(ctx context.Context, a *app) {
	pctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	n, err := a.store.PurgeAskTurns(pctx, time.Now().Add(-a.cfg.AskMemoryTTL))
	switch {
	case err != nil && ctx.Err() == nil:
		a.log.Warn("ask memory purge failed; retrying in an hour", "err", err, "deleted", n)
	case n > 0:
		a.log.Info("ask memory purged", "deleted", n, "ttl", a.cfg.AskMemoryTTL)
	}
}

const courseUsage = `Usage: classbot course <index|search|eval> [flags]

  index [--force]           index COURSE_DIR now (files whose content changed; --force: all)
  search [--limit 3] QUERY  print what the assistant's search_course tool would get, with scores
  eval [--eval FILE]        retrieval hit@1 and hit@3 on an evaluation set (default: the
                            example course and its eval.jsonl); with a real model configured,
                            also how often the answer cites the right section or declines

The notes come from COURSE_DIR (or --dir); the index lives in DATABASE_URL
(or, without it, in memory for this run only).
`

func runCourse(ctx context.Context, e env, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, courseUsage)
		return usagef("course: say index, search or eval")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(e.stdout, courseUsage)
		return nil
	case "index":
		return runCourseIndex(ctx, e, args[1:])
	case "search":
		return runCourseSearch(ctx, e, args[1:])
	case "eval":
		return runCourseEval(ctx, e, args[1:])
	}
	fmt.Fprint(e.stderr, courseUsage)
	return usagef("course: unknown command %q", args[0])
}

// courseApp loads the configuration, with --dir over COURSE_DIR, and opens
// the app, which indexes the notes (every file if force).
func courseApp(ctx context.Context, e env, dir string, fsys fs.FS, source string, force bool) (*app, error) {
	cfg, err := loadConfig(e.getenv)
	if err != nil {
		return nil, err
	}
	if dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, usagef("--dir %s is not a folder", dir)
		}
		cfg.CourseDir = dir
	}
	if cfg.CourseDir == "" && fsys == nil {
		return nil, usagef("set COURSE_DIR (or --dir) to the folder of course notes")
	}
	if cfg.CourseDir != "" {
		fsys = nil // the teacher's notes win over the example
	}
	return newApp(ctx, cfg, e, appOptions{logLevel: slog.LevelWarn, courseFS: fsys, courseSource: source, courseForce: force})
}

func runCourseIndex(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "course index", "[--dir DIR] [--force]")
	dir := fs.String("dir", "", "folder of course notes (default: COURSE_DIR)")
	force := fs.Bool("force", false, "re-index every file, changed or not")
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("course index takes flags only, got %q", fs.Args())
	}
	a, err := courseApp(ctx, e, *dir, nil, "", *force)
	if err != nil {
		return err
	}
	defer a.close()
	fmt.Fprintf(e.stdout, "%s (store=%s): %s\n", a.course.source, a.storeKind, a.course.report)
	for _, s := range a.course.skipped {
		fmt.Fprintf(e.stdout, "skipped %s\n", s)
	}
	return nil
}

func runCourseSearch(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "course search", "[--dir DIR] [--limit 3] \"query\"")
	dir := fs.String("dir", "", "folder of course notes (default: COURSE_DIR)")
	limit := fs.Int("limit", bot.DefaultSearchResults, "sections to show (the assistant gets 3)")
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	q := strings.TrimSpace(strings.Join(fs.Args(), " "))
	if q == "" {
		return usagef("course search: what should I look for? classbot course search \"late policy\"")
	}
	a, err := courseApp(ctx, e, *dir, nil, "", false)
	if err != nil {
		return err
	}
	defer a.close()
	start := time.Now()
	hits, err := a.store.SearchCourse(ctx, q, *limit)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "search_course %q: %d sections of %s in %s (store=%s)\n\n", q, len(hits), a.course.source,
		ms(time.Since(start)), a.storeKind)
	fmt.Fprintln(e.stdout, agent.FormatPassages(bot.Passages(hits)))
	return nil
}

// evalCase is one line of eval.jsonl.
type evalCase struct {
	Question string `json:"question"`
	Expect   string `json:"expect"` // the citation that must be retrieved; empty: the notes don't answer it
}

func readEval(r io.Reader) ([]evalCase, error) {
	var out []evalCase
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var c evalCase
		if err := json.Unmarshal([]byte(line), &c); err != nil || strings.TrimSpace(c.Question) == "" {
			return nil, fmt.Errorf("eval line %d: want {\"question\": \"...\", \"expect\": \"file.md › Heading\"}", n)
		}
		out = append(out, c)
	}
	return out, sc.Err()
}

// evalResult is what course eval measured.
type evalResult struct {
	answerable, hit1, hit3 int
	silent, silentEmpty    int // questions the notes don't answer; of them, how many found no section
	asked, cited, declined int // with a real model
}

func pct(n, of int) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
}

func runCourseEval(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "course eval", "[--dir DIR] [--eval FILE] [-v]")
	dir := fs.String("dir", "", "folder of course notes (default: COURSE_DIR, else the example course)")
	evalFile := fs.String("eval", "", "evaluation set, JSON lines (default: eval.jsonl in the notes folder, or the example course's)")
	verbose := fs.Bool("v", false, "print every question")
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("course eval takes flags only, got %q", fs.Args())
	}
	a, err := courseApp(ctx, e, *dir, examplecourse.Notes, "the example course (examples/course)", false)
	if err != nil {
		return err
	}
	defer a.close()
	var evalData []byte
	switch {
	case *evalFile != "":
		evalData, err = os.ReadFile(*evalFile)
	case a.cfg.CourseDir != "":
		evalData, err = os.ReadFile(a.cfg.CourseDir + "/eval.jsonl")
	default:
		evalData = examplecourse.Eval
	}
	if err != nil {
		return fmt.Errorf("course eval: %w (pass --eval FILE)", err)
	}
	cases, err := readEval(bytes.NewReader(evalData))
	if err != nil {
		return err
	}
	withModel := !a.runner.Offline()
	var res evalResult
	var dbTimes []time.Duration
	for _, c := range cases {
		start := time.Now()
		hits, err := a.store.SearchCourse(ctx, c.Question, bot.DefaultSearchResults)
		dbTimes = append(dbTimes, time.Since(start))
		if err != nil {
			return err
		}
		rank := 0
		for i, h := range hits {
			if h.Citation() == c.Expect {
				rank = i + 1
				break
			}
		}
		mark := ""
		if c.Expect == "" {
			res.silent++
			if len(hits) == 0 {
				res.silentEmpty++
			}
			mark = fmt.Sprintf("silent: %d sections found", len(hits))
		} else {
			res.answerable++
			if rank == 1 {
				res.hit1++
			}
			if rank >= 1 && rank <= 3 {
				res.hit3++
			}
			mark = fmt.Sprintf("rank %d", rank)
			if rank == 0 {
				mark = "MISS"
			}
		}
		if withModel {
			answer, err := a.bot.Answer(ctx, c.Question)
			res.asked++
			switch {
			case err != nil:
				mark += "; model failed: " + err.Error()
			case c.Expect != "" && strings.Contains(answer, c.Expect):
				res.cited++
				mark += "; cited"
			case c.Expect == "" && declines(answer):
				res.declined++
				mark += "; declined"
			default:
				mark += "; answer: " + strings.Join(strings.Fields(answer), " ")
			}
		}
		if *verbose || (c.Expect != "" && rank != 1) {
			got := "-"
			if len(hits) > 0 {
				got = hits[0].Citation()
			}
			fmt.Fprintf(e.stdout, "%-8s %q\n         want %q, first %q\n", mark, c.Question, c.Expect, got)
		}
	}
	fmt.Fprintf(e.stdout, "\ncourse eval: %d questions on %s (store=%s)\n", len(cases), a.course.source, a.storeKind)
	fmt.Fprintf(e.stdout, "retrieval: hit@1 %d/%d = %s, hit@3 %d/%d = %s; questions the notes don't answer: %d, of which %d found no section\n",
		res.hit1, res.answerable, pct(res.hit1, res.answerable), res.hit3, res.answerable, pct(res.hit3, res.answerable),
		res.silent, res.silentEmpty)
	slowest := time.Duration(0)
	for _, d := range dbTimes {
		slowest = max(slowest, d)
	}
	fmt.Fprintf(e.stdout, "search time: slowest %s of %d searches (from this process, round trip included)\n", ms(slowest), len(dbTimes))
	if withModel {
		answerable := res.answerable
		fmt.Fprintf(e.stdout, "model %s: cites the right section %d/%d = %s; declines what the notes don't answer %d/%d = %s\n",
			a.runner.Model(), res.cited, answerable, pct(res.cited, answerable), res.declined, res.silent, pct(res.declined, res.silent))
	} else {
		fmt.Fprintln(e.stdout, "model: offline (set LLM_API_KEY or LLM_BASE_URL to also measure citations and declines)")
	}
	return nil
}

// declines reports whether an answer says the notes don't cover the
// question and points to the teacher, citing nothing.
func declines(answer string) bool {
	l := strings.ToLower(answer)
	return !strings.Contains(answer, store.HeadingSep) && strings.Contains(l, "teacher")
}

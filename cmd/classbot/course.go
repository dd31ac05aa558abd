package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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
	files, skipped, err := store.ReadCourse(fsys)
	if err != nil {
		return opts, fmt.Errorf("COURSE_DIR %s: %w", source, err)
	}
	for _, p := range skipped {
		a.log.Info("course notes: skipping a file that is not Markdown or UTF-8 text", "file", p)
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
                            example course and its eval.jsonl), and how many questions found
                            no section; a line's "course" names its notes' folder next to
                            FILE, so one set can span several courses; with a real model
                            configured, also how often the answer cites the right section
                            or declines

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
	// Course is the folder of the notes, relative to the evaluation
	// file's folder; empty: --dir, COURSE_DIR or the example course.
	Course string `json:"course"`
	// Snippet, when set, is words of the answer: a section that contains
	// them (or one of AlsoSnippets) is a hit, whatever its citation.
	Snippet      string   `json:"snippet"`
	Also         []string `json:"also"` // other citations as good as Expect
	AlsoSnippets []string `json:"also_snippets"`
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

// hits reports whether h answers c: it contains c's snippet (compared
// without case, spacing and Markdown or HTML markup), or, for a case
// without a snippet, its citation is c's.
func (c evalCase) hits(h store.CourseHit) bool {
	if c.Snippet == "" {
		return h.Citation() == c.Expect || slices.Contains(c.Also, h.Citation())
	}
	text, plain := normEval(h.Text), normEval(stripMarkup(h.Text))
	for _, sn := range append([]string{c.Snippet}, c.AlsoSnippets...) {
		if strings.Contains(text, normEval(sn)) || strings.Contains(plain, normEval(stripMarkup(sn))) {
			return true
		}
	}
	return false
}

var (
	evalLink     = regexp.MustCompile(`!?\[([^\]]*)\](?:\([^)]*\)|\[[^\]]*\])`)
	evalTag      = regexp.MustCompile(`<[^>]+>`)
	evalTemplate = regexp.MustCompile(`(?s)\{%.*?%\}|\{\{.*?\}\}|\{:[^}]*\}`)
	evalMarks    = regexp.MustCompile("[*_`#|>~]+")
	evalBullet   = regexp.MustCompile(`(?m)^\s*[-+]\s+`)
)

func normEval(s string) string {
	return strings.ToLower(strings.Join(strings.Fields(html.UnescapeString(s)), " "))
}

func stripMarkup(s string) string {
	s = evalTemplate.ReplaceAllString(s, " ")
	s = evalLink.ReplaceAllString(s, "$1")
	s = evalTag.ReplaceAllString(s, " ")
	s = evalMarks.ReplaceAllString(s, " ")
	return evalBullet.ReplaceAllString(s, " ")
}

// evalResult is what course eval measured.
type evalResult struct {
	answerable, hit1, hit3 int
	wronglyEmpty           int // answerable questions that found no section
	silent, silentEmpty    int // questions the notes don't answer; of them, how many found no section
	asked, cited, declined int // with a real model
	slowest                time.Duration
	searches               int
}

func (r *evalResult) add(o evalResult) {
	r.answerable += o.answerable
	r.hit1 += o.hit1
	r.hit3 += o.hit3
	r.wronglyEmpty += o.wronglyEmpty
	r.silent += o.silent
	r.silentEmpty += o.silentEmpty
	r.asked += o.asked
	r.cited += o.cited
	r.declined += o.declined
	r.slowest = max(r.slowest, o.slowest)
	r.searches += o.searches
}

// retrieval is result's retrieval line.
func (r evalResult) retrieval() string {
	return fmt.Sprintf("hit@1 %d/%d = %s, hit@3 %d/%d = %s; questions the notes don't answer: %d, of which %d found no section (%s); answerable questions that found no section: %d/%d = %s",
		r.hit1, r.answerable, pct(r.hit1, r.answerable), r.hit3, r.answerable, pct(r.hit3, r.answerable),
		r.silent, r.silentEmpty, pct(r.silentEmpty, r.silent), r.wronglyEmpty, r.answerable, pct(r.wronglyEmpty, r.answerable))
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
	evalFile := fs.String("eval", "", "evaluation set, JSON lines (default: eval.jsonl in the notes folder, or the example course's); "+
		"a line's \"course\" names its notes' folder, next to the file")
	verbose := fs.Bool("v", false, "print every question")
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("course eval takes flags only, got %q", fs.Args())
	}
	var evalData []byte
	var err error
	courseDir := *dir
	if courseDir == "" {
		courseDir = e.getenv("COURSE_DIR")
	}
	switch {
	case *evalFile != "":
		evalData, err = os.ReadFile(*evalFile)
	case courseDir != "":
		evalData, err = os.ReadFile(filepath.Join(courseDir, "eval.jsonl"))
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
	// The questions of each course, in the order the courses first appear.
	var courses []string
	byCourse := map[string][]evalCase{}
	for _, c := range cases {
		if _, ok := byCourse[c.Course]; !ok {
			courses = append(courses, c.Course)
		}
		byCourse[c.Course] = append(byCourse[c.Course], c)
	}
	var total evalResult
	var model string
	for _, course := range courses {
		cdir := *dir
		if course != "" {
			cdir = filepath.Join(filepath.Dir(*evalFile), course)
		}
		res, source, storeKind, m, err := evalCourse(ctx, e, cdir, byCourse[course], *verbose)
		if err != nil {
			return err
		}
		model = m
		total.add(res)
		if len(courses) > 1 {
			fmt.Fprintf(e.stdout, "%s: %s (store=%s)\n", course, res.retrieval(), storeKind)
		} else {
			fmt.Fprintf(e.stdout, "\ncourse eval: %d questions on %s (store=%s)\n", len(cases), source, storeKind)
		}
	}
	if len(courses) > 1 {
		fmt.Fprintf(e.stdout, "\ncourse eval: %d questions on %d courses\n", len(cases), len(courses))
	}
	fmt.Fprintf(e.stdout, "retrieval: %s\n", total.retrieval())
	fmt.Fprintf(e.stdout, "search time: slowest %s of %d searches (from this process, round trip included)\n", ms(total.slowest), total.searches)
	if model != "" {
		fmt.Fprintf(e.stdout, "model %s: cites the right section %d/%d = %s; declines what the notes don't answer %d/%d = %s\n",
			model, total.cited, total.answerable, pct(total.cited, total.answerable), total.declined, total.silent, pct(total.declined, total.silent))
	} else {
		fmt.Fprintln(e.stdout, "model: offline (set LLM_API_KEY or LLM_BASE_URL to also measure citations and declines)")
	}
	return nil
}

// evalCourse indexes the notes in dir (empty: COURSE_DIR, else the
// example course) and runs cases on them; model is the model's name, ""
// when offline.
func evalCourse(ctx context.Context, e env, dir string, cases []evalCase, verbose bool) (res evalResult, source, storeKind, model string, err error) {
	a, err := courseApp(ctx, e, dir, examplecourse.Notes, "the example course (examples/course)", false)
	if err != nil {
		return res, "", "", "", err
	}
	defer a.close()
	withModel := !a.runner.Offline()
	if withModel {
		model = a.runner.Model()
	}
	for _, c := range cases {
		start := time.Now()
		hits, err := a.store.SearchCourse(ctx, c.Question, bot.DefaultSearchResults)
		res.slowest = max(res.slowest, time.Since(start))
		res.searches++
		if err != nil {
			return res, "", "", "", err
		}
		rank := 0
		for i, h := range hits {
			if c.Expect != "" && c.hits(h) {
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
			if len(hits) == 0 {
				res.wronglyEmpty++
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
		if verbose || (c.Expect != "" && rank != 1) {
			got := "-"
			if len(hits) > 0 {
				got = fmt.Sprintf("%s (confidence %.2f)", hits[0].Citation(), hits[0].Confidence)
			}
			fmt.Fprintf(e.stdout, "%-8s %q\n         want %q, first %s\n", mark, c.Question, c.Expect, got)
		}
	}
	return res, a.course.source, a.storeKind, model, nil
}

// declines reports whether an answer says the notes don't cover the
// question and points to the teacher, citing nothing.
func declines(answer string) bool {
	l := strings.ToLower(answer)
	return !strings.Contains(answer, store.HeadingSep) && strings.Contains(l, "teacher")
}

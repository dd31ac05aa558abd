package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
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

// courseStore is what the app needs from a store for the courses, their
// notes and the /ask memory; both stores implement it.
type courseStore interface {
	store.CourseIndex
	bot.CourseNotes
	bot.AskMemory
	PurgeAskTurns(ctx context.Context, olderThan time.Time) (int64, error)
	PutCourse(ctx context.Context, name, dir string) (store.Course, error)
	CourseByName(ctx context.Context, name string) (store.Course, error)
	Courses(ctx context.Context) ([]store.Course, error)
	RemoveCourse(ctx context.Context, name string) error
	BindCourse(ctx context.Context, name string, c store.Class) error
	UnbindCourse(ctx context.Context, c store.Class) (bool, error)
}

var (
	_ courseStore = (*store.Postgres)(nil)
	_ courseStore = (*store.Memory)(nil)
)

// courseSetup is what indexing notes at start did.
type courseSetup struct {
	source string // the folder, or "the example course"
	report store.CourseIndexReport

	skipped []store.SkippedFile // files of the notes not indexed, and why
}

// courseBotOptions returns the bot's options for the course notes and the
// memory. With COURSE_DIR, it first indexes the folder into the default
// course (only files whose content changed, see store.IndexCourse),
// unless skipIndex. /ask gets the notes' search tool
// when COURSE_DIR is set, when withNotes, or when the database holds a
// course with notes or a class bound to a course: every process resolves
// each class's course from the database.
func (a *app) courseBotOptions(ctx context.Context, skipIndex, withNotes bool) (bot.Options, error) {
	opts := bot.Options{Memory: a.store, MemoryTurns: a.cfg.AskMemoryTurns, MemoryTTL: a.cfg.AskMemoryTTL}
	if opts.MemoryTurns == 0 {
		opts.MemoryTurns = -1 // ASK_MEMORY_TURNS=0: no memory
	}
	notes := withNotes || a.cfg.CourseDir != ""
	if a.cfg.CourseDir != "" && !skipIndex {
		if _, err := a.indexCourse(ctx, store.DefaultCourse, a.cfg.CourseDir, nil, a.cfg.CourseDir, false); err != nil {
			return opts, err
		}
	}
	if !notes {
		has, err := a.hasCourses(ctx)
		if err != nil {
			return opts, err
		}
		notes = has
	}
	if notes {
		opts.Notes = a.notes()
	}
	return opts, nil
}

// hasCourses reports whether any course other than a scratch one has
// notes or a class.
func (a *app) hasCourses(ctx context.Context) (bool, error) {
	cs, err := a.store.Courses(ctx)
	if err != nil {
		return false, err
	}
	for _, c := range cs {
		if !strings.HasPrefix(c.Name, scratchPrefix) && (c.Files > 0 || len(c.Classes) > 0) {
			return true, nil
		}
	}
	return false, nil
}

// indexCourse reads the notes in fsys (or, if nil, in the folder dir) and
// indexes them into the course name, creating it and recording dir as
// where its notes come from. source names the notes in messages. It is
// the one place that reads notes.
func (a *app) indexCourse(ctx context.Context, name, dir string, fsys fs.FS, source string, force bool) (store.Course, error) {
	if fsys == nil {
		if abs, err := filepath.Abs(dir); err == nil {
			dir = abs
		}
		fsys = os.DirFS(dir)
	}
	c, err := a.store.PutCourse(ctx, name, dir)
	if err != nil {
		return c, fmt.Errorf("course %s: %w", name, err)
	}
	files, skipped, err := store.ReadCourse(fsys, store.ReadCourseOptions{MaxFileBytes: a.cfg.CourseMaxFileBytes})
	if err != nil {
		return c, fmt.Errorf("course %s: reading %s: %w", name, source, err)
	}
	for _, s := range skipped {
		a.log.Info(fmt.Sprintf("course notes: skipping %q: %s", s.Path, s.Reason), "course", name)
	}
	if len(files) == 0 {
		a.log.Warn("course notes: no Markdown or text files found; /ask will find nothing", "course", name, "dir", source)
	}
	ictx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	a.course = courseSetup{source: source, skipped: skipped}
	if a.course.report, err = store.IndexCourse(ictx, a.store, c.ID, files, force); err != nil {
		return c, fmt.Errorf("indexing the notes of course %s from %s: %w", name, source, err)
	}
	a.log.Info("course notes indexed", "course", name, "dir", source, "files", a.course.report.Files,
		"sections", a.course.report.Sections, "reindexed", a.course.report.Indexed, "removed", a.course.report.Removed)
	a.embedCourses(ctx)
	return c, nil
}

// scratchPrefix starts the name of a scratch course.
const scratchPrefix = "scratch-"

// scratchCourse indexes the notes in fsys into a new course of its own
// (demo ask, course eval), so no live course is touched, and returns it
// with the function that removes it. Scratch courses left by a process
// that died are removed a day later.
func (a *app) scratchCourse(ctx context.Context, fsys fs.FS, source string) (store.Course, func(), error) {
	if cs, err := a.store.Courses(ctx); err == nil {
		for _, c := range cs {
			if strings.HasPrefix(c.Name, scratchPrefix) && time.Since(c.CreatedAt) > 24*time.Hour {
				_ = a.store.RemoveCourse(ctx, c.Name)
			}
		}
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := scratchPrefix + hex.EncodeToString(b[:])
	remove := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := a.store.RemoveCourse(rctx, name); err != nil && !errors.Is(err, store.ErrNotFound) {
			a.log.Warn("removing the scratch course failed; classbot course remove "+name+" removes it", "err", err)
		}
	}
	c, err := a.indexCourse(ctx, name, "", fsys, source, false)
	if err != nil {
		remove()
		return c, nil, err
	}
	return c, remove, nil
}

// notesOf returns the notes in dir and what they are, or the example
// course's if dir is empty.
func notesOf(dir string) (fs.FS, string) {
	if dir == "" {
		return examplecourse.Notes, "the example course (examples/course)"
	}
	return os.DirFS(dir), dir
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

const courseUsage = `Usage: classbot course <command> [flags] [arguments]

  add NAME --dir DIR [--force]       create or update the course NAME and index the notes in DIR
  bind NAME slack TEAM [CHANNEL]     /ask in a Slack workspace (or one channel of it) searches NAME;
  bind NAME discord GUILD [CHANNEL]  a class bound to another course moves
  unbind slack|discord ID [CHANNEL]  the class goes back to its workspace's course, or the default
  index [NAME] [--force] [--dir DIR] re-index NAME's notes from its folder (default course: COURSE_DIR);
                                     only files whose content changed, --force: all
  list                               courses, the classes each serves, files, sections, when indexed
  search [--course NAME | --class "slack TEAM [CHANNEL]"] [--limit 3] QUERY
                                     what /ask's search_course tool gets, with scores
  remove NAME                        delete a course, its notes and its classes' bindings
  eval [--dir DIR] [--eval FILE]     retrieval hit@1 and hit@3 on an evaluation set (default: the
                                     example course and its eval.jsonl), and how many questions found
                                     no section, in scratch courses; a line's "course" names its notes'
                                     folder next to FILE, so one set can span several courses; with a
                                     real model configured, also how often the answer cites the right
                                     section or declines

The course named "default" always exists: COURSE_DIR is its folder, and a class
bound to no course searches it. Courses and bindings live in DATABASE_URL (or,
without it, in memory for this run only); every replica and worker reads them
there. Flags may come before or after the arguments.
`

func runCourse(ctx context.Context, e env, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, courseUsage)
		return usagef("course: say add, bind, unbind, index, list, search, remove or eval")
	}
	cmds := map[string]func(context.Context, env, []string) error{
		"add": runCourseAdd, "bind": runCourseBind, "unbind": runCourseUnbind, "index": runCourseIndex,
		"list": runCourseList, "search": runCourseSearch, "remove": runCourseRemove, "eval": runCourseEval,
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(e.stdout, courseUsage)
		return nil
	}
	if run, ok := cmds[args[0]]; ok {
		return run(ctx, e, args[1:])
	}
	fmt.Fprint(e.stderr, courseUsage)
	return usagef("course: unknown command %q", args[0])
}

// parseCourseFlags parses args like parseFlags, but flags may also come
// after the arguments ("course search late policy --limit 1"); everything
// after "--" is an argument. It returns the arguments.
func parseCourseFlags(fs *flag.FlagSet, e env, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, e, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if i := len(args) - len(rest); i > 0 && args[i-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// courseApp loads the configuration and opens the app without indexing
// anything at start.
func courseApp(ctx context.Context, e env) (*app, error) {
	cfg, err := loadConfig(e.getenv)
	if err != nil {
		return nil, err
	}
	return newApp(ctx, cfg, e, appOptions{logLevel: slog.LevelWarn, skipCourseIndex: true})
}

// checkDir returns a usage error unless dir is a folder.
func checkDir(flag, dir string) error {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return usagef("%s %s is not a folder", flag, dir)
	}
	return nil
}

// courseErr turns a store error about course name into a sentence an
// operator can act on.
func courseErr(name string, err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("there is no course %q; create it with: classbot course add %s --dir DIR", name, name)
	case errors.Is(err, store.ErrInvalid):
		return usagef("course %q: %v", name, err)
	}
	return err
}

func runCourseAdd(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "course add", "NAME --dir DIR [--force]")
	dir := fs.String("dir", "", "folder of the course's notes (required)")
	force := fs.Bool("force", false, "re-index every file, changed or not")
	pos, err := parseCourseFlags(fs, e, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *dir == "" {
		return usagef("course add: say the course and its folder: classbot course add go101 --dir ./notes/go101")
	}
	if err := store.CheckCourseName(pos[0]); err != nil {
		return usagef("course add %q: %v", pos[0], err)
	}
	if err := checkDir("--dir", *dir); err != nil {
		return err
	}
	a, err := courseApp(ctx, e)
	if err != nil {
		return err
	}
	defer a.close()
	c, err := a.indexCourse(ctx, pos[0], *dir, nil, *dir, *force)
	if err != nil {
		return err
	}
	a.printIndexReport(e.stdout, c)
	return nil
}

// parseClass reads "PLATFORM WORKSPACE [CHANNEL]".
func parseClass(words []string) (store.Class, error) {
	if len(words) < 2 || len(words) > 3 {
		return store.Class{}, usagef("a class is: slack TEAM_ID [CHANNEL_ID], or discord GUILD_ID [CHANNEL_ID]")
	}
	c := store.Class{Platform: strings.ToLower(words[0]), Workspace: words[1]}
	if len(words) == 3 {
		c.Channel = words[2]
	}
	switch c.Platform {
	case bot.PlatformSlack, bot.PlatformDiscord, bot.PlatformConsole:
	default:
		return c, usagef("a class's platform is slack or discord, not %q", words[0])
	}
	return c, nil
}

func runCourseBind(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "course bind", "NAME slack|discord WORKSPACE [CHANNEL]")
	pos, err := parseCourseFlags(fs, e, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 {
		return usagef("course bind: say the course and the class: classbot course bind go101 slack T123 [C456]")
	}
	cl, err := parseClass(pos[1:])
	if err != nil {
		return err
	}
	a, err := courseApp(ctx, e)
	if err != nil {
		return err
	}
	defer a.close()
	if err := a.store.BindCourse(ctx, pos[0], cl); err != nil {
		return courseErr(pos[0], err)
	}
	fmt.Fprintf(e.stdout, "%s asks course %s (running processes see it within %s)\n", cl, pos[0], bot.DefaultCourseCacheTTL)
	return nil
}

func runCourseUnbind(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "course unbind", "slack|discord WORKSPACE [CHANNEL]")
	pos, err := parseCourseFlags(fs, e, args)
	if err != nil {
		return err
	}
	cl, err := parseClass(pos)
	if err != nil {
		return err
	}
	a, err := courseApp(ctx, e)
	if err != nil {
		return err
	}
	defer a.close()
	had, err := a.store.UnbindCourse(ctx, cl)
	if err != nil {
		return err
	}
	now, err := a.store.CourseFor(ctx, cl)
	if err != nil {
		return err
	}
	if !had {
		fmt.Fprintf(e.stdout, "%s had no course of its own; it asks course %s\n", cl, now.Name)
		return nil
	}
	fmt.Fprintf(e.stdout, "%s unbound; it asks course %s\n", cl, now.Name)
	return nil
}

func runCourseIndex(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "course index", "[NAME] [--dir DIR] [--force]")
	dir := fs.String("dir", "", "folder of the notes (default: the course's folder; the default course's is COURSE_DIR)")
	force := fs.Bool("force", false, "re-index every file, changed or not")
	pos, err := parseCourseFlags(fs, e, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usagef("course index takes one course, got %q", pos)
	}
	name := store.DefaultCourse
	if len(pos) == 1 {
		name = pos[0]
	}
	if *dir != "" {
		if err := checkDir("--dir", *dir); err != nil {
			return err
		}
	}
	a, err := courseApp(ctx, e)
	if err != nil {
		return err
	}
	defer a.close()
	from := *dir
	if from == "" && name == store.DefaultCourse {
		from = a.cfg.CourseDir
	}
	if from == "" {
		c, err := a.store.CourseByName(ctx, name)
		if err != nil {
			return courseErr(name, err)
		}
		from = c.Dir
	}
	if from == "" {
		if name == store.DefaultCourse {
			return usagef("set COURSE_DIR (or --dir) to the folder of the default course's notes")
		}
		return usagef("course %s has no folder; say it with --dir DIR", name)
	}
	if err := checkDir("the folder", from); err != nil {
		return err
	}
	c, err := a.indexCourse(ctx, name, from, nil, from, *force)
	if err != nil {
		return err
	}
	a.printIndexReport(e.stdout, c)
	return nil
}

func runCourseList(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "course list", "")
	pos, err := parseCourseFlags(fs, e, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("course list takes no arguments, got %q", pos)
	}
	a, err := courseApp(ctx, e)
	if err != nil {
		return err
	}
	defer a.close()
	cs, err := a.store.Courses(ctx)
	if err != nil {
		return err
	}
	for _, c := range cs {
		indexed := "never indexed"
		if !c.IndexedAt.IsZero() {
			indexed = "indexed " + c.IndexedAt.UTC().Format("2006-01-02 15:04:05 UTC")
		}
		dir := c.Dir
		if dir == "" {
			dir = "-"
		}
		fmt.Fprintf(e.stdout, "%s: %d files, %d sections, %s, from %s\n", c.Name, c.Files, c.Sections, indexed, dir)
		var classes []string
		for _, cl := range c.Classes {
			classes = append(classes, cl.String())
		}
		if c.Name == store.DefaultCourse {
			classes = append(classes, "every class bound to no course")
		}
		if len(classes) == 0 {
			classes = []string{"no class yet (classbot course bind " + c.Name + " slack TEAM [CHANNEL])"}
		}
		fmt.Fprintf(e.stdout, "  serves: %s\n", strings.Join(classes, "; "))
	}
	return nil
}

func runCourseRemove(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "course remove", "NAME")
	pos, err := parseCourseFlags(fs, e, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("course remove: say which course: classbot course remove go101")
	}
	a, err := courseApp(ctx, e)
	if err != nil {
		return err
	}
	defer a.close()
	switch err := a.store.RemoveCourse(ctx, pos[0]); {
	case errors.Is(err, store.ErrNotFound):
		fmt.Fprintf(e.stdout, "there is no course %s: nothing to remove\n", pos[0])
	case err != nil:
		return courseErr(pos[0], err)
	default:
		fmt.Fprintf(e.stdout, "course %s removed, with its notes; its classes ask their workspace's course or the default one\n", pos[0])
	}
	return nil
}

func runCourseSearch(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "course search", "[--course NAME | --class \"slack TEAM [CHANNEL]\"] [--limit 3] QUERY")
	name := fs.String("course", store.DefaultCourse, "the course to search")
	class := fs.String("class", "", "search the course this class's /ask searches, e.g. \"slack T123 C456\"")
	limit := fs.Int("limit", bot.DefaultSearchResults, "sections to show (the assistant gets 3)")
	pos, err := parseCourseFlags(fs, e, args)
	if err != nil {
		return err
	}
	q := strings.TrimSpace(strings.Join(pos, " "))
	if q == "" {
		return usagef("course search: what should I look for? classbot course search \"late policy\"")
	}
	a, err := courseApp(ctx, e)
	if err != nil {
		return err
	}
	defer a.close()
	if a.storeKind == "memory" {
		// Nothing outlives a run in memory: index COURSE_DIR now.
		if a.cfg.CourseDir == "" {
			return usagef("set DATABASE_URL (courses indexed there), or COURSE_DIR (the default course's notes)")
		}
		if _, err := a.indexCourse(ctx, store.DefaultCourse, a.cfg.CourseDir, nil, a.cfg.CourseDir, false); err != nil {
			return err
		}
	}
	var c store.Course
	if *class != "" {
		cl, err := parseClass(strings.Fields(*class))
		if err != nil {
			return err
		}
		if c, err = a.store.CourseFor(ctx, cl); err != nil {
			return err
		}
	} else if c, err = a.store.CourseByName(ctx, *name); err != nil {
		return courseErr(*name, err)
	}
	start := time.Now()
	hits, err := a.notes().SearchCourse(ctx, c.ID, q, *limit)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "search_course %q: %d sections of course %s in %s (store=%s)\n\n", q, len(hits), c.Name,
		ms(time.Since(start)), a.storeKind)
	fmt.Fprintln(e.stdout, formatSearch(bot.Passages(hits)))
	return nil
}

// formatSearch renders what `course search` found for a person and for
// scripts such as course-dev's score.py: a header line "[n] citation
// (score s)", a line with the match and the confidence, then the text;
// agent.NoAnswerText when nothing was confident enough. (The model gets
// agent.FormatPassages, which quotes the citation.)
func formatSearch(ps []agent.Passage) string {
	if len(ps) == 0 {
		return agent.NoAnswerText
	}
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteString("\n\n")
		}
		fmt.Fprintf(&b, "[%d] %s (score %.3f)\n    match: %s, confidence %.2f\n%s",
			i+1, p.Citation, p.Score, p.Match(), p.Confidence, strings.TrimSpace(p.Text))
	}
	return b.String()
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
	pos, err := parseCourseFlags(fs, e, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("course eval takes flags only, got %q", pos)
	}
	cfg, err := loadConfig(e.getenv)
	if err != nil {
		return err
	}
	if *dir != "" {
		if err := checkDir("--dir", *dir); err != nil {
			return err
		}
		cfg.CourseDir = *dir
	}
	var evalData []byte
	switch {
	case *evalFile != "":
		evalData, err = os.ReadFile(*evalFile)
	case cfg.CourseDir != "":
		evalData, err = os.ReadFile(filepath.Join(cfg.CourseDir, "eval.jsonl"))
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
	a, err := newApp(ctx, cfg, e, appOptions{logLevel: slog.LevelWarn, skipCourseIndex: true, courseNotes: true})
	if err != nil {
		return err
	}
	defer a.close()
	var total evalResult
	for _, name := range courses {
		cdir := cfg.CourseDir
		if name != "" {
			cdir = filepath.Join(filepath.Dir(*evalFile), name)
		}
		res, source, err := evalCourse(ctx, e, a, cdir, byCourse[name], *verbose)
		if err != nil {
			return err
		}
		total.add(res)
		if len(courses) > 1 {
			fmt.Fprintf(e.stdout, "%s: %s (store=%s)\n", name, res.retrieval(), a.storeKind)
		} else {
			fmt.Fprintf(e.stdout, "\ncourse eval: %d questions on %s (store=%s)\n", len(cases), source, a.storeKind)
		}
	}
	if len(courses) > 1 {
		fmt.Fprintf(e.stdout, "\ncourse eval: %d questions on %d courses\n", len(cases), len(courses))
	}
	fmt.Fprintf(e.stdout, "retrieval: %s\n", total.retrieval())
	fmt.Fprintf(e.stdout, "search time: slowest %s of %d searches (from this process, round trip included)\n", ms(total.slowest), total.searches)
	if !a.runner.Offline() {
		fmt.Fprintf(e.stdout, "model %s: cites the right section %d/%d = %s; declines what the notes don't answer %d/%d = %s\n",
			a.runner.Model(), total.cited, total.answerable, pct(total.cited, total.answerable), total.declined, total.silent, pct(total.declined, total.silent))
	} else {
		fmt.Fprintln(e.stdout, "model: offline (set LLM_API_KEY or LLM_BASE_URL to also measure citations and declines)")
	}
	return nil
}

// evalCourse indexes the notes in dir (empty: the example course) into a
// scratch course, so no live course is touched, runs cases on them and
// removes the scratch course.
func evalCourse(ctx context.Context, e env, a *app, dir string, cases []evalCase, verbose bool) (res evalResult, source string, err error) {
	notes, source := notesOf(dir)
	course, remove, err := a.scratchCourse(ctx, notes, source)
	if err != nil {
		return res, source, err
	}
	defer remove()
	withModel := !a.runner.Offline()
	for _, c := range cases {
		start := time.Now()
		hits, err := a.notes().SearchCourse(ctx, course.ID, c.Question, bot.DefaultSearchResults)
		res.slowest = max(res.slowest, time.Since(start))
		res.searches++
		if err != nil {
			return res, source, err
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
			answer, err := a.bot.Answer(ctx, course.ID, c.Question)
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
	return res, source, nil
}

// declines reports whether an answer says the notes don't cover the
// question and points to the teacher, citing nothing.
func declines(answer string) bool {
	l := strings.ToLower(answer)
	return !strings.Contains(answer, store.HeadingSep) && strings.Contains(l, "teacher")
}

// printIndexReport prints what indexing course c did, and each file it
// skipped with the reason.
func (a *app) printIndexReport(w io.Writer, c store.Course) {
	fmt.Fprintf(w, "course %s from %s (store=%s): %s\n", c.Name, c.Dir, a.storeKind, a.course.report)
	for _, s := range a.course.skipped {
		fmt.Fprintf(w, "skipped %s\n", s)
	}
}

// notes is what /ask, course search and course eval search: the store,
// or with LLM_EMBEDDING_MODEL the store's hybrid search.
func (a *app) notes() bot.CourseNotes {
	pg, ok := a.store.(*store.Postgres)
	if a.embedder == nil || !ok {
		return a.store
	}
	return hybridNotes{Postgres: pg, embedder: a.embedder, log: a.log}
}

// embedCourses embeds the sections that have no vector for the embedding
// model yet (new or changed ones). A failure is logged: those sections
// are still found by their words, and the next index embeds them.
func (a *app) embedCourses(ctx context.Context) {
	pg, ok := a.store.(*store.Postgres)
	if a.embedder == nil || !ok {
		return
	}
	ectx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	n, err := pg.EmbedCourse(ectx, a.embedder, a.embedder.Model())
	if err != nil {
		a.log.Warn("course notes: embedding sections failed; they are searched by their words until the next index",
			"model", a.embedder.Model(), "embedded", n, "err", err)
		return
	}
	a.log.Info("course notes embedded", "model", a.embedder.Model(), "sections", n)
}

// hybridNotes searches with embeddings (store.Postgres.SearchCourseHybrid).
// When the provider can't embed the question, it answers with the lexical
// search alone rather than not at all.
type hybridNotes struct {
	*store.Postgres
	embedder *agent.Embedder
	log      *slog.Logger
}

func (h hybridNotes) SearchCourse(ctx context.Context, course int64, query string, limit int) ([]store.CourseHit, error) {
	hits, err := h.SearchCourseHybrid(ctx, h.embedder, h.embedder.Model(), course, query, limit)
	var pe *agent.ProviderError
	if err == nil || ctx.Err() != nil || !(errors.Is(err, agent.ErrUnavailable) || errors.As(err, &pe)) {
		return hits, err
	}
	h.log.LogAttrs(ctx, slog.LevelWarn, "course search: the hybrid search failed; searching by words only",
		slog.String("model", h.embedder.Model()), slog.Any("err", err))
	return h.Postgres.SearchCourse(ctx, course, query, limit)
}

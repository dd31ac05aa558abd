package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/store"
)

// Teacher ids as the platforms write them: a Slack user (U…) or an
// Enterprise Grid user (W…), or a Discord snowflake.
var (
	slackUserID   = regexp.MustCompile(`^[UW][A-Z0-9]{2,31}$`)
	discordUserID = regexp.MustCompile(`^[0-9]{17,20}$`)
)

// loadTeacherConfig reads TEACHER_USER_IDS into c.
func loadTeacherConfig(c *Config, env func(k, def string) string) []error {
	var errs []error
	for _, id := range strings.Split(env("TEACHER_USER_IDS", ""), ",") {
		id = strings.TrimSpace(id)
		switch {
		case id == "":
		case slackUserID.MatchString(id) || discordUserID.MatchString(id):
			c.TeacherUserIDs = append(c.TeacherUserIDs, id)
		default:
			errs = append(errs, fmt.Errorf("TEACHER_USER_IDS: %q is neither a Slack user id (U… or W…, as in the member's profile → Copy member ID) nor a Discord user id (17 to 20 digits: Developer Mode → Copy User ID)", id))
		}
	}
	return errs
}

const rosterUsage = `Usage: classbot roster export [--platform slack|discord] [--workspace ID] [--channel ID]

  export   write the registered students as CSV to stdout (name, email,
           channel, registered_at, updated_at), oldest registration first;
           cells a spreadsheet would read as a formula start with '

The roster lives in DATABASE_URL. Teachers see the same list with /roster.
`

func runRoster(ctx context.Context, e env, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, rosterUsage)
		return usagef("roster: say export (see classbot roster --help)")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(e.stdout, rosterUsage)
		return flag.ErrHelp
	case "export":
		return runRosterExport(ctx, e, args[1:])
	}
	fmt.Fprint(e.stderr, rosterUsage)
	return usagef("roster: unknown command %q", args[0])
}

func runRosterExport(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "roster export", "[--platform slack|discord] [--workspace ID] [--channel ID]")
	var f store.RosterFilter
	fs.StringVar(&f.Platform, "platform", "", "only this platform: slack or discord (default: all)")
	fs.StringVar(&f.Workspace, "workspace", "", "only this Slack team id or Discord server id (default: all)")
	fs.StringVar(&f.Channel, "channel", "", "only students who registered in this channel id (default: all)")
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("roster export takes no arguments, got %q", fs.Args())
	}
	switch f.Platform {
	case "", bot.PlatformSlack, bot.PlatformDiscord, bot.PlatformConsole:
	default:
		return usagef("roster export: --platform is slack or discord, not %q", f.Platform)
	}
	pg, err := openMigrated(ctx, e, "the roster lives in PostgreSQL")
	if err != nil {
		return err
	}
	defer pg.Close()
	w := bufio.NewWriterSize(e.stdout, 64<<10)
	out, err := bot.NewRosterCSV(w)
	if err != nil {
		return err
	}
	if err := pg.EachRegistration(ctx, f, out.Write); err != nil {
		return fmt.Errorf("roster export: %w", err)
	}
	if err := out.Flush(); err != nil {
		return fmt.Errorf("roster export: %w", err)
	}
	return w.Flush()
}

// reindexCourse re-reads course c's notes from its stored folder and
// brings its index up to date (only the files that changed): /course
// reindex. It reads nothing when c has no folder.
func (a *app) reindexCourse(ctx context.Context, c store.Course) (store.CourseIndexReport, error) {
	if c.Dir == "" {
		return store.CourseIndexReport{}, errors.New("the course has no folder")
	}
	files, skipped, err := store.ReadCourse(os.DirFS(c.Dir), store.ReadCourseOptions{MaxFileBytes: a.cfg.CourseMaxFileBytes})
	if err != nil {
		return store.CourseIndexReport{}, fmt.Errorf("reading the notes of course %s: %w", c.Name, err)
	}
	for _, s := range skipped {
		a.log.Info(fmt.Sprintf("course notes: skipping %q: %s", s.Path, s.Reason), "course", c.Name)
	}
	rep, err := store.IndexCourse(ctx, a.store, c.ID, files, false)
	if err != nil {
		return rep, fmt.Errorf("indexing the notes of course %s: %w", c.Name, err)
	}
	a.log.Info("course notes re-indexed for /course reindex", "course", c.Name, "files", rep.Files, "sections", rep.Sections, "reindexed", rep.Indexed, "removed", rep.Removed)
	return rep, nil
}

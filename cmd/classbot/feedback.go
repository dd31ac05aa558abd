package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"
)

const feedbackUsage = `Usage: classbot feedback [--limit N]

Prints the /ask answers students marked "not helpful", newest first: when,
where, the question and the sections of the notes the answer cited. The
question is shown while /ask's memory keeps the turn (ASK_MEMORY_TTL, and
until the student's /forget); after that only the click is left. Clicks are
stored with the question's interaction, never with who clicked.

Read them to see where the notes are silent or unclear, then improve the
notes and re-index them (classbot course index, or /course reindex).
`

// citation matches a section the answer cited as the assistant is told
// to: in parentheses, file › heading.
var citation = regexp.MustCompile(`\(([^()\n]+ › [^()\n]+)\)`)

func runFeedback(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "feedback", "[--limit N]")
	fs.Usage = func() { fmt.Fprint(fs.Output(), feedbackUsage) }
	limit := fs.Int("limit", 50, "how many answers to print at most")
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *limit <= 0 {
		return usagef("feedback takes only --limit N (N > 0), got %q", args)
	}
	pg, err := openMigrated(ctx, e, "feedback lives in PostgreSQL")
	if err != nil {
		return err
	}
	defer pg.Close()
	fb, err := pg.UnhelpfulFeedback(ctx, *limit)
	if err != nil {
		return fmt.Errorf("feedback: %w", err)
	}
	if len(fb) == 0 {
		fmt.Fprintln(e.stdout, "No answer has been marked not helpful.")
		return nil
	}
	fmt.Fprintf(e.stdout, "%d answers marked not helpful, newest first:\n", len(fb))
	for _, f := range fb {
		fmt.Fprintf(e.stdout, "\n%s  %s  interaction %s\n", f.ClickedAt.UTC().Format(time.DateTime), f.Platform, f.Interaction)
		if f.Question == "" {
			fmt.Fprintln(e.stdout, "  question: (no longer kept)")
			continue
		}
		fmt.Fprintf(e.stdout, "  question: %s\n", oneLine(f.Question))
		var cited []string
		for _, m := range citation.FindAllStringSubmatch(f.Answer, -1) {
			cited = append(cited, m[1])
		}
		if len(cited) == 0 {
			fmt.Fprintln(e.stdout, "  cited:    nothing (the notes may not cover it)")
		} else {
			fmt.Fprintf(e.stdout, "  cited:    %s\n", strings.Join(cited, "; "))
		}
	}
	return nil
}

// oneLine folds s's line breaks so one question stays on one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

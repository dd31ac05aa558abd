package bot

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/classbot/classbot/store"
)

// Roster is what /roster and `classbot roster export` need from a store.
// *store.Postgres and *store.Memory implement it; it must be safe for
// concurrent use.
type Roster interface {
	// EachRegistration calls fn with every registration f picks, oldest
	// first, and stops at fn's first error.
	EachRegistration(ctx context.Context, f store.RosterFilter, fn func(store.Registration) error) error
}

// Roster's layout.
const (
	// RosterNewest is how many of the newest students /roster lists.
	RosterNewest = 20
	// RosterInlineRows is how many CSV rows /roster shows in the message
	// when the file cannot be delivered.
	RosterInlineRows = 50
	// RosterFileName is the name of /roster's CSV file.
	RosterFileName = "roster.csv"
)

const rosterUnavailableText = "The roster needs classbot's database, which isn't set up here."

// RosterHeader is the first row of the roster's CSV.
var RosterHeader = []string{"name", "email", "channel", "registered_at", "updated_at"}

// CSVCell makes s safe for a spreadsheet: a cell that starts with =, +,
// -, @, a tab or a carriage return gets a leading ', so no spreadsheet
// reads it as a formula.
func CSVCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// RosterCSV writes the roster as CSV (RFC 4180, header RosterHeader,
// times in UTC RFC 3339), every cell passed through CSVCell. Call Write
// for each registration, then Flush. Not safe for concurrent use.
type RosterCSV struct {
	w   *csv.Writer
	row []string
}

// NewRosterCSV writes the header to w and returns the writer.
func NewRosterCSV(w io.Writer) (*RosterCSV, error) {
	c := &RosterCSV{w: csv.NewWriter(w), row: make([]string, len(RosterHeader))}
	if err := c.w.Write(RosterHeader); err != nil {
		return nil, err
	}
	return c, nil
}

// Write adds one student.
func (c *RosterCSV) Write(r store.Registration) error {
	c.row[0] = CSVCell(r.Name)
	c.row[1] = CSVCell(r.Email)
	c.row[2] = CSVCell(r.Channel)
	c.row[3] = r.CreatedAt.UTC().Format(time.RFC3339)
	c.row[4] = r.UpdatedAt.UTC().Format(time.RFC3339)
	return c.w.Write(c.row)
}

// Flush writes what is buffered and returns the first error of any write.
func (c *RosterCSV) Flush() error {
	c.w.Flush()
	return c.w.Error()
}

func prepareRoster(b *Bot, c Command) (job, error) {
	if err := b.teacherOnly(c); err != nil {
		return nil, err
	}
	if b.roster == nil {
		return nil, &UserError{Msg: rosterUnavailableText}
	}
	f := store.RosterFilter{Platform: c.Platform, Workspace: c.Workspace}
	return func(ctx context.Context, _ bool, tr *Trace) Reply {
		return b.rosterReply(ctx, f, tr)
	}, nil
}

// rosterFailedText is what a teacher sees when the roster can't be read.
const rosterFailedText = "Sorry, I couldn't read the roster just now. Please try again in a minute."

// rosterReply reads the class's students once, in one pass: the counts by
// channel, the newest RosterNewest, the whole CSV and its first
// RosterInlineRows rows for platforms that cannot take the file.
func (b *Bot) rosterReply(ctx context.Context, f store.RosterFilter, tr *Trace) Reply {
	start := time.Now()
	sctx, cancel := context.WithTimeout(ctx, b.storeTimeout)
	defer cancel()
	var (
		file, inline bytes.Buffer
		total        int
		byChannel    = map[string]int{}
		newest       = make([]store.Registration, 0, RosterNewest)
	)
	all, err := NewRosterCSV(&file)
	if err != nil {
		tr.fail(OutcomeError, err)
		return Reply{Text: internalText, Ephemeral: true}
	}
	head, _ := NewRosterCSV(&inline)
	err = b.roster.EachRegistration(sctx, f, func(r store.Registration) error {
		total++
		byChannel[r.Channel]++
		if len(newest) == RosterNewest {
			copy(newest, newest[1:])
			newest = newest[:RosterNewest-1]
		}
		newest = append(newest, r)
		if total <= RosterInlineRows {
			if err := head.Write(r); err != nil {
				return err
			}
		}
		return all.Write(r)
	})
	if err == nil {
		err = all.Flush()
	}
	if err == nil {
		err = head.Flush()
	}
	tr.Stored = time.Now()
	tr.Store = tr.Stored.Sub(start)
	if err != nil {
		tr.fail(OutcomeStoreError, fmt.Errorf("read roster: %w", err))
		return Reply{Text: rosterFailedText, Ephemeral: true}
	}
	tr.Outcome = OutcomeOK
	if total == 0 {
		return Reply{Text: "No students have registered here yet. They join with `/register <name> <email>`.", Ephemeral: true}
	}

	var t strings.Builder
	fmt.Fprintf(&t, "%d %s registered here.\n\nBy channel:\n", total, plural(total, "student", "students"))
	channels := make([]string, 0, len(byChannel))
	for ch := range byChannel {
		channels = append(channels, ch)
	}
	slices.SortFunc(channels, func(a, b string) int {
		if n := byChannel[b] - byChannel[a]; n != 0 {
			return n
		}
		return strings.Compare(a, b)
	})
	for _, ch := range channels {
		name := ch
		if name == "" {
			name = "(no channel)"
		}
		fmt.Fprintf(&t, "• %s: %d\n", name, byChannel[ch])
	}
	fmt.Fprintf(&t, "\nNewest %d:\n", len(newest))
	for i := len(newest) - 1; i >= 0; i-- {
		r := newest[i]
		fmt.Fprintf(&t, "• %s (%s), %s, %s\n", r.Name, r.Email, r.Channel, r.CreatedAt.UTC().Format("2006-01-02 15:04 UTC"))
	}

	in := "\nThe first " + fmt.Sprint(min(total, RosterInlineRows)) + " rows as CSV:\n" + inline.String()
	if total > RosterInlineRows {
		in += fmt.Sprintf("…and %d more. For the whole list as a file, give the Slack app the files:write scope, or run on the server: classbot roster export --platform %s --workspace %s",
			total-RosterInlineRows, f.Platform, f.Workspace)
	}
	return Reply{
		Text:      strings.TrimRight(t.String(), "\n"),
		Ephemeral: true,
		File:      &File{Name: RosterFileName, Data: file.Bytes(), Inline: in},
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

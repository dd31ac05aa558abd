// Package console is the terminal adapter: it turns a line typed in a
// terminal into a bot.Command and prints classbot's replies. The demo uses it
// to show sync, async and queue handling without Slack or Discord.
package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/classbot/classbot/bot"
)

// NewCommand returns a console Command for "/name text", with a fresh
// interaction id. user identifies the person at the terminal.
func NewCommand(name, text, user string) bot.Command {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return bot.Command{
		Platform:      bot.PlatformConsole,
		InteractionID: "console-" + hex.EncodeToString(b[:]),
		Workspace:     "console",
		Channel:       "terminal",
		User:          user,
		Name:          strings.TrimPrefix(name, "/"),
		Text:          text,
		ReceivedAt:    time.Now(),
	}
}

// Responder prints replies to a writer, each with the time since start.
// It is safe for concurrent use.
type Responder struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

// NewResponder returns a Responder that prints to w, timing from start.
func NewResponder(w io.Writer, start time.Time) *Responder {
	return &Responder{w: w, start: start}
}

// Ack prints the acknowledgement.
func (r *Responder) Ack(_ context.Context, rep bot.Reply) error {
	text := rep.Text
	if text == "" {
		text = "(acknowledged)"
	}
	return r.print("ack", text)
}

// Respond prints the only answer.
func (r *Responder) Respond(_ context.Context, rep bot.Reply) error {
	return r.print("answer", rep.Text)
}

// FollowUp prints the answer that follows an Ack.
func (r *Responder) FollowUp(_ context.Context, rep bot.Reply) error {
	return r.print("follow-up", rep.Text)
}

func (r *Responder) print(kind, text string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return printLine(r.w, r.start, kind, text)
}

// printLine writes one reply with a single Write (fmt.Fprintf formats the
// whole line first), so lines written to the same terminal by a Responder
// and a Reopener never interleave.
func printLine(w io.Writer, start time.Time, kind, text string) error {
	_, err := fmt.Fprintf(w, "[%7s %-9s] %s\n", since(start), kind, indent(text))
	return err
}

var (
	_ bot.Addressed = (*Responder)(nil)
	_ bot.Reopener  = (*Reopener)(nil)
)

// Address says where the answer goes, for bot.Addressed: nowhere but this
// terminal, so it is the empty object {}. A console command is answered
// in the process where it was typed, by the Reopener made for the same
// writer (NewReopener).
func (r *Responder) Address() (json.RawMessage, error) {
	return json.RawMessage(`{}`), nil
}

// maxRemembered bounds the commands a Reopener remembers having answered.
const maxRemembered = 10000

// Reopener rebuilds the Responder of a console command in a queue worker
// of the same process (see bot.Reopener): its follow-ups print to the
// writer the command's Responder prints to. It is safe for concurrent use.
type Reopener struct {
	mu       sync.Mutex
	w        io.Writer
	start    time.Time
	answered map[string]bool // interaction ids followed up
}

// NewReopener returns a Reopener that prints to w, timing from start: give
// it the writer and start of the commands' Responders.
func NewReopener(w io.Writer, start time.Time) *Reopener {
	return &Reopener{w: w, start: start, answered: map[string]bool{}}
}

// Reopen returns c's Responder for a queue worker; the address is not
// needed (any JSON is accepted). Only FollowUp may be called on it: Ack
// and Respond return an error.
func (o *Reopener) Reopen(_ context.Context, c bot.Command, _ json.RawMessage) (bot.Responder, error) {
	if c.Platform != "" && c.Platform != bot.PlatformConsole {
		return nil, fmt.Errorf("console: cannot reopen a %q command", c.Platform)
	}
	return &reopened{o: o, id: c.InteractionID}, nil
}

// errReopened is what a reopened Responder's Ack and Respond return.
var errReopened = errors.New("console: a reopened command was answered already; only FollowUp may be called")

type reopened struct {
	o  *Reopener
	id string
}

func (r *reopened) Ack(context.Context, bot.Reply) error     { return errReopened }
func (r *reopened) Respond(context.Context, bot.Reply) error { return errReopened }

// FollowUp prints the answer as "follow-up". A terminal cannot take back
// a line, so a second FollowUp of the same command (a job that ran twice)
// prints as "replaces": it stands for the edit Slack and Discord make, the
// earlier answer no longer counting.
func (r *reopened) FollowUp(_ context.Context, rep bot.Reply) error {
	o := r.o
	o.mu.Lock()
	defer o.mu.Unlock()
	kind := "follow-up"
	if o.answered[r.id] {
		kind = "replaces"
	} else {
		if len(o.answered) >= maxRemembered {
			clear(o.answered)
		}
		o.answered[r.id] = true
	}
	return printLine(o.w, o.start, kind, rep.Text)
}

func since(t time.Time) string {
	return time.Since(t).Round(time.Millisecond).String()
}

func indent(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := 1; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "" {
			lines[i] = strings.Repeat(" ", 20) + lines[i]
		}
	}
	return strings.Join(lines, "\n")
}

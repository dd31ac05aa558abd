// Package console is the terminal adapter: it turns a line typed in a
// terminal into a bot.Command and prints classbot's replies. The demo uses it
// to show sync and async handling without Slack or Discord.
package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	_, err := fmt.Fprintf(r.w, "[%7s %-9s] %s\n", since(r.start), kind, indent(text))
	return err
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

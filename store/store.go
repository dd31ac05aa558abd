package store

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Errors returned by every store implementation. Callers compare with errors.Is.
var (
	// ErrNotFound is returned when a registration or interaction does not exist.
	ErrNotFound = errors.New("not found")
	// ErrDuplicate is returned by RecordInteraction when the platform's
	// interaction id was recorded before: the delivery is a retry or a double.
	ErrDuplicate = errors.New("duplicate interaction")
	// ErrInvalid is returned when a record breaks the schema's rules (an
	// empty key, a name outside 1 to 100 characters, an over-long email).
	// The error names the field, never its value.
	ErrInvalid = errors.New("invalid record")
	// ErrClosed is returned by a Postgres store's writes after Close.
	ErrClosed = errors.New("store closed")
	// ErrNotWritten wraps the ctx error of a Postgres write whose ctx
	// ended before the write entered the writer's backlog: nothing was
	// written. Without it, a write whose caller gave up may still commit.
	ErrNotWritten = errors.New("nothing was written")
	// ErrUncertain wraps the error of a Postgres write that may have been
	// committed: the connection was lost after the commit was sent. The
	// caller cannot tell; it must not say that nothing was written.
	ErrUncertain = errors.New("outcome unknown: the write may have been committed")
)

// Registration is one student in one class: unique per (Platform, Workspace, User).
type Registration struct {
	Platform  string // "slack", "discord", "console"
	Workspace string // Slack team id, Discord guild id
	User      string // the platform's user id
	Channel   string // the class channel the student registered in
	Name      string // display name, 1 to 100 printable characters
	Email     string // stored lower-cased; personal data: never log it
	CreatedAt time.Time
	UpdatedAt time.Time
	// Via is the ledger id (Interaction.ID, same Platform) of the command
	// that writes this registration: the write lands only while that
	// ledger row is still the student's, so a /forget that ran meanwhile
	// wins (ErrForgotten). Empty: the write is not tied to a command.
	Via string
}

// Interaction is one row of the interactions ledger: one platform delivery,
// keyed by (Platform, ID), with the moments it passed through classbot.
// A zero time means "did not happen (yet)".
type Interaction struct {
	Platform  string // "slack", "discord", "console"
	ID        string // Slack trigger id, Discord interaction id, a generated id for the console
	Command   string // "register", "ask", ...
	Mode      string // "sync", "async", "queue"
	Workspace string
	Channel   string
	User      string

	ReceivedAt     time.Time
	AcknowledgedAt time.Time
	StoredAt       time.Time
	AgentDoneAt    time.Time
	RepliedAt      time.Time
	Outcome        string // "", "ok", "invalid", "busy", "error", "timeout", ...
}

// OutcomeAckFailed marks a ledger row whose delivery was never
// acknowledged: the platform showed its own error and may deliver the same
// interaction again (Socket Mode redelivers unacknowledged envelopes). Such
// a redelivery is not a duplicate: RecordInteraction of the same
// (Platform, ID) takes the row over and succeeds.
const OutcomeAckFailed = "ack_failed"

// Limits the schema enforces (the CHECK constraints of the migrations).
const (
	MaxNameChars  = 100
	MaxEmailBytes = 254
	maxKeyBytes   = 128
	maxIDBytes    = 256
)

// normalize checks r against the schema's rules and lower-cases its email.
func (r Registration) normalize() (Registration, error) {
	r.Email = strings.ToLower(strings.TrimSpace(r.Email))
	switch {
	case r.Platform == "" || len(r.Platform) > 32:
		return r, fmt.Errorf("%w: platform", ErrInvalid)
	case r.User == "" || len(r.User) > maxKeyBytes:
		return r, fmt.Errorf("%w: user", ErrInvalid)
	case len(r.Workspace) > maxKeyBytes:
		return r, fmt.Errorf("%w: workspace", ErrInvalid)
	case len(r.Channel) > maxKeyBytes:
		return r, fmt.Errorf("%w: channel", ErrInvalid)
	case r.Name == "" || utf8.RuneCountInString(r.Name) > MaxNameChars:
		return r, fmt.Errorf("%w: name must be 1 to %d characters", ErrInvalid, MaxNameChars)
	case len(r.Email) < 3 || len(r.Email) > MaxEmailBytes:
		return r, fmt.Errorf("%w: email must be 3 to %d characters", ErrInvalid, MaxEmailBytes)
	}
	return r, nil
}

// check checks the ledger row's key against the schema's rules.
func (in Interaction) check() error {
	switch {
	case in.Platform == "" || len(in.Platform) > 32:
		return fmt.Errorf("%w: platform", ErrInvalid)
	case in.ID == "" || len(in.ID) > maxIDBytes:
		return fmt.Errorf("%w: interaction id", ErrInvalid)
	case len(in.Command) > 64 || len(in.Mode) > 16 || len(in.Outcome) > 32:
		return fmt.Errorf("%w: command, mode or outcome too long", ErrInvalid)
	case len(in.Workspace) > maxKeyBytes || len(in.Channel) > maxKeyBytes || len(in.User) > maxKeyBytes:
		return fmt.Errorf("%w: workspace, channel or user too long", ErrInvalid)
	}
	return nil
}

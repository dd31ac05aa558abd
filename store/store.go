package store

import (
	"errors"
	"time"
)

// Errors returned by every store implementation. Callers compare with errors.Is.
var (
	// ErrNotFound is returned when a registration or interaction does not exist.
	ErrNotFound = errors.New("not found")
	// ErrDuplicate is returned by RecordInteraction when the platform's
	// interaction id was recorded before: the delivery is a retry or a double.
	ErrDuplicate = errors.New("duplicate interaction")
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

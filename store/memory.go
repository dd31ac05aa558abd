package store

import (
	"context"
	"sync"
	"time"
)

// Memory is a store that keeps everything in the process, for running
// without PostgreSQL: what it holds is lost when classbot stops. It behaves
// like Postgres (same keys, same errors) and is safe for concurrent use.
// Create it with NewMemory.
type Memory struct {
	mu            sync.Mutex
	registrations map[regKey]Registration
	interactions  map[ledgerKey]Interaction
	now           func() time.Time

	courses memCourses // courses, their notes and classes (course_memory.go)
	asks    []AskTurn  // remembered /ask turns, in the order added

	feedback map[feedbackKey]Feedback // clicks on answers (feedback.go)
}

type regKey struct{ platform, workspace, user string }

type ledgerKey struct{ platform, id string }

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{
		registrations: make(map[regKey]Registration),
		interactions:  make(map[ledgerKey]Interaction),
		now:           time.Now,
		courses:       newMemCourses(time.Now()),
	}
}

// Close does nothing; it is there so Memory and Postgres are used alike.
func (m *Memory) Close() {}

// Ping always succeeds.
func (m *Memory) Ping(context.Context) error { return nil }

// UpsertRegistration creates the student or updates their channel, name and
// email, and reports whether the row was created.
func (m *Memory) UpsertRegistration(ctx context.Context, r Registration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	r, err := r.normalize()
	if err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.stillTheirs(r.Platform, r.Via, r.User) {
		return false, ErrForgotten
	}
	k := regKey{r.Platform, r.Workspace, r.User}
	now := m.now()
	old, ok := m.registrations[k]
	r.CreatedAt, r.UpdatedAt = now, now
	if ok {
		r.CreatedAt = old.CreatedAt
	}
	m.registrations[k] = r
	return !ok, nil
}

// GetRegistration returns one student, or ErrNotFound.
func (m *Memory) GetRegistration(ctx context.Context, platform, workspace, user string) (Registration, error) {
	if err := ctx.Err(); err != nil {
		return Registration{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.registrations[regKey{platform, workspace, user}]
	if !ok {
		return Registration{}, ErrNotFound
	}
	return r, nil
}

// CountRegistrations returns how many students are registered, in all classes.
func (m *Memory) CountRegistrations(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.registrations), nil
}

// RecordInteraction adds a row to the ledger, or returns ErrDuplicate if
// (Platform, ID) is already there with an outcome other than
// OutcomeAckFailed (such a row is taken over).
func (m *Memory) RecordInteraction(ctx context.Context, in Interaction) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := in.check(); err != nil {
		return err
	}
	if in.ReceivedAt.IsZero() {
		in.ReceivedAt = m.now()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := ledgerKey{in.Platform, in.ID}
	if old, ok := m.interactions[k]; ok && old.Outcome != OutcomeAckFailed {
		return ErrDuplicate
	}
	m.interactions[k] = in
	return nil
}

// FinishInteraction sets the ledger row's timestamps that are non-zero in in,
// and its outcome when in.Outcome is not empty; or returns ErrNotFound.
func (m *Memory) FinishInteraction(ctx context.Context, in Interaction) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := ledgerKey{in.Platform, in.ID}
	row, ok := m.interactions[k]
	if !ok {
		return ErrNotFound
	}
	set := func(dst *time.Time, t time.Time) {
		if !t.IsZero() {
			*dst = t
		}
	}
	set(&row.AcknowledgedAt, in.AcknowledgedAt)
	set(&row.StoredAt, in.StoredAt)
	set(&row.AgentDoneAt, in.AgentDoneAt)
	set(&row.RepliedAt, in.RepliedAt)
	if in.Outcome != "" {
		row.Outcome = in.Outcome
	}
	m.interactions[k] = row
	return nil
}

// GetInteraction returns one ledger row, or ErrNotFound.
func (m *Memory) GetInteraction(ctx context.Context, platform, id string) (Interaction, error) {
	if err := ctx.Err(); err != nil {
		return Interaction{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	in, ok := m.interactions[ledgerKey{platform, id}]
	if !ok {
		return Interaction{}, ErrNotFound
	}
	return in, nil
}

// PurgeInteractions deletes the ledger rows received before olderThan and
// returns how many it deleted.
func (m *Memory) PurgeInteractions(ctx context.Context, olderThan time.Time) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for k, in := range m.interactions {
		if in.ReceivedAt.Before(olderThan) {
			delete(m.interactions, k)
			n++
		}
	}
	return n, nil
}

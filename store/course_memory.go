package store

import (
	"context"
	"slices"
	"sort"
	"time"
)

// CourseHashes returns the content hash of every indexed course file, by path.
func (m *Memory) CourseHashes(ctx context.Context) (map[string]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]string, len(m.course))
	for p, f := range m.course {
		out[p] = f.Hash
	}
	return out, nil
}

// ReplaceCourseFile stores f and its sections in place of what was indexed
// for f.Path.
func (m *Memory) ReplaceCourseFile(ctx context.Context, f CourseFile) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkCourseFile(f); err != nil {
		return err
	}
	f.Sections = append([]Section(nil), f.Sections...)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.course[f.Path] = f
	return nil
}

// RemoveCourseFiles removes the files at paths and their sections.
func (m *Memory) RemoveCourseFiles(ctx context.Context, paths []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range paths {
		delete(m.course, p)
	}
	return nil
}

// SearchCourse returns up to limit sections that answer query, best
// first, ranked as PostgreSQL's store ranks them (rankSections); sections
// under MinConfidence are left out.
func (m *Memory) SearchCourse(ctx context.Context, query string, limit int) ([]CourseHit, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	m.mu.Lock()
	var sections []Section
	for _, f := range m.course {
		sections = append(sections, f.Sections...)
	}
	m.mu.Unlock()
	return rankSections(sections, query, limit), nil
}

// AddAskTurn remembers one answered /ask.
func (m *Memory) AddAskTurn(ctx context.Context, t AskTurn) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := t.check(); err != nil {
		return err
	}
	if t.At.IsZero() {
		t.At = m.now()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.asks = append(m.asks, t)
	return nil
}

// AskTurns returns the last limit turns of key answered at or after since,
// oldest first.
func (m *Memory) AskTurns(ctx context.Context, key AskKey, since time.Time, limit int) ([]AskTurn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	m.mu.Lock()
	var turns []AskTurn
	for _, t := range m.asks {
		if t.AskKey == key && !t.At.Before(since) {
			turns = append(turns, t)
		}
	}
	m.mu.Unlock()
	sort.SliceStable(turns, func(i, j int) bool { return turns[i].At.Before(turns[j].At) })
	if len(turns) > limit {
		turns = turns[len(turns)-limit:]
	}
	return turns, nil
}

// PurgeAskTurns deletes the remembered turns answered before olderThan and
// returns how many it deleted.
func (m *Memory) PurgeAskTurns(ctx context.Context, olderThan time.Time) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	before := len(m.asks)
	m.asks = slices.DeleteFunc(m.asks, func(t AskTurn) bool { return t.At.Before(olderThan) })
	return int64(before - len(m.asks)), nil
}

package store

import (
	"context"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
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

// SearchCourse returns up to limit sections that contain any of query's
// words, best first. The ranking is deliberately simple (PostgreSQL's
// full-text search is the real one): each query word found counts 2.5
// times in the section's headings, once in its text and half in its file
// name (PostgreSQL's weights A, B and C), the sum is divided by 1 + the log of the section's length, and a
// section with every word gets 1 more, as Postgres's ranking does. Words
// are lower-cased, stop words dropped and a plural "s" removed.
func (m *Memory) SearchCourse(ctx context.Context, query string, limit int) ([]CourseHit, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	terms := uniqueTerms(query)
	if limit <= 0 || len(terms) == 0 {
		return nil, nil
	}
	m.mu.Lock()
	var sections []Section
	for _, f := range m.course {
		sections = append(sections, f.Sections...)
	}
	m.mu.Unlock()

	var hits []CourseHit
	for _, s := range sections {
		title, body, file := countTerms(s.title()), countTerms(s.Text), countTerms(s.fileWords())
		words := 0
		for _, n := range body {
			words += n
		}
		score, found := 0.0, 0
		for _, t := range terms {
			n := 2.5*float64(title[t]) + float64(body[t]) + 0.5*float64(file[t])
			if n > 0 {
				found++
				score += n
			}
		}
		if found == 0 {
			continue
		}
		score /= 1 + math.Log(float64(1+words))
		if found == len(terms) {
			score++
		}
		hits = append(hits, CourseHit{Section: s, Score: score})
	}
	sort.Slice(hits, func(i, j int) bool {
		a, b := hits[i], hits[j]
		if a.Score != b.Score {
			return a.Score > b.Score
		}
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Seq < b.Seq
	})
	if len(hits) > limit {
		hits = hits[:limit]
	}
	return hits, nil
}

// stopWords are left out of the in-memory ranking (a few of PostgreSQL's
// english ones: the words of a question that say nothing about the course).
var stopWords = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`a an and are as at be by can could do does for from how i if in is it
		its me my of on or our so that the their there these this to was we what when where which who why
		will with would you your`) {
		stopWords[w] = true
	}
}

// terms splits text into lower-cased words of letters and digits, without
// stop words, with a plural "s" removed.
func terms(text string) []string {
	var out []string
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		if stopWords[w] {
			continue
		}
		if len(w) > 3 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") {
			w = strings.TrimSuffix(w, "s")
		}
		out = append(out, w)
	}
	return out
}

func uniqueTerms(text string) []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range terms(text) {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

func countTerms(text string) map[string]int {
	c := map[string]int{}
	for _, t := range terms(text) {
		c[t]++
	}
	return c
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

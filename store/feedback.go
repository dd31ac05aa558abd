package store

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Feedback is a student's click on an /ask answer: helpful or not. It is
// keyed by the question's interaction, never by who clicked.
type Feedback struct {
	Platform    string
	Interaction string // the ledger id of the /ask the answer was for
	Helpful     bool
	ClickedAt   time.Time
	// Question and Answer are the remembered turn's, while /ask's memory
	// keeps it; empty once it is gone (expired or forgotten).
	Question string
	Answer   string
}

func checkFeedback(platform, interaction string) error {
	if platform == "" || len(platform) > 32 || interaction == "" || len(interaction) > 256 {
		return fmt.Errorf("feedback for %q on %q: %w", interaction, platform, ErrInvalid)
	}
	return nil
}

// RecordFeedback stores a click on the answer to interaction; a later
// click on the same answer replaces it.
func (p *Postgres) RecordFeedback(ctx context.Context, platform, interaction string, helpful bool) error {
	if err := checkFeedback(platform, interaction); err != nil {
		return err
	}
	_, err := p.pool.Exec(ctx, `
INSERT INTO feedback (platform, interaction, helpful) VALUES ($1, $2, $3)
ON CONFLICT (platform, interaction) DO UPDATE SET helpful = EXCLUDED.helpful, clicked_at = now()`,
		platform, interaction, helpful)
	if err != nil {
		return pgErr("recording feedback", err)
	}
	return nil
}

// UnhelpfulFeedback returns the newest limit answers marked not helpful,
// newest first, with their remembered question and answer.
func (p *Postgres) UnhelpfulFeedback(ctx context.Context, limit int) ([]Feedback, error) {
	rows, err := p.pool.Query(ctx, `
SELECT f.platform, f.interaction, f.clicked_at, COALESCE(a.question, ''), COALESCE(a.answer, '')
FROM feedback f
LEFT JOIN LATERAL (
    SELECT question, answer FROM ask_memory m
    WHERE m.platform = f.platform AND m.via = f.interaction
    ORDER BY m.id DESC LIMIT 1
) a ON true
WHERE NOT f.helpful
ORDER BY f.clicked_at DESC
LIMIT $1`, limit)
	if err != nil {
		return nil, pgErr("reading feedback", err)
	}
	defer rows.Close()
	var out []Feedback
	for rows.Next() {
		f := Feedback{}
		if err := rows.Scan(&f.Platform, &f.Interaction, &f.ClickedAt, &f.Question, &f.Answer); err != nil {
			return nil, pgErr("reading feedback", err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, pgErr("reading feedback", err)
	}
	return out, nil
}

type feedbackKey struct{ platform, interaction string }

// RecordFeedback stores a click on the answer to interaction; a later
// click on the same answer replaces it.
func (m *Memory) RecordFeedback(ctx context.Context, platform, interaction string, helpful bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkFeedback(platform, interaction); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.feedback == nil {
		m.feedback = make(map[feedbackKey]Feedback)
	}
	m.feedback[feedbackKey{platform, interaction}] = Feedback{Platform: platform, Interaction: interaction, Helpful: helpful, ClickedAt: m.now()}
	return nil
}

// UnhelpfulFeedback returns the newest limit answers marked not helpful,
// newest first, with their remembered question and answer.
func (m *Memory) UnhelpfulFeedback(ctx context.Context, limit int) ([]Feedback, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Feedback
	for _, f := range m.feedback {
		if f.Helpful {
			continue
		}
		for i := len(m.asks) - 1; i >= 0; i-- {
			if t := m.asks[i]; t.Platform == f.Platform && t.Via == f.Interaction {
				f.Question, f.Answer = t.Question, t.Answer
				break
			}
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b Feedback) int { return b.ClickedAt.Compare(a.ClickedAt) })
	if limit >= 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

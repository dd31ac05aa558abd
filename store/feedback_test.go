package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/classbot/classbot/store"
)

type feedbackContract interface {
	AddAskTurn(ctx context.Context, t store.AskTurn) error
	RecordFeedback(ctx context.Context, platform, interaction string, helpful bool) error
	UnhelpfulFeedback(ctx context.Context, limit int) ([]store.Feedback, error)
}

var (
	_ feedbackContract = (*store.Postgres)(nil)
	_ feedbackContract = (*store.Memory)(nil)
)

func TestFeedbackFindsTheQuestionThroughTheInteraction(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		pg := openPostgres(t)
		if _, err := pg.Pool().Exec(t.Context(), "TRUNCATE feedback, ask_memory"); err != nil {
			t.Fatal(err)
		}
		testFeedback(t, pg)
	})
	t.Run("memory", func(t *testing.T) { testFeedback(t, store.NewMemory()) })
}

func testFeedback(t *testing.T, s feedbackContract) {
	ctx := t.Context()
	key := store.AskKey{Platform: "discord", Workspace: "G1", Channel: "C1", User: "U1"}
	for _, turn := range []store.AskTurn{
		{AskKey: key, Question: "when is hw 2 due?", Answer: "Friday (schedule.md › Assignment 2).", Via: "i-1"},
		{AskKey: key, Question: "calculators?", Answer: "Yes (exam.md › Calculators).", Via: "i-2"},
	} {
		if err := s.AddAskTurn(ctx, turn); err != nil {
			t.Fatal(err)
		}
	}
	// i-1: not helpful, then helpful (the latest click wins); i-2: not
	// helpful; i-3: not helpful, its turn no longer remembered.
	for _, c := range []struct {
		id      string
		helpful bool
	}{{"i-1", false}, {"i-2", false}, {"i-1", true}, {"i-3", false}} {
		if err := s.RecordFeedback(ctx, "discord", c.id, c.helpful); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.UnhelpfulFeedback(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("unhelpful %+v, want i-3 and i-2", got)
	}
	byID := map[string]store.Feedback{got[0].Interaction: got[0], got[1].Interaction: got[1]}
	if f := byID["i-2"]; f.Question != "calculators?" || f.Answer != "Yes (exam.md › Calculators)." || f.Helpful {
		t.Errorf("i-2: %+v", f)
	}
	if f, ok := byID["i-3"]; !ok || f.Question != "" {
		t.Errorf("i-3: %+v, want it with no question", f)
	}
	if err := s.RecordFeedback(ctx, "", "i-4", false); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("feedback with no platform: %v, want ErrInvalid", err)
	}
}

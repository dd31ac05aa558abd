package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/classbot/classbot/store"
)

func TestFeedbackPrintsUnhelpfulAnswersWithQuestionAndCitations(t *testing.T) {
	u, pg := rosterDB(t)
	ctx := t.Context()
	key := store.AskKey{Platform: "discord", Workspace: "G1", Channel: "C1", User: "U1"}
	for _, turn := range []store.AskTurn{
		{AskKey: key, Question: "when is\nhw 2 due?", Answer: "6 March (schedule.md › Assignment 2), late: (syllabus.md › Late policy).", Via: "1300000000000000001"},
		{AskKey: key, Question: "is there parking?", Answer: "The course notes don't say.", Via: "1300000000000000002"},
		{AskKey: key, Question: "grading?", Answer: "60/40 (syllabus.md › Grading).", Via: "1300000000000000003"},
	} {
		if err := pg.AddAskTurn(ctx, turn); err != nil {
			t.Fatal(err)
		}
	}
	for id, helpful := range map[string]bool{"1300000000000000001": false, "1300000000000000002": false, "1300000000000000003": true} {
		if err := pg.RecordFeedback(ctx, "discord", id, helpful); err != nil {
			t.Fatal(err)
		}
	}
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"classbot", "feedback"}, envOf(map[string]string{"DATABASE_URL": u}), strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("%v: %s", err, errOut.String())
	}
	got := out.String()
	for _, want := range []string{
		"2 answers marked not helpful",
		"question: when is hw 2 due?",
		"cited:    schedule.md › Assignment 2; syllabus.md › Late policy",
		"question: is there parking?",
		"cited:    nothing",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "grading?") {
		t.Errorf("a helpful answer was printed:\n%s", got)
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// course eval runs an evaluation set that spans several courses (a line's
// "course" names its folder next to the set), judging hits by snippet, and
// reports each course, the total, and the questions that found nothing.
func TestCourseEvalRunsSeveralCourses(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("bio/notes.md", "# Biology\n## Labs\nLabs are on **Thursday** afternoons in room B12.\n## Grading\nThe final exam counts for half of the grade.\n")
	write("art/notes.md", "# Art\n## Supplies\nBring a sketchbook and charcoal to every studio session.\n## Critique\nCritiques happen every other Friday.\n")
	write("eval.jsonl", strings.Join([]string{
		`{"question": "when are the labs", "expect": "notes.md › Labs", "course": "bio", "snippet": "Labs are on Thursday afternoons"}`,
		`{"question": "how much is the final exam worth", "expect": "notes.md › Grading", "course": "bio", "snippet": "counts for half"}`,
		`{"question": "is there parking near the building", "expect": "", "course": "bio"}`,
		`{"question": "what supplies do i bring", "expect": "notes.md › Supplies", "course": "art", "snippet": "sketchbook and charcoal"}`,
		`{"question": "when is the critique", "expect": "notes.md › Critique", "course": "art", "snippet": "a snippet that is nowhere"}`,
	}, "\n"))
	out, err := runClassbot(t, map[string]string{"DATABASE_URL": courseDB(t)}, "course", "eval", "--eval", filepath.Join(dir, "eval.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"bio: hit@1 2/2 = 100.0%, hit@3 2/2 = 100.0%; questions the notes don't answer: 1, of which 1 found no section",
		"art: hit@1 1/2 = 50.0%, hit@3 1/2 = 50.0%; questions the notes don't answer: 0",
		"course eval: 5 questions on 2 courses",
		"retrieval: hit@1 3/4 = 75.0%, hit@3 3/4 = 75.0%; questions the notes don't answer: 1, of which 1 found no section (100.0%); answerable questions that found no section: 0/4",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
}

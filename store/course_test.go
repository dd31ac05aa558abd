package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/classbot/classbot/store"
)

func TestSplitSectionsByHeadingPath(t *testing.T) {
	const syllabus = `Intro text before any heading.

# Go 101

Welcome.

## Grading

Assignments 60%, exam 40%.

### Late work

10% off per day.

` + "```" + `
# not a heading inside a fence
` + "```" + `

## Empty

## Contact ##

Mail the teacher.
`
	got := store.SplitSections("syllabus.md", syllabus)
	want := []struct{ citation, text string }{
		{"syllabus.md", "Intro text before any heading."},
		{"syllabus.md › Go 101", "Welcome."},
		{"syllabus.md › Grading", "Assignments 60%, exam 40%."},
		{"syllabus.md › Grading › Late work", "10% off per day.\n\n```\n# not a heading inside a fence\n```"},
		{"syllabus.md › Contact", "Mail the teacher."},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d sections, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].Citation() != w.citation || got[i].Text != w.text || got[i].Seq != i {
			t.Errorf("section %d = %q %q seq %d, want %q %q seq %d", i, got[i].Citation(), got[i].Text, got[i].Seq, w.citation, w.text, i)
		}
	}
}

func TestSplitSectionsKeepsSeveralTopHeadings(t *testing.T) {
	got := store.SplitSections("notes.md", "# Part A\n## Intro\nx\n# Part B\n## Intro\ny\n")
	if len(got) != 2 || got[0].Citation() != "notes.md › Part A › Intro" || got[1].Citation() != "notes.md › Part B › Intro" {
		t.Errorf("got %+v, want both level-1 headings kept in the path", got)
	}
}

func TestSplitSectionsPlainTextHasNoHeadings(t *testing.T) {
	got := store.SplitSections("notes/faq.txt", "# just a line\nmore text\n")
	if len(got) != 1 || got[0].Citation() != "notes/faq.txt" || got[0].Text != "# just a line\nmore text" {
		t.Errorf("got %+v, want one section cited by the file", got)
	}
}

func TestSplitSectionsCutsLongSectionsWithOverlap(t *testing.T) {
	var b strings.Builder
	b.WriteString("## Rules\n\n")
	for i := range 60 {
		fmt.Fprintf(&b, "Rule %d: students must read the rule number %d carefully.\n", i, i)
	}
	got := store.SplitSections("rules.md", b.String())
	if len(got) < 3 {
		t.Fatalf("got %d parts, want the long section cut into several", len(got))
	}
	for i, s := range got {
		if n := utf8.RuneCountInString(s.Text); n > store.MaxSectionChars {
			t.Errorf("part %d has %d runes, over %d", i, n, store.MaxSectionChars)
		}
		if s.Citation() != "rules.md › Rules" {
			t.Errorf("part %d cites %q, want the heading kept", i, s.Citation())
		}
		if i > 0 {
			prev := strings.Split(got[i-1].Text, "\n")
			last := prev[len(prev)-1]
			if !strings.HasPrefix(s.Text, last) && !strings.Contains(s.Text, last) {
				t.Errorf("part %d does not repeat the previous part's last line %q", i, last)
			}
		}
	}
	// Every rule is in some part.
	all := ""
	for _, s := range got {
		all += s.Text + "\n"
	}
	for i := range 60 {
		if !strings.Contains(all, fmt.Sprintf("Rule %d:", i)) {
			t.Errorf("rule %d lost", i)
		}
	}
}

func TestSplitSectionsCutsAVeryLongLineBetweenWords(t *testing.T) {
	line := strings.Repeat("word ", 1000)
	got := store.SplitSections("x.md", line)
	if len(got) < 4 {
		t.Fatalf("got %d parts", len(got))
	}
	for _, s := range got {
		if utf8.RuneCountInString(s.Text) > store.MaxSectionChars || strings.Contains(s.Text, "wo rd") {
			t.Errorf("bad part %q", s.Text[:40])
		}
	}
}

// courseContract is what both stores promise for the course notes and the
// /ask memory.
type courseContract interface {
	store.CourseIndex
	SearchCourse(ctx context.Context, course int64, query string, limit int) ([]store.CourseHit, error)
	PutCourse(ctx context.Context, name, dir string) (store.Course, error)
	CourseByName(ctx context.Context, name string) (store.Course, error)
	CourseFor(ctx context.Context, c store.Class) (store.Course, error)
	Courses(ctx context.Context) ([]store.Course, error)
	RemoveCourse(ctx context.Context, name string) error
	BindCourse(ctx context.Context, name string, c store.Class) error
	UnbindCourse(ctx context.Context, c store.Class) (bool, error)
	AddAskTurn(ctx context.Context, t store.AskTurn) error
	AskTurns(ctx context.Context, key store.AskKey, since time.Time, limit int) ([]store.AskTurn, error)
	PurgeAskTurns(ctx context.Context, olderThan time.Time) (int64, error)
}

var (
	_ courseContract = (*store.Postgres)(nil)
	_ courseContract = (*store.Memory)(nil)
)

func eachCourseStore(t *testing.T, test func(t *testing.T, s courseContract)) {
	t.Run("postgres", func(t *testing.T) {
		pg := openPostgres(t)
		emptyCourses(t, pg)
		test(t, pg)
	})
	t.Run("memory", func(t *testing.T) { test(t, store.NewMemory()) })
}

func courseFile(path, content string) store.CourseFile {
	return store.CourseFile{Path: path, Hash: fmt.Sprintf("%x", len(content)) + path, Sections: store.SplitSections(path, content)}
}

var exampleCourse = []store.CourseFile{
	courseFile("syllabus.md", `# Syllabus
## Grading
Assignments count for 60% of the final grade and the exam for 40%.
## Late policy
Work handed in late loses 10% per day, up to three days.
`),
	courseFile("schedule.md", `# Schedule
## Assignment 1
Assignment 1 is due on 6 February at 23:59.
## Assignment 2
Assignment 2 is due on 6 March at 23:59.
`),
	courseFile("exam.md", `# Exam rules
## Calculators
A simple calculator is allowed in the exam; phones are not.
`),
}

func citations(hits []store.CourseHit) []string {
	var out []string
	for _, h := range hits {
		out = append(out, h.Citation())
	}
	return out
}

func TestCourseSearchFindsTheRightSection(t *testing.T) {
	eachCourseStore(t, func(t *testing.T, s courseContract) {
		ctx := t.Context()
		c := defaultCourse(t, s)
		rep, err := store.IndexCourse(ctx, s, c, exampleCourse, false)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Indexed != 3 || rep.Sections != 5 {
			t.Errorf("report %v", rep)
		}
		for _, tc := range []struct{ q, want string }{
			{"When is assignment 2 due?", "schedule.md › Assignment 2"},
			{"Can I bring a calculator to the exam?", "exam.md › Calculators"},
			{"what happens if I hand in my work late", "syllabus.md › Late policy"},
			{"how is the final grade computed", "syllabus.md › Grading"},
		} {
			hits, err := s.SearchCourse(ctx, c, tc.q, 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(hits) == 0 || hits[0].Citation() != tc.want {
				t.Errorf("%q: got %v, want %q first", tc.q, citations(hits), tc.want)
				continue
			}
			if hits[0].Text == "" || hits[0].Score <= 0 {
				t.Errorf("%q: hit %+v has no text or score", tc.q, hits[0])
			}
			for i := 1; i < len(hits); i++ {
				if hits[i].Score > hits[i-1].Score {
					t.Errorf("%q: not best first: %v", tc.q, hits)
				}
			}
		}
		if hits, err := s.SearchCourse(ctx, c, "assignment", 1); err != nil || len(hits) != 1 {
			t.Errorf("limit 1: %v %v", citations(hits), err)
		}
		for _, q := range []string{"", "the is a", "photosynthesis chlorophyll"} {
			if hits, err := s.SearchCourse(ctx, c, q, 3); err != nil || len(hits) != 0 {
				t.Errorf("%q: got %v %v, want nothing", q, citations(hits), err)
			}
		}
	})
}

func TestCourseReindexOnlyWhatChanged(t *testing.T) {
	eachCourseStore(t, func(t *testing.T, s courseContract) {
		ctx := t.Context()
		c := defaultCourse(t, s)
		if _, err := store.IndexCourse(ctx, s, c, exampleCourse, false); err != nil {
			t.Fatal(err)
		}
		rep, err := store.IndexCourse(ctx, s, c, exampleCourse, false)
		if err != nil || rep.Indexed != 0 || rep.Unchanged != 3 {
			t.Fatalf("second index: %v %v, want nothing re-indexed", rep, err)
		}
		// schedule.md changes, exam.md is deleted.
		changed := []store.CourseFile{exampleCourse[0], courseFile("schedule.md", "# Schedule\n## Assignment 2\nAssignment 2 moved to 13 March.\n")}
		rep, err = store.IndexCourse(ctx, s, c, changed, false)
		if err != nil || rep.Indexed != 1 || rep.Unchanged != 1 || rep.Removed != 1 {
			t.Fatalf("after a change: %v %v", rep, err)
		}
		hits, err := s.SearchCourse(ctx, c, "assignment 2 due", 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(hits) == 0 || !strings.Contains(hits[0].Text, "13 March") {
			t.Errorf("got %+v, want the new text", hits)
		}
		for _, h := range hits {
			if strings.Contains(h.Text, "6 March") || strings.Contains(h.Text, "6 February") {
				t.Errorf("old section still found: %+v", h)
			}
		}
		if hits, _ := s.SearchCourse(ctx, c, "calculator", 3); len(hits) != 0 {
			t.Errorf("a removed file is still found: %v", citations(hits))
		}
		rep, err = store.IndexCourse(ctx, s, c, changed, true)
		if err != nil || rep.Indexed != 2 {
			t.Errorf("forced: %v %v, want every file re-indexed", rep, err)
		}
	})
}

func askKey(platform, workspace, channel, user string) store.AskKey {
	return store.AskKey{Platform: platform, Workspace: workspace, Channel: channel, User: user}
}

func TestAskMemoryIsPerStudentChannelWorkspace(t *testing.T) {
	eachCourseStore(t, func(t *testing.T, s courseContract) {
		ctx := t.Context()
		base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
		me := askKey("slack", "T1", "C1", "U1")
		others := []store.AskKey{
			askKey("slack", "T1", "C1", "U2"),   // another student
			askKey("slack", "T1", "C2", "U1"),   // another channel
			askKey("slack", "T2", "C1", "U1"),   // another workspace
			askKey("discord", "T1", "C1", "U1"), // another platform
		}
		for i := range 8 {
			if err := s.AddAskTurn(ctx, store.AskTurn{AskKey: me, Question: fmt.Sprintf("q%d", i), Answer: fmt.Sprintf("a%d", i), At: base.Add(time.Duration(i) * time.Minute)}); err != nil {
				t.Fatal(err)
			}
		}
		for _, k := range others {
			if err := s.AddAskTurn(ctx, store.AskTurn{AskKey: k, Question: "secret of " + k.User + k.Channel + k.Workspace, Answer: "x", At: base.Add(30 * time.Minute)}); err != nil {
				t.Fatal(err)
			}
		}
		turns, err := s.AskTurns(ctx, me, base, 3)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, tr := range turns {
			got = append(got, tr.Question+"/"+tr.Answer)
			if tr.AskKey != me {
				t.Errorf("turn of %+v returned for %+v", tr.AskKey, me)
			}
		}
		if strings.Join(got, " ") != "q5/a5 q6/a6 q7/a7" {
			t.Errorf("got %v, want the last three, oldest first", got)
		}
		for _, k := range others {
			turns, err := s.AskTurns(ctx, k, base, 10)
			if err != nil || len(turns) != 1 || !strings.HasPrefix(turns[0].Question, "secret of ") {
				t.Errorf("%+v: %+v %v, want only its own turn", k, turns, err)
			}
		}
		// Since: turns answered before it are not returned.
		turns, err = s.AskTurns(ctx, me, base.Add(6*time.Minute), 10)
		if err != nil || len(turns) != 2 {
			t.Errorf("since: %d turns %v, want 2", len(turns), err)
		}
	})
}

func TestAskMemoryPurgeDeletesOnlyExpired(t *testing.T) {
	eachCourseStore(t, func(t *testing.T, s courseContract) {
		ctx := t.Context()
		now := time.Now().Truncate(time.Millisecond)
		k := askKey("slack", "T1", "C1", "U1")
		for _, age := range []time.Duration{48 * time.Hour, 25 * time.Hour, 23 * time.Hour, time.Minute} {
			if err := s.AddAskTurn(ctx, store.AskTurn{AskKey: k, Question: age.String(), Answer: "a", At: now.Add(-age)}); err != nil {
				t.Fatal(err)
			}
		}
		n, err := s.PurgeAskTurns(ctx, now.Add(-24*time.Hour))
		if err != nil || n != 2 {
			t.Fatalf("purged %d %v, want 2", n, err)
		}
		turns, err := s.AskTurns(ctx, k, time.Time{}, 10)
		if err != nil || len(turns) != 2 || turns[0].Question != "23h0m0s" || turns[1].Question != "1m0s" {
			t.Errorf("left %+v %v, want the two younger turns", turns, err)
		}
		if n, err := s.PurgeAskTurns(ctx, now.Add(-24*time.Hour)); err != nil || n != 0 {
			t.Errorf("second purge %d %v", n, err)
		}
	})
}

func TestAskMemoryRefusesBadTurns(t *testing.T) {
	eachCourseStore(t, func(t *testing.T, s courseContract) {
		for _, tr := range []store.AskTurn{
			{AskKey: askKey("", "T", "C", "U"), Question: "q"},
			{AskKey: askKey("slack", "T", "C", ""), Question: "q"},
			{AskKey: askKey("slack", "T", "C", "U"), Question: " "},
			{AskKey: askKey("slack", "T", "C", "U"), Question: "q", Answer: strings.Repeat("x", store.MaxAskTurnBytes+1)},
		} {
			if err := s.AddAskTurn(t.Context(), tr); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("%+v: err %v, want ErrInvalid", tr.AskKey, err)
			}
		}
	})
}

package bot_test

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/classbot/classbot/agent"
	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/store"
)

// twoCourses is testCourse's notes in the default course plus a course
// "bio" whose schedule says otherwise, bound to console workspace W2.
func twoCourses(t *testing.T) *store.Memory {
	t.Helper()
	m := testCourse(t)
	bio, err := m.PutCourse(t.Context(), "bio", "")
	if err != nil {
		t.Fatal(err)
	}
	f := store.CourseFile{Path: "schedule.md", Hash: "bio", Sections: store.SplitSections("schedule.md",
		"# Schedule\n## Assignment 2\nBiology assignment 2 is due on 20 April at noon.\n")}
	if _, err := store.IndexCourse(t.Context(), m, bio.ID, []store.CourseFile{f}, false); err != nil {
		t.Fatal(err)
	}
	if err := m.BindCourse(t.Context(), "bio", store.Class{Platform: bot.PlatformConsole, Workspace: "W2"}); err != nil {
		t.Fatal(err)
	}
	return m
}

func offlineRunner(t *testing.T) *agent.Runner {
	return agent.NewRunner(agent.Config{Offline: true, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
}

// Two classes ask the same question; each answer quotes its own course only.
func TestAskSearchesOnlyTheCourseOfItsClass(t *testing.T) {
	d := newCourseBot(t, offlineRunner(t), bot.Options{Notes: twoCourses(t)})
	for _, tc := range []struct {
		workspace, channel string
		want, never        string
	}{
		{"W1", "C1", "6 March", "20 April"},
		{"W2", "C1", "20 April", "6 March"},
		{"W2", "C9", "20 April", "6 March"},
		{"W3", "C1", "6 March", "20 April"}, // no course of its own: the default
	} {
		reply := ask(t, d, askAs("When is assignment 2 due?", tc.workspace, tc.channel, "U1"))
		if !strings.Contains(reply.Text, tc.want) || strings.Contains(reply.Text, tc.never) {
			t.Errorf("%s/%s: %q, want %q and never %q", tc.workspace, tc.channel, reply.Text, tc.want, tc.never)
		}
	}
}

// countingNotes counts how often the bot asks the store for a class's course.
type countingNotes struct {
	*store.Memory
	lookups atomic.Int32
}

func (c *countingNotes) CourseFor(ctx context.Context, cl store.Class) (store.Course, error) {
	c.lookups.Add(1)
	return c.Memory.CourseFor(ctx, cl)
}

func TestAskRemembersTheCourseOfAClassForTheTTL(t *testing.T) {
	notes := &countingNotes{Memory: twoCourses(t)}
	d := newCourseBot(t, offlineRunner(t), bot.Options{Notes: notes})
	for range 3 {
		ask(t, d, askAs("When is assignment 2 due?", "W2", "C1", "U1"))
	}
	if n := notes.lookups.Load(); n != 1 {
		t.Errorf("3 questions in one class looked its course up %d times, want 1", n)
	}
	ask(t, d, askAs("When is assignment 2 due?", "W1", "C1", "U1"))
	if n := notes.lookups.Load(); n != 2 {
		t.Errorf("another class: %d lookups, want 2", n)
	}

	// With a TTL that has always passed, a new binding shows at once.
	notes = &countingNotes{Memory: twoCourses(t)}
	d = newCourseBot(t, offlineRunner(t), bot.Options{Notes: notes, CourseCacheTTL: 1})
	if reply := ask(t, d, askAs("When is assignment 2 due?", "W1", "C1", "U1")); !strings.Contains(reply.Text, "6 March") {
		t.Fatalf("before the bind: %q", reply.Text)
	}
	if err := notes.BindCourse(t.Context(), "bio", store.Class{Platform: bot.PlatformConsole, Workspace: "W1", Channel: "C1"}); err != nil {
		t.Fatal(err)
	}
	if reply := ask(t, d, askAs("When is assignment 2 due?", "W1", "C1", "U1")); !strings.Contains(reply.Text, "20 April") {
		t.Errorf("after the bind: %q, want the bio course's notes", reply.Text)
	}
}

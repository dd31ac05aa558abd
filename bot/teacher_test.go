package bot_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/store"
)

// teacherFixture is a dispatcher whose bot has a roster and courses, with
// teacher U_TEACH on the list.
func teacherFixture(t *testing.T, m *store.Memory) *bot.Dispatcher {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	b := bot.New(m, &fakeAgent{}, bot.Options{Logger: log, Teachers: []string{" UTEACH ", "", "111111111111111111"}, Roster: m, Courses: m})
	d := bot.NewDispatcher(t.Context(), b, bot.Config{Mode: bot.ModeAsync, Logger: log})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 5*time.Second)
		defer cancel()
		_ = d.Shutdown(ctx)
	})
	return d
}

func run(t *testing.T, d *bot.Dispatcher, c bot.Command) bot.Reply {
	t.Helper()
	if c.InteractionID == "" {
		c.InteractionID = fmt.Sprintf("t-%d", nextID.Add(1))
	}
	rec := newRecorder()
	if err := d.Dispatch(t.Context(), c, rec); err != nil {
		t.Fatal(err)
	}
	return rec.answer(t)
}

func seedStudents(t *testing.T, m *store.Memory, platform, ws string, n int, name func(i int) string) {
	t.Helper()
	for i := range n {
		ch := "C1"
		if i%3 == 0 {
			ch = "C2"
		}
		if _, err := m.UpsertRegistration(t.Context(), store.Registration{Platform: platform, Workspace: ws, User: fmt.Sprintf("S%04d", i),
			Channel: ch, Name: name(i), Email: fmt.Sprintf("s%d@uni.example", i)}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTeacherCheck(t *testing.T) {
	b := bot.New(store.NewMemory(), &fakeAgent{}, bot.Options{Teachers: []string{"UTEACH", "111111111111111111"}})
	for _, tc := range []struct {
		name string
		c    bot.Command
		want bool
	}{
		{"slack id on the list", bot.Command{Platform: bot.PlatformSlack, Workspace: "T1", User: "UTEACH"}, true},
		{"slack student", bot.Command{Platform: bot.PlatformSlack, Workspace: "T1", User: "USTUDENT"}, false},
		{"slack admin flag does not count", bot.Command{Platform: bot.PlatformSlack, Workspace: "T1", User: "USTUDENT", Admin: true}, false},
		{"discord id on the list", bot.Command{Platform: bot.PlatformDiscord, Workspace: "9", User: "111111111111111111"}, true},
		{"discord manage server", bot.Command{Platform: bot.PlatformDiscord, Workspace: "9", User: "222222222222222222", Admin: true}, true},
		{"discord member", bot.Command{Platform: bot.PlatformDiscord, Workspace: "9", User: "222222222222222222"}, false},
		{"discord admin in a DM does not count", bot.Command{Platform: bot.PlatformDiscord, Workspace: "dm", User: "222222222222222222", Admin: true}, false},
		{"forged options", bot.Command{Platform: bot.PlatformDiscord, Workspace: "9", User: "222222222222222222",
			Options: map[string]string{"user": "111111111111111111", "teacher": "true", "admin": "true"}}, false},
		{"forged text", bot.Command{Platform: bot.PlatformSlack, Workspace: "T1", User: "USTUDENT", Text: "UTEACH"}, false},
		{"no user", bot.Command{Platform: bot.PlatformSlack, Workspace: "T1"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := b.IsTeacher(tc.c); got != tc.want {
				t.Errorf("IsTeacher = %v, want %v", got, tc.want)
			}
		})
	}
}

// A student typing /roster is refused kindly, and the answer holds nothing
// about anyone, whatever they claim in options.
func TestRosterRefusesStudentsAndRevealsNothing(t *testing.T) {
	m := store.NewMemory()
	seedStudents(t, m, bot.PlatformSlack, "T1", 5, func(i int) string { return fmt.Sprintf("Student%d", i) })
	d := teacherFixture(t, m)
	for _, c := range []bot.Command{
		{Platform: bot.PlatformSlack, Workspace: "T1", Channel: "C1", User: "S0001", Name: "roster"},
		{Platform: bot.PlatformSlack, Workspace: "T1", Channel: "C1", User: "S0001", Name: "roster", Text: "UTEACH", Admin: true},
		{Platform: bot.PlatformDiscord, Workspace: "9", Channel: "C1", User: "333333333333333333", Name: "roster",
			Options: map[string]string{"user": "111111111111111111"}},
	} {
		r := run(t, d, c)
		if r.File != nil || !r.Ephemeral || !strings.Contains(r.Text, "only the class's teachers") {
			t.Fatalf("student got %+v", r)
		}
		for _, leak := range []string{"Student", "@uni.example", "registered", "C2"} {
			if strings.Contains(r.Text, leak) {
				t.Errorf("refusal reveals %q: %q", leak, r.Text)
			}
		}
	}
}

func TestRosterForATeacher(t *testing.T) {
	m := store.NewMemory()
	seedStudents(t, m, bot.PlatformSlack, "T1", 60, func(i int) string {
		switch i {
		case 0:
			return "=HYPERLINK(\"http://evil\",\"x\")"
		case 1:
			return "+1+2"
		case 2:
			return "-3"
		case 3:
			return "@SUM(A1)"
		}
		return fmt.Sprintf("Student%02d", i)
	})
	seedStudents(t, m, bot.PlatformSlack, "T_OTHER", 3, func(i int) string { return fmt.Sprintf("Other%d", i) })
	d := teacherFixture(t, m)
	r := run(t, d, bot.Command{Platform: bot.PlatformSlack, Workspace: "T1", Channel: "C1", User: "UTEACH", Name: "roster"})
	if !r.Ephemeral || r.File == nil {
		t.Fatalf("reply %+v", r)
	}
	for _, want := range []string{"60 students registered", "C1: 40", "C2: 20", "Newest 20:", "Student59 (s59@uni.example)"} {
		if !strings.Contains(r.Text, want) {
			t.Errorf("text lacks %q:\n%s", want, r.Text)
		}
	}
	if strings.Contains(r.Text, "Student39 ") || strings.Contains(r.Text, "Other") {
		t.Errorf("text lists more than the 20 newest, or another workspace:\n%s", r.Text)
	}
	rows, err := csv.NewReader(bytes.NewReader(r.File.Data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 61 || strings.Join(rows[0], ",") != "name,email,channel,registered_at,updated_at" {
		t.Fatalf("%d rows, header %q", len(rows), rows[0])
	}
	for i, want := range []string{"'=HYPERLINK(\"http://evil\",\"x\")", "'+1+2", "'-3", "'@SUM(A1)", "Student04"} {
		if rows[i+1][0] != want {
			t.Errorf("row %d name = %q, want %q", i+1, rows[i+1][0], want)
		}
	}
	if _, err := time.Parse(time.RFC3339, rows[1][3]); err != nil {
		t.Errorf("registered_at %q: %v", rows[1][3], err)
	}
	inline, err := csv.NewReader(strings.NewReader(r.File.Inline[strings.Index(r.File.Inline, "name,"):strings.Index(r.File.Inline, "…")])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(inline) != 1+bot.RosterInlineRows || !strings.Contains(r.File.Inline, "10 more") ||
		!strings.Contains(r.File.Inline, "classbot roster export --platform slack --workspace T1") {
		t.Errorf("inline has %d rows:\n%s", len(inline), r.File.Inline)
	}
}

func TestCSVCell(t *testing.T) {
	for in, want := range map[string]string{
		"=1+1": "'=1+1", "+1": "'+1", "-1": "'-1", "@x": "'@x", "\tx": "'\tx", "\rx": "'\rx",
		"Ada": "Ada", "": "", "a=b": "a=b", "ada@x.org": "ada@x.org",
	} {
		if got := bot.CSVCell(in); got != want {
			t.Errorf("CSVCell(%q) = %q, want %q", in, got, want)
		}
	}
}

func coursesStore(t *testing.T) *store.Memory {
	t.Helper()
	m := store.NewMemory()
	for _, name := range []string{store.DefaultCourse, "go101"} {
		co, err := m.PutCourse(t.Context(), name, "")
		if err != nil {
			t.Fatal(err)
		}
		f := store.CourseFile{Path: "a.md", Hash: name, Sections: store.SplitSections("a.md", "# A\ntext\n## B\nmore\n")}
		if _, err := store.IndexCourse(t.Context(), m, co.ID, []store.CourseFile{f}, false); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func TestCourseShowsTheClassCourse(t *testing.T) {
	m := coursesStore(t)
	d := teacherFixture(t, m)
	student := bot.Command{Platform: bot.PlatformSlack, Workspace: "T1", Channel: "C1", User: "USTUDENT", Name: "course"}
	r := run(t, d, student)
	if !strings.Contains(r.Text, `the course "default": 1 file, 2 sections, indexed `) || strings.Contains(r.Text, "/course use") {
		t.Errorf("student sees %q", r.Text)
	}
	teacher := student
	teacher.User = "UTEACH"
	r = run(t, d, teacher)
	if !strings.Contains(r.Text, "classbot course index default") || !strings.Contains(r.Text, "/course use NAME (courses: default, go101)") {
		t.Errorf("teacher sees %q", r.Text)
	}
}

func TestCourseUse(t *testing.T) {
	m := coursesStore(t)
	d := teacherFixture(t, m)
	cl := store.Class{Platform: bot.PlatformDiscord, Workspace: "9", Channel: "C1"}
	course := func() string {
		co, err := m.CourseFor(t.Context(), cl)
		if err != nil {
			t.Fatal(err)
		}
		return co.Name
	}
	student := bot.Command{Platform: bot.PlatformDiscord, Workspace: "9", Channel: "C1", User: "333333333333333333", Name: "course",
		Options: map[string]string{"use": "go101", "user": "111111111111111111"}}
	if r := run(t, d, student); !strings.Contains(r.Text, "only the class's teachers") {
		t.Errorf("student's /course use answered %q", r.Text)
	}
	if got := course(); got != store.DefaultCourse {
		t.Fatalf("a student's /course use bound %q", got)
	}
	admin := student
	admin.Admin = true
	if r := run(t, d, admin); !strings.Contains(r.Text, `now answers from the course "go101"`) {
		t.Errorf("teacher's /course use answered %q", r.Text)
	}
	if got := course(); got != "go101" {
		t.Fatalf("after /course use the class searches %q", got)
	}
	admin.Options = map[string]string{"use": "nope"}
	if r := run(t, d, admin); !strings.Contains(r.Text, `no course named "nope"`) {
		t.Errorf("unknown course answered %q", r.Text)
	}
	slack := bot.Command{Platform: bot.PlatformSlack, Workspace: "T1", Channel: "C9", User: "UTEACH", Name: "course", Text: "use go101"}
	if r := run(t, d, slack); !strings.Contains(r.Text, `now answers from the course "go101"`) {
		t.Errorf("slack /course use answered %q", r.Text)
	}
}

func TestCourseReindex(t *testing.T) {
	m := store.NewMemory()
	co, err := m.PutCourse(t.Context(), "go101", "/srv/notes/go101")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.BindCourse(t.Context(), "go101", store.Class{Platform: bot.PlatformSlack, Workspace: "T1"}); err != nil {
		t.Fatal(err)
	}
	var calls []store.Course
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	b := bot.New(m, &fakeAgent{}, bot.Options{Logger: log, Teachers: []string{"UTEACH"}, Courses: m,
		ReindexFunc: func(_ context.Context, c store.Course) (store.CourseIndexReport, error) {
			calls = append(calls, c)
			return store.CourseIndexReport{Files: 3, Sections: 9, Indexed: 1, Unchanged: 2}, nil
		}})
	d := bot.NewDispatcher(t.Context(), b, bot.Config{Mode: bot.ModeSync, Logger: log})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 5*time.Second)
		defer cancel()
		_ = d.Shutdown(ctx)
	})
	student := bot.Command{Platform: bot.PlatformSlack, Workspace: "T1", Channel: "C1", User: "USTUDENT", Name: "course", Text: "reindex"}
	if r := run(t, d, student); !strings.Contains(r.Text, "only the class's teachers") || len(calls) != 0 {
		t.Fatalf("student's /course reindex: %q, %d calls", r.Text, len(calls))
	}
	teacher := student
	teacher.User = "UTEACH"
	if r := run(t, d, teacher); !strings.Contains(r.Text, `Re-indexed "go101": 3 files, 9 sections: 1 indexed, 2 unchanged`) {
		t.Fatalf("teacher's /course reindex: %q", r.Text)
	}
	if len(calls) != 1 || calls[0].ID != co.ID || calls[0].Dir != "/srv/notes/go101" {
		t.Fatalf("ReindexFunc got %+v", calls)
	}
	discord := bot.Command{Platform: bot.PlatformDiscord, Workspace: "9", Channel: "C1", User: "222222222222222222", Admin: true,
		Name: "course", Options: map[string]string{"reindex": "no"}}
	if r := run(t, d, discord); strings.Contains(r.Text, "Re-indexed") || len(calls) != 1 {
		t.Fatalf("reindex: no re-indexed: %q", r.Text)
	}
	show := bot.Command{Platform: bot.PlatformSlack, Workspace: "T1", Channel: "C1", User: "UTEACH", Name: "course"}
	if r := run(t, d, show); !strings.Contains(r.Text, "/course reindex re-reads them") {
		t.Fatalf("teacher's /course does not offer reindex: %q", r.Text)
	}
}

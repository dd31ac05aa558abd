package store_test

import (
	"database/sql"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/classbot/classbot/internal/pgtest"
	"github.com/classbot/classbot/store"
)

// emptyCourses leaves pg with the default course only, with no notes and
// never indexed, and no remembered turns; it returns the default course's id.
func emptyCourses(tb testing.TB, pg *store.Postgres) int64 {
	tb.Helper()
	ctx := tb.Context()
	for _, q := range []string{
		"TRUNCATE course_files, course_sections, course_classes, ask_memory",
		"DELETE FROM courses WHERE name <> 'default'",
		"UPDATE courses SET indexed_at = NULL, dir = ''",
	} {
		if _, err := pg.Pool().Exec(ctx, q); err != nil {
			tb.Fatal(err)
		}
	}
	c, err := pg.CourseByName(ctx, store.DefaultCourse)
	if err != nil {
		tb.Fatal(err)
	}
	return c.ID
}

func defaultCourse(t *testing.T, s courseContract) int64 {
	t.Helper()
	c, err := s.CourseByName(t.Context(), store.DefaultCourse)
	if err != nil {
		t.Fatalf("the default course: %v", err)
	}
	return c.ID
}

// putCourse creates the course name and indexes files into it.
func putCourse(t *testing.T, s courseContract, name string, files []store.CourseFile) int64 {
	t.Helper()
	c, err := s.PutCourse(t.Context(), name, "/notes/"+name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.IndexCourse(t.Context(), s, c.ID, files, false); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// otherCourse has the same paths and headings as exampleCourse, with
// other dates and rules: a hit from the wrong course is easy to see.
var otherCourse = []store.CourseFile{
	courseFile("syllabus.md", "# Syllabus\n## Late policy\nBIO-ONLY: late work is not accepted at all.\n"),
	courseFile("schedule.md", "# Schedule\n## Assignment 2\nBIO-ONLY: Assignment 2 is due on 20 April at noon.\n"),
}

func onlyFrom(t *testing.T, hits []store.CourseHit, mustHave bool) {
	t.Helper()
	for _, h := range hits {
		if strings.Contains(h.Text, "BIO-ONLY") != mustHave {
			t.Errorf("a section of the other course: %q", h.Text)
		}
	}
}

func TestCoursesAnswerEachClassFromItsOwnNotes(t *testing.T) {
	eachCourseStore(t, func(t *testing.T, s courseContract) {
		ctx := t.Context()
		goID := putCourse(t, s, "go101", exampleCourse)
		bioID := putCourse(t, s, "bio200", otherCourse)
		goClass := store.Class{Platform: "slack", Workspace: "T1"}
		bioClass := store.Class{Platform: "discord", Workspace: "G9", Channel: "C5"}
		if err := s.BindCourse(ctx, "go101", goClass); err != nil {
			t.Fatal(err)
		}
		if err := s.BindCourse(ctx, "bio200", bioClass); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"When is assignment 2 due?", "what happens if I hand in my work late", "syllabus"} {
			for _, tc := range []struct {
				class  store.Class
				want   int64
				isBio  bool
				inChan string
			}{
				{goClass, goID, false, ""},
				{store.Class{Platform: "slack", Workspace: "T1", Channel: "C1"}, goID, false, "a channel of the workspace"},
				{bioClass, bioID, true, ""},
			} {
				c, err := s.CourseFor(ctx, tc.class)
				if err != nil || c.ID != tc.want {
					t.Fatalf("%s %s: course %+v %v, want %d", tc.class, tc.inChan, c, err, tc.want)
				}
				hits, err := s.SearchCourse(ctx, c.ID, q, 10)
				if err != nil {
					t.Fatal(err)
				}
				if len(hits) == 0 {
					t.Errorf("%s: %q found nothing", tc.class, q)
				}
				onlyFrom(t, hits, tc.isBio)
			}
		}
		// A class of no course, and another server's channel, search the
		// default course, which has no notes here.
		for _, cl := range []store.Class{{Platform: "slack", Workspace: "T2"}, {Platform: "discord", Workspace: "G9", Channel: "C6"}, {Platform: "discord", Workspace: "T1"}} {
			c, err := s.CourseFor(ctx, cl)
			if err != nil || c.Name != store.DefaultCourse {
				t.Errorf("%s: %+v %v, want the default course", cl, c, err)
			}
			if hits, _ := s.SearchCourse(ctx, c.ID, "assignment 2", 10); len(hits) != 0 {
				t.Errorf("%s: the default course found %v", cl, citations(hits))
			}
		}
	})
}

func TestCourseBindUnbindRebindAreIdempotent(t *testing.T) {
	eachCourseStore(t, func(t *testing.T, s courseContract) {
		ctx := t.Context()
		a := putCourse(t, s, "a", nil)
		b := putCourse(t, s, "b", nil)
		ws := store.Class{Platform: "slack", Workspace: "T1"}
		ch := store.Class{Platform: "slack", Workspace: "T1", Channel: "C1"}
		courseOf := func(c store.Class) int64 {
			t.Helper()
			co, err := s.CourseFor(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			return co.ID
		}
		for range 2 {
			if err := s.BindCourse(ctx, "a", ws); err != nil {
				t.Fatal(err)
			}
		}
		if courseOf(ws) != a || courseOf(ch) != a {
			t.Errorf("workspace bound to a: %d %d", courseOf(ws), courseOf(ch))
		}
		// The channel's own binding wins over the workspace's.
		if err := s.BindCourse(ctx, "b", ch); err != nil {
			t.Fatal(err)
		}
		if courseOf(ws) != a || courseOf(ch) != b {
			t.Errorf("channel bound to b: %d %d", courseOf(ws), courseOf(ch))
		}
		// A later bind moves the class.
		if err := s.BindCourse(ctx, "b", ws); err != nil {
			t.Fatal(err)
		}
		if courseOf(ws) != b {
			t.Errorf("rebound workspace: %d, want b", courseOf(ws))
		}
		list, err := s.Courses(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, c := range list {
			names = append(names, c.Name)
			if c.Name == "b" && len(c.Classes) != 2 || c.Name == "a" && len(c.Classes) != 0 {
				t.Errorf("course %s serves %v", c.Name, c.Classes)
			}
		}
		if strings.Join(names, ",") != "a,b,default" {
			t.Errorf("courses %v", names)
		}
		if ok, err := s.UnbindCourse(ctx, ch); !ok || err != nil {
			t.Errorf("unbind: %v %v", ok, err)
		}
		if ok, err := s.UnbindCourse(ctx, ch); ok || err != nil {
			t.Errorf("second unbind: %v %v, want nothing to do", ok, err)
		}
		if courseOf(ch) != b {
			t.Errorf("unbound channel: %d, want its workspace's course", courseOf(ch))
		}
		if _, err := s.UnbindCourse(ctx, ws); err != nil {
			t.Fatal(err)
		}
		if id := courseOf(ch); id != defaultCourse(t, s) {
			t.Errorf("nothing bound: %d, want the default course", id)
		}
		if err := s.BindCourse(ctx, "nope", ws); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("bind to an unknown course: %v", err)
		}
		if err := s.BindCourse(ctx, "a", store.Class{Platform: "slack"}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("bind with no workspace: %v", err)
		}
		// PutCourse again keeps the id, and the dir unless given.
		c, err := s.PutCourse(ctx, "a", "")
		if err != nil || c.ID != a || c.Dir != "/notes/a" {
			t.Errorf("put again: %+v %v", c, err)
		}
		if _, err := s.PutCourse(ctx, "bad name", ""); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("a name with a space: %v", err)
		}
	})
}

func TestReindexingOneCourseLeavesAnotherUntouched(t *testing.T) {
	eachCourseStore(t, func(t *testing.T, s courseContract) {
		ctx := t.Context()
		a := putCourse(t, s, "a", exampleCourse)
		b := putCourse(t, s, "b", otherCourse)
		before, err := s.Courses(ctx)
		if err != nil {
			t.Fatal(err)
		}
		bHits, _ := s.SearchCourse(ctx, b, "assignment 2 late", 10)
		// Course a loses every file but one, then is re-indexed by force.
		if _, err := store.IndexCourse(ctx, s, a, exampleCourse[:1], false); err != nil {
			t.Fatal(err)
		}
		if _, err := store.IndexCourse(ctx, s, a, exampleCourse[:1], true); err != nil {
			t.Fatal(err)
		}
		after, err := s.Courses(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range after {
			switch c.Name {
			case "b":
				if !c.IndexedAt.Equal(before[i].IndexedAt) || c.Files != 2 || c.Sections != before[i].Sections {
					t.Errorf("b changed: %+v, was %+v", c, before[i])
				}
			case "a":
				if c.Files != 1 || !c.IndexedAt.After(before[i].IndexedAt) && !c.IndexedAt.Equal(before[i].IndexedAt) || c.IndexedAt.IsZero() {
					t.Errorf("a: %+v", c)
				}
			}
		}
		if got, _ := s.SearchCourse(ctx, b, "assignment 2 late", 10); len(got) != len(bHits) || len(got) != 2 {
			t.Errorf("b's search: %v, was %v", citations(got), citations(bHits))
		}
		if hashes, _ := s.CourseHashes(ctx, b); len(hashes) != 2 {
			t.Errorf("b's files: %v", hashes)
		}
	})
}

func TestRemoveCourseDropsItsNotesAndBindings(t *testing.T) {
	eachCourseStore(t, func(t *testing.T, s courseContract) {
		ctx := t.Context()
		a := putCourse(t, s, "a", exampleCourse)
		def := defaultCourse(t, s)
		if _, err := store.IndexCourse(ctx, s, def, otherCourse, false); err != nil {
			t.Fatal(err)
		}
		cl := store.Class{Platform: "discord", Workspace: "G1"}
		if err := s.BindCourse(ctx, "a", cl); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveCourse(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveCourse(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("remove again: %v", err)
		}
		if err := s.RemoveCourse(ctx, store.DefaultCourse); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("remove the default course: %v", err)
		}
		if c, err := s.CourseFor(ctx, cl); err != nil || c.ID != def {
			t.Errorf("a class of a removed course: %+v %v, want the default course", c, err)
		}
		if hits, _ := s.SearchCourse(ctx, a, "assignment", 10); len(hits) != 0 {
			t.Errorf("a removed course's notes: %v", citations(hits))
		}
		if hits, _ := s.SearchCourse(ctx, def, "assignment", 10); len(hits) == 0 {
			t.Error("the default course lost its notes")
		}
		if err := s.ReplaceCourseFile(ctx, a, exampleCourse[0]); err == nil {
			t.Error("indexed a file into a removed course")
		}
	})
}

func TestCourseBindingSurvivesARestart(t *testing.T) {
	pg := openPostgres(t)
	emptyCourses(t, pg)
	ctx := t.Context()
	c := putCourse(t, pg, "go101", exampleCourse)
	cl := store.Class{Platform: "slack", Workspace: "T1", Channel: "C1"}
	if err := pg.BindCourse(ctx, "go101", cl); err != nil {
		t.Fatal(err)
	}
	pg.Close()
	again, err := store.Open(ctx, testDatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	got, err := again.CourseFor(ctx, cl)
	if err != nil || got.ID != c || got.Name != "go101" || got.Dir != "/notes/go101" || got.IndexedAt.IsZero() {
		t.Errorf("after a restart: %+v %v", got, err)
	}
}

// Notes indexed before courses existed become the default course's.
func TestMigrationPutsExistingNotesInTheDefaultCourse(t *testing.T) {
	ctx := t.Context()
	dbURL, drop, err := pgtest.Create(ctx, pgtest.Server(), "classbot_courses_migrate_test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Log(err)
		}
	})
	pg, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	db := stdlib.OpenDBFromPool(pg.Pool())
	defer db.Close()
	migrateTo(t, db, 3)
	for _, q := range []string{
		`INSERT INTO course_files (path, hash) VALUES ('syllabus.md', 'h1')`,
		`INSERT INTO course_sections (path, seq, heading, title, file, body) VALUES ('syllabus.md', 0, 'Syllabus › Grading', 'syllabus grading', 'syllabus', 'The exam counts for 40%.')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Migrate(ctx, pg.Pool()); err != nil {
		t.Fatal(err)
	}
	def, err := pg.CourseFor(ctx, store.Class{Platform: "slack", Workspace: "T1"})
	if err != nil || def.Name != store.DefaultCourse || def.IndexedAt.IsZero() {
		t.Fatalf("default course %+v %v", def, err)
	}
	hits, err := pg.SearchCourse(ctx, def.ID, "exam", 3)
	if err != nil || len(hits) != 1 || hits[0].Citation() != "syllabus.md › Syllabus › Grading" {
		t.Errorf("the old notes in the default course: %v %v", citations(hits), err)
	}
}

// migrateTo applies the schema migrations up to version (the ones before courses).
func migrateTo(t *testing.T, db *sql.DB, version int64) {
	t.Helper()
	p, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS("migrations"), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(t.Context(), version); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkPostgresCourseFor is one class's course lookup among 40
// courses, each bound to a workspace and a channel: what /ask pays once
// per class and cache period.
func BenchmarkPostgresCourseFor(b *testing.B) {
	pg, err := store.Open(b.Context(), testDatabaseURL)
	if err != nil {
		b.Fatal(err)
	}
	defer pg.Close()
	if err := store.Migrate(b.Context(), pg.Pool()); err != nil {
		b.Fatal(err)
	}
	emptyCourses(b, pg)
	ctx := b.Context()
	var classes []store.Class
	for i := range 40 {
		name := "course" + strconv.Itoa(i)
		if _, err := pg.PutCourse(ctx, name, ""); err != nil {
			b.Fatal(err)
		}
		ws := store.Class{Platform: "slack", Workspace: "T" + strconv.Itoa(i)}
		ch := store.Class{Platform: "slack", Workspace: ws.Workspace, Channel: "C1"}
		for _, c := range []store.Class{ws, ch} {
			if err := pg.BindCourse(ctx, name, c); err != nil {
				b.Fatal(err)
			}
		}
		classes = append(classes, ch, store.Class{Platform: "slack", Workspace: ws.Workspace, Channel: "C2"})
	}
	for i := 0; b.Loop(); i++ {
		if _, err := pg.CourseFor(ctx, classes[i%len(classes)]); err != nil {
			b.Fatal(err)
		}
	}
}

package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	examplecourse "github.com/classbot/classbot/examples/course"
	"github.com/classbot/classbot/store"
)

// course500 indexes the example course plus generated files into pg's
// default course, 500 sections in all, refreshes the planner's statistics
// and returns the course's id.
func course500(tb testing.TB, pg *store.Postgres) int64 {
	return courseN(tb, pg, 500, 10)
}

// courseN indexes the example course plus generated files of perFile
// sections each into pg's default course, total sections in all, and
// returns the course's id.
func courseN(tb testing.TB, pg *store.Postgres, total, perFile int) int64 {
	tb.Helper()
	ctx := context.Background()
	course := emptyCourses(tb, pg)
	files, _, err := store.ReadCourse(examplecourse.Notes)
	if err != nil {
		tb.Fatal(err)
	}
	n := 0
	for _, f := range files {
		n += len(f.Sections)
	}
	// Generated notes: words drawn from a vocabulary of course words and
	// made-up ones, as varied as a term's worth of lecture notes.
	r := rand.New(rand.NewPCG(1, 2))
	vocab := strings.Fields(`lecture lab assignment exam quiz deadline grade week topic slice map struct
		interface goroutine channel error test package module function method pointer string loop
		compiler runtime memory profile benchmark http json file reader writer buffer closure defer`)
	for i := range 2000 {
		vocab = append(vocab, fmt.Sprintf("term%04d", i))
	}
	for fi := 0; n < total; fi++ {
		var b strings.Builder
		fmt.Fprintf(&b, "# Lecture %d\n", fi)
		for si := 0; si < perFile && n < total; si++ {
			fmt.Fprintf(&b, "## Part %d: %s and %s\n", si, vocab[r.IntN(len(vocab))], vocab[r.IntN(len(vocab))])
			for range 60 + r.IntN(60) { // under MaxSectionChars: one section each
				b.WriteString(vocab[r.IntN(len(vocab))] + " ")
			}
			b.WriteString("\n")
			n++
		}
		path := fmt.Sprintf("lectures/lecture-%04d.md", fi)
		files = append(files, store.CourseFile{Path: path, Hash: path, Sections: store.SplitSections(path, b.String())})
	}
	rep, err := store.IndexCourse(ctx, pg, course, files, false)
	if err != nil {
		tb.Fatal(err)
	}
	if rep.Sections != total {
		tb.Fatalf("indexed %d sections, want %d", rep.Sections, total)
	}
	if _, err := pg.Pool().Exec(ctx, "ANALYZE course_sections, course_terms"); err != nil {
		tb.Fatal(err)
	}
	return course
}

var benchQuestions = []string{
	"When is assignment 2 due?",
	"Can I use a calculator in the exam?",
	"What happens if I hand in my work late?",
	"How is my final grade calculated?",
	"Which Go version do we use?",
	"When are the TA office hours?",
	"What do we learn about goroutines and channels?",
	"Is there parking on campus?",
}

// BenchmarkPostgresAskDBTime is the database work of one /ask over a
// course of 500 sections: read the student's memory, one search_course
// call, remember the answer. It reports the p50 and p99 of that sum.
func BenchmarkPostgresAskDBTime(b *testing.B) {
	pg := openPostgresTB(b)
	course := course500(b, pg)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		key := store.AskKey{Platform: "slack", Workspace: "T1", Channel: "C1", User: fmt.Sprintf("U%d", i%200)}
		q := benchQuestions[i%len(benchQuestions)]
		start := time.Now()
		if _, err := pg.AskTurns(ctx, key, start.Add(-24*time.Hour), 6); err != nil {
			b.Fatal(err)
		}
		if _, err := pg.SearchCourse(ctx, course, q, 3); err != nil {
			b.Fatal(err)
		}
		if err := pg.AddAskTurn(ctx, store.AskTurn{AskKey: key, Question: q, Answer: "An answer of a few sentences (schedule.md › Assignment 2)."}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	reportPercentiles(b, lat)
}

// BenchmarkPostgresSearchCourse500 is one search_course call over 500 sections.
func BenchmarkPostgresSearchCourse500(b *testing.B) {
	pg := openPostgresTB(b)
	course := course500(b, pg)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if _, err := pg.SearchCourse(ctx, course, benchQuestions[i%len(benchQuestions)], 3); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	reportPercentiles(b, lat)
}

// BenchmarkPostgresSearchCourse60k is one search_course call over a course
// of 60,000 sections (a large school's worth of notes in one course).
func BenchmarkPostgresSearchCourse60k(b *testing.B) {
	pg := openPostgresTB(b)
	course := courseN(b, pg, 60000, 100)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if _, err := pg.SearchCourse(ctx, course, benchQuestions[i%len(benchQuestions)], 3); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	reportPercentiles(b, lat)
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// The search's match is served by the GIN index on course_sections.tsv in
// a course large enough for it to matter (at a few hundred sections the
// planner rightly reads the table instead; the plans are in docs/course.md).
func TestSearchCourseUsesTheGINIndex(t *testing.T) {
	pg := openPostgres(t)
	course := courseN(t, pg, 5000, 100)
	plan, err := pg.ExplainSearchCourse(t.Context(), course, "Can I use a calculator in the exam?", 3)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "Bitmap Index Scan on course_sections_tsv") {
		t.Errorf("the plan does not use the GIN index:\n%s", plan)
	}
	t.Logf("plan:\n%s", plan)
}

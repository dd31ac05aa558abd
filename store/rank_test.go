package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/classbot/classbot/store"
)

// indexNotes indexes files (path, content pairs) into s.
func indexNotes(t *testing.T, s courseContract, files ...string) {
	t.Helper()
	var cf []store.CourseFile
	for i := 0; i+1 < len(files); i += 2 {
		cf = append(cf, courseFile(files[i], files[i+1]))
	}
	if _, err := store.IndexCourse(t.Context(), s, defaultCourse(t, s), cf, false); err != nil {
		t.Fatal(err)
	}
}

// filler is course text that mentions none of the tests' words.
func filler(i int) string {
	return fmt.Sprintf("## Week %d\nWe read chapter %d and discuss the reading in small groups. Slides are posted after class.\n", i, i)
}

func wantFirst(t *testing.T, s courseContract, q, want string) []store.CourseHit {
	t.Helper()
	hits, err := s.SearchCourse(t.Context(), defaultCourse(t, s), q, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) == 0 || hits[0].Citation() != want {
		t.Errorf("%q: got %v, want %q first", q, citations(hits), want)
	}
	return hits
}

// A rare word of the question decides over a word every section uses,
// however often that common word occurs.
func TestSearchRareWordOutweighsCommonOne(t *testing.T) {
	eachCourseStore(t, func(t *testing.T, s courseContract) {
		var b strings.Builder
		b.WriteString("# Tools\n")
		for i := range 8 {
			fmt.Fprintf(&b, "## Use of tool %d\nUse it as shown; use the flags we use in class and use it often.\n", i)
		}
		b.WriteString("## Setup\nInstall the VSCode editor before the first lab.\n")
		indexNotes(t, s, "tools.md", b.String())
		wantFirst(t, s, "which editor should we use", "tools.md › Setup")
	})
}

// The same word weighs more in a section's heading than in its text.
func TestSearchHeadingAboveBody(t *testing.T) {
	eachCourseStore(t, func(t *testing.T, s courseContract) {
		indexNotes(t, s,
			"a.md", "# Notes\n## Recursion\nA function that calls itself until a base case stops it.\n",
			"b.md", "# More notes\n## Functions\nA function may call another; recursion comes next week.\n",
			"c.md", "# Weeks\n"+filler(1)+filler(2)+filler(3))
		wantFirst(t, s, "recursion", "a.md › Recursion")
	})
}

// A misspelt word is corrected to the course's own vocabulary, and two
// words typed as one are found apart.
func TestSearchCorrectsTyposAndJoinedWords(t *testing.T) {
	eachCourseStore(t, func(t *testing.T, s courseContract) {
		indexNotes(t, s,
			"policies.md", "# Policies\n## Assignments\nAssignments are submitted on Gradescope by Friday.\n"+
				"## Office hours\nOffice hours are on Tuesdays in room 204.\n"+filler(1)+filler(2)+filler(3))
		wantFirst(t, s, "where do i submit assigments", "policies.md › Assignments")
		wantFirst(t, s, "when are officehours", "policies.md › Office hours")
	})
}

// Classroom synonyms and short forms are built in, and the forms the
// english stemmer doesn't join ("taught" and "teaches").
func TestSearchBuiltinSynonyms(t *testing.T) {
	eachCourseStore(t, func(t *testing.T, s courseContract) {
		indexNotes(t, s,
			"course.md", "# Course\n## Exam\nThe exam is on 12 December in the main hall.\n"+
				"## Homework\nHomework is due every Monday at noon.\n"+
				"## Staff\nDr. Lee teaches the course.\n"+
				"## Repositories\nYour project repository must stay private.\n"+
				filler(1)+filler(2)+filler(3)+filler(4))
		for _, tc := range []struct{ q, want string }{
			{"when is the midterm", "course.md › Exam"},
			{"when is hw due", "course.md › Homework"},
			{"who taught this", "course.md › Staff"},
			{"privacy of the repo", "course.md › Repositories"},
		} {
			hits := wantFirst(t, s, tc.q, tc.want)
			if len(hits) > 0 && hits[0].Confidence >= 1 {
				t.Errorf("%q: confidence %v, want less than a match of the word itself", tc.q, hits[0].Confidence)
			}
		}
	})
}

// A teacher's synonyms.txt adds groups of its own; the file itself is
// never a hit.
func TestSearchSynonymsFile(t *testing.T) {
	eachCourseStore(t, func(t *testing.T, s courseContract) {
		notes := []string{
			"labs.md", "# Labs\n## Practicals\nPracticals take place in the basement lab on Thursdays.\n" + filler(1) + filler(2) + filler(3),
		}
		indexNotes(t, s, notes...)
		if hits, err := s.SearchCourse(t.Context(), defaultCourse(t, s), "when is the workshop", 3); err != nil || len(hits) != 0 {
			t.Fatalf("before the synonyms file: %v %v, want nothing", citations(hits), err)
		}
		indexNotes(t, s, append(notes, store.SynonymsFile, "# our words\npracticals, workshop, hands-on session\n")...)
		hits := wantFirst(t, s, "when is the workshop", "labs.md › Practicals")
		for _, h := range hits {
			if h.File == store.SynonymsFile {
				t.Errorf("the synonyms file is a hit: %v", citations(hits))
			}
		}
		if hits, _ := s.SearchCourse(t.Context(), defaultCourse(t, s), "hands-on session", 3); slices.ContainsFunc(hits, func(h store.CourseHit) bool { return h.File == store.SynonymsFile }) {
			t.Errorf("the synonyms file is a hit: %v", citations(hits))
		}
	})
}

// A question the notes don't answer finds nothing, even when it shares
// common words with them; a hit carries its confidence.
func TestSearchConfidenceThreshold(t *testing.T) {
	eachCourseStore(t, func(t *testing.T, s courseContract) {
		indexNotes(t, s,
			"syllabus.md", "# Syllabus\n## Late work\nLate work loses 10% per day in this class.\n"+
				"## Exam\nThe exam is in the main hall of the campus.\n"+filler(1)+filler(2)+filler(3))
		for _, q := range []string{
			"is there parking on campus for the class",
			"what is the wifi password",
			"photosynthesis chlorophyll",
		} {
			if hits, err := s.SearchCourse(t.Context(), defaultCourse(t, s), q, 3); err != nil || len(hits) != 0 {
				t.Errorf("%q: got %v %v, want nothing", q, citations(hits), err)
			}
		}
		hits := wantFirst(t, s, "how much do i lose for late work", "syllabus.md › Late work")
		for i, h := range hits {
			if low := store.MinConfidence / (1 + float64(min(i, 1))); h.Confidence < low || h.Confidence > 1 {
				t.Errorf("%s: confidence %v out of [%v, 1]", h.Citation(), h.Confidence, low)
			}
		}
	})
}

// The statistics the ranking reads stay equal to the sections' own as
// files are indexed, changed, removed and the table truncated.
func TestCourseTermStatisticsFollowTheSections(t *testing.T) {
	pg := openPostgres(t)
	ctx := t.Context()
	course := emptyCourses(t, pg)
	other, err := pg.PutCourse(ctx, "other", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.IndexCourse(ctx, pg, other.ID, exampleCourse[1:], false); err != nil {
		t.Fatal(err)
	}
	check := func(step string) {
		t.Helper()
		var diff int
		err := pg.Pool().QueryRow(ctx, `
SELECT count(*) FROM (
    (SELECT course_id, lexeme, df FROM course_terms
     EXCEPT SELECT s.course_id, u.lexeme, count(*)::int FROM course_sections s, unnest(s.tsv) u GROUP BY s.course_id, u.lexeme)
    UNION ALL
    (SELECT s.course_id, u.lexeme, count(*)::int FROM course_sections s, unnest(s.tsv) u GROUP BY s.course_id, u.lexeme
     EXCEPT SELECT course_id, lexeme, df FROM course_terms)) d`).Scan(&diff)
		if err != nil {
			t.Fatal(err)
		}
		var ok bool
		err = pg.Pool().QueryRow(ctx, `
SELECT NOT EXISTS (
    (SELECT course_id, sections, title_len, body_len FROM course_stats WHERE sections > 0
     EXCEPT SELECT course_id, count(*), sum(title_len), sum(body_len) FROM course_sections GROUP BY course_id)
    UNION ALL
    (SELECT course_id, count(*), sum(title_len), sum(body_len) FROM course_sections GROUP BY course_id
     EXCEPT SELECT course_id, sections, title_len, body_len FROM course_stats))`).Scan(&ok)
		if err != nil {
			t.Fatal(err)
		}
		if diff != 0 || !ok {
			t.Errorf("%s: %d lexemes differ, section counts equal: %v", step, diff, ok)
		}
	}
	check("another course only")
	if _, err := store.IndexCourse(ctx, pg, course, exampleCourse, false); err != nil {
		t.Fatal(err)
	}
	check("indexed")
	changed := []store.CourseFile{exampleCourse[0], courseFile("schedule.md", "# Schedule\n## Assignment 2\nAssignment 2 moved to 13 March.\n")}
	if _, err := store.IndexCourse(ctx, pg, course, changed, false); err != nil {
		t.Fatal(err)
	}
	check("changed and removed")
	if err := pg.RemoveCourse(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	check("another course removed")
	if _, err := pg.Pool().Exec(ctx, "TRUNCATE course_files, course_sections"); err != nil {
		t.Fatal(err)
	}
	check("truncated")
}

// The stemmer the questions go through is PostgreSQL's english one, and
// the typo measure is pg_trgm's similarity.
func TestRankingAgreesWithPostgres(t *testing.T) {
	pg := openPostgres(t)
	ctx := context.Background()
	for _, w := range []string{"assignments", "privacy", "private", "taught", "running", "generously", "quizzes", "office", "hours", "homework", "dying", "lecturer", "memory", "2", "hw1"} {
		var want string
		if err := pg.Pool().QueryRow(ctx, `SELECT coalesce((ts_lexize('english_stem', $1))[1], '')`, w).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if got := store.Stem(w); got != want {
			t.Errorf("stem %q = %q, PostgreSQL %q", w, got, want)
		}
	}
	for _, p := range [][2]string{{"assig", "assign"}, {"privaci", "privat"}, {"offic", "officehour"}, {"late", "later"}, {"ab", "xy"}} {
		var want float64
		if err := pg.Pool().QueryRow(ctx, `SELECT similarity($1, $2)`, p[0], p[1]).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if got := store.TrigramSimilarity(p[0], p[1]); fmt.Sprintf("%.4f", got) != fmt.Sprintf("%.4f", want) {
			t.Errorf("similarity(%q, %q) = %v, pg_trgm %v", p[0], p[1], got, want)
		}
	}
}

// A function word the notes never use ("another") does not make the
// search decline a question whose other words the notes all use.
func TestSearchFunctionWordsDoNotLowerConfidence(t *testing.T) {
	eachCourseStore(t, func(t *testing.T, s courseContract) {
		files := []string{"teams.md", "## Teams\nA project team may mix students of any lab section: team members of different sections work as one team.\n"}
		for i := range 12 {
			files = append(files, fmt.Sprintf("w%d.md", i), fmt.Sprintf("## Week %d\nThe project team meets in section.\n", i))
		}
		indexNotes(t, s, files...)
		wantFirst(t, s, "can my project team have someone from another section", "teams.md › Teams")
	})
}

// A number the notes never use (a course number written "CS4530" in the
// notes, "4530" in the question) does not make the search decline.
func TestSearchUnknownNumberDoesNotLowerConfidence(t *testing.T) {
	eachCourseStore(t, func(t *testing.T, s courseContract) {
		files := []string{"exam.md", "## Final\nThe CS4530 final is on May 2.\n"}
		for i := range 12 {
			files = append(files, fmt.Sprintf("w%d.md", i), fmt.Sprintf("## Week %d\nRead the final chapter.\n", i))
		}
		indexNotes(t, s, files...)
		wantFirst(t, s, "when is the 4530 final", "exam.md › Final")
	})
}

// A synonym of two words ("final exam" for "midterm") never outweighs the
// question's own word in the notes.
func TestSearchSynonymPhraseNotAboveTheWord(t *testing.T) {
	eachCourseStore(t, func(t *testing.T, s courseContract) {
		files := []string{"exams.md", "## Final exam\nThe final exam is in the gym, the final exam lasts three hours.\n" +
			"## Midterm\nIn class, week 7. The midterm covers weeks 1 to 6, and the midterm review is the Friday before.\n" +
			"## Quiz\nA short midterm practice quiz is posted.\n"}
		for i := range 12 {
			files = append(files, fmt.Sprintf("w%d.md", i), filler(i))
		}
		indexNotes(t, s, files...)
		wantFirst(t, s, "when is the midterm", "exams.md › Midterm")
	})
}

// The built-in list joins the words students use for registering,
// penalties, regrades and the like with the notes' words.
func TestSearchClassroomSynonyms(t *testing.T) {
	eachCourseStore(t, func(t *testing.T, s courseContract) {
		files := []string{"admin.md", "## Registration\nSign up for the waiting list on the first day.\n" +
			"## Late work\nEach day late brings a deduction of 10 points.\n" +
			"## Grading concerns\nOpen a request on Gradescope within a week.\n" +
			"## Communication\nAsk questions on our Zulip.\n"}
		for i := range 12 {
			files = append(files, fmt.Sprintf("w%d.md", i), filler(i))
		}
		indexNotes(t, s, files...)
		wantFirst(t, s, "how do i enroll", "admin.md › Registration")
		wantFirst(t, s, "is there a penalty", "admin.md › Late work")
		wantFirst(t, s, "how do i dispute my grade", "admin.md › Grading concerns")
		wantFirst(t, s, "is there a piazza", "admin.md › Communication")
	})
}

// The parts of a cut section found together come back as one hit, its
// parts in the notes' order: the part with the question's words and the
// part next to it that answers.
func TestSearchJoinsPartsOfOneSection(t *testing.T) {
	eachCourseStore(t, func(t *testing.T, s courseContract) {
		var b strings.Builder
		b.WriteString("## Registration\n")
		for i := range 20 {
			fmt.Fprintf(&b, "Waiting list rule %d: sign up for the waiting list even when it is long.\n", i)
		}
		for i := range 20 {
			fmt.Fprintf(&b, "Auditing rule %d: when the course is full, auditors are not accommodated.\n", i)
		}
		files := []string{"info.md", b.String()}
		for i := range 12 {
			files = append(files, fmt.Sprintf("w%d.md", i), filler(i))
		}
		indexNotes(t, s, files...)
		hits := wantFirst(t, s, "the course is full, waiting list?", "info.md › Registration")
		if len(hits) == 0 {
			return
		}
		for _, h := range hits[1:] {
			if h.Citation() == hits[0].Citation() {
				t.Errorf("%q returned twice", h.Citation())
			}
		}
		text := hits[0].Text
		first, last := strings.Index(text, "Waiting list rule 0:"), strings.Index(text, "Auditing rule 19:")
		if first < 0 || last < first || strings.Count(text, "Waiting list rule 19:") != 1 {
			t.Errorf("text does not hold the whole section once, in order:\n%s", text)
		}
	})
}

// The words of a phrase ("final exam", "office hours") find it only side
// by side: a section that names the final project and an exam elsewhere
// is not about the final exam.
func TestSearchPhraseWordsSideBySide(t *testing.T) {
	eachCourseStore(t, func(t *testing.T, s courseContract) {
		files := []string{"syllabus.md", "## Grading\nFinal project 30%, exam 20%: the final report and the exam count twice.\n" +
			"## Important dates\nClasses end on 16 November. Final exam period: 24 November, 7pm to 10pm. " +
			"Drop/add ends on 28 August and the last day to withdraw is 30 October.\n"}
		for i := range 12 {
			files = append(files, fmt.Sprintf("w%d.md", i), filler(i))
		}
		indexNotes(t, s, files...)
		wantFirst(t, s, "when is the final exam", "syllabus.md › Important dates")
	})
}

// "final" alone is not a synonym of the final exam: notes that have a
// final project and no exam don't answer when the final exam is.
func TestSearchFinalAloneIsNotAnExam(t *testing.T) {
	eachCourseStore(t, func(t *testing.T, s courseContract) {
		files := []string{"project.md", "## Final project\nThe final project is due at the end of term; the final report is graded by the staff.\n"}
		for i := range 12 {
			files = append(files, fmt.Sprintf("w%d.md", i), filler(i))
		}
		indexNotes(t, s, files...)
		if hits, err := s.SearchCourse(t.Context(), defaultCourse(t, s), "when is the final exam", 3); err != nil || len(hits) != 0 {
			t.Errorf("got %v %v, want nothing", citations(hits), err)
		}
		wantFirst(t, s, "when is the final project due", "project.md › Final project")
	})
}

// "how long" asks for a duration: "long" is not the question's topic, so
// a section that says "long" and names the exam in passing doesn't beat
// the exam's own.
func TestSearchHowLongAsksForAnAmount(t *testing.T) {
	eachCourseStore(t, func(t *testing.T, s courseContract) {
		files := []string{"course.md", "## Exam\nThe exam lasts 2 hours in the gym.\n" +
			"## Reading\nA long list of optional papers, some long ones, on the exam topics.\n"}
		for i := range 12 {
			files = append(files, fmt.Sprintf("w%d.md", i), filler(i))
		}
		indexNotes(t, s, files...)
		hits := wantFirst(t, s, "how long is the exam", "course.md › Exam")
		if len(hits) > 0 && hits[0].Confidence < 1 {
			t.Errorf("confidence %v, want 1: the exam is all the question asks about", hits[0].Confidence)
		}
	})
}

// The search answers only with what it returns: a confident section ranked
// below the limit doesn't make the weaker ones above it an answer.
func TestSearchConfidentHitMustBeReturned(t *testing.T) {
	eachCourseStore(t, func(t *testing.T, s courseContract) {
		long := strings.Repeat("Lectures follow the weekly plan and the slides are posted after class. ", 20)
		files := []string{"course.md", "## Exam\nThe exam is written; the exam is long; each exam is graded twice.\n" +
			"## Exam review\nWe review the exam in week 12.\n" +
			"## Exam practice\nPractice exam questions are posted.\n" +
			"## Weekly plan\n" + long + "Bring a calculator.\n"}
		for i := range 12 {
			files = append(files, fmt.Sprintf("w%d.md", i), filler(i))
		}
		indexNotes(t, s, files...)
		all, err := s.SearchCourse(t.Context(), defaultCourse(t, s), "exam calculator", 4)
		if err != nil || len(all) < 2 {
			t.Fatalf("got %v %v, want the exam sections and the weekly plan", citations(all), err)
		}
		if all[0].Citation() != "course.md › Exam" || all[0].Confidence >= store.MinConfidence {
			t.Fatalf("got %v first (confidence %v), want the exam section, not confident", all[0].Citation(), all[0].Confidence)
		}
		if hits, err := s.SearchCourse(t.Context(), defaultCourse(t, s), "exam calculator", 1); err != nil || len(hits) != 0 {
			t.Errorf("limit 1: got %v %v, want nothing: the one section returned doesn't answer", citations(hits), err)
		}
	})
}

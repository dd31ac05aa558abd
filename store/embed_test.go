package store_test

import (
	"context"
	"hash/fnv"
	"strings"
	"sync"
	"testing"
	"unicode"

	"github.com/classbot/classbot/store"
)

// conceptEmbedder is a deterministic stand-in for an embedding model: a
// text's vector counts its words' concepts (words of the same meaning
// share one), hashed into 64 dimensions. It records what it embedded.
type conceptEmbedder struct {
	concepts map[string]string
	mu       sync.Mutex
	texts    []string
	calls    int
}

func (e *conceptEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	e.mu.Lock()
	e.calls++
	e.texts = append(e.texts, texts...)
	e.mu.Unlock()
	out := make([][]float32, len(texts))
	for i, t := range texts {
		v := make([]float32, 64)
		for _, w := range strings.FieldsFunc(strings.ToLower(t), func(r rune) bool { return !unicode.IsLetter(r) }) {
			c, ok := e.concepts[w]
			if !ok {
				continue // words without a concept carry no meaning here
			}
			h := fnv.New32a()
			h.Write([]byte(c))
			v[h.Sum32()%64]++
		}
		out[i] = v
	}
	return out, nil
}

func (e *conceptEmbedder) embedded() (calls int, texts []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls, append([]string(nil), e.texts...)
}

var carNotes = []store.CourseFile{
	courseFile("campus.md", "# Campus\n## Parking\nCars may stand behind building B after 5 pm.\n## Library\nThe library opens at 8 and closes at midnight.\n"),
	courseFile("syllabus.md", "# Syllabus\n## Grading\nThe exam counts for half of the grade.\n"),
}

func newConceptEmbedder() *conceptEmbedder {
	return &conceptEmbedder{concepts: map[string]string{
		"cars": "car", "car": "car", "automobile": "car", "vehicle": "car", "stand": "park", "leave": "park", "parking": "park",
		"library": "book", "books": "book", "exam": "test", "test": "test", "grade": "grade",
	}}
}

// Sections are embedded once per content and model, in batches; a
// changed section is embedded again, the others are not, and vectors of
// contents gone are deleted.
func TestEmbedCourseCachesByContent(t *testing.T) {
	pg := openPostgres(t)
	ctx := t.Context()
	course := emptyCourses(t, pg)
	if _, err := pg.Pool().Exec(ctx, "TRUNCATE course_embeddings"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.IndexCourse(ctx, pg, course, carNotes, false); err != nil {
		t.Fatal(err)
	}
	e := newConceptEmbedder()
	n, err := pg.EmbedCourse(ctx, e, "m1")
	if err != nil || n != 3 {
		t.Fatalf("first embedding: %d %v, want the 3 sections", n, err)
	}
	if calls, _ := e.embedded(); calls != 1 {
		t.Errorf("%d calls for 3 sections, want one batch", calls)
	}
	if n, err := pg.EmbedCourse(ctx, e, "m1"); err != nil || n != 0 {
		t.Errorf("again with nothing changed: %d %v, want 0", n, err)
	}
	changed := []store.CourseFile{carNotes[0], courseFile("syllabus.md", "# Syllabus\n## Grading\nThe exam counts for a third of the grade.\n")}
	if _, err := store.IndexCourse(ctx, pg, course, changed, false); err != nil {
		t.Fatal(err)
	}
	n, err = pg.EmbedCourse(ctx, e, "m1")
	_, texts := e.embedded()
	if err != nil || n != 1 || !strings.Contains(texts[len(texts)-1], "a third") {
		t.Errorf("after a change: %d %v, last text %q; want the changed section only", n, err, texts[len(texts)-1])
	}
	var count int
	if err := pg.Pool().QueryRow(ctx, "SELECT count(*) FROM course_embeddings WHERE model = 'm1'").Scan(&count); err != nil || count != 3 {
		t.Errorf("%d vectors stored (%v), want 3: the old section's is gone", count, err)
	}
	if n, err := pg.EmbedCourse(ctx, e, "m2"); err != nil || n != 3 {
		t.Errorf("another model: %d %v, want every section again", n, err)
	}
}

// With embeddings, a question in other words than the notes' finds the
// section that means the same; a question near nothing still finds nothing,
// and the lexical hits keep their confidence.
func TestSearchCourseHybrid(t *testing.T) {
	pg := openPostgres(t)
	ctx := t.Context()
	course := emptyCourses(t, pg)
	if _, err := pg.Pool().Exec(ctx, "TRUNCATE course_embeddings"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.IndexCourse(ctx, pg, course, carNotes, false); err != nil {
		t.Fatal(err)
	}
	e := newConceptEmbedder()
	if _, err := pg.EmbedCourse(ctx, e, "m1"); err != nil {
		t.Fatal(err)
	}
	q := "where can i leave my automobile"
	if hits, err := pg.SearchCourse(ctx, course, q, 3); err != nil || len(hits) != 0 {
		t.Fatalf("lexical search: %v %v, want nothing (no word in common)", citations(hits), err)
	}
	hits, err := pg.SearchCourseHybrid(ctx, e, "m1", course, q, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) == 0 || hits[0].Citation() != "campus.md › Parking" || hits[0].Confidence < store.MinConfidence {
		t.Errorf("hybrid %q: %v, want campus.md › Parking first", q, hits)
	}
	if hits, err := pg.SearchCourseHybrid(ctx, e, "m1", course, "what is the wifi password", 3); err != nil || len(hits) != 0 {
		t.Errorf("hybrid, unrelated: %v %v, want nothing", citations(hits), err)
	}
	lex, _ := pg.SearchCourse(ctx, course, "how much does the exam count", 3)
	hyb, err := pg.SearchCourseHybrid(ctx, e, "m1", course, "how much does the exam count", 3)
	if err != nil || len(lex) == 0 || len(hyb) == 0 || hyb[0].Citation() != lex[0].Citation() || hyb[0].Confidence != lex[0].Confidence {
		t.Errorf("hybrid %v, lexical %v: want the same first hit with its lexical confidence", hyb, lex)
	}
}

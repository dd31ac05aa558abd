package store

import (
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/jackc/pgx/v5"
)

// Embedder turns texts into vectors, one per text in the same order, all
// of one length. The agent package implements it over an OpenAI-compatible
// /v1/embeddings; tests use a deterministic stand-in.
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// EmbedBatch is how many sections EmbedCourse sends to the embedder at once.
const EmbedBatch = 64

// rrfK is reciprocal rank fusion's constant: a hit at rank r of a ranking
// adds 1/(rrfK + r).
const rrfK = 60

// EmbedCourse embeds, with model's embedder e, every indexed section whose
// content (heading path and text) has no vector for model yet, in batches
// of EmbedBatch, and deletes the vectors of contents no section has any
// more. A section that didn't change keeps its vector. It returns how many
// contents it embedded; on error, the batches done before stay stored.
func (p *Postgres) EmbedCourse(ctx context.Context, e Embedder, model string) (int, error) {
	if model == "" {
		return 0, fmt.Errorf("%w: embedding model", ErrInvalid)
	}
	done := 0
	for {
		rows, err := p.pool.Query(ctx, `
SELECT DISTINCT ON (s.content_hash) s.content_hash, s.title || E'\n\n' || s.body
FROM course_sections s
WHERE s.path <> $2 AND NOT EXISTS (
    SELECT 1 FROM course_embeddings e WHERE e.model = $1 AND e.content_hash = s.content_hash)
ORDER BY s.content_hash
LIMIT $3`, model, SynonymsFile, EmbedBatch)
		if err != nil {
			return done, pgErr("finding sections to embed", err)
		}
		var hashes, texts []string
		var h, text string
		if _, err := pgx.ForEachRow(rows, []any{&h, &text}, func() error {
			hashes, texts = append(hashes, h), append(texts, text)
			return nil
		}); err != nil {
			return done, pgErr("finding sections to embed", err)
		}
		if len(texts) == 0 {
			break
		}
		vecs, err := e.Embed(ctx, texts)
		if err != nil {
			return done, fmt.Errorf("embedding course sections: %w", err)
		}
		if len(vecs) != len(texts) {
			return done, fmt.Errorf("embedding course sections: %d vectors for %d texts", len(vecs), len(texts))
		}
		b := &pgx.Batch{}
		for i := range texts {
			b.Queue(`INSERT INTO course_embeddings (model, content_hash, vec) VALUES ($1, $2, $3)
ON CONFLICT (model, content_hash) DO UPDATE SET vec = EXCLUDED.vec`, model, hashes[i], vecs[i])
		}
		if err := p.pool.SendBatch(ctx, b).Close(); err != nil {
			return done, pgErr("storing course embeddings", err)
		}
		done += len(texts)
	}
	if _, err := p.pool.Exec(ctx, `
DELETE FROM course_embeddings e WHERE e.model = $1
AND NOT EXISTS (SELECT 1 FROM course_sections s WHERE s.content_hash = e.content_hash)`, model); err != nil {
		return done, pgErr("removing old course embeddings", err)
	}
	return done, nil
}

// SearchCourseHybrid is SearchCourse (of course) with embeddings: the question is
// embedded with model's embedder e, every section with a vector for model
// is ranked by cosine similarity in Go, and the lexical and vector
// rankings are fused by reciprocal rank fusion. A section found lexically
// keeps its lexical confidence; one found only by its vector has its
// cosine similarity as confidence, under the same threshold as the
// lexical search's. Safe for concurrent use.
func (p *Postgres) SearchCourseHybrid(ctx context.Context, e Embedder, model string, course int64, query string, limit int) ([]CourseHit, error) {
	if limit <= 0 {
		return nil, nil
	}
	lexical, err := p.searchRanked(ctx, course, query, rankCandidates)
	if err != nil {
		return nil, pgErr("searching the course notes", err)
	}
	qv, err := e.Embed(ctx, []string{query})
	if err != nil {
		return nil, fmt.Errorf("embedding the question: %w", err)
	}
	if len(qv) != 1 {
		return nil, fmt.Errorf("embedding the question: %d vectors for 1 text", len(qv))
	}
	rows, err := p.pool.Query(ctx, `
SELECT s.path, s.seq, s.heading, s.body, e.vec
FROM course_sections s JOIN course_embeddings e ON e.model = $1 AND e.content_hash = s.content_hash
WHERE s.course_id = $3 AND s.path <> $2`, model, SynonymsFile, course)
	if err != nil {
		return nil, pgErr("reading course embeddings", err)
	}
	var vector []CourseHit
	var sec Section
	var seq int32
	var vec []float32
	if _, err := pgx.ForEachRow(rows, []any{&sec.File, &seq, &sec.Heading, &sec.Text, &vec}, func() error {
		sec.Seq = int(seq)
		c := cosine(qv[0], vec)
		vector = append(vector, CourseHit{Section: sec, Score: c, Confidence: c})
		return nil
	}); err != nil {
		return nil, pgErr("reading course embeddings", err)
	}
	sortHits(vector)
	if len(vector) > rankCandidates {
		vector = vector[:rankCandidates]
	}
	return fuse(lexical, vector, limit), nil
}

// fuse merges a lexical and a vector ranking, each best first, by
// reciprocal rank fusion. A hit's confidence is its lexical one when the
// lexical ranking has it, else its vector one; as in rankDocs, nothing is
// returned unless a hit reaches MinConfidence, and hits under
// companionShare of it are left out.
func fuse(lexical, vector []CourseHit, limit int) []CourseHit {
	type key struct {
		file string
		seq  int
	}
	byKey := map[key]*CourseHit{}
	var out []*CourseHit
	add := func(hits []CourseHit, lex bool) {
		for r, h := range hits {
			k := key{h.File, h.Seq}
			f, ok := byKey[k]
			if !ok {
				c := h
				c.Score = 0
				f = &c
				byKey[k] = f
				out = append(out, f)
			}
			f.Score += 1 / float64(rrfK+r+1)
			if lex {
				f.Confidence = h.Confidence
			}
		}
	}
	add(lexical, true)
	add(vector, false)
	var hits []CourseHit
	best := 0.0
	for _, h := range out {
		if h.Confidence >= minConfidence*companionShare {
			hits = append(hits, *h)
			best = max(best, h.Confidence)
		}
	}
	if best < minConfidence {
		return nil
	}
	sortHits(hits)
	if len(hits) > limit {
		hits = hits[:limit]
	}
	return hits
}

// sortHits orders hits best first (ties: by file, then by position).
func sortHits(hits []CourseHit) {
	sort.Slice(hits, func(i, j int) bool {
		a, b := hits[i], hits[j]
		if a.Score != b.Score {
			return a.Score > b.Score
		}
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Seq < b.Seq
	})
}

// cosine is the cosine similarity of a and b, 0 when either is zero or
// their lengths differ.
func cosine(a, b []float32) float64 {
	if len(a) != len(b) || len(a) == 0 {
		return 0
	}
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}

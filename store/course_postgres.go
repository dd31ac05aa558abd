package store

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// CourseHashes returns the content hash of every indexed course file, by path.
func (p *Postgres) CourseHashes(ctx context.Context) (map[string]string, error) {
	rows, err := p.pool.Query(ctx, `SELECT path, hash FROM course_files`)
	if err != nil {
		return nil, pgErr("reading course file hashes", err)
	}
	out := make(map[string]string)
	var path, hash string
	_, err = pgx.ForEachRow(rows, []any{&path, &hash}, func() error {
		out[path] = hash
		return nil
	})
	if err != nil {
		return nil, pgErr("reading course file hashes", err)
	}
	return out, nil
}

// ReplaceCourseFile stores f and its sections in place of what was indexed
// for f.Path, in one transaction: a search sees the old sections or the
// new ones, never a mix. Safe for concurrent use.
func (p *Postgres) ReplaceCourseFile(ctx context.Context, f CourseFile) error {
	if err := checkCourseFile(f); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
INSERT INTO course_files (path, hash, indexed_at) VALUES ($1, $2, now())
ON CONFLICT (path) DO UPDATE SET hash = EXCLUDED.hash, indexed_at = EXCLUDED.indexed_at`, f.Path, f.Hash); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM course_sections WHERE path = $1`, f.Path); err != nil {
			return err
		}
		rows := make([][]any, len(f.Sections))
		for i, s := range f.Sections {
			rows[i] = []any{s.File, int32(s.Seq), s.Heading, s.title(), s.fileWords(), s.Text}
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"course_sections"},
			[]string{"path", "seq", "heading", "title", "file", "body"}, pgx.CopyFromRows(rows))
		return err
	})
	if err != nil {
		return pgErr("indexing course file "+f.Path, err)
	}
	return nil
}

// RemoveCourseFiles removes the files at paths and their sections from the index.
func (p *Postgres) RemoveCourseFiles(ctx context.Context, paths []string) error {
	if _, err := p.pool.Exec(ctx, `DELETE FROM course_files WHERE path = ANY($1)`, paths); err != nil {
		return pgErr("removing course files", err)
	}
	return nil
}

// SearchCourse returns up to limit sections that answer query, best
// first: PostgreSQL's full-text search finds the sections holding any of
// the question's words, their synonyms or the corrections of its typos,
// and they are ranked in Go with BM25F over the course's own term
// statistics (rank.go); sections under MinConfidence are left out, so a
// question the notes don't answer finds nothing. Safe for concurrent use.
func (p *Postgres) SearchCourse(ctx context.Context, query string, limit int) ([]CourseHit, error) {
	if limit <= 0 {
		return nil, nil
	}
	hits, err := p.searchRanked(ctx, query, limit)
	if err != nil {
		return nil, pgErr("searching the course notes", err)
	}
	return hits, nil
}

// ExplainSearchCourse returns PostgreSQL's plan for SearchCourse's
// candidate query (EXPLAIN ANALYZE), for the docs and for checking that
// the GIN index serves it; "" when the question has no word to search.
func (p *Postgres) ExplainSearchCourse(ctx context.Context, query string, limit int) (string, error) {
	plan, ok, err := p.planSearch(ctx, query)
	if err != nil {
		return "", pgErr("explaining the course search", err)
	}
	if !ok {
		return "", nil
	}
	rows, err := p.pool.Query(ctx, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "+plan.sql,
		plan.tsquery, rankCandidates, SynonymsFile)
	if err != nil {
		return "", pgErr("explaining the course search", err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", pgErr("explaining the course search", err)
	}
	return strings.Join(lines, "\n") + "\n", nil
}

// AddAskTurn remembers one answered /ask. It bypasses the group-commit
// writer: it is one short insert, sent with its transaction as one
// pipeline (one round trip). The commit does not wait for the disk
// (synchronous_commit off, for this transaction only): the turn is stored
// and visible at once, and a crash of PostgreSQL itself in the next fraction
// of a second could lose it, which costs a student one remembered question,
// while waiting for the flush was most of /ask's database time.
func (p *Postgres) AddAskTurn(ctx context.Context, t AskTurn) error {
	if err := t.check(); err != nil {
		return err
	}
	if t.At.IsZero() {
		t.At = time.Now()
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue("SET LOCAL synchronous_commit = off")
	b.Queue(`
INSERT INTO ask_memory (platform, workspace, channel, user_id, question, answer, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		t.Platform, t.Workspace, t.Channel, t.User, t.Question, t.Answer, t.At)
	b.Queue("COMMIT")
	if err := p.pool.SendBatch(ctx, b).Close(); err != nil {
		return pgErr("remembering an answer", err)
	}
	return nil
}

// AskTurns returns the last limit turns of key answered at or after since,
// oldest first. Safe for concurrent use.
func (p *Postgres) AskTurns(ctx context.Context, key AskKey, since time.Time, limit int) ([]AskTurn, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := p.pool.Query(ctx, `
SELECT question, answer, created_at FROM (
    SELECT id, question, answer, created_at FROM ask_memory
    WHERE platform = $1 AND workspace = $2 AND channel = $3 AND user_id = $4 AND created_at >= $5
    ORDER BY created_at DESC, id DESC
    LIMIT $6
) last ORDER BY created_at, id`,
		key.Platform, key.Workspace, key.Channel, key.User, since, limit)
	if err != nil {
		return nil, pgErr("reading remembered answers", err)
	}
	var turns []AskTurn
	t := AskTurn{AskKey: key}
	_, err = pgx.ForEachRow(rows, []any{&t.Question, &t.Answer, &t.At}, func() error {
		turns = append(turns, t)
		return nil
	})
	if err != nil {
		return nil, pgErr("reading remembered answers", err)
	}
	return turns, nil
}

// PurgeAskTurns deletes the remembered turns answered before olderThan, in
// chunks of PurgeChunkRows rows like PurgeInteractions, and returns how many
// it deleted.
func (p *Postgres) PurgeAskTurns(ctx context.Context, olderThan time.Time) (int64, error) {
	const q = `
DELETE FROM ask_memory WHERE id IN (
    SELECT id FROM ask_memory WHERE created_at < $1 ORDER BY created_at LIMIT $2
    FOR UPDATE SKIP LOCKED)`
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		tag, err := p.pool.Exec(ctx, q, olderThan, PurgeChunkRows)
		if err != nil {
			return total, pgErr("purging remembered answers", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < PurgeChunkRows {
			return total, nil
		}
	}
}

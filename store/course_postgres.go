package store

import (
	"context"
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

// searchCourseQuery matches a section when it contains any of the query's
// words (websearch_to_tsquery's AND turned into OR: a student's question
// has words the notes don't), ranks by ts_rank_cd's cover density (heading
// words weigh more than the text, the file name's words less; normalisation
// 1 divides by the log of the section's length), and puts sections that
// contain every word first. The tsqueries are written out where they are
// used, not computed once in a CTE, so the planner sees them: it then
// estimates how many sections match from the column's statistics and
// serves the match with the GIN index on tsv (docs/course.md shows the plan).
const searchCourseQuery = `
SELECT path, seq, heading, body,
       ts_rank_cd(tsv, replace(websearch_to_tsquery('english', $1)::text, '&', '|')::tsquery, 1)
         + CASE WHEN tsv @@ websearch_to_tsquery('english', $1) THEN 1 ELSE 0 END AS score
FROM course_sections
WHERE tsv @@ replace(websearch_to_tsquery('english', $1)::text, '&', '|')::tsquery
ORDER BY score DESC, path, seq
LIMIT $2`

// SearchCourse returns up to limit sections that match query, best first,
// with PostgreSQL's full-text search (english stemming and stop words).
// A query with no searchable words finds nothing. Safe for concurrent use.
func (p *Postgres) SearchCourse(ctx context.Context, query string, limit int) ([]CourseHit, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := p.pool.Query(ctx, searchCourseQuery, query, limit)
	if err != nil {
		return nil, pgErr("searching the course notes", err)
	}
	var hits []CourseHit
	var h CourseHit
	var seq int32
	_, err = pgx.ForEachRow(rows, []any{&h.File, &seq, &h.Heading, &h.Text, &h.Score}, func() error {
		h.Seq = int(seq)
		hits = append(hits, h)
		return nil
	})
	if err != nil {
		return nil, pgErr("searching the course notes", err)
	}
	return hits, nil
}

// ExplainSearchCourse returns PostgreSQL's plan for SearchCourse's query
// (EXPLAIN ANALYZE), for the docs and for checking that the GIN index
// serves it.
func (p *Postgres) ExplainSearchCourse(ctx context.Context, query string, limit int) (string, error) {
	rows, err := p.pool.Query(ctx, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "+searchCourseQuery, query, limit)
	if err != nil {
		return "", pgErr("explaining the course search", err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", pgErr("explaining the course search", err)
	}
	out := ""
	for _, l := range lines {
		out += l + "\n"
	}
	return out, nil
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

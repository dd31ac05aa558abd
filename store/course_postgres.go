package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// PutCourse creates the course name, or updates its Dir if it exists (an
// empty dir keeps the stored one), and returns it. Safe for concurrent use.
func (p *Postgres) PutCourse(ctx context.Context, name, dir string) (Course, error) {
	if err := CheckCourseName(name); err != nil {
		return Course{}, err
	}
	row := p.pool.QueryRow(ctx, `
INSERT INTO courses (name, dir) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET dir = CASE WHEN EXCLUDED.dir = '' THEN courses.dir ELSE EXCLUDED.dir END
RETURNING id, name, dir, created_at, indexed_at`, name, dir)
	c, err := scanCourse(row)
	if err != nil {
		return Course{}, pgErr("saving course "+name, err)
	}
	return c, nil
}

func scanCourse(row pgx.Row) (Course, error) {
	var c Course
	var at *time.Time
	if err := row.Scan(&c.ID, &c.Name, &c.Dir, &c.CreatedAt, &at); err != nil {
		return Course{}, err
	}
	if at != nil {
		c.IndexedAt = *at
	}
	return c, nil
}

// CourseByName returns the course called name, or ErrNotFound.
func (p *Postgres) CourseByName(ctx context.Context, name string) (Course, error) {
	c, err := scanCourse(p.pool.QueryRow(ctx,
		`SELECT id, name, dir, created_at, indexed_at FROM courses WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return Course{}, fmt.Errorf("%w: course %s", ErrNotFound, name)
	}
	if err != nil {
		return Course{}, pgErr("reading course "+name, err)
	}
	return c, nil
}

// CourseFor returns the course class c searches: the one bound to its
// channel, else the one bound to its workspace, else the default course.
// One query; safe for concurrent use.
func (p *Postgres) CourseFor(ctx context.Context, c Class) (Course, error) {
	co, err := scanCourse(p.pool.QueryRow(ctx, `
SELECT id, name, dir, created_at, indexed_at FROM courses WHERE id = coalesce(
    (SELECT course_id FROM course_classes WHERE platform = $1 AND workspace = $2 AND channel = $3),
    (SELECT course_id FROM course_classes WHERE platform = $1 AND workspace = $2 AND channel = ''),
    (SELECT id FROM courses WHERE name = $4))`, c.Platform, c.Workspace, c.Channel, DefaultCourse))
	if errors.Is(err, pgx.ErrNoRows) {
		return Course{}, fmt.Errorf("%w: course of %s", ErrNotFound, c)
	}
	if err != nil {
		return Course{}, pgErr("finding the course of a class", err)
	}
	return co, nil
}

// Courses returns every course by name, with its classes and its file and
// section counts.
func (p *Postgres) Courses(ctx context.Context) ([]Course, error) {
	rows, err := p.pool.Query(ctx, `
SELECT c.id, c.name, c.dir, c.created_at, c.indexed_at,
       (SELECT count(*) FROM course_files f WHERE f.course_id = c.id),
       (SELECT count(*) FROM course_sections s WHERE s.course_id = c.id)
FROM courses c ORDER BY c.name`)
	if err != nil {
		return nil, pgErr("listing courses", err)
	}
	var out []Course
	byID := map[int64]int{}
	var c Course
	var at *time.Time
	var files, sections int64
	_, err = pgx.ForEachRow(rows, []any{&c.ID, &c.Name, &c.Dir, &c.CreatedAt, &at, &files, &sections}, func() error {
		c.IndexedAt = time.Time{}
		if at != nil {
			c.IndexedAt = *at
		}
		c.Files, c.Sections = int(files), int(sections)
		byID[c.ID] = len(out)
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, pgErr("listing courses", err)
	}
	rows, err = p.pool.Query(ctx, `SELECT course_id, platform, workspace, channel FROM course_classes ORDER BY platform, workspace, channel`)
	if err != nil {
		return nil, pgErr("listing course classes", err)
	}
	var id int64
	var cl Class
	_, err = pgx.ForEachRow(rows, []any{&id, &cl.Platform, &cl.Workspace, &cl.Channel}, func() error {
		if i, ok := byID[id]; ok {
			out[i].Classes = append(out[i].Classes, cl)
		}
		return nil
	})
	if err != nil {
		return nil, pgErr("listing course classes", err)
	}
	return out, nil
}

// RemoveCourse deletes the course name, its notes and its classes'
// bindings (those classes go back to the default course). It returns
// ErrNotFound if there is no such course, and ErrInvalid for the default
// course, which always exists.
func (p *Postgres) RemoveCourse(ctx context.Context, name string) error {
	if name == DefaultCourse {
		return fmt.Errorf("%w: the default course can't be removed", ErrInvalid)
	}
	tag, err := p.pool.Exec(ctx, `DELETE FROM courses WHERE name = $1`, name)
	if err != nil {
		return pgErr("removing course "+name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: course %s", ErrNotFound, name)
	}
	return nil
}

// BindCourse makes class c search the course name; a class bound to
// another course moves. It returns ErrNotFound if there is no such course.
func (p *Postgres) BindCourse(ctx context.Context, name string, c Class) error {
	if err := c.check(); err != nil {
		return err
	}
	tag, err := p.pool.Exec(ctx, `
INSERT INTO course_classes (platform, workspace, channel, course_id)
SELECT $2, $3, $4, id FROM courses WHERE name = $1
ON CONFLICT (platform, workspace, channel) DO UPDATE SET course_id = EXCLUDED.course_id`,
		name, c.Platform, c.Workspace, c.Channel)
	if err != nil {
		return pgErr("binding a class to course "+name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: course %s", ErrNotFound, name)
	}
	return nil
}

// UnbindCourse removes class c's own binding, if any (it then searches its
// workspace's course or the default one), and reports whether there was one.
func (p *Postgres) UnbindCourse(ctx context.Context, c Class) (bool, error) {
	if err := c.check(); err != nil {
		return false, err
	}
	tag, err := p.pool.Exec(ctx, `DELETE FROM course_classes WHERE platform = $1 AND workspace = $2 AND channel = $3`,
		c.Platform, c.Workspace, c.Channel)
	if err != nil {
		return false, pgErr("unbinding a class", err)
	}
	return tag.RowsAffected() > 0, nil
}

// CourseHashes returns the content hash of every file indexed in course, by path.
func (p *Postgres) CourseHashes(ctx context.Context, course int64) (map[string]string, error) {
	rows, err := p.pool.Query(ctx, `SELECT path, hash FROM course_files WHERE course_id = $1`, course)
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

// ReplaceCourseFile stores f and its sections in course, in place of what
// was indexed there for f.Path, in one transaction: a search sees the old
// sections or the new ones, never a mix. Safe for concurrent use.
func (p *Postgres) ReplaceCourseFile(ctx context.Context, course int64, f CourseFile) error {
	if err := checkCourseFile(f); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
INSERT INTO course_files (course_id, path, hash, indexed_at) VALUES ($1, $2, $3, now())
ON CONFLICT (course_id, path) DO UPDATE SET hash = EXCLUDED.hash, indexed_at = EXCLUDED.indexed_at`,
			course, f.Path, f.Hash); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM course_sections WHERE course_id = $1 AND path = $2`, course, f.Path); err != nil {
			return err
		}
		rows := make([][]any, len(f.Sections))
		for i, s := range f.Sections {
			rows[i] = []any{course, s.File, int32(s.Seq), s.Heading, s.title(), s.fileWords(), s.Text}
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"course_sections"},
			[]string{"course_id", "path", "seq", "heading", "title", "file", "body"}, pgx.CopyFromRows(rows))
		return err
	})
	if err != nil {
		return pgErr("indexing course file "+f.Path, err)
	}
	return nil
}

// RemoveCourseFiles removes the files of course at paths and their sections.
func (p *Postgres) RemoveCourseFiles(ctx context.Context, course int64, paths []string) error {
	if _, err := p.pool.Exec(ctx, `DELETE FROM course_files WHERE course_id = $1 AND path = ANY($2)`, course, paths); err != nil {
		return pgErr("removing course files", err)
	}
	return nil
}

// SetCourseIndexed records that course's notes were indexed now.
func (p *Postgres) SetCourseIndexed(ctx context.Context, course int64) error {
	tag, err := p.pool.Exec(ctx, `UPDATE courses SET indexed_at = now() WHERE id = $1`, course)
	if err != nil {
		return pgErr("recording when the course was indexed", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: course %d", ErrNotFound, course)
	}
	return nil
}

// SearchCourse returns up to limit sections of course that answer query,
// best first: PostgreSQL's full-text search finds the sections holding any
// of the question's words, their synonyms or the corrections of its typos,
// and they are ranked in Go with BM25F over the course's own term
// statistics (rank.go); sections under MinConfidence are left out, so a
// question the notes don't answer finds nothing. It never returns another
// course's sections. Safe for concurrent use.
func (p *Postgres) SearchCourse(ctx context.Context, course int64, query string, limit int) ([]CourseHit, error) {
	if limit <= 0 {
		return nil, nil
	}
	hits, err := p.searchRanked(ctx, course, query, limit)
	if err != nil {
		return nil, pgErr("searching the course notes", err)
	}
	return hits, nil
}

// ExplainSearchCourse returns PostgreSQL's plan for SearchCourse's
// candidate query (EXPLAIN ANALYZE), for the docs and for checking that
// the GIN index serves it; "" when the question has no word to search.
func (p *Postgres) ExplainSearchCourse(ctx context.Context, course int64, query string, limit int) (string, error) {
	plan, ok, err := p.planSearch(ctx, course, query)
	if err != nil {
		return "", pgErr("explaining the course search", err)
	}
	if !ok {
		return "", nil
	}
	rows, err := p.pool.Query(ctx, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "+plan.sql,
		plan.tsquery, rankCandidates, SynonymsFile, course)
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
	b.Queue(askTurnSQL, t.Platform, t.Workspace, t.Channel, t.User, t.Question, t.Answer, t.At, t.Via)
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

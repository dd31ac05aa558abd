package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultMaxConns is the pool size when the URL sets no pool_max_conns:
// enough for a burst of a few hundred commands a second (each makes three
// short writes), small enough for a shared class database.
const DefaultMaxConns = 16

// Postgres is the PostgreSQL store. It is safe for concurrent use; create it
// with Open or OpenWithConfig and release it with Close.
//
// Its three hot-path writes (RecordInteraction, FinishInteraction,
// UpsertRegistration) go through one writer goroutine that commits the
// writes of concurrent callers together (group commit; see Config and
// OpenWithConfig). Reads go straight to the pool.
type Postgres struct {
	pool *pgxpool.Pool
	w    *writer
	// enq is queue mode's acknowledgement lane: a writer of its own for
	// RecordAndEnqueue, whose commit the acknowledgement waits for, so it
	// never waits behind the background writes (registrations, answers'
	// records, completions) in w. The two lanes never write one key out
	// of order: a command's later writes are issued only after its
	// enqueue has committed.
	enq       *writer
	closeOnce sync.Once
}

// Open connects to the database at url with the default Config; see
// OpenWithConfig.
func Open(ctx context.Context, url string) (*Postgres, error) {
	return OpenWithConfig(ctx, url, Config{})
}

// OpenWithConfig connects to the database at url (a postgres:// URL or
// key=value string; pool settings such as pool_max_conns are honoured),
// checks that it answers, and starts the store's writer goroutine, which
// Close stops. It does not migrate: call Migrate. Errors never contain the
// password. ctx bounds the opening only: the writer lives until Close.
//
// The writer gathers the writes of concurrent callers into batches: a
// write that finds it idle goes out at once; writes that arrive while a
// commit is in flight, or within cfg.BatchWindow of its start, form the
// next batch, which closes at cfg.MaxBatchRows writes. A batch is one
// pipeline that PostgreSQL runs as one implicit transaction, one round trip
// and one commit: one multi-row statement per kind of write when no key
// occurs twice in it, else one statement per write in arrival order. Every
// caller still gets its own result and error (see the write methods).
func OpenWithConfig(ctx context.Context, url string, cfg Config) (*Postgres, error) {
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx masks the password in parse errors; say only what is wrong.
		return nil, fmt.Errorf("DATABASE_URL is not a valid PostgreSQL URL: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		pcfg.MaxConns = DefaultMaxConns
	}
	pcfg.ConnConfig.ConnectTimeout = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("store: opening the database pool: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("cannot reach PostgreSQL at %s (is it running? check DATABASE_URL): %w", where(pcfg.ConnConfig), err)
	}
	// The writer outlives ctx, which only bounds the opening.
	base := context.WithoutCancel(ctx)
	w := newWriter(base, pool, cfg.withDefaults())
	enq := newWriter(base, pool, cfg.withDefaults())
	return &Postgres{pool: pool, w: w, enq: enq}, nil
}

// where names a database without its password.
func where(c *pgx.ConnConfig) string {
	return fmt.Sprintf("%s:%d/%s as %s", c.Host, c.Port, c.Database, c.User)
}

// Close stops taking writes (later ones fail with ErrClosed), commits the
// writes already submitted (within Config.CommitTimeout; past it they fail),
// waits for the writer goroutine to end and for queries in progress, and
// closes every connection. It may be called more than once.
func (p *Postgres) Close() {
	p.closeOnce.Do(func() {
		p.enq.close()
		p.w.close()
		p.pool.Close()
	})
}

// Ping checks that the database answers.
func (p *Postgres) Ping(ctx context.Context) error { return p.pool.Ping(ctx) }

// Pool is the underlying connection pool (for migrations and tests).
func (p *Postgres) Pool() *pgxpool.Pool { return p.pool }

// UpsertRegistration creates the student or updates their channel, name and
// email, and reports whether the row was created. Two registrations of the
// same student at once leave one row and report created exactly once (also
// when they share a batch). It is safe for concurrent use; a ctx that ends
// first returns ctx's error at once (the write may still be committed). A
// row the database refuses returns ErrInvalid naming the constraint, and
// fails no other caller's write.
func (p *Postgres) UpsertRegistration(ctx context.Context, r Registration) (bool, error) {
	r, err := r.normalize()
	if err != nil {
		return false, err
	}
	res := p.w.submit(ctx, &write{kind: writeUpsert, reg: r})
	return res.created, res.err
}

// GetRegistration returns one student, or ErrNotFound.
func (p *Postgres) GetRegistration(ctx context.Context, platform, workspace, user string) (Registration, error) {
	const q = `
SELECT platform, workspace, user_id, channel, name, email, created_at, updated_at
FROM registrations WHERE platform = $1 AND workspace = $2 AND user_id = $3`
	var r Registration
	err := p.pool.QueryRow(ctx, q, platform, workspace, user).Scan(
		&r.Platform, &r.Workspace, &r.User, &r.Channel, &r.Name, &r.Email, &r.CreatedAt, &r.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Registration{}, ErrNotFound
	}
	if err != nil {
		return Registration{}, pgErr("reading a registration", err)
	}
	return r, nil
}

// CountRegistrations returns how many students are registered, in all classes.
func (p *Postgres) CountRegistrations(ctx context.Context) (int, error) {
	var n int
	if err := p.pool.QueryRow(ctx, `SELECT count(*) FROM registrations`).Scan(&n); err != nil {
		return 0, pgErr("counting registrations", err)
	}
	return n, nil
}

// RecordInteraction adds a row to the ledger. If (Platform, ID) is already
// there, also from a write submitted earlier, it changes nothing and returns
// ErrDuplicate, unless that row's outcome is OutcomeAckFailed, which it
// takes over. It is safe for concurrent use; a ctx that ends first returns
// ctx's error at once, and a row already submitted is still written, so a
// FinishInteraction called afterwards finds it.
func (p *Postgres) RecordInteraction(ctx context.Context, in Interaction) error {
	if err := in.check(); err != nil {
		return err
	}
	if in.ReceivedAt.IsZero() {
		in.ReceivedAt = time.Now()
	}
	return p.w.submit(ctx, &write{kind: writeRecord, in: in}).err
}

// FinishInteraction sets the ledger row's timestamps that are non-zero in in,
// and its outcome when in.Outcome is not empty; or returns ErrNotFound.
// Writes apply in the order they were submitted: a finish called after its
// RecordInteraction was submitted (even if that call's ctx has ended) finds
// the row. It is safe for concurrent use; a ctx that ends first returns
// ctx's error at once.
func (p *Postgres) FinishInteraction(ctx context.Context, in Interaction) error {
	return p.w.submit(ctx, &write{kind: writeFinish, in: in}).err
}

// GetInteraction returns one ledger row, or ErrNotFound.
func (p *Postgres) GetInteraction(ctx context.Context, platform, id string) (Interaction, error) {
	const q = `
SELECT platform, id, command, mode, workspace, channel, user_id,
    received_at, acknowledged_at, stored_at, agent_done_at, replied_at, outcome
FROM interactions WHERE platform = $1 AND id = $2`
	var (
		in                      Interaction
		ack, stored, done, repl *time.Time
	)
	err := p.pool.QueryRow(ctx, q, platform, id).Scan(&in.Platform, &in.ID, &in.Command, &in.Mode,
		&in.Workspace, &in.Channel, &in.User, &in.ReceivedAt, &ack, &stored, &done, &repl, &in.Outcome)
	if errors.Is(err, pgx.ErrNoRows) {
		return Interaction{}, ErrNotFound
	}
	if err != nil {
		return Interaction{}, pgErr("reading an interaction", err)
	}
	in.AcknowledgedAt, in.StoredAt, in.AgentDoneAt, in.RepliedAt = deref(ack), deref(stored), deref(done), deref(repl)
	return in, nil
}

// PurgeChunkRows is how many ledger rows one statement of PurgeInteractions
// deletes: small enough that each statement holds its row locks for
// milliseconds.
const PurgeChunkRows = 1000

// PurgeInteractions deletes the ledger rows received before olderThan and
// returns how many it deleted. It deletes in statements of PurgeChunkRows
// rows, each its own transaction, oldest first (by the received_at index),
// skipping rows that another transaction holds (a finish in flight: the next
// purge takes them), so it never makes the hot path wait for long. It
// bypasses the writer. It stops when ctx ends, returning what it deleted
// so far and ctx's error. Safe for concurrent use.
func (p *Postgres) PurgeInteractions(ctx context.Context, olderThan time.Time) (int64, error) {
	const q = `
WITH doomed AS (
    SELECT platform, id FROM interactions
    WHERE received_at < $1
    ORDER BY received_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
DELETE FROM interactions i USING doomed d
WHERE i.platform = d.platform AND i.id = d.id`
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		tag, err := p.pool.Exec(ctx, q, olderThan, PurgeChunkRows)
		if err != nil {
			return total, pgErr("purging old interactions", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < PurgeChunkRows {
			return total, nil
		}
	}
}

// nullTime is NULL for the zero time.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// jsonText is b as the text of a jsonb parameter, or NULL for nil.
func jsonText(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// pgErr wraps a database error. A constraint violation becomes ErrInvalid
// naming the constraint; PostgreSQL's detail line, which quotes the failing
// row (and so an email), is never included.
func pgErr(doing string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23514" { // check_violation
		return fmt.Errorf("%w: %s", ErrInvalid, pe.ConstraintName)
	}
	return fmt.Errorf("store: %s: %w", doing, err)
}

package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
// with Open and release it with Close.
type Postgres struct {
	pool *pgxpool.Pool
}

// Open connects to the database at url (a postgres:// URL or key=value
// string; pool settings such as pool_max_conns are honoured) and checks that
// it answers. It does not migrate: call Migrate. Errors never contain the
// password.
func Open(ctx context.Context, url string) (*Postgres, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx masks the password in parse errors; say only what is wrong.
		return nil, fmt.Errorf("DATABASE_URL is not a valid PostgreSQL URL: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: opening the database pool: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("cannot reach PostgreSQL at %s (is it running? check DATABASE_URL): %w", where(cfg.ConnConfig), err)
	}
	return &Postgres{pool: pool}, nil
}

// where names a database without its password.
func where(c *pgx.ConnConfig) string {
	return fmt.Sprintf("%s:%d/%s as %s", c.Host, c.Port, c.Database, c.User)
}

// Close waits for queries in progress and closes every connection.
func (p *Postgres) Close() { p.pool.Close() }

// Ping checks that the database answers.
func (p *Postgres) Ping(ctx context.Context) error { return p.pool.Ping(ctx) }

// Pool is the underlying connection pool (for migrations and tests).
func (p *Postgres) Pool() *pgxpool.Pool { return p.pool }

// UpsertRegistration creates the student or updates their channel, name and
// email, in one statement, and reports whether the row was created. Two
// registrations of the same student at once leave one row and report
// created exactly once.
func (p *Postgres) UpsertRegistration(ctx context.Context, r Registration) (bool, error) {
	r, err := r.normalize()
	if err != nil {
		return false, err
	}
	// xmax is 0 on a row version this statement inserted, and the updating
	// transaction's id on one it updated.
	const q = `
INSERT INTO registrations (platform, workspace, user_id, channel, name, email)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (platform, workspace, user_id) DO UPDATE
SET channel = EXCLUDED.channel, name = EXCLUDED.name, email = EXCLUDED.email, updated_at = now()
RETURNING (xmax = 0)`
	var created bool
	err = p.pool.QueryRow(ctx, q, r.Platform, r.Workspace, r.User, r.Channel, r.Name, r.Email).Scan(&created)
	if err != nil {
		return false, pgErr("saving a registration", err)
	}
	return created, nil
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
// there it changes nothing and returns ErrDuplicate.
func (p *Postgres) RecordInteraction(ctx context.Context, in Interaction) error {
	if err := in.check(); err != nil {
		return err
	}
	received := in.ReceivedAt
	if received.IsZero() {
		received = time.Now()
	}
	const q = `
INSERT INTO interactions (platform, id, command, mode, workspace, channel, user_id,
    received_at, acknowledged_at, stored_at, agent_done_at, replied_at, outcome)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (platform, id) DO NOTHING`
	tag, err := p.pool.Exec(ctx, q, in.Platform, in.ID, in.Command, in.Mode, in.Workspace, in.Channel, in.User,
		received, nullTime(in.AcknowledgedAt), nullTime(in.StoredAt), nullTime(in.AgentDoneAt), nullTime(in.RepliedAt), in.Outcome)
	if err != nil {
		return pgErr("recording an interaction", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrDuplicate
	}
	return nil
}

// FinishInteraction sets the ledger row's timestamps that are non-zero in in,
// and its outcome when in.Outcome is not empty; or returns ErrNotFound.
func (p *Postgres) FinishInteraction(ctx context.Context, in Interaction) error {
	const q = `
UPDATE interactions SET
    acknowledged_at = COALESCE($3, acknowledged_at),
    stored_at       = COALESCE($4, stored_at),
    agent_done_at   = COALESCE($5, agent_done_at),
    replied_at      = COALESCE($6, replied_at),
    outcome         = COALESCE(NULLIF($7, ''), outcome)
WHERE platform = $1 AND id = $2`
	tag, err := p.pool.Exec(ctx, q, in.Platform, in.ID,
		nullTime(in.AcknowledgedAt), nullTime(in.StoredAt), nullTime(in.AgentDoneAt), nullTime(in.RepliedAt), in.Outcome)
	if err != nil {
		return pgErr("finishing an interaction", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
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

// nullTime is NULL for the zero time.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
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

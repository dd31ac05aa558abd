package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/classbot/classbot/internal/pgproxy"
)

// dbSnapshot is what the load test reads from PostgreSQL before and after
// a run: classbot's rows and the database's committed transactions.
type dbSnapshot struct {
	registrations, interactions int64
	rowsErr                     error // the tables may not exist yet
	commits                     int64 // pg_stat_database.xact_commit
}

// statsSettle bounds the wait for PostgreSQL's statistics after a run. A
// backend reports its counters when it ends, or when it goes idle at least
// 1 s after its last report; otherwise it keeps them for up to 10 s
// (PostgreSQL 15's PGSTAT_IDLE_INTERVAL). So: stop the bot, then wait
// until no other backend is connected to the database and the count holds
// still, or until this bound.
const statsSettle = 12 * time.Second

// readDB reads dbURL's rows and commit count. With settle, it first waits
// for the statistics to settle (see statsSettle). It reads in one
// transaction that it rolls back, so that reading adds no commit.
func readDB(ctx context.Context, dbURL string, settle bool) (dbSnapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, statsSettle+10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, withoutPoolParams(dbURL))
	if err != nil {
		return dbSnapshot{}, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.Begin(ctx)
	if err != nil {
		return dbSnapshot{}, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // a rollback is not a commit

	// Inside one transaction the statistics are a snapshot (PostgreSQL's
	// stats_fetch_consistency = cache): clear it before every reading.
	read := func() (commits, others int64, err error) {
		err = tx.QueryRow(ctx, `SELECT pg_stat_clear_snapshot()::text,
			(SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),
			(SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid())`).
			Scan(new(string), &commits, &others)
		return commits, others, err
	}
	var s dbSnapshot
	var others int64
	if s.commits, others, err = read(); err != nil {
		return s, fmt.Errorf("read pg_stat_database: %w", err)
	}
	if settle {
		deadline := time.Now().Add(statsSettle)
		for time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return s, ctx.Err()
			case <-time.After(250 * time.Millisecond):
			}
			c, o, err := read()
			if err != nil {
				return s, fmt.Errorf("read pg_stat_database: %w", err)
			}
			if o == 0 && others == 0 && c == s.commits {
				break // the bot's backends are gone and their counts are in
			}
			s.commits, others = c, o
		}
	}
	// A savepoint keeps the transaction usable if the tables do not exist.
	if _, err := tx.Exec(ctx, "SAVEPOINT rows"); err != nil {
		return s, err
	}
	s.rowsErr = tx.QueryRow(ctx, "SELECT (SELECT count(*) FROM registrations), (SELECT count(*) FROM interactions)").
		Scan(&s.registrations, &s.interactions)
	return s, nil
}

// withoutPoolParams drops pgxpool's pool_* parameters, which a single
// connection would send to the server as settings.
func withoutPoolParams(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		return dbURL
	}
	q := u.Query()
	for k := range q {
		if strings.HasPrefix(k, "pool_") {
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// ProxyDatabase starts a pgproxy in front of the PostgreSQL server in
// dbURL that adds latency each way, and returns it with the URL the bot
// should use: dbURL with the proxy's address as its host. The proxy stops
// when ctx is done or on its Close. dbURL must name one host over TCP.
func ProxyDatabase(ctx context.Context, dbURL string, latency time.Duration) (*pgproxy.Proxy, string, error) {
	u, err := url.Parse(dbURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, "", errors.New("DATABASE_URL must look like postgres://user@host:5432/dbname to put a proxy in front of it")
	}
	q := u.Query()
	if q.Get("host") != "" || q.Get("port") != "" || strings.Contains(u.Host, ",") || u.Hostname() == "" || strings.HasPrefix(u.Hostname(), "/") {
		return nil, "", errors.New("DATABASE_URL must name one host and port in its authority (postgres://user@127.0.0.1:5432/db) to put a proxy in front of it")
	}
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	target := net.JoinHostPort(u.Hostname(), port)
	p, err := pgproxy.Start(ctx, target, pgproxy.Options{Latency: latency})
	if err != nil {
		return nil, "", err
	}
	u.Host = p.Addr()
	return p, u.String(), nil
}

// CommitLatency is the median time PostgreSQL at dbURL takes to commit a
// transaction that writes to the WAL, as a registration does, over n
// commits one after another on one connection: it tells one machine's disk
// from another's. The write is a transactional logical-decoding message
// (pg_logical_emit_message), which touches no table and is dropped unless a
// replication slot asks for it; it needs a superuser or a role granted that
// function. (SELECT txid_current() would not do: a transaction that wrote
// no WAL before its commit record does not wait for the disk.) It adds n
// commits to the database's counters.
func CommitLatency(ctx context.Context, dbURL string, n int) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, withoutPoolParams(dbURL))
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	d := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if _, err := conn.Exec(ctx, "SELECT pg_logical_emit_message(true, 'classbot-loadtest', 'commit latency')"); err != nil {
			return 0, fmt.Errorf("measure commit latency: %w", err)
		}
		d = append(d, time.Since(start))
	}
	slices.Sort(d)
	return quantile(d, .5), nil
}

// QueueJobs counts a queue-mode run's River jobs (kind classbot_command,
// inserted during the run), read after the bot stopped.
type QueueJobs struct {
	Inserted  int64 `json:"inserted"`
	Completed int64 `json:"completed"`
	// Unfinished are still available, scheduled, retryable or running
	// (left by the bot's stop: another replica, or its next start, would
	// run them).
	Unfinished int64 `json:"unfinished"`
	// Retried ran more than once (attempt > 1): a failed attempt, or one
	// rescued after a crash. Each may have posted a follow-up twice.
	Retried int64 `json:"retried"`
	// Discarded ran out of attempts or were cancelled.
	Discarded int64 `json:"discarded"`
}

// queueSnapshot is River's job table before a run: its highest id, so
// that the run's jobs are those above it.
type queueSnapshot struct {
	maxID int64
	jobs  QueueJobs
}

// readJobs reads River's jobs above afterID (and their highest id). A
// database without River's tables has none.
func readJobs(ctx context.Context, dbURL string, afterID int64) (queueSnapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, withoutPoolParams(dbURL))
	if err != nil {
		return queueSnapshot{}, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var s queueSnapshot
	var exists bool
	// Read in a transaction that is rolled back: no commit is counted.
	tx, err := conn.Begin(ctx)
	if err != nil {
		return s, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := tx.QueryRow(ctx, "SELECT to_regclass('river_job') IS NOT NULL").Scan(&exists); err != nil || !exists {
		return s, err
	}
	j := &s.jobs
	err = tx.QueryRow(ctx, `SELECT coalesce(max(id), 0),
		count(*) FILTER (WHERE id > $1),
		count(*) FILTER (WHERE id > $1 AND state = 'completed'),
		count(*) FILTER (WHERE id > $1 AND state IN ('available', 'scheduled', 'retryable', 'running', 'pending')),
		count(*) FILTER (WHERE id > $1 AND attempt > 1),
		count(*) FILTER (WHERE id > $1 AND state IN ('discarded', 'cancelled'))
		FROM river_job WHERE kind = 'classbot_command'`, afterID).
		Scan(&s.maxID, &j.Inserted, &j.Completed, &j.Unfinished, &j.Retried, &j.Discarded)
	return s, err
}

// staleJobsSQL deletes the unfinished jobs of earlier load-test runs: those
// whose reply address (kept in their ledger row's job_input: a job carries
// ids only) is a load-test sink (a Slack response_url on a loopback
// address, or a Discord token the generator made; see discordToken). No
// real platform gives either.
const staleJobsSQL = `DELETE FROM river_job j
USING interactions i
WHERE j.kind = 'classbot_command'
  AND j.state IN ('available', 'scheduled', 'retryable', 'running', 'pending')
  AND i.platform = j.args->>'platform' AND i.id = j.args->>'id'
  AND (i.job_input->'address'->>'url' LIKE 'http://127.0.0.1:%/slack/commands/%'
       OR i.job_input->'address'->>'tok' LIKE 'lt%-` + tokenMark + `')`

// clearStaleJobs runs staleJobsSQL and returns how many jobs it deleted. A
// database without River's tables has none.
func clearStaleJobs(ctx context.Context, dbURL string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, withoutPoolParams(dbURL))
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	// A database migrated before ledger rows kept the jobs' input has no
	// load-test job this can recognise.
	const ready = `SELECT to_regclass('river_job') IS NOT NULL AND EXISTS (
SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'interactions' AND column_name = 'job_input')`
	if err := conn.QueryRow(ctx, ready).Scan(&exists); err != nil || !exists {
		return 0, err
	}
	ct, err := conn.Exec(ctx, staleJobsSQL)
	if err != nil {
		return 0, err
	}
	return ct.RowsAffected(), nil
}

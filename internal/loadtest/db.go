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

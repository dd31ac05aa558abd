package queue

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Depth is how many of classbot's jobs wait or run now, by River state.
type Depth struct {
	Available, Running, Retryable, Scheduled int64
	OldestAvailable                          time.Duration // how long the oldest available job has waited; 0 if none
	// AvailableBy is the available jobs by platform (its queue's, QueueFor;
	// the shared Name queue's are not counted here).
	AvailableBy map[string]int64
}

// ReadDepth counts the jobs that are not finished: one statement, over
// River's state index (finished jobs are never counted, however many are
// kept).
func ReadDepth(ctx context.Context, pool *pgxpool.Pool) (Depth, error) {
	const q = `
SELECT
    count(*) FILTER (WHERE state = 'available'),
    count(*) FILTER (WHERE state = 'running'),
    count(*) FILTER (WHERE state = 'retryable'),
    count(*) FILTER (WHERE state = 'scheduled'),
    COALESCE(EXTRACT(EPOCH FROM now() - min(scheduled_at) FILTER (WHERE state = 'available')), 0)
FROM river_job
WHERE state IN ('available', 'running', 'retryable', 'scheduled') AND queue = any($1)`
	var (
		d      Depth
		oldest float64
	)
	if err := pool.QueryRow(ctx, q, Queues()).Scan(&d.Available, &d.Running, &d.Retryable, &d.Scheduled, &oldest); err != nil {
		return Depth{}, fmt.Errorf("queue: reading the queue's depth: %w", err)
	}
	d.OldestAvailable = time.Duration(max(oldest, 0) * float64(time.Second))
	const by = `SELECT queue, count(*) FROM river_job WHERE state = 'available' AND queue = any($1) GROUP BY queue`
	rows, err := pool.Query(ctx, by, Queues()[1:])
	if err != nil {
		return Depth{}, fmt.Errorf("queue: reading the queue's depth: %w", err)
	}
	d.AvailableBy = map[string]int64{}
	for rows.Next() {
		var (
			name string
			n    int64
		)
		if err := rows.Scan(&name, &n); err != nil {
			return Depth{}, fmt.Errorf("queue: reading the queue's depth: %w", err)
		}
		d.AvailableBy[strings.TrimPrefix(name, Name+"_")] = n
	}
	if err := rows.Err(); err != nil {
		return Depth{}, fmt.Errorf("queue: reading the queue's depth: %w", err)
	}
	return d, nil
}

// Recent summarises the jobs finished in the last Since.
type Recent struct {
	Since                time.Duration
	Completed, Discarded int64
	WaitP50, WaitP99     time.Duration // enqueued → first started
	TotalP50, TotalP99   time.Duration // enqueued → done
	Retried, Rescued     int64         // finished jobs that took more than one attempt; of them, those a rescue re-ran
	MaxAttempt           int
	Expired              int64 // commands that ended "expired" (ledger rows received in the window)
}

// ReadRecent reads the jobs finished within since (River keeps completed
// jobs an hour) and the ledger's expired commands in the same window.
func ReadRecent(ctx context.Context, pool *pgxpool.Pool, since time.Duration) (Recent, error) {
	const q = `
SELECT
    count(*) FILTER (WHERE state = 'completed'),
    count(*) FILTER (WHERE state = 'discarded'),
    COALESCE(percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM COALESCE(attempted_at, finalized_at) - created_at)), 0),
    COALESCE(percentile_cont(0.99) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM COALESCE(attempted_at, finalized_at) - created_at)), 0),
    COALESCE(percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM finalized_at - created_at)), 0),
    COALESCE(percentile_cont(0.99) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM finalized_at - created_at)), 0),
    count(*) FILTER (WHERE attempt > 1),
    count(*) FILTER (WHERE attempt > 1 AND errors::text ILIKE '%rescue%'),
    COALESCE(max(attempt), 0)
FROM river_job
WHERE queue = any($1) AND state IN ('completed', 'discarded') AND finalized_at > now() - $2::interval`
	r := Recent{Since: since}
	var w50, w99, t50, t99 float64
	if err := pool.QueryRow(ctx, q, Queues(), since).Scan(&r.Completed, &r.Discarded, &w50, &w99, &t50, &t99,
		&r.Retried, &r.Rescued, &r.MaxAttempt); err != nil {
		return Recent{}, fmt.Errorf("queue: reading recent jobs: %w", err)
	}
	sec := func(f float64) time.Duration { return time.Duration(max(f, 0) * float64(time.Second)) }
	r.WaitP50, r.WaitP99, r.TotalP50, r.TotalP99 = sec(w50), sec(w99), sec(t50), sec(t99)
	const expired = `SELECT count(*) FROM interactions WHERE outcome = 'expired' AND received_at > now() - $1::interval`
	if err := pool.QueryRow(ctx, expired, since).Scan(&r.Expired); err != nil {
		return Recent{}, fmt.Errorf("queue: counting expired commands: %w", err)
	}
	return r, nil
}

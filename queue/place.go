package queue

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// placeSQL is a waiting job's place in line in its queue, in the order
// River's workers fetch (priority, then scheduled time, then id), found by
// its arguments (River's GIN index on args) and counted over River's
// fetching index; no row if the job is not waiting for its first attempt
// (a job a worker has tried waits for a retry, not for its turn).
const placeSQL = `
WITH me AS (
    SELECT queue, priority, scheduled_at, id FROM river_job
    WHERE args @> jsonb_build_object('platform', $1::text, 'id', $2::text)
      AND kind = 'classbot_command' AND state = 'available' AND attempt = 0)
SELECT 1 + (SELECT count(*) FROM river_job j
            WHERE j.state = 'available' AND j.queue = me.queue
              AND (j.priority, j.scheduled_at, j.id) < (me.priority, me.scheduled_at, me.id))
FROM me`

// ShowPlace implements bot.QueuePlacer: show gets the place of the
// command's job among the jobs of its queue waiting for a worker (every
// replica's, in River's order), while the command is held from having its
// answer recorded (store.HoldUnanswered), so its answer, posted after
// that record, always comes after the place.
func (q *Queue) ShowPlace(ctx context.Context, platform, id string, show func(ctx context.Context, place int) error) (bool, error) {
	waiting := true
	held, err := q.store.HoldUnanswered(ctx, platform, id, func(ctx context.Context, tx pgx.Tx) error {
		var place int
		switch err := tx.QueryRow(ctx, placeSQL, platform, id).Scan(&place); {
		case errors.Is(err, pgx.ErrNoRows):
			waiting = false // taken by a worker, or gone
			return nil
		case err != nil:
			return fmt.Errorf("queue: reading a job's place: %w", err)
		}
		return show(ctx, place)
	})
	// Not held: its answer is recorded (or being recorded), or it ended.
	return held && waiting, err
}

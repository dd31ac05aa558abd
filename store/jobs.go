package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// JobHooks are how a job queue (package queue, on River) takes part in the
// store's group commit: the store calls Enqueue inside the transaction of a
// batch that holds RecordAndEnqueue writes, once per batch, so the jobs of
// a burst of commands are inserted in one statement and one commit with
// their ledger rows. The store itself knows nothing of the job queue.
type JobHooks struct {
	// Enqueue inserts jobs (the values given to RecordAndEnqueue, in the
	// order they were written, duplicates left out) in tx.
	Enqueue func(ctx context.Context, tx pgx.Tx, jobs []any) error
	// Forget, if set, deletes in tx the jobs of the ledger rows ids (of
	// platform) that have not started, and returns how many it deleted.
	// Forget calls it.
	Forget func(ctx context.Context, tx pgx.Tx, platform string, ids []string) (int64, error)
}

// SetJobHooks installs the job queue's hooks. Call it once, before the
// first RecordAndEnqueue.
func (p *Postgres) SetJobHooks(h JobHooks) {
	if h.Enqueue == nil {
		panic("store: SetJobHooks needs the Enqueue hook")
	}
	p.w.hooks.Store(&h)
	p.enq.hooks.Store(&h)
}

// RecordAndEnqueue adds the ledger row in, with input (what the job needs:
// kept in the row's job_input, never in the job) and, in the same
// transaction, the job (through JobHooks.Enqueue): when it returns nil
// both are committed, and a crash at any moment leaves both or neither. If
// the ledger already holds (Platform, ID) it writes nothing, no job
// either, and returns ErrDuplicate (a row whose outcome is
// OutcomeAckFailed is taken over, as RecordInteraction does). The write
// joins a group commit of its own (the acknowledgement lane: it never
// waits behind the store's other writes): the commands of a burst share a
// few transactions. A ctx that ends first returns ctx's error at once:
// wrapping ErrNotWritten if nothing was written, else the write may still
// commit. An error wrapping ErrUncertain means the same: the connection
// was lost while the commit was on its way.
func (p *Postgres) RecordAndEnqueue(ctx context.Context, in Interaction, input []byte, job any) error {
	if err := in.check(); err != nil {
		return err
	}
	if job == nil || input == nil {
		return errors.New("store: RecordAndEnqueue without a job or its input")
	}
	if in.ReceivedAt.IsZero() {
		in.ReceivedAt = time.Now()
	}
	return p.enq.submit(ctx, &write{kind: writeEnqueue, in: in, input: input, job: job}).err
}

// JobRow is what a queued command's job reads of its ledger row.
type JobRow struct {
	Input     []byte            // what RecordAndEnqueue stored; nil once the command has ended
	Outbox    []byte            // the answer SaveOutbox recorded; nil before it did and once the command has ended
	Posted    map[string]string // what RecordPost recorded: message ids by kind
	RepliedAt time.Time         // zero until the command's answer was recorded as delivered
	Outcome   string
}

// ReadJob returns the job's part of the ledger row (Platform, ID), or
// ErrNotFound (the row was purged). Any other error means the row could
// not be read: not that the command was not answered.
func (p *Postgres) ReadJob(ctx context.Context, platform, id string) (JobRow, error) {
	const q = `SELECT job_input, outbox, posted, replied_at, outcome FROM interactions WHERE platform = $1 AND id = $2`
	var (
		r    JobRow
		repl *time.Time
	)
	err := p.pool.QueryRow(ctx, q, platform, id).Scan(&r.Input, &r.Outbox, &r.Posted, &repl, &r.Outcome)
	if errors.Is(err, pgx.ErrNoRows) {
		return JobRow{}, ErrNotFound
	}
	if err != nil {
		return JobRow{}, pgErr("reading a queued command", err)
	}
	r.RepliedAt = deref(repl)
	return r, nil
}

// SaveOutbox records answer in the ledger row (Platform, ID) before it is
// posted, unless the row has an answer already (the first one recorded
// wins: it is the one a retry posts). It returns ErrNotFound if the row
// is gone or the command has ended. It commits on its own, apart from the
// group commit: the post waits for it.
func (p *Postgres) SaveOutbox(ctx context.Context, platform, id string, answer []byte) error {
	// The advisory lock waits for a HoldUnanswered of the command (a place
	// in line being shown) to end: the answer is posted after this returns,
	// so never before that edit.
	const q = `WITH hold AS MATERIALIZED (SELECT pg_advisory_xact_lock($4, hashtext($1 || '/' || $2)))
UPDATE interactions SET outbox = COALESCE(outbox, $3) FROM hold WHERE platform = $1 AND id = $2 AND job_input IS NOT NULL`
	tag, err := p.pool.Exec(ctx, q, platform, id, answer, int32(answerLockClass))
	if err != nil {
		return pgErr("recording an answer", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// RecordPost records that the queued command (Platform, ID) posted the
// message msgID under kind (a fallback's message: see bot.PostLog), so that
// a later attempt does not post it again. It returns ErrNotFound if the
// row is gone or the command has ended. It commits on its own.
func (p *Postgres) RecordPost(ctx context.Context, platform, id, kind, msgID string) error {
	const q = `UPDATE interactions SET posted = coalesce(posted, '{}'::jsonb) || jsonb_build_object($3::text, $4::text)
WHERE platform = $1 AND id = $2 AND job_input IS NOT NULL`
	tag, err := p.pool.Exec(ctx, q, platform, id, kind, msgID)
	if err != nil {
		return pgErr("recording a post", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// FinishJob updates the ledger row like FinishInteraction and clears what
// the job kept there (job_input, outbox, posted): the command has ended, and
// nothing of the student's stays for it. It returns ErrNotFound if the row
// is gone (purged).
func (p *Postgres) FinishJob(ctx context.Context, in Interaction) error {
	return p.w.submit(ctx, &write{kind: writeFinishJob, in: in}).err
}

// pendingAheadSQL counts, for each ledger row (platform, id), the commands
// of its class (platform, workspace, channel) not yet ended that were
// received before it, up to $3 (the index interactions_pending_by_class
// reads at most that many entries a row).
const pendingAheadSQL = `
SELECT j.ord, (
    SELECT count(*) FROM (
        SELECT 1 FROM interactions p
        WHERE p.platform = i.platform AND p.workspace = i.workspace AND p.channel = i.channel
          AND p.job_input IS NOT NULL AND (p.received_at, p.id) < (i.received_at, i.id)
        ORDER BY p.received_at DESC, p.id DESC -- the partial index's order: the planner takes it
        LIMIT $3) ahead)
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS j(platform, id, ord)
JOIN interactions i ON i.platform = j.platform AND i.id = j.id`

// PendingAhead returns, for each ledger row (platforms[k], ids[k]) in tx,
// how many commands of its class (platform, workspace, channel) that have
// not ended were received before it, counting up to limit: the jobs of a
// class's burst are told apart from a lone command of another class. A row
// not found counts 0.
func PendingAhead(ctx context.Context, tx pgx.Tx, platforms, ids []string, limit int) ([]int, error) {
	ahead := make([]int, len(ids))
	rows, err := tx.Query(ctx, pendingAheadSQL, platforms, ids, limit)
	if err != nil {
		return nil, err
	}
	var ord, n int64
	_, err = pgx.ForEachRow(rows, []any{&ord, &n}, func() error {
		if ord >= 1 && int(ord) <= len(ahead) {
			ahead[ord-1] = int(n)
		}
		return nil
	})
	return ahead, err
}

// answerLockClass is the first key of the transaction-scoped advisory lock
// that holds a queued command's answer back (HoldUnanswered, SaveOutbox):
// "clas" in ASCII, apart from any other user of advisory locks.
const answerLockClass = 0x636c6173

// HoldUnanswered calls f in a transaction that holds the queued command
// (platform, id) back from having its answer recorded (SaveOutbox waits
// until f returns and the transaction ends), if no answer is recorded yet
// and the command has not ended. It reports whether f was called: false if
// the answer is recorded, the command ended, or another holder has it now.
// It holds no row lock: the ledger's other writes never wait for f.
func (p *Postgres) HoldUnanswered(ctx context.Context, platform, id string, f func(ctx context.Context, tx pgx.Tx) error) (bool, error) {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return false, pgErr("holding a command", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // after Commit, a no-op
	const q = `SELECT pg_try_advisory_xact_lock($3, hashtext($1 || '/' || $2))
  AND EXISTS (SELECT 1 FROM interactions WHERE platform = $1 AND id = $2
              AND job_input IS NOT NULL AND outbox IS NULL AND replied_at IS NULL)`
	var held bool
	if err := tx.QueryRow(ctx, q, platform, id, int32(answerLockClass)).Scan(&held); err != nil {
		return false, pgErr("holding a command", err)
	}
	if !held {
		return false, nil
	}
	if err := f(ctx, tx); err != nil {
		return true, err
	}
	if err := tx.Commit(ctx); err != nil {
		return true, pgErr("holding a command", err)
	}
	return true, nil
}

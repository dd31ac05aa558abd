package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// QueueHooks are how a job queue (package queue, on River) takes part in
// the store's group commit: the store calls them inside the transaction of
// a batch that holds queue writes, once per batch, so the jobs of a burst of
// commands are inserted, and completed, in one statement and one commit
// with their ledger rows. The store itself knows nothing of the queue.
type QueueHooks struct {
	// Enqueue inserts jobs (the values given to RecordAndEnqueue, in queue
	// order, duplicates left out) in tx.
	Enqueue func(ctx context.Context, tx pgx.Tx, jobs []any) error
	// Complete marks the jobs with these ids completed in tx, if they are
	// still running.
	Complete func(ctx context.Context, tx pgx.Tx, ids []int64) error
}

// SetQueueHooks installs the queue's hooks. Call it once, before the first
// RecordAndEnqueue or FinishAndComplete.
func (p *Postgres) SetQueueHooks(h QueueHooks) {
	if h.Enqueue == nil || h.Complete == nil {
		panic("store: SetQueueHooks needs both hooks")
	}
	p.w.hooks.Store(&h)
	p.enq.hooks.Store(&h)
}

// RecordAndEnqueue adds the ledger row in and, in the same transaction,
// the job (through QueueHooks.Enqueue): when it returns nil both are
// committed, and a crash at any moment leaves both or neither. If the
// ledger already holds (Platform, ID) it writes nothing, no job either, and
// returns ErrDuplicate (a row whose outcome is OutcomeAckFailed is taken
// over, as RecordInteraction does). The write joins a group commit of its
// own (the acknowledgement lane: it never waits behind the store's other
// writes): the commands of a burst share a few transactions. A ctx that
// ends first returns ctx's error at once: wrapping ErrNotQueued if nothing
// was written, else the write may still commit.
func (p *Postgres) RecordAndEnqueue(ctx context.Context, in Interaction, job any) error {
	if err := in.check(); err != nil {
		return err
	}
	if job == nil {
		return errors.New("store: RecordAndEnqueue without a job")
	}
	if in.ReceivedAt.IsZero() {
		in.ReceivedAt = time.Now()
	}
	return p.enq.submit(ctx, &write{kind: writeEnqueue, in: in, job: job}).err
}

// FinishAndComplete updates the ledger row like FinishInteraction and, in
// the same transaction, completes the job jobID (through
// QueueHooks.Complete): "answered" and "done" are committed together, so a
// job that is run again after a crash finds either both or neither. It
// returns ErrNotFound, with the job still completed, if the ledger row is
// gone (purged).
func (p *Postgres) FinishAndComplete(ctx context.Context, in Interaction, jobID int64) error {
	return p.w.submit(ctx, &write{kind: writeComplete, in: in, jobID: jobID}).err
}

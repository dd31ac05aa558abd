package store

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Defaults of Config's fields.
const (
	DefaultBatchWindow   = 5 * time.Millisecond
	DefaultMaxBatchRows  = 256
	DefaultCommitTimeout = 10 * time.Second
)

// Config tunes the Postgres store's group commit. The zero Config is the
// defaults; OpenWithConfig documents how the writer uses each field.
type Config struct {
	// BatchWindow is how long the writer may hold a batch open to gather
	// more writes while writes contend (more than one is waiting, or the
	// previous batch held more than one): it starts no commit sooner than
	// BatchWindow after the previous one started, so under load there are
	// at most 1/BatchWindow commits a second; and when the previous batch
	// held several writes it waits, up to BatchWindow after that commit
	// ended, for as many to arrive (a batch's callers tend to write again
	// together). A lone write, nothing else waiting and the previous batch a
	// single write, goes out at once: no added latency without contention.
	// A write never waits more than BatchWindow for its batch to close,
	// plus the commit in flight. Default DefaultBatchWindow (5 ms: at most
	// 200 commits a second, 0.2 per interaction at 1,000 interactions a
	// second);
	// negative: never wait, commit whatever arrived while the previous
	// commit was in flight.
	BatchWindow time.Duration

	// MaxBatchRows is the most writes in one batch (one transaction); a
	// batch closes as soon as it has this many. Sixteen times as many may
	// wait in the backlog: past that, callers wait to enter the backlog (as
	// long as their ctx allows). Default DefaultMaxBatchRows (256).
	MaxBatchRows int

	// CommitTimeout bounds one batch's round trip (and the one-by-one
	// retry after a refused row), and Close's flush of the writes still
	// waiting. Default DefaultCommitTimeout (10 s).
	CommitTimeout time.Duration

	// ObserveBatchFunc, if not nil, is called after every batch, committed
	// or not, with its number of writes and how long its round trip took
	// (including a one-by-one retry), before the batch's callers get their
	// results. It is called from the writer goroutine, one call at a time:
	// it must return quickly and must not call the store. Default: none.
	ObserveBatchFunc func(rows int, commit time.Duration)
}

func (c Config) withDefaults() Config {
	if c.BatchWindow == 0 {
		c.BatchWindow = DefaultBatchWindow
	}
	if c.BatchWindow < 0 {
		c.BatchWindow = 0
	}
	if c.MaxBatchRows <= 0 {
		c.MaxBatchRows = DefaultMaxBatchRows
	}
	if c.CommitTimeout <= 0 {
		c.CommitTimeout = DefaultCommitTimeout
	}
	return c
}

// writeKind is what a write does.
type writeKind uint8

const (
	writeRecord    writeKind = iota // RecordInteraction: ledger insert
	writeFinish                     // FinishInteraction: ledger update
	writeUpsert                     // UpsertRegistration
	writeEnqueue                    // RecordAndEnqueue: ledger insert and its job, in one transaction
	writeFinishJob                  // FinishJob: ledger update that also clears the job's input and outbox
)

// transactional reports whether k needs an explicit transaction: its
// statement and the job queue's own (a job's insert, made by
// JobHooks.Enqueue) must commit together.
func (k writeKind) transactional() bool { return k == writeEnqueue }

// ledgerInsert and ledgerUpdate report which ledger statement k runs.
func (k writeKind) ledgerInsert() bool { return k == writeRecord || k == writeEnqueue }
func (k writeKind) ledgerUpdate() bool { return k == writeFinish || k == writeFinishJob }

// write is one caller's write, waiting for the writer. done has room for
// its one result, so the writer never waits for a caller that gave up.
type write struct {
	kind  writeKind
	in    Interaction  // every kind but writeUpsert
	reg   Registration // writeUpsert, already normalized
	input []byte       // writeEnqueue: the ledger row's job_input
	job   any          // writeEnqueue: the job handed to JobHooks.Enqueue
	done  chan writeResult
}

type writeResult struct {
	created bool // writeUpsert: the row was inserted
	err     error
}

// writer is the Postgres store's group commit: one goroutine that takes the
// waiting writes of concurrent callers and sends each batch as one pipeline
// of statements, run by PostgreSQL as one implicit transaction and
// answered in one round trip. Writes of one key run in the order they were
// submitted (a batch in which a key repeats runs write by write, in arrival
// order; see grouped.go), so a ledger row's insert always runs before a
// finish submitted after it, in the same batch or an earlier one.
type writer struct {
	pool *pgxpool.Pool
	cfg  Config
	base context.Context // the writer's own lifetime: not cancelled by callers

	backlog chan *write

	grouped atomic.Int64 // batches sent as multi-row statements (for tests)

	hooks atomic.Pointer[JobHooks] // set once by SetJobHooks, before the first writeEnqueue

	// mu guards closed. Callers hold it shared while they enter the backlog,
	// so once Close has taken it, nothing more can enter the backlog and the
	// writer's flush sees every accepted write.
	mu      sync.RWMutex
	closed  bool
	closing chan struct{} // closed first by Close: wakes callers waiting to enter the backlog
	stop    chan struct{} // closed once no more writes can enter the backlog: flush and exit
	exited  chan struct{} // closed by the writer goroutine when it returns
}

// backlogBatches is how many full batches the writer's backlog (the
// writes waiting for a batch) holds. A caller whose ctx ends before its
// write enters the backlog writes nothing (a ledger row the
// acknowledgement gave up waiting for would be lost), so the backlog is
// deep enough for a burst: its bound is memory (a pointer a write), and it
// drains at a full batch per commit.
const backlogBatches = 16

func newWriter(base context.Context, pool *pgxpool.Pool, cfg Config) *writer {
	w := &writer{
		pool:    pool,
		cfg:     cfg,
		base:    base,
		backlog: make(chan *write, backlogBatches*cfg.MaxBatchRows),
		closing: make(chan struct{}),
		stop:    make(chan struct{}),
		exited:  make(chan struct{}),
	}
	go w.run()
	return w
}

// submit adds wr to the backlog and waits for its result. A ctx that is
// done before wr enters it returns ctx's error and nothing is written. A
// ctx that ends while wr waits or is being committed returns ctx's error
// at once, and wr is still carried out: the caller cannot know whether it
// was.
func (w *writer) submit(ctx context.Context, wr *write) writeResult {
	if err := ctx.Err(); err != nil {
		return writeResult{err: fmt.Errorf("%w: %w", ErrNotWritten, err)}
	}
	wr.done = make(chan writeResult, 1)
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return writeResult{err: ErrClosed}
	}
	select {
	case w.backlog <- wr:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		return writeResult{err: fmt.Errorf("%w: %w", ErrNotWritten, ctx.Err())}
	case <-w.closing:
		w.mu.RUnlock()
		return writeResult{err: ErrClosed}
	}
	select {
	case res := <-wr.done:
		return res
	case <-ctx.Done():
		return writeResult{err: ctx.Err()}
	}
}

// close stops the backlog, commits the writes already in it (within
// CommitTimeout; past it they fail) and waits for the writer to exit. It
// must be called once.
func (w *writer) close() {
	close(w.closing)
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	close(w.stop)
	<-w.exited
}

func (w *writer) run() {
	defer close(w.exited)
	batch := make([]*write, 0, w.cfg.MaxBatchRows)
	var last batchTimes
	for {
		select {
		case first := <-w.backlog:
			batch = append(batch[:0], first)
		case <-w.stop:
			w.flush(batch[:0])
			return
		}
		batch = w.gather(batch, last)
		last.start, last.rows = time.Now(), len(batch)
		w.commit(w.base, batch)
		last.end = time.Now()
		clear(batch) // let the writes' memory go
	}
}

// batchTimes is when the previous batch's commit started and ended, and
// how many writes it held.
type batchTimes struct {
	start, end time.Time
	rows       int
}

// gather adds waiting writes to batch until it may close (see
// Config.BatchWindow): at MaxBatchRows always; at once for a lone write
// when the previous batch was a single write too; otherwise once
// BatchWindow has passed since the previous commit started and, if the
// previous batch held several writes, once the batch holds as many or
// BatchWindow has passed since that commit ended. Both moments are long
// past for a writer that was idle.
func (w *writer) gather(batch []*write, last batchTimes) []*write {
	window := w.cfg.BatchWindow
	capAt := last.start.Add(window) // commits start at least window apart
	herdAt := last.end.Add(window)  // the previous batch's callers come back
	ready := func(now time.Time) (bool, time.Time) {
		if len(batch) == 1 && last.rows <= 1 {
			return true, time.Time{} // no contention
		}
		if now.Before(capAt) {
			return false, capAt
		}
		if last.rows > 1 && len(batch) < last.rows && now.Before(herdAt) {
			return false, herdAt
		}
		return true, time.Time{}
	}
	var timer *time.Timer
	for len(batch) < w.cfg.MaxBatchRows {
		select {
		case wr := <-w.backlog:
			batch = append(batch, wr)
			continue
		default:
		}
		ok, until := ready(time.Now())
		if ok {
			break
		}
		if timer == nil {
			timer = time.NewTimer(time.Until(until))
			defer timer.Stop()
		} else {
			timer.Reset(time.Until(until))
		}
		select {
		case wr := <-w.backlog:
			batch = append(batch, wr)
		case <-timer.C:
		case <-w.stop:
			return batch
		}
	}
	return batch
}

// flush commits what is left in the backlog once nothing more can enter it,
// all within one CommitTimeout.
func (w *writer) flush(batch []*write) {
	ctx, cancel := context.WithTimeout(w.base, w.cfg.CommitTimeout)
	defer cancel()
	for {
		batch = batch[:0]
	drain:
		for len(batch) < w.cfg.MaxBatchRows {
			select {
			case wr := <-w.backlog:
				batch = append(batch, wr)
			default:
				break drain
			}
		}
		if len(batch) == 0 {
			return
		}
		w.commit(ctx, batch)
	}
}

// commit runs batch in one round trip and hands each write its result.
//
// Failure handling: the Go checks (normalize, check) mirror the schema's
// CHECK constraints, so a refused row is rare. When PostgreSQL does refuse
// one (an integrity or data error, SQLSTATE class 23 or 22), the implicit
// transaction has rolled back and nothing of the batch is stored; the
// writer then runs the batch's writes again one by one, in order, each in
// its own transaction, so the other callers' writes commit and every caller
// gets its own result or error. Any other failure (the connection, the
// timeout, the server shutting down) fails every write of the batch with
// that error: nothing is known to be stored.
func (w *writer) commit(parent context.Context, batch []*write) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(parent, w.cfg.CommitTimeout)
	defer cancel()
	results := make([]writeResult, len(batch))
	err := w.send(ctx, batch, results)
	switch {
	case err == nil:
	case len(batch) > 1 && rowRefused(err):
		for i, wr := range batch {
			results[i] = w.one(ctx, wr)
		}
	default:
		for i, wr := range batch {
			results[i] = writeResult{err: pgErr(wr.kind.doing(), err)}
		}
	}
	if f := w.cfg.ObserveBatchFunc; f != nil {
		f(len(batch), time.Since(start))
	}
	for i, wr := range batch {
		wr.done <- results[i]
	}
}

// send runs batch as one transaction and sets each write's result. A
// batch of ledger and registration writes only is one pipeline, which
// PostgreSQL runs as one implicit transaction in one round trip. A batch
// with RecordAndEnqueue writes is an explicit transaction: the same
// pipeline, then one call of JobHooks.Enqueue for all of the batch's jobs
// (jobs whose ledger insert found a duplicate are left out), then the
// commit: four round trips, still one commit. An error that leaves the
// commit's outcome unknown (the connection lost once the commit was on
// its way) wraps ErrUncertain.
func (w *writer) send(ctx context.Context, batch []*write, results []writeResult) error {
	b := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, len(batch))}
	if len(batch) > 1 && groupable(batch) {
		w.grouped.Add(1)
		addGrouped(b, batch, results)
	} else {
		for i, wr := range batch {
			addStatement(b, wr, &results[i])
		}
	}
	if !slices.ContainsFunc(batch, func(wr *write) bool { return wr.kind.transactional() }) {
		// The implicit transaction commits at the pipeline's end.
		return uncertain(w.pool.SendBatch(ctx, b).Close())
	}
	hooks := w.hooks.Load()
	if hooks == nil {
		return errors.New("store: RecordAndEnqueue without job hooks (SetJobHooks)")
	}
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	var jobs []any
	for i, wr := range batch {
		if wr.kind == writeEnqueue && results[i].err == nil {
			jobs = append(jobs, wr.job)
		}
	}
	if len(jobs) > 0 {
		if err := hooks.Enqueue(ctx, tx, jobs); err != nil {
			return fmt.Errorf("enqueue %d jobs: %w", len(jobs), err)
		}
	}
	// The connection was sound when the commit was sent (the statements
	// before it succeeded): any failure but PostgreSQL's own refusal may
	// have come after the commit landed. pgconn.SafeToRetry cannot tell
	// here: a connection the server's answer never reached reports
	// "conn closed", an error it marks safe to retry.
	if err := tx.Commit(ctx); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrUncertain, err)
	}
	return nil
}

// uncertain wraps err in ErrUncertain when it may have come after
// PostgreSQL committed: it is neither an error PostgreSQL reported (the
// transaction then rolled back) nor a failure to connect, nor one pgx
// knows came before anything was sent. A connection lost after the
// statements were sent may still report "conn closed", which pgx marks
// safe to retry: that is why SafeToRetry alone is not the test.
func uncertain(err error) error {
	var (
		pe *pgconn.PgError
		ce *pgconn.ConnectError
	)
	switch {
	case err == nil, errors.As(err, &pe), errors.As(err, &ce), errors.Is(err, ErrUncertain):
		return err
	case pgconn.SafeToRetry(err) && !errors.Is(err, pgconn.ErrConnClosed):
		return err
	}
	return fmt.Errorf("%w: %w", ErrUncertain, err)
}

// one runs a single write in its own transaction.
func (w *writer) one(ctx context.Context, wr *write) writeResult {
	var res [1]writeResult
	if err := w.send(ctx, []*write{wr}, res[:]); err != nil {
		return writeResult{err: pgErr(wr.kind.doing(), err)}
	}
	return res[0]
}

// rowRefused tells whether err is PostgreSQL refusing a row for its data
// (class 22, data exception; class 23, integrity constraint violation), the
// failures that retrying the batch's writes one by one can isolate.
func rowRefused(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code[:2] == "22" || pe.Code[:2] == "23")
}

func (k writeKind) doing() string {
	switch k {
	case writeRecord:
		return "recording an interaction"
	case writeFinish:
		return "finishing an interaction"
	case writeEnqueue:
		return "queueing a command"
	case writeFinishJob:
		return "finishing a queued command"
	default:
		return "saving a registration"
	}
}

// The statements of the three writes. Each is one row; a batch sends one
// per write, in arrival order, so two writes of one key in one batch see each
// other as they would in two transactions.
const (
	// xmax is 0 on a row version this statement inserted, and the updating
	// transaction's id on one it updated (also when the same batch
	// inserted it).
	upsertRegistrationSQL = `
INSERT INTO registrations (platform, workspace, user_id, channel, name, email)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (platform, workspace, user_id) DO UPDATE
SET channel = EXCLUDED.channel, name = EXCLUDED.name, email = EXCLUDED.email, updated_at = now()
RETURNING (xmax = 0)`

	// upsertRegistrationViaSQL is upsertRegistrationSQL for a registration
	// tied to its command (Registration.Via, $7): no row if the command's
	// ledger row is no longer the student's.
	upsertRegistrationViaSQL = `
INSERT INTO registrations (platform, workspace, user_id, channel, name, email)
SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text
WHERE EXISTS (` + viaStillTheirs + `)
ON CONFLICT (platform, workspace, user_id) DO UPDATE
SET channel = EXCLUDED.channel, name = EXCLUDED.name, email = EXCLUDED.email, updated_at = now()
RETURNING (xmax = 0)`

	recordInteractionSQL = `
INSERT INTO interactions (platform, id, command, mode, workspace, channel, user_id,
    received_at, acknowledged_at, stored_at, agent_done_at, replied_at, outcome, job_input)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb)
ON CONFLICT (platform, id) DO UPDATE SET
    command = EXCLUDED.command, mode = EXCLUDED.mode, workspace = EXCLUDED.workspace,
    channel = EXCLUDED.channel, user_id = EXCLUDED.user_id, received_at = EXCLUDED.received_at,
    acknowledged_at = EXCLUDED.acknowledged_at, stored_at = EXCLUDED.stored_at,
    agent_done_at = EXCLUDED.agent_done_at, replied_at = EXCLUDED.replied_at, outcome = EXCLUDED.outcome,
    job_input = EXCLUDED.job_input, outbox = NULL, posted = NULL
WHERE interactions.outcome = '` + OutcomeAckFailed + `'`

	finishInteractionSQL = `
UPDATE interactions SET
    acknowledged_at = COALESCE($3, acknowledged_at),
    stored_at       = COALESCE($4, stored_at),
    agent_done_at   = COALESCE($5, agent_done_at),
    replied_at      = COALESCE($6, replied_at),
    outcome         = COALESCE(NULLIF($7, ''), outcome),
    job_input       = CASE WHEN $8 THEN NULL ELSE job_input END,
    outbox          = CASE WHEN $8 THEN NULL ELSE outbox END,
    posted          = CASE WHEN $8 THEN NULL ELSE posted END
WHERE platform = $1 AND id = $2`
)

// addStatement adds wr's statement to b; its callback stores wr's result
// in res (ErrDuplicate and ErrNotFound are results, not batch failures).
func addStatement(b *pgx.Batch, wr *write, res *writeResult) {
	switch wr.kind {
	case writeUpsert:
		r := wr.reg
		if r.Via == "" {
			b.Queue(upsertRegistrationSQL, r.Platform, r.Workspace, r.User, r.Channel, r.Name, r.Email).
				QueryRow(func(row pgx.Row) error { return row.Scan(&res.created) })
			return
		}
		b.Queue(upsertRegistrationViaSQL, r.Platform, r.Workspace, r.User, r.Channel, r.Name, r.Email, r.Via).
			QueryRow(func(row pgx.Row) error {
				err := row.Scan(&res.created)
				if errors.Is(err, pgx.ErrNoRows) {
					res.err = ErrForgotten // its command's ledger row is no longer the student's
					return nil
				}
				return err
			})
	case writeRecord, writeEnqueue:
		in := wr.in
		b.Queue(recordInteractionSQL, in.Platform, in.ID, in.Command, in.Mode, in.Workspace, in.Channel, in.User,
			in.ReceivedAt, nullTime(in.AcknowledgedAt), nullTime(in.StoredAt), nullTime(in.AgentDoneAt),
			nullTime(in.RepliedAt), in.Outcome, jsonText(wr.input)).
			Exec(func(ct pgconn.CommandTag) error {
				if ct.RowsAffected() == 0 {
					res.err = ErrDuplicate
				}
				return nil
			})
	case writeFinish, writeFinishJob:
		in := wr.in
		b.Queue(finishInteractionSQL, in.Platform, in.ID,
			nullTime(in.AcknowledgedAt), nullTime(in.StoredAt), nullTime(in.AgentDoneAt), nullTime(in.RepliedAt), in.Outcome,
			wr.kind == writeFinishJob).
			Exec(func(ct pgconn.CommandTag) error {
				if ct.RowsAffected() == 0 {
					res.err = ErrNotFound
				}
				return nil
			})
	default:
		panic(fmt.Sprintf("store: unknown write kind %d", wr.kind))
	}
}

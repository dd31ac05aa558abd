// Package queue is classbot's queue mode on River (riverqueue.com): durable
// jobs in the PostgreSQL database classbot already uses. A command is
// recorded (its ledger row, which keeps what the job needs, and its job,
// which carries ids only, in one transaction of the store's group commit)
// before the acknowledgement; River workers in any process on the same
// database run its work through the bot's Dispatcher, record the answer in
// the row's outbox, post it, and record the end, which clears what the
// row kept. A crash, a deploy or a kill -9 loses nothing and answers
// nothing twice: a job that was running is rescued and run again, finds
// the answer in the outbox or the end recorded, and reopened Responders
// post idempotently.
package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/store"
)

// Name is the River queue of the jobs enqueued before jobs went to a queue
// per platform (QueueFor). Every worker still takes its jobs, putting back
// (snoozed, attempts untouched) those whose platform it lacks, so an
// upgrade loses none.
const Name = "classbot"

// QueueFor is the River queue of platform's jobs ("classbot_slack", ...). A
// worker subscribes to the queues of the platforms it can answer through
// and no other: a replica without Discord's secrets never takes a Discord
// job, so a job waits only for a replica that can answer it, and none of
// its attempts is spent where it cannot succeed.
func QueueFor(platform string) string { return Name + "_" + platform }

// Queues are every queue classbot's jobs go to: Name and one per platform.
func Queues() []string {
	return []string{Name, QueueFor(bot.PlatformSlack), QueueFor(bot.PlatformDiscord), QueueFor(bot.PlatformConsole)}
}

// Defaults of Config's fields, and why.
const (
	// DefaultWorkers is QUEUE_WORKERS' default with the default
	// LLM_MAX_CONCURRENCY: see WorkersFor.
	DefaultWorkers = 32
	// DefaultJobTimeout bounds the work of one attempt of one job once it
	// has its model slot (its store write and its model calls; the answer's
	// records and post then get bot.QueueReplyTimeout each). It is what a
	// brief answer from a hosted model needs, /ask's two calls (search,
	// then answer) included. An attempt that runs out is tried again; for
	// a slow (reasoning) model raise it with QUEUE_JOB_TIMEOUT, and the
	// rescue takes as much longer.
	DefaultJobTimeout = 10 * time.Second
	// DefaultRescueAfter is RescueAfter's default with the default
	// JobTimeout and SlotWait (see Config.RescueAfter).
	DefaultRescueAfter = 2*DefaultJobTimeout + 3*bot.QueueReplyTimeout + bot.RecordPostTimeout + time.Second
	// DefaultMaxAttempts: with the retry delays of NextRetry (about 2 s
	// doubling to 60 s) ten attempts span about five minutes of outage,
	// and with their timeouts stay inside a Discord token's 15 minutes.
	DefaultMaxAttempts = 10
)

// WorkersFor is the default of Config.Workers for a process whose model
// calls are limited to modelSlots at once (LLM_MAX_CONCURRENCY): twice as
// many, so a job waits for its slot at most about one other job's work,
// and a backlog waits in the database, where any replica can take it,
// rather than in one process's memory.
func WorkersFor(modelSlots int) int { return 2 * max(modelSlots, 1) }

// Config configures a Queue. Zero fields take their defaults.
type Config struct {
	// Workers is QUEUE_WORKERS: jobs this process runs at once. Negative:
	// none (an HTTP-only replica that only enqueues). Zero: DefaultWorkers.
	Workers int
	// JobTimeout bounds the work of one attempt of a job from the moment
	// it has its model slot (agent.WithWorkBudget). Default
	// DefaultJobTimeout.
	JobTimeout time.Duration
	// SlotWait bounds an attempt's wait for a model slot: River cancels an
	// attempt after SlotWait + JobTimeout. Default JobTimeout (with
	// WorkersFor's workers, a job waits at most about one other job).
	SlotWait time.Duration
	// RescueAfter is River's RescueStuckJobsAfter: how long a job may stay
	// "running" before River takes it for a crashed process's and runs it
	// again. Default, and never less than, an attempt's longest healthy
	// run: SlotWait + JobTimeout + three bot.QueueReplyTimeout (the
	// outbox, the post, the end's record) + bot.RecordPostTimeout (a
	// fallback's record) + 1 s.
	RescueAfter time.Duration
	// MaxAttempts is how many times a job is tried. Default DefaultMaxAttempts.
	MaxAttempts int
	// RetryBase is the first retry's delay; each next one doubles, up to
	// RetryMax; each is jittered by up to a quarter either way, so jobs
	// that failed together do not come back together. Defaults 2 s and 60 s.
	RetryBase, RetryMax time.Duration
	// PlatformSnooze is how long a job of the Name queue (enqueued before
	// the queues per platform) whose platform this process cannot answer
	// through is put back for another process, without using an attempt.
	// Default 5 s.
	PlatformSnooze time.Duration
	// Logger gets River's warnings and the workers' lines. Default slog.Default().
	Logger *slog.Logger
	// ObserveFunc, if set, is called after every attempt of every job.
	ObserveFunc func(Report)
	// ID names this process among the workers (River's client id); default
	// River's (host name and a time).
	ID string
}

// Report is one attempt of one job, for metrics.
type Report struct {
	Attempt int
	Rescued bool          // this attempt follows a rescue (its previous run was left running by a crash)
	Wait    time.Duration // from enqueued (or scheduled, for a retry) to started
	Run     time.Duration // from started to done
	Outcome string        // the ledger's outcome; "" for an attempt that will be tried again
	Retry   bool          // the attempt failed and the job will be tried again
	// Snoozed is why the job was put back without using an attempt:
	// SnoozeNoPlatform or SnoozeStopping; "" if it was not.
	Snoozed string
}

// Why a job was snoozed (Report.Snoozed).
const (
	SnoozeNoPlatform = "no_platform" // this process cannot answer through the job's platform
	SnoozeStopping   = "stopping"    // this process stopped while the job ran
)

// stoppingSnooze is how long a job interrupted by a shutdown waits before
// another worker (or this one, restarted) takes it.
const stoppingSnooze = time.Second

func (c Config) withDefaults() Config {
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.JobTimeout <= 0 {
		c.JobTimeout = DefaultJobTimeout
	}
	if c.SlotWait <= 0 {
		c.SlotWait = c.JobTimeout
	}
	if minRescue := c.attemptTimeout() + 3*bot.QueueReplyTimeout + bot.RecordPostTimeout + time.Second; c.RescueAfter < minRescue {
		c.RescueAfter = minRescue
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 2 * time.Second
	}
	if c.RetryMax < c.RetryBase {
		c.RetryMax = max(60*time.Second, c.RetryBase)
	}
	if c.PlatformSnooze <= 0 {
		c.PlatformSnooze = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// attemptTimeout is River's JobTimeout: the wait for a model slot and the
// work after it.
func (c Config) attemptTimeout() time.Duration { return c.SlotWait + c.JobTimeout }

// priorityAhead are the bounds of River's priorities 1 to 3 by how many
// commands of the job's class are pending ahead of it; from the last on, 4.
var priorityAhead = []int{2, 8, 32}

// PriorityFor is the River priority (1 first, 4 last) of a job with ahead
// commands of its class (platform, workspace, channel) pending before it:
// a class's first two commands go first, its next six after every class's
// first two, and so on, so the workers of every replica (River fetches by
// priority, then arrival) take a lone student's command before the tail
// of another class's burst, and one class's burst cannot keep another
// class waiting behind it. Within a priority, in order of arrival.
func PriorityFor(ahead int) int {
	for i, bound := range priorityAhead {
		if ahead < bound {
			return i + 1
		}
	}
	return len(priorityAhead) + 1
}

// Args are a job's arguments: the ids of the command's ledger row, which
// holds what the job needs (bot.QueuedCommand) until the command ends. Job
// rows outlive the command (River keeps finished jobs a while): they hold
// nothing of the student's.
type Args struct {
	Platform string `json:"platform"`
	ID       string `json:"id"`
}

// Kind is the job kind River stores.
func (Args) Kind() string { return "classbot_command" }

// Queue is queue mode's River client over the store's pool. It implements
// bot.Enqueuer. Create it with New, give it the Dispatcher with Start.
type Queue struct {
	cfg       Config
	reopeners map[string]bot.Reopener
	store     *store.Postgres
	client    *river.Client[pgx.Tx]
	worker    *worker
}

// New creates the River client on st's pool and installs the store's job
// hook, so Enqueue joins the group commit. Migrate must have run.
func New(st *store.Postgres, cfg Config) (*Queue, error) {
	cfg = cfg.withDefaults()
	q := &Queue{cfg: cfg, store: st}
	q.worker = &worker{q: q}
	workers := river.NewWorkers()
	river.AddWorker(workers, q.worker)
	rcfg := &river.Config{
		ID:                   cfg.ID,
		Workers:              workers,
		JobTimeout:           cfg.attemptTimeout(),
		RescueStuckJobsAfter: cfg.RescueAfter,
		MaxAttempts:          cfg.MaxAttempts,
		Logger:               riverLogger(cfg.Logger),
	}
	if cfg.Workers > 0 {
		rcfg.Queues = map[string]river.QueueConfig{Name: {MaxWorkers: cfg.Workers}}
	}
	client, err := river.NewClient(riverpgxv5.New(st.Pool()), rcfg)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	q.client = client
	st.SetJobHooks(store.JobHooks{Enqueue: q.insert, Forget: q.forget})
	return q, nil
}

// riverLogger passes River's warnings and errors on; its info lines (every
// start, stop and election) would drown classbot's own.
func riverLogger(l *slog.Logger) *slog.Logger {
	return slog.New(levelAtLeast{l.Handler(), slog.LevelWarn})
}

type levelAtLeast struct {
	slog.Handler
	min slog.Level
}

func (h levelAtLeast) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelAtLeast) WithAttrs(a []slog.Attr) slog.Handler {
	return levelAtLeast{h.Handler.WithAttrs(a), h.min}
}

func (h levelAtLeast) WithGroup(g string) slog.Handler {
	return levelAtLeast{h.Handler.WithGroup(g), h.min}
}

// Enqueue records the command's ledger row, with job as its job_input,
// and its job (ids only) in one transaction (bot.Enqueuer).
func (q *Queue) Enqueue(ctx context.Context, in store.Interaction, job bot.QueuedCommand) error {
	input, err := json.Marshal(job)
	if err != nil {
		return fmt.Errorf("queue: %w: %w", store.ErrNotWritten, err)
	}
	return q.store.RecordAndEnqueue(ctx, in, input, Args{Platform: in.Platform, ID: in.ID})
}

// insert is the store's Enqueue hook: one multi-row insert for a batch,
// each job with its class's priority (PriorityFor).
func (q *Queue) insert(ctx context.Context, tx pgx.Tx, jobs []any) error {
	platforms, ids := make([]string, len(jobs)), make([]string, len(jobs))
	for i, j := range jobs {
		args, ok := j.(Args)
		if !ok {
			return fmt.Errorf("queue: a job of type %T", j)
		}
		platforms[i], ids[i] = args.Platform, args.ID
	}
	ahead, err := store.PendingAhead(ctx, tx, platforms, ids, priorityAhead[len(priorityAhead)-1])
	if err != nil {
		return fmt.Errorf("queue: counting the classes' pending commands: %w", err)
	}
	params := make([]river.InsertManyParams, len(jobs))
	for i, j := range jobs {
		params[i] = river.InsertManyParams{Args: j.(Args), InsertOpts: &river.InsertOpts{
			Queue: QueueFor(platforms[i]), MaxAttempts: q.cfg.MaxAttempts, Priority: PriorityFor(ahead[i]),
		}}
	}
	// InsertManyTx (one multi-row INSERT) rather than InsertManyFastTx
	// (COPY through a temporary table): one statement less in the
	// transaction.
	_, err = q.client.InsertManyTx(ctx, tx, params)
	return err
}

// forget is the store's Forget hook: it deletes the jobs of the ledger
// rows ids, in tx, through River (which never deletes a running job: that
// one finds its command's input gone and ends without answering).
func (q *Queue) forget(ctx context.Context, tx pgx.Tx, platform string, ids []string) (int64, error) {
	var n int64
	for chunk := range slices.Chunk(ids, 10000) {
		params := river.NewJobDeleteManyParams().Kinds(Args{}.Kind()).First(len(chunk)).
			Where("args->>'platform' = @platform AND args->>'id' = any(@ids::text[])", river.NamedArgs{"platform": platform, "ids": chunk})
		res, err := q.client.JobDeleteManyTx(ctx, tx, params)
		if err != nil {
			return n, fmt.Errorf("queue: deleting a forgotten student's jobs: %w", err)
		}
		n += int64(len(res.Jobs))
	}
	return n, nil
}

// Start runs the workers (if Config.Workers > 0) until Stop: they run the
// work through d and answer through the Reopener of the command's platform
// (by bot.PlatformSlack, ...). They take the jobs of the queues of the
// platforms in reopeners (QueueFor), Config.Workers at once in each, and
// those of the Name queue; a job there of a platform missing here is put
// back (snoozed, its attempt not counted) for a process that has it.
func (q *Queue) Start(ctx context.Context, d *bot.Dispatcher, reopeners map[string]bot.Reopener) error {
	q.worker.d, q.reopeners = d, reopeners
	if q.cfg.Workers < 0 {
		return nil
	}
	for _, p := range slices.Sorted(maps.Keys(reopeners)) {
		if err := q.client.Queues().Add(QueueFor(p), river.QueueConfig{MaxWorkers: q.cfg.Workers}); err != nil {
			return fmt.Errorf("queue: the %s queue: %w", p, err)
		}
	}
	if err := q.client.Start(ctx); err != nil {
		return fmt.Errorf("queue: starting the workers: %w", err)
	}
	return nil
}

// Stop stops fetching jobs and waits for the running ones until ctx is
// done; then it cancels them: a job cancelled before its answer was
// recorded is put back without using an attempt, for another replica or
// the restarted process, so a deploy loses nothing.
func (q *Queue) Stop(ctx context.Context) error {
	if q.cfg.Workers < 0 {
		return nil
	}
	err := q.client.Stop(ctx)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return err
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return errors.Join(err, q.client.StopAndCancel(cctx))
}

// Migrate applies classbot's migrations and River's, under one lock.
func Migrate(ctx context.Context, pool *pgxpool.Pool) (version int64, applied int, err error) {
	return store.MigrateWith(ctx, pool, func(ctx context.Context) error {
		m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
		if err != nil {
			return fmt.Errorf("queue: River's migrations: %w", err)
		}
		if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
			return fmt.Errorf("queue: applying River's migrations: %w", err)
		}
		return nil
	})
}

// worker runs classbot_command jobs through the Dispatcher.
type worker struct {
	river.WorkerDefaults[Args]
	q *Queue
	d *bot.Dispatcher
}

// NextRetry waits RetryBase, doubling with each attempt, up to RetryMax,
// jittered by up to a quarter either way.
func (w *worker) NextRetry(job *river.Job[Args]) time.Time {
	return time.Now().Add(retryDelay(w.q.cfg, job.Attempt, rand.Float64()))
}

// retryDelay is the wait after attempt (1 for the first), with u in [0, 1)
// choosing the jitter.
func retryDelay(cfg Config, attempt int, u float64) time.Duration {
	wait := cfg.RetryBase
	for i := 1; i < attempt && wait < cfg.RetryMax; i++ {
		wait *= 2
	}
	wait = min(wait, cfg.RetryMax)
	return wait + time.Duration((u-0.5)/2*float64(wait))
}

// errPrefix begins every error Work gives River: an attempt error without
// it was written by River itself (see rescued).
const errPrefix = "classbot: "

func (w *worker) Work(ctx context.Context, job *river.Job[Args]) (err error) {
	start := time.Now()
	rep := Report{Attempt: job.Attempt, Rescued: rescued(job.Errors)}
	from := job.CreatedAt
	if job.Attempt > 1 && !job.ScheduledAt.IsZero() {
		from = job.ScheduledAt
	}
	rep.Wait = max(0, start.Sub(from))
	defer func() {
		rep.Run = time.Since(start)
		var snooze *rivertype.JobSnoozeError
		switch {
		case errors.As(err, &snooze):
		case err != nil:
			rep.Retry, rep.Outcome = true, ""
			if job.Attempt >= job.MaxAttempts {
				w.discarded(ctx, job.Args)
			}
			err = errors.New(errPrefix + err.Error())
		}
		if f := w.q.cfg.ObserveFunc; f != nil {
			f(rep)
		}
	}()

	a := job.Args
	reopen, ok := w.q.reopeners[a.Platform]
	if !ok {
		// A job of the Name queue (enqueued before the queues per
		// platform) and this process has no adapter for its platform: put
		// it back, attempts untouched, for a process that has one.
		rep.Snoozed = SnoozeNoPlatform
		return river.JobSnooze(w.q.cfg.PlatformSnooze)
	}
	// A failed read is a retry, never "not answered".
	row, err := w.q.store.ReadJob(ctx, a.Platform, a.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil // purged: nothing left to answer
	case err != nil:
		return fmt.Errorf("reading the command: %w", err)
	case !row.RepliedAt.IsZero() || row.Input == nil:
		// Answered and recorded by an earlier attempt whose end River did
		// not hear of (a crash, a timeout), or ended: nothing more to do.
		rep.Outcome = row.Outcome
		return nil
	}
	var qc bot.QueuedCommand
	if err := json.Unmarshal(row.Input, &qc); err != nil {
		return fmt.Errorf("the command's job_input: %w", err)
	}
	var outbox *bot.QueuedAnswer
	if row.Outbox != nil {
		outbox = new(bot.QueuedAnswer)
		if err := json.Unmarshal(row.Outbox, outbox); err != nil {
			return fmt.Errorf("the command's outbox: %w", err)
		}
	}
	c := qc.Command
	r, err := reopen.Reopen(ctx, c, qc.Address)
	if err != nil {
		// The error may quote the address: log it, keep it out of River.
		w.q.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "queue: reopening the reply failed",
			slog.String("platform", c.Platform), slog.String("interaction", c.InteractionID), slog.Any("err", err))
		return fmt.Errorf("reopening the %s reply failed", c.Platform)
	}
	out, err := w.d.RunQueued(ctx, bot.QueuedRun{
		Command: c, Responder: r,
		Attempt: job.Attempt, Final: job.Attempt >= job.MaxAttempts,
		Outbox: outbox, WorkBudget: w.q.cfg.JobTimeout,
		Posts: &postLog{st: w.q.store, platform: c.Platform, id: c.InteractionID, posted: row.Posted},
		SaveAnswer: func(ctx context.Context, ans bot.QueuedAnswer) error {
			b, err := json.Marshal(ans)
			if err != nil {
				return err
			}
			return w.q.store.SaveOutbox(ctx, c.Platform, c.InteractionID, b)
		},
		Finish: w.q.store.FinishJob,
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil // the command ended meanwhile
	case errors.Is(err, bot.ErrInterrupted):
		// A shutdown: put the job back without using an attempt.
		rep.Snoozed = SnoozeStopping
		return river.JobSnooze(stoppingSnooze)
	}
	rep.Outcome = out
	return err
}

// postLog is a command's bot.PostLog over its ledger row's posted column.
type postLog struct {
	st           *store.Postgres
	platform, id string
	mu           sync.Mutex
	posted       map[string]string
}

func (p *postLog) Posted(kind string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.posted[kind]
}

func (p *postLog) RecordPost(ctx context.Context, kind, msgID string) error {
	if err := p.st.RecordPost(ctx, p.platform, p.id, kind, msgID); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.posted == nil {
		p.posted = map[string]string{}
	}
	p.posted[kind] = msgID
	return nil
}

// discarded ends the command of a job River is about to discard (its last
// attempt failed): the ledger row keeps its outcome, and nothing of the
// student's stays for a job that will not run again.
func (w *worker) discarded(ctx context.Context, a Args) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bot.QueueReplyTimeout)
	defer cancel()
	in := store.Interaction{Platform: a.Platform, ID: a.ID, Outcome: bot.OutcomeError}
	if err := w.q.store.FinishJob(fctx, in); err != nil && !errors.Is(err, store.ErrNotFound) {
		w.q.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "queue: clearing a discarded command's row failed",
			slog.String("platform", a.Platform), slog.String("interaction", a.ID), slog.Any("err", err))
	}
}

// rescued reports whether the job's last attempt error was written by
// River (its rescuer, for a job left running by a crashed process) rather
// than returned by Work, whose errors all begin with errPrefix. Jobs that
// time out or are snoozed by Work never reach River without Work's error.
func rescued(errs []rivertype.AttemptError) bool {
	return len(errs) > 0 && !strings.HasPrefix(errs[len(errs)-1].Error, errPrefix)
}

// Package queue is classbot's queue mode on River (riverqueue.com): durable
// jobs in the PostgreSQL database classbot already uses. A command is
// recorded (its ledger row and its job, in one transaction of the store's
// group commit) before the acknowledgement; River workers in any process on
// the same database run its work through the bot's Dispatcher and post the
// follow-up; the answer's record and the job's completion commit together.
// A crash, a deploy or a kill -9 loses nothing: a job that was running is
// rescued and run again, and reopened Responders answer idempotently.
package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/store"
)

// Name is the River queue classbot's jobs go to.
const Name = "classbot"

// Defaults of Config's fields, and why.
const (
	// DefaultWorkers is QUEUE_WORKERS' default: jobs running at once in one
	// process. A job mostly waits on the model (LLM_MAX_CONCURRENCY bounds
	// the calls), so it is as generous as MAX_IN_FLIGHT's default.
	DefaultWorkers = 1000
	// DefaultJobTimeout bounds the work of one attempt of one job (its
	// store write and its model calls; the follow-up then gets
	// bot.QueueReplyTimeout more). It is what a brief answer from a hosted
	// model needs, /ask's two calls (search, then answer) included, and
	// short enough that a job left running by a kill -9 runs again well
	// within a minute (see DefaultRescueAfter). An attempt that runs out
	// is tried again; for a slow (reasoning) model raise it with
	// QUEUE_JOB_TIMEOUT, and the rescue takes as much longer.
	DefaultJobTimeout = 10 * time.Second
	// DefaultRescueAfter is how long a job may stay "running" before River
	// takes it for a crashed process's and runs it again: the attempt's
	// time, its reply's, and a second to spare, so a healthy attempt is
	// never run twice. After a kill -9 the next leader's rescuer, which
	// runs when it takes over (about 15 s after the crash: River's leader
	// lease) and then every 30 s, finds the job stuck at its first or
	// second look: measured 23 s from restart to the last of 500 answers
	// with a 10 s job timeout, 51–54 s with 20 s.
	DefaultRescueAfter = DefaultJobTimeout + bot.QueueReplyTimeout + time.Second
	// DefaultMaxAttempts: with the retry delays of NextRetry (2 s doubling
	// to 60 s) ten attempts span about five minutes of outage, and with
	// their timeouts stay inside a Discord token's 15 minutes.
	DefaultMaxAttempts = 10
)

// Config configures a Queue. Zero fields take their defaults.
type Config struct {
	// Workers is QUEUE_WORKERS: jobs this process runs at once. Negative:
	// none (an HTTP-only replica that only enqueues). Zero: DefaultWorkers.
	Workers int
	// JobTimeout bounds one attempt of a job. Default DefaultJobTimeout.
	JobTimeout time.Duration
	// RescueAfter is River's RescueStuckJobsAfter. Default JobTimeout +
	// bot.QueueReplyTimeout + 1 s; never less.
	RescueAfter time.Duration
	// MaxAttempts is how many times a job is tried. Default DefaultMaxAttempts.
	MaxAttempts int
	// RetryBase is the first retry's delay; each next one doubles, up to
	// RetryMax. Defaults 2 s and 60 s.
	RetryBase, RetryMax time.Duration
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
}

func (c Config) withDefaults() Config {
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.JobTimeout <= 0 {
		c.JobTimeout = DefaultJobTimeout
	}
	if minRescue := c.JobTimeout + bot.QueueReplyTimeout + time.Second; c.RescueAfter < minRescue {
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
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Args are a job's arguments: the command and where its answer goes.
type Args struct {
	bot.QueuedCommand
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

// New creates the River client on st's pool and installs the store's queue
// hooks, so Enqueue and the workers' completions join the group commit.
// Migrate must have run.
func New(st *store.Postgres, cfg Config) (*Queue, error) {
	cfg = cfg.withDefaults()
	q := &Queue{cfg: cfg, store: st}
	q.worker = &worker{q: q}
	workers := river.NewWorkers()
	river.AddWorker(workers, q.worker)
	rcfg := &river.Config{
		ID:                   cfg.ID,
		Workers:              workers,
		JobTimeout:           cfg.JobTimeout,
		RescueStuckJobsAfter: cfg.RescueAfter,
		MaxAttempts:          cfg.MaxAttempts,
		Logger:               riverLogger(cfg.Logger),
		// Job rows hold the command (a registration's email) and the
		// platform's reply token: keep finished ones briefly.
		CompletedJobRetentionPeriod: time.Hour,
		CancelledJobRetentionPeriod: 24 * time.Hour,
		DiscardedJobRetentionPeriod: 7 * 24 * time.Hour,
	}
	if cfg.Workers > 0 {
		rcfg.Queues = map[string]river.QueueConfig{Name: {MaxWorkers: cfg.Workers}}
	}
	client, err := river.NewClient(riverpgxv5.New(st.Pool()), rcfg)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	q.client = client
	st.SetQueueHooks(store.QueueHooks{Enqueue: q.insert, Complete: q.complete})
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

// Enqueue records the command's ledger row and its job in one transaction
// (bot.Enqueuer).
func (q *Queue) Enqueue(ctx context.Context, in store.Interaction, job bot.QueuedCommand) error {
	return q.store.RecordAndEnqueue(ctx, in, Args{job})
}

// insert is the store's Enqueue hook: one multi-row insert for a batch.
func (q *Queue) insert(ctx context.Context, tx pgx.Tx, jobs []any) error {
	params := make([]river.InsertManyParams, len(jobs))
	for i, j := range jobs {
		args, ok := j.(Args)
		if !ok {
			return fmt.Errorf("queue: a job of type %T", j)
		}
		params[i] = river.InsertManyParams{Args: args, InsertOpts: &river.InsertOpts{Queue: Name, MaxAttempts: q.cfg.MaxAttempts}}
	}
	// InsertManyTx (one multi-row INSERT) rather than InsertManyFastTx
	// (COPY through a temporary table): measured faster for batches of
	// this size, and it is one statement less in the transaction.
	_, err := q.client.InsertManyTx(ctx, tx, params)
	return err
}

// complete is the store's Complete hook: what river.JobCompleteTx does for
// one job, for a batch of them in one statement (JobCompleteTx needs the
// worker's context and runs one statement per job).
func (q *Queue) complete(ctx context.Context, tx pgx.Tx, ids []int64) error {
	now := time.Now()
	p := &riverdriver.JobSetStateIfRunningManyParams{
		ID:              ids,
		Attempt:         make([]*int, len(ids)),
		ErrData:         make([][]byte, len(ids)),
		FinalizedAt:     make([]*time.Time, len(ids)),
		MetadataDoMerge: make([]bool, len(ids)),
		MetadataUpdates: make([][]byte, len(ids)),
		ScheduledAt:     make([]*time.Time, len(ids)),
		State:           make([]rivertype.JobState, len(ids)),
	}
	for i := range ids {
		p.FinalizedAt[i] = &now
		p.State[i] = rivertype.JobStateCompleted
	}
	_, err := q.client.Pilot().JobSetStateIfRunningMany(ctx, q.client.Driver().UnwrapExecutor(tx), p)
	return err
}

// Start runs the workers (if Config.Workers > 0) until Stop: they run the
// work through d and answer through the Reopener of the command's platform
// (by bot.PlatformSlack, ...). A job of a platform missing here waits for
// a process that has it.
func (q *Queue) Start(ctx context.Context, d *bot.Dispatcher, reopeners map[string]bot.Reopener) error {
	q.worker.d, q.reopeners = d, reopeners
	if q.cfg.Workers < 0 {
		return nil
	}
	if err := q.client.Start(ctx); err != nil {
		return fmt.Errorf("queue: starting the workers: %w", err)
	}
	return nil
}

// Stop stops fetching jobs and waits for the running ones until ctx is
// done; then it cancels them: they are tried again later, here or on
// another replica, so a deploy loses nothing.
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

// NextRetry waits RetryBase, doubling with each attempt, up to RetryMax.
func (w *worker) NextRetry(job *river.Job[Args]) time.Time {
	cfg := w.q.cfg
	wait := cfg.RetryBase
	for i := 1; i < job.Attempt && wait < cfg.RetryMax; i++ {
		wait *= 2
	}
	return time.Now().Add(min(wait, cfg.RetryMax))
}

func (w *worker) Work(ctx context.Context, job *river.Job[Args]) error {
	start := time.Now()
	rep := Report{Attempt: job.Attempt, Rescued: rescued(job.Errors)}
	from := job.CreatedAt
	if job.Attempt > 1 && !job.ScheduledAt.IsZero() {
		from = job.ScheduledAt
	}
	rep.Wait = max(0, start.Sub(from))
	defer func() {
		rep.Run = time.Since(start)
		if f := w.q.cfg.ObserveFunc; f != nil {
			f(rep)
		}
	}()

	c := job.Args.Command
	reopen, ok := w.q.reopeners[c.Platform]
	if !ok {
		// A job from a replica configured for a platform this one is not:
		// leave it to one that is.
		rep.Retry = true
		return fmt.Errorf("queue: no %s adapter in this process to answer through", c.Platform)
	}
	r, err := reopen.Reopen(ctx, c, job.Args.Address)
	if err != nil {
		rep.Retry = true
		return fmt.Errorf("queue: reopening the %s reply: %w", c.Platform, err)
	}
	out, err := w.d.RunQueued(ctx, bot.QueuedRun{
		Command: c, Responder: r,
		Attempt: job.Attempt, Final: job.Attempt >= job.MaxAttempts,
		Complete: func(ctx context.Context, in store.Interaction) error {
			return w.q.store.FinishAndComplete(ctx, in, job.ID)
		},
	})
	rep.Outcome = out
	if err != nil {
		rep.Retry, rep.Outcome = true, ""
	}
	return err
}

// rescued reports whether the job's last error is River's rescuer's.
func rescued(errs []rivertype.AttemptError) bool {
	return len(errs) > 0 && strings.Contains(strings.ToLower(errs[len(errs)-1].Error), "rescue")
}

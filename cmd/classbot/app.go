package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/classbot/classbot/agent"
	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/internal/logctx"
	"github.com/classbot/classbot/queue"
	"github.com/classbot/classbot/store"
)

// appStore is the store as the program holds it: what the bot needs, plus
// health and lifecycle.
type appStore interface {
	bot.Store
	Ping(ctx context.Context) error
	PurgeInteractions(ctx context.Context, olderThan time.Time) (int64, error)
	Close()
	courseStore // course notes and /ask memory (course.go)
	bot.Roster  // /roster and roster export (roster.go)
}

var (
	_ appStore  = (*store.Postgres)(nil)
	_ appStore  = (*store.Memory)(nil)
	_ bot.Agent = (*agent.Runner)(nil)
)

// app is classbot wired together from a Config.
type app struct {
	cfg       Config
	log       *slog.Logger
	store     appStore
	storeKind string // "postgres" or "memory"
	runner    *agent.Runner
	embedder  *agent.Embedder // LLM_EMBEDDING_MODEL's; nil: lexical search only (course.go)
	bot       *bot.Bot
	disp      *bot.Dispatcher
	metrics   *metrics
	course    courseSetup  // the course notes, if any (course.go)
	queue     *queue.Queue // queue mode's River client; nil in the other modes
}

// appOptions are the knobs that subcommands other than serve turn.
type appOptions struct {
	logLevel        slog.Level
	offlineLatency  time.Duration             // the offline model's latency
	wrapStore       func(bot.Store) bot.Store // the demo's simulated store latency
	observe         func(bot.Trace)
	skipCourseIndex bool // don't index COURSE_DIR into the default course at start (course commands, demo ask)
	courseNotes     bool // give /ask the notes' search tool even with no course in the database (demo ask, course eval)
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	// logctx adds the interaction id to lines logged while handling a command.
	return slog.New(logctx.NewHandler(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})))
}

// newApp opens the store (migrating PostgreSQL), the model runner, the bot
// and its dispatcher. Close it with close.
func newApp(ctx context.Context, cfg Config, e env, opts appOptions) (*app, error) {
	log := newLogger(e.stderr, opts.logLevel)
	a := &app{cfg: cfg, log: log}

	// The metrics come first: the store's group commit reports to them.
	a.metrics = newMetrics(func() int { return a.disp.InFlight() })
	if cfg.DatabaseURL == "" {
		log.Warn("DATABASE_URL is not set: using the in-memory store; registrations are lost when classbot stops")
		a.store, a.storeKind = store.NewMemory(), "memory"
	} else {
		pg, err := store.OpenWithConfig(ctx, cfg.DatabaseURL, store.Config{ObserveBatchFunc: a.metrics.observeBatch})
		if err != nil {
			return nil, err
		}
		// River's tables too, whatever the mode: switching to queue mode
		// later needs no separate step.
		if _, _, err := queue.Migrate(ctx, pg.Pool()); err != nil {
			pg.Close()
			return nil, err
		}
		a.store, a.storeKind = pg, "postgres"
		if cfg.Mode == bot.ModeQueue {
			workers := cfg.QueueWorkers
			if workers == 0 {
				workers = -1 // queue.Config: none
			}
			q, err := queue.New(pg, queue.Config{
				Workers:     workers,
				JobTimeout:  cfg.QueueJobTimeout,
				Logger:      log,
				ObserveFunc: a.metrics.observeJob,
			})
			if err != nil {
				pg.Close()
				return nil, err
			}
			a.queue = q
			a.metrics.watchQueue(pg.Pool())
		}
	}
	if cfg.Mode == bot.ModeQueue && a.queue == nil {
		return nil, errors.New("HANDLER_MODE=queue keeps its jobs in PostgreSQL: set DATABASE_URL")
	}

	// A command that never calls the model (course index, course search)
	// does not warn that none is configured: its runner logs errors only.
	agentLog := log
	if !e.callsModel {
		agentLog = newLogger(e.stderr, max(opts.logLevel, slog.LevelError))
	}
	a.runner = agent.NewRunner(agentConfig(cfg, agentLog, opts.offlineLatency, a.metrics.modelRetries.Inc))
	if cfg.LLMEmbeddingModel != "" {
		if a.storeKind == "postgres" {
			a.embedder = agent.NewEmbedder(agentConfig(cfg, agentLog, 0, a.metrics.modelRetries.Inc), cfg.LLMEmbeddingModel)
		} else {
			log.Warn("LLM_EMBEDDING_MODEL is set but vectors are kept in PostgreSQL: set DATABASE_URL; searching the notes by their words only")
		}
	}

	var s bot.Store = a.store
	if opts.wrapStore != nil {
		s = opts.wrapStore(s)
	}
	botOpts, err := a.courseBotOptions(ctx, opts.skipCourseIndex, opts.courseNotes)
	if err != nil {
		a.store.Close()
		return nil, err
	}
	botOpts.CourseInstructions, botOpts.Logger = cfg.CourseInstructions, log
	botOpts.Teachers, botOpts.Roster, botOpts.Courses = cfg.TeacherUserIDs, a.store, a.store
	botOpts.ReindexFunc = a.reindexCourse
	botOpts.Privacy, _ = a.store.(bot.Privacy) // both stores: /whoami and /forget, past the demo's wrapper
	a.bot = bot.New(s, a.runner, botOpts)
	var enq bot.Enqueuer
	if a.queue != nil {
		enq = a.queue
	}
	a.disp = bot.NewDispatcher(ctx, a.bot, bot.Config{
		Mode:             cfg.Mode,
		MaxInFlight:      cfg.MaxInFlight,
		AutoInlineBudget: cfg.AutoInlineBudget,
		StudentAskRate:   offIfZero(cfg.StudentAskRate),
		Enqueuer:         enq,
		AckFunc:          a.metrics.observeAck,
		Logger:           log,
		ObserveFunc: func(t bot.Trace) {
			a.metrics.observe(t)
			if opts.observe != nil {
				opts.observe(t)
			}
		},
	})
	return a, nil
}

// agentConfig maps the environment onto the runner: neither a key nor a
// base URL means the offline model.
func agentConfig(cfg Config, log *slog.Logger, offlineLatency time.Duration, onRetry func()) agent.Config {
	return agent.Config{
		BaseURL:        cfg.LLMBaseURL,
		APIKey:         cfg.LLMAPIKey,
		Model:          cfg.LLMModel,
		MaxConcurrency: cfg.LLMMaxConcurrency,
		ClassRPM:       cfg.ClassLLMRPM,
		MaxTokens:      cfg.LLMMaxTokens,
		Offline:        cfg.LLMAPIKey == "" && cfg.LLMBaseURL == "",
		OfflineLatency: offlineLatency,
		Logger:         log,
		OnRetryFunc:    onRetry,
	}
}

// describe says in one line what the app runs on.
func (a *app) describe() string {
	model := a.runner.Model()
	s := fmt.Sprintf("mode=%s store=%s model=%s", a.disp.Mode(), a.storeKind, model)
	if a.queue != nil {
		s += fmt.Sprintf(" queue_workers=%d", a.cfg.QueueWorkers)
	}
	return s
}

func (a *app) close() { a.store.Close() }

// offIfZero maps a variable's 0 ("no limit") to the bot's negative.
func offIfZero(f float64) float64 {
	if f == 0 {
		return -1
	}
	return f
}

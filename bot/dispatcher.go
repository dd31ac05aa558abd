package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/classbot/classbot/agent"
	"github.com/classbot/classbot/internal/logctx"
	"github.com/classbot/classbot/store"
)

// Mode says where the Dispatcher runs a command's work.
type Mode string

// The modes: the work inside the platform's request (sync), in a goroutine
// after the acknowledgement (async), as a durable job in PostgreSQL that
// any replica's workers run (queue), or started at once and answered
// inline if it ends within Config.AutoInlineBudget, else acknowledged then
// and followed up (auto).
const (
	ModeSync  Mode = "sync"
	ModeAsync Mode = "async"
	ModeQueue Mode = "queue"
	ModeAuto  Mode = "auto"
)

// ParseMode reads HANDLER_MODE or --mode.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeSync, ModeAsync, ModeQueue, ModeAuto:
		return m, nil
	default:
		return "", fmt.Errorf("handler mode %q is not known: use sync, async, queue or auto", s)
	}
}

// Trace is what happened to one command: the ledger row's moments, the time
// spent in the store and the agent, and the outcome. The Dispatcher hands it
// to Config.ObserveFunc when the command is finished.
type Trace struct {
	Platform, InteractionID, Command string
	Mode                             Mode

	Received, Acknowledged, Stored, AgentDone, Replied time.Time

	Store time.Duration // time in the store write (zero if none)
	Agent time.Duration // time in the agent call (zero if none)

	// Saved is set once the command's store write is committed (a
	// registration): a later failure must not tell the student that
	// nothing happened.
	Saved bool

	// Attempt is the queued job's attempt (1 for the first); 0 outside
	// queue mode.
	Attempt int

	Outcome string // one of the Outcome constants
	Err     error  // for operators: the whole chain; never shown to students

	// queued is set in a queued attempt: /ask then leaves its memory turn
	// in remember, stored only once the answer is in the outbox, so that
	// no later attempt stores it again.
	queued   bool
	remember func(context.Context) bool
}

// Total is the time from receipt to the answer's delivery.
func (t *Trace) Total() time.Duration {
	if t.Replied.IsZero() {
		return 0
	}
	return t.Replied.Sub(t.Received)
}

func (t *Trace) fail(outcome string, err error) {
	t.Outcome, t.Err = outcome, err
}

func (t *Trace) interaction(c Command) store.Interaction {
	return store.Interaction{
		Platform: c.Platform, ID: c.InteractionID, Command: t.Command, Mode: string(t.Mode),
		Workspace: c.Workspace, Channel: c.Channel, User: ledgerUser(c),
		ReceivedAt: t.Received, AcknowledgedAt: t.Acknowledged, StoredAt: t.Stored,
		AgentDoneAt: t.AgentDone, RepliedAt: t.Replied, Outcome: t.Outcome,
	}
}

// Config configures a Dispatcher. Every field's zero value means its default.
type Config struct {
	// Mode is HANDLER_MODE. Default ModeAsync.
	Mode Mode
	// MaxInFlight is MAX_IN_FLIGHT: commands this Dispatcher holds at once,
	// in every mode, from arrival until its part ends: the answer's
	// delivery in sync and async mode, the command's durable record and
	// acknowledgement in queue mode (the queue's workers bound the work
	// there). Past it a command is answered at once with "busy", before
	// any database or model work. Default 1000.
	MaxInFlight int
	// CommandTimeout bounds one command's work (store and agent). It must stay
	// well under Discord's 15-minute token life so the student hears back.
	// Default 2 minutes.
	CommandTimeout time.Duration
	// ReplyTimeout bounds delivering one answer (all its parts) and writing
	// the ledger row after the work. Default 15 seconds.
	ReplyTimeout time.Duration
	// AckBudget bounds how long the first response waits on the store to
	// record the delivery in the ledger. Past it (a slow disk, a hung or
	// unreachable database) the command goes ahead: duplicates are caught
	// by an in-memory window of recent ids meanwhile, and the ledger row is
	// written when the database catches up. Default 50 ms, far inside the
	// platforms' 3-second deadline whatever PostgreSQL does. Queue mode
	// does not use it: its acknowledgement waits for the commit, up to
	// EnqueueBudget.
	AckBudget time.Duration
	// DedupeWindow is how long an interaction id is remembered in memory to
	// recognise a retried or doubled delivery. Default 15 minutes (the life
	// of a Discord interaction token; Slack retries within minutes).
	DedupeWindow time.Duration
	// Enqueuer records queue mode's commands durably (package queue). It
	// must be set in ModeQueue.
	Enqueuer Enqueuer
	// EnqueueBudget bounds how long queue mode's acknowledgement waits for
	// the command's durable commit. Past it the student hears, within the
	// platforms' 3-second deadline, that the command could not be taken
	// (it never reached the database's queue: trying again is safe) or
	// that it is slow to confirm (it may still commit, and the job then
	// answers). Default 2 seconds.
	EnqueueBudget time.Duration
	// AutoInlineBudget is AUTO_INLINE_BUDGET: in ModeAuto, work that ends
	// within it is answered inline; past it the command is acknowledged
	// and the same work's answer follows up. It must leave room under the
	// platforms' 3-second deadline. Default 2 seconds.
	AutoInlineBudget time.Duration
	// StudentAskRate is STUDENT_ASK_RATE: /ask commands per student per
	// minute, a minute's worth at once at most. Over it the student is
	// told kindly when to try again, before any model call or memory
	// write. The count is this process's. Default 5; negative: no limit.
	StudentAskRate float64
	// MaxStudentLimits bounds the students whose /ask rate is tracked; past
	// it the least recently seen is forgotten. Default 100,000.
	MaxStudentLimits int
	// Logger gets one line per command. Default slog.Default().
	Logger *slog.Logger
	// AckFunc, if set, is called in queue mode once a command has been
	// acknowledged, with its trace so far: there the acknowledgement and the
	// end of the command happen in different processes (ObserveFunc gets
	// the worker's trace, which has no Acknowledged moment). Like
	// ObserveFunc, it may be called from many goroutines at once.
	AckFunc func(Trace)
	// ObserveFunc, if set, is called once per finished command (metrics, the
	// demo's timing line). It may be called from many goroutines at once; a
	// panic in it is recovered and logged.
	ObserveFunc func(Trace)
}

func (c Config) withDefaults() Config {
	if c.Mode == "" {
		c.Mode = ModeAsync
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 1000
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = 2 * time.Minute
	}
	if c.ReplyTimeout <= 0 {
		c.ReplyTimeout = 15 * time.Second
	}
	if c.AckBudget <= 0 {
		c.AckBudget = 50 * time.Millisecond
	}
	if c.DedupeWindow <= 0 {
		c.DedupeWindow = 15 * time.Minute
	}
	if c.EnqueueBudget <= 0 {
		c.EnqueueBudget = 2 * time.Second
	}
	if c.StudentAskRate == 0 {
		c.StudentAskRate = 5
	}
	if c.MaxStudentLimits <= 0 {
		c.MaxStudentLimits = 100_000
	}
	if c.AutoInlineBudget <= 0 {
		c.AutoInlineBudget = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Dispatcher runs commands in its mode. It is the one owner of command
// concurrency: adapters hand it work (Dispatch from a request's goroutine,
// Go from an event loop) and run no goroutines or limits of their own. It is
// safe for concurrent use; every adapter shares one. Create it with
// NewDispatcher and stop it with Shutdown.
//
// Every command holds one of MaxInFlight slots from its arrival to its end
// (in async mode, until the follow-up is delivered; in queue mode, until
// its record and acknowledgement), and Shutdown waits for all of them. The slots are a semaphore and a WaitGroup rather than an
// errgroup: a command takes its slot before its acknowledgement, on the
// caller's goroutine (an HTTP request), and keeps it in a worker goroutine
// afterwards; errgroup's TryGo covers only goroutines it starts itself.
type Dispatcher struct {
	bot   *Bot
	cfg   Config
	log   *slog.Logger
	slots chan struct{} // commands in progress; its capacity is MaxInFlight

	recent *recentIDs // deliveries seen lately, for duplicates without the database
	asks   *askLimits // STUDENT_ASK_RATE; nil: no limit

	mu      sync.RWMutex // guards closing against wg.Add
	closing bool
	closed  chan struct{} // closed when Shutdown begins
	wg      sync.WaitGroup

	stopCtx context.Context // cancelled when Shutdown gives up waiting
	stop    context.CancelFunc

	now func() time.Time // the clock of place-in-line edits
}

// NewDispatcher returns a Dispatcher for b. ctx's values are kept for the
// background work; its cancellation is not (Shutdown ends the work).
// ModeQueue needs cfg.Enqueuer; without one NewDispatcher panics.
func NewDispatcher(ctx context.Context, b *Bot, cfg Config) *Dispatcher {
	cfg = cfg.withDefaults()
	if cfg.Mode == ModeQueue && cfg.Enqueuer == nil {
		panic("bot: queue mode without an Enqueuer")
	}
	d := &Dispatcher{
		bot: b, cfg: cfg, log: cfg.Logger,
		slots:  make(chan struct{}, cfg.MaxInFlight),
		recent: newRecentIDs(cfg.DedupeWindow, maxRecentIDs),
		asks:   newAskLimits(cfg.StudentAskRate, cfg.MaxStudentLimits),
		closed: make(chan struct{}),
		now:    time.Now,
	}
	d.stopCtx, d.stop = context.WithCancel(context.WithoutCancel(ctx))
	return d
}

// Mode reports the Dispatcher's mode.
func (d *Dispatcher) Mode() Mode { return d.cfg.Mode }

// InFlight reports the commands in progress.
func (d *Dispatcher) InFlight() int { return len(d.slots) }

// Closing returns a channel that is closed once Shutdown has begun: from
// then on every new command is answered "restarting".
func (d *Dispatcher) Closing() <-chan struct{} { return d.closed }

// maxRecentIDs bounds the in-memory duplicate window: 100,000 ids is a few
// MB, and more deliveries than a whole school sends in DedupeWindow.
const maxRecentIDs = 100_000

// admit takes a slot for one command. It fails with OutcomeRestarting once
// Shutdown has begun and with OutcomeBusy when MaxInFlight commands are in
// progress. On success the caller must call d.release exactly once.
func (d *Dispatcher) admit() (refusal string) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closing {
		return OutcomeRestarting
	}
	select {
	case d.slots <- struct{}{}:
		d.wg.Add(1)
		return ""
	default:
		return OutcomeBusy
	}
}

func (d *Dispatcher) release() {
	<-d.slots
	d.wg.Done()
}

// newTrace starts the trace of c.
func (d *Dispatcher) newTrace(c Command) *Trace {
	tr := &Trace{Platform: c.Platform, InteractionID: c.InteractionID, Command: "unknown", Mode: d.cfg.Mode, Received: c.ReceivedAt}
	if spec := lookup(c.Name); spec != nil {
		tr.Command = spec.Name
	}
	return tr
}

// Dispatch handles one command on the caller's goroutine (an HTTP request's)
// and returns once the platform has its first response: the answer itself
// (sync mode, help, bad input, busy, restarting) or the acknowledgement
// (async mode, with the work going on in a worker the Dispatcher owns).
// It returns the Responder's error for that first response, if any; every
// other failure becomes a kind reply to the student and a log line.
func (d *Dispatcher) Dispatch(ctx context.Context, c Command, r Responder) error {
	if c.ReceivedAt.IsZero() {
		c.ReceivedAt = time.Now()
	}
	// Every line logged while handling the command names it.
	ctx = logctx.WithInteraction(ctx, c.InteractionID)
	tr := d.newTrace(c)
	if refusal := d.admit(); refusal != "" {
		return d.refuse(ctx, r, tr, refusal)
	}
	return d.dispatch(ctx, c, r, tr)
}

// Go hands one command to the Dispatcher for transports whose event loop
// must keep reading (Slack Socket Mode, the Discord gateway): it returns at
// once, and the command runs, first response included, in a goroutine the
// Dispatcher owns, bounded by MaxInFlight and drained by Shutdown. ctx's
// values are kept, its cancellation is not: the work ends with its own
// timeouts or at Shutdown. A command refused for being over the limit or
// during shutdown is answered "busy" or "restarting" before Go returns.
// A panic anywhere in the command is recovered, logged, and answered with
// an apology if no first response had been given.
func (d *Dispatcher) Go(ctx context.Context, c Command, r Responder) {
	if c.ReceivedAt.IsZero() {
		c.ReceivedAt = time.Now()
	}
	base := logctx.WithInteraction(context.WithoutCancel(ctx), c.InteractionID)
	tr := d.newTrace(c)
	if refusal := d.admit(); refusal != "" {
		if err := d.refuse(base, r, tr, refusal); err != nil {
			d.log.LogAttrs(base, slog.LevelWarn, "first response failed", slog.String("platform", c.Platform), slog.Any("err", err))
		}
		return
	}
	go func() {
		// Sync work here is bounded by CommandTimeout and ReplyTimeout;
		// the stop context ends it when Shutdown gives up waiting.
		ctx, cancel := context.WithCancel(base)
		defer cancel()
		stopWatch := context.AfterFunc(d.stopCtx, cancel)
		defer stopWatch()
		if err := d.dispatch(ctx, c, r, tr); err != nil {
			d.log.LogAttrs(ctx, slog.LevelWarn, "first response failed", slog.String("platform", c.Platform), slog.Any("err", err))
		}
	}()
}

// refuse answers a command that was not admitted, at once and without
// touching the store: nothing was done, so a retry is welcome.
func (d *Dispatcher) refuse(ctx context.Context, r Responder, tr *Trace, outcome string) error {
	text := busyText
	if outcome == OutcomeRestarting {
		text = restartingText
	}
	tr.Outcome = outcome
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.ReplyTimeout)
	defer cancel()
	err := d.safeRespond(rctx, r, Reply{Text: text, Ephemeral: true})
	tr.Acknowledged = time.Now()
	tr.Replied = tr.Acknowledged
	if err != nil {
		tr.Err = fmt.Errorf("respond: %w", err)
	}
	d.observe(rctx, tr)
	return err
}

// dispatch runs one admitted command. It owns the command's slot: it
// releases it before returning, or hands it to the async worker.
func (d *Dispatcher) dispatch(ctx context.Context, c Command, r Responder, tr *Trace) (err error) {
	handedOff := false
	defer func() {
		if p := recover(); p != nil {
			tr.fail(OutcomePanic, fmt.Errorf("panic: %v\n%s", p, debug.Stack()))
			if tr.Acknowledged.IsZero() {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.ReplyTimeout)
				err = d.safeRespond(rctx, r, Reply{Text: internalText, Ephemeral: true})
				cancel()
				tr.Acknowledged = time.Now()
			}
			d.observe(ctx, tr)
		}
		if !handedOff {
			d.release()
		}
	}()

	// A retry or a double delivery is acknowledged silently and not worked
	// on again: recognised in memory first (this process saw it lately),
	// then by the ledger (another replica, or before a restart).
	if !d.recent.add(c.Platform, c.InteractionID, time.Now()) {
		return d.duplicate(ctx, c, r, tr)
	}
	if d.cfg.Mode == ModeQueue {
		handedOff = true
		// A valid /ask over the student's rate gets no job at all.
		if _, work, _ := d.prepare(c, &Trace{}); work != nil {
			if reply, limited := d.limitAsk(c, tr); limited {
				return d.answerNow(ctx, c, r, tr, reply, ledgerInsert)
			}
		}
		return d.enqueue(ctx, c, r, tr)
	}
	// The ledger write is bounded by AckBudget: the first response never
	// waits longer on the database, however slow or unreachable it is.
	lctx, lcancel := context.WithTimeout(ctx, d.cfg.AckBudget)
	err = d.bot.store.RecordInteraction(lctx, tr.interaction(c))
	lcancel()
	switch {
	case err == nil:
	case errors.Is(err, store.ErrDuplicate):
		return d.duplicate(ctx, c, r, tr)
	case errors.Is(err, store.ErrInvalid):
		tr.fail(OutcomeError, fmt.Errorf("record interaction: %w", err))
		handedOff = true
		return d.answerNow(ctx, c, r, tr, Reply{Text: internalText, Ephemeral: true}, ledgerNone)
	default:
		// Slow or unreachable: serve the student anyway. The store keeps a
		// write whose caller gave up, so the row lands when the database
		// catches up; if it never does, the work's own store calls fail
		// and say so, and the in-memory window catches a redelivery.
		d.log.LogAttrs(ctx, slog.LevelWarn, "ledger insert not confirmed within the acknowledgement budget; serving anyway",
			slog.String("platform", c.Platform), slog.Duration("budget", d.cfg.AckBudget), slog.Any("err", err))
	}

	spec, work, answer := d.prepare(c, tr)
	if work == nil {
		handedOff = true
		return d.answerNow(ctx, c, r, tr, answer, ledgerFinish)
	}
	if reply, limited := d.limitAsk(c, tr); limited {
		handedOff = true
		return d.answerNow(ctx, c, r, tr, reply, ledgerFinish)
	}
	if reply, full := d.modelFull(c, tr); full {
		handedOff = true
		return d.answerNow(ctx, c, r, tr, reply, ledgerFinish)
	}

	if d.cfg.Mode == ModeSync {
		handedOff = true
		return d.runSync(ctx, c, r, tr, work)
	}
	if d.cfg.Mode == ModeAuto {
		handedOff = true
		return d.runAuto(ctx, c, r, tr, spec, work)
	}
	err = r.Ack(ctx, Reply{Text: spec.Ack, Ephemeral: spec.Ephemeral})
	tr.Acknowledged = time.Now()
	if err != nil {
		// The platform never heard from us: it will show its own error and
		// may deliver the command again (Socket Mode redelivers an
		// unacknowledged envelope). Don't work on a command nobody can hear
		// the answer to, and don't call its redelivery a duplicate.
		tr.fail(OutcomeAckFailed, fmt.Errorf("acknowledge: %w", err))
		d.recent.forget(c.Platform, c.InteractionID)
		handedOff = true
		d.settle(ctx, c, tr, ledgerFinish)
		return err
	}
	handedOff = true
	edits := d.newPlaceEdits(context.WithoutCancel(ctx), r, tr)
	edits.ack()
	go d.work(context.WithoutCancel(ctx), c, r, tr, work, edits)
	return nil
}

// prepare looks c up and prepares its work, which does no I/O. An unknown
// command or bad input has no work: prepare returns the immediate answer
// instead (help, or what to fix) and sets tr's outcome.
func (d *Dispatcher) prepare(c Command, tr *Trace) (*Spec, job, Reply) {
	spec := lookup(c.Name)
	if spec == nil {
		tr.Outcome = OutcomeHelp
		return nil, nil, Reply{Text: HelpText(), Ephemeral: true}
	}
	work, err := spec.prepare(d.bot, c)
	if err != nil {
		var ue *UserError
		if !errors.As(err, &ue) {
			ue = &UserError{Msg: internalText}
		}
		tr.fail(OutcomeInvalid, err)
		return spec, nil, Reply{Text: ue.Msg, Ephemeral: true}
	}
	// The model's slots are shared fairly between classes.
	class := ClassOf(c)
	return spec, func(ctx context.Context, concurrent bool, tr *Trace) Reply {
		return work(agent.WithArrival(agent.WithClass(ctx, class), tr.Received), concurrent, tr)
	}, Reply{}
}

// ClassOf names c's class for the model's fair share (agent.WithClass,
// CLASS_LLM_RPM): its platform, workspace or guild, and channel.
func ClassOf(c Command) string {
	return c.Platform + "/" + c.Workspace + "/" + c.Channel
}

// duplicate acknowledges a delivery seen before, silently, with the
// command's own visibility.
func (d *Dispatcher) duplicate(ctx context.Context, c Command, r Responder, tr *Trace) error {
	tr.Outcome = OutcomeDuplicate
	err := r.Ack(ctx, Reply{Ephemeral: d.visibility(c)})
	tr.Acknowledged = time.Now()
	d.observe(ctx, tr)
	return err
}

// visibility is whether c's answers are ephemeral: a duplicate delivery is
// acknowledged with the command's own visibility.
func (d *Dispatcher) visibility(c Command) bool {
	if spec := lookup(c.Name); spec != nil {
		return spec.Ephemeral
	}
	return true
}

// answerNow gives an immediate answer that needs no work, and records it
// (see settle); the caller hands over the command's slot. The answer and
// the ledger write are detached from ctx's cancellation and bounded by
// ReplyTimeout: a platform that closes the request after reading the first
// part must not cancel the rest, or the ledger's outcome.
func (d *Dispatcher) answerNow(ctx context.Context, c Command, r Responder, tr *Trace, reply Reply, ledger ledgerWrite) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.ReplyTimeout)
	defer cancel()
	err := d.safeRespond(rctx, r, reply)
	tr.Acknowledged = time.Now()
	tr.Replied = tr.Acknowledged
	if err != nil && tr.Err == nil {
		tr.Err = fmt.Errorf("respond: %w", err)
	}
	d.settle(ctx, c, tr, ledger)
	return err
}

// ledgerWrite is how settle records a command in the ledger.
type ledgerWrite uint8

const (
	ledgerNone   ledgerWrite = iota // nothing: no row, and none wanted
	ledgerFinish                    // the row exists: set its moments and outcome
	ledgerInsert                    // no row yet (queue mode answers before writing one): write it whole
)

// settle records a command whose answer has been given (its ledger row's
// outcome, the observer) and then releases its slot, in a goroutine: the
// ledger write must not hold the platform's request, or a kept-alive
// connection's next command waits behind a slow database. The slot, held
// until then, bounds these writes like any other work; Shutdown waits for
// them. The caller hands its slot over.
func (d *Dispatcher) settle(ctx context.Context, c Command, tr *Trace, ledger ledgerWrite) {
	base := context.WithoutCancel(ctx)
	go func() {
		defer d.release()
		lctx, cancel := context.WithTimeout(base, d.cfg.ReplyTimeout)
		defer cancel()
		switch ledger {
		case ledgerFinish:
			d.finishLedger(lctx, c, tr)
		case ledgerInsert:
			if err := d.bot.store.RecordInteraction(lctx, tr.interaction(c)); err != nil && !errors.Is(err, store.ErrDuplicate) {
				d.log.LogAttrs(lctx, slog.LevelWarn, "ledger insert failed", slog.String("platform", c.Platform), slog.Any("err", err))
			}
		}
		d.observe(lctx, tr)
	}()
}

// runSync does the work inside the platform's request: store, then agent,
// then the answer as the first response; the ledger row follows after the
// request (see settle), and the caller hands over the command's slot.
func (d *Dispatcher) runSync(ctx context.Context, c Command, r Responder, tr *Trace, work job) error {
	wctx, cancel := context.WithTimeout(ctx, d.cfg.CommandTimeout)
	reply := d.safeRun(wctx, work, tr)
	cancel()
	// The answer's later parts follow after the first response has been
	// read, often after the platform closed the request: answerInline
	// detaches them.
	return d.answerInline(ctx, c, r, tr, reply)
}

// work runs one acknowledged command to its follow-up and releases its
// slot. base carries the request's values but not its cancellation.
func (d *Dispatcher) work(base context.Context, c Command, r Responder, tr *Trace, w job, edits *placeEdits) {
	defer d.release()

	ctx, cancel := context.WithTimeout(edits.context(base), d.cfg.CommandTimeout)
	defer cancel()
	stopWatch := context.AfterFunc(d.stopCtx, cancel)
	defer stopWatch()

	reply := d.runBounded(withStreamer(ctx, r), w, tr)
	edits.finish()
	d.followUp(base, c, r, tr, reply)
}

// runBounded runs w under ctx (CommandTimeout, Shutdown) and turns a
// context that ended before the work into the kind answer for it.
func (d *Dispatcher) runBounded(ctx context.Context, w job, tr *Trace) Reply {
	reply := d.safeRun(ctx, w, tr)
	if tr.Outcome != OutcomeOK && ctx.Err() != nil {
		switch {
		case d.stopCtx.Err() != nil:
			reply = endedEarly(tr, reply, OutcomeInterrupted, "shutdown before the work finished")
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			reply = endedEarly(tr, reply, OutcomeTimeout, fmt.Sprintf("command took over %s", d.cfg.CommandTimeout))
		}
	}
	return reply
}

// followUp delivers an acknowledged command's answer, then records it in
// the ledger and the observer. base carries the request's values but not
// its cancellation.
func (d *Dispatcher) followUp(base context.Context, c Command, r Responder, tr *Trace, reply Reply) {
	rctx, rcancel := context.WithTimeout(base, d.cfg.ReplyTimeout)
	defer rcancel()
	if err := d.safeFollowUp(rctx, r, reply); err != nil {
		tr.fail(OutcomeError, errors.Join(tr.Err, fmt.Errorf("follow up: %w", err)))
	} else {
		tr.Replied = time.Now()
	}
	d.finishLedger(rctx, c, tr)
	d.observe(rctx, tr)
}

// endedEarly records that the work's context ended before the work did,
// with outcome (OutcomeTimeout or OutcomeInterrupted), and returns the
// student's answer: the kind "took too long" or "had to stop", unless the
// registration was saved, which the work's own reply then says.
func endedEarly(tr *Trace, reply Reply, outcome, why string) Reply {
	tr.fail(outcome, fmt.Errorf("%s: %w", why, tr.Err))
	if tr.Saved {
		return reply
	}
	if outcome == OutcomeInterrupted {
		return Reply{Text: interruptedText, Ephemeral: true}
	}
	return Reply{Text: tooLongText, Ephemeral: true}
}

// safeRespond and safeFollowUp call the adapter, turning a panic in it into
// an error: an adapter's bug must not take the process down.
func (d *Dispatcher) safeRespond(ctx context.Context, r Responder, reply Reply) (err error) {
	defer recoverInto(&err)
	return r.Respond(ctx, reply)
}

func (d *Dispatcher) safeFollowUp(ctx context.Context, r Responder, reply Reply) (err error) {
	defer recoverInto(&err)
	return r.FollowUp(ctx, reply)
}

func recoverInto(err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
	}
}

// safeRun runs w, turning a panic into a kind reply and an error outcome.
func (d *Dispatcher) safeRun(ctx context.Context, w job, tr *Trace) (reply Reply) {
	defer func() {
		if p := recover(); p != nil {
			tr.fail(OutcomePanic, fmt.Errorf("panic: %v\n%s", p, debug.Stack()))
			reply = Reply{Text: internalText, Ephemeral: true}
		}
	}()
	return w(ctx, d.cfg.Mode != ModeSync, tr)
}

func (d *Dispatcher) finishLedger(ctx context.Context, c Command, tr *Trace) {
	if err := d.bot.store.FinishInteraction(ctx, tr.interaction(c)); err != nil {
		d.log.LogAttrs(ctx, slog.LevelWarn, "ledger update failed",
			slog.String("platform", c.Platform), slog.String("interaction", c.InteractionID), slog.Any("err", err))
	}
}

func (d *Dispatcher) observe(ctx context.Context, tr *Trace) {
	level := slog.LevelInfo
	if tr.Err != nil && tr.Outcome != OutcomeInvalid {
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.String("platform", tr.Platform), slog.String("interaction", tr.InteractionID),
		slog.String("command", tr.Command), slog.String("mode", string(tr.Mode)),
		slog.String("outcome", tr.Outcome),
		slog.Duration("ack", nonNeg(tr.Acknowledged.Sub(tr.Received))),
		slog.Duration("store", tr.Store), slog.Duration("agent", tr.Agent), slog.Duration("total", tr.Total()),
	}
	if tr.Err != nil && tr.Outcome != OutcomeInvalid {
		attrs = append(attrs, slog.Any("err", tr.Err))
	}
	d.log.LogAttrs(ctx, level, "command", attrs...)
	d.callObserver(ctx, "ObserveFunc", d.cfg.ObserveFunc, tr)
}

// callObserver calls f (ObserveFunc, AckFunc) with a copy of tr, if f is
// set; a panic in it is recovered and logged.
func (d *Dispatcher) callObserver(ctx context.Context, name string, f func(Trace), tr *Trace) {
	if f == nil {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			d.log.LogAttrs(ctx, slog.LevelError, "observer panicked", slog.String("observer", name),
				slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
		}
	}()
	f(*tr)
}

func nonNeg(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return d
}

// Shutdown stops taking new commands ("restarting" answers), waits for the
// commands in flight until ctx is done, then cancels what is left so each student
// still hears "please try again", and waits briefly for those replies.
// It returns nil if everything finished in time, or ctx's error.
func (d *Dispatcher) Shutdown(ctx context.Context) error {
	d.mu.Lock()
	if !d.closing {
		d.closing = true
		close(d.closed)
	}
	d.mu.Unlock()

	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		d.stop()
		return nil
	case <-ctx.Done():
	}
	d.stop()
	grace := time.NewTimer(min(d.cfg.ReplyTimeout, 5*time.Second))
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
	}
	return fmt.Errorf("shutdown: work still in flight: %w", ctx.Err())
}

package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/classbot/classbot/agent"
	"github.com/classbot/classbot/internal/logctx"
	"github.com/classbot/classbot/store"
)

// Queue mode: the Dispatcher records the command durably (its ledger row
// and a job, in one transaction) before the acknowledgement, and workers,
// in this process or any other on the same database, run the work and post
// the follow-up. The pieces the bot needs are declared here; package queue
// implements them on River.

// ErrExpired is returned, wrapped, by a reopened Responder's FollowUp when
// the platform no longer accepts an answer for the command (a Discord
// interaction token lives 15 minutes, a Slack response_url 30) and no other
// way to reach the student is configured (a bot token). The work is not
// tried again; the ledger records OutcomeExpired.
var ErrExpired = errors.New("the platform no longer accepts an answer to this command")

// Addressed is implemented by a Responder whose follow-up can be made from
// another process: Address says where the answer goes, as JSON that the
// platform's Reopener turns back into a Responder. The address may hold
// secrets (a Discord interaction token, a Slack response_url): it is kept
// only in the database, never logged.
type Addressed interface {
	Address() (json.RawMessage, error)
}

// Reopener rebuilds a command's Responder from its Address in a queue
// worker, possibly in another process and after a restart. Only FollowUp
// is called on what it returns, and FollowUp must be idempotent: a job may
// run twice (River runs a job at least once; a crash between the post and
// its record re-runs it), and two calls must leave one answer visible, the
// last one (Discord: an edit of @original; Slack: replace_original). When
// the platform's window has passed it uses the bot token if one is set
// (recording that post in the command's PostLog: see PostLogger), or
// returns an error wrapping ErrExpired; it never posts into a dead window.
type Reopener interface {
	Reopen(ctx context.Context, c Command, address json.RawMessage) (Responder, error)
}

// Enqueuer records a command durably for the workers: its ledger row,
// which keeps job (a student's name, email or question, and the reply
// address) until the command ends, and its job, which carries ids only,
// in one transaction. It returns store.ErrDuplicate, with nothing written,
// when the ledger already holds (in.Platform, in.ID); an error wrapping
// store.ErrNotWritten when nothing was written; one wrapping
// store.ErrUncertain when the write may have committed.
type Enqueuer interface {
	Enqueue(ctx context.Context, in store.Interaction, job QueuedCommand) error
}

// QueuedCommand is what a queued command's job needs: the command and
// where its answer goes. It is kept as JSON in the command's ledger row,
// never in the job, and cleared when the command ends.
type QueuedCommand struct {
	Command Command         `json:"command"`
	Address json.RawMessage `json:"address"`
}

// QueuedAnswer is a queued command's outbox: its answer, recorded in the
// ledger row before it is posted, so that an attempt after a failed post
// or a crash posts it again instead of doing the work again.
type QueuedAnswer struct {
	Text      string    `json:"text"`
	Ephemeral bool      `json:"ephemeral,omitempty"`
	File      *File     `json:"file,omitempty"`
	Feedback  string    `json:"feedback,omitempty"`
	Outcome   string    `json:"outcome"`
	Stored    time.Time `json:"stored,omitzero"`
	AgentDone time.Time `json:"agent_done,omitzero"`
}

// PostLog is a queued command's record of the posts that are not
// idempotent by themselves (a fallback's message: Slack's
// chat.postEphemeral, a Discord direct message): a later attempt of the
// command finds them and does not post again. One attempt uses it at a
// time.
type PostLog interface {
	// Posted returns the message id recorded under kind, or "".
	Posted(kind string) string
	// RecordPost records that message id was posted under kind. It is
	// called right after the post, with a time budget of its own; if it
	// fails, a later attempt may post again.
	RecordPost(ctx context.Context, kind, id string) error
}

// PostLogger is implemented by a reopened Responder whose FollowUp may
// post through a fallback: RunQueued gives it the command's PostLog
// before FollowUp.
type PostLogger interface {
	UsePostLog(PostLog)
}

// RecordPostTimeout bounds PostLog.RecordPost: a record gets its own time,
// not what the post left over.
const RecordPostTimeout = 5 * time.Second

// OutcomeExpired: queue mode's answer came after the platform's window
// (Discord's token, Slack's response_url) and no bot token could carry it.
const OutcomeExpired = "expired"

// createdBy tells whether the student's row was created by this command: a
// queued job's later attempt finds the row its earlier attempt created,
// and must still say "you're registered", not "welcome back". A row
// created after the command arrived was (a margin allows for the clocks of
// classbot and PostgreSQL to differ).
func (b *Bot) createdBy(ctx context.Context, reg store.Registration, received time.Time) bool {
	r, err := b.store.GetRegistration(ctx, reg.Platform, reg.Workspace, reg.User)
	return err == nil && r.CreatedAt.After(received.Add(-5*time.Second))
}

// queueFailedText tells a student that queue mode could not record their
// command: nothing will happen, and trying again is safe.
const queueFailedText = "Sorry, I couldn't take your command just now (the database is slow to answer). Please try again in a minute."

// queueUnconfirmedText is for a command written but not confirmed in time:
// it will most likely still be answered.
const queueUnconfirmedText = "The database is slow to confirm your command, so it may take a while. If you don't hear back from me within a few minutes, please try again."

// enqueue is queue mode's first response: it records the command (ledger
// row and job, one commit) and acknowledges only once that is durable. The
// caller hands over the command's slot, which is held only until then:
// the work's concurrency is the workers'.
func (d *Dispatcher) enqueue(ctx context.Context, c Command, r Responder, tr *Trace) error {
	spec, work, answer := d.prepare(c, tr)
	if work == nil {
		return d.answerNow(ctx, c, r, tr, answer, ledgerInsert)
	}
	a, ok := r.(Addressed)
	var address json.RawMessage
	err := errors.New("this platform's replies cannot be queued")
	if ok {
		address, err = a.Address()
	}
	if err != nil {
		tr.fail(OutcomeError, fmt.Errorf("reply address: %w", err))
		return d.answerNow(ctx, c, r, tr, Reply{Text: internalText, Ephemeral: true}, ledgerInsert)
	}

	ectx, cancel := context.WithTimeout(ctx, d.cfg.EnqueueBudget)
	err = d.cfg.Enqueuer.Enqueue(ectx, tr.interaction(c), QueuedCommand{Command: c, Address: address})
	cancel()
	switch {
	case err == nil:
	case errors.Is(err, store.ErrDuplicate):
		defer d.release()
		return d.duplicate(ctx, c, r, tr)
	case errors.Is(err, store.ErrNotWritten) ||
		!errors.Is(err, store.ErrUncertain) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled):
		// Nothing was written (or the database refused it): a redelivery
		// must be worked on, and the student may try again.
		d.recent.forget(c.Platform, c.InteractionID)
		tr.fail(OutcomeStoreError, fmt.Errorf("enqueue: %w", err))
		return d.answerNow(ctx, c, r, tr, Reply{Text: queueFailedText, Ephemeral: true}, ledgerNone)
	default:
		// Written, not yet confirmed (the wait ran out, or the connection
		// was lost during the commit): the commit may have landed, and then
		// the job answers (replacing this reply where the platform allows).
		// Say so rather than "try again", which would make two answers.
		tr.fail(OutcomeStoreError, fmt.Errorf("enqueue not confirmed: %w", err))
		return d.answerNow(ctx, c, r, tr, Reply{Text: queueUnconfirmedText, Ephemeral: true}, ledgerNone)
	}
	err = r.Ack(ctx, Reply{Text: spec.Ack, Ephemeral: spec.Ephemeral})
	tr.Acknowledged = time.Now()
	if err != nil {
		// The job is committed and will run: its follow-up reaches the
		// student if the platform still lets it, or ends "expired".
		d.log.LogAttrs(ctx, slog.LevelWarn, "acknowledgement failed; the queued job will still try to answer",
			slog.String("platform", c.Platform), slog.Any("err", err))
		d.release()
		return err
	}
	// The moment of the acknowledgement goes into the ledger row after the
	// request, through the group commit (the trace has no outcome yet, so
	// only that moment is written); the worker's trace ends the command.
	base := context.WithoutCancel(ctx)
	if qp, ok := d.cfg.Enqueuer.(QueuePlacer); ok {
		if pr, ok := r.(Progresser); ok {
			go d.watchQueued(base, qp, c, pr, Reply{Text: spec.Ack, Ephemeral: spec.Ephemeral})
		}
	}
	go func() {
		defer d.release()
		d.callObserver(base, "AckFunc", d.cfg.AckFunc, tr)
		lctx, cancel := context.WithTimeout(base, d.cfg.ReplyTimeout)
		defer cancel()
		d.finishLedger(lctx, c, tr)
	}()
	return nil
}

// QueueReplyTimeout bounds a queued attempt's post of its answer, and
// each of its records (the outbox, then the end), after the attempt's own
// time: a job runs at most its timeout plus three times this, which the
// queue's rescue of stuck jobs must allow for.
const QueueReplyTimeout = 5 * time.Second

// ErrInterrupted is returned, wrapped, by RunQueued when the attempt was
// stopped by a shutdown before its answer was recorded: the job is worth
// running again, and the attempt should not count.
var ErrInterrupted = errors.New("the attempt was stopped before its answer was recorded")

// QueuedRun is one attempt of a queued command, in a worker.
type QueuedRun struct {
	Command   Command
	Responder Responder // reopened from the command's address: only FollowUp is called
	Attempt   int       // 1 for the first
	Final     bool      // no attempt follows this one
	// Outbox is the answer an earlier attempt recorded, if any: this
	// attempt posts it and does nothing else.
	Outbox *QueuedAnswer
	// WorkBudget bounds the model's part of the work, from the moment it
	// has a model slot (agent.WithWorkBudget); zero: none beyond ctx's.
	WorkBudget time.Duration
	// Posts records the fallbacks' posts, if the Responder makes any
	// (PostLogger). Nil: none are recorded.
	Posts PostLog
	// SaveAnswer records the answer in the outbox before it is posted. It
	// returns store.ErrNotFound if the command has ended meanwhile.
	SaveAnswer func(ctx context.Context, a QueuedAnswer) error
	// Finish records the delivery (the ledger row's moments and outcome)
	// and ends the command: what was kept for the job is cleared.
	Finish func(ctx context.Context, in store.Interaction) error
}

// retryable outcomes are worth another attempt: the database, the model or
// the time ran out, or the process is stopping.
func retryable(outcome string) bool {
	switch outcome {
	case OutcomeStoreError, OutcomeAgentError, OutcomeTimeout, OutcomeInterrupted:
		return true
	}
	return false
}

// RunQueued runs one attempt of a queued command. With no answer in the
// outbox it does the same work as async mode (the registration and the
// model at once), records the answer in the outbox, then stores /ask's
// memory turn; then it posts the answer and calls run.Finish. A failure
// of the database or the model, or a timeout, before the final attempt
// ends the attempt with an error (nothing is recorded or posted: the next
// attempt works again), and so does a failed record of the answer; a
// model's permanent refusal (agent.IsPermanent) is answered at once. Once
// the answer is in the outbox, no attempt works or stores the memory turn
// again: a failed post or record returns an error and the next attempt
// posts the same answer. The final attempt always answers: kindly, if it
// must say that something failed. A reply the platform no longer takes
// ends the command with OutcomeExpired, never retried. A shutdown before
// the answer was recorded returns an error wrapping ErrInterrupted. The
// errors returned never hold the command's text: they go into the job's
// row; the whole chain is logged.
func (d *Dispatcher) RunQueued(ctx context.Context, run QueuedRun) (string, error) {
	c := run.Command
	ctx = logctx.WithInteraction(ctx, c.InteractionID)
	// A queued job waits its turn for the model: leaving the line early would
	// spend an attempt and send it back to wait in River again.
	ctx = agent.WithPatience(ctx)
	tr := d.newTrace(c)
	tr.Mode, tr.Attempt = ModeQueue, run.Attempt
	if tr.Received.IsZero() {
		tr.Received = time.Now()
	}
	// Given before the work: a streamed answer's message is recorded
	// before any text is appended to it.
	if pl, ok := run.Responder.(PostLogger); ok && run.Posts != nil {
		pl.UsePostLog(run.Posts)
	}
	var answer QueuedAnswer
	if run.Outbox != nil {
		answer = *run.Outbox
		tr.Outcome, tr.Stored, tr.AgentDone = answer.Outcome, answer.Stored, answer.AgentDone
	} else {
		var err error
		if answer, err = d.workQueued(ctx, run, tr); err != nil {
			return "", err
		}
		if tr.remember != nil && tr.remember(context.WithoutCancel(ctx)) {
			tr.Stored = time.Now()
		}
	}

	// The post and the end's record each get their own time: the
	// attempt's may be spent (a timeout's kind answer must still go out).
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), QueueReplyTimeout)
	err := d.safeFollowUp(pctx, run.Responder, Reply{Text: answer.Text, Ephemeral: answer.Ephemeral, File: answer.File, Feedback: answer.Feedback})
	cancel()
	switch {
	case err == nil:
		tr.Replied = time.Now()
	case errors.Is(err, ErrExpired):
		tr.fail(OutcomeExpired, errors.Join(tr.Err, err))
	case !run.Final:
		return "", d.retry(ctx, tr, "follow up", err)
	default:
		tr.fail(OutcomeError, errors.Join(tr.Err, fmt.Errorf("follow up: %w", err)))
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), QueueReplyTimeout)
	defer cancel()
	if err := run.Finish(fctx, tr.interaction(c)); err != nil && !errors.Is(err, store.ErrNotFound) {
		// Not recorded: the next attempt posts the outbox's answer again,
		// which replaces this one.
		return "", d.retry(ctx, tr, "recording the delivery", err)
	}
	d.observe(fctx, tr)
	return tr.Outcome, nil
}

// workQueued does a queued command's work and records its answer in the
// outbox. It returns an error when the attempt should end there.
func (d *Dispatcher) workQueued(ctx context.Context, run QueuedRun, tr *Trace) (QueuedAnswer, error) {
	_, work, reply := d.prepare(run.Command, tr)
	if work != nil {
		wctx := ctx
		if run.WorkBudget > 0 {
			wctx = agent.WithWorkBudget(ctx, run.WorkBudget)
		}
		tr.queued = true
		reply = d.safeRun(withStreamer(wctx, run.Responder), work, tr)
		if tr.Outcome != OutcomeOK && ctx.Err() != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				reply = endedEarly(tr, reply, OutcomeTimeout, "attempt took too long")
			} else {
				reply = endedEarly(tr, reply, OutcomeInterrupted, "stopped before the work finished")
			}
		}
	}
	switch {
	case tr.Outcome == OutcomeInterrupted:
		return QueuedAnswer{}, d.retry(ctx, tr, "work", ErrInterrupted)
	case run.Final || !retryable(tr.Outcome):
	case errors.Is(tr.Err, store.ErrInvalid), agent.IsPermanent(tr.Err):
		// Refused again if tried again: answer now.
	default:
		return QueuedAnswer{}, d.retry(ctx, tr, "work", errors.New("ended "+tr.Outcome))
	}
	answer := QueuedAnswer{Text: reply.Text, Ephemeral: reply.Ephemeral, File: reply.File, Feedback: reply.Feedback, Outcome: tr.Outcome, Stored: tr.Stored, AgentDone: tr.AgentDone}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), QueueReplyTimeout)
	defer cancel()
	switch err := run.SaveAnswer(sctx, answer); {
	case err == nil:
	case errors.Is(err, store.ErrNotFound):
		// The command ended meanwhile (another attempt answered it, or
		// the row was purged): nothing more to do.
		tr.remember = nil
		return QueuedAnswer{}, d.retry(ctx, tr, "recording the answer", err)
	case run.Final:
		// Better an answer not recorded than none: its memory turn is
		// not stored, which a later attempt could not know.
		tr.remember = nil
		d.log.LogAttrs(ctx, slog.LevelWarn, "the final attempt's answer could not be recorded; posting it anyway",
			slog.String("platform", run.Command.Platform), slog.Any("err", err))
	default:
		return QueuedAnswer{}, d.retry(ctx, tr, "recording the answer", err)
	}
	return answer, nil
}

// retry logs why a queued attempt ends without an answer (the whole
// chain, for operators) and returns the short error that goes into the
// job's row: the step and the outcome, never the command's text.
func (d *Dispatcher) retry(ctx context.Context, tr *Trace, step string, err error) error {
	d.log.LogAttrs(ctx, slog.LevelWarn, "queued attempt ends without an answer",
		slog.String("platform", tr.Platform), slog.String("command", tr.Command), slog.Int("attempt", tr.Attempt),
		slog.String("step", step), slog.String("outcome", tr.Outcome), slog.Any("err", errors.Join(err, tr.Err)))
	short := fmt.Errorf("%s failed (outcome %q)", step, tr.Outcome)
	for _, sentinel := range []error{ErrInterrupted, store.ErrNotFound} {
		if errors.Is(err, sentinel) {
			short = fmt.Errorf("%s: %w", step, sentinel)
		}
	}
	return short
}

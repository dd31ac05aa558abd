package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

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
// the platform's window has passed it uses the bot token if one is set, or
// returns an error wrapping ErrExpired; it never posts into a dead window.
type Reopener interface {
	Reopen(ctx context.Context, c Command, address json.RawMessage) (Responder, error)
}

// Enqueuer records a command durably for the workers: its ledger row and
// its job in one transaction. It returns store.ErrDuplicate, with nothing
// written, when the ledger already holds (in.Platform, in.ID).
type Enqueuer interface {
	Enqueue(ctx context.Context, in store.Interaction, job QueuedCommand) error
}

// QueuedCommand is what a job carries: the command and where its answer
// goes. It is stored as JSON in the job's row.
type QueuedCommand struct {
	Command Command         `json:"command"`
	Address json.RawMessage `json:"address"`
}

// OutcomeExpired: queue mode's answer came after the platform's window
// (Discord's token, Slack's response_url) and no bot token could carry it.
const OutcomeExpired = "expired"

// createdBy tells whether the student's row was created by this command: a
// queued job's later attempt finds the row its earlier attempt created,
// and must still say "you're registered", not "welcome back". A row
// created after the command arrived was (a margin allows for the clocks of
// classbot and PostgreSQL to differ).
func (b *Bot) createdBy(ctx context.Context, reg store.Registration, received time.Time) bool {
	g, ok := b.store.(interface {
		GetRegistration(ctx context.Context, platform, workspace, user string) (store.Registration, error)
	})
	if !ok {
		return false
	}
	r, err := g.GetRegistration(ctx, reg.Platform, reg.Workspace, reg.User)
	return err == nil && r.CreatedAt.After(received.Add(-5*time.Second))
}

// answered reports whether the ledger says c was answered already (its
// row has a reply moment), and with what outcome. A store that cannot
// say, or an error, is "no".
func (d *Dispatcher) answered(ctx context.Context, c Command) (outcome string, done bool) {
	g, ok := d.bot.store.(interface {
		GetInteraction(ctx context.Context, platform, id string) (store.Interaction, error)
	})
	if !ok {
		return "", false
	}
	in, err := g.GetInteraction(ctx, c.Platform, c.InteractionID)
	if err != nil || in.RepliedAt.IsZero() {
		return "", false
	}
	return in.Outcome, true
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
	case errors.Is(err, store.ErrNotQueued) || !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled):
		// Nothing was written (or the database refused it): a redelivery
		// must be worked on, and the student may try again.
		d.recent.forget(c.Platform, c.InteractionID)
		tr.fail(OutcomeStoreError, fmt.Errorf("enqueue: %w", err))
		return d.answerNow(ctx, c, r, tr, Reply{Text: queueFailedText, Ephemeral: true}, ledgerNone)
	default:
		// Written, not yet confirmed: the commit may still land, and then
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
	go func() {
		defer d.release()
		d.callObserver(base, "AckFunc", d.cfg.AckFunc, tr)
		lctx, cancel := context.WithTimeout(base, d.cfg.ReplyTimeout)
		defer cancel()
		d.finishLedger(lctx, c, tr)
	}()
	return nil
}

// QueueReplyTimeout bounds a queued attempt's follow-up and its record,
// after the attempt's own time: a job runs at most its timeout plus this,
// which the queue's rescue of stuck jobs must allow for.
const QueueReplyTimeout = 5 * time.Second

// QueuedRun is one attempt of a queued command, in a worker.
type QueuedRun struct {
	Command   Command
	Responder Responder // reopened from the command's address: only FollowUp is called
	Attempt   int       // 1 for the first
	Final     bool      // no attempt follows this one
	// Complete records the answer (the ledger row's moments and outcome)
	// and completes the job, in one transaction.
	Complete func(ctx context.Context, in store.Interaction) error
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

// RunQueued runs one attempt of a queued command: the same work as async
// mode (the registration and the model at once), then the follow-up, then
// run.Complete. It returns the outcome, or an error when the attempt
// should be tried again: a failure of the database or the model, a timeout
// or a shutdown, before the final attempt (nothing is posted then); a
// follow-up or a record that failed. The final attempt always answers:
// kindly, if it must say that something failed (a registration that was
// saved says so). A reply the platform no longer takes ends the command
// with OutcomeExpired, never retried.
func (d *Dispatcher) RunQueued(ctx context.Context, run QueuedRun) (string, error) {
	c := run.Command
	ctx = logctx.WithInteraction(ctx, c.InteractionID)
	tr := d.newTrace(c)
	tr.Mode, tr.Attempt = ModeQueue, run.Attempt
	if tr.Received.IsZero() {
		tr.Received = time.Now()
	}

	// A later attempt whose predecessor posted the answer and recorded
	// it, but whose job's completion did not stick (the record committed
	// after River had already given the attempt up), only completes: no
	// second model call, no second post.
	var outcome string
	done := false
	if run.Attempt > 1 {
		outcome, done = d.answered(ctx, c)
	}
	if done {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), QueueReplyTimeout)
		defer cancel()
		if err := run.Complete(rctx, store.Interaction{Platform: c.Platform, ID: c.InteractionID}); err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", fmt.Errorf("completing an answered job: %w", err)
		}
		return outcome, nil
	}

	_, work, reply := d.prepare(c, tr)
	if work != nil {
		reply = d.safeRun(ctx, work, tr)
		if tr.Outcome != OutcomeOK && ctx.Err() != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				reply = endedEarly(tr, reply, OutcomeTimeout, "attempt took too long")
			} else {
				reply = endedEarly(tr, reply, OutcomeInterrupted, "stopped before the work finished")
			}
		}
	}
	// A row the database refuses is refused again: no retry for that.
	if !run.Final && retryable(tr.Outcome) && !errors.Is(tr.Err, store.ErrInvalid) {
		return "", fmt.Errorf("attempt %d ended %s: %w", run.Attempt, tr.Outcome, tr.Err)
	}

	// The answer and its record get their own time, QueueReplyTimeout: the
	// attempt's may be spent (a timeout's kind answer must still go out).
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), QueueReplyTimeout)
	defer cancel()
	switch err := d.safeFollowUp(rctx, run.Responder, reply); {
	case err == nil:
		tr.Replied = time.Now()
	case errors.Is(err, ErrExpired):
		tr.fail(OutcomeExpired, errors.Join(tr.Err, err))
	case !run.Final:
		return "", fmt.Errorf("follow up: %w", err)
	default:
		tr.fail(OutcomeError, errors.Join(tr.Err, fmt.Errorf("follow up: %w", err)))
	}
	if err := run.Complete(rctx, tr.interaction(c)); err != nil && !errors.Is(err, store.ErrNotFound) {
		// Not recorded: the job runs again and its follow-up, idempotent,
		// replaces this one.
		return "", fmt.Errorf("recording the answer: %w", err)
	}
	d.observe(rctx, tr)
	return tr.Outcome, nil
}

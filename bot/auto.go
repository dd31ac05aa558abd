package bot

import (
	"context"
	"fmt"
	"time"
)

// runAuto is auto mode: it starts w at once in a goroutine of its own and
// waits for it up to AutoInlineBudget. Work that ends in time is answered as
// sync mode answers it, in the first and only response. Otherwise the
// command is acknowledged at the budget and the same goroutine's answer is
// delivered as a follow-up: the work is never started twice. The work
// outlives the platform's request (bounded by CommandTimeout and
// Shutdown), and the caller hands over the command's slot, which is
// released once the answer is delivered.
func (d *Dispatcher) runAuto(ctx context.Context, c Command, r Responder, tr *Trace, spec *Spec, w job) error {
	base := context.WithoutCancel(ctx)
	edits := d.newPlaceEdits(base, r, tr)
	wctx, cancel := context.WithTimeout(edits.context(base), d.cfg.CommandTimeout)
	stopWatch := context.AfterFunc(d.stopCtx, cancel)
	end := func() { stopWatch(); cancel() }

	// done carries the work's answer; the goroutine writes tr until it
	// sends, and nothing else touches tr before receiving it.
	done := make(chan Reply, 1)
	go func() { done <- d.runBounded(wctx, w, tr) }()

	budget := time.NewTimer(d.cfg.AutoInlineBudget)
	defer budget.Stop()
	select {
	case reply := <-done:
		end()
		edits.finish()
		return d.answerInline(ctx, c, r, tr, reply)
	case <-budget.C:
	}

	ackErr := d.safeAck(ctx, r, Reply{Text: spec.Ack, Ephemeral: spec.Ephemeral})
	acked := time.Now()
	if ackErr == nil {
		edits.ack()
	}
	if ackErr != nil {
		// Nobody hears an answer to an unacknowledged command, and the
		// platform may deliver it again: stop the work.
		cancel()
	}
	go func() {
		defer d.release()
		defer end()
		reply := <-done
		edits.finish()
		tr.Acknowledged = acked
		if ackErr != nil {
			tr.fail(OutcomeAckFailed, fmt.Errorf("acknowledge: %w", ackErr))
			d.recent.forget(c.Platform, c.InteractionID)
			lctx, lcancel := context.WithTimeout(base, d.cfg.ReplyTimeout)
			defer lcancel()
			d.finishLedger(lctx, c, tr)
			d.observe(lctx, tr)
			return
		}
		d.followUp(base, c, r, tr, reply)
	}()
	return ackErr
}

// answerInline gives the finished work's answer as the first and only
// response, as sync mode does, and records it after the request (see
// settle); the caller hands over the command's slot.
func (d *Dispatcher) answerInline(ctx context.Context, c Command, r Responder, tr *Trace, reply Reply) error {
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.ReplyTimeout)
	defer rcancel()
	err := d.safeRespond(rctx, r, reply)
	tr.Acknowledged = time.Now()
	tr.Replied = tr.Acknowledged
	if err != nil && tr.Err == nil {
		tr.fail(OutcomeError, fmt.Errorf("respond: %w", err))
	}
	d.settle(ctx, c, tr, ledgerFinish)
	return err
}

// safeAck calls the adapter's Ack, turning a panic in it into an error.
func (d *Dispatcher) safeAck(ctx context.Context, r Responder, reply Reply) (err error) {
	defer recoverInto(&err)
	return r.Ack(ctx, reply)
}

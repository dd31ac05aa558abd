package bot

import (
	"context"
	"log/slog"
	"time"
)

// QueuePlacer is implemented by an Enqueuer that can tell a queued
// command's place among the jobs waiting for a worker, in every replica's
// order (package queue: River's, by priority then arrival).
type QueuePlacer interface {
	// ShowPlace calls show with the place in line (1: next) of the
	// command's job if it still waits for a worker, and holds the command
	// so that no worker records its answer until show has returned: the
	// answer is never overwritten by a place. It reports whether the job
	// was still waiting (show was called, or it was held elsewhere: try
	// later); false means stop asking.
	ShowPlace(ctx context.Context, platform, id string, show func(ctx context.Context, place int) error) (waiting bool, err error)
}

// watchQueued shows a queued command's student its place in line while
// its job waits for a worker: placeAfter after the acknowledgement, then
// at most every placeEvery, maxPlaceEdits times in all, and only when the
// place changed. It stops when the job is taken, the command ends, or the
// Dispatcher shuts down. The worker that takes the job answers as usual;
// its answer replaces the place.
func (d *Dispatcher) watchQueued(base context.Context, qp QueuePlacer, c Command, pr Progresser, ack Reply) {
	t := time.NewTimer(placeAfter)
	defer t.Stop()
	edits, last := 0, 0
	for edits < maxPlaceEdits {
		select {
		case <-t.C:
		case <-d.closed:
			return
		}
		ctx, cancel := context.WithTimeout(base, d.cfg.ReplyTimeout)
		shown := false
		waiting, err := qp.ShowPlace(ctx, c.Platform, c.InteractionID, func(ctx context.Context, place int) (err error) {
			if place == last {
				return nil
			}
			defer recoverInto(&err)
			shown, last = true, place
			return pr.Progress(ctx, Reply{Text: placeText(ack.Text, place), Ephemeral: ack.Ephemeral})
		})
		cancel()
		if err != nil {
			d.log.LogAttrs(base, slog.LevelWarn, "place in line not shown", slog.String("platform", c.Platform), slog.Any("err", err))
		}
		if !waiting {
			return
		}
		if shown {
			edits++
		}
		t.Reset(placeEvery)
	}
}

package bot

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/classbot/classbot/agent"
)

// Progresser is implemented by Responders that can replace the
// acknowledgement's text while the work goes on (Discord: an edit of the
// original response; Slack: a response_url post that replaces it). The
// Dispatcher calls Progress only after Ack and before FollowUp, never at
// the same time as either, at most maxPlaceEdits times per command.
type Progresser interface {
	Progress(ctx context.Context, r Reply) error
}

// Place-in-line edits: a student whose model call has waited placeAfter
// for its slot sees their place, at most every placeEvery and
// maxPlaceEdits times (Slack's response_url takes five posts in all, and
// the answer needs its own). placeAfter is the wait's first once-a-second
// tick: a student whose call is still waiting then is told at once, and
// one whose call got its slot before it hears the answer, with a model of
// 2 s, within about 3 s of their command.
//
// A model call that has waited untoldAfter without its place having been
// shown (the edits failed, or none could be made) leaves the line: the
// student then hears "busy, try again" as the answer, rather than
// waiting on in silence.
const (
	placeAfter    = time.Second
	placeEvery    = 5 * time.Second
	maxPlaceEdits = 2
	untoldAfter   = 30 * time.Second
)

// placeText is the acknowledgement with the student's place in line.
func placeText(ack string, place int) string {
	return fmt.Sprintf("%s You're #%d in line for the assistant; your answer comes as soon as it's your turn.", ack, place)
}

// placeEdits shows a student their place in line by editing the
// acknowledgement while the work's model calls wait for a slot
// (agent.WithWaitFunc). Edits run in a goroutine of their own, one at a
// time, and only between the acknowledgement (acked) and finish, which
// waits for an edit in flight: the Responder never sees Progress at the
// same time as Ack or FollowUp. It is safe for concurrent use.
type placeEdits struct {
	d     *Dispatcher
	r     Progresser
	base  context.Context
	reply Reply // the acknowledgement
	now   func() time.Time

	mu        sync.Mutex
	acked     bool
	done      bool
	busy      bool
	told      bool // an edit showed the place
	edits     int
	lastEdit  time.Time
	lastPlace int
	wg        sync.WaitGroup
}

// newPlaceEdits returns the place edits of a command answered through r,
// or nil if r cannot edit its acknowledgement.
func (d *Dispatcher) newPlaceEdits(base context.Context, r Responder, tr *Trace) *placeEdits {
	pr, ok := r.(Progresser)
	if !ok {
		return nil
	}
	spec := lookup(tr.Command)
	if spec == nil {
		return nil
	}
	return &placeEdits{d: d, r: pr, base: base, reply: Reply{Text: spec.Ack, Ephemeral: spec.Ephemeral}, now: d.now}
}

// context returns ctx with p's wait function, or ctx itself for a nil p.
func (p *placeEdits) context(ctx context.Context) context.Context {
	if p == nil {
		return ctx
	}
	return agent.WithWaitFunc(ctx, p.waiting)
}

// ack allows edits from now on: the acknowledgement has been given.
func (p *placeEdits) ack() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.acked = true
}

// finish ends the edits and waits for one in flight; the answer may then
// be delivered.
func (p *placeEdits) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.done = true
	p.mu.Unlock()
	p.wg.Wait()
}

// waiting hears a model call's place in line (agent.WithWaitFunc). It
// returns at once; an edit, if one is due, goes on in its own goroutine.
// It returns false, and the call leaves the line, once the call has waited
// untoldAfter and no edit has shown the place (none in flight either).
func (p *placeEdits) waiting(place int, waited time.Duration) (keep bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if waited >= untoldAfter && !p.told && !p.busy && !p.done {
		return false
	}
	now := p.now()
	if !p.acked || p.done || p.busy || place == p.lastPlace || p.edits >= maxPlaceEdits ||
		waited < placeAfter || (!p.lastEdit.IsZero() && now.Sub(p.lastEdit) < placeEvery) {
		return true
	}
	p.busy, p.lastPlace, p.lastEdit = true, place, now
	p.edits++
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		ctx, cancel := context.WithTimeout(p.base, p.d.cfg.ReplyTimeout)
		defer cancel()
		err := func() (err error) {
			defer recoverInto(&err)
			return p.r.Progress(ctx, Reply{Text: placeText(p.reply.Text, place), Ephemeral: p.reply.Ephemeral})
		}()
		p.mu.Lock()
		p.busy = false
		p.told = p.told || err == nil
		p.mu.Unlock()
		if err != nil {
			p.d.log.LogAttrs(ctx, slog.LevelWarn, "place in line not shown", slog.Any("err", err))
		}
	}()
	return true
}

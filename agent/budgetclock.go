package agent

import (
	"context"
	"sync"
	"time"
)

// budgetContext is the context of one Run given a work budget (see
// [WithWorkBudget]). Its clock runs only while the Run is not waiting for a
// model slot: it starts paused, resume starts it once a slot is held, pause
// stops it before the next wait for a slot. When the running time reaches the
// budget the context ends with [context.DeadlineExceeded]; it also ends when
// its parent does, with the parent's error, and when cancel is called.
//
// Deadline reports the budget's end while the clock runs (or the parent's
// deadline if earlier) and the parent's deadline while it is paused. Values
// come from the parent. pause and resume are called by the goroutine running
// the Run; Done, Err and Deadline are safe for concurrent use.
type budgetContext struct {
	context.Context // the parent: values and its own cancellation

	done       chan struct{}
	stopParent func() bool

	mu    sync.Mutex
	left  time.Duration // budget not yet used, as of since
	since time.Time     // when the clock last started; zero while paused
	timer *time.Timer   // ends the budget; nil while paused
	err   error
}

// newBudgetContext returns a paused budgetContext over parent with budget d,
// and a cancel function that must be called when the Run is over.
func newBudgetContext(parent context.Context, d time.Duration) (*budgetContext, context.CancelFunc) {
	b := &budgetContext{Context: parent, done: make(chan struct{}), left: d}
	b.stopParent = context.AfterFunc(parent, func() { b.end(parent.Err()) })
	return b, func() {
		b.stopParent()
		b.end(context.Canceled)
	}
}

func (b *budgetContext) Done() <-chan struct{} { return b.done }

func (b *budgetContext) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

func (b *budgetContext) Deadline() (time.Time, bool) {
	parent, ok := b.Context.Deadline()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.since.IsZero() {
		return parent, ok
	}
	end := b.since.Add(b.left)
	if ok && parent.Before(end) {
		return parent, true
	}
	return end, true
}

// resume starts the clock (a slot is now held). It does nothing if the clock
// runs already or the context has ended.
func (b *budgetContext) resume() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil || !b.since.IsZero() {
		return
	}
	b.since = time.Now()
	b.timer = time.AfterFunc(b.left, func() { b.end(context.DeadlineExceeded) })
}

// pause stops the clock (the Run is about to wait for a slot), keeping what
// is left of the budget.
func (b *budgetContext) pause() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil || b.since.IsZero() {
		return
	}
	b.timer.Stop()
	b.left -= time.Since(b.since)
	b.since, b.timer = time.Time{}, nil
}

// expired reports whether the budget, not the parent nor cancel, ended the context.
func (b *budgetContext) expired() bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err == context.DeadlineExceeded && b.Context.Err() == nil
}

// end ends the context with err unless it has ended already.
func (b *budgetContext) end(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return
	}
	b.err = err
	if b.timer != nil {
		b.timer.Stop()
	}
	close(b.done)
}

package agent

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

type classKey struct{}

// WithClass returns ctx naming the class a Run works for: the Runner's
// model slots (Config.MaxConcurrency) are shared fairly between classes,
// and Config.ClassRPM bounds each class's model requests. A Run without a
// class shares the slots as a class of its own.
func WithClass(ctx context.Context, class string) context.Context {
	return context.WithValue(ctx, classKey{}, class)
}

type arrivalKey struct{}

// WithArrival returns ctx carrying when the work's command arrived: a
// class's calls waiting for a slot are served in order of arrival, even
// when their goroutines reach the line in another order. Without it, a
// call arrives when it starts waiting.
func WithArrival(ctx context.Context, t time.Time) context.Context {
	return context.WithValue(ctx, arrivalKey{}, t)
}

type patientKey struct{}

// WithPatience returns ctx whose model calls wait for their slot until ctx
// ends, never leaving the line early by the line's estimate: for a queued
// job, whose early leave would only spend an attempt and give up its place
// to wait again in River.
func WithPatience(ctx context.Context) context.Context {
	return context.WithValue(ctx, patientKey{}, true)
}

// ClassOf returns the class WithClass put in ctx, or "".
func ClassOf(ctx context.Context) string {
	c, _ := ctx.Value(classKey{}).(string)
	return c
}

type waitFuncKey struct{}

// WithWaitFunc returns ctx carrying f: while a model call of the Run waits
// for its slot, f is called about once a second with its place in line (1:
// next) and how long it has waited. f is called on the waiting goroutine
// and must return at once. f returns whether the call may go on waiting:
// once it returns false, the call leaves the line and Run fails with a
// *LineError (the student could not be told of the wait, say).
func WithWaitFunc(ctx context.Context, f func(place int, waited time.Duration) (keep bool)) context.Context {
	return context.WithValue(ctx, waitFuncKey{}, f)
}

// WaitFunc returns the function WithWaitFunc put in ctx, or nil: for
// runners other than Runner (a test's) that report a line of their own.
func WaitFunc(ctx context.Context) func(place int, waited time.Duration) (keep bool) {
	return waitFuncOf(ctx)
}

func waitFuncOf(ctx context.Context) func(int, time.Duration) bool {
	f, _ := ctx.Value(waitFuncKey{}).(func(int, time.Duration) bool)
	return f
}

// ErrLineTooLong is wrapped by Run's error when a model call left the
// line for a slot early (see [LineError]).
var ErrLineTooLong = errors.New("agent: the line for a model slot is longer than the call can wait")

// LineError is Run's error (wrapped) when a model call waiting for its
// slot gave up before its context ended: the wait it still had ahead, by
// the line's estimate, was longer than what was left of its context's
// deadline, or its WithWaitFunc function said to stop. Nothing was sent to
// the model for that call. It unwraps to ErrLineTooLong.
type LineError struct {
	Place int           // its place in line when it left (1: next)
	Wait  time.Duration // about how long it would still have waited: when to try again
	Left  time.Duration // what was left of its deadline (0: none)
}

func (e *LineError) Error() string {
	return fmt.Sprintf("%v: #%d in line, about %s to wait, %s left",
		ErrLineTooLong, e.Place, e.Wait.Round(time.Second), e.Left.Round(time.Second))
}

func (e *LineError) Unwrap() error { return ErrLineTooLong }

// waitTick is how often a waiting call's WithWaitFunc hears its place, and
// how often a waiting call with a deadline checks that it can still make it.
var waitTick = time.Second

// fairSlots hands out n model slots across classes: a waiting call takes a
// free slot at once only when no call waits; otherwise each freed slot goes
// to the next class in turn (round robin over the classes that have calls
// waiting, each class's calls in their order of arrival), so that one
// class's burst cannot keep another class waiting for more than one slot.
// With rpm > 0 a class also gets at most rpm slots a minute (a minute's
// worth at once): a class over it waits while the others go on. A waiting
// call whose context has a deadline leaves the line with a *LineError as
// soon as the line's estimate (see Estimate) says its slot would come too
// late for the call to finish by the deadline. It is safe for concurrent use and has the Acquire and
// Release of a semaphore.Weighted of weight 1 per call.
type fairSlots struct {
	rpm       float64
	maxLimits int
	now       func() time.Time

	mu      sync.Mutex
	free    int
	waiting map[string][]*slotWaiter // by class, in order of arrival
	order   []string                 // classes with calls waiting, in turn order
	last    string                   // the class served last
	limits  map[string]*rate.Limiter // rpm's buckets, by class
	timer   *time.Timer              // wakes dispatch when a class over its rpm may go again
	timerAt time.Time
	slots   int           // n
	held    time.Duration // moving average of how long a call holds its slot
	// started holds when each slot now held was handed out, oldest first;
	// Release, which does not know whose slot it is, forgets the oldest.
	// The ages it keeps are never older than the real holders', so a
	// lower bound drawn from them stays one.
	started    []time.Time
	startedSum time.Duration // the sum of started's times since epoch, for their mean age in O(1)
	epoch      time.Time     // the oldest hand-out held (at most: see give)
	epochSet   bool
}

type slotWaiter struct {
	ready   chan struct{} // closed once granted
	granted bool
	arrival time.Time
}

// newFairSlots returns n slots shared fairly, with rpm slots a minute per
// class at most (0: no limit).
func newFairSlots(n int, rpm float64) *fairSlots {
	return &fairSlots{
		rpm: rpm, maxLimits: 10_000, now: time.Now,
		free: max(n, 1), slots: max(n, 1), waiting: map[string][]*slotWaiter{}, limits: map[string]*rate.Limiter{},
	}
}

// Acquire waits for a slot for ctx's class. n must be 1. It returns ctx's
// error, holding nothing, if ctx ends first.
func (s *fairSlots) Acquire(ctx context.Context, n int64) error {
	if n != 1 {
		panic("agent: fairSlots hands out one slot at a time")
	}
	class := ClassOf(ctx)
	s.mu.Lock()
	now := s.now()
	if s.free > 0 && len(s.order) == 0 && s.allow(class, now) {
		s.take(now)
		s.last = class
		s.mu.Unlock()
		return nil
	}
	w := &slotWaiter{ready: make(chan struct{}), arrival: now}
	if t, ok := ctx.Value(arrivalKey{}).(time.Time); ok && !t.IsZero() {
		w.arrival = t
	}
	if len(s.waiting[class]) == 0 {
		s.order = append(s.order, class)
	}
	// In order of arrival: after every call that arrived no later.
	q := s.waiting[class]
	i := len(q)
	for i > 0 && q[i-1].arrival.After(w.arrival) {
		i--
	}
	s.waiting[class] = slices.Insert(q, i, w)
	s.dispatch(now)
	deadline, hasDeadline := ctx.Deadline()
	if patient, _ := ctx.Value(patientKey{}).(bool); patient {
		hasDeadline = false // waits until ctx ends: no early leave
	}
	// A line already too long for the deadline is said at once.
	var gaveUp *LineError
	if hasDeadline && !w.granted {
		gaveUp = s.tooLate(class, w, deadline, now)
	}
	s.mu.Unlock()

	var tick <-chan time.Time
	f := waitFuncOf(ctx)
	if (f != nil || hasDeadline) && gaveUp == nil {
		t := time.NewTicker(waitTick)
		defer t.Stop()
		tick = t.C
	}
wait:
	for gaveUp == nil {
		select {
		case <-w.ready:
			return nil
		case <-ctx.Done():
			break wait
		case <-tick:
			s.mu.Lock()
			at := s.now()
			place, wait := s.lineWait(class, w, at)
			if place > 0 && hasDeadline { // else granted meanwhile: w.ready is closed
				gaveUp = s.tooLate(class, w, deadline, at)
			}
			s.mu.Unlock()
			if place > 0 && gaveUp == nil && f != nil && !f(place, at.Sub(now)) {
				gaveUp = &LineError{Place: place, Wait: wait}
				if hasDeadline {
					gaveUp.Left = max(deadline.Sub(at), 0)
				}
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.granted {
		if gaveUp != nil {
			// Granted as it gave up: the slot is its to use.
			return nil
		}
		// Granted as ctx ended: hand the slot on.
		s.give(1)
		s.dispatch(s.now())
		return ctx.Err()
	}
	if i := slices.Index(s.waiting[class], w); i >= 0 {
		s.waiting[class] = slices.Delete(s.waiting[class], i, i+1)
	}
	if len(s.waiting[class]) == 0 {
		s.dropClass(class)
	}
	if gaveUp != nil {
		return gaveUp
	}
	return ctx.Err()
}

// tooLate returns the *LineError for w, waiting in class's line, if by
// the line's estimate its call could not finish before deadline: its wait
// for a slot and then one hold of it (a call that gets its slot as its
// time runs out does not finish either). nil while it may make it, or
// once it has its slot. s.mu must be held.
func (s *fairSlots) tooLate(class string, w *slotWaiter, deadline, now time.Time) *LineError {
	place, wait := s.lineWait(class, w, now)
	left := deadline.Sub(now)
	if place == 0 || wait+s.hold(now) <= left {
		return nil
	}
	return &LineError{Place: place, Wait: wait, Left: max(left, 0)}
}

// Release gives back n slots Acquire took.
func (s *fairSlots) Release(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.give(int(n))
	s.dispatch(s.now())
}

// take hands out a free slot at now. s.mu must be held.
func (s *fairSlots) take(now time.Time) {
	s.free--
	if !s.epochSet {
		s.epoch, s.epochSet = now, true
	}
	s.started = append(s.started, now)
	s.startedSum += now.Sub(s.epoch)
}

// give takes back n slots, forgetting the oldest hand-outs. s.mu must be
// held.
func (s *fairSlots) give(n int) {
	s.free += n
	k := min(n, len(s.started))
	for _, t := range s.started[:k] {
		s.startedSum -= t.Sub(s.epoch)
	}
	// Re-slicing, not copying: append reallocates with only the live
	// hand-outs once the array is used up, so each costs O(1) amortized.
	s.started = s.started[k:]
	// Measure from the oldest hand-out held, so the sum stays within the
	// longest hold times the number of holders.
	if len(s.started) == 0 {
		s.epochSet, s.startedSum = false, 0
	} else if shift := s.started[0].Sub(s.epoch); shift > 0 {
		s.startedSum -= shift * time.Duration(len(s.started))
		s.epoch = s.started[0]
	}
}

// Waiting reports the calls waiting for a slot, and class's share of them.
func (s *fairSlots) Waiting(class string) (all, ofClass int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range s.waiting {
		all += len(q)
	}
	return all, len(s.waiting[class])
}

// lineWait is w's place in line (1: next), counting in turn order as
// Estimate does, and about how long it has still to wait, as Estimate
// reckons a new call's wait; 0, 0 once w is no longer waiting. s.mu must
// be held.
func (s *fairSlots) lineWait(class string, w *slotWaiter, now time.Time) (place int, wait time.Duration) {
	i := slices.Index(s.waiting[class], w)
	if i < 0 {
		return 0, 0
	}
	place = i + 1
	for c, q := range s.waiting {
		if c != class {
			place += min(len(q), i+1)
		}
	}
	return place, s.waitFor(class, place, i+1, now)
}

// waitFor is about how long the call at place in line, the ofClass'th of
// its class, waits for its slot: place holds of a slot spread over the
// slots, or the wait for its class's CLASS_LLM_RPM if longer. s.mu must be
// held.
func (s *fairSlots) waitFor(class string, place, ofClass int, now time.Time) time.Duration {
	wait := time.Duration(float64(s.hold(now)) * float64(place) / float64(s.slots))
	if s.rpm > 0 {
		if need := float64(ofClass) - s.limiter(class).TokensAt(now); need > 0 {
			wait = max(wait, time.Duration(need/s.rpm*float64(time.Minute)))
		}
	}
	return wait
}

// hold is how long a call holds its slot, for estimates: the moving
// average of the calls that finished, but at least the mean age of the
// calls holding slots now, which have held them that long already and
// have not let go. Before any call has finished (a sudden burst), the
// latter is all there is: a lower bound, so the estimate errs short. s.mu
// must be held.
func (s *fairSlots) hold(now time.Time) time.Duration {
	if len(s.started) == 0 {
		return s.held
	}
	meanAge := now.Sub(s.epoch) - s.startedSum/time.Duration(len(s.started))
	return max(s.held, max(meanAge, 0))
}

// observe folds one call's time in its slot into the moving average.
func (s *fairSlots) observe(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == 0 {
		s.held = d
		return
	}
	s.held += (d - s.held) / 8
}

// Estimate returns the place in line a new call of class would take (1:
// next) and how long it would wait for a slot, from the calls waiting, the
// turn order and how long calls hold their slots (see hold: before any
// call has finished, how long the calls in their slots have held them so
// far). Its wait is zero when a slot is free. A class over CLASS_LLM_RPM
// waits for its minute too.
func (s *fairSlots) Estimate(class string) (place int, wait time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.free > 0 && len(s.order) == 0 {
		return 0, 0
	}
	// Round robin: ahead of the new call are its class's calls, and as
	// many of every other class's (one more for each class ahead in turn,
	// which this rough count leaves out).
	mine := len(s.waiting[class])
	place = mine + 1
	for c, q := range s.waiting {
		if c != class {
			place += min(len(q), mine+1)
		}
	}
	return place, s.waitFor(class, place, mine+1, s.now())
}

// Admits reports whether a new call of class would, by the line's
// estimate, get its slot and finish within d: the rule by which a waiting
// call leaves the line (see tooLate), applied before it joins. place and
// wait are Estimate's.
func (s *fairSlots) Admits(class string, d time.Duration) (place int, wait time.Duration, ok bool) {
	place, wait = s.Estimate(class)
	if place == 0 {
		return 0, 0, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return place, wait, wait+s.hold(s.now()) <= d
}

// dispatch gives free slots to waiting calls, one class after the other,
// starting after the class served last. Classes over their rpm are passed
// over; if only they wait, a timer calls dispatch again when the first of
// them may go. s.mu must be held.
func (s *fairSlots) dispatch(now time.Time) {
	for s.free > 0 && len(s.order) > 0 {
		start := 0
		if i := slices.Index(s.order, s.last); i >= 0 {
			start = i + 1
		}
		served := false
		for k := range len(s.order) {
			class := s.order[(start+k)%len(s.order)]
			if !s.allow(class, now) {
				continue
			}
			w := s.waiting[class][0]
			s.waiting[class] = s.waiting[class][1:]
			w.granted = true
			close(w.ready)
			s.take(now)
			s.last = class
			if len(s.waiting[class]) == 0 {
				s.dropClass(class)
			}
			served = true
			break
		}
		if !served {
			s.wakeAt(now, s.nextAllowed(now))
			return
		}
	}
}

// dropClass forgets class's empty queue. s.last stays, so the turn order
// goes on after it.
func (s *fairSlots) dropClass(class string) {
	delete(s.waiting, class)
	if i := slices.Index(s.order, class); i >= 0 {
		s.order = slices.Delete(s.order, i, i+1)
		// The class after it takes its place in turn.
		if s.last == class && len(s.order) > 0 {
			s.last = s.order[(i-1+len(s.order))%len(s.order)]
		}
	}
}

// allow takes one of class's rpm tokens at now, if it has one.
func (s *fairSlots) allow(class string, now time.Time) bool {
	if s.rpm <= 0 {
		return true
	}
	return s.limiter(class).AllowN(now, 1)
}

func (s *fairSlots) limiter(class string) *rate.Limiter {
	l, ok := s.limits[class]
	if !ok {
		if len(s.limits) >= s.maxLimits {
			s.pruneLimits()
		}
		l = rate.NewLimiter(rate.Limit(s.rpm/60), max(1, int(math.Ceil(s.rpm))))
		s.limits[class] = l
	}
	return l
}

// pruneLimits forgets the buckets that are full and have no call waiting:
// a full bucket is what a new one would be.
func (s *fairSlots) pruneLimits() {
	now := s.now()
	for class, l := range s.limits {
		if len(s.waiting[class]) == 0 && l.TokensAt(now) >= float64(l.Burst()) {
			delete(s.limits, class)
		}
	}
}

// nextAllowed is how long until a waiting class over its rpm may go.
func (s *fairSlots) nextAllowed(now time.Time) time.Duration {
	wait := time.Duration(math.MaxInt64)
	for _, class := range s.order {
		r := s.limiter(class).ReserveN(now, 1)
		d := r.DelayFrom(now)
		r.CancelAt(now)
		wait = min(wait, d)
	}
	return wait
}

// wakeAt arranges for dispatch to run after d, unless a wake-up is due
// sooner.
func (s *fairSlots) wakeAt(now time.Time, d time.Duration) {
	at := now.Add(d)
	if s.timer != nil && !s.timerAt.After(at) && s.timerAt.After(now) {
		return
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	s.timerAt = at
	s.timer = time.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.dispatch(s.now())
	})
}

package agent

import (
	"context"
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

// ClassOf returns the class WithClass put in ctx, or "".
func ClassOf(ctx context.Context) string {
	c, _ := ctx.Value(classKey{}).(string)
	return c
}

type waitFuncKey struct{}

// WithWaitFunc returns ctx carrying f: while a model call of the Run waits
// for its slot, f is called about once a second with its place in line (1:
// next) and how long it has waited. f is called on the waiting goroutine
// and must return at once.
func WithWaitFunc(ctx context.Context, f func(place int, waited time.Duration)) context.Context {
	return context.WithValue(ctx, waitFuncKey{}, f)
}

// WaitFunc returns the function WithWaitFunc put in ctx, or nil: for
// runners other than Runner (a test's) that report a line of their own.
func WaitFunc(ctx context.Context) func(place int, waited time.Duration) {
	return waitFuncOf(ctx)
}

func waitFuncOf(ctx context.Context) func(int, time.Duration) {
	f, _ := ctx.Value(waitFuncKey{}).(func(int, time.Duration))
	return f
}

// waitTick is how often a waiting call's WithWaitFunc hears its place.
var waitTick = time.Second

// fairSlots hands out n model slots across classes: a waiting call takes a
// free slot at once only when no call waits; otherwise each freed slot goes
// to the next class in turn (round robin over the classes that have calls
// waiting, each class's calls in their order of arrival), so that one
// class's burst cannot keep another class waiting for more than one slot.
// With rpm > 0 a class also gets at most rpm slots a minute (a minute's
// worth at once): a class over it waits while the others go on. It is safe
// for concurrent use and has the Acquire and Release of a
// semaphore.Weighted of weight 1 per call.
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
		s.free--
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
	s.mu.Unlock()

	var tick <-chan time.Time
	f := waitFuncOf(ctx)
	if f != nil {
		t := time.NewTicker(waitTick)
		defer t.Stop()
		tick = t.C
	}
wait:
	for {
		select {
		case <-w.ready:
			return nil
		case <-ctx.Done():
			break wait
		case <-tick:
			if place := s.placeOf(class, w); place > 0 {
				f(place, time.Since(now))
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.granted {
		// Granted as ctx ended: hand the slot on.
		s.free++
		s.dispatch(s.now())
		return ctx.Err()
	}
	if i := slices.Index(s.waiting[class], w); i >= 0 {
		s.waiting[class] = slices.Delete(s.waiting[class], i, i+1)
	}
	if len(s.waiting[class]) == 0 {
		s.dropClass(class)
	}
	return ctx.Err()
}

// Release gives back a slot Acquire took. n must be 1.
func (s *fairSlots) Release(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.free += int(n)
	s.dispatch(s.now())
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

// placeOf is w's place in line (1: next), counting in turn order as
// Estimate does; 0 once w is no longer waiting.
func (s *fairSlots) placeOf(class string, w *slotWaiter) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.Index(s.waiting[class], w)
	if i < 0 {
		return 0
	}
	place := i + 1
	for c, q := range s.waiting {
		if c != class {
			place += min(len(q), i+1)
		}
	}
	return place
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
// turn order and how long calls have held their slots lately. Its wait is
// zero when a slot is free, and when no call has finished yet (nothing to
// go by). A class over CLASS_LLM_RPM waits for its minute too.
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
	wait = time.Duration(float64(s.held) * float64(place) / float64(s.slots))
	if s.rpm > 0 {
		if need := float64(mine+1) - s.limiter(class).TokensAt(s.now()); need > 0 {
			wait = max(wait, time.Duration(need/s.rpm*float64(time.Minute)))
		}
	}
	return place, wait
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
			s.free--
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

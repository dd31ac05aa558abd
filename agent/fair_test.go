package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// One class's burst does not hold another class back by more than one
// slot: with every slot taken and ten calls of class A waiting, the next
// freed slot goes to class B's one call, then A's in their order.
func TestFairSlotsServeClassesInTurn(t *testing.T) {
	s := newFairSlots(1, 0)
	ctxA, ctxB := WithClass(t.Context(), "A"), WithClass(t.Context(), "B")
	if err := s.Acquire(ctxA, 1); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 20)
	var wg sync.WaitGroup
	acquire := func(ctx context.Context, name string) {
		wg.Go(func() {
			if err := s.Acquire(ctx, 1); err != nil {
				t.Error(err)
				return
			}
			got <- name
		})
	}
	for i := range 10 {
		acquire(ctxA, "A"+string(rune('0'+i)))
		waitFor(t, "A's calls to queue in order", func() bool { _, a := s.Waiting("A"); return a == i+1 })
	}
	acquire(ctxB, "B")
	waitFor(t, "B's call to queue", func() bool { _, b := s.Waiting("B"); return b == 1 })

	var order []string
	for range 11 {
		s.Release(1)
		order = append(order, <-got)
	}
	wg.Wait()
	if order[0] != "B" {
		t.Fatalf("slots went to %v: B waited behind A's burst", order)
	}
	for i, name := range order[1:] {
		if want := "A" + string(rune('0'+i)); name != want {
			t.Fatalf("slots went to %v: A's calls out of their order", order)
		}
	}
}

// Three classes with calls waiting take the slots in turn.
func TestFairSlotsRoundRobin(t *testing.T) {
	s := newFairSlots(1, 0)
	if err := s.Acquire(t.Context(), 1); err != nil { // class ""
		t.Fatal(err)
	}
	got := make(chan string, 20)
	for _, class := range []string{"A", "A", "A", "B", "B", "C"} {
		n, _ := s.Waiting("")
		go func() {
			if err := s.Acquire(WithClass(t.Context(), class), 1); err == nil {
				got <- class
			}
		}()
		waitFor(t, "the call to queue", func() bool { m, _ := s.Waiting(""); return m == n+1 })
	}
	var order string
	for range 6 {
		s.Release(1)
		order += <-got
	}
	if order != "ABCABA" {
		t.Fatalf("slots went to %s, want ABCABA", order)
	}
}

// CLASS_LLM_RPM: a class over its requests a minute waits while other
// classes go on, and goes again when its minute allows.
func TestFairSlotsClassRPM(t *testing.T) {
	s := newFairSlots(10, 2)
	now := time.Now()
	var mu sync.Mutex
	s.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ctxA, ctxB := WithClass(t.Context(), "A"), WithClass(t.Context(), "B")
	for range 2 {
		if err := s.Acquire(ctxA, 1); err != nil {
			t.Fatal(err)
		}
	}
	third := make(chan error, 1)
	go func() { third <- s.Acquire(ctxA, 1) }()
	waitFor(t, "A's third call to wait", func() bool { _, a := s.Waiting("A"); return a == 1 })
	if err := s.Acquire(ctxB, 1); err != nil { // free slots, B under its limit: at once
		t.Fatal(err)
	}
	select {
	case <-third:
		t.Fatal("A's third request in a minute went ahead of its CLASS_LLM_RPM of 2")
	default:
	}
	mu.Lock()
	now = now.Add(30 * time.Second) // one request's worth of A's minute
	mu.Unlock()
	s.Release(1)
	if err := <-third; err != nil {
		t.Fatal(err)
	}
}

// A call whose context ends while waiting leaves the line, and the slot
// goes to the next one.
func TestFairSlotsCancelledWaiterLeaves(t *testing.T) {
	s := newFairSlots(1, 0)
	if err := s.Acquire(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(WithClass(t.Context(), "A"))
	gone := make(chan error, 1)
	go func() { gone <- s.Acquire(ctx, 1) }()
	waitFor(t, "A to wait", func() bool { _, a := s.Waiting("A"); return a == 1 })
	cancel()
	if err := <-gone; err == nil {
		t.Fatal("Acquire returned nil after its context was cancelled")
	}
	if n, _ := s.Waiting(""); n != 0 {
		t.Fatalf("%d calls waiting after the only one left", n)
	}
	s.Release(1)
	if err := s.Acquire(WithClass(t.Context(), "B"), 1); err != nil {
		t.Fatal(err)
	}
}

// The Runner shares its slots this way.
func TestRunnerSharesSlotsFairly(t *testing.T) {
	r := NewRunner(Config{Offline: true, MaxConcurrency: 3, ClassRPM: 7})
	if r.sem.free != 3 || r.sem.rpm != 7 {
		t.Fatalf("runner slots: %d free, rpm %g; want 3 and 7", r.sem.free, r.sem.rpm)
	}
}

// Estimate counts the calls ahead of a new one in turn order and scales
// by how long calls hold their slots.
func TestFairSlotsEstimate(t *testing.T) {
	s := newFairSlots(2, 0)
	if place, wait := s.Estimate("A"); place != 0 || wait != 0 {
		t.Fatalf("with free slots: place %d, wait %s; want 0, 0", place, wait)
	}
	for range 2 {
		if err := s.Acquire(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
	}
	s.observe(10 * time.Second)
	for i, class := range []string{"A", "A", "A", "A", "B"} {
		n, _ := s.Waiting("")
		go func() { _ = s.Acquire(WithClass(t.Context(), class), 1) }()
		waitFor(t, "call "+string(rune('0'+i))+" to queue", func() bool { m, _ := s.Waiting(""); return m == n+1 })
	}
	// A new B call is B's second: A, B, A go before it.
	if place, wait := s.Estimate("B"); place != 4 || wait != 20*time.Second {
		t.Errorf("B: place %d, wait %s; want 4, 20s (4 calls of 10 s on 2 slots)", place, wait)
	}
	// A new A call: A's four and B's one.
	if place, wait := s.Estimate("A"); place != 6 || wait != 30*time.Second {
		t.Errorf("A: place %d, wait %s; want 6, 30s", place, wait)
	}
	for range 7 {
		s.Release(1)
	}
}

// A class over CLASS_LLM_RPM waits for its minute.
func TestFairSlotsEstimateRPM(t *testing.T) {
	s := newFairSlots(10, 6) // one request every 10 s
	for range 6 {
		if err := s.Acquire(WithClass(t.Context(), "A"), 1); err != nil {
			t.Fatal(err)
		}
	}
	s.observe(time.Second)
	go func() { _ = s.Acquire(WithClass(t.Context(), "A"), 1) }()
	waitFor(t, "A's seventh call to wait", func() bool { _, a := s.Waiting("A"); return a == 1 })
	if _, wait := s.Estimate("A"); wait < 15*time.Second || wait > 20*time.Second {
		t.Errorf("A's next call would wait %s, want about 20s (two requests of its minute)", wait)
	}
	s.Release(10)
}

// A waiting call hears its place while it waits, and it moves up.
func TestFairSlotsTellTheWaitingTheirPlace(t *testing.T) {
	defer func(d time.Duration) { waitTick = d }(waitTick)
	waitTick = time.Millisecond
	s := newFairSlots(1, 0)
	if err := s.Acquire(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		n, _ := s.Waiting("")
		go func() { _ = s.Acquire(WithClass(t.Context(), "A"), 1) }()
		waitFor(t, "A to wait", func() bool { m, _ := s.Waiting(""); return m == n+1 })
	}
	places := make(chan int, 100)
	got := make(chan error, 1)
	go func() {
		got <- s.Acquire(WithWaitFunc(WithClass(t.Context(), "A"), func(p int, _ time.Duration) bool {
			select {
			case places <- p:
			default:
			}
			return true
		}), 1)
	}()
	waitFor(t, "the third A to wait", func() bool { _, a := s.Waiting("A"); return a == 3 })
	if p := <-places; p != 3 {
		t.Fatalf("place %d, want 3", p)
	}
	s.Release(1) // the first A goes
	for p := range places {
		if p == 2 {
			break
		}
		if p != 3 {
			t.Fatalf("place %d after one went ahead, want 3 then 2", p)
		}
	}
	s.Release(1)
	s.Release(1)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

// fakeClock is a clock for fairSlots.now that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// queueCalls starts n calls of class that wait for a slot, one after the
// other, and returns their results.
func queueCalls(t *testing.T, s *fairSlots, ctx context.Context, n int) <-chan error {
	t.Helper()
	errs := make(chan error, n)
	for i := range n {
		before, _ := s.Waiting("")
		go func() { errs <- s.Acquire(ctx, 1) }()
		waitFor(t, "call "+fmt.Sprint(i)+" to queue", func() bool { m, _ := s.Waiting(""); return m == before+1 })
	}
	return errs
}

// A sudden burst, before any call has finished: the estimate goes by how
// long the calls in their slots have held them so far, not zero, and a
// new call that could not finish in time is not admitted.
func TestFairSlotsEstimateBeforeAnyCallFinished(t *testing.T) {
	clock := newFakeClock()
	s := newFairSlots(2, 0)
	s.now = clock.now
	ctx := WithClass(t.Context(), "A")
	for range 2 {
		if err := s.Acquire(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	queueCalls(t, s, ctx, 30)
	clock.advance(10 * time.Second) // no call has finished: s.held is 0
	// 31 calls, each holding a slot at least 10 s, on 2 slots.
	if place, wait := s.Estimate("A"); place != 31 || wait != 155*time.Second {
		t.Errorf("place %d, wait %s; want 31, 2m35s", place, wait)
	}
	// Admitted only with time for the wait and its own 10 s in the slot.
	for _, tc := range []struct {
		within time.Duration
		ok     bool
	}{{2 * time.Minute, false}, {160 * time.Second, false}, {165 * time.Second, true}} {
		if place, wait, ok := s.Admits("A", tc.within); place != 31 || wait != 155*time.Second || ok != tc.ok {
			t.Errorf("Admits within %s: %d, %s, %v; want 31, 2m35s, %v", tc.within, place, wait, ok, tc.ok)
		}
	}
	s.Release(32)
}

// A call whose line is already too long for its deadline leaves at once,
// before any call has finished, and those that can make it stay: a call
// needs its wait in line and then its own time in the slot.
func TestFairSlotsBurstLeavesTheLineAtOnce(t *testing.T) {
	clock := newFakeClock()
	s := newFairSlots(1, 0)
	s.now = clock.now
	if err := s.Acquire(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	clock.advance(10 * time.Minute) // the slot's call has held it 10 min
	// 35 min left by the clock that moved 10 min ahead.
	ctx, cancel := context.WithTimeout(WithClass(t.Context(), "A"), 45*time.Minute)
	defer cancel()
	// #1 and #2: 10 and 20 min in line and 10 min in the slot, within 35.
	stays := queueCalls(t, s, ctx, 2)
	third := make(chan error, 1)
	go func() { third <- s.Acquire(ctx, 1) }() // #3: 30 + 10 min
	var err error
	select {
	case err = <-third:
	case <-time.After(10 * time.Second):
		t.Fatal("the third call waits for a slot it cannot get in time")
	}
	var le *LineError
	if !errors.As(err, &le) || !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("the third call got %v, want a *LineError", err)
	}
	if le.Place != 3 || le.Wait != 30*time.Minute {
		t.Errorf("LineError %+v, want place 3, wait 30m", *le)
	}
	if n, _ := s.Waiting(""); n != 2 {
		t.Fatalf("%d calls waiting, want the 2 that can make it", n)
	}
	for range 2 {
		s.Release(1)
		if err := <-stays; err != nil {
			t.Fatal(err)
		}
	}
}

// A waiting call checks its line against its deadline while it waits: it
// leaves with a *LineError once the line shows it cannot make it, and the
// call ahead of it, which can, stays and gets its slot.
func TestFairSlotsWaiterLeavesWhenItCannotMakeItsDeadline(t *testing.T) {
	defer func(d time.Duration) { waitTick = d }(waitTick)
	waitTick = time.Millisecond
	s, clock := oneSlotHeldTenMinutes(t)
	ctx, cancel := context.WithTimeout(WithClass(t.Context(), "A"), 35*time.Minute)
	defer cancel()
	first := queueCalls(t, s, ctx, 1)
	second := make(chan error, 1)
	go func() { second <- s.Acquire(ctx, 1) }()
	waitFor(t, "the second call to queue", func() bool { _, a := s.Waiting("A"); return a == 2 })
	select {
	case err := <-second:
		t.Fatalf("the second call left with %v while 20 min of line and 10 in the slot fit its 35", err)
	default:
	}

	clock.advance(6 * time.Minute) // 29 min left: #2's 20 + 10 no longer fit, #1's 10 + 10 do
	var le *LineError
	select {
	case err := <-second:
		if !errors.As(err, &le) || le.Place != 2 || le.Wait != 20*time.Minute {
			t.Fatalf("the second call got %v, want a *LineError at place 2, 20 min to wait", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second call still waits for a slot it cannot get in time")
	}
	if _, a := s.Waiting("A"); a != 1 {
		t.Fatalf("%d of A's calls waiting, want the first, which can make it", a)
	}
	s.Release(1)
	if err := <-first; err != nil {
		t.Fatalf("the first call got %v, want its slot", err)
	}
}

// A waiting call whose wait function says to stop leaves the line with a
// *LineError at its place.
func TestFairSlotsWaitFuncStopsTheWait(t *testing.T) {
	defer func(d time.Duration) { waitTick = d }(waitTick)
	waitTick = time.Millisecond
	s := newFairSlots(1, 0)
	if err := s.Acquire(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	var calls int
	ctx := WithWaitFunc(t.Context(), func(place int, _ time.Duration) bool {
		calls++
		return calls < 3
	})
	err := s.Acquire(ctx, 1)
	var le *LineError
	if !errors.As(err, &le) || le.Place != 1 {
		t.Fatalf("got %v, want a *LineError at place 1", err)
	}
	if calls != 3 {
		t.Errorf("the wait function heard %d places, want 3 (it said stop at the third)", calls)
	}
	if n, _ := s.Waiting(""); n != 0 {
		t.Fatalf("%d calls waiting after the only one left", n)
	}
	s.Release(1)
}

// Run reports a call that left the line as a *LineError, without calling
// the model for it: the first Run holds the only slot, and the second's
// deadline comes before the first's time in the slot would let it in.
func TestRunLeavesTheLineWithLineError(t *testing.T) {
	defer func(d time.Duration) { waitTick = d }(waitTick)
	waitTick = 5 * time.Millisecond
	r := NewRunner(Config{Offline: true, OfflineLatency: time.Minute, MaxConcurrency: 1})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _, _ = r.Run(ctx, Agent{Name: "first"}, "hello") }()
	waitFor(t, "the first Run to hold the slot", func() bool { place, _ := r.sem.Estimate(""); return place == 1 })
	wctx, wcancel := context.WithTimeout(t.Context(), 4*time.Second)
	defer wcancel()
	res, err := r.Run(wctx, Agent{Name: "second"}, "hello")
	var le *LineError
	if !errors.As(err, &le) {
		t.Fatalf("second Run: %v, want a *LineError", err)
	}
	if le.Place != 1 || res.Turns != 0 || le.Left <= 0 {
		t.Errorf("LineError %+v after %d turns, want place 1, time left and no model call", *le, res.Turns)
	}
}

// A patient call (a queued job's) stays in line past the estimate's
// verdict and takes its slot when it comes.
func TestFairSlotsPatientCallDoesNotLeaveEarly(t *testing.T) {
	defer func(d time.Duration) { waitTick = d }(waitTick)
	waitTick = time.Millisecond
	s, clock := oneSlotHeldTenMinutes(t)
	ctx, cancel := context.WithTimeout(WithPatience(WithClass(t.Context(), "A")), time.Minute)
	defer cancel()
	got := make(chan error, 1)
	go func() { got <- s.Acquire(ctx, 1) }()
	waitFor(t, "the call to queue", func() bool { _, a := s.Waiting("A"); return a == 1 })
	clock.advance(30 * time.Second)   // 10 min of slot ahead, 30 s left: an impatient call leaves
	time.Sleep(50 * time.Millisecond) // many ticks
	select {
	case err := <-got:
		t.Fatalf("the patient call left the line: %v", err)
	default:
	}
	s.Release(1)
	if err := <-got; err != nil {
		t.Fatalf("the patient call got %v, want its slot", err)
	}
}

// oneSlotHeldTenMinutes returns one slot on a fake clock, taken, with
// calls that hold a slot ten minutes.
func oneSlotHeldTenMinutes(t *testing.T) (*fairSlots, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	s := newFairSlots(1, 0)
	s.now = clock.now
	if err := s.Acquire(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	s.observe(10 * time.Minute)
	return s, clock
}

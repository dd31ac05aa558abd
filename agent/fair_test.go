package agent

import (
	"context"
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
		got <- s.Acquire(WithWaitFunc(WithClass(t.Context(), "A"), func(p int, _ time.Duration) {
			select {
			case places <- p:
			default:
			}
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

package bot

import (
	"fmt"
	"testing"
	"time"
)

func TestRecentIDs(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	r := newRecentIDs(time.Minute, 3)
	if !r.add("slack", "a", t0) || r.add("slack", "a", t0.Add(time.Second)) {
		t.Fatal("a second add of the same id within the window was not refused")
	}
	if !r.add("discord", "a", t0) {
		t.Fatal("the same id on another platform is another interaction")
	}
	if !r.add("slack", "a", t0.Add(time.Minute)) {
		t.Fatal("an id older than the window was still remembered")
	}
	r.forget("slack", "a")
	if !r.add("slack", "a", t0.Add(time.Minute)) {
		t.Fatal("a forgotten id was still remembered")
	}
	// Past max ids the oldest go, however young.
	r = newRecentIDs(time.Hour, 3)
	for i := range 5 {
		r.add("slack", fmt.Sprint(i), t0)
	}
	if len(r.seen) > 3 {
		t.Fatalf("%d ids kept, want at most 3", len(r.seen))
	}
	if !r.add("slack", "0", t0) {
		t.Fatal("the oldest id was not evicted past max")
	}
	if r.add("slack", "4", t0) {
		t.Fatal("the newest id was evicted")
	}
}

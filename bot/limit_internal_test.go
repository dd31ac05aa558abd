package bot

import (
	"strings"
	"testing"
	"time"
)

// The table is bounded: past max students the least recently seen is
// forgotten, and the others keep their counts.
func TestAskLimitsForgetTheLeastRecentlySeen(t *testing.T) {
	l := newAskLimits(1, 2) // one question a minute, two students remembered
	now := time.Now()
	a, b, c := studentKey{"slack", "T", "A"}, studentKey{"slack", "T", "B"}, studentKey{"slack", "T", "C"}
	for _, k := range []studentKey{a, b} {
		if _, ok := l.take(k, now); !ok {
			t.Fatalf("%v's first question refused", k)
		}
	}
	if wait, ok := l.take(a, now); ok || wait <= 0 || wait > time.Minute {
		t.Fatalf("a's second question: ok %v, wait %s; want refused with a wait up to a minute", ok, wait)
	}
	// a was seen last: c's arrival forgets b.
	if _, ok := l.take(c, now); !ok {
		t.Fatal("c's first question refused")
	}
	if n := l.len(); n != 2 {
		t.Fatalf("table holds %d students, want 2", n)
	}
	if _, ok := l.take(a, now); ok {
		t.Error("a was forgotten: the student seen most recently must be kept")
	}
	if _, ok := l.take(b, now); !ok {
		t.Error("b was not forgotten: the least recently seen must go first")
	}
	// A minute later a may ask again.
	if _, ok := l.take(a, now.Add(time.Minute)); !ok {
		t.Error("a refused a minute later")
	}
}

func TestRateLimitedTextSaysWhen(t *testing.T) {
	if s := rateLimitedText(5, 11200*time.Millisecond); !strings.Contains(s, "5 questions a minute") || !strings.Contains(s, "in 12 seconds") {
		t.Errorf("%q", s)
	}
	if s := rateLimitedText(5, 300*time.Millisecond); !strings.Contains(s, "in a second") {
		t.Errorf("%q", s)
	}
}

func TestNoLimitWhenRateIsNotPositive(t *testing.T) {
	if newAskLimits(0, 10) != nil || newAskLimits(-1, 10) != nil {
		t.Error("a rate of 0 or less must mean no limit")
	}
}

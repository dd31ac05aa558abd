package queue

import (
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"
)

// Retries double up to RetryMax, jittered by up to a quarter either way.
func TestRetryDelayIsJittered(t *testing.T) {
	cfg := Config{}.withDefaults()
	for _, c := range []struct {
		attempt int
		u       float64
		want    time.Duration
	}{
		{1, 0.5, 2 * time.Second},
		{1, 0, 1500 * time.Millisecond},
		{1, 0.999999, 2500 * time.Millisecond},
		{3, 0.5, 8 * time.Second},
		{10, 0.5, 60 * time.Second},
		{10, 0, 45 * time.Second},
	} {
		if got := retryDelay(cfg, c.attempt, c.u); got.Round(time.Millisecond) != c.want {
			t.Errorf("attempt %d, u %v: %s, want %s", c.attempt, c.u, got, c.want)
		}
	}
}

// rescued tells River's own attempt errors (its rescuer's) from Work's.
// If a River upgrade starts recording Work's errors differently (without
// Work's text as the error), this fails.
func TestRescuedTellsRiversErrorsFromWorks(t *testing.T) {
	if rescued(nil) {
		t.Error("no errors: rescued")
	}
	if rescued([]rivertype.AttemptError{{Error: errPrefix + "work failed"}}) {
		t.Error("Work's own error taken for a rescue")
	}
	if !rescued([]rivertype.AttemptError{{Error: errPrefix + "x"}, {Error: "Stuck job rescued by Rescuer"}}) {
		t.Error("River's rescuer's error not seen")
	}
}

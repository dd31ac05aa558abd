package main

import (
	"testing"
)

// Auto mode through the real bot on both platforms: a model far faster
// than the budget gets every answer in the first response (one message per
// command); a model slower than the budget gets every command acknowledged
// and followed up once.
func TestLoadtestAutoMode(t *testing.T) {
	tests := []struct {
		name, latency, budget string
		inline                bool
	}{
		{"fast model", "10ms", "2s", true},
		{"slow model", "400ms", "50ms", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, stderr := runLoadtest(t, nil, "--mode", "auto", "--store", "memory", "--platform", "mix",
				"--classes", "2", "--students", "20", "--rate", "20", "--duration", "1s",
				"--model-latency", tt.latency, "--auto-inline-budget", tt.budget, "--drain", "20s", "--json")
			if len(rep.Runs) != 1 {
				t.Fatalf("%d runs, want 1", len(rep.Runs))
			}
			r := rep.Runs[0]
			if r.Mode != "auto" || r.Sent < 10 || r.Acknowledged != r.Sent || r.Errors+r.Timeouts+r.Refused != 0 {
				t.Fatalf("mode %s, sent %d, acknowledged %d, errors %d, timeouts %d, busy %d (first error: %s)\nstderr:\n%s",
					r.Mode, r.Sent, r.Acknowledged, r.Errors, r.Timeouts, r.Refused, r.FirstError, stderr)
			}
			if tt.inline {
				if r.Inline != r.Sent || r.FollowUpsExpected != 0 || r.MessagesPerCommand != 1 {
					t.Errorf("%d of %d inline, %d follow-ups expected, %.2f messages per command; want all inline, none, 1",
						r.Inline, r.Sent, r.FollowUpsExpected, r.MessagesPerCommand)
				}
			} else {
				if r.Inline != 0 || r.FollowUpsExpected != r.Sent || r.FollowUpsExactlyOnce != r.Sent || r.MessagesPerCommand != 2 {
					t.Errorf("%d inline, %d/%d followed up exactly once, %.2f messages per command; want none inline, all once, 2",
						r.Inline, r.FollowUpsExactlyOnce, r.Sent, r.MessagesPerCommand)
				}
			}
			if r.Complete != r.Sent {
				t.Errorf("%d complete of %d sent", r.Complete, r.Sent)
			}
		})
	}
}

package agent

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// budgetModel is an in-process model for the work budget tests: a request
// whose first message is "holder" is held for an hour (the slot stays taken),
// any other takes work to answer; a request that offers the "lookup" tool
// and has no tool result yet gets a call to it.
func budgetModel(t *testing.T, work time.Duration) (*fakeModel, Config, chan struct{}) {
	t.Helper()
	holderArrived := make(chan struct{}, 1)
	var f *fakeModel
	f, cfg, _ := setupInProcess(t, func(w http.ResponseWriter, r *http.Request, n int) {
		req := f.request(n - 1)
		hold := work
		if req.Messages[0].Content == "holder" {
			holderArrived <- struct{}{}
			hold = time.Hour
		}
		select {
		case <-time.After(hold):
		case <-r.Context().Done():
			return
		}
		if len(req.Tools) > 0 && req.Messages[len(req.Messages)-1].Role != "tool" {
			toolCallAnswer(w, "call_1", "lookup", `{}`, 1, 1)
			return
		}
		textAnswer(w, "ok", 1, 1)
	})
	cfg.MaxConcurrency = 1
	cfg.AttemptTimeout = 2 * time.Hour
	return f, cfg, holderArrived
}

func TestRunWorkBudget(t *testing.T) {
	t.Run("waiting for the slot does not use it", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			_, cfg, holderArrived := budgetModel(t, 30*time.Second)
			r := NewRunner(cfg)
			go func() { _, _ = r.Run(t.Context(), Agent{}, "holder") }()
			<-holderArrived // the holder has the only slot for an hour
			start := time.Now()
			res, err := r.Run(WithWorkBudget(t.Context(), time.Minute), Agent{}, "worker")
			if err != nil {
				t.Fatalf("Run after an hour's wait for the slot and 30s of work, budget 1m: %v", err)
			}
			if res.Output != "ok" || time.Since(start) != time.Hour+30*time.Second {
				t.Errorf("Output %q after %v, want ok after 1h30s", res.Output, time.Since(start))
			}
		})
	})

	t.Run("the work is held to it once the slot is taken", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f, cfg, holderArrived := budgetModel(t, 2*time.Minute)
			r := NewRunner(cfg)
			go func() { _, _ = r.Run(t.Context(), Agent{}, "holder") }()
			<-holderArrived
			start := time.Now()
			_, err := r.Run(WithWorkBudget(t.Context(), time.Minute), Agent{}, "worker")
			if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "work budget 1m0s used up") {
				t.Fatalf("err = %v, want the work budget's deadline", err)
			}
			if took := time.Since(start); took != time.Hour+time.Minute {
				t.Errorf("Run returned after %v, want 1h1m: the hour's wait, then the minute's budget", took)
			}
			if f.count() != 2 {
				t.Errorf("requests = %d, want 2 (no retry past the budget)", f.count())
			}
		})
	})

	t.Run("a later turn's wait for a slot does not use it", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			_, cfg, holderArrived := budgetModel(t, 20*time.Second)
			r := NewRunner(cfg)
			a := Agent{Tools: []Tool{{Name: "lookup", Func: func(ctx context.Context, _ json.RawMessage) (string, error) {
				// Between the two turns another Run takes the slot for an hour.
				go func() { _, _ = r.Run(t.Context(), Agent{}, "holder") }()
				<-holderArrived
				return "found", nil
			}}}}
			start := time.Now()
			res, err := r.Run(WithWorkBudget(t.Context(), time.Minute), a, "worker")
			if err != nil {
				t.Fatalf("Run with 40s of work around an hour's wait for the second slot, budget 1m: %v", err)
			}
			if res.Turns != 2 || time.Since(start) != time.Hour+40*time.Second {
				t.Errorf("Turns %d after %v, want 2 after 1h40s", res.Turns, time.Since(start))
			}
		})
	})

	t.Run("tool time uses it", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			_, cfg, _ := budgetModel(t, 0)
			a := Agent{Tools: []Tool{{Name: "lookup", Func: func(ctx context.Context, _ json.RawMessage) (string, error) {
				select {
				case <-time.After(2 * time.Minute):
					return "found", nil
				case <-ctx.Done():
					return "", ctx.Err()
				}
			}}}}
			_, err := NewRunner(cfg).Run(WithWorkBudget(t.Context(), time.Minute), a, "worker")
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want the budget's deadline: the tool took 2m of a 1m budget", err)
			}
		})
	})

	t.Run("the caller's own deadline still applies while waiting", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			_, cfg, holderArrived := budgetModel(t, 0)
			r := NewRunner(cfg)
			go func() { _, _ = r.Run(t.Context(), Agent{}, "holder") }()
			<-holderArrived
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
			defer cancel()
			_, err := r.Run(WithWorkBudget(ctx, time.Minute), Agent{}, "worker")
			// The caller's deadline ends the wait: when it comes, or
			// earlier, once the line shows the slot would come after it.
			byDeadline := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrLineTooLong)
			if !byDeadline || strings.Contains(err.Error(), "work budget") {
				t.Fatalf("err = %v, want the caller's deadline, not the budget's", err)
			}
		})
	})
}

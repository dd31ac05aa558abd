package agent

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v5"
)

func TestRunRetries429HonoringRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, cfg, _ := setupInProcess(t, func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				w.Header().Set("Retry-After", "1")
				apiError(w, http.StatusTooManyRequests, "slow down")
				return
			}
			textAnswer(w, "ok", 1, 1)
		})
		var hooks atomic.Int32
		cfg.OnRetryFunc = func() { hooks.Add(1) }
		res, err := NewRunner(cfg).Run(t.Context(), Agent{}, "hi")
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if res.Retries != 1 || hooks.Load() != 1 {
			t.Errorf("Retries = %d, OnRetryFunc calls = %d, want 1 and 1", res.Retries, hooks.Load())
		}
		if f.count() != 2 {
			t.Fatalf("requests = %d, want 2", f.count())
		}
		// Time in the bubble is fake and moves only while everything waits:
		// the gap is exactly the wait Run chose. The configured backoff is at
		// most 1ms before the first retry, so only Retry-After explains 1s.
		if gap := f.arrival(1).Sub(f.arrival(0)); gap < time.Second || gap > time.Second+time.Millisecond {
			t.Errorf("second request came %v after the first, want 1s (Retry-After) plus at most 1ms of jitter", gap)
		}
	})
}

func TestRunRetriesServerErrorsThenGivesUp(t *testing.T) {
	f, cfg, _ := setup(t, func(w http.ResponseWriter, r *http.Request, n int) {
		apiError(w, http.StatusInternalServerError, "overloaded; you sent "+r.Header.Get("Authorization"))
	})
	cfg.MaxAttempts = 3
	var hooks atomic.Int32
	cfg.OnRetryFunc = func() { hooks.Add(1) }
	res, err := NewRunner(cfg).Run(t.Context(), Agent{}, "hi")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	var pe *ProviderError
	if !errors.As(err, &pe) || pe.StatusCode != 500 {
		t.Errorf("err = %v, want the last *ProviderError (500) wrapped", err)
	}
	if !strings.Contains(err.Error(), "gave up after 3 attempts") || !strings.Contains(err.Error(), "test-model") {
		t.Errorf("err = %q, want model name and attempt count", err)
	}
	if f.count() != 3 {
		t.Errorf("requests = %d, want MaxAttempts = 3", f.count())
	}
	if res.Retries != 2 || hooks.Load() != 2 {
		t.Errorf("Retries = %d, OnRetryFunc calls = %d, want 2 and 2", res.Retries, hooks.Load())
	}
	if strings.Contains(err.Error(), testKey) || strings.Contains(err.Error(), "overloaded") {
		t.Errorf("error message = %q, want neither the key nor the provider's message", err)
	}
}

func TestRunRetriesNonJSONServerError(t *testing.T) {
	f, cfg, _ := setup(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		textAnswer(w, "ok", 1, 1)
	})
	res, err := NewRunner(cfg).Run(t.Context(), Agent{}, "hi")
	if err != nil || res.Retries != 1 || f.count() != 2 {
		t.Errorf("err = %v, Retries = %d, requests = %d; want success after one retry", err, res.Retries, f.count())
	}
}

func TestRunRetriesTransportErrors(t *testing.T) {
	f, cfg, _ := setup(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			// Drop the connection without an answer.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		textAnswer(w, "ok", 1, 1)
	})
	res, err := NewRunner(cfg).Run(t.Context(), Agent{}, "hi")
	if err != nil || res.Retries != 1 || f.count() != 2 {
		t.Errorf("err = %v, Retries = %d, requests = %d; want success after one retry", err, res.Retries, f.count())
	}
}

func TestRunDoesNotRetryClientErrors(t *testing.T) {
	f, cfg, _ := setup(t, func(w http.ResponseWriter, r *http.Request, n int) {
		// Some proxies echo request headers; the key must still not leak.
		apiError(w, http.StatusBadRequest, "invalid request; you sent "+r.Header.Get("Authorization"))
	})
	res, err := NewRunner(cfg).Run(t.Context(), Agent{}, "hi")
	if err == nil {
		t.Fatal("Run succeeded, want an error")
	}
	if f.count() != 1 || res.Retries != 0 {
		t.Errorf("requests = %d, Retries = %d, want 1 and 0", f.count(), res.Retries)
	}
	if errors.Is(err, ErrUnavailable) {
		t.Errorf("err = %v: a 400 is not unavailability", err)
	}
	var pe *ProviderError
	if !errors.As(err, &pe) || pe.StatusCode != http.StatusBadRequest || !IsPermanent(err) {
		t.Errorf("err = %v, want a permanent *ProviderError 400", err)
	}
	if strings.Contains(err.Error(), testKey) {
		t.Errorf("error message contains the API key: %q", err)
	}
}

func TestRunStopsWhenRetryAfterExceedsBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, cfg, _ := setupInProcess(t, func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Retry-After", "3600")
			apiError(w, http.StatusServiceUnavailable, "maintenance")
		})
		cfg.MaxRetryWait = time.Second
		start := time.Now()
		_, err := NewRunner(cfg).Run(t.Context(), Agent{}, "hi")
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "exceeds the retry budget") {
			t.Fatalf("err = %v, want ErrUnavailable because the wait exceeds the budget", err)
		}
		if waited := time.Since(start); waited != 0 {
			t.Errorf("Run waited %v before giving up, want no wait at all", waited)
		}
		if f.count() != 1 {
			t.Errorf("requests = %d, want 1 (the wait exceeds the budget)", f.count())
		}
	})
}

func TestRunCancelDuringRetryWaitReturnsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, cfg, _ := setupInProcess(t, func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Retry-After", "3600")
			apiError(w, http.StatusServiceUnavailable, "maintenance")
		})
		cfg.MaxRetryWait = 2 * time.Hour
		var hooks atomic.Int32
		cfg.OnRetryFunc = func() { hooks.Add(1) }
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		start := time.Now()
		done := make(chan error, 1)
		go func() {
			_, err := NewRunner(cfg).Run(ctx, Agent{}, "hi")
			done <- err
		}()
		synctest.Wait() // Run is now waiting out the hour the server asked for
		if f.count() != 1 || hooks.Load() != 1 {
			t.Fatalf("requests = %d, OnRetryFunc calls = %d before cancel, want 1 and 1", f.count(), hooks.Load())
		}
		cancel()
		err := <-done
		if waited := time.Since(start); waited != 0 {
			t.Errorf("Run returned %v after it started, want at once on cancel", waited)
		}
		if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
			t.Errorf("err = %v, want context.Canceled and not ErrUnavailable", err)
		}
		var pe *ProviderError
		if !errors.As(err, &pe) || pe.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("err = %v, want the last *ProviderError (503) wrapped", err)
		}
		if f.count() != 1 {
			t.Errorf("requests = %d, want 1", f.count())
		}
	})
}

// hangingModel returns an in-process fake model that answers no request: each
// is held until its context is done. Use it inside a synctest bubble, where
// deadlines and timeouts pass in fake time.
func hangingModel(t *testing.T) (*fakeModel, Config) {
	t.Helper()
	f, cfg, _ := setupInProcess(t, func(w http.ResponseWriter, r *http.Request, n int) {
		<-r.Context().Done()
	})
	return f, cfg
}

func TestRunCallerDeadlineIsNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, cfg := hangingModel(t)
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := NewRunner(cfg).Run(ctx, Agent{}, "hi")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want context.DeadlineExceeded", err)
		}
		if errors.Is(err, ErrUnavailable) {
			t.Errorf("err = %v: the caller's deadline is not unavailability", err)
		}
		if took := time.Since(start); took != 100*time.Millisecond {
			t.Errorf("Run returned after %v, want at the caller's deadline (100ms)", took)
		}
		if f.count() != 1 {
			t.Errorf("requests = %d, want 1 (no retry after the caller's deadline)", f.count())
		}
	})
}

func TestRunAttemptTimeoutIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, cfg := hangingModel(t)
		cfg.AttemptTimeout = 50 * time.Millisecond
		cfg.MaxAttempts = 2
		res, err := NewRunner(cfg).Run(t.Context(), Agent{}, "hi")
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want ErrUnavailable wrapping context.DeadlineExceeded", err)
		}
		if f.count() != 2 || res.Retries != 1 {
			t.Errorf("requests = %d, Retries = %d, want 2 and 1", f.count(), res.Retries)
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 10, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, value string
		want        time.Duration
		ok          bool
	}{
		{"seconds", "2", 2 * time.Second, true},
		{"zero", "0", 0, true},
		{"http date", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"date in the past", now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{"empty", "", 0, false},
		{"negative", "-3", 0, false},
		{"garbage", "soon", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseRetryAfter(tt.value, now)
			if got != tt.want || ok != tt.ok {
				t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.value, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestRetryPolicy(t *testing.T) {
	cfg := Config{RetryBaseDelay: 10 * time.Millisecond, RetryMaxDelay: 40 * time.Millisecond, MaxRetryWait: time.Hour}

	t.Run("full jitter below a doubling ceiling", func(t *testing.T) {
		ceilings := []time.Duration{10, 20, 40, 40, 40} // ms, retry 1 to 5
		seen := map[time.Duration]bool{}
		for range 200 {
			p := newRetryPolicy(t.Context(), cfg)
			p.Reset()
			for i, c := range ceilings {
				d := p.NextBackOff()
				if d < 0 || d > c*time.Millisecond {
					t.Fatalf("wait before retry %d = %v, want within [0, %v]", i+1, d, c*time.Millisecond)
				}
				seen[d] = true
			}
		}
		if len(seen) < 2 {
			t.Errorf("1000 waits took %d distinct values, want jitter", len(seen))
		}
	})

	t.Run("Retry-After plus the draw", func(t *testing.T) {
		seen := map[time.Duration]bool{}
		for range 100 {
			p := newRetryPolicy(t.Context(), cfg)
			p.Reset()
			p.retryAfter, p.hasRetryAfter = 7*time.Second, true
			d := p.NextBackOff()
			if d < 7*time.Second || d > 7*time.Second+10*time.Millisecond {
				t.Fatalf("wait = %v, want the server's 7s plus at most 10ms", d)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Errorf("100 waits after Retry-After took %d distinct values, want jitter", len(seen))
		}
	})

	t.Run("stops when the waits would exceed MaxRetryWait", func(t *testing.T) {
		cfg := cfg
		cfg.MaxRetryWait = 10 * time.Second
		p := newRetryPolicy(t.Context(), cfg)
		p.Reset()
		p.retryAfter, p.hasRetryAfter = 6*time.Second, true
		if d := p.NextBackOff(); d < 6*time.Second || d > 6*time.Second+10*time.Millisecond {
			t.Fatalf("first wait = %v, want 6s and at most 10ms of jitter", d)
		}
		if d := p.NextBackOff(); d != backoff.Stop || !p.refused || p.refusedWait < 6*time.Second {
			t.Errorf("second wait = %v (refused %v, %v), want backoff.Stop: 12s of waiting exceeds 10s", d, p.refused, p.refusedWait)
		}
	})

	t.Run("stops when the wait would outlast the caller's deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		p := newRetryPolicy(ctx, cfg)
		p.Reset()
		p.retryAfter, p.hasRetryAfter = 5*time.Minute, true
		if d := p.NextBackOff(); d != backoff.Stop {
			t.Errorf("wait = %v, want backoff.Stop", d)
		}
	})
}

func TestRunSlotIsFreeDuringBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		firstFailed := make(chan struct{})
		f, cfg, _ := setupInProcess(t, func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				w.Header().Set("Retry-After", "1")
				apiError(w, http.StatusServiceUnavailable, "busy")
				close(firstFailed)
				return
			}
			textAnswer(w, "ok", 1, 1)
		})
		cfg.MaxConcurrency = 1
		r := NewRunner(cfg)
		slow := make(chan error, 1)
		go func() {
			_, err := r.Run(t.Context(), Agent{}, "A")
			slow <- err
		}()
		<-firstFailed
		// A now waits a second before retrying; B must not wait for it. Were
		// the slot held, B would block and the fake clock would move on to A's
		// retry first.
		if _, err := r.Run(t.Context(), Agent{}, "B"); err != nil {
			t.Fatalf("Run B: %v", err)
		}
		if err := <-slow; err != nil {
			t.Fatalf("Run A: %v", err)
		}
		if f.count() != 3 {
			t.Fatalf("requests = %d, want 3", f.count())
		}
		if got := f.request(1).Messages[0].Content; got != "B" {
			t.Errorf("second request was %q's, want B's: the slot was held during A's backoff", got)
		}
	})
}

package agent

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

func TestRunRetries429HonoringRetryAfter(t *testing.T) {
	f, cfg, _ := setup(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			apiError(w, http.StatusTooManyRequests, "slow down")
			return
		}
		textAnswer(w, "ok", 1, 1)
	})
	var hooks atomic.Int32
	cfg.OnRetry = func() { hooks.Add(1) }
	res, err := NewRunner(cfg).Run(t.Context(), Agent{}, "hi")
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Retries != 1 || hooks.Load() != 1 {
		t.Errorf("Retries = %d, OnRetry calls = %d, want 1 and 1", res.Retries, hooks.Load())
	}
	if f.count() != 2 {
		t.Fatalf("requests = %d, want 2", f.count())
	}
	// The configured backoff is at most 5ms: only Retry-After explains a 1s gap.
	if gap := f.arrival(1).Sub(f.arrival(0)); gap < time.Second {
		t.Errorf("second request came %v after the first, want >= 1s (Retry-After)", gap)
	}
}

func TestRunRetriesServerErrorsThenGivesUp(t *testing.T) {
	f, cfg, _ := setup(t, func(w http.ResponseWriter, r *http.Request, n int) {
		apiError(w, http.StatusInternalServerError, "overloaded")
	})
	cfg.MaxAttempts = 3
	var hooks atomic.Int32
	cfg.OnRetry = func() { hooks.Add(1) }
	res, err := NewRunner(cfg).Run(t.Context(), Agent{}, "hi")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	var apiErr *openai.APIError
	if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != 500 {
		t.Errorf("err = %v, want the last *openai.APIError (500) wrapped", err)
	}
	if !strings.Contains(err.Error(), "gave up after 3 attempts") || !strings.Contains(err.Error(), "test-model") {
		t.Errorf("err = %q, want model name and attempt count", err)
	}
	if f.count() != 3 {
		t.Errorf("requests = %d, want MaxAttempts = 3", f.count())
	}
	if res.Retries != 2 || hooks.Load() != 2 {
		t.Errorf("Retries = %d, OnRetry calls = %d, want 2 and 2", res.Retries, hooks.Load())
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
	var apiErr *openai.APIError
	if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != http.StatusBadRequest {
		t.Errorf("err = %v, want *openai.APIError 400", err)
	}
	if strings.Contains(err.Error(), testKey) {
		t.Errorf("error message contains the API key: %q", err)
	}
	if !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("error message = %q, want the key redacted", err)
	}
}

func TestRunStopsWhenRetryAfterExceedsBudget(t *testing.T) {
	f, cfg, _ := setup(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Retry-After", "3600")
		apiError(w, http.StatusServiceUnavailable, "maintenance")
	})
	cfg.MaxRetryWait = time.Second
	done := make(chan error, 1)
	go func() {
		_, err := NewRunner(cfg).Run(t.Context(), Agent{}, "hi")
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run is waiting out a Retry-After longer than MaxRetryWait instead of giving up")
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if f.count() != 1 {
		t.Errorf("requests = %d, want 1 (the wait exceeds the budget)", f.count())
	}
}

// hangingServer starts a fake model whose handler holds every request until
// the client goes away or the test ends, so no handler outlives the test.
func hangingServer(t *testing.T) (*fakeModel, Config) {
	t.Helper()
	release := make(chan struct{})
	f, cfg, _ := setup(t, func(w http.ResponseWriter, r *http.Request, n int) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // registered after setup's, so it runs before the server's Close
	return f, cfg
}

func TestRunCallerDeadlineIsNotRetried(t *testing.T) {
	f, cfg := hangingServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := NewRunner(cfg).Run(ctx, Agent{}, "hi")
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want context.DeadlineExceeded", err)
		}
		if errors.Is(err, ErrUnavailable) {
			t.Errorf("err = %v: the caller's deadline is not unavailability", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the caller's deadline")
	}
	if f.count() != 1 {
		t.Errorf("requests = %d, want 1 (no retry after the caller's deadline)", f.count())
	}
}

func TestRunAttemptTimeoutIsRetried(t *testing.T) {
	f, cfg := hangingServer(t)
	cfg.AttemptTimeout = 50 * time.Millisecond
	cfg.MaxAttempts = 2
	res, err := NewRunner(cfg).Run(t.Context(), Agent{}, "hi")
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want ErrUnavailable wrapping context.DeadlineExceeded", err)
	}
	if f.count() != 2 || res.Retries != 1 {
		t.Errorf("requests = %d, Retries = %d, want 2 and 1", f.count(), res.Retries)
	}
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

func TestBackoffIsBoundedFullJitter(t *testing.T) {
	base, ceiling := 10*time.Millisecond, 40*time.Millisecond
	for n, limit := range map[int]time.Duration{1: 10 * time.Millisecond, 2: 20 * time.Millisecond, 3: 40 * time.Millisecond, 10: 40 * time.Millisecond} {
		for range 200 {
			if d := backoff(base, ceiling, n); d < 0 || d > limit {
				t.Fatalf("backoff(retry %d) = %v, want within [0, %v]", n, d, limit)
			}
		}
	}
}

func TestRunSlotIsFreeDuringBackoff(t *testing.T) {
	firstFailed := make(chan struct{})
	f, cfg, _ := setup(t, func(w http.ResponseWriter, r *http.Request, n int) {
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
	// A now sleeps about a second before retrying; B must not wait for it.
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
}

package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

func TestIsPermanent(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"400", &ProviderError{StatusCode: 400}, true},
		{"401", &ProviderError{StatusCode: 401}, true},
		{"404 wrapped", fmt.Errorf("run agent: %w", &ProviderError{StatusCode: 404}), true},
		{"422 from go-openai", &openai.APIError{HTTPStatusCode: 422}, true},
		{"413 from go-openai, not JSON", &openai.RequestError{HTTPStatusCode: 413}, true},
		{"408", &ProviderError{StatusCode: 408}, false},
		{"409", &ProviderError{StatusCode: 409}, false},
		{"429", &ProviderError{StatusCode: 429}, false},
		{"500", &ProviderError{StatusCode: 500}, false},
		{"503 given up", fmt.Errorf("%w: %w", ErrUnavailable, &ProviderError{StatusCode: 503}), false},
		{"cancelled", context.Canceled, false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsPermanent(tt.err); got != tt.want {
				t.Errorf("IsPermanent(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestRunRetriesOnlyWhatRetryingCanFix(t *testing.T) {
	tests := []struct {
		status    int
		wantRetry bool
	}{
		{http.StatusBadRequest, false},
		{http.StatusUnauthorized, false},
		{http.StatusForbidden, false},
		{http.StatusNotFound, false},
		{http.StatusUnprocessableEntity, false},
		{http.StatusRequestTimeout, true},
		{http.StatusConflict, true},
		{http.StatusTooManyRequests, true},
		{http.StatusInternalServerError, true},
		{http.StatusServiceUnavailable, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			f, cfg, _ := setup(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					apiError(w, tt.status, "no")
					return
				}
				textAnswer(w, "ok", 1, 1)
			})
			_, err := NewRunner(cfg).Run(t.Context(), Agent{}, "hi")
			if tt.wantRetry {
				if err != nil || f.count() != 2 {
					t.Errorf("err = %v after %d requests, want success on the retry", err, f.count())
				}
				return
			}
			if !IsPermanent(err) || f.count() != 1 {
				t.Errorf("err = %v after %d requests, want one request and a permanent error", err, f.count())
			}
		})
	}
}

// TestRunRetriesAreJittered starts many Runs whose first attempts fail at
// the same instant; their retries must not all come back at the same instant.
func TestRunRetriesAreJittered(t *testing.T) {
	for _, retryAfter := range []string{"", "1"} {
		t.Run("Retry-After "+retryAfter, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const runs = 20
				var (
					mu      sync.Mutex
					retries = map[time.Time]int{} // arrival instant of each retry
				)
				_, cfg, _ := setupInProcess(t, func(w http.ResponseWriter, r *http.Request, n int) {
					mu.Lock()
					defer mu.Unlock()
					if n <= runs {
						if retryAfter != "" {
							w.Header().Set("Retry-After", retryAfter)
						}
						apiError(w, http.StatusServiceUnavailable, "busy")
						return
					}
					retries[time.Now()]++
					textAnswer(w, "ok", 1, 1)
				})
				cfg.MaxConcurrency = runs
				r := NewRunner(cfg)
				var wg sync.WaitGroup
				for range runs {
					wg.Go(func() {
						if _, err := r.Run(t.Context(), Agent{}, "hi"); err != nil {
							t.Errorf("Run: %v", err)
						}
					})
				}
				wg.Wait()
				if len(retries) < runs/2 {
					t.Errorf("%d retries came at %d distinct instants, want them spread by jitter: %v", runs, len(retries), retries)
				}
			})
		})
	}
}

// TestRunErrorsAndLogsCarryNoProviderText checks that a provider's error
// answer that repeats the prompt reaches neither Run's error nor the logs.
func TestRunErrorsAndLogsCarryNoProviderText(t *testing.T) {
	const question = "my name is Ada Lovelace and my grade is unfair"
	tests := []struct {
		name   string
		status int
		write  func(w http.ResponseWriter, prompt string)
	}{
		{"JSON error repeating the prompt", http.StatusBadRequest, func(w http.ResponseWriter, prompt string) {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{
				"message": "invalid content: " + prompt, "type": "invalid_request_error", "code": "bad_content", "param": prompt,
			}})
		}},
		{"JSON error with the prompt as its type and code", http.StatusBadRequest, func(w http.ResponseWriter, prompt string) {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{
				"message": prompt, "type": prompt, "code": prompt,
			}})
		}},
		{"plain text body repeating the prompt", http.StatusBadRequest, func(w http.ResponseWriter, prompt string) {
			http.Error(w, "cannot process "+prompt, http.StatusBadRequest)
		}},
		{"server error repeating the prompt, retried", http.StatusInternalServerError, func(w http.ResponseWriter, prompt string) {
			writeJSON(w, http.StatusInternalServerError, map[string]any{"error": map[string]any{"message": "failed on " + prompt}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f *fakeModel
			f, cfg, logs := setup(t, func(w http.ResponseWriter, r *http.Request, n int) {
				req := f.request(n - 1)
				tt.write(w, req.Messages[len(req.Messages)-1].Content)
			})
			cfg.MaxAttempts = 2
			_, err := NewRunner(cfg).Run(t.Context(), Agent{Name: "ask"}, question)
			if err == nil {
				t.Fatal("Run succeeded, want the provider's error")
			}
			if !strings.Contains(err.Error(), fmt.Sprint(tt.status)) {
				t.Errorf("error %q, want the status %d", err, tt.status)
			}
			out := logs.String()
			if !strings.Contains(out, "run failed") {
				t.Errorf("want the failure logged, logs: %s", out)
			}
			for _, word := range []string{"Ada", "Lovelace", "unfair"} {
				if strings.Contains(err.Error(), word) {
					t.Errorf("error carries the student's %q: %s", word, err)
				}
				if strings.Contains(out, word) {
					t.Errorf("logs carry the student's %q: %s", word, out)
				}
			}
		})
	}
	t.Run("type and code kept when short tokens", func(t *testing.T) {
		_, cfg, _ := setup(t, func(w http.ResponseWriter, r *http.Request, n int) {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{
				"message": "too long", "type": "invalid_request_error", "code": "context_length_exceeded",
			}})
		})
		_, err := NewRunner(cfg).Run(t.Context(), Agent{}, question)
		want := "model provider answered HTTP 400 Bad Request (type invalid_request_error, code context_length_exceeded)"
		if err == nil || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("err = %v, want it to end %q", err, want)
		}
		var pe *ProviderError
		if !errors.As(err, &pe) || pe.Code != "context_length_exceeded" {
			t.Errorf("err = %#v, want a *ProviderError with the code", err)
		}
	})
}

package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func offlineRunner(t *testing.T, latency time.Duration) (*Runner, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	return NewRunner(Config{
		Offline:        true,
		OfflineLatency: latency,
		Logger:         slog.New(slog.NewTextHandler(logs, nil)),
	}), logs
}

func TestOfflineWelcome(t *testing.T) {
	r, logs := offlineRunner(t, 0)
	if !r.Offline() || r.Model() != OfflineModel {
		t.Errorf("Offline() = %v, Model() = %q", r.Offline(), r.Model())
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "offline") {
		t.Errorf("want one offline warning at construction, logs: %q", logs.String())
	}
	input := "Register this student.\nStudent name: Ada Lovelace\nCourse: CS101"
	res, err := r.Run(t.Context(), Agent{Instructions: "Welcome students."}, input)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !strings.HasPrefix(res.Output, "Welcome to the class, Ada Lovelace!") {
		t.Errorf("Output = %q, want a welcome using the name", res.Output)
	}
	if res.Turns != 1 || res.Usage.PromptTokens != 11 || res.Usage.CompletionTokens == 0 ||
		res.Usage.TotalTokens != res.Usage.PromptTokens+res.Usage.CompletionTokens {
		t.Errorf("Result = %+v, want 1 turn and word-count usage (11 prompt words)", res)
	}
	again, _ := r.Run(t.Context(), Agent{Instructions: "Welcome students."}, input)
	if again.Output != res.Output {
		t.Errorf("offline answers differ for the same input: %q vs %q", res.Output, again.Output)
	}
}

func TestOfflineQuestion(t *testing.T) {
	r, _ := offlineRunner(t, 0)
	res, err := r.Run(t.Context(), Agent{}, "When is   the\nmidterm?")
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := "You asked: When is the midterm?; connect a model with LLM_API_KEY or LLM_BASE_URL for a real answer."
	if !strings.Contains(res.Output, "offline model") || !strings.HasSuffix(res.Output, want) {
		t.Errorf("Output = %q, want it to say it is offline and end with %q", res.Output, want)
	}

	long := strings.Repeat("word ", 100)
	res, _ = r.Run(t.Context(), Agent{}, long)
	if strings.Count(res.Output, "word") > 20 || !strings.Contains(res.Output, "…") {
		t.Errorf("Output = %q, want a shortened echo", res.Output)
	}
}

func TestOfflineLatency(t *testing.T) {
	t.Run("waits", func(t *testing.T) {
		r, _ := offlineRunner(t, 20*time.Millisecond)
		res, err := r.Run(t.Context(), Agent{}, "hi")
		if err != nil || res.Latency < 20*time.Millisecond {
			t.Errorf("err = %v, Latency = %v; want success after >= 20ms", err, res.Latency)
		}
	})
	t.Run("cancel returns promptly", func(t *testing.T) {
		r, _ := offlineRunner(t, time.Hour)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, err := r.Run(ctx, Agent{}, "hi")
			done <- err
		}()
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	})
}

func TestDefaults(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"openai", Config{}, DefaultModel},
		{"gemini", Config{BaseURL: "https://generativelanguage.googleapis.com/v1beta/openai/"}, DefaultGeminiModel},
		{"ollama", Config{BaseURL: "http://127.0.0.1:11434/v1"}, DefaultModel},
		{"explicit", Config{BaseURL: "https://generativelanguage.googleapis.com/v1beta/openai/", Model: "gemini-2.5-pro"}, "gemini-2.5-pro"},
		{"offline", Config{Offline: true}, OfflineModel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			if got := NewRunner(tt.cfg).Model(); got != tt.want {
				t.Errorf("Model() = %q, want %q", got, tt.want)
			}
		})
	}
	c := Config{}.withDefaults()
	if c.MaxConcurrency != 16 || c.MaxAttempts != 4 || c.MaxRetryWait != 30*time.Second ||
		c.AttemptTimeout != 60*time.Second || c.RetryBaseDelay != 250*time.Millisecond || c.RetryMaxDelay != 8*time.Second || c.Logger == nil {
		t.Errorf("defaults = %+v", c)
	}
}

func TestOfflineCutsAnswerAtMaxTokens(t *testing.T) {
	r := NewRunner(Config{Offline: true, MaxTokens: 5, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	res, err := r.Run(t.Context(), Agent{}, "Student name: Ada Lovelace")
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Output != "Welcome to the class, Ada" || !res.Truncated || res.Usage.CompletionTokens != 5 {
		t.Errorf("Result = %+v, want the first 5 words, Truncated and 5 completion tokens", res)
	}
}

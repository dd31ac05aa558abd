package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

const testKey = "sk-test-secret-key-123"

// wireRequest is a chat completions request as the server sees it, decoded
// independently of go-openai.
type wireRequest struct {
	Model               string `json:"model"`
	MaxTokens           *int   `json:"max_tokens"`
	MaxCompletionTokens *int   `json:"max_completion_tokens"`
	Messages            []struct {
		Role       string `json:"role"`
		Content    string `json:"content"`
		ToolCallID string `json:"tool_call_id"`
		ToolCalls  []struct {
			ID       string `json:"id"`
			Type     string `json:"type"`
			Function struct {
				Name      string `json:"name"`
				Arguments string `json:"arguments"`
			} `json:"function"`
		} `json:"tool_calls"`
	} `json:"messages"`
	Tools []struct {
		Type     string `json:"type"`
		Function struct {
			Name       string          `json:"name"`
			Parameters json.RawMessage `json:"parameters"`
		} `json:"function"`
	} `json:"tools"`
}

// fakeModel is a local OpenAI-compatible server. handle answers request n
// (1-based); it runs on the server's goroutines.
type fakeModel struct {
	mu       sync.Mutex
	requests []wireRequest
	arrivals []time.Time
}

func (f *fakeModel) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

func (f *fakeModel) request(i int) wireRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[i]
}

func (f *fakeModel) arrival(i int) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.arrivals[i]
}

// setup starts a fake model server answering with handle and returns it with
// a Config pointing at it (fast retries, logs captured in the returned buffer).
func setup(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, n int)) (*fakeModel, Config, *syncBuffer) {
	t.Helper()
	f := &fakeModel{}
	srv := httptest.NewServer(f.handler(handle))
	t.Cleanup(srv.Close)
	cfg, logs := testConfig(srv.URL + "/v1")
	return f, cfg, logs
}

// setupInProcess is setup without a network: the Config's HTTP client hands
// each request straight to the fake model's handler. Everything then blocks
// on channels and timers only, so it works inside a synctest bubble, where
// synctest.Wait tells when every goroutine is stuck and time is fake.
// A handle that blocks must also return when r.Context() is done.
func setupInProcess(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, n int)) (*fakeModel, Config, *syncBuffer) {
	t.Helper()
	f := &fakeModel{}
	cfg, logs := testConfig("http://model.test/v1")
	cfg.HTTPClient = &http.Client{Transport: handlerTransport{f.handler(handle)}}
	return f, cfg, logs
}

func testConfig(baseURL string) (Config, *syncBuffer) {
	logs := &syncBuffer{}
	return Config{
		BaseURL:        baseURL,
		APIKey:         testKey,
		Model:          "test-model",
		RetryBaseDelay: time.Millisecond,
		RetryMaxDelay:  5 * time.Millisecond,
		Logger:         slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}, logs
}

// handler records each chat completions request, then lets handle answer it.
func (f *fakeModel) handler(handle func(w http.ResponseWriter, r *http.Request, n int)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		var req wireRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad json: "+err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.requests = append(f.requests, req)
		f.arrivals = append(f.arrivals, time.Now())
		n := len(f.requests)
		f.mu.Unlock()
		handle(w, r, n)
	})
}

// handlerTransport answers requests by calling h in the caller's goroutine.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	if err := r.Context().Err(); err != nil {
		return nil, err // as a real client would report a cancelled request
	}
	return rec.Result(), nil
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func textAnswer(w http.ResponseWriter, content string, prompt, completion int) {
	answer(w, content, "stop", prompt, completion)
}

// answer writes a final answer with the given finish reason ("stop", "length").
func answer(w http.ResponseWriter, content, finishReason string, prompt, completion int) {
	writeJSON(w, http.StatusOK, map[string]any{
		"id": "chatcmpl-1", "object": "chat.completion", "model": "test-model",
		"choices": []any{map[string]any{
			"index":         0,
			"message":       map[string]any{"role": "assistant", "content": content},
			"finish_reason": finishReason,
		}},
		"usage": map[string]any{"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
	})
}

func toolCallAnswer(w http.ResponseWriter, id, name, args string, prompt, completion int) {
	writeJSON(w, http.StatusOK, map[string]any{
		"id": "chatcmpl-2", "object": "chat.completion", "model": "test-model",
		"choices": []any{map[string]any{
			"index": 0,
			"message": map[string]any{"role": "assistant", "content": nil, "tool_calls": []any{map[string]any{
				"id": id, "type": "function",
				"function": map[string]any{"name": name, "arguments": args},
			}}},
			"finish_reason": "tool_calls",
		}},
		"usage": map[string]any{"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
	})
}

func apiError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"message": msg, "type": "test_error", "code": fmt.Sprint(status),
	}})
}

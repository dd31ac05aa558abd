package agent

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

// embedRequest is an embeddings request as the server sees it.
type embedRequest struct {
	Input          []string `json:"input"`
	Model          string   `json:"model"`
	EncodingFormat string   `json:"encoding_format"`
	Auth           string   `json:"-"`
}

// embedServer is a local stand-in for POST /v1/embeddings. Unless handle
// answers request n (1-based) itself by returning true, it answers with
// vectorOf of each input, listed in reverse order with their indexes.
type embedServer struct {
	mu       sync.Mutex
	requests []embedRequest
}

func vectorOf(s string) []float32 {
	return []float32{float32(len(s)), float32(strings.Count(s, "a")), 1}
}

func setupEmbed(t *testing.T, handle func(w http.ResponseWriter, req embedRequest, n int) bool) (*embedServer, Config, *syncBuffer) {
	t.Helper()
	es := &embedServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/embeddings" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		var req embedRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		req.Auth = r.Header.Get("Authorization")
		es.mu.Lock()
		es.requests = append(es.requests, req)
		n := len(es.requests)
		es.mu.Unlock()
		if handle != nil && handle(w, req, n) {
			return
		}
		var data []any
		for i := len(req.Input) - 1; i >= 0; i-- {
			data = append(data, map[string]any{"object": "embedding", "index": i, "embedding": vectorOf(req.Input[i])})
		}
		writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data, "model": req.Model,
			"usage": map[string]any{"prompt_tokens": 1, "total_tokens": 1}})
	}))
	t.Cleanup(srv.Close)
	cfg, logs := testConfig(srv.URL + "/v1")
	return es, cfg, logs
}

func (es *embedServer) all() []embedRequest {
	es.mu.Lock()
	defer es.mu.Unlock()
	return slices.Clone(es.requests)
}

func TestEmbedBatchesAndKeepsOrder(t *testing.T) {
	es, cfg, _ := setupEmbed(t, nil)
	texts := make([]string, 2*EmbedBatchSize+22)
	for i := range texts {
		texts[i] = strings.Repeat("a", i%7) + fmt.Sprint(i)
	}
	e := NewEmbedder(cfg, "test-embedding")
	got, err := e.Embed(t.Context(), texts)
	if err != nil {
		t.Fatal(err)
	}
	reqs := es.all()
	if len(reqs) != 3 || len(reqs[0].Input) != EmbedBatchSize || len(reqs[1].Input) != EmbedBatchSize || len(reqs[2].Input) != 22 {
		t.Fatalf("%d requests, want 3 of 64, 64 and 22 texts", len(reqs))
	}
	for _, r := range reqs {
		if r.Model != "test-embedding" || r.EncodingFormat != "float" || r.Auth != "Bearer "+testKey {
			t.Errorf("request model %q, format %q, auth %q", r.Model, r.EncodingFormat, r.Auth)
		}
	}
	if len(got) != len(texts) {
		t.Fatalf("%d vectors for %d texts", len(got), len(texts))
	}
	for i, v := range got {
		if !slices.Equal(v, vectorOf(texts[i])) {
			t.Fatalf("vector %d = %v, want %v (the vector of text %d)", i, v, vectorOf(texts[i]), i)
		}
	}
	if got, err := e.Embed(t.Context(), nil); err != nil || len(got) != 0 || len(es.all()) != 3 {
		t.Errorf("no texts: %v, %v, and %d requests, want nothing sent", got, err, len(es.all()))
	}
}

func TestEmbedRetriesLikeChat(t *testing.T) {
	es, cfg, _ := setupEmbed(t, func(w http.ResponseWriter, req embedRequest, n int) bool {
		if n == 1 {
			apiError(w, http.StatusServiceUnavailable, "busy")
			return true
		}
		return false
	})
	retries := 0
	cfg.OnRetryFunc = func() { retries++ }
	got, err := NewEmbedder(cfg, "m").Embed(t.Context(), []string{"x"})
	if err != nil || len(got) != 1 || len(es.all()) != 2 || retries != 1 {
		t.Errorf("got %v, %v after %d requests and %d retries, want a vector after one retry", got, err, len(es.all()), retries)
	}
}

func TestEmbedFailsWithoutTheTexts(t *testing.T) {
	const secret = "Ada Lovelace asks about her grade"
	es, cfg, logs := setupEmbed(t, func(w http.ResponseWriter, req embedRequest, n int) bool {
		apiError(w, http.StatusBadRequest, "cannot embed: "+strings.Join(req.Input, " | "))
		return true
	})
	_, err := NewEmbedder(cfg, "m").Embed(t.Context(), []string{secret})
	if !IsPermanent(err) || len(es.all()) != 1 {
		t.Fatalf("err = %v after %d requests, want one request and a permanent error", err, len(es.all()))
	}
	if strings.Contains(err.Error(), "Ada") || strings.Contains(logs.String(), "Ada") {
		t.Errorf("the text reached the error or the logs: %v\n%s", err, logs)
	}
}

func TestEmbedRefusesMalformedAnswers(t *testing.T) {
	tests := []struct {
		name string
		data []any
	}{
		{"too few", []any{map[string]any{"index": 0, "embedding": []float32{1}}}},
		{"index out of range", []any{map[string]any{"index": 0, "embedding": []float32{1}}, map[string]any{"index": 2, "embedding": []float32{1}}}},
		{"twice the same index", []any{map[string]any{"index": 0, "embedding": []float32{1}}, map[string]any{"index": 0, "embedding": []float32{1}}}},
		{"empty vector", []any{map[string]any{"index": 0, "embedding": []float32{1}}, map[string]any{"index": 1, "embedding": []float32{}}}},
		{"different dimensions", []any{map[string]any{"index": 0, "embedding": []float32{1}}, map[string]any{"index": 1, "embedding": []float32{1, 2}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, cfg, _ := setupEmbed(t, func(w http.ResponseWriter, req embedRequest, n int) bool {
				writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": tt.data, "model": "m"})
				return true
			})
			if got, err := NewEmbedder(cfg, "m").Embed(t.Context(), []string{"a", "b"}); err == nil {
				t.Errorf("got %v, want an error", got)
			}
		})
	}
}

func TestEmbedOfflineFails(t *testing.T) {
	cfg, _ := testConfig("http://127.0.0.1:1/v1")
	cfg.Offline = true
	if _, err := NewEmbedder(cfg, "m").Embed(t.Context(), []string{"x"}); err == nil || !strings.Contains(err.Error(), "offline") {
		t.Errorf("err = %v, want an error naming the offline model", err)
	}
}

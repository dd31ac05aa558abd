package llmstub_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/classbot/classbot/agent"
	"github.com/classbot/classbot/internal/llmstub"
)

func TestEmbeddingsThroughTheAgentsEmbedder(t *testing.T) {
	stub := llmstub.New(0)
	srv := httptest.NewServer(stub)
	t.Cleanup(srv.Close)
	e := agent.NewEmbedder(agent.Config{BaseURL: srv.URL + "/v1", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, "stub-embedding")
	texts := []string{"When is the exam?", "The exam is on 6 March.", "Parking is behind building B."}
	got, err := e.Embed(t.Context(), texts)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if !slices.Equal(v, llmstub.Embedding(texts[i])) || len(v) != llmstub.EmbeddingDims {
			t.Errorf("vector %d differs from Embedding(%q)", i, texts[i])
		}
	}
	if cos(got[0], got[1]) <= cos(got[0], got[2]) {
		t.Errorf("the question is no closer to the exam section (%v) than to parking (%v)", cos(got[0], got[1]), cos(got[0], got[2]))
	}
	if stub.EmbedRequests() != 1 || stub.Requests() != 0 {
		t.Errorf("embeddings requests %d, completions %d; want 1 and 0", stub.EmbedRequests(), stub.Requests())
	}
}

func TestEmbeddingsTakeOneStringAndRefuseNone(t *testing.T) {
	srv := httptest.NewServer(llmstub.New(0))
	t.Cleanup(srv.Close)
	resp, err := http.Post(srv.URL+"/v1/embeddings", "application/json", strings.NewReader(`{"model":"m","input":"exam"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"index":0`) {
		t.Errorf("one string: %d %s", resp.StatusCode, body)
	}
	resp, err = http.Post(srv.URL+"/v1/embeddings", "application/json", strings.NewReader(`{"model":"m","input":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("no input: status %d, want 400", resp.StatusCode)
	}
}

func cos(a, b []float32) float64 {
	var dot float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
	}
	return dot // the stand-in's vectors have length 1
}

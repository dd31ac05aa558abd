package main

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/classbot/classbot/internal/llmstub"
	"github.com/classbot/classbot/internal/pgtest"
)

// With LLM_EMBEDDING_MODEL, indexing embeds the sections through the
// provider's /v1/embeddings (again only for what changed), and a search
// embeds the question; when the provider is gone the search still answers,
// by words only.
func TestEmbeddingModelMakesTheSearchHybrid(t *testing.T) {
	stub := llmstub.New(0)
	srv := httptest.NewServer(stub)
	defer srv.Close()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "syllabus.md"),
		[]byte("# Syllabus\n## Grading\nThe exam counts for 40%.\n## Parking\nCars go in lot B behind the library.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	db := courseDB(t)
	env := map[string]string{"DATABASE_URL": db, "COURSE_DIR": dir, "LLM_BASE_URL": srv.URL + "/v1", "LLM_EMBEDDING_MODEL": "stub-embed"}

	if _, err := runClassbot(t, env, "course", "index"); err != nil {
		t.Fatal(err)
	}
	var vectors int
	pgtest.QueryRow(t, db, `SELECT count(*) FROM course_embeddings WHERE model = 'stub-embed'`, nil, &vectors)
	if vectors != 2 || stub.EmbedRequests() != 1 {
		t.Fatalf("%d vectors in %d requests after indexing, want 2 in 1", vectors, stub.EmbedRequests())
	}
	if _, err := runClassbot(t, env, "course", "index"); err != nil {
		t.Fatal(err)
	}
	if n := stub.EmbedRequests(); n != 1 {
		t.Errorf("indexing unchanged notes made %d embeddings requests in all, want still 1", n)
	}

	out, err := runClassbot(t, env, "course", "search", "where do cars park")
	if err != nil || !strings.Contains(out, "[1] syllabus.md › Parking") {
		t.Errorf("hybrid search: %v\n%s", err, out)
	}
	if n := stub.EmbedRequests(); n != 2 {
		t.Errorf("the search made %d embeddings requests in all, want 2 (the question's)", n-1)
	}

	srv.Close()
	out, err = runClassbot(t, env, "course", "search", "where do cars park")
	if err != nil || !strings.Contains(out, "[1] syllabus.md › Parking") {
		t.Errorf("with the provider gone: %v\n%s", err, out)
	}
}

func TestEmbeddingModelNeedsAProvider(t *testing.T) {
	_, err := loadConfig(func(k string) string { return map[string]string{"LLM_EMBEDDING_MODEL": "m"}[k] })
	if err == nil || !strings.Contains(err.Error(), "LLM_EMBEDDING_MODEL needs a model provider") {
		t.Errorf("LLM_EMBEDDING_MODEL alone: %v", err)
	}
}

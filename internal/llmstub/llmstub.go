// Package llmstub is a local stand-in for an OpenAI-compatible model
// provider: it speaks POST /v1/chat/completions as go-openai expects, with a
// configurable latency, and POST /v1/embeddings with deterministic vectors
// ([Embedding]). Tests and the load generator point LLM_BASE_URL at it;
// nothing here is used when classbot talks to a real model.
package llmstub

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
)

// Server answers chat completions. Its fields may be set before the first
// request; it is safe for concurrent use after that.
type Server struct {
	// LatencyFunc returns how long to wait before answering. Default: none.
	LatencyFunc func() time.Duration
	// AnswerFunc builds the answer from the last user message.
	// Default: "Welcome, NAME!" for a message with a "Student name:" line,
	// "Answer: QUESTION" otherwise.
	AnswerFunc func(user string) string

	requests atomic.Int64
	embeds   atomic.Int64
	mu       sync.Mutex
	last     []Message
	release  chan struct{} // closed by Close: sleeping requests return early
	once     sync.Once
}

// Message is one chat message as the stand-in saw it.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// New returns a Server that answers after latency.
func New(latency time.Duration) *Server {
	return &Server{LatencyFunc: func() time.Duration { return latency }}
}

// Requests reports how many completions were asked for.
func (s *Server) Requests() int64 { return s.requests.Load() }

// EmbedRequests reports how many embeddings requests were made.
func (s *Server) EmbedRequests() int64 { return s.embeds.Load() }

// LastMessages returns the messages of the latest request.
func (s *Server) LastMessages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.last...)
}

// Close wakes every request still sleeping, so an httptest.Server wrapping
// this one can close without waiting out the latency.
func (s *Server) Close() {
	s.once.Do(func() {
		s.mu.Lock()
		if s.release == nil {
			s.release = make(chan struct{})
		}
		close(s.release)
		s.mu.Unlock()
	})
}

func (s *Server) releaseCh() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.release == nil {
		s.release = make(chan struct{})
	}
	return s.release
}

// ServeHTTP implements the chat completions and embeddings endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/embeddings") {
		s.serveEmbeddings(w, r)
		return
	}
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/chat/completions") {
		http.Error(w, `{"error":{"message":"not found","type":"invalid_request_error"}}`, http.StatusNotFound)
		return
	}
	var req struct {
		Model    string    `json:"model"`
		Messages []Message `json:"messages"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":{"message":%q,"type":"invalid_request_error"}}`, err.Error())
		return
	}
	s.requests.Add(1)
	s.mu.Lock()
	s.last = req.Messages
	s.mu.Unlock()

	if s.LatencyFunc != nil {
		if d := s.LatencyFunc(); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			case <-s.releaseCh():
				t.Stop()
			}
		}
	}
	user := ""
	for _, m := range req.Messages {
		if m.Role == "user" {
			user = m.Content
		}
	}
	answer := defaultAnswer(user)
	if s.AnswerFunc != nil {
		answer = s.AnswerFunc(user)
	}
	resp := map[string]any{
		"id":      fmt.Sprintf("chatcmpl-stub-%d", s.requests.Load()),
		"object":  "chat.completion",
		"created": time.Now().Unix(),
		"model":   req.Model,
		"choices": []map[string]any{{
			"index":         0,
			"message":       map[string]any{"role": "assistant", "content": answer},
			"finish_reason": "stop",
		}},
		"usage": map[string]int{"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30},
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func defaultAnswer(user string) string {
	for _, line := range strings.Split(user, "\n") {
		if name, ok := strings.CutPrefix(line, "Student name:"); ok {
			return fmt.Sprintf("Welcome to the class, %s! (from the stand-in model)", strings.TrimSpace(name))
		}
	}
	return "Answer from the stand-in model: " + user
}

// EmbeddingDims is the length of the stand-in's vectors.
const EmbeddingDims = 64

// Embedding returns the stand-in's vector for text: each lower-cased word
// (a run of letters and digits) adds 1 to the dimension its FNV-1a hash
// picks, and the vector is scaled to length 1 (all zeros for a text without
// words). Texts sharing words get close vectors, so ranking by cosine
// similarity behaves like a crude lexical match, the same on every run.
func Embedding(text string) []float32 {
	v := make([]float32, EmbeddingDims)
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		h := fnv.New32a()
		h.Write([]byte(w))
		v[h.Sum32()%EmbeddingDims]++
	}
	var norm float64
	for _, x := range v {
		norm += float64(x) * float64(x)
	}
	if norm > 0 {
		n := float32(math.Sqrt(norm))
		for i := range v {
			v[i] /= n
		}
	}
	return v
}

// serveEmbeddings answers POST /v1/embeddings: input is a string or a list
// of strings; each gets Embedding of it, at its index.
func (s *Server) serveEmbeddings(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string          `json:"model"`
		Input json.RawMessage `json:"input"`
	}
	var inputs []string
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<20)).Decode(&req)
	if err == nil {
		var one string
		if json.Unmarshal(req.Input, &one) == nil {
			inputs = []string{one}
		} else {
			err = json.Unmarshal(req.Input, &inputs)
		}
	}
	if err != nil || len(inputs) == 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":{"message":"input must be a string or a non-empty list of strings","type":"invalid_request_error"}}`)
		return
	}
	s.embeds.Add(1)
	data := make([]map[string]any, len(inputs))
	for i, in := range inputs {
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": Embedding(in)}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"object": "list", "data": data, "model": req.Model,
		"usage": map[string]int{"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
	})
}

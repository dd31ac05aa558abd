package llmstub

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"
)

// Stream is a model stand-in that answers every chat completion with one
// answer streamed as OpenAI's chat.completion.chunk server-sent events, the
// way a slow model writes: it waits ttft (its time to first token), then
// writes one word every every. Its URL + "/v1" is an OpenAI base URL.
type Stream struct {
	*httptest.Server
	first atomic.Int64 // unix nanos of the latest answer's first chunk
	calls atomic.Int64
}

// NewStream starts a Stream of answer.
func NewStream(answer string, ttft, every time.Duration) *Stream {
	s := &Stream{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.calls.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		time.Sleep(ttft)
		for i, word := range strings.Fields(answer) {
			if i == 0 {
				s.first.Store(time.Now().UnixNano())
			}
			c, _ := json.Marshal(map[string]any{"object": "chat.completion.chunk",
				"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": word + " "}}}})
			fmt.Fprintf(w, "data: %s\n\n", c)
			w.(http.Flusher).Flush()
			time.Sleep(every)
		}
		fmt.Fprint(w, "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
	}))
	return s
}

// FirstChunk is when the latest answer's first chunk was written.
func (s *Stream) FirstChunk() time.Time { return time.Unix(0, s.first.Load()) }

// Calls is how many completions were asked for.
func (s *Stream) Calls() int64 { return s.calls.Load() }

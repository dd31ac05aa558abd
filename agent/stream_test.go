package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// sseChunk writes one server-sent event holding a chat.completion.chunk
// with delta (and finish, if not empty), and flushes it.
func sseChunk(w http.ResponseWriter, delta map[string]any, finish string) {
	choice := map[string]any{"index": 0, "delta": delta, "finish_reason": nil}
	if finish != "" {
		choice["finish_reason"] = finish
	}
	b, _ := json.Marshal(map[string]any{
		"id": "chatcmpl-s", "object": "chat.completion.chunk", "model": "test-model",
		"choices": []any{choice},
	})
	fmt.Fprintf(w, "data: %s\n\n", b)
	w.(http.Flusher).Flush()
}

func sseUsage(w http.ResponseWriter, prompt, completion int) {
	b, _ := json.Marshal(map[string]any{
		"id": "chatcmpl-s", "object": "chat.completion.chunk", "model": "test-model", "choices": []any{},
		"usage": map[string]any{"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
	})
	fmt.Fprintf(w, "data: %s\n\n", b)
}

func sseDone(w http.ResponseWriter) { fmt.Fprint(w, "data: [DONE]\n\n") }

func sseHeader(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
}

// textStream streams parts as the answer's content, then stop and [DONE].
func textStream(w http.ResponseWriter, parts ...string) {
	sseHeader(w)
	for _, p := range parts {
		sseChunk(w, map[string]any{"content": p}, "")
	}
	sseChunk(w, map[string]any{}, "stop")
	sseUsage(w, 3, len(parts))
	sseDone(w)
}

// recorder collects what onText was called with.
type recorder struct {
	mu    sync.Mutex
	texts []string
}

func (r *recorder) onText(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.texts = append(r.texts, s)
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.texts...)
}

func TestRunStreamShowsTheAnswerAsItGrows(t *testing.T) {
	_, cfg, _ := setup(t, func(w http.ResponseWriter, r *http.Request, n int) {
		textStream(w, "Homework 2 ", "is due ", "Friday.")
	})
	var rec recorder
	res, err := NewRunner(cfg).RunStream(context.Background(), Agent{Name: "ask"}, "when is hw 2 due?", rec.onText)
	if err != nil {
		t.Fatal(err)
	}
	if res.Output != "Homework 2 is due Friday." {
		t.Errorf("Output = %q", res.Output)
	}
	want := []string{"Homework 2 ", "Homework 2 is due ", "Homework 2 is due Friday."}
	if got := rec.all(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("onText got %q, want %q", got, want)
	}
	if res.Usage.TotalTokens != 6 {
		t.Errorf("usage = %+v, want the stream's last chunk's", res.Usage)
	}
}

func TestRunStreamFinalTextEqualsRun(t *testing.T) {
	parts := []string{"The ", "exam is ", "on <May 3> & ", "lasts 2h."}
	_, cfg, _ := setup(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Header.Get("Accept") == "text/event-stream" || strings.Contains(r.Header.Get("Accept"), "event-stream") {
			textStream(w, parts...)
			return
		}
		textAnswer(w, strings.Join(parts, ""), 1, 1)
	})
	runner := NewRunner(cfg)
	plain, err := runner.Run(context.Background(), Agent{Name: "ask"}, "q")
	if err != nil {
		t.Fatal(err)
	}
	streamed, err := runner.RunStream(context.Background(), Agent{Name: "ask"}, "q", func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	if plain.Output != streamed.Output {
		t.Errorf("streamed %q, not streamed %q", streamed.Output, plain.Output)
	}
}

// A tool call whose name, id and arguments come over several chunks is
// gathered and run; only the final turn's text is shown.
func TestRunStreamToolCallSplitOverChunks(t *testing.T) {
	var gotArgs string
	tool := Tool{Name: "search_course", Func: func(_ context.Context, args json.RawMessage) (string, error) {
		gotArgs = string(args)
		return "hw 2: due Friday", nil
	}}
	idx := 0
	f, cfg, _ := setup(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n > 1 {
			textStream(w, "Due ", "Friday.")
			return
		}
		sseHeader(w)
		call := func(fn map[string]any, id string) map[string]any {
			tc := map[string]any{"index": idx, "function": fn}
			if id != "" {
				tc["id"], tc["type"] = id, "function"
			}
			return map[string]any{"tool_calls": []any{tc}}
		}
		sseChunk(w, call(map[string]any{"name": "search_", "arguments": ""}, "call_9"), "")
		sseChunk(w, call(map[string]any{"name": "course", "arguments": `{"que`}, ""), "")
		sseChunk(w, call(map[string]any{"arguments": `ry":"hw 2"}`}, ""), "")
		sseChunk(w, map[string]any{}, "tool_calls")
		sseDone(w)
	})
	var rec recorder
	res, err := NewRunner(cfg).RunStream(context.Background(), Agent{Name: "ask", Tools: []Tool{tool}}, "hw 2?", rec.onText)
	if err != nil {
		t.Fatal(err)
	}
	if gotArgs != `{"query":"hw 2"}` {
		t.Errorf("tool got arguments %q", gotArgs)
	}
	if res.Output != "Due Friday." || res.Turns != 2 {
		t.Errorf("Output %q after %d turns", res.Output, res.Turns)
	}
	second := f.request(1)
	var tc string
	for _, m := range second.Messages {
		for _, c := range m.ToolCalls {
			tc = c.ID + " " + c.Function.Name + " " + c.Function.Arguments
		}
	}
	if tc != `call_9 search_course {"query":"hw 2"}` {
		t.Errorf("second request replays the call as %q", tc)
	}
	if got := rec.all(); len(got) != 2 || got[1] != "Due Friday." {
		t.Errorf("onText got %q", got)
	}
}

// A stream cut before its finish reason (no [DONE]) is a failed attempt:
// retried, and the retry's text is shown from the start again.
func TestRunStreamCutIsRetried(t *testing.T) {
	f, cfg, _ := setup(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			sseHeader(w)
			sseChunk(w, map[string]any{"content": "Half an ans"}, "")
			return // connection ends: no finish reason, no [DONE]
		}
		textStream(w, "Whole answer.")
	})
	var rec recorder
	res, err := NewRunner(cfg).RunStream(context.Background(), Agent{Name: "ask"}, "q", rec.onText)
	if err != nil {
		t.Fatal(err)
	}
	if res.Output != "Whole answer." || res.Retries != 1 || f.count() != 2 {
		t.Errorf("Output %q, %d retries, %d requests", res.Output, res.Retries, f.count())
	}
	if got := rec.all(); len(got) != 2 || got[0] != "Half an ans" || got[1] != "Whole answer." {
		t.Errorf("onText got %q", got)
	}
}

func TestRunStreamCutEveryTimeFails(t *testing.T) {
	_, cfg, _ := setup(t, func(w http.ResponseWriter, r *http.Request, n int) {
		sseHeader(w)
		sseChunk(w, map[string]any{"content": "Half"}, "")
	})
	cfg.MaxAttempts = 2
	_, err := NewRunner(cfg).RunStream(context.Background(), Agent{Name: "ask"}, "q", func(string) {})
	if err == nil || !strings.Contains(err.Error(), "stream ended before") {
		t.Fatalf("err = %v, want the cut stream named", err)
	}
}

// The first text is shown while the model is still writing: the stand-in
// holds the rest of its stream until onText has seen the first chunk.
func TestRunStreamFirstTextBeforeTheModelFinishes(t *testing.T) {
	seen := make(chan struct{})
	_, cfg, _ := setup(t, func(w http.ResponseWriter, r *http.Request, n int) {
		sseHeader(w)
		sseChunk(w, map[string]any{"content": "First words"}, "")
		select {
		case <-seen:
		case <-time.After(10 * time.Second):
			return // the runner never showed the first chunk: the stream is cut
		}
		sseChunk(w, map[string]any{"content": ", then the rest."}, "stop")
		sseDone(w)
	})
	var once sync.Once
	res, err := NewRunner(cfg).RunStream(context.Background(), Agent{Name: "ask"}, "q", func(s string) {
		once.Do(func() { close(seen) })
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Output != "First words, then the rest." {
		t.Errorf("Output %q", res.Output)
	}
}

// The offline model answers in one piece: nothing to show before it.
func TestRunStreamOfflineShowsNothingBefore(t *testing.T) {
	var rec recorder
	res, err := NewRunner(Config{Offline: true}).RunStream(context.Background(), Agent{Name: "ask"}, "hello?", rec.onText)
	if err != nil || res.Output == "" {
		t.Fatalf("%+v, %v", res, err)
	}
	if got := rec.all(); len(got) != 0 {
		t.Errorf("onText got %q", got)
	}
}

// A provider that ignores "stream": true and answers in one JSON body
// still answers, tool calls included; with nothing more to come, nothing
// is shown before the answer.
func TestRunStreamProviderThatDoesNotStream(t *testing.T) {
	tool := Tool{Name: "search_course", Func: func(context.Context, json.RawMessage) (string, error) { return "hw 2: Friday", nil }}
	f, cfg, _ := setup(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			toolCallAnswer(w, "call_1", "search_course", `{"query":"hw 2"}`, 1, 1)
			return
		}
		textAnswer(w, "Due Friday.", 2, 3)
	})
	var rec recorder
	res, err := NewRunner(cfg).RunStream(context.Background(), Agent{Name: "ask", Tools: []Tool{tool}}, "hw 2?", rec.onText)
	if err != nil {
		t.Fatal(err)
	}
	if res.Output != "Due Friday." || res.Turns != 2 || res.Usage.TotalTokens != 7 || toolResults(f, 1)[0] != "hw 2: Friday" {
		t.Errorf("result %+v", res)
	}
	if got := rec.all(); len(got) != 0 {
		t.Errorf("onText got %q", got)
	}
}

package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

// toolCallsAnswer answers with one assistant message asking for every call
// in calls (each a tool name and its JSON arguments).
func toolCallsAnswer(w http.ResponseWriter, calls ...[2]string) {
	var tcs []any
	for i, c := range calls {
		tcs = append(tcs, map[string]any{
			"id": fmt.Sprintf("call_%d", i+1), "type": "function",
			"function": map[string]any{"name": c[0], "arguments": c[1]},
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": "chatcmpl-3", "object": "chat.completion", "model": "test-model",
		"choices": []any{map[string]any{
			"index":         0,
			"message":       map[string]any{"role": "assistant", "content": nil, "tool_calls": tcs},
			"finish_reason": "tool_calls",
		}},
		"usage": map[string]any{"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
	})
}

// toolResults returns the tool messages of request i (0-based), in order.
func toolResults(f *fakeModel, i int) []string {
	var out []string
	for _, m := range f.request(i).Messages {
		if m.Role == "tool" {
			out = append(out, m.Content)
		}
	}
	return out
}

// searchOnce is a model that calls search_course with args, then answers.
func searchOnce(t *testing.T, args string) (*fakeModel, Config, *syncBuffer) {
	t.Helper()
	return setup(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			toolCallAnswer(w, "call_1", SearchCourseTool, args, 1, 1)
			return
		}
		textAnswer(w, "done", 1, 1)
	})
}

func TestSearchFailureIsLoggedNotShownToTheModel(t *testing.T) {
	const question = "Ada Lovelace asks: when is the exam?"
	f, cfg, logs := searchOnce(t, `{"query":"exam date"}`)
	tool := NewSearchCourseTool(func(ctx context.Context, q string) ([]Passage, error) {
		return nil, errors.New(`failed to connect to host=10.0.0.5 user=classbot database=classbot: password authentication failed`)
	})
	if _, err := NewRunner(cfg).Run(t.Context(), Agent{Name: "ask", Tools: []Tool{tool}}, question); err != nil {
		t.Fatal(err)
	}
	if got := toolResults(f, 1); len(got) != 1 || got[0] != SearchFailedText {
		t.Errorf("tool results %q, want only %q", got, SearchFailedText)
	}
	for _, m := range f.request(1).Messages {
		if strings.Contains(m.Content, "10.0.0.5") || strings.Contains(m.Content, "password") {
			t.Errorf("the model was sent the error: %+v", m)
		}
	}
	out := logs.String()
	if !strings.Contains(out, "tool failed") || !strings.Contains(out, "password authentication failed") {
		t.Errorf("want the whole error logged, logs: %s", out)
	}
	if strings.Contains(out, "Ada") || strings.Contains(out, "exam") {
		t.Errorf("logs carry the student's question or the model's query: %s", out)
	}
}

func TestSearchArgumentErrorsAreToldToTheModel(t *testing.T) {
	tests := []struct {
		args, want string
	}{
		{`{"query":"  "}`, "error: query is empty: pass the words to search for"},
		{`"exam"`, `error: arguments must be {"query": "..."}`},
		{`{"query": 5}`, `error: arguments must be {"query": "..."}`},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			f, cfg, _ := searchOnce(t, tt.args)
			searched := false
			tool := NewSearchCourseTool(func(ctx context.Context, q string) ([]Passage, error) {
				searched = true
				return nil, nil
			})
			if _, err := NewRunner(cfg).Run(t.Context(), Agent{Tools: []Tool{tool}}, "q"); err != nil {
				t.Fatal(err)
			}
			if got := toolResults(f, 1); len(got) != 1 || got[0] != tt.want || searched {
				t.Errorf("tool results %q (searched %v), want %q and no search", got, searched, tt.want)
			}
		})
	}
}

func TestSearchQueryIsCut(t *testing.T) {
	long := strings.Repeat("deadline ", 200) // 1,800 characters
	args, _ := json.Marshal(map[string]string{"query": long})
	_, cfg, _ := searchOnce(t, string(args))
	var got string
	tool := NewSearchCourseTool(func(ctx context.Context, q string) ([]Passage, error) {
		got = q
		return nil, nil
	})
	if _, err := NewRunner(cfg).Run(t.Context(), Agent{Tools: []Tool{tool}}, "q"); err != nil {
		t.Fatal(err)
	}
	if n := utf8.RuneCountInString(got); n > MaxQueryRunes || n < MaxQueryRunes-len("deadline ") || strings.HasSuffix(got, " ") || !strings.HasSuffix(got, "deadline") {
		t.Errorf("searched %d runes %q, want whole words, at most %d runes", n, got, MaxQueryRunes)
	}
}

func TestCutQuery(t *testing.T) {
	tests := []struct {
		q    string
		n    int
		want string
	}{
		{"  short  ", 10, "short"},
		{"one two three", 9, "one two"},
		{"onetwothree", 5, "onetw"},
		{"ééééé ééé", 7, "ééééé"},
	}
	for _, tt := range tests {
		if got := cutQuery(tt.q, tt.n); got != tt.want {
			t.Errorf("cutQuery(%q, %d) = %q, want %q", tt.q, tt.n, got, tt.want)
		}
	}
}

func TestSearchResultsAreBounded(t *testing.T) {
	f, cfg, _ := searchOnce(t, `{"query":"exam"}`)
	tool := NewSearchCourseTool(func(ctx context.Context, q string) ([]Passage, error) {
		ps := make([]Passage, 3*MaxSearchResults)
		for i := range ps {
			ps[i] = Passage{Citation: fmt.Sprintf("notes.md › Part %d", i+1), Text: "exam", Score: 1, Confidence: 0.9}
		}
		return ps, nil
	})
	if _, err := NewRunner(cfg).Run(t.Context(), Agent{Tools: []Tool{tool}}, "q"); err != nil {
		t.Fatal(err)
	}
	if got := ParsePassages(toolResults(f, 1)[0]); len(got) != MaxSearchResults {
		t.Errorf("the model was shown %d passages, want MaxSearchResults = %d", len(got), MaxSearchResults)
	}
}

func TestSearchWithNoConfidentPassageSaysSo(t *testing.T) {
	f, cfg, _ := searchOnce(t, `{"query":"parking"}`)
	tool := NewSearchCourseTool(func(ctx context.Context, q string) ([]Passage, error) {
		return []Passage{{Citation: "faq.md › Rooms", Text: "Room 101.", Score: 3, Confidence: MinConfidence - 0.01}}, nil
	})
	if _, err := NewRunner(cfg).Run(t.Context(), Agent{Tools: []Tool{tool}}, "q"); err != nil {
		t.Fatal(err)
	}
	got := toolResults(f, 1)[0]
	if !strings.HasPrefix(got, NoAnswerText) || strings.Contains(got, "Room 101") {
		t.Errorf("tool result %q, want it to start %q and show no weak passage", got, NoAnswerText)
	}
}

func TestRunBoundsToolCallsPerTurn(t *testing.T) {
	const asked = MaxToolCallsPerTurn + 2
	f, cfg, _ := setup(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			calls := make([][2]string, asked)
			for i := range calls {
				calls[i] = [2]string{"lookup", fmt.Sprintf(`{"n":%d}`, i)}
			}
			toolCallsAnswer(w, calls...)
			return
		}
		textAnswer(w, "done", 1, 1)
	})
	ran := 0
	a := Agent{Tools: []Tool{{Name: "lookup", Func: func(context.Context, json.RawMessage) (string, error) {
		ran++
		return "found", nil
	}}}}
	if _, err := NewRunner(cfg).Run(t.Context(), a, "q"); err != nil {
		t.Fatal(err)
	}
	got := toolResults(f, 1)
	if ran != MaxToolCallsPerTurn || len(got) != asked {
		t.Fatalf("ran %d calls and answered %d, want %d run and all %d answered", ran, len(got), MaxToolCallsPerTurn, asked)
	}
	for i, c := range got {
		want := "found"
		if i >= MaxToolCallsPerTurn {
			want = tooManyCallsText
		}
		if c != want {
			t.Errorf("result %d = %q, want %q", i+1, c, want)
		}
	}
	if !strings.Contains(tooManyCallsText, "too many") {
		t.Errorf("the extra calls' result %q does not say why", tooManyCallsText)
	}
}

func TestRunAllowsThreeSearchesPerQuestion(t *testing.T) {
	var f *fakeModel
	f, cfg, _ := setup(t, func(w http.ResponseWriter, r *http.Request, n int) {
		// Search again after every result, once more than allowed.
		if done := len(toolResults(f, n-1)); done <= MaxSearches {
			toolCallAnswer(w, fmt.Sprintf("call_%d", done+1), SearchCourseTool, fmt.Sprintf(`{"query":"try %d"}`, done+1), 1, 1)
			return
		}
		textAnswer(w, "The notes don't say.", 1, 1)
	})
	var queries []string
	tool := NewSearchCourseTool(func(ctx context.Context, q string) ([]Passage, error) {
		queries = append(queries, q)
		return nil, nil
	})
	r := NewRunner(cfg)
	if _, err := r.Run(t.Context(), Agent{Tools: []Tool{tool}}, "q"); err != nil {
		t.Fatal(err)
	}
	if len(queries) != MaxSearches {
		t.Errorf("searched %q, want the first %d only", queries, MaxSearches)
	}
	got := toolResults(f, MaxSearches+1)
	if len(got) != MaxSearches+1 || got[MaxSearches] != SearchLimitText {
		t.Errorf("tool results %q, want the last to be %q", got, SearchLimitText)
	}
	// The limit is per Run: the same tool searches again in the next one.
	queries = nil
	if _, err := r.Run(t.Context(), Agent{Tools: []Tool{tool}}, "q"); err != nil {
		t.Fatal(err)
	}
	if len(queries) != MaxSearches {
		t.Errorf("second Run searched %d times, want %d", len(queries), MaxSearches)
	}
}

func TestSearchCourseToolDescriptionAsksToSearchAgain(t *testing.T) {
	d := NewSearchCourseTool(nil).Description
	for _, want := range []string{"search again with other words", "strong, partial or weak", "at most 3 searches"} {
		if !strings.Contains(d, want) {
			t.Errorf("description %q lacks %q", d, want)
		}
	}
}

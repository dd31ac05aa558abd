package bot_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/classbot/classbot/agent"
	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/store"
)

// testCourse is a small course indexed into a fresh in-memory store.
func testCourse(t *testing.T) *store.Memory {
	t.Helper()
	m := store.NewMemory()
	var files []store.CourseFile
	for path, content := range map[string]string{
		"schedule.md": "# Schedule\n## Assignment 1\nAssignment 1 is due on Friday 6 February at 23:59.\n" +
			"## Assignment 2\nAssignment 2 is due on Friday 6 March at 23:59.\n",
		"syllabus.md": "# Syllabus\n## Grading\nAssignments count for 60% and the exam for 40%.\n",
	} {
		files = append(files, store.CourseFile{Path: path, Hash: path, Sections: store.SplitSections(path, content)})
	}
	def, err := m.CourseByName(t.Context(), store.DefaultCourse)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.IndexCourse(t.Context(), m, def.ID, files, false); err != nil {
		t.Fatal(err)
	}
	return m
}

// modelStandIn is a local OpenAI-compatible server: handle answers the
// n-th request (from 1); every request is kept.
type modelStandIn struct {
	mu       sync.Mutex
	requests []wireRequest
}

type wireMessage struct {
	Role       string `json:"role"`
	Content    string `json:"content"`
	ToolCallID string `json:"tool_call_id"`
}

type wireRequest struct {
	Messages []wireMessage `json:"messages"`
	Tools    []struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	} `json:"tools"`
}

func (m *modelStandIn) request(i int) wireRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.requests[i]
}

func (m *modelStandIn) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.requests)
}

func startModel(t *testing.T, handle func(n int, req wireRequest) map[string]any) (*modelStandIn, *agent.Runner) {
	t.Helper()
	m := &modelStandIn{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req wireRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		m.mu.Lock()
		m.requests = append(m.requests, req)
		n := len(m.requests)
		m.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": "chatcmpl-t", "object": "chat.completion", "model": "stand-in",
			"choices": []any{handle(n, req)},
			"usage":   map[string]int{"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
		})
	}))
	t.Cleanup(srv.Close)
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	return m, agent.NewRunner(agent.Config{BaseURL: srv.URL + "/v1", APIKey: "k", Model: "stand-in", MaxAttempts: 1, Logger: log})
}

func textChoice(s string) map[string]any {
	return map[string]any{"index": 0, "finish_reason": "stop", "message": map[string]any{"role": "assistant", "content": s}}
}

func toolChoice(id, name, args string) map[string]any {
	return map[string]any{"index": 0, "finish_reason": "tool_calls", "message": map[string]any{
		"role": "assistant", "content": nil,
		"tool_calls": []any{map[string]any{"id": id, "type": "function", "function": map[string]any{"name": name, "arguments": args}}},
	}}
}

func newCourseBot(t *testing.T, a bot.Agent, opts bot.Options) *bot.Dispatcher {
	t.Helper()
	opts.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	b := bot.New(store.NewMemory(), a, opts)
	d := bot.NewDispatcher(t.Context(), b, bot.Config{Mode: bot.ModeSync, Logger: opts.Logger})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 5*time.Second)
		defer cancel()
		_ = d.Shutdown(ctx)
	})
	return d
}

func ask(t *testing.T, d *bot.Dispatcher, c bot.Command) bot.Reply {
	t.Helper()
	r := newRecorder()
	if err := d.Dispatch(t.Context(), c, r); err != nil {
		t.Fatal(err)
	}
	return r.answer(t)
}

// The model stand-in asks for search_course; the tool result it gets back
// holds the right section, cited, and nothing retrieved is in the system
// message; the model's answer is what the student sees.
func TestAskSearchesTheCourseNotesThroughTheToolLoop(t *testing.T) {
	const answer = "Assignment 2 is due on Friday 6 March at 23:59 (schedule.md › Assignment 2)."
	model, runner := startModel(t, func(n int, req wireRequest) map[string]any {
		if n == 1 {
			return toolChoice("call_1", agent.SearchCourseTool, `{"query":"assignment 2 due"}`)
		}
		return textChoice(answer)
	})
	d := newCourseBot(t, runner, bot.Options{Notes: testCourse(t), CourseInstructions: "Course: Go 101."})
	reply := ask(t, d, askCmd("When is assignment 2 due?"))
	if reply.Text != answer {
		t.Errorf("reply %q, want the model's answer", reply.Text)
	}
	if model.count() != 2 {
		t.Fatalf("model saw %d requests, want 2", model.count())
	}
	first := model.request(0)
	if len(first.Tools) != 1 || first.Tools[0].Function.Name != agent.SearchCourseTool {
		t.Errorf("tools offered: %+v", first.Tools)
	}
	msgs := model.request(1).Messages
	tool := msgs[len(msgs)-1]
	if tool.Role != "tool" || tool.ToolCallID != "call_1" {
		t.Fatalf("last message %+v, want the tool result", tool)
	}
	ps := agent.ParsePassages(tool.Content)
	if len(ps) == 0 || ps[0].Citation != "schedule.md › Assignment 2" || !strings.Contains(ps[0].Text, "6 March") {
		t.Errorf("tool result %q, want the Assignment 2 section first", tool.Content)
	}
	sys := msgs[0]
	if sys.Role != "system" || !strings.Contains(sys.Content, "search_course") || !strings.Contains(sys.Content, "asking the teacher") ||
		!strings.Contains(sys.Content, "Course: Go 101.") {
		t.Errorf("system message %q, want the notes rules and the teacher's instructions", sys.Content)
	}
	for _, m := range msgs {
		if m.Role != "tool" && strings.Contains(m.Content, "6 March") {
			t.Errorf("retrieved text in a %s message: %q", m.Role, m.Content)
		}
	}
}

func TestAskWithoutNotesOffersNoTool(t *testing.T) {
	model, runner := startModel(t, func(int, wireRequest) map[string]any { return textChoice("Hi.") })
	d := newCourseBot(t, runner, bot.Options{})
	ask(t, d, askCmd("When is assignment 2 due?"))
	if r := model.request(0); len(r.Tools) != 0 || strings.Contains(r.Messages[0].Content, "search_course") {
		t.Errorf("without notes the model got tools %+v / instructions %q", r.Tools, r.Messages[0].Content)
	}
}

// With the offline model, notes that are silent give the declining answer,
// and notes that speak give a quote with its citation.
func TestAskDeclinesWhenTheNotesAreSilent(t *testing.T) {
	runner := agent.NewRunner(agent.Config{Offline: true, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	d := newCourseBot(t, runner, bot.Options{Notes: testCourse(t)})
	reply := ask(t, d, askCmd("Where is the cafeteria?"))
	if reply.Text != agent.OfflineDeclineText || !strings.Contains(reply.Text, "ask your teacher") {
		t.Errorf("reply %q, want the decline", reply.Text)
	}
	reply = ask(t, d, askCmd("When is assignment 2 due?"))
	if !strings.HasPrefix(reply.Text, "From the course notes (schedule.md › Assignment 2):") || !strings.Contains(reply.Text, "6 March") {
		t.Errorf("reply %q, want the quoted, cited section", reply.Text)
	}
}

// historyAgent answers "answer N" and keeps the History each call got.
type historyAgent struct {
	mu      sync.Mutex
	history [][]agent.Message
}

func (h *historyAgent) Run(_ context.Context, a agent.Agent, input string) (agent.Result, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.history = append(h.history, a.History)
	return agent.Result{Output: "answer to " + input}, nil
}

func (h *historyAgent) last() []agent.Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.history[len(h.history)-1]
}

func askAs(q, workspace, channel, user string) bot.Command {
	c := askCmd(q)
	c.Workspace, c.Channel, c.User = workspace, channel, user
	return c
}

func TestAskRemembersPerStudentChannelAndWorkspace(t *testing.T) {
	mem := store.NewMemory()
	h := &historyAgent{}
	d := newCourseBot(t, h, bot.Options{Memory: mem, MemoryTurns: 2})

	ask(t, d, askAs("When is assignment 1 due?", "W1", "C1", "U1"))
	ask(t, d, askAs("And the exam?", "W1", "C1", "U1"))
	ask(t, d, askAs("and what about the second one?", "W1", "C1", "U1"))
	want := []agent.Message{
		{Role: agent.RoleUser, Content: "When is assignment 1 due?"},
		{Role: agent.RoleAssistant, Content: "answer to When is assignment 1 due?"},
		{Role: agent.RoleUser, Content: "And the exam?"},
		{Role: agent.RoleAssistant, Content: "answer to And the exam?"},
	}
	if got := h.last(); !equalMessages(got, want) {
		t.Errorf("history %+v, want the two earlier turns word for word", got)
	}
	ask(t, d, askAs("fourth", "W1", "C1", "U1"))
	if got := h.last(); len(got) != 4 || got[0].Content != "And the exam?" {
		t.Errorf("history %+v, want only the last MemoryTurns=2 turns", got)
	}

	for _, c := range []bot.Command{
		askAs("q", "W1", "C1", "U2"), // another student
		askAs("q", "W1", "C2", "U1"), // another channel
		askAs("q", "W2", "C1", "U1"), // another workspace
	} {
		ask(t, d, c)
		if got := h.last(); len(got) != 0 {
			t.Errorf("%s/%s/%s got someone else's memory: %+v", c.Workspace, c.Channel, c.User, got)
		}
	}
	d2 := askAs("q", "W1", "C1", "U1")
	d2.Platform = bot.PlatformDiscord
	ask(t, d, d2)
	if got := h.last(); len(got) != 0 {
		t.Errorf("another platform got the memory: %+v", got)
	}
}

func TestAskForgetsTurnsOlderThanTheTTL(t *testing.T) {
	mem := store.NewMemory()
	key := store.AskKey{Platform: bot.PlatformConsole, Workspace: "W1", Channel: "C1", User: "U1"}
	for _, tr := range []store.AskTurn{
		{AskKey: key, Question: "old", Answer: "old answer", At: time.Now().Add(-2 * time.Hour)},
		{AskKey: key, Question: "recent", Answer: "recent answer", At: time.Now().Add(-time.Minute)},
	} {
		if err := mem.AddAskTurn(t.Context(), tr); err != nil {
			t.Fatal(err)
		}
	}
	h := &historyAgent{}
	d := newCourseBot(t, h, bot.Options{Memory: mem, MemoryTTL: time.Hour})
	ask(t, d, askAs("now", "W1", "C1", "U1"))
	if got := h.last(); len(got) != 2 || got[0].Content != "recent" {
		t.Errorf("history %+v, want only the turn within the TTL", got)
	}
}

// checkingResponder looks in the memory store when the answer is delivered.
type checkingResponder struct {
	*recorder
	mem   *store.Memory
	key   store.AskKey
	found chan int
}

func (r *checkingResponder) Respond(ctx context.Context, rep bot.Reply) error {
	turns, _ := r.mem.AskTurns(ctx, r.key, time.Time{}, 10)
	r.found <- len(turns)
	return r.recorder.Respond(ctx, rep)
}

func TestAskStoresTheTurnBeforeTheAnswerIsDelivered(t *testing.T) {
	mem := store.NewMemory()
	d := newCourseBot(t, &historyAgent{}, bot.Options{Memory: mem})
	r := &checkingResponder{recorder: newRecorder(), mem: mem,
		key: store.AskKey{Platform: bot.PlatformConsole, Workspace: "W1", Channel: "C1", User: "U1"}, found: make(chan int, 1)}
	if err := d.Dispatch(t.Context(), askAs("q", "W1", "C1", "U1"), r); err != nil {
		t.Fatal(err)
	}
	r.answer(t)
	if n := <-r.found; n != 1 {
		t.Errorf("when the answer was delivered the store held %d turns, want 1", n)
	}
}

func equalMessages(a, b []agent.Message) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

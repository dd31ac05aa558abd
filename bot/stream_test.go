package bot_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/classbot/classbot/agent"
	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/store"
)

// streamingAgent streams parts, then returns their concatenation.
type streamingAgent struct{ parts []string }

func (s *streamingAgent) Run(ctx context.Context, a agent.Agent, input string) (agent.Result, error) {
	return s.RunStream(ctx, a, input, func(string) {})
}

func (s *streamingAgent) RunStream(ctx context.Context, a agent.Agent, input string, onText func(string)) (agent.Result, error) {
	var sb strings.Builder
	for _, p := range s.parts {
		sb.WriteString(p)
		onText(sb.String())
	}
	return agent.Result{Output: sb.String(), Turns: 1}, nil
}

// streamRecorder is a recorder that can stream, and notes whether any
// Stream came after the FollowUp.
type streamRecorder struct {
	*recorder
	mu       sync.Mutex
	streamed []string
	late     bool
}

func (r *streamRecorder) Stream(_ context.Context, text string) {
	_, _, followUps := r.counts()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.late = r.late || followUps > 0
	r.streamed = append(r.streamed, text)
}

func streamSetup(t *testing.T, a bot.Agent, mode bot.Mode) *bot.Dispatcher {
	t.Helper()
	b := bot.New(store.NewMemory(), a, bot.Options{})
	d := bot.NewDispatcher(t.Context(), b, bot.Config{Mode: mode})
	t.Cleanup(func() { _ = d.Shutdown(context.WithoutCancel(t.Context())) })
	return d
}

func TestAskStreamsBeforeTheFollowUp(t *testing.T) {
	a := &streamingAgent{parts: []string{"Homework 2 ", "is due ", "Friday."}}
	d := streamSetup(t, a, bot.ModeAsync)
	r := &streamRecorder{recorder: newRecorder()}
	if err := d.Dispatch(t.Context(), askCmd("when is hw 2 due?"), r); err != nil {
		t.Fatal(err)
	}
	got := r.answer(t)
	if got.Text != "Homework 2 is due Friday." {
		t.Errorf("follow-up %q", got.Text)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	want := []string{"Homework 2 ", "Homework 2 is due ", "Homework 2 is due Friday."}
	if strings.Join(r.streamed, "|") != strings.Join(want, "|") || r.late {
		t.Errorf("streamed %q (after the follow-up: %v), want %q before it", r.streamed, r.late, want)
	}
}

// A Responder that cannot stream, or an Agent that cannot, gets the answer
// in one piece as before.
func TestAskWithoutStreamingIsOnePiece(t *testing.T) {
	d := streamSetup(t, &fakeAgent{run: func(context.Context, string) (string, error) { return "One piece.", nil }}, bot.ModeAsync)
	r := &streamRecorder{recorder: newRecorder()}
	if err := d.Dispatch(t.Context(), askCmd("q?"), r); err != nil {
		t.Fatal(err)
	}
	if got := r.answer(t); got.Text != "One piece." {
		t.Errorf("follow-up %q", got.Text)
	}
	if len(r.streamed) != 0 {
		t.Errorf("streamed %q with an agent that cannot stream", r.streamed)
	}
}

// Sync mode answers inside the request: there is nothing to edit yet, so
// nothing is streamed.
func TestSyncAskDoesNotStream(t *testing.T) {
	a := &streamingAgent{parts: []string{"A ", "b."}}
	d := streamSetup(t, a, bot.ModeSync)
	r := &streamRecorder{recorder: newRecorder()}
	if err := d.Dispatch(t.Context(), askCmd("q?"), r); err != nil {
		t.Fatal(err)
	}
	if got := r.answer(t); got.Text != "A b." || len(r.streamed) != 0 {
		t.Errorf("answer %q, streamed %q", got.Text, r.streamed)
	}
}

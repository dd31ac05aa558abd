package bot_test

import (
	"strings"
	"testing"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/store"
)

func TestAskAnswerCarriesFeedbackAndAClickIsStored(t *testing.T) {
	mem := store.NewMemory()
	d := bot.NewDispatcher(t.Context(), bot.New(mem, &fakeAgent{}, bot.Options{Memory: mem}), bot.Config{Mode: bot.ModeAsync})
	t.Cleanup(func() { _ = d.Shutdown(t.Context()) })

	ask := askCmd("when is hw 2 due?")
	r := newRecorder()
	if err := d.Dispatch(t.Context(), ask, r); err != nil {
		t.Fatal(err)
	}
	if got := r.answer(t); got.Feedback != ask.InteractionID || got.Ephemeral {
		t.Fatalf("answer %+v, want public with buttons for %s", got, ask.InteractionID)
	}

	click := bot.Command{Platform: ask.Platform, InteractionID: "click-1", Workspace: "W1", Channel: "C1", User: "U2",
		Name: bot.FeedbackCommand, Options: map[string]string{bot.FeedbackAnswer: ask.InteractionID, bot.FeedbackHelpful: "false"}}
	cr := newRecorder()
	if err := d.Dispatch(t.Context(), click, cr); err != nil {
		t.Fatal(err)
	}
	if got := cr.answer(t); !got.Ephemeral || !strings.Contains(got.Text, "didn't help") || got.Feedback != "" {
		t.Errorf("click answered %+v, want an ephemeral thanks without buttons", got)
	}
	fb, err := mem.UnhelpfulFeedback(t.Context(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(fb) != 1 || fb[0].Interaction != ask.InteractionID || fb[0].Question != "when is hw 2 due?" {
		t.Errorf("stored %+v, want the click on the question's interaction with its question", fb)
	}
}

func TestFeedbackClickWithBadOptionsIsRefused(t *testing.T) {
	f := setup(t, bot.Config{Mode: bot.ModeAsync})
	c := askCmd("")
	c.Name, c.Options = bot.FeedbackCommand, map[string]string{bot.FeedbackAnswer: "x", bot.FeedbackHelpful: "maybe"}
	r := newRecorder()
	if err := f.disp.Dispatch(t.Context(), c, r); err != nil {
		t.Fatal(err)
	}
	if got := r.answer(t); !got.Ephemeral || !strings.Contains(got.Text, "doesn't work") {
		t.Errorf("answer %+v", got)
	}
}

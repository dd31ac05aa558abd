package slack_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/slack/slacktest"
)

// hasButtons fails unless blocks (a JSON array) carries both feedback
// buttons for the /ask interaction id.
func hasButtons(t *testing.T, where, blocks, id string) {
	t.Helper()
	for _, action := range []string{"classbot_helpful", "classbot_not_helpful"} {
		if got := slacktest.Buttons(blocks, action); len(got) != 1 || got[0] != id {
			t.Fatalf("%s: %s buttons %q in blocks %.300s, want one for %s", where, action, got, blocks, id)
		}
	}
}

// An /ask answered through chat.postEphemeral because its response_url
// fails carries the buttons on its last message, as the response_url's
// answer does.
func TestFeedbackButtonsOnTheEphemeralFallback(t *testing.T) {
	f := setup(t, options{mode: bot.ModeAsync, open: true, botToken: botToken})
	const trigger = "7700000000011.1.ask"
	f.slack.FailResponseURLWith(trigger, http.StatusNotFound, "expired_url")
	if st, _ := f.post(f.command(askForm, trigger, nil)); st != http.StatusOK {
		t.Fatalf("status %d", st)
	}
	if err := f.slack.Wait(wait, func() bool { return len(f.slack.APICalls("chat.postEphemeral")) > 0 }); err != nil {
		t.Fatalf("no chat.postEphemeral fallback: %v", err)
	}
	f.shutdown()
	eph := f.slack.APICalls("chat.postEphemeral")
	last := eph[len(eph)-1].Form
	hasButtons(t, "chat.postEphemeral", last.Get("blocks"), trigger)
	if got, want := slacktest.SectionText(last.Get("blocks")), last.Get("text"); got != want {
		t.Errorf("the blocks show %q, want the answer %q", got, want)
	}
}

// A queued /ask (a reopened Responder) carries the buttons whether its
// answer goes to the response_url or, that one dead, through
// chat.postEphemeral; a long answer's text is in sections Slack takes
// (3,000 characters each), showing all of it.
func TestFeedbackButtonsOnReopenedAnswers(t *testing.T) {
	long := strings.Repeat("Office hours are on Tuesday <room 4> & Thursday.\n", 1000)
	for _, tt := range []struct {
		name string
		dead bool
		text string
	}{
		{"response_url", false, "Homework 2 is due Friday."},
		{"response_url, long", false, long},
		{"chat.postEphemeral", true, "Homework 2 is due Friday."},
		{"chat.postEphemeral, long", true, long},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := setupWorker(t, botToken)
			trigger := "7700000000012.1.queued"
			if tt.dead {
				w.slack.FailResponseURLWith(trigger, http.StatusNotFound, "expired_url")
			}
			if err := w.reopen(trigger).FollowUp(t.Context(), bot.Reply{Text: tt.text, Feedback: trigger}); err != nil {
				t.Fatal(err)
			}
			var text, blocks string
			if tt.dead {
				eph := w.slack.APICalls("chat.postEphemeral")
				if len(eph) != 1 {
					t.Fatalf("%d chat.postEphemeral calls, want 1", len(eph))
				}
				text, blocks = eph[0].Form.Get("text"), eph[0].Form.Get("blocks")
			} else {
				v := w.slack.Visible(trigger)
				if len(v) != 1 {
					t.Fatalf("visible %d messages, want 1", len(v))
				}
				text, blocks = v[0].Text, string(v[0].Blocks)
			}
			hasButtons(t, tt.name, blocks, trigger)
			shown := slacktest.SectionText(blocks)
			escapedOnly(t, shown)
			if strip(shown) != strip(text) {
				t.Errorf("the sections show %d characters, the text has %d: want the same answer", len(shown), len(text))
			}
		})
	}
}

// strip drops white space, which sections lose where the text is cut.
func strip(s string) string { return strings.Join(strings.Fields(s), "") }

// A question in a thread carries the buttons: under the streamed text
// (chat.stopStream's blocks), on the posted answer when streaming is
// refused, and on a queued job's one post.
func TestFeedbackButtonsOnThreadAnswers(t *testing.T) {
	for _, tt := range []struct {
		name   string
		stream bool   // the model streams its answer
		refuse string // chat.startStream's error
	}{
		{"streamed", true, ""},
		{"stream refused", true, "not_in_channel"},
		{"not streamed", false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t, options{mode: bot.ModeAsync, botToken: botToken, open: true})
			if tt.stream {
				f.agent.parts = []string{"Homework 2 ", "is due <Friday> ", "& not later."}
			} else {
				f.agent.answerFunc = func(string) string { return "Homework 2 is due <Friday> & not later." }
			}
			f.slack.FailStreams(tt.refuse)
			srv := f.eventsServer()
			const event = "Ev0FEEDBACK1"
			ev := callback(t, event, map[string]any{
				"type": "app_mention", "user": asker, "text": "<@U0BOT0000> when is hw 2 due?",
				"ts": threadTS, "channel": channel, "event_ts": threadTS,
			})
			if status, _ := f.postEvent(srv.URL, ev, time.Now(), 0); status != http.StatusOK {
				t.Fatalf("event = %d, want 200", status)
			}
			f.shutdown()
			msgs := f.slack.Streamed(channel)
			if len(msgs) != 1 {
				t.Fatalf("%d messages, want 1: %+v", len(msgs), msgs)
			}
			m := msgs[0]
			hasButtons(t, "the answer", m.Blocks, event)
			if unescape(m.Text) != "Homework 2 is due <Friday> & not later." {
				t.Errorf("the answer shows %q", m.Text)
			}
			if tt.stream && tt.refuse == "" && len(f.slack.APICalls("chat.stopStream")) != 1 {
				t.Errorf("want the buttons added by chat.stopStream")
			}
		})
	}
}

// A queued thread answer (one post, recorded) carries the buttons, a long
// one with its text in sections.
func TestFeedbackButtonsOnAQueuedThreadAnswer(t *testing.T) {
	w := setupWorker(t, botToken)
	c := bot.Command{Platform: bot.PlatformSlack, InteractionID: "Ev0FEEDBACK2", Workspace: team, Channel: channel, User: asker, Name: "ask"}
	r, err := w.adapter.Reopen(t.Context(), c, []byte(`{"ch":"`+channel+`","user":"`+asker+`","team":"`+team+`","ts":"`+threadTS+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	r.(bot.PostLogger).UsePostLog(&memPostLog{})
	text := strings.Repeat("Office hours are on Tuesday <room 4> & Thursday.\n", 200)
	if err := r.FollowUp(t.Context(), bot.Reply{Text: text, Feedback: c.InteractionID}); err != nil {
		t.Fatal(err)
	}
	msgs := w.slack.Streamed(channel)
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	hasButtons(t, "the queued answer", msgs[0].Blocks, c.InteractionID)
	if strip(unescape(slacktest.SectionText(msgs[0].Blocks))) != strip(text) {
		t.Errorf("the sections do not show the whole answer")
	}
}

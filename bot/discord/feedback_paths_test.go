package discord_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/discord"
	"github.com/classbot/classbot/bot/discord/discordtest"
)

// buttons returns the custom ids of the buttons in a message body.
func buttons(t *testing.T, r discordtest.Request) []string {
	t.Helper()
	var m struct {
		Components []struct {
			Components []struct {
				CustomID string `json:"custom_id"`
			} `json:"components"`
		} `json:"components"`
	}
	if err := r.JSON(&m); err != nil {
		t.Fatalf("%s %s body %q: %v", r.Method, r.Path, r.Body, err)
	}
	var out []string
	for _, row := range m.Components {
		for _, c := range row.Components {
			out = append(out, c.CustomID)
		}
	}
	return out
}

// wantButtons fails unless r carries the two feedback buttons for id.
func wantButtons(t *testing.T, where string, r discordtest.Request, id string) {
	t.Helper()
	got := buttons(t, r)
	if len(got) != 2 || got[0] != "classbot_helpful:"+id || got[1] != "classbot_not_helpful:"+id {
		t.Fatalf("%s carries buttons %q, want helpful and not helpful for %s", where, got, id)
	}
}

// A queued /ask whose interaction token died is answered in a direct
// message, with the buttons.
func TestFeedbackButtonsOnTheDirectMessageFallback(t *testing.T) {
	w := setupWorker(t, "test-bot-token")
	const id = "1200000000000000401"
	w.discord.FailWebhooks("token-"+id, http.StatusNotFound)
	if err := w.reopen(id).FollowUp(t.Context(), bot.Reply{Text: "Friday.", Feedback: id}); err != nil {
		t.Fatal(err)
	}
	dms := w.discord.DirectMessages(student)
	if len(dms) != 1 {
		t.Fatalf("%d direct messages, want 1", len(dms))
	}
	wantButtons(t, "the direct message", dms[0], id)
}

// A mention's reply carries the buttons: posted whole, or streamed and
// finished by an edit.
func TestFeedbackButtonsOnAMentionReply(t *testing.T) {
	for _, streamed := range []bool{false, true} {
		name := map[bool]string{false: "posted", true: "streamed"}[streamed]
		t.Run(name, func(t *testing.T) {
			w := setupWorker(t, "test-bot-token")
			const msg = "1400000000000000401"
			r := discord.MentionResponder(w.adapter, msg, channelID, guildID)
			if streamed {
				r.(bot.Streamer).Stream(t.Context(), "Homework 2")
			}
			if err := r.FollowUp(t.Context(), bot.Reply{Text: "Homework 2 is due Friday.", Feedback: msg}); err != nil {
				t.Fatal(err)
			}
			reqs := append(w.replies(msg), channelEdits(w.discord)...)
			last := reqs[len(reqs)-1]
			if streamed != (last.Method == http.MethodPatch) {
				t.Fatalf("last request %s %s", last.Method, last.Path)
			}
			wantButtons(t, name+" reply", last, msg)
			if c := content(t, last); !strings.Contains(c, "Friday") {
				t.Fatalf("reply %q", c)
			}
		})
	}
}

// replies returns the channel messages posted in reply to message id.
func (w *worker) replies(id string) []discordtest.Request {
	var out []discordtest.Request
	for _, r := range w.discord.Requests() {
		if r.Method == http.MethodPost && r.Path == "channels/"+channelID+"/messages" && strings.Contains(string(r.Body), id) {
			out = append(out, r)
		}
	}
	return out
}

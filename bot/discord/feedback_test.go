package discord_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/discord/discordtest"
)

// A /ask answer carries the two buttons; a click on "Not helpful" is a
// MESSAGE_COMPONENT interaction, stored with the question's interaction id
// and answered to the clicker alone.
func TestFeedbackButtonsOnAnswersAndClickStored(t *testing.T) {
	f := setup(t, options{mode: bot.ModeAsync, open: true})
	f.agent.answerFunc = func(string) string { return "Friday." }
	const askID = "1200000000000000301"
	if st, _ := f.post(interaction(t, askID, "ask", map[string]string{"question": "when is hw 2 due?"})); st != 200 {
		t.Fatalf("status %d", st)
	}
	edit, err := f.discord.WaitRequest(wait, isEdit("token-"+askID))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Components []struct {
			Components []struct {
				CustomID string `json:"custom_id"`
				Label    string `json:"label"`
			} `json:"components"`
		} `json:"components"`
	}
	if err := edit.JSON(&m); err != nil || len(m.Components) != 1 || len(m.Components[0].Components) != 2 {
		t.Fatalf("edit %s: want one row of two buttons", edit.Body)
	}
	notHelpful := m.Components[0].Components[1].CustomID
	if !strings.HasSuffix(notHelpful, askID) || m.Components[0].Components[1].Label != "Not helpful" {
		t.Fatalf("second button %+v", m.Components[0].Components[1])
	}

	const clickID = "1200000000000000302"
	click := patch(t, interaction(t, clickID, "ask", nil), func(in map[string]any) {
		in["type"] = 3
		in["data"] = map[string]any{"custom_id": notHelpful, "component_type": 2}
	})
	st, body := f.post(click)
	if st != 200 {
		t.Fatalf("click status %d", st)
	}
	var resp discordtest.Response
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Data.Flags&64 == 0 {
		t.Errorf("click answered %s: want ephemeral", body)
	}
	if err := f.discord.Wait(wait, func() bool {
		fb, _ := f.store.UnhelpfulFeedback(t.Context(), 10)
		return len(fb) == 1 && fb[0].Interaction == askID && fb[0].Platform == bot.PlatformDiscord
	}); err != nil {
		fb, _ := f.store.UnhelpfulFeedback(t.Context(), 10)
		t.Fatalf("feedback stored %+v, want the click on %s", fb, askID)
	}
}

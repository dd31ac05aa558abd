package discord_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/classbot/classbot/bot"
)

// Auto mode over HTTP interactions: fast work is the first response
// itself (type 4, nothing else sent); slow work is deferred (type 5) and
// the same model call's answer edits the original.
func TestDiscordHTTPAuto(t *testing.T) {
	t.Run("inline", func(t *testing.T) {
		f := setup(t, options{mode: bot.ModeAuto, open: true, autoBudget: time.Minute})
		status, body := f.post(interaction(t, "1200000000000000700", "", nil))
		r := decodeResponse(t, body)
		if status != http.StatusOK || r.Type != 4 || r.Data == nil || !strings.Contains(r.Data.Content, "Welcome to the class!") {
			t.Fatalf("auto, fast model: %d %s, want type 4 with the welcome", status, body)
		}
		f.shutdown()
		if n := len(f.discord.Requests()); n != 0 {
			t.Fatalf("%d REST calls after an inline answer, want 0", n)
		}
	})
	t.Run("deferred", func(t *testing.T) {
		f := setup(t, options{mode: bot.ModeAuto, autoBudget: time.Millisecond}) // the model waits for its gate
		id := "1200000000000000701"
		status, body := f.post(interaction(t, id, "", nil))
		if r := decodeResponse(t, body); status != http.StatusOK || r.Type != 5 || r.Data == nil || r.Data.Flags != 64 {
			t.Fatalf("auto, held model: %d %s, want a type 5 ephemeral deferral", status, body)
		}
		f.agent.waitCalled(t)
		f.openAgent()
		edit, err := f.discord.WaitRequest(wait, isEdit("token-"+id))
		if err != nil {
			t.Fatalf("no edit of the original: %v", err)
		}
		if c := content(t, edit); !strings.Contains(c, "Welcome to the class!") {
			t.Fatalf("edit %q lacks the welcome", c)
		}
		f.shutdown()
		if calls, _ := f.agent.stats(); calls != 1 {
			t.Fatalf("model called %d times, want 1", calls)
		}
		if n := len(f.answerParts(id)); n != 1 {
			t.Fatalf("%d answer messages, want 1", n)
		}
	})
}

// Auto mode on the gateway: the callback is the answer when the work is
// fast, a deferral followed by one edit when it is not.
func TestDiscordGatewayAuto(t *testing.T) {
	t.Run("inline", func(t *testing.T) {
		f := setup(t, options{mode: bot.ModeAuto, botToken: "test-bot-token", open: true, autoBudget: time.Minute})
		runGateway(t, f)
		waitReady(t, f)
		id := "1200000000000000710"
		resp := sendAndWaitCallback(t, f, id, interaction(t, id, "", nil))
		if resp.Type != 4 || !strings.Contains(resp.Data.Content, "Welcome to the class!") {
			t.Fatalf("callback type %d %q, want type 4 with the welcome", resp.Type, resp.Data.Content)
		}
		f.shutdown()
		if n := len(f.answerParts(id)); n != 0 {
			t.Fatalf("%d messages after an inline answer, want 0", n)
		}
	})
	t.Run("deferred", func(t *testing.T) {
		f := setup(t, options{mode: bot.ModeAuto, botToken: "test-bot-token", autoBudget: time.Millisecond})
		runGateway(t, f)
		waitReady(t, f)
		id := "1200000000000000711"
		if n := f.discord.SendInteraction(json.RawMessage(interaction(t, id, "", nil))); n != 1 {
			t.Fatalf("interaction sent on %d connections", n)
		}
		f.agent.waitCalled(t)
		resp := sendWait(t, f, id)
		if resp != 5 {
			t.Fatalf("callback type %d while the model was held, want 5", resp)
		}
		f.openAgent()
		if _, err := f.discord.WaitRequest(wait, isEdit("token-"+id)); err != nil {
			t.Fatalf("no edit of the original: %v", err)
		}
		f.shutdown()
		if calls, _ := f.agent.stats(); calls != 1 {
			t.Fatalf("model called %d times, want 1", calls)
		}
		if n := len(f.answerParts(id)); n != 1 {
			t.Fatalf("%d answer messages, want 1", n)
		}
	})
}

// sendWait waits for id's callback and returns its type.
func sendWait(t *testing.T, f *fixture, id string) int {
	t.Helper()
	cb, err := f.discord.WaitRequest(wait, isCallback(id))
	if err != nil {
		t.Fatalf("no callback for %s: %v", id, err)
	}
	var resp struct {
		Type int `json:"type"`
	}
	if err := cb.JSON(&resp); err != nil {
		t.Fatal(err)
	}
	return resp.Type
}

package slack_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/slack/slacktest"
)

// blockActions is a block_actions payload as Slack sends it for a click
// on the button actionID with value, answered through responseURL.
func blockActions(t *testing.T, trigger, actionID, value, responseURL string) []byte {
	t.Helper()
	p, err := json.Marshal(map[string]any{
		"type": "block_actions", "trigger_id": trigger, "response_url": responseURL,
		"user":    map[string]any{"id": "U0OTHER01", "team_id": "T0A1B2C3D"},
		"team":    map[string]any{"id": "T0A1B2C3D"},
		"channel": map[string]any{"id": "C0CLASS01"},
		"actions": []any{map[string]any{"type": "button", "action_id": actionID, "value": value, "block_id": "classbot_feedback", "action_ts": "1700000000.000100"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return []byte(url.Values{"payload": {string(p)}}.Encode())
}

func TestFeedbackButtonsOnAnswersAndClickStored(t *testing.T) {
	f := setup(t, options{mode: bot.ModeAsync, open: true})
	const askTrigger = "7700000000001.1.ask"
	if st, _ := f.post(f.command("testdata/ask_command.form", askTrigger, nil)); st != http.StatusOK {
		t.Fatalf("status %d", st)
	}
	posts, err := f.slack.WaitPosts(wait, askTrigger, 1)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Blocks []struct {
			Type     string `json:"type"`
			Elements []struct {
				ActionID string `json:"action_id"`
				Value    string `json:"value"`
			} `json:"elements"`
		} `json:"blocks"`
	}
	if err := posts[len(posts)-1].JSON(&m); err != nil || len(m.Blocks) != 2 || len(m.Blocks[1].Elements) != 2 {
		t.Fatalf("answer %s: want a section and two buttons", posts[len(posts)-1].Body)
	}
	b := m.Blocks[1].Elements[1]
	if b.Value != askTrigger {
		t.Fatalf("button %+v: want the /ask's trigger id as its value", b)
	}

	srv := httptest.NewServer(f.adapter.InteractionsHandler())
	t.Cleanup(srv.Close)
	const clickTrigger = "7700000000002.1.click"
	body := blockActions(t, clickTrigger, b.ActionID, b.Value, f.slack.ResponseURL(clickTrigger))
	req, err := slacktest.NewRequest(t.Context(), srv.URL, secret, time.Now(), body)
	if err != nil {
		t.Fatal(err)
	}
	st, resp := f.do(req)
	if st != http.StatusOK || len(resp) != 0 {
		t.Fatalf("click: %d %q, want 200 and an empty body", st, resp)
	}
	thanks, err := f.slack.WaitPosts(wait, clickTrigger, 1)
	if err != nil {
		t.Fatal(err)
	}
	if msg := message(t, thanks[0]); msg.ResponseType != "ephemeral" || msg.ReplaceOriginal || !strings.Contains(msg.Text, "didn") {
		t.Errorf("click answered %+v: want an ephemeral thanks in a new message", msg)
	}
	fb, err := f.store.UnhelpfulFeedback(t.Context(), 10)
	if err != nil || len(fb) != 1 || fb[0].Interaction != askTrigger || fb[0].Platform != bot.PlatformSlack {
		t.Errorf("stored %+v (%v), want the click on %s", fb, err, askTrigger)
	}

	// Unsigned: refused, nothing stored.
	bad, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, strings.NewReader(string(body)))
	bad.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if st, _ := f.do(bad); st != http.StatusUnauthorized {
		t.Errorf("unsigned click: %d, want 401", st)
	}
}

// Over Socket Mode a click arrives as an "interactive" envelope: acked at
// once, answered through its response_url, stored.
func TestFeedbackClickOverSocketMode(t *testing.T) {
	f := setup(t, options{mode: bot.ModeAsync, open: true, appToken: appToken})
	f.runSocket()
	const clickTrigger = "7700000000003.1.click"
	form, err := url.ParseQuery(string(blockActions(t, clickTrigger, "classbot_helpful", "7700000000001.1.ask", f.slack.ResponseURL(clickTrigger))))
	if err != nil {
		t.Fatal(err)
	}
	env, _ := f.slack.SendEnvelope("interactive", json.RawMessage(form.Get("payload")))
	if _, err := f.slack.WaitAck(wait, env); err != nil {
		t.Fatal(err)
	}
	posts, err := f.slack.WaitPosts(wait, clickTrigger, 1)
	if err != nil {
		t.Fatal(err)
	}
	if msg := message(t, posts[0]); msg.ResponseType != "ephemeral" || !strings.Contains(msg.Text, "helped") {
		t.Errorf("click answered %+v", msg)
	}
	if fb, _ := f.store.UnhelpfulFeedback(t.Context(), 10); len(fb) != 0 {
		t.Errorf("a helpful click listed as unhelpful: %+v", fb)
	}
}

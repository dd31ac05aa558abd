package slacktest

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// assistantScope is the bot token scope each method of Slack's AI-app
// surface needs here (Slack also takes chat:write for setStatus).
var assistantScope = map[string]string{
	"api/assistant.threads.setStatus":           "assistant:write",
	"api/assistant.threads.setSuggestedPrompts": "assistant:write",
}

// serveAssistant answers assistant.threads.setStatus and
// assistant.threads.setSuggestedPrompts as Slack documents them, and
// reports whether c was one of them (chat.postMessage: serveStream).
func (s *Server) serveAssistant(w http.ResponseWriter, c Call, token string) bool {
	scope, ok := assistantScope[c.Path]
	if !ok {
		return false
	}
	s.mu.Lock()
	missing := s.missing[scope]
	s.mu.Unlock()
	f := c.Form
	switch {
	case len(token) < 5 || token[:5] != "xoxb-":
		writeJSON(w, map[string]any{"ok": false, "error": "not_authed"})
	case missing:
		writeJSON(w, map[string]any{"ok": false, "error": "missing_scope", "needed": scope})
	case f.Get("channel_id") == "" || f.Get("thread_ts") == "":
		writeJSON(w, map[string]any{"ok": false, "error": "invalid_arguments"})
	case c.Path == "api/assistant.threads.setSuggestedPrompts":
		var prompts []struct {
			Title   string `json:"title"`
			Message string `json:"message"`
		}
		ok := json.Unmarshal([]byte(f.Get("prompts")), &prompts) == nil && len(prompts) >= 1 && len(prompts) <= 4
		for _, p := range prompts {
			ok = ok && p.Title != "" && p.Message != ""
		}
		if !ok {
			writeJSON(w, map[string]any{"ok": false, "error": "invalid_arguments"})
			return true
		}
		writeJSON(w, map[string]any{"ok": true})
	default: // setStatus: an empty status clears it
		writeJSON(w, map[string]any{"ok": true})
	}
	return true
}

// EventCallback builds an Events API event_callback around inner (the
// event object: type, user, text, ts, channel, …) for team, with eventID.
func EventCallback(team, eventID string, inner any) (json.RawMessage, error) {
	ev, err := json.Marshal(inner)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"token": "legacy-verification-token", "team_id": team, "api_app_id": "A0CLASSBOT",
		"event": json.RawMessage(ev), "type": "event_callback", "event_id": eventID,
		"event_time": time.Now().Unix(), "authorizations": []any{map[string]any{
			"team_id": team, "user_id": "U0BOT0000", "is_bot": true,
		}},
	})
}

// NewEventRequest returns a POST of an Events API body to url signed
// with secret at time at, as Slack sends events; retry > 0 adds
// X-Slack-Retry-Num and X-Slack-Retry-Reason as Slack's redeliveries have.
func NewEventRequest(ctx context.Context, url, secret string, at time.Time, body []byte, retry int) (*http.Request, error) {
	req, err := NewRequest(ctx, url, secret, at, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if retry > 0 {
		req.Header.Set("X-Slack-Retry-Num", strconv.Itoa(retry))
		req.Header.Set("X-Slack-Retry-Reason", "http_timeout")
	}
	return req, nil
}

// SendEvent sends an events_api envelope carrying payload (an
// event_callback) on every open Socket Mode connection.
func (s *Server) SendEvent(payload json.RawMessage) (string, int) {
	return s.SendEnvelope("events_api", payload)
}

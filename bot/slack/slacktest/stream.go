package slacktest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// MaxStreamLen is the most characters of markdown_text one streamed
// message takes over chat.startStream and chat.appendStream.
const MaxStreamLen = 12000

// Streamed is one message written through chat.startStream,
// chat.appendStream and chat.stopStream (or chat.postMessage, and changed
// by chat.update), as a student would see it.
type Streamed struct {
	TS              string
	Channel         string
	ThreadTS        string
	RecipientUserID string
	RecipientTeamID string
	Chunks          []string // each call's markdown_text (or text), in order
	Text            string   // what the message shows: the chunks joined, or chat.update's text
	Stopped         bool     // chat.stopStream was called (or it was never a stream)
	Updated         bool     // chat.update replaced its text
	// Blocks is the JSON array of the message's blocks: chat.postMessage's
	// or chat.update's, or what chat.stopStream added under the streamed
	// text; "" when it has none.
	Blocks string
	// Metadata is the message's metadata (a JSON object with event_type
	// and event_payload), from chat.postMessage or chat.update; "": none.
	Metadata string
}

// FailStreams makes chat.startStream answer {"ok": false, "error": code}
// ("not_in_channel", "missing_scope"...). An empty code undoes it.
func (s *Server) FailStreams(code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.streamFail = code
}

// Streamed returns the messages written in channel, in the order they
// were started.
func (s *Server) Streamed(channel string) []Streamed {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Streamed
	for _, ts := range s.streamOrder {
		if m := s.streams[ts]; m.Channel == channel {
			m.Chunks = append([]string(nil), m.Chunks...)
			out = append(out, *m)
		}
	}
	return out
}

// serveStream answers the streaming methods and chat.postMessage and
// chat.update as Slack documents them; it reports whether c was one of
// them.
func (s *Server) serveStream(w http.ResponseWriter, c Call, token string) bool {
	method, ok := strings.CutPrefix(c.Path, "api/")
	switch method {
	case "chat.startStream", "chat.appendStream", "chat.stopStream", "chat.postMessage", "chat.update":
	default:
		return false
	}
	if !ok {
		return false
	}
	fail := func(code string) { writeJSON(w, map[string]any{"ok": false, "error": code}) }
	f := c.Form
	if !strings.HasPrefix(token, "xoxb-") {
		fail("not_authed")
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.missing["chat:write"] {
		fail("missing_scope")
		return true
	}
	text := f.Get("markdown_text")
	if method == "chat.postMessage" || method == "chat.update" {
		text = f.Get("text")
	}
	channel := f.Get("channel")
	if code := checkBlocks(f.Get("blocks")); code != "" {
		fail(code)
		return true
	}
	switch method {
	case "chat.startStream", "chat.postMessage":
		switch {
		case channel == "":
			fail("channel_not_found")
			return true
		case method == "chat.startStream" && s.streamFail != "":
			fail(s.streamFail)
			return true
		case method == "chat.startStream" && f.Get("thread_ts") == "":
			fail("invalid_arguments") // a stream is always a reply in a thread
			return true
		case method == "chat.startStream" && !strings.HasPrefix(channel, "D") &&
			(f.Get("recipient_user_id") == "" || f.Get("recipient_team_id") == ""):
			fail("invalid_arguments") // channels need the recipient's ids
			return true
		case utf8.RuneCountInString(text) > MaxStreamLen:
			fail("msg_too_long")
			return true
		case method == "chat.postMessage" && text == "":
			fail("no_text")
			return true
		}
		s.nextTS++
		ts := fmt.Sprintf("1700000000.%06d", s.nextTS)
		m := &Streamed{TS: ts, Channel: channel, ThreadTS: f.Get("thread_ts"),
			RecipientUserID: f.Get("recipient_user_id"), RecipientTeamID: f.Get("recipient_team_id"),
			Stopped: method == "chat.postMessage", Blocks: f.Get("blocks"), Metadata: f.Get("metadata")}
		if text != "" {
			m.Chunks, m.Text = append(m.Chunks, text), text
		}
		if s.streams == nil {
			s.streams = make(map[string]*Streamed)
		}
		s.streams[ts] = m
		s.streamOrder = append(s.streamOrder, ts)
		s.notify()
		writeJSON(w, map[string]any{"ok": true, "channel": channel, "ts": ts})
	default:
		m := s.streams[f.Get("ts")]
		switch {
		case m == nil || m.Channel != channel:
			fail("message_not_found")
			return true
		case method != "chat.update" && m.Stopped:
			fail("message_not_in_streaming_state")
			return true
		case method == "chat.appendStream" && text == "":
			fail("invalid_arguments")
			return true
		case method == "chat.update" && utf8.RuneCountInString(text) > MaxStreamLen,
			method != "chat.update" && utf8.RuneCountInString(m.Text+text) > MaxStreamLen:
			fail("msg_too_long")
			return true
		}
		if b := f.Get("blocks"); b != "" || method == "chat.update" {
			m.Blocks = b
		}
		if md := f.Get("metadata"); md != "" && method == "chat.update" {
			m.Metadata = md
		}
		switch method {
		case "chat.update":
			m.Text, m.Updated = text, true
		default:
			if text != "" {
				m.Chunks, m.Text = append(m.Chunks, text), m.Text+text
			}
			m.Stopped = m.Stopped || method == "chat.stopStream"
		}
		s.notify()
		writeJSON(w, map[string]any{"ok": true, "channel": channel, "ts": m.TS})
	}
	return true
}

// Limits Slack documents for Block Kit, which checkBlocks enforces.
const (
	MaxBlocks         = 50   // blocks in one message
	MaxSectionTextLen = 3000 // characters of a section's text
	MaxActionElements = 25   // elements of an actions block
	MaxButtonValueLen = 2000 // characters of a button's value
)

// checkBlocks returns "" when blocks (a JSON array, as a form value or a
// response_url message's field; "" for none) is one Slack takes, and
// otherwise the error Slack answers, "invalid_blocks".
func checkBlocks(blocks string) string {
	if blocks == "" {
		return ""
	}
	var set []struct {
		Type string `json:"type"`
		Text *struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"text"`
		Elements []struct {
			Type     string `json:"type"`
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"elements"`
	}
	if json.Unmarshal([]byte(blocks), &set) != nil || len(set) > MaxBlocks {
		return "invalid_blocks"
	}
	for _, b := range set {
		switch b.Type {
		case "section":
			if b.Text == nil || b.Text.Text == "" || utf8.RuneCountInString(b.Text.Text) > MaxSectionTextLen {
				return "invalid_blocks"
			}
		case "actions":
			if len(b.Elements) == 0 || len(b.Elements) > MaxActionElements {
				return "invalid_blocks"
			}
			for _, e := range b.Elements {
				if e.Type == "button" && (e.ActionID == "" || utf8.RuneCountInString(e.Value) > MaxButtonValueLen) {
					return "invalid_blocks"
				}
			}
		case "":
			return "invalid_blocks"
		}
	}
	return ""
}

// Buttons returns the values of the buttons with actionID in blocks (a
// JSON array, such as Streamed.Blocks or a call's "blocks" form value).
func Buttons(blocks, actionID string) []string {
	var set []struct {
		Elements []struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"elements"`
	}
	_ = json.Unmarshal([]byte(blocks), &set)
	var out []string
	for _, b := range set {
		for _, e := range b.Elements {
			if e.ActionID == actionID {
				out = append(out, e.Value)
			}
		}
	}
	return out
}

// SectionText returns the texts of the sections in blocks, joined.
func SectionText(blocks string) string {
	var set []struct {
		Type string `json:"type"`
		Text struct {
			Text string `json:"text"`
		} `json:"text"`
	}
	_ = json.Unmarshal([]byte(blocks), &set)
	var sb strings.Builder
	for _, b := range set {
		if b.Type == "section" {
			sb.WriteString(b.Text.Text)
		}
	}
	return sb.String()
}

// serveReplies answers conversations.replies for the messages written
// through the stand-in: those of the thread ts in channel, oldest first,
// as the bot's (bot_id), with their metadata when include_all_metadata is
// set. It needs im:history (the only history classbot reads is its direct
// messages'). It reports whether c was that method.
func (s *Server) serveReplies(w http.ResponseWriter, c Call, token string) bool {
	if c.Path != "api/conversations.replies" {
		return false
	}
	f := c.Form
	if f == nil {
		f = url.Values{}
	}
	if !strings.HasPrefix(token, "xoxb-") {
		writeJSON(w, map[string]any{"ok": false, "error": "not_authed"})
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.missing["im:history"] {
		writeJSON(w, map[string]any{"ok": false, "error": "missing_scope"})
		return true
	}
	channel, ts := f.Get("channel"), f.Get("ts")
	if channel == "" || ts == "" {
		writeJSON(w, map[string]any{"ok": false, "error": "invalid_arguments"})
		return true
	}
	msgs := []map[string]any{}
	for _, id := range s.streamOrder {
		m := s.streams[id]
		if m.Channel != channel || (m.ThreadTS != ts && m.TS != ts) {
			continue
		}
		out := map[string]any{"type": "message", "ts": m.TS, "thread_ts": m.ThreadTS, "text": m.Text,
			"bot_id": "B0BOT0000", "user": "U0BOT0000"}
		if m.Metadata != "" && f.Get("include_all_metadata") == "1" {
			out["metadata"] = json.RawMessage(m.Metadata)
		}
		msgs = append(msgs, out)
	}
	if len(msgs) == 0 {
		writeJSON(w, map[string]any{"ok": false, "error": "thread_not_found"})
		return true
	}
	writeJSON(w, map[string]any{"ok": true, "messages": msgs, "has_more": false})
	return true
}

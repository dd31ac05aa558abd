package discord_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/discord"
	"github.com/classbot/classbot/bot/discord/discordtest"
)

func TestDiscordHTTPPing(t *testing.T) {
	f := setup(t, options{open: true})
	status, body := f.post([]byte(`{"id":"1","application_id":"` + appID + `","type":1,"token":"t","version":1}`))
	if status != http.StatusOK || strings.TrimSpace(string(body)) != `{"type":1}` {
		t.Fatalf("PING = %d %s, want 200 {\"type\":1}", status, body)
	}
}

func TestDiscordHTTPRefusals(t *testing.T) {
	f := setup(t, options{open: true})
	good := interaction(t, "1200000000000000100", "register", nil)
	tests := []struct {
		name   string
		req    func() *http.Request
		status int
		reason string
	}{
		{"missing headers", func() *http.Request {
			r := f.signed(good, time.Now())
			r.Header.Del("X-Signature-Ed25519")
			r.Header.Del("X-Signature-Timestamp")
			return r
		}, http.StatusUnauthorized, discord.RefuseMissingSignature},
		{"missing timestamp", func() *http.Request {
			r := f.signed(good, time.Now())
			r.Header.Del("X-Signature-Timestamp")
			return r
		}, http.StatusUnauthorized, discord.RefuseMissingSignature},
		{"bad signature", func() *http.Request {
			r := f.signed(good, time.Now())
			sig := []byte(r.Header.Get("X-Signature-Ed25519"))
			sig[0] ^= 1
			r.Header.Set("X-Signature-Ed25519", string(sig))
			return r
		}, http.StatusUnauthorized, discord.RefuseBadSignature},
		{"body changed after signing", func() *http.Request {
			r := f.signed(good, time.Now())
			forged := bytes.Replace(good, []byte("Ada Lovelace"), []byte("Eve Mallory!"), 1)
			r2 := f.signed(forged, time.Now())
			r2.Header = r.Header
			return r2
		}, http.StatusUnauthorized, discord.RefuseBadSignature},
		{"stale timestamp", func() *http.Request { return f.signed(good, time.Now().Add(-6*time.Minute)) }, http.StatusUnauthorized, discord.RefuseStale},
		{"future timestamp", func() *http.Request { return f.signed(good, time.Now().Add(6*time.Minute)) }, http.StatusUnauthorized, discord.RefuseStale},
		{"oversized body", func() *http.Request {
			big := append([]byte(`{"type":2,"pad":"`), bytes.Repeat([]byte("a"), 70<<10)...)
			return f.signed(append(big, `"}`...), time.Now())
		}, http.StatusRequestEntityTooLarge, discord.RefuseTooLarge},
		{"malformed JSON", func() *http.Request { return f.signed([]byte(`{"type":2,`), time.Now()) }, http.StatusBadRequest, discord.RefuseBadBody},
		{"not an interaction", func() *http.Request { return f.signed([]byte(`[1,2,3]`), time.Now()) }, http.StatusBadRequest, discord.RefuseBadBody},
		{"unsupported type", func() *http.Request {
			return f.signed(patch(t, good, func(m map[string]any) { m["type"] = 4 }), time.Now()) // autocomplete: none declared
		}, http.StatusBadRequest, discord.RefuseUnsupported},
	}
	// The ids and the token go into REST paths: anything but what Discord
	// sends is refused before any work (issue 9 item 12).
	for _, bad := range []struct{ name, field, value string }{
		{"app id with a path", "application_id", "../../channels/1/messages"},
		{"app id with a slash", "application_id", "1/2"},
		{"app id not a number", "application_id", "abc"},
		{"app id too big", "application_id", "99999999999999999999"},
		{"interaction id with a path", "id", "1/../../2"},
		{"empty interaction id", "id", ""},
		{"token with a slash", "token", "abc/../../x"},
		{"token with a query", "token", "abc?wait=false"},
		{"token with an escape", "token", "abc%2F"},
		{"token is a dot segment", "token", ".."},
		{"empty token", "token", ""},
		{"token too long", "token", strings.Repeat("a", discord.MaxTokenLen+1)},
	} {
		body := patch(t, good, func(m map[string]any) { m[bad.field] = bad.value })
		tests = append(tests, struct {
			name   string
			req    func() *http.Request
			status int
			reason string
		}{bad.name, func() *http.Request { return f.signed(body, time.Now()) }, http.StatusBadRequest, discord.RefuseBadIDs})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := f.postRequest(tt.req())
			if status != tt.status {
				t.Fatalf("status %d (%s), want %d", status, body, tt.status)
			}
			f.nothingStored("1200000000000000100")
			if calls, _ := f.agent.stats(); calls != 0 {
				t.Fatalf("the agent was called %d times after a refusal", calls)
			}
			if n := len(f.discord.Requests()); n != 0 {
				t.Fatalf("Discord got %d REST calls after a refusal", n)
			}
			if got := f.refusals(); !slices.Equal(got, []string{tt.reason}) {
				t.Fatalf("OnRefuseFunc got %q, want [%q]", got, tt.reason)
			}
			f.mu.Lock()
			f.refused = nil
			f.mu.Unlock()
		})
	}
}

func TestDiscordHTTPRegisterAsync(t *testing.T) {
	f := setup(t, options{mode: bot.ModeAsync}) // the agent waits for its gate
	id := "1200000000000000001"
	status, body := f.post(interaction(t, id, "", nil))
	if status != http.StatusOK {
		t.Fatalf("status %d %s", status, body)
	}
	r := decodeResponse(t, body)
	if r.Type != 5 || r.Data == nil || r.Data.Flags != 64 {
		t.Fatalf("first response %s, want type 5 with flags 64 (ephemeral)", body)
	}
	if err := discordtest.NoPings(body); err != nil {
		t.Fatalf("deferral: %v", err)
	}
	// The deferral came back while the model is held (the agent's gate
	// opens below): the work goes on behind it, and nothing else is sent
	// until the model answers.
	f.agent.waitCalled(t)
	if n := len(f.discord.Requests()); n != 0 {
		t.Fatalf("Discord got %d REST calls before the model answered", n)
	}
	f.openAgent()
	edit, err := f.discord.WaitRequest(wait, isEdit("token-"+id))
	if err != nil {
		t.Fatalf("no edit of the original response: %v (got %d calls)", err, len(f.discord.Requests()))
	}
	got := content(t, edit)
	if !strings.Contains(got, "Ada Lovelace") || !strings.Contains(got, "ada@example.com") || !strings.Contains(got, "Welcome to the class!") {
		t.Fatalf("edit content %q lacks the name, the email or the welcome", got)
	}
	if err := discordtest.NoPings(edit.Body); err != nil {
		t.Fatalf("edit: %v", err)
	}
	reg, ok := f.registration("1300000000000000001")
	if !ok || reg.Name != "Ada Lovelace" || reg.Email != "ada@example.com" || reg.Channel != "1100000000000000003" {
		t.Fatalf("registration %+v (found %v)", reg, ok)
	}

	// The same interaction delivered again is acknowledged, with the
	// command's own visibility, and not worked on.
	status, body = f.post(interaction(t, id, "", nil))
	if r := decodeResponse(t, body); status != http.StatusOK || r.Type != 5 || r.Data == nil || r.Data.Flags != 64 {
		t.Fatalf("duplicate delivery = %d %s, want a type 5 with flags 64 (ephemeral)", status, body)
	}
	if calls, _ := f.agent.stats(); calls != 1 {
		t.Fatalf("agent called %d times for one interaction delivered twice", calls)
	}
	edits := 0
	for _, r := range f.discord.Requests() {
		if isEdit("token-" + id)(r) {
			edits++
		}
	}
	if edits != 1 {
		t.Fatalf("%d edits for one interaction delivered twice, want 1", edits)
	}
}

func TestDiscordHTTPRegisterSync(t *testing.T) {
	f := setup(t, options{mode: bot.ModeSync, open: true})
	status, body := f.post(interaction(t, "1200000000000000002", "", nil))
	r := decodeResponse(t, body)
	if status != http.StatusOK || r.Type != 4 || r.Data == nil || r.Data.Flags != 64 {
		t.Fatalf("sync response %d %s, want type 4, ephemeral", status, body)
	}
	if !strings.Contains(r.Data.Content, "Welcome to the class!") {
		t.Fatalf("sync answer %q lacks the welcome", r.Data.Content)
	}
	if err := discordtest.NoPings(body); err != nil {
		t.Fatal(err)
	}
	if n := len(f.discord.Requests()); n != 0 {
		t.Fatalf("sync mode made %d REST calls for a short answer, want 0", n)
	}
}

// TestDiscordMentionsNeverPing sends mentions through both ways text
// reaches a message: what the student typed (an /ask question, echoed by
// the model) and what the model wrote. Names cannot carry them: an @ in a
// name is refused by the bot.
func TestDiscordMentionsNeverPing(t *testing.T) {
	questions := []string{"@everyone what is due?", "@here help", "<@&123> ask the TAs?", "<@456> said so"}
	for _, mode := range []bot.Mode{bot.ModeAsync, bot.ModeSync} {
		t.Run(string(mode), func(t *testing.T) {
			f := setup(t, options{mode: mode, open: true})
			f.agent.answerFunc = func(in string) string { return "You asked: " + in + " @everyone" }
			for i, q := range questions {
				id := "12000000000000002" + string(rune('0'+i)) + "0"
				status, body := f.post(interaction(t, id, "ask", map[string]string{"question": q}))
				if status != http.StatusOK {
					t.Fatalf("%q: status %d %s", q, status, body)
				}
				if err := discordtest.NoPings(body); err != nil {
					t.Fatalf("%q first response: %v", q, err)
				}
				var got string
				if mode == bot.ModeSync {
					got = decodeResponse(t, body).Data.Content
				} else {
					edit, err := f.discord.WaitRequest(wait, isEdit("token-"+id))
					if err != nil {
						t.Fatalf("%q: %v", q, err)
					}
					if err := discordtest.NoPings(edit.Body); err != nil {
						t.Fatalf("%q edit: %v", q, err)
					}
					got = content(t, edit)
				}
				if !strings.Contains(got, q) || !strings.Contains(got, "@everyone") {
					t.Fatalf("answer %q does not show the question %q and the model's @everyone as text", got, q)
				}
			}
		})
	}
}

// TestDiscordDuplicateDeliveryKeepsVisibility: a delivery of an interaction
// already recorded is deferred with the command's own visibility, so the
// original's ephemeral answer (which shows the email) is not announced in
// public (issue 9 item 10).
func TestDiscordDuplicateDeliveryKeepsVisibility(t *testing.T) {
	for _, tt := range []struct {
		command string
		options map[string]string
		flags   int
	}{
		{"register", nil, 64},
		{"ask", map[string]string{"question": "When is the exam?"}, 0},
	} {
		t.Run(tt.command, func(t *testing.T) {
			f := setup(t, options{mode: bot.ModeAsync, open: true})
			id := "1200000000000000250"
			body := interaction(t, id, tt.command, tt.options)
			if status, resp := f.post(body); status != http.StatusOK || decodeResponse(t, resp).Type != 5 {
				t.Fatalf("first delivery = %d %s", status, resp)
			}
			if _, err := f.discord.WaitRequest(wait, isEdit("token-"+id)); err != nil {
				t.Fatal(err)
			}
			status, resp := f.post(body)
			r := decodeResponse(t, resp)
			if status != http.StatusOK || r.Type != 5 || r.Data == nil || r.Data.Flags != tt.flags {
				t.Fatalf("duplicate delivery = %d %s, want type 5 with flags %d", status, resp, tt.flags)
			}
			if err := discordtest.NoPings(resp); err != nil {
				t.Fatal(err)
			}
			if calls, _ := f.agent.stats(); calls != 1 {
				t.Fatalf("agent called %d times for one interaction delivered twice", calls)
			}
		})
	}
}

// TestDiscordOptionsMustBeStrings sends options whose values are not
// strings, as raw JSON: nothing is turned into text or stored, the student
// is asked to type the value as text, and the refusal is counted (issue 9
// item 11).
func TestDiscordOptionsMustBeStrings(t *testing.T) {
	tests := []struct {
		name, options, want string
	}{
		{"object", `[{"name":"name","type":3,"value":{"a":1}},{"name":"email","type":3,"value":"ada@example.com"}]`, "your name"},
		{"boolean", `[{"name":"name","type":3,"value":true},{"name":"email","type":3,"value":"ada@example.com"}]`, "your name"},
		{"array", `[{"name":"name","type":3,"value":["x",1]},{"name":"email","type":3,"value":"ada@example.com"}]`, "your name"},
		{"number", `[{"name":"name","type":3,"value":"Ada"},{"name":"email","type":3,"value":12}]`, "your email"},
		{"null", `[{"name":"name","type":3,"value":null},{"name":"email","type":3,"value":"ada@example.com"}]`, "your name"},
		{"integer option", `[{"name":"name","type":4,"value":"Ada"},{"name":"email","type":3,"value":"ada@example.com"}]`, "your name"},
		{"unknown option", `[{"name":"evil","type":5,"value":false}]`, "each option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t, options{mode: bot.ModeAsync, open: true})
			id := "1200000000000000260"
			status, body := f.post(withOptions(t, interaction(t, id, "register", nil), tt.options))
			r := decodeResponse(t, body)
			if status != http.StatusOK || r.Type != 4 || r.Data == nil || r.Data.Flags != 64 {
				t.Fatalf("response %d %s, want 200 with a type 4 ephemeral message", status, body)
			}
			if want := "Please type " + tt.want + " as plain text"; !strings.Contains(r.Data.Content, want) {
				t.Fatalf("answer %q, want it to say %q", r.Data.Content, want)
			}
			if err := discordtest.NoPings(body); err != nil {
				t.Fatal(err)
			}
			f.nothingStored(id)
			if calls, _ := f.agent.stats(); calls != 0 {
				t.Fatalf("the agent was called %d times", calls)
			}
			if got := f.refusals(); !slices.Equal(got, []string{discord.RefuseBadOption}) {
				t.Fatalf("OnRefuseFunc got %q, want [%q]", got, discord.RefuseBadOption)
			}
		})
	}
}

// longAnswer is an answer of n paragraphs of 750 characters.
func longAnswer(n int) string {
	para := strings.TrimSpace(strings.Repeat("word ", 150))
	return strings.Join(slices.Repeat([]string{para}, n), "\n")
}

// answerParts returns the messages delivered over REST for interaction id:
// the edit of the original response and the follow-ups, in order.
func (f *fixture) answerParts(id string) []discordtest.Request {
	var parts []discordtest.Request
	for _, r := range f.discord.Requests() {
		if isEdit("token-"+id)(r) || (r.Method == http.MethodPost && r.Path == "webhooks/"+appID+"/token-"+id) {
			parts = append(parts, r)
		}
	}
	return parts
}

// checkParts checks each part's length, mentions and query, and returns
// their contents.
func checkParts(t *testing.T, parts []discordtest.Request, firstIsEdit bool) []string {
	t.Helper()
	var out []string
	for i, p := range parts {
		c := content(t, p)
		if n := len(utf16.Encode([]rune(c))); n > discord.MaxMessageLen || n == 0 {
			t.Fatalf("part %d has %d UTF-16 units", i, n)
		}
		if err := discordtest.NoPings(p.Body); err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if (i > 0 || !firstIsEdit) && p.Query != "wait=true" {
			t.Fatalf("follow-up %d query %q, want wait=true", i, p.Query)
		}
		out = append(out, c)
	}
	return out
}

func sameWords(a, b string) bool {
	return strings.Join(strings.Fields(a), " ") == strings.Join(strings.Fields(b), " ")
}

func TestDiscordLongAnswerIsSplit(t *testing.T) {
	f := setup(t, options{mode: bot.ModeAsync, open: true})
	long := longAnswer(6) // 4,505 characters: three messages
	f.agent.answerFunc = func(string) string { return long }
	id := "1200000000000000300"
	status, body := f.post(interaction(t, id, "ask", map[string]string{"question": "Tell me everything"}))
	if status != http.StatusOK || decodeResponse(t, body).Type != 5 {
		t.Fatalf("status %d %s", status, body)
	}
	f.shutdown() // every part that will ever be sent has been
	parts := f.answerParts(id)
	if len(parts) != 3 {
		t.Fatalf("%d messages, want the edit and two follow-ups", len(parts))
	}
	if !isEdit("token-" + id)(parts[0]) {
		t.Fatalf("first delivery is %s %s, want the edit of the original", parts[0].Method, parts[0].Path)
	}
	if !sameWords(strings.Join(checkParts(t, parts, true), " "), long) {
		t.Fatal("the parts do not add up to the answer")
	}
}

// TestDiscordLongAnswerIsCapped: a 62 KB answer becomes at most MaxMessages
// messages, the last ending with "…", not 1 edit and 33 public follow-ups
// (issue 9 item 4).
func TestDiscordLongAnswerIsCapped(t *testing.T) {
	for _, mode := range []bot.Mode{bot.ModeAsync, bot.ModeSync} {
		t.Run(string(mode), func(t *testing.T) {
			f := setup(t, options{mode: mode, open: true})
			long := strings.Repeat("All work and no play makes Jack a dull boy. ", 1400) // 62 KB
			f.agent.answerFunc = func(string) string { return long }
			id := "1200000000000000310"
			status, body := f.post(interaction(t, id, "ask", map[string]string{"question": "Tell me everything"}))
			if status != http.StatusOK {
				t.Fatalf("status %d %s", status, body)
			}
			f.shutdown()
			parts := f.answerParts(id)
			var texts []string
			if mode == bot.ModeSync {
				first := decodeResponse(t, body)
				if first.Type != 4 || first.Data == nil {
					t.Fatalf("sync response %s, want type 4", body)
				}
				texts = append([]string{first.Data.Content}, checkParts(t, parts, false)...)
			} else {
				texts = checkParts(t, parts, true)
			}
			if len(texts) != discord.MaxMessages {
				t.Fatalf("%d messages, want %d", len(texts), discord.MaxMessages)
			}
			last := texts[len(texts)-1]
			if !strings.HasSuffix(last, "…") {
				t.Fatalf("last message ends %q, want an ellipsis", last[len(last)-20:])
			}
			all := strings.TrimSuffix(strings.Join(texts, " "), "…")
			if !strings.HasPrefix(strings.Join(strings.Fields(long), " "), strings.Join(strings.Fields(all), " ")) {
				t.Fatal("the messages are not the start of the answer")
			}
		})
	}
}

// TestDiscordSyncFollowUpsSurviveClosedConnection: in sync mode the first
// part of a long answer is the HTTP response and the rest follow over REST.
// Discord closes the connection once it has read the response; the rest
// must still arrive (issue 9 item 1). The stand-in holds every follow-up
// until the request's context has ended, so none can slip through before.
func TestDiscordSyncFollowUpsSurviveClosedConnection(t *testing.T) {
	requestDone := make(chan struct{})
	var once sync.Once
	f := setup(t, options{mode: bot.ModeSync, open: true, handler: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			stop := context.AfterFunc(r.Context(), func() { once.Do(func() { close(requestDone) }) })
			defer stop()
			h.ServeHTTP(w, r)
		})
	}})
	f.discord.HoldWebhooks(requestDone)
	long := longAnswer(6)
	f.agent.answerFunc = func(string) string { return long }
	id := "1200000000000000320"

	// Read the response, then close the connection, as Discord does.
	client := &http.Client{Timeout: wait, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(f.signed(interaction(t, id, "ask", map[string]string{"question": "Tell me everything"}), time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	client.CloseIdleConnections()
	if err != nil {
		t.Fatal(err)
	}
	first := decodeResponse(t, body)
	if resp.StatusCode != http.StatusOK || first.Type != 4 || first.Data == nil {
		t.Fatalf("sync response %d %s, want type 4", resp.StatusCode, body)
	}
	select {
	case <-requestDone:
	case <-time.After(wait):
		t.Fatal("the server never saw the connection close")
	}

	var parts []discordtest.Request
	if err := f.discord.Wait(wait, func() bool { parts = f.answerParts(id); return len(parts) >= 2 }); err != nil {
		t.Fatalf("%d of 2 follow-ups arrived after the connection closed: %v", len(parts), err)
	}
	texts := append([]string{first.Data.Content}, checkParts(t, parts, false)...)
	if !sameWords(strings.Join(texts, " "), long) {
		t.Fatal("the parts do not add up to the answer")
	}
}

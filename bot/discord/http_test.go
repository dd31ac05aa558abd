package discord_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/classbot/classbot/bot"
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
	}{
		{"missing headers", func() *http.Request {
			r := f.signed(good, time.Now())
			r.Header.Del("X-Signature-Ed25519")
			r.Header.Del("X-Signature-Timestamp")
			return r
		}, http.StatusUnauthorized},
		{"missing timestamp", func() *http.Request {
			r := f.signed(good, time.Now())
			r.Header.Del("X-Signature-Timestamp")
			return r
		}, http.StatusUnauthorized},
		{"bad signature", func() *http.Request {
			r := f.signed(good, time.Now())
			sig := []byte(r.Header.Get("X-Signature-Ed25519"))
			sig[0] ^= 1
			r.Header.Set("X-Signature-Ed25519", string(sig))
			return r
		}, http.StatusUnauthorized},
		{"body changed after signing", func() *http.Request {
			r := f.signed(good, time.Now())
			forged := bytes.Replace(good, []byte("Ada Lovelace"), []byte("Eve Mallory!"), 1)
			r2 := f.signed(forged, time.Now())
			r2.Header = r.Header
			return r2
		}, http.StatusUnauthorized},
		{"stale timestamp", func() *http.Request { return f.signed(good, time.Now().Add(-6*time.Minute)) }, http.StatusUnauthorized},
		{"future timestamp", func() *http.Request { return f.signed(good, time.Now().Add(6*time.Minute)) }, http.StatusUnauthorized},
		{"oversized body", func() *http.Request {
			big := append([]byte(`{"type":2,"pad":"`), bytes.Repeat([]byte("a"), 70<<10)...)
			return f.signed(append(big, `"}`...), time.Now())
		}, http.StatusRequestEntityTooLarge},
		{"malformed JSON", func() *http.Request { return f.signed([]byte(`{"type":2,`), time.Now()) }, http.StatusBadRequest},
		{"not an interaction", func() *http.Request { return f.signed([]byte(`[1,2,3]`), time.Now()) }, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := f.postRequest(tt.req())
			if status != tt.status {
				t.Fatalf("status %d (%s), want %d", status, body, tt.status)
			}
			if regs, ins := f.store.counts(); regs != 0 || ins != 0 {
				t.Fatalf("store has %d registrations and %d interactions after a refusal, want none", regs, ins)
			}
			if calls, _ := f.agent.stats(); calls != 0 {
				t.Fatalf("the agent was called %d times after a refusal", calls)
			}
			if n := len(f.discord.Requests()); n != 0 {
				t.Fatalf("Discord got %d REST calls after a refusal", n)
			}
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
	// The deferral came back while the model was still held.
	if _, done := f.agent.stats(); done != 0 {
		t.Fatal("the agent answered before the deferral came back")
	}
	r := decodeResponse(t, body)
	if r.Type != 5 || r.Data == nil || r.Data.Flags != 64 {
		t.Fatalf("first response %s, want type 5 with flags 64 (ephemeral)", body)
	}
	if err := discordtest.NoPings(body); err != nil {
		t.Fatalf("deferral: %v", err)
	}
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
	reg, ok := f.store.registration("1300000000000000001")
	if !ok || reg.Name != "Ada Lovelace" || reg.Email != "ada@example.com" || reg.Channel != "1100000000000000003" {
		t.Fatalf("registration %+v (found %v)", reg, ok)
	}

	// The same interaction delivered again is acknowledged and not worked on.
	status, body = f.post(interaction(t, id, "", nil))
	if status != http.StatusOK || decodeResponse(t, body).Type != 5 {
		t.Fatalf("duplicate delivery = %d %s, want a type 5", status, body)
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

func TestDiscordMentionsNeverPing(t *testing.T) {
	names := []string{"@everyone", "@here", "<@&123> Ada", "<@456> Bob"}
	for _, mode := range []bot.Mode{bot.ModeAsync, bot.ModeSync} {
		t.Run(string(mode), func(t *testing.T) {
			f := setup(t, options{mode: mode, open: true})
			f.agent.answerFunc = func(in string) string { return "Hello " + in[strings.LastIndex(in, ":")+1:] + " @everyone" }
			for i, name := range names {
				id := "12000000000000002" + string(rune('0'+i)) + "0"
				status, body := f.post(interaction(t, id, "register", map[string]string{"name": name, "email": "s@example.com"}))
				if status != http.StatusOK {
					t.Fatalf("%q: status %d %s", name, status, body)
				}
				if err := discordtest.NoPings(body); err != nil {
					t.Fatalf("%q first response: %v", name, err)
				}
				if mode == bot.ModeSync {
					if c := decodeResponse(t, body).Data.Content; !strings.Contains(c, name) {
						t.Fatalf("answer %q does not show the name %q as text", c, name)
					}
					continue
				}
				edit, err := f.discord.WaitRequest(wait, isEdit("token-"+id))
				if err != nil {
					t.Fatalf("%q: %v", name, err)
				}
				if err := discordtest.NoPings(edit.Body); err != nil {
					t.Fatalf("%q edit: %v", name, err)
				}
				if c := content(t, edit); !strings.Contains(c, name) {
					t.Fatalf("edit %q does not show the name %q as text", c, name)
				}
			}
		})
	}
}

func TestDiscordLongAnswerIsSplit(t *testing.T) {
	f := setup(t, options{mode: bot.ModeAsync, open: true})
	para := strings.Repeat("word ", 150) // 750 characters
	long := strings.TrimSpace(strings.Join([]string{para, para, para, para, para, para}, "\n"))
	f.agent.answerFunc = func(string) string { return long }
	id := "1200000000000000300"
	status, body := f.post(interaction(t, id, "ask", map[string]string{"question": "Tell me everything"}))
	if status != http.StatusOK || decodeResponse(t, body).Type != 5 {
		t.Fatalf("status %d %s", status, body)
	}
	var parts []discordtest.Request
	err := f.discord.Wait(wait, func() bool {
		parts = parts[:0]
		for _, r := range f.discord.Requests() {
			if isEdit("token-"+id)(r) || (r.Method == http.MethodPost && strings.HasPrefix(r.Path, "webhooks/"+appID+"/token-"+id)) {
				parts = append(parts, r)
			}
		}
		return len(parts) >= 3
	})
	if err != nil {
		t.Fatalf("want the edit and two follow-ups, got %d: %v", len(parts), err)
	}
	if !isEdit("token-" + id)(parts[0]) {
		t.Fatalf("first delivery is %s %s, want the edit of the original", parts[0].Method, parts[0].Path)
	}
	var joined []string
	for i, p := range parts {
		c := content(t, p)
		if n := len([]rune(c)); n > 2000 || n == 0 {
			t.Fatalf("part %d has %d characters", i, n)
		}
		if err := discordtest.NoPings(p.Body); err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if i > 0 && p.Query != "wait=true" {
			t.Fatalf("follow-up %d query %q, want wait=true", i, p.Query)
		}
		joined = append(joined, c)
	}
	if strings.Join(strings.Fields(strings.Join(joined, " ")), " ") != strings.Join(strings.Fields(long), " ") {
		t.Fatal("the parts do not add up to the answer")
	}
}

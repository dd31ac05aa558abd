package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/classbot/classbot/bot/discord/discordtest"
	"github.com/classbot/classbot/internal/llmstub"
	"github.com/classbot/classbot/store"
)

const (
	discordAppID    = "1100000000000000001"
	discordGuildID  = "1100000000000000002"
	discordPayload  = "../../bot/discord/testdata/register_interaction.json"
	discordWait     = 20 * time.Second
	discordLatency  = 1500 * time.Millisecond
	discordWelcome  = "Welcome to the class, "
	discordBotToken = "test-bot-token"
)

// countingModel wraps the model stand-in and counts finished answers.
type countingModel struct {
	*llmstub.Server
	URL      string
	answered atomic.Int64
}

func newCountingModel(t *testing.T, latency time.Duration) *countingModel {
	t.Helper()
	m := &countingModel{Server: llmstub.New(latency)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.ServeHTTP(w, r)
		m.answered.Add(1)
	}))
	m.URL = srv.URL
	t.Cleanup(func() { m.Close(); srv.Close() })
	return m
}

// discordServe is classbot serve with Discord HTTP interactions turned on,
// a Discord stand-in, the model stand-in and PostgreSQL.
type discordServe struct {
	*served
	discord *discordtest.Server
	model   *countingModel
	key     ed25519.PrivateKey
}

func startDiscordServe(t *testing.T, extra map[string]string, args ...string) *discordServe {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	d := &discordServe{discord: discordtest.New(), model: newCountingModel(t, discordLatency), key: priv}
	t.Cleanup(d.discord.Close)
	env := map[string]string{
		"DISCORD_PUBLIC_KEY": hex.EncodeToString(pub),
		"DISCORD_APP_ID":     discordAppID,
		"DISCORD_API_URL":    d.discord.APIURL,
		"DATABASE_URL":       testDatabaseURL,
		"LLM_BASE_URL":       d.model.URL + "/v1",
		"SHUTDOWN_TIMEOUT":   "5s",
	}
	for k, v := range extra {
		env[k] = v
	}
	d.served = startServe(t, env, args...)
	return d
}

// newID returns a fresh snowflake-like id.
var idSeq atomic.Int64

func newID() string {
	return strconv.FormatInt(time.Now().UnixNano()/1000*1000+idSeq.Add(1)%1000, 10)
}

// registerPayload is the recorded /register interaction from a fresh user
// with a fresh id and token.
func registerPayload(t *testing.T, id, user, name, email string) []byte {
	t.Helper()
	b, err := discordtest.Interaction(discordPayload, id, "token-"+id, "register", map[string]string{"name": name, "email": email})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	m["member"].(map[string]any)["user"].(map[string]any)["id"] = user
	b, _ = json.Marshal(m)
	return b
}

func (d *discordServe) post(t *testing.T, req *http.Request) (int, []byte) {
	t.Helper()
	resp, err := (&http.Client{Timeout: discordWait}).Do(req)
	if err != nil {
		t.Fatalf("POST /discord/interactions: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (d *discordServe) signed(t *testing.T, body []byte, at time.Time) *http.Request {
	t.Helper()
	req, err := discordtest.NewRequest(t.Context(), d.URL+"/discord/interactions", d.key, at, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func openStore(t *testing.T) *store.Postgres {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	pg, err := store.Open(ctx, testDatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)
	return pg
}

func TestDiscordServeHTTPInteractions(t *testing.T) {
	t.Run("async", func(t *testing.T) {
		d := startDiscordServe(t, map[string]string{"HANDLER_MODE": "async"})

		status, body := d.post(t, d.signed(t, []byte(`{"id":"1","application_id":"`+discordAppID+`","type":1,"token":"t","version":1}`), time.Now()))
		if status != http.StatusOK || strings.TrimSpace(string(body)) != `{"type":1}` {
			t.Fatalf("PING = %d %s", status, body)
		}

		id, user := newID(), newID()
		status, body = d.post(t, d.signed(t, registerPayload(t, id, user, "Ada Lovelace", "Ada@Example.com"), time.Now()))
		answered := d.model.answered.Load()
		var resp discordtest.Response
		if err := json.Unmarshal(body, &resp); err != nil || status != http.StatusOK {
			t.Fatalf("/register = %d %s", status, body)
		}
		if resp.Type != 5 || resp.Data == nil || resp.Data.Flags != 64 {
			t.Fatalf("/register first response %s, want type 5, ephemeral", body)
		}
		if answered != 0 {
			t.Fatal("the deferral came back after the model answered: it must not wait for the model")
		}
		edit, err := d.discord.WaitRequest(discordWait, func(r discordtest.Request) bool {
			return r.Method == http.MethodPatch && r.Path == "webhooks/"+discordAppID+"/token-"+id+"/messages/@original"
		})
		if err != nil {
			t.Fatalf("no edit of the original response at the stand-in: %v\nstderr:\n%s", err, d.Stderr)
		}
		var msg struct{ Content string }
		_ = edit.JSON(&msg)
		if !strings.Contains(msg.Content, discordWelcome+"Ada Lovelace") || !strings.Contains(msg.Content, "ada@example.com") {
			t.Fatalf("edit content %q, want the welcome and the email", msg.Content)
		}
		if err := discordtest.NoPings(edit.Body); err != nil {
			t.Fatal(err)
		}

		pg := openStore(t)
		reg, err := pg.GetRegistration(t.Context(), "discord", discordGuildID, user)
		if err != nil {
			t.Fatalf("registration not in PostgreSQL: %v", err)
		}
		if reg.Name != "Ada Lovelace" || reg.Email != "ada@example.com" {
			t.Fatalf("stored %q %q", reg.Name, reg.Email)
		}
		if strings.Contains(d.Stderr.String(), "ada@example.com") || strings.Contains(d.Stderr.String(), "token-"+id) {
			t.Fatal("the logs carry an email or an interaction token")
		}
	})

	t.Run("sync", func(t *testing.T) {
		d := startDiscordServe(t, nil, "--mode", "sync")
		id, user := newID(), newID()
		status, body := d.post(t, d.signed(t, registerPayload(t, id, user, "Grace Hopper", "grace@example.com"), time.Now()))
		var resp discordtest.Response
		if err := json.Unmarshal(body, &resp); err != nil || status != http.StatusOK {
			t.Fatalf("/register = %d %s", status, body)
		}
		if resp.Type != 4 || resp.Data == nil || resp.Data.Flags != 64 || !strings.Contains(resp.Data.Content, discordWelcome+"Grace Hopper") {
			t.Fatalf("sync /register answered %s, want type 4 with the welcome, ephemeral", body)
		}
		if d.model.answered.Load() != 1 {
			t.Fatal("sync mode answered before the model did")
		}
		if err := discordtest.NoPings(body); err != nil {
			t.Fatal(err)
		}
		if _, err := openStore(t).GetRegistration(t.Context(), "discord", discordGuildID, user); err != nil {
			t.Fatalf("registration not in PostgreSQL: %v", err)
		}
	})
}

func TestDiscordServeRefusals(t *testing.T) {
	d := startDiscordServe(t, nil)
	pg := openStore(t)
	tests := []struct {
		name   string
		req    func(body []byte) *http.Request
		status int
		reason string // the label counted in classbot_refused_requests_total
	}{
		{"missing headers", func(b []byte) *http.Request {
			r := d.signed(t, b, time.Now())
			r.Header.Del("X-Signature-Ed25519")
			r.Header.Del("X-Signature-Timestamp")
			return r
		}, http.StatusUnauthorized, "missing_signature"},
		{"bad signature", func(b []byte) *http.Request {
			_, other, _ := ed25519.GenerateKey(rand.Reader)
			r, _ := discordtest.NewRequest(t.Context(), d.URL+"/discord/interactions", other, time.Now(), b)
			return r
		}, http.StatusUnauthorized, "bad_signature"},
		{"stale timestamp", func(b []byte) *http.Request { return d.signed(t, b, time.Now().Add(-10*time.Minute)) }, http.StatusUnauthorized, "stale_timestamp"},
		{"oversized body", func(b []byte) *http.Request {
			big := append(b[:len(b)-1:len(b)-1], []byte(`,"pad":"`+strings.Repeat("x", 65<<10)+`"}`)...)
			return d.signed(t, big, time.Now())
		}, http.StatusRequestEntityTooLarge, "too_large"},
		{"malformed body", func(b []byte) *http.Request { return d.signed(t, b[:len(b)/2], time.Now()) }, http.StatusBadRequest, "bad_body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, err := pg.CountRegistrations(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			requests := d.model.Requests()
			id, user := newID(), newID()
			status, body := d.post(t, tt.req(registerPayload(t, id, user, "Mallory", "mallory@example.com")))
			if status != tt.status {
				t.Fatalf("status %d (%s), want %d", status, body, tt.status)
			}
			after, err := pg.CountRegistrations(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if after != before {
				t.Fatalf("registrations went from %d to %d after a refusal", before, after)
			}
			if _, err := pg.GetInteraction(t.Context(), "discord", id); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("ledger lookup after a refusal: %v, want ErrNotFound", err)
			}
			if d.model.Requests() != requests {
				t.Fatal("the model was called after a refusal")
			}
			if n := len(d.discord.Requests()); n != 0 {
				t.Fatalf("Discord got %d calls after a refusal", n)
			}
			want := `classbot_refused_requests_total{platform="discord",reason="` + tt.reason + `"} 1`
			if m := getBody(t, d.MetricsURL+"/metrics"); !strings.Contains(m, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		})
	}
}

func TestDiscordServeGateway(t *testing.T) {
	d := startDiscordServe(t, map[string]string{
		"DISCORD_PUBLIC_KEY": "", "DISCORD_BOT_TOKEN": discordBotToken, "DISCORD_GUILD_ID": discordGuildID,
	})
	if _, err := d.discord.WaitRequest(discordWait, func(r discordtest.Request) bool {
		return r.Method == http.MethodPut && r.Path == "applications/"+discordAppID+"/guilds/"+discordGuildID+"/commands"
	}); err != nil {
		t.Fatalf("commands not registered at start: %v", err)
	}
	if err := d.discord.Wait(discordWait, func() bool { return d.discord.ReadyConns() == 1 }); err != nil {
		t.Fatalf("no gateway session: %v\nstderr:\n%s", err, d.Stderr)
	}
	id, user := newID(), newID()
	d.discord.SendInteraction(registerPayload(t, id, user, "Katherine Johnson", "kj@example.com"))
	cb, err := d.discord.WaitRequest(discordWait, func(r discordtest.Request) bool {
		return r.Method == http.MethodPost && r.Path == "interactions/"+id+"/token-"+id+"/callback"
	})
	if err != nil {
		t.Fatalf("no deferral: %v", err)
	}
	if d.model.answered.Load() != 0 {
		t.Fatal("the deferral waited for the model")
	}
	var resp discordtest.Response
	if err := cb.JSON(&resp); err != nil || resp.Type != 5 {
		t.Fatalf("callback %s, want type 5", cb.Body)
	}
	edit, err := d.discord.WaitRequest(discordWait, func(r discordtest.Request) bool {
		return r.Method == http.MethodPatch && r.Path == "webhooks/"+discordAppID+"/token-"+id+"/messages/@original"
	})
	if err != nil {
		t.Fatalf("no edit: %v", err)
	}
	if !strings.Contains(string(edit.Body), discordWelcome+"Katherine Johnson") {
		t.Fatalf("edit %s lacks the welcome", edit.Body)
	}
	// Stopping serve closes the gateway connection. (startServe's cleanup
	// collects run's result; served.Stop would take it first.)
	d.cancel()
	if err := d.discord.Wait(discordWait, func() bool { return d.discord.ReadyConns() == 0 }); err != nil {
		t.Fatal("gateway still connected after serve stopped")
	}
}

func TestDiscordRegisterCommandsSubcommand(t *testing.T) {
	stand := discordtest.New()
	t.Cleanup(stand.Close)
	tests := []struct {
		name      string
		env       map[string]string
		args      []string
		wantUsage bool
		wantPath  string
	}{
		{"guild", map[string]string{"DISCORD_GUILD_ID": discordGuildID}, nil, false, "applications/" + discordAppID + "/guilds/" + discordGuildID + "/commands"},
		{"global", nil, nil, false, "applications/" + discordAppID + "/commands"},
		{"guild flag", nil, []string{"--guild", "77"}, false, "applications/" + discordAppID + "/guilds/77/commands"},
		{"no token", map[string]string{"DISCORD_BOT_TOKEN": ""}, nil, true, ""},
		{"extra argument", nil, []string{"now"}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"DISCORD_BOT_TOKEN": discordBotToken, "DISCORD_APP_ID": discordAppID, "DISCORD_API_URL": stand.APIURL}
			for k, v := range tt.env {
				env[k] = v
			}
			before := len(stand.Requests())
			var out, errOut lockedBuffer
			err := run(t.Context(), append([]string{"classbot", "discord", "register-commands"}, tt.args...), func(k string) string { return env[k] }, strings.NewReader(""), &out, &errOut)
			var ue *usageError
			if tt.wantUsage {
				if !errors.As(err, &ue) {
					t.Fatalf("run = %v, want a usage error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("run = %v\nstderr: %s", err, errOut.String())
			}
			reqs := stand.Requests()[before:]
			if len(reqs) != 1 || reqs[0].Method != http.MethodPut || reqs[0].Path != tt.wantPath {
				t.Fatalf("calls %v, want one PUT %s", reqs, tt.wantPath)
			}
			var cmds []struct {
				Name    string `json:"name"`
				Options []struct {
					Name     string `json:"name"`
					Type     int    `json:"type"`
					Required bool   `json:"required"`
				} `json:"options"`
			}
			if err := reqs[0].JSON(&cmds); err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprint(cmds)
			// /register's options are optional: without them it opens a form.
			if !strings.HasPrefix(got, "[{register [{name 3 false} {email 3 false}]} {ask [{question 3 true}]} ") ||
				!strings.Contains(got, " {course [{use 3 false} {reindex 3 false}]} ") || !strings.Contains(got, " {roster []}") ||
				!strings.Contains(got, " {whoami []} ") || !strings.Contains(got, " {forget [{confirm 5 false}]}") {
				t.Fatalf("registered %s", got)
			}
			if strings.Contains(out.String()+errOut.String(), discordBotToken) {
				t.Fatal("the bot token was printed")
			}
		})
	}

	var out, errOut lockedBuffer
	if err := run(t.Context(), []string{"classbot", "discord", "--help"}, func(string) string { return "" }, strings.NewReader(""), &out, &errOut); err != nil || !strings.Contains(out.String(), "register-commands") {
		t.Fatalf("discord --help = %v, %q", err, out.String())
	}
	for _, args := range [][]string{{"discord"}, {"discord", "frob"}} {
		err := run(t.Context(), append([]string{"classbot"}, args...), func(string) string { return "" }, strings.NewReader(""), &out, &errOut)
		var ue *usageError
		if !errors.As(err, &ue) {
			t.Fatalf("%v = %v, want a usage error", args, err)
		}
	}
}

// A failed command registration at start takes nothing down: the gateway
// and the webhooks serve, /readyz stays 200 and says the commands are not
// registered yet, /metrics counts the attempts, and the registration
// succeeds by itself once Discord accepts it.
func TestDiscordServeSurvivesAFailedRegistration(t *testing.T) {
	dc := discordtest.New()
	t.Cleanup(dc.Close)
	dc.FailCommandRegistrations(http.StatusInternalServerError)
	model := newCountingModel(t, 0)
	s := startServe(t, map[string]string{
		"DISCORD_BOT_TOKEN": discordBotToken, "DISCORD_APP_ID": discordAppID, "DISCORD_GUILD_ID": discordGuildID,
		"DISCORD_API_URL": dc.APIURL, "LLM_BASE_URL": model.URL + "/v1", "SHUTDOWN_TIMEOUT": "5s",
	})
	if err := dc.Wait(discordWait, func() bool { return dc.ReadyConns() == 1 }); err != nil {
		t.Fatalf("no gateway session while the registration fails: %v\nstderr:\n%s", err, s.Stderr)
	}
	waitUntil(t, 20*time.Second, "a failed registration in /metrics", func() bool {
		return strings.Contains(getBody(t, s.MetricsURL+"/metrics"), `classbot_discord_command_registrations_total{result="error"}`)
	})
	if body := getBody(t, s.URL+"/readyz"); !strings.Contains(body, "discord: commands not registered yet") {
		t.Errorf("/readyz = %q, want a line saying the commands are not registered yet", body)
	}
	if m := getBody(t, s.MetricsURL+"/metrics"); !strings.Contains(m, "classbot_discord_commands_registered 0") {
		t.Error("/metrics does not say the commands are unregistered")
	}

	dc.FailCommandRegistrations(0)
	waitUntil(t, 30*time.Second, "the registration to succeed on a retry", func() bool {
		return getBody(t, s.URL+"/readyz") == "ready\n"
	})
	if m := getBody(t, s.MetricsURL+"/metrics"); !strings.Contains(m, "classbot_discord_commands_registered 1") {
		t.Error("/metrics does not say the commands are registered")
	}
}

// waitUntil polls cond every 20 ms until it holds, or fails after within.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

package discord_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/discord"
	"github.com/classbot/classbot/bot/discord/discordtest"
)

// runGateway starts Run and returns a function that stops it and returns
// what Run returned.
func runGateway(t *testing.T, f *fixture) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.adapter.Run(ctx) }()
	var (
		once   sync.Once
		runErr error
	)
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(15 * time.Second):
				t.Error("Run did not return within 15s of its context being cancelled")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func TestDiscordGateway(t *testing.T) {
	f := setup(t, options{mode: bot.ModeAsync, botToken: "test-bot-token", guild: guildID})
	f.discord.HeartbeatInterval = 200 * time.Millisecond
	stop := runGateway(t, f)

	if _, err := f.discord.WaitRequest(wait, func(r discordtest.Request) bool {
		return r.Method == http.MethodPut && r.Path == "applications/"+appID+"/guilds/"+guildID+"/commands"
	}); err != nil {
		t.Fatalf("commands not registered at start: %v", err)
	}
	if got := f.waitRegisterResults(func(r []error) bool { return len(r) > 0 }); len(got) != 1 || got[0] != nil {
		t.Fatalf("registration results %v, want one success", got)
	}
	if ok, err := f.adapter.CommandsRegistered(); !ok || err != nil {
		t.Fatalf("CommandsRegistered() = %v, %v", ok, err)
	}
	if err := f.discord.Wait(wait, func() bool { return f.discord.ReadyConns() == 1 }); err != nil {
		t.Fatalf("no gateway connection got READY: %v", err)
	}
	if err := f.discord.Wait(wait, func() bool { _, _, hb := f.discord.Gateway(); return hb >= 2 }); err != nil {
		t.Fatalf("no heartbeats: %v", err)
	}
	if r, err := f.discord.WaitRequest(wait, func(r discordtest.Request) bool { return r.Path == "gateway" }); err != nil || r.Header.Get("Authorization") != "Bot test-bot-token" {
		t.Fatalf("gateway URL not asked for with the bot token (%v)", err)
	}

	send := func(id string) {
		t.Helper()
		if n := f.discord.SendInteraction(json.RawMessage(interaction(t, id, "", nil))); n != 1 {
			t.Fatalf("interaction sent on %d connections, want 1", n)
		}
		cb, err := f.discord.WaitRequest(wait, isCallback(id))
		if err != nil {
			t.Fatalf("no deferral for %s: %v", id, err)
		}
		var resp discordtest.Response
		if err := cb.JSON(&resp); err != nil || resp.Type != 5 || resp.Data == nil || resp.Data.Flags != 64 {
			t.Fatalf("callback %s, want type 5 ephemeral", cb.Body)
		}
		if err := discordtest.NoPings(cb.Body); err != nil {
			t.Fatal(err)
		}
	}

	id := "1200000000000000400"
	send(id)
	// The deferral went out while the model is held (its gate opens
	// below); the model gets the request, and nothing follows the
	// deferral until it answers.
	f.agent.waitCalled(t)
	if n := len(f.answerParts(id)); n != 0 {
		t.Fatalf("%d answer messages before the model answered", n)
	}
	f.openAgent()
	edit, err := f.discord.WaitRequest(wait, isEdit("token-"+id))
	if err != nil {
		t.Fatalf("no edit of the original: %v", err)
	}
	if c := content(t, edit); !strings.Contains(c, "Welcome to the class!") {
		t.Fatalf("edit %q lacks the welcome", c)
	}
	if err := discordtest.NoPings(edit.Body); err != nil {
		t.Fatal(err)
	}

	// A dropped connection is reopened (resumed) and interactions flow again.
	f.discord.DropConnections()
	if err := f.discord.Wait(wait, func() bool {
		id, res, _ := f.discord.Gateway()
		return id+res >= 2 && f.discord.ReadyConns() == 1
	}); err != nil {
		t.Fatalf("no reconnection after the connection dropped: %v", err)
	}
	id2 := "1200000000000000401"
	send(id2)
	if _, err := f.discord.WaitRequest(wait, isEdit("token-"+id2)); err != nil {
		t.Fatalf("no edit after reconnecting: %v", err)
	}

	if err := stop(); err != nil {
		t.Fatalf("Run returned %v after cancel, want nil", err)
	}
	if err := f.discord.Wait(wait, func() bool { return f.discord.ReadyConns() == 0 }); err != nil {
		t.Fatalf("gateway connection still open after Run returned: %v", err)
	}
}

// sendAndWaitCallback sends an interaction on the gateway and returns its
// callback (the first response).
func sendAndWaitCallback(t *testing.T, f *fixture, id string, body []byte) discordtest.Response {
	t.Helper()
	if n := f.discord.SendInteraction(json.RawMessage(body)); n != 1 {
		t.Fatalf("interaction sent on %d connections, want 1", n)
	}
	cb, err := f.discord.WaitRequest(wait, isCallback(id))
	if err != nil {
		t.Fatalf("no callback for %s: %v", id, err)
	}
	if err := discordtest.NoPings(cb.Body); err != nil {
		t.Fatal(err)
	}
	var resp discordtest.Response
	if err := cb.JSON(&resp); err != nil || resp.Data == nil {
		t.Fatalf("callback %s: %v", cb.Body, err)
	}
	return resp
}

func waitReady(t *testing.T, f *fixture) {
	t.Helper()
	if err := f.discord.Wait(wait, func() bool { return f.discord.ReadyConns() == 1 }); err != nil {
		t.Fatalf("no gateway connection got READY: %v", err)
	}
}

// TestDiscordGatewayAnswersRestartingDuringShutdown: once the Dispatcher's
// Shutdown has begun, an interaction on the gateway is answered
// "restarting" (by the Dispatcher), not dropped, and nothing is stored.
func TestDiscordGatewayAnswersRestartingDuringShutdown(t *testing.T) {
	f := setup(t, options{mode: bot.ModeAsync, botToken: "test-bot-token", open: true})
	runGateway(t, f)
	waitReady(t, f)
	f.shutdown()
	select {
	case <-f.disp.Closing():
	default:
		t.Fatal("the Dispatcher is not closing after Shutdown")
	}

	id := "1200000000000000450"
	resp := sendAndWaitCallback(t, f, id, interaction(t, id, "", nil))
	if resp.Type != 4 || resp.Data.Flags != 64 || !strings.Contains(resp.Data.Content, "restarting") {
		t.Fatalf("callback %+v, want a type 4 ephemeral \"restarting\" answer", *resp.Data)
	}
	f.nothingStored(id)
	if calls, _ := f.agent.stats(); calls != 0 {
		t.Fatalf("the agent was called %d times during shutdown", calls)
	}
}

// TestDiscordGatewayRegistrationRetries: command registration failing at
// start (Discord answering 500) neither stops Run nor the gateway, which
// serves interactions meanwhile; registration is retried in the background
// and succeeds once Discord recovers, and each attempt is reported.
func TestDiscordGatewayRegistrationRetries(t *testing.T) {
	f := setup(t, options{mode: bot.ModeAsync, botToken: "test-bot-token", guild: guildID, open: true})
	f.discord.FailCommandRegistrations(http.StatusInternalServerError)
	stop := runGateway(t, f)

	got := f.waitRegisterResults(func(r []error) bool { return len(r) >= 2 })
	for i, err := range got {
		if err == nil || !strings.Contains(err.Error(), "500") {
			t.Fatalf("attempt %d reported %v, want the 500", i+1, err)
		}
	}
	if ok, err := f.adapter.CommandsRegistered(); ok || err == nil {
		t.Fatalf("CommandsRegistered() = %v, %v while Discord answers 500", ok, err)
	}

	// The gateway is up and serving while registration fails.
	waitReady(t, f)
	id := "1200000000000000460"
	if resp := sendAndWaitCallback(t, f, id, interaction(t, id, "", nil)); resp.Type != 5 {
		t.Fatalf("callback type %d, want 5", resp.Type)
	}
	if _, err := f.discord.WaitRequest(wait, isEdit("token-"+id)); err != nil {
		t.Fatalf("no answer while registration fails: %v", err)
	}
	if ok, _ := f.adapter.CommandsRegistered(); ok {
		t.Fatal("commands registered while Discord answers 500")
	}

	f.discord.FailCommandRegistrations(0)
	got = f.waitRegisterResults(func(r []error) bool { return len(r) > 0 && r[len(r)-1] == nil })
	if len(got) < 3 {
		t.Fatalf("%d attempts reported, want at least two failures and a success", len(got))
	}
	if ok, err := f.adapter.CommandsRegistered(); !ok || err != nil {
		t.Fatalf("CommandsRegistered() = %v, %v after success, want true, nil", ok, err)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run returned %v, want nil", err)
	}
	if n := len(f.registerResults()); n != len(got) {
		t.Fatalf("%d attempts after the success, want none", n-len(got))
	}
}

// TestDiscordGatewayRefusals: an interaction whose ids or token are not
// safe in a REST path is ignored and counted; one whose option is not a
// string is told to type it as text; neither is dispatched.
func TestDiscordGatewayRefusals(t *testing.T) {
	f := setup(t, options{mode: bot.ModeAsync, botToken: "test-bot-token", open: true})
	runGateway(t, f)
	waitReady(t, f)

	bad := patch(t, interaction(t, "1200000000000000470", "", nil), func(m map[string]any) {
		m["application_id"] = "../../channels/1/messages"
	})
	if n := f.discord.SendInteraction(json.RawMessage(bad)); n != 1 {
		t.Fatalf("sent on %d connections", n)
	}
	id := "1200000000000000471"
	resp := sendAndWaitCallback(t, f, id, withOptions(t, interaction(t, id, "register", nil),
		`[{"name":"name","type":3,"value":{"a":1}},{"name":"email","type":3,"value":"ada@example.com"}]`))
	if resp.Type != 4 || resp.Data.Flags != 64 || !strings.Contains(resp.Data.Content, "Please type your name as plain text") {
		t.Fatalf("callback %+v, want a type 4 ephemeral request to type the name as text", *resp.Data)
	}
	// Events are handled in order of arrival only loosely (discordgo runs
	// each handler in its own goroutine): wait for both refusals.
	if err := f.discord.Wait(wait, func() bool { return len(f.refusals()) == 2 }); err != nil {
		t.Fatalf("refusals %q: %v", f.refusals(), err)
	}
	got := f.refusals()
	slices.Sort(got)
	if want := []string{discord.RefuseBadIDs, discord.RefuseBadOption}; !slices.Equal(got, want) {
		t.Fatalf("OnRefuseFunc got %q, want %q", got, want)
	}
	for _, r := range f.discord.Requests() {
		if strings.Contains(r.Path, "channels") || strings.Contains(r.Path, "1200000000000000470") {
			t.Fatalf("a call was made for the malformed interaction: %s %s", r.Method, r.Path)
		}
	}
	f.nothingStored("1200000000000000470")
	f.nothingStored(id)
	if calls, _ := f.agent.stats(); calls != 0 {
		t.Fatalf("the agent was called %d times", calls)
	}
}

func TestDiscordGatewaySyncAnswersWithCallback(t *testing.T) {
	f := setup(t, options{mode: bot.ModeSync, botToken: "test-bot-token", open: true})
	runGateway(t, f)
	if err := f.discord.Wait(wait, func() bool { return f.discord.ReadyConns() == 1 }); err != nil {
		t.Fatal(err)
	}
	id := "1200000000000000500"
	f.discord.SendInteraction(json.RawMessage(interaction(t, id, "", nil)))
	cb, err := f.discord.WaitRequest(wait, isCallback(id))
	if err != nil {
		t.Fatal(err)
	}
	var resp discordtest.Response
	if err := cb.JSON(&resp); err != nil || resp.Type != 4 || resp.Data == nil || !strings.Contains(resp.Data.Content, "Welcome to the class!") {
		t.Fatalf("callback %s, want type 4 with the welcome", cb.Body)
	}
}

func TestDiscordRegisterCommands(t *testing.T) {
	for _, tt := range []struct{ name, guild, path string }{
		{"guild", guildID, "applications/" + appID + "/guilds/" + guildID + "/commands"},
		{"global", "", "applications/" + appID + "/commands"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t, options{botToken: "test-bot-token", guild: tt.guild})
			if err := f.adapter.RegisterCommands(t.Context()); err != nil {
				t.Fatal(err)
			}
			reqs := f.discord.Requests()
			if len(reqs) != 1 || reqs[0].Method != http.MethodPut || reqs[0].Path != tt.path {
				t.Fatalf("calls %+v, want one PUT %s", reqs, tt.path)
			}
			if got := reqs[0].Header.Get("Authorization"); got != "Bot test-bot-token" {
				t.Fatalf("Authorization %q", got)
			}
			var cmds []struct {
				Name        string `json:"name"`
				Description string `json:"description"`
				Type        int    `json:"type"`
				Options     []struct {
					Type     int    `json:"type"`
					Name     string `json:"name"`
					Required bool   `json:"required"`
				} `json:"options"`
			}
			if err := reqs[0].JSON(&cmds); err != nil {
				t.Fatal(err)
			}
			got := map[string][]string{}
			for _, c := range cmds {
				if c.Type != 1 || c.Description == "" {
					t.Fatalf("command %+v: want a described chat input command", c)
				}
				for _, o := range c.Options {
					if c.Name == "forget" && o.Name == "confirm" {
						if o.Type != 5 || o.Required {
							t.Fatalf("option forget.confirm: type %d required %v, want an optional boolean", o.Type, o.Required)
						}
						got[c.Name] = append(got[c.Name], o.Name)
						continue
					}
					// /register's are optional: without them it opens a modal.
					if o.Type != 3 || !o.Required && c.Name != "course" && c.Name != "register" {
						t.Fatalf("option %s.%s: type %d required %v, want a required string", c.Name, o.Name, o.Type, o.Required)
					}
					got[c.Name] = append(got[c.Name], o.Name)
				}
			}
			want := map[string][]string{"register": {"name", "email"}, "ask": {"question"}, "course": {"use", "reindex"}, "forget": {"confirm"}}
			if len(cmds) != len(bot.Commands) || strings.Join(got["register"], ",") != "name,email" || strings.Join(got["ask"], ",") != "question" ||
				strings.Join(got["course"], ",") != "use,reindex" || strings.Join(got["forget"], ",") != "confirm" {
				t.Fatalf("commands and options %v, want %v", got, want)
			}
		})
	}
}

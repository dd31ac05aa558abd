package discord_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/classbot/classbot/bot"
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
	if _, done := f.agent.stats(); done != 0 {
		t.Fatal("the agent answered before the deferral")
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
					if o.Type != 3 || !o.Required {
						t.Fatalf("option %s.%s: type %d required %v, want a required string", c.Name, o.Name, o.Type, o.Required)
					}
					got[c.Name] = append(got[c.Name], o.Name)
				}
			}
			want := map[string][]string{"register": {"name", "email"}, "ask": {"question"}}
			if len(got) != len(want) || strings.Join(got["register"], ",") != "name,email" || strings.Join(got["ask"], ",") != "question" {
				t.Fatalf("commands and options %v, want %v", got, want)
			}
		})
	}
}

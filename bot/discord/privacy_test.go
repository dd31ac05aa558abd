package discord_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/discord"
	"github.com/classbot/classbot/store"
)

// /forget's confirm is a Discord boolean option: True deletes the
// student's registration, False or none only says what would be deleted,
// and a value that is not a boolean is refused without deleting anything.
func TestDiscordForgetConfirmIsABooleanOption(t *testing.T) {
	const user = "1300000000000000001" // the recorded interaction's member
	tests := []struct {
		name, options string
		want          string
		deleted       bool
		refused       bool
	}{
		{"no option", ``, "Nothing has been deleted yet", false, false},
		{"false", `[{"name":"confirm","type":5,"value":false}]`, "option confirm set to True", false, false},
		{"true", `[{"name":"confirm","type":5,"value":true}]`, "Done: classbot no longer keeps anything about you", true, false},
		{"a string", `[{"name":"confirm","type":3,"value":"true"}]`, "Please choose True or False for confirm", false, true},
		{"a boolean typed as a string", `[{"name":"confirm","type":5,"value":"true"}]`, "Please choose True or False for confirm", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t, options{mode: bot.ModeSync, open: true})
			if _, err := f.store.UpsertRegistration(t.Context(), store.Registration{Platform: bot.PlatformDiscord, Workspace: guildID,
				User: user, Name: "Ada Lovelace", Email: "ada@example.com"}); err != nil {
				t.Fatal(err)
			}
			body := interaction(t, "1200000000000000700", "forget", nil)
			if tt.options != "" {
				body = withOptions(t, body, tt.options)
			}
			status, resp := f.post(body)
			r := decodeResponse(t, resp)
			if status != http.StatusOK || r.Type != 4 || r.Data == nil || r.Data.Flags != 64 {
				t.Fatalf("response %d %s, want 200 with a type 4 ephemeral message", status, resp)
			}
			if !strings.Contains(r.Data.Content, tt.want) {
				t.Errorf("answer %q, want it to say %q", r.Data.Content, tt.want)
			}
			if _, registered := f.registration(user); registered == tt.deleted {
				t.Errorf("registered %v after /forget %s", registered, tt.name)
			}
			if refused := slices.Equal(f.refusals(), []string{discord.RefuseBadOption}); refused != tt.refused {
				t.Errorf("refusals %q", f.refusals())
			}
		})
	}
}

package discord_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/discord"
	"github.com/classbot/classbot/bot/discord/discordtest"
)

func modalSubmit(t *testing.T, id, customID string, fields map[string]string) []byte {
	t.Helper()
	b, err := discordtest.ModalSubmit(payload, id, "token-"+id, customID, fields)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// noOptions is /register typed without options.
func noOptions(t *testing.T, id string) []byte {
	return withOptions(t, interaction(t, id, "register", nil), `[]`)
}

func checkRegisterModal(t *testing.T, body []byte) {
	t.Helper()
	if err := discordtest.CheckModal(body); err != nil {
		t.Fatalf("modal %s: %v", body, err)
	}
	var r discordtest.Response
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	if r.Data.CustomID != discord.RegisterModalID {
		t.Fatalf("custom_id %q", r.Data.CustomID)
	}
	in := r.Inputs()
	if n, e := in["name"], in["email"]; len(in) != 2 || !n.Required || n.MinLength != 1 || n.MaxLength != 100 || !e.Required || e.MaxLength != 254 {
		t.Fatalf("text inputs %+v, want name 1..100 and email ..254, both required", in)
	}
}

func TestDiscordRegisterModalOverHTTP(t *testing.T) {
	f := setup(t, options{mode: bot.ModeAsync, open: true})
	status, body := f.post(noOptions(t, "1200000000000000700"))
	if status != http.StatusOK {
		t.Fatalf("status %d %s", status, body)
	}
	checkRegisterModal(t, body)
	f.nothingStored("1200000000000000700")

	// The submit is /register with the fields as options: deferred,
	// stored, welcomed, once however often it is delivered.
	id := "1200000000000000701"
	sub := modalSubmit(t, id, discord.RegisterModalID, map[string]string{"name": "Grace Hopper", "email": "Grace@Example.com"})
	status, body = f.post(sub)
	if r := decodeResponse(t, body); status != http.StatusOK || r.Type != 5 || r.Data == nil || r.Data.Flags != 64 {
		t.Fatalf("submit = %d %s, want type 5 ephemeral", status, body)
	}
	edit, err := f.discord.WaitRequest(wait, isEdit("token-"+id))
	if err != nil {
		t.Fatalf("no answer to the submit: %v", err)
	}
	if c := content(t, edit); !strings.Contains(c, "Grace Hopper") || !strings.Contains(c, "grace@example.com") {
		t.Fatalf("answer %q lacks the name or the email", c)
	}
	reg, ok := f.registration("1300000000000000001")
	if !ok || reg.Name != "Grace Hopper" || reg.Email != "grace@example.com" {
		t.Fatalf("registration %+v (found %v)", reg, ok)
	}
	// The options form keeps working beside the modal.
	status, body = f.post(interaction(t, "1200000000000000702", "register", map[string]string{"name": "Ada Lovelace", "email": "ada@example.com"}))
	if r := decodeResponse(t, body); status != http.StatusOK || r.Type != 5 {
		t.Fatalf("options form = %d %s, want a deferral", status, body)
	}
	f.post(sub)
	f.shutdown()
	if calls, _ := f.agent.stats(); calls != 2 {
		t.Fatalf("agent called %d times for one submit delivered twice and one options form, want 2", calls)
	}

}

func TestDiscordRegisterModalValidation(t *testing.T) {
	f := setup(t, options{mode: bot.ModeAsync, open: true})
	id := "1200000000000000710"
	status, body := f.post(modalSubmit(t, id, discord.RegisterModalID, map[string]string{"name": "Grace Hopper", "email": "not-an-email"}))
	r := decodeResponse(t, body)
	if status != http.StatusOK || r.Type != 4 || r.Data == nil || r.Data.Flags != 64 || !strings.Contains(strings.ToLower(r.Data.Content), "email") {
		t.Fatalf("bad email submit = %d %s, want an ephemeral answer about the email", status, body)
	}
	if n, _ := f.store.CountRegistrations(t.Context()); n != 0 {
		t.Fatalf("%d registrations from a bad email", n)
	}

	// A submit of a modal classbot never opened, or with extra fields, is
	// refused before dispatch.
	for i, sub := range [][]byte{
		modalSubmit(t, "1200000000000000711", "other", map[string]string{"name": "G", "email": "g@example.com"}),
		modalSubmit(t, "1200000000000000712", discord.RegisterModalID, map[string]string{"name": "G", "email": "g@example.com", "role": "teacher"}),
	} {
		status, body := f.post(sub)
		if r := decodeResponse(t, body); status != http.StatusOK || r.Type != 4 || r.Data == nil || r.Data.Flags != 64 {
			t.Fatalf("submit %d = %d %s, want an ephemeral refusal", i, status, body)
		}
	}
	if n, _ := f.store.CountRegistrations(t.Context()); n != 0 {
		t.Fatalf("%d registrations from refused submits", n)
	}

	// A submit is signed like a command: a bad signature or a stale
	// timestamp gets 401 and stores nothing.
	good := modalSubmit(t, "1200000000000000713", discord.RegisterModalID, map[string]string{"name": "Grace Hopper", "email": "grace@example.com"})
	req := f.signed(good, time.Now())
	req.Header.Set("X-Signature-Ed25519", strings.Repeat("0", 128))
	if status, _ := f.postRequest(req); status != http.StatusUnauthorized {
		t.Fatalf("badly signed submit = %d, want 401", status)
	}
	if status, _ := f.postRequest(f.signed(good, time.Now().Add(-6*time.Minute))); status != http.StatusUnauthorized {
		t.Fatalf("stale submit = %d, want 401", status)
	}
	if n, _ := f.store.CountRegistrations(t.Context()); n != 0 {
		t.Fatalf("%d registrations from unsigned submits", n)
	}
}

func TestDiscordRegisterModalOverGateway(t *testing.T) {
	f := setup(t, options{mode: bot.ModeAsync, botToken: "test-bot-token", guild: guildID, open: true})
	runGateway(t, f)
	waitReady(t, f)

	id := "1200000000000000720"
	if n := f.discord.SendInteraction(json.RawMessage(noOptions(t, id))); n != 1 {
		t.Fatalf("sent on %d connections", n)
	}
	cb, err := f.discord.WaitRequest(wait, isCallback(id))
	if err != nil {
		t.Fatalf("no callback: %v", err)
	}
	checkRegisterModal(t, cb.Body)

	id2 := "1200000000000000721"
	resp := sendAndWaitCallback(t, f, id2, modalSubmit(t, id2, discord.RegisterModalID, map[string]string{"name": "Grace Hopper", "email": "grace@example.com"}))
	if resp.Type != 5 {
		t.Fatalf("submit callback type %d, want 5", resp.Type)
	}
	if _, err := f.discord.WaitRequest(wait, isEdit("token-"+id2)); err != nil {
		t.Fatalf("no answer to the submit: %v", err)
	}
	if reg, ok := f.registration("1300000000000000001"); !ok || reg.Name != "Grace Hopper" {
		t.Fatalf("registration %+v (found %v)", reg, ok)
	}
}

func TestDiscordRegisterOptionsAreOptional(t *testing.T) {
	for _, c := range discord.Commands() {
		for _, o := range c.Options {
			if c.Name == "register" && o.Required {
				t.Fatalf("/register option %s is required: typing /register alone could not open the modal", o.Name)
			}
			if c.Name == "ask" && !o.Required {
				t.Fatalf("/ask option %s became optional", o.Name)
			}
		}
	}
}

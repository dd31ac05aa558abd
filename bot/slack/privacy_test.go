package slack_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/classbot/classbot/bot"
)

// Slack's /forget takes "confirm" as its text: without it the student
// hears what would be deleted and how to confirm; with it the
// registration is gone. Both answers only the student sees; so is /whoami.
func TestSlackWhoamiAndForgetConfirm(t *testing.T) {
	f := setup(t, options{mode: bot.ModeSync, open: true})
	const user = "U0A1B2C3D4E" // the recorded command's user
	if status, body := f.post(f.command(registerForm, "priv-register", nil)); status != http.StatusOK {
		t.Fatalf("register: %d %s", status, body)
	}
	steps := []struct {
		command, text, want string
		registered          bool
	}{
		{"/whoami", "", "ada@example.com", true},
		{"/forget", "", "type /forget confirm", true},
		{"/forget", "confirm", "Done: classbot no longer keeps anything about you", false},
		{"/whoami", "", "Registration: none", false},
	}
	for i, s := range steps {
		status, body := f.post(f.command(registerForm, "priv-"+string(rune('a'+i)), map[string]string{"command": s.command, "text": s.text}))
		m := decode(t, body)
		if status != http.StatusOK || m.ResponseType != "ephemeral" || !strings.Contains(unescape(m.Text), s.want) {
			t.Fatalf("%s %s = %d %s, want an ephemeral answer saying %q", s.command, s.text, status, body, s.want)
		}
		if _, ok := f.registration(user); ok != s.registered {
			t.Fatalf("after %s %s registered = %v, want %v", s.command, s.text, ok, s.registered)
		}
	}
}

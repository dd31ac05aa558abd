package slack_test

import (
	"os"
	"strings"
	"testing"

	"github.com/classbot/classbot/bot"
)

// The manifest at the repository root creates the app a teacher installs:
// it must offer every command classbot answers, with the scopes the adapter
// uses, in Socket Mode.
func TestManifestMatchesCommands(t *testing.T) {
	b, err := os.ReadFile("../../slack-manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := string(b)
	for _, s := range bot.Commands {
		if !strings.Contains(m, "- command: /"+s.Name+"\n") {
			t.Errorf("slack-manifest.yaml lacks the /%s command", s.Name)
		}
	}
	for _, want := range []string{"- commands", "- chat:write", "- files:write", "- im:write", "socket_mode_enabled: true", `usage_hint: "[your name] [your email]"`,
		"assistant_view:", "- assistant:write", "- im:history", "- app_mentions:read",
		"- assistant_thread_started", "- assistant_thread_context_changed", "- message.im", "- app_mention"} {
		if !strings.Contains(m, want) {
			t.Errorf("slack-manifest.yaml lacks %q", want)
		}
	}
}

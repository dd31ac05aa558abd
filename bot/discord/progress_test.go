package discord_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/classbot/classbot/agent"
	"github.com/classbot/classbot/bot"
)

// A student whose model call waits in line sees their place: an edit of
// the deferred response, then the answer's edit.
func TestDiscordPlaceInLine(t *testing.T) {
	f := setup(t, options{mode: bot.ModeAsync})
	id := "1200000000000000720"
	f.agent.onRun = func(ctx context.Context) {
		agent.WaitFunc(ctx)(12, 4*time.Second)
	}
	status, body := f.post(interaction(t, id, "ask", map[string]string{"question": "What is a goroutine?"}))
	if r := decodeResponse(t, body); status != http.StatusOK || r.Type != 5 {
		t.Fatalf("first response %d %s, want a deferral", status, body)
	}
	place, err := f.discord.WaitRequest(wait, isEdit("token-"+id))
	if err != nil {
		t.Fatalf("no edit with the place in line: %v", err)
	}
	if c := content(t, place); !strings.Contains(c, "#12 in line") {
		t.Fatalf("first edit %q, want the place in line", c)
	}
	f.openAgent()
	if err := f.discord.Wait(wait, func() bool { return len(f.answerParts(id)) == 2 }); err != nil {
		t.Fatalf("no answer after the place: %d edits", len(f.answerParts(id)))
	}
	if c := content(t, f.answerParts(id)[1]); !strings.Contains(c, "Welcome to the class!") {
		t.Fatalf("second edit %q, want the answer", c)
	}
}

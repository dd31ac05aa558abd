package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/console"
)

func TestConsoleReopenPrintsToTheSameTerminal(t *testing.T) {
	var out bytes.Buffer
	start := time.Now()
	ctx := context.Background()
	c := console.NewCommand("/ask", "what is due friday?", "demo-student")

	r := console.NewResponder(&out, start)
	if err := r.Ack(ctx, bot.Reply{Text: "Thinking…"}); err != nil {
		t.Fatal(err)
	}
	var resp bot.Responder = r
	a, ok := resp.(bot.Addressed)
	if !ok {
		t.Fatal("console.Responder does not implement bot.Addressed")
	}
	addr, err := a.Address()
	if err != nil || !json.Valid(addr) {
		t.Fatalf("Address() = %s, %v; want JSON", addr, err)
	}

	var ro bot.Reopener = console.NewReopener(&out, start)
	for _, text := range []string{"Homework 3.", "Homework 3, again."} {
		w, err := ro.Reopen(ctx, c, addr)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.FollowUp(ctx, bot.Reply{Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("printed %q, want 3 lines", out.String())
	}
	for i, want := range [][2]string{{"ack", "Thinking…"}, {"follow-up", "Homework 3."}, {"replaces", "Homework 3, again."}} {
		if !strings.Contains(lines[i], " "+want[0]+" ") && !strings.Contains(lines[i], " "+want[0]+"]") || !strings.HasSuffix(lines[i], "] "+want[1]) {
			t.Errorf("line %d %q, want %s: %s", i+1, lines[i], want[0], want[1])
		}
	}

	w, _ := ro.Reopen(ctx, c, addr)
	if w.Ack(ctx, bot.Reply{}) == nil || w.Respond(ctx, bot.Reply{Text: "x"}) == nil {
		t.Fatal("a reopened Responder's Ack and Respond succeeded")
	}
	if _, err := ro.Reopen(ctx, bot.Command{Platform: bot.PlatformSlack}, addr); err == nil {
		t.Fatal("Reopen took a Slack command")
	}
}

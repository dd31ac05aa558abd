package slack_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/classbot/classbot/agent"
	"github.com/classbot/classbot/bot"
)

// A student whose model call waits in line sees their place: a
// response_url post that replaces the acknowledgement, then the answer.
func TestSlackPlaceInLine(t *testing.T) {
	for _, socket := range []bool{false, true} {
		name := "http"
		if socket {
			name = "socket mode"
		}
		t.Run(name, func(t *testing.T) {
			o := options{mode: bot.ModeAsync}
			if socket {
				o.appToken, o.botToken = appToken, botToken
			}
			f := setup(t, o)
			f.agent.onRun = func(ctx context.Context) { agent.WaitFunc(ctx)(12, 4*time.Second) }
			trigger := "7712345678901.7700000000001.place-" + strings.ReplaceAll(name, " ", "-")
			if socket {
				f.runSocket()
				if _, err := f.slack.WaitAck(wait, f.envelope(askForm, trigger, nil)); err != nil {
					t.Fatal(err)
				}
			} else if status, body := f.post(f.command(askForm, trigger, nil)); status != http.StatusOK {
				t.Fatalf("status %d %s", status, body)
			}
			posts, err := f.slack.WaitPosts(wait, trigger, 1)
			if err != nil {
				t.Fatalf("no post with the place in line: %v", err)
			}
			if m := message(t, posts[0]); !m.ReplaceOriginal || !strings.Contains(m.Text, "#12 in line") {
				t.Fatalf("first post %+v, want the place in line replacing the acknowledgement", m)
			}
			f.agent.open()
			posts, err = f.slack.WaitPosts(wait, trigger, 2)
			if err != nil {
				t.Fatal(err)
			}
			if m := message(t, posts[1]); !strings.Contains(m.Text, "Welcome to the class!") {
				t.Fatalf("second post %+v, want the answer", m)
			}
		})
	}
}

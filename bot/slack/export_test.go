package slack

import (
	"net/http/httptest"

	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/classbot/classbot/bot"
)

// Responders returns the Responders a's HTTP handler and Socket Mode
// loop would hand the Dispatcher for sc, for tests of what they share.
func Responders(a *Adapter, sc slackgo.SlashCommand) map[string]bot.Responder {
	return map[string]bot.Responder{
		"http":        &httpResponder{delivery: a.delivery(sc), w: httptest.NewRecorder()},
		"socket mode": &socketResponder{delivery: a.delivery(sc), client: socketmode.New(a.api), envelope: "envelope-1"},
	}
}

// ThreadResponder returns the Responder an event's question in thread ts
// of channel ch, asked by user, gets.
func ThreadResponder(a *Adapter, ch, user, ts string, assistant bool) bot.Responder {
	return &threadResponder{a: a, channel: ch, user: user, thread: ts, assistant: assistant}
}

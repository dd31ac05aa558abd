package discord

import (
	"net/http/httptest"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/classbot/classbot/bot"
)

// SetRegisterBackoff shortens the delays between Run's command
// registration attempts, for tests: first, doubling up to max.
func SetRegisterBackoff(a *Adapter, first, max time.Duration) {
	a.registerBackoff, a.registerMaxBackoff = first, max
}

// Responders returns the Responders a's HTTP handler and gateway would
// hand the Dispatcher for in, for tests of what they share.
func Responders(a *Adapter, in *discordgo.Interaction) map[string]bot.Responder {
	return map[string]bot.Responder{
		"http":    &httpResponder{webhook: a.webhook(in), w: httptest.NewRecorder()},
		"gateway": &gatewayResponder{webhook: a.webhook(in)},
	}
}

// MentionResponder returns the Responder a mention of message msg in
// channel ch of guild gets.
func MentionResponder(a *Adapter, msg, ch, guild string) bot.Responder {
	return &mentionResponder{a: a, message: msg, channel: ch, guild: guild}
}

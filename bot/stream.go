package bot

import (
	"context"

	"github.com/classbot/classbot/agent"
)

// Streamer is implemented by a Responder that can show an answer while the
// model writes it, between Ack and FollowUp (Discord: edits of the deferred
// response; Slack: a streamed message). The Dispatcher passes it to the
// work after Ack; /ask calls Stream as the answer grows; FollowUp then
// delivers the complete answer as usual and must leave exactly what a
// FollowUp without streaming leaves (the last thing shown is the whole
// answer, never a later preview).
//
// Every surface that streams answers (slash commands, mentions, assistant
// threads) goes through this one method, so the throttling, the escaping
// and the queue-mode bookkeeping live in the adapter, once.
type Streamer interface {
	// Stream shows text, the answer so far: plain text, escaped by the
	// adapter like every Reply, and whole (a later text may be shorter
	// than an earlier one when the model starts over). It is called from
	// one goroutine, never after FollowUp, and may show only some of the
	// texts it is given (rate limits). Stream must return quickly; its
	// failures are the adapter's to log: the answer still comes with
	// FollowUp.
	Stream(ctx context.Context, text string)
}

// StreamAgent is an Agent that can stream; *agent.Runner implements it.
// An Agent without it answers /ask in one piece.
type StreamAgent interface {
	RunStream(ctx context.Context, a agent.Agent, input string, onText func(text string)) (agent.Result, error)
}

type streamerKey struct{}

// withStreamer returns ctx carrying r's Streamer, if r has one.
func withStreamer(ctx context.Context, r Responder) context.Context {
	if s, ok := r.(Streamer); ok {
		return context.WithValue(ctx, streamerKey{}, s)
	}
	return ctx
}

func streamerFrom(ctx context.Context) Streamer {
	s, _ := ctx.Value(streamerKey{}).(Streamer)
	return s
}

// runAnswer runs a on q, streaming the answer to the command's Streamer
// when there is one and the Agent can stream.
func (b *Bot) runAnswer(ctx context.Context, a agent.Agent, q string) (agent.Result, error) {
	s := streamerFrom(ctx)
	sa, ok := b.agent.(StreamAgent)
	if s == nil || !ok {
		return b.agent.Run(ctx, a, q)
	}
	return sa.RunStream(ctx, a, q, func(text string) { s.Stream(ctx, text) })
}

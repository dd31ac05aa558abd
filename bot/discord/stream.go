package discord

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/classbot/classbot/bot"
)

// DefaultStreamInterval is the least time between two edits that show a
// streamed answer while the model writes it.
const DefaultStreamInterval = 1500 * time.Millisecond

// preview is what one interaction's streamed edits have done so far. Its
// Responder's one goroutine uses it (see bot.Streamer).
type preview struct {
	last  time.Time // when the last preview edit was sent; zero: none yet
	shown string    // what it showed
	off   bool      // an edit failed: no more previews, FollowUp still answers
}

// next returns what the preview should show of text, the answer so far,
// and whether to send it now: not when text adds nothing to what is shown,
// an edit went out less than a's StreamInterval ago, or the rate limit of
// bucket (as discordgo learnt it from Discord's X-RateLimit-* headers) has
// fewer than two requests left: one is kept for the final message, which
// FollowUp sends whatever the previews did. A preview shows at most the
// answer's first message (2,000 characters).
func (p *preview) next(a *Adapter, bucket, text string) (string, bool) {
	if p.off {
		return "", false
	}
	content := Split(strings.TrimSpace(text))[0]
	if content == "" || content == p.shown {
		return "", false
	}
	now := time.Now()
	if !p.last.IsZero() && now.Sub(p.last) < a.streamInterval {
		return "", false
	}
	rl := a.session.Ratelimiter
	if rl.GetWaitTime(rl.GetBucket(bucket), 2) > 0 {
		return "", false
	}
	p.last = now
	return content, true
}

// sent notes the outcome of sending content: after an error no more
// previews are sent (FollowUp still answers).
func (p *preview) sent(content string, err error) {
	if err != nil {
		p.off = true
		return
	}
	p.shown = content
}

// show edits the deferred response to show text, the answer so far, when
// preview.next allows it; like every edit it sets allowed_mentions to none.
func (w webhook) show(ctx context.Context, p *preview, text string) {
	uri := discordgo.EndpointInteractionResponseActions(w.appID, w.token)
	content, ok := p.next(w.a, uri, text)
	if !ok {
		return
	}
	err := w.edit(ctx, content, nil, nil)
	p.sent(content, err)
	if err != nil {
		w.a.log.LogAttrs(ctx, slog.LevelInfo, "discord: streamed edit failed; the answer comes whole",
			slog.String("interaction", w.interaction), slog.Any("error", err))
	}
}

// Stream shows the answer so far by editing the deferred response (see
// webhook.show).
func (h *httpResponder) Stream(ctx context.Context, text string) { h.show(ctx, &h.preview, text) }

// Stream shows the answer so far by editing the deferred response (see
// webhook.show).
func (g *gatewayResponder) Stream(ctx context.Context, text string) { g.show(ctx, &g.preview, text) }

// Stream shows the answer so far by editing the deferred response: a
// retried attempt edits the same message, which FollowUp then completes.
func (r *reopened) Stream(ctx context.Context, text string) { r.show(ctx, &r.preview, text) }

var (
	_ bot.Streamer = (*httpResponder)(nil)
	_ bot.Streamer = (*gatewayResponder)(nil)
	_ bot.Streamer = (*reopened)(nil)
	_ bot.Streamer = (*mentionResponder)(nil)
)

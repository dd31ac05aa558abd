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

// show edits the deferred response to show text, the answer so far, unless
// an edit went out less than the adapter's StreamInterval ago, or the
// route's rate limit (as discordgo learnt it from Discord's X-RateLimit-*
// headers) has fewer than two requests left: one is kept for the final
// edit, which FollowUp makes whatever the previews did. A preview shows at
// most the answer's first message (2,000 characters); like every edit it
// sets allowed_mentions to none.
func (w webhook) show(ctx context.Context, p *preview, text string) {
	if p.off {
		return
	}
	content := Split(strings.TrimSpace(text))[0]
	if content == "" || content == p.shown {
		return
	}
	now := time.Now()
	if !p.last.IsZero() && now.Sub(p.last) < w.a.streamInterval {
		return
	}
	uri := discordgo.EndpointInteractionResponseActions(w.appID, w.token)
	rl := w.a.session.Ratelimiter
	if rl.GetWaitTime(rl.GetBucket(uri), 2) > 0 {
		return
	}
	p.last = now
	if err := w.edit(ctx, content, nil, nil); err != nil {
		p.off = true
		w.a.log.LogAttrs(ctx, slog.LevelInfo, "discord: streamed edit failed; the answer comes whole",
			slog.String("interaction", w.interaction), slog.Any("error", err))
		return
	}
	p.shown = content
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
)

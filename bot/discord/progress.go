package discord

import (
	"context"

	"github.com/classbot/classbot/bot"
)

var _ bot.Progresser = (*httpResponder)(nil)
var _ bot.Progresser = (*gatewayResponder)(nil)

// Progress edits the deferred response to show r (the student's place in
// line); the answer's FollowUp edits it again.
func (w webhook) Progress(ctx context.Context, r bot.Reply) error {
	return w.edit(ctx, Split(r.Text)[0], nil, nil)
}

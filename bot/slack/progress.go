package slack

import (
	"context"
	"errors"

	slackgo "github.com/slack-go/slack"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/internal/redact"
)

var _ bot.Progresser = (*httpResponder)(nil)
var _ bot.Progresser = (*socketResponder)(nil)

// Progress replaces the acknowledgement with r (the student's place in
// line) by a response_url post with replace_original. It uses one of the
// response_url's five posts; the Dispatcher makes few of them.
func (d delivery) Progress(ctx context.Context, r bot.Reply) error {
	if d.responseURL == "" {
		return errors.New("the command has no response_url")
	}
	ctx, cancel := context.WithTimeout(ctx, responseURLTimeout)
	defer cancel()
	err := slackgo.PostWebhookCustomHTTPContext(ctx, d.responseURL, d.a.hooks, &slackgo.WebhookMessage{
		Text: Messages(r.Text)[0], ResponseType: responseType(r), ReplaceOriginal: true,
	})
	return redact.Secret(err, d.responseURL, "[response_url]")
}

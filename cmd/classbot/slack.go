package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/slack"
)

// slackTokenCheckTimeout bounds setupSlack's auth.test call.
const slackTokenCheckTimeout = 10 * time.Second

// setupSlack wires the Slack adapter when SLACK_SIGNING_SECRET or
// SLACK_APP_TOKEN is set; nil otherwise. The signing secret turns on
// POST /slack/commands; the app-level token turns on Socket Mode (no public
// URL needed). SLACK_BOT_TOKEN, when set, lets answers whose response_url
// failed reach the student through chat.postEphemeral.
//
// A token Slack refuses is an error that names its variable: the bot token
// is checked with auth.test here (a check that cannot reach Slack is logged
// and skipped), the app token when Socket Mode connects.
func setupSlack(ctx context.Context, a *app) (*platform, error) {
	if a.cfg.SlackSigningSecret == "" && a.cfg.SlackAppToken == "" {
		return nil, nil
	}
	if a.cfg.SlackBotToken != "" {
		if err := checkSlackBotToken(ctx, a); err != nil {
			return nil, err
		}
	}
	ad, err := slack.New(slack.Config{
		SigningSecret:       a.cfg.SlackSigningSecret,
		BotToken:            a.cfg.SlackBotToken,
		AppToken:            a.cfg.SlackAppToken,
		APIURL:              a.cfg.SlackAPIURL,
		ResponseURLPrefixes: a.cfg.SlackResponseURLPrefixes,
		Dispatcher:          a.disp,
		Logger:              a.log,
		OnRefuseFunc:        func(reason string) { a.metrics.refuse("slack", reason) },
		Courses:             a.store, // names the course in the assistant's suggested prompts
	})
	if err != nil {
		return nil, err
	}
	p := &platform{name: "slack"}
	if r, ok := any(ad).(bot.Reopener); ok {
		p.reopener = r
	}
	if a.cfg.SlackSigningSecret != "" {
		p.routes = map[string]http.Handler{
			"POST /slack/commands":     ad.Handler(),
			"POST /slack/events":       ad.EventsHandler(),
			"POST /slack/interactions": ad.InteractionsHandler(),
		}
	}
	if a.cfg.SlackAppToken != "" {
		p.run = func(ctx context.Context) error {
			err := ad.Run(ctx)
			if code, ok := slackTokenRefused(err); ok {
				return &hintError{
					msg: fmt.Sprintf("Slack refused SLACK_APP_TOKEN (%s): copy the app-level token (xapp-…, scope connections:write) again "+
						"from your Slack app's Basic Information page, App-Level Tokens, into SLACK_APP_TOKEN", code),
					err: err,
				}
			}
			return err
		}
	}
	return p, nil
}

// checkSlackBotToken asks Slack's auth.test whether it takes
// SLACK_BOT_TOKEN. It returns an error naming the variable only when Slack
// refuses the token; a check that fails otherwise (no network, a timeout,
// a server error) is logged and counts as passed.
func checkSlackBotToken(ctx context.Context, a *app) error {
	ctx, cancel := context.WithTimeout(ctx, slackTokenCheckTimeout)
	defer cancel()
	api := slackgo.New(a.cfg.SlackBotToken, slackgo.OptionAPIURL(a.cfg.SlackAPIURL))
	_, err := api.AuthTestContext(ctx)
	if code, ok := slackTokenRefused(err); ok {
		return &hintError{
			msg: fmt.Sprintf("Slack refused SLACK_BOT_TOKEN (%s): copy the Bot User OAuth Token (xoxb-…) again from your Slack app's "+
				"OAuth & Permissions page into SLACK_BOT_TOKEN (reinstall the app to the workspace if it was removed)", code),
			err: err,
		}
	}
	if err != nil {
		a.log.Warn("slack: could not check SLACK_BOT_TOKEN with auth.test; carrying on", "err", err)
	}
	return nil
}

// slackTokenRefused reports whether err is Slack refusing a token, and
// Slack's error code.
func slackTokenRefused(err error) (string, bool) {
	var se slackgo.SlackErrorResponse
	if !errors.As(err, &se) {
		return "", false
	}
	switch se.Err {
	case "invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive", "not_allowed_token_type":
		return se.Err, true
	}
	return "", false
}

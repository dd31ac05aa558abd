package main

import (
	"context"
	"net/http"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/slack"
)

// setupSlack wires the Slack adapter when SLACK_SIGNING_SECRET or
// SLACK_APP_TOKEN is set; nil otherwise. The signing secret turns on
// POST /slack/commands; the app-level token turns on Socket Mode (no public
// URL needed). SLACK_BOT_TOKEN, when set, lets answers whose response_url
// failed reach the student through chat.postEphemeral.
func setupSlack(_ context.Context, a *app) (*platform, error) {
	if a.cfg.SlackSigningSecret == "" && a.cfg.SlackAppToken == "" {
		return nil, nil
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
	})
	if err != nil {
		return nil, err
	}
	p := &platform{name: "slack"}
	if r, ok := any(ad).(bot.Reopener); ok {
		p.reopener = r
	}
	if a.cfg.SlackSigningSecret != "" {
		p.routes = map[string]http.Handler{"POST /slack/commands": ad.Handler()}
	}
	if a.cfg.SlackAppToken != "" {
		p.run = ad.Run
	}
	return p, nil
}

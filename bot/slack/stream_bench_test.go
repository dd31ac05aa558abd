package slack_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/classbot/classbot/agent"
	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/slack"
	"github.com/classbot/classbot/bot/slack/slacktest"
	"github.com/classbot/classbot/internal/llmstub"
	"github.com/classbot/classbot/store"
)

// BenchmarkSlackStreamFirstText measures, per app_mention, the time from
// the model stand-in's first streamed chunk to Slack's stand-in receiving
// the first chat.startStream or chat.appendStream call that shows it,
// through the signed Events API route (POST /slack/events), the real
// runner (go-openai's stream), Dispatcher, adapter and slack-go. The model
// waits ttft before its first chunk, then writes one chunk every 50 ms;
// each mention is in a channel of its own and waits for its stream to stop
// with the whole answer before the next one.
func BenchmarkSlackStreamFirstText(b *testing.B) {
	const (
		ttft   = 500 * time.Millisecond
		answer = "The exam is on the third of May in room 101."
	)
	model := llmstub.NewStream(answer, ttft, 50*time.Millisecond)
	b.Cleanup(model.Close)
	runner := agent.NewRunner(agent.Config{BaseURL: model.URL + "/v1", APIKey: "k", Model: "m"})
	api, events := benchSetup(b, runner)
	first := strings.Fields(answer)[0]
	var total time.Duration
	n := 0
	for ; b.Loop(); n++ {
		ch := fmt.Sprintf("C0BENCH%06d", n)
		ev, err := slacktest.EventCallback(team, fmt.Sprintf("Ev0BENCH%06d", n), map[string]any{
			"type": "app_mention", "user": asker, "text": "<@U0BOT0000> when is the exam?",
			"ts": threadTS, "channel": ch, "event_ts": threadTS,
		})
		if err != nil {
			b.Fatal(err)
		}
		req, err := slacktest.NewEventRequest(b.Context(), events, secret, time.Now(), ev, 0)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := (&http.Client{Timeout: wait}).Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("event = %d, want 200", resp.StatusCode)
		}
		if _, err := api.WaitCall(wait, func(c slacktest.Call) bool {
			return (c.Path == "api/chat.startStream" || c.Path == "api/chat.appendStream") &&
				c.Form.Get("channel") == ch && strings.Contains(c.Form.Get("markdown_text"), first)
		}); err != nil {
			b.Fatalf("no streamed text in %s: %v", ch, err)
		}
		total += time.Since(model.FirstChunk())
		if err := api.Wait(wait, func() bool {
			m := api.Streamed(ch)
			return len(m) == 1 && m[0].Stopped && m[0].Text == slack.Escape(answer)
		}); err != nil {
			b.Fatalf("the stream in %s did not stop with the whole answer: %+v: %v", ch, api.Streamed(ch), err)
		}
	}
	if got := model.Calls(); got != int64(n) {
		b.Fatalf("%d model calls for %d mentions, want one each", got, n)
	}
	b.ReportMetric(float64(total.Microseconds())/float64(n)/1000, "ms-chunk-to-first-text")
}

// benchSetup serves a Slack adapter's EventsHandler at POST /slack/events,
// as cmd/classbot routes it, over the agent a and the in-memory store,
// with the Slack Web API at a stand-in; it returns the stand-in and the
// route's URL. The Dispatcher is asynchronous, without a per-student ask
// limit (one student asks every time), and drained at cleanup.
func benchSetup(b *testing.B, a bot.Agent) (*slacktest.Server, string) {
	b.Helper()
	api := slacktest.New()
	b.Cleanup(api.Close)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	disp := bot.NewDispatcher(b.Context(), bot.New(store.NewMemory(), a, bot.Options{Logger: log}),
		bot.Config{Mode: bot.ModeAsync, Logger: log, StudentAskRate: -1})
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(b.Context()), wait)
		defer cancel()
		if err := disp.Shutdown(ctx); err != nil {
			b.Errorf("dispatcher shutdown: %v", err)
		}
	})
	ad, err := slack.New(slack.Config{SigningSecret: secret, BotToken: botToken, APIURL: api.APIURL, Dispatcher: disp, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /slack/events", ad.EventsHandler())
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	return api, srv.URL + "/slack/events"
}

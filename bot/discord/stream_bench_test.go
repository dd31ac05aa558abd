package discord_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/classbot/classbot/agent"
	"github.com/classbot/classbot/bot/discord/discordtest"
)

// BenchmarkStreamFirstEdit measures, per /ask, the time from the model
// stand-in's first streamed chunk to Discord's stand-in receiving the
// first edit that shows it, through the real runner (go-openai's stream),
// Dispatcher, adapter and discordgo. The model waits ttft before its first
// chunk, then writes one chunk every 50 ms.
func BenchmarkStreamFirstEdit(b *testing.B) {
	const ttft = 500 * time.Millisecond
	var firstChunk atomic.Int64 // unix nanos of the latest first chunk
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		time.Sleep(ttft) // the model's time to first token: what is measured comes after it
		for i, word := range strings.Fields("The exam is on the third of May in room 101.") {
			if i == 0 {
				firstChunk.Store(time.Now().UnixNano())
			}
			c, _ := json.Marshal(map[string]any{"object": "chat.completion.chunk",
				"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": word + " "}}}})
			fmt.Fprintf(w, "data: %s\n\n", c)
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond)
		}
		fmt.Fprint(w, "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
	}))
	b.Cleanup(model.Close)
	runner := agent.NewRunner(agent.Config{BaseURL: model.URL + "/v1", APIKey: "k", Model: "m"})
	f := streamSetup(b, runner, 0)
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("14%017d", i)
		token := "token-" + id
		if st := f.ask(b, id, "when is the exam?"); st != http.StatusOK {
			b.Fatalf("status %d", st)
		}
		if _, err := f.discord.WaitRequest(10*time.Second, func(r discordtest.Request) bool {
			return isEdit(token)(r) && strings.Contains(string(r.Body), "The")
		}); err != nil {
			b.Fatal(err)
		}
		total += time.Since(time.Unix(0, firstChunk.Load()))
		if err := f.discord.Wait(10*time.Second, func() bool {
			for _, r := range f.discord.Requests() {
				if isEdit(token)(r) && strings.Contains(string(r.Body), "101.") {
					return true
				}
			}
			return false
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms-chunk-to-edit")
}

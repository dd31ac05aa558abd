package discord_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/classbot/classbot/agent"
	"github.com/classbot/classbot/bot/discord/discordtest"
	"github.com/classbot/classbot/internal/llmstub"
)

// BenchmarkStreamFirstEdit measures, per /ask, the time from the model
// stand-in's first streamed chunk to Discord's stand-in receiving the
// first edit that shows it, through the real runner (go-openai's stream),
// Dispatcher, adapter and discordgo. The model waits ttft before its first
// chunk, then writes one chunk every 50 ms.
func BenchmarkStreamFirstEdit(b *testing.B) {
	const ttft = 500 * time.Millisecond
	model := llmstub.NewStream("The exam is on the third of May in room 101.", ttft, 50*time.Millisecond)
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
		total += time.Since(model.FirstChunk())
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

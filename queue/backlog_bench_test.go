package queue_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/classbot/classbot/agent"
	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/internal/llmstub"
	"github.com/classbot/classbot/queue"
	"github.com/classbot/classbot/store"
)

// Backlog's load: issue 16's target, 640 /ask at once with a 1.5 s model
// and the default limits (LLM_MAX_CONCURRENCY 16; QUEUE_WORKERS twice it).
const (
	backlogCommands = 640
	backlogLatency  = 1500 * time.Millisecond
	backlogSlots    = 16
)

// countingAgent counts the agent runs.
type countingAgent struct {
	bot.Agent
	runs atomic.Int64
}

func (c *countingAgent) Run(ctx context.Context, a agent.Agent, input string) (agent.Result, error) {
	c.runs.Add(1)
	return c.Agent.Run(ctx, a, input)
}

func newBacklogAgent(b *testing.B) (*countingAgent, *llmstub.Server) {
	stub := llmstub.New(backlogLatency)
	srv := httptest.NewServer(stub)
	b.Cleanup(func() { stub.Close(); srv.Close() })
	runner := agent.NewRunner(agent.Config{BaseURL: srv.URL + "/v1", MaxConcurrency: backlogSlots,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	return &countingAgent{Agent: runner}, stub
}

// followUps is an async-mode Responder that counts its follow-ups.
type followUps struct {
	n    *atomic.Int64
	done chan<- struct{}
}

func (f followUps) Ack(context.Context, bot.Reply) error     { return nil }
func (f followUps) Respond(context.Context, bot.Reply) error { return nil }
func (f followUps) FollowUp(context.Context, bot.Reply) error {
	f.n.Add(1)
	f.done <- struct{}{}
	return nil
}

// BenchmarkBacklog sends backlogCommands /ask at once in async mode and
// in queue mode and reports, for each, the agent runs, the model requests,
// the answers (posts) and the time to the last answer:
//
//	go test -run '^$' -bench Backlog -benchtime 1x ./queue
func BenchmarkBacklog(b *testing.B) {
	b.Run("async", func(b *testing.B) {
		for range b.N {
			ag, stub := newBacklogAgent(b)
			quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
			d := bot.NewDispatcher(context.Background(), bot.New(store.NewMemory(), ag, bot.Options{Logger: quiet}),
				bot.Config{Mode: bot.ModeAsync, Logger: quiet})
			var posts atomic.Int64
			done := make(chan struct{}, backlogCommands)
			start := time.Now()
			for i := range backlogCommands {
				c := ask(fmt.Sprintf("A%04d", i), fmt.Sprintf("U%04d", i), "What is due on Friday?")
				if err := d.Dispatch(context.Background(), c, followUps{&posts, done}); err != nil {
					b.Fatal(err)
				}
			}
			for range backlogCommands {
				<-done
			}
			report(b, time.Since(start), ag.runs.Load(), stub.Requests(), posts.Load())
			_ = d.Shutdown(context.Background())
		}
	})
	b.Run("queue", func(b *testing.B) {
		for range b.N {
			dbURL := newDB(b)
			ag, stub := newBacklogAgent(b)
			bd := newBoard()
			web := startReplica(b, dbURL, ag, bd, queue.Config{Workers: -1})
			startReplica(b, dbURL, ag, bd, queue.Config{Workers: queue.WorkersFor(backlogSlots)})
			ids := make([]string, backlogCommands)
			start := time.Now()
			var wg sync.WaitGroup
			for i := range backlogCommands {
				ids[i] = fmt.Sprintf("Q%04d", i)
				wg.Go(func() {
					req := &request{id: ids[i], dbURL: dbURL}
					if err := web.disp.Dispatch(context.Background(), ask(ids[i], "U"+ids[i], "What is due on Friday?"), req); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
			want := make(map[string]bool, len(ids))
			for _, id := range ids {
				want[id] = true
			}
			deadline := time.After(10 * time.Minute)
			for len(want) > 0 {
				select {
				case id := <-bd.done:
					delete(want, id)
				case <-deadline:
					b.Fatalf("%d commands unanswered", len(want))
				}
			}
			took := time.Since(start)
			bd.mu.Lock()
			posts, twice := 0, 0
			for _, n := range bd.posts {
				posts += n
				if n > 1 {
					twice++
				}
			}
			bd.mu.Unlock()
			report(b, took, ag.runs.Load(), stub.Requests(), int64(posts))
			b.ReportMetric(float64(twice), "posted-twice")
		}
	})
}

func report(b *testing.B, took time.Duration, runs, requests, posts int64) {
	b.ReportMetric(took.Seconds(), "s-to-last-answer")
	b.ReportMetric(float64(runs), "agent-runs")
	b.ReportMetric(float64(requests), "model-requests")
	b.ReportMetric(float64(posts), "posts")
	b.Logf("%d commands: %d agent runs, %d model requests, %d posts, last answer after %s", backlogCommands, runs, requests, posts, took.Round(100*time.Millisecond))
}

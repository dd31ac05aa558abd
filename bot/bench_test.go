package bot_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/store"
)

// doneResponder signals when the command's final answer has gone out.
type doneResponder struct{ done chan struct{} }

func (r *doneResponder) Ack(context.Context, bot.Reply) error     { return nil }
func (r *doneResponder) Respond(context.Context, bot.Reply) error { r.done <- struct{}{}; return nil }
func (r *doneResponder) FollowUp(context.Context, bot.Reply) error {
	r.done <- struct{}{}
	return nil
}

// BenchmarkDispatchRegisterAsync is the bot's own work for one /register
// in async mode, from Dispatch to the follow-up: the ledger, validation,
// the goroutine, the store write and the (instant) agent concurrently, the
// reply and the log line. Memory store, a fake agent that answers at once,
// a logger that writes to io.Discard (formatting still happens).
func BenchmarkDispatchRegisterAsync(b *testing.B) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bt := bot.New(store.NewMemory(), &fakeAgent{}, bot.Options{CourseInstructions: "Course: Go 101.", Logger: log})
	disp := bot.NewDispatcher(b.Context(), bt, bot.Config{Mode: bot.ModeAsync, Logger: log})
	b.Cleanup(func() { _ = disp.Shutdown(context.Background()) })
	r := &doneResponder{done: make(chan struct{}, 1)}
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		c := bot.Command{Platform: bot.PlatformSlack, InteractionID: fmt.Sprintf("bench-%d", n), Workspace: "T1",
			Channel: "C1", User: fmt.Sprintf("U%d", n), Name: "register", Text: "Ada Lovelace ada@example.com"}
		if err := disp.Dispatch(ctx, c, r); err != nil {
			b.Fatal(err)
		}
		<-r.done
	}
}

// BenchmarkDispatchRegisterAsyncParallel is the same from many goroutines,
// as under load.
func BenchmarkDispatchRegisterAsyncParallel(b *testing.B) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bt := bot.New(store.NewMemory(), &fakeAgent{}, bot.Options{CourseInstructions: "Course: Go 101.", Logger: log})
	disp := bot.NewDispatcher(b.Context(), bt, bot.Config{Mode: bot.ModeAsync, Logger: log, MaxInFlight: 1 << 16})
	b.Cleanup(func() { _ = disp.Shutdown(context.Background()) })
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := &doneResponder{done: make(chan struct{}, 1)}
		for pb.Next() {
			n := nextID.Add(1)
			c := bot.Command{Platform: bot.PlatformSlack, InteractionID: fmt.Sprintf("bench-p-%d", n), Workspace: "T1",
				Channel: "C1", User: fmt.Sprintf("U%d", n), Name: "register", Text: "Ada Lovelace ada@example.com"}
			if err := disp.Dispatch(ctx, c, r); err != nil {
				b.Fatal(err)
			}
			<-r.done
		}
	})
}

func BenchmarkValidateEmail(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bot.ValidateEmail("Ada.Lovelace@Example.com"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseRegisterText(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := bot.ParseRegisterText("Ada King Lovelace ada@example.com"); err != nil {
			b.Fatal(err)
		}
	}
}

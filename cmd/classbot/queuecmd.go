package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/classbot/classbot/queue"
	"github.com/classbot/classbot/store"
)

// runQueue is "classbot queue": queue mode's state, read from the
// database, for a shell (the same figures /metrics has, for every replica
// at once).
func runQueue(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "queue", "[--since DURATION]")
	since := fs.Duration("since", time.Hour, "window of finished jobs to summarise (River keeps completed jobs an hour)")
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("queue takes no arguments, got %q", fs.Args())
	}
	if *since <= 0 {
		return usagef("--since must be positive")
	}
	cfg, err := loadConfig(e.getenv)
	if err != nil {
		return err
	}
	if cfg.DatabaseURL == "" {
		return errors.New("DATABASE_URL is not set: queue mode's jobs live in PostgreSQL")
	}
	pg, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pg.Close()
	if _, _, err := queue.Migrate(ctx, pg.Pool()); err != nil {
		return err
	}
	d, err := queue.ReadDepth(ctx, pg.Pool())
	if err != nil {
		return err
	}
	r, err := queue.ReadRecent(ctx, pg.Pool(), *since)
	if err != nil {
		return err
	}
	w := e.stdout
	fmt.Fprintf(w, "now:      %d waiting for a worker (oldest %s), %d running, %d to retry, %d scheduled\n",
		d.Available, d.OldestAvailable.Round(time.Millisecond), d.Running, d.Retryable, d.Scheduled)
	fmt.Fprintf(w, "last %s: %d answered, %d gave up (attempts exhausted)\n", *since, r.Completed, r.Discarded)
	fmt.Fprintf(w, "latency:  enqueued→started p50 %s p99 %s; enqueued→done p50 %s p99 %s\n",
		r.WaitP50.Round(time.Millisecond), r.WaitP99.Round(time.Millisecond), r.TotalP50.Round(time.Millisecond), r.TotalP99.Round(time.Millisecond))
	fmt.Fprintf(w, "attempts: %d jobs needed more than one (at most %d), %d after a rescue (a crashed worker)\n", r.Retried, r.MaxAttempt, r.Rescued)
	fmt.Fprintf(w, "expired:  %d commands answered too late for the platform, with no bot token to carry the answer\n", r.Expired)
	return nil
}

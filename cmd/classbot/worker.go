package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/classbot/classbot/bot"
)

// startQueue starts queue mode's workers (none in the other modes, or with
// QUEUE_WORKERS=0): they answer through the platforms' Reopeners.
func (a *app) startQueue(ctx context.Context, platforms []platform) error {
	if a.queue == nil {
		return nil
	}
	reopen := reopeners(platforms)
	if len(reopen) == 0 && a.cfg.QueueWorkers > 0 {
		a.log.Warn(noPlatformText)
	}
	if a.cfg.QueueWorkers > 0 {
		served := slices.Sorted(maps.Keys(reopen))
		a.metrics.servedPlatforms.Store(&served)
	}
	return a.queue.Start(ctx, a.disp, reopen)
}

// noPlatformText is what a worker with no platform says at start and in
// /readyz.
const noPlatformText = "no platform is configured (no Slack or Discord secrets): this process answers no jobs; " +
	"each platform's jobs wait in its own queue for a process that has the platform's secrets"

// stopQueue stops the workers: the jobs still running after ctx are
// cancelled and tried again later, here or on another replica.
func (a *app) stopQueue(ctx context.Context) error {
	if a.queue == nil {
		return nil
	}
	if err := a.queue.Stop(ctx); err != nil {
		return fmt.Errorf("queue workers: %w", err)
	}
	return nil
}

func runWorker(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "worker", "[--workers N] [--metrics-addr HOST:PORT]")
	workers := fs.Int("workers", 0, "jobs run at once (default: QUEUE_WORKERS, else twice LLM_MAX_CONCURRENCY)")
	metricsAddr := fs.String("metrics-addr", "", "listen address of /metrics (default: METRICS_ADDR, else 127.0.0.1:9090)")
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("worker takes no arguments, got %q", fs.Args())
	}
	cfg, err := loadConfig(e.getenv)
	if err != nil {
		return err
	}
	if *workers < 0 {
		return usagef("--workers must be positive")
	}
	if *workers > 0 {
		cfg.QueueWorkers = *workers
	}
	if cfg.QueueWorkers == 0 {
		return usagef("a worker with QUEUE_WORKERS=0 would do nothing: set it above 0 (or leave it unset)")
	}
	if *metricsAddr != "" {
		cfg.MetricsAddr = *metricsAddr
	}
	cfg.Mode = bot.ModeQueue
	return work(ctx, cfg, e)
}

// work runs queue workers and nothing else (no webhooks, no Socket Mode or
// gateway connection), until ctx is done: a deployment scales these apart
// from the processes that take the platforms' requests.
func work(ctx context.Context, cfg Config, e env) error {
	a, err := newApp(ctx, cfg, e, appOptions{logLevel: slog.LevelInfo})
	if err != nil {
		return err
	}
	defer a.close()
	platforms, err := setupPlatforms(ctx, a)
	if err != nil {
		return err
	}
	mln, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("listen on METRICS_ADDR %s: %w", cfg.MetricsAddr, err)
	}
	msrv := workerServer(a, platforms)
	if err := a.startQueue(ctx, platforms); err != nil {
		mln.Close()
		return err
	}
	names := make([]string, 0, len(platforms))
	for name := range reopeners(platforms) {
		names = append(names, name)
	}
	fmt.Fprintf(e.stdout, "classbot worker running (%s answers=%v)\n", a.describe(), names)
	if len(names) == 0 {
		fmt.Fprintf(e.stdout, "classbot worker: %s\n", noPlatformText)
	}
	fmt.Fprintf(e.stdout, "classbot metrics on http://%s/metrics (and /readyz)\n", mln.Addr())

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveUntilShutdown(msrv, mln, "metrics server") })
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		defer cancel()
		a.log.Info("worker shutting down: finishing the jobs in flight", "timeout", cfg.ShutdownTimeout)
		err := a.stopQueue(sctx)
		if merr := msrv.Shutdown(sctx); merr != nil {
			err = errors.Join(err, merr)
		}
		if err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
		a.log.Info("worker shut down cleanly")
		return nil
	})
	return g.Wait()
}

// workerServer is a worker's one listener (METRICS_ADDR): /metrics and the
// profiler, as serve has them, and /healthz and /readyz, whose detail says
// when the worker has no platform to answer through.
func workerServer(a *app, platforms []platform) *http.Server {
	srv := metricsServer(a)
	status := platforms
	if len(reopeners(platforms)) == 0 {
		status = append(slices.Clone(platforms), platform{name: "queue", status: func() string { return noPlatformText }})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", handleHealthz)
	mux.Handle("GET /readyz", handleReadyz(a, status))
	mux.Handle("/", srv.Handler)
	srv.Handler = mux
	return srv
}

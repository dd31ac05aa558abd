package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/classbot/classbot/bot"
)

func runServe(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "serve", "[--mode sync|async|queue] [--addr HOST:PORT] [--metrics-addr HOST:PORT]")
	mode := fs.String("mode", "", "sync, async, queue or auto (default: HANDLER_MODE, else async)")
	addr := fs.String("addr", "", "HTTP listen address (default: HTTP_ADDR, else :8080)")
	metricsAddr := fs.String("metrics-addr", "", "listen address of /metrics (default: METRICS_ADDR, else 127.0.0.1:9090)")
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("serve takes no arguments, got %q", fs.Args())
	}
	cfg, err := loadConfig(e.getenv)
	if err != nil {
		return err
	}
	if *mode != "" {
		if cfg.Mode, err = bot.ParseMode(*mode); err != nil {
			return usagef("--mode: %v", err)
		}
	}
	if *addr != "" {
		cfg.HTTPAddr = *addr
	}
	if *metricsAddr != "" {
		cfg.MetricsAddr = *metricsAddr
	}
	return serve(ctx, cfg, e)
}

// serve runs classbot until ctx is done, then shuts down in order: stop
// taking events (HTTP and platform connections), drain the work in flight
// up to SHUTDOWN_TIMEOUT, close the store.
func serve(ctx context.Context, cfg Config, e env) error {
	a, err := newApp(ctx, cfg, e, appOptions{logLevel: slog.LevelInfo})
	if err != nil {
		return err
	}
	defer a.close()

	platforms, err := setupPlatforms(ctx, a)
	if err != nil {
		return err
	}
	if err := a.startQueue(ctx, platforms); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	// /metrics has its own listener, by default on loopback only: the
	// webhook listener faces the internet, and metrics are for operators.
	mln, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listen on METRICS_ADDR %s: %w", cfg.MetricsAddr, err)
	}
	msrv := metricsServer(a)
	srv := &http.Server{
		Handler:           newServer(a, platforms),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      3 * time.Minute, // sync mode answers inside the request
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	names := make([]string, 0, len(platforms))
	for _, p := range platforms {
		names = append(names, p.name)
	}
	fmt.Fprintf(e.stdout, "classbot listening on http://%s (%s platforms=%v)\n", ln.Addr(), a.describe(), names)
	fmt.Fprintf(e.stdout, "classbot metrics on http://%s/metrics\n", mln.Addr())
	if len(platforms) == 0 {
		a.log.Warn("no platform is configured: set SLACK_SIGNING_SECRET, SLACK_APP_TOKEN, DISCORD_PUBLIC_KEY or DISCORD_BOT_TOKEN")
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveUntilShutdown(srv, ln, "http server") })
	g.Go(func() error { return serveUntilShutdown(msrv, mln, "metrics server") })
	for _, p := range platforms {
		if p.run != nil {
			g.Go(func() error { return p.run(gctx) })
		}
	}
	g.Go(func() error { purgeLedger(gctx, a); return nil })
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		defer cancel()
		a.log.Info("shutting down: no new commands; draining work in flight", "timeout", cfg.ShutdownTimeout, "in_flight", a.disp.InFlight())
		// Stop taking events, then drain: one deadline, SHUTDOWN_TIMEOUT,
		// for everything the Dispatcher owns (the adapters own no work).
		err := srv.Shutdown(sctx)
		if derr := a.disp.Shutdown(sctx); derr != nil {
			err = errors.Join(err, derr)
		}
		if qerr := a.stopQueue(sctx); qerr != nil {
			err = errors.Join(err, qerr)
		}
		if merr := msrv.Shutdown(sctx); merr != nil {
			err = errors.Join(err, merr)
		}
		if err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
		a.log.Info("shut down cleanly")
		return nil
	})
	return g.Wait()
}

// serveUntilShutdown serves srv on ln until srv.Shutdown, which is not an
// error; anything else ends the process.
func serveUntilShutdown(srv *http.Server, ln net.Listener, what string) error {
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// metricsServer serves /metrics and Go's profiler on METRICS_ADDR, for
// operators only: that listener is loopback by default.
func metricsServer(a *app) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metrics.handler())
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      2 * time.Minute, // a CPU profile takes 30 s by default
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
}

// purgeInterval is how often serve deletes ledger rows older than
// INTERACTIONS_RETENTION.
const purgeInterval = time.Hour

// purgeLedger deletes old ledger rows at start and then every
// purgeInterval until ctx is done. The store deletes in small chunks, so the
// hot path never waits behind it; a failure is logged and retried next time.
func purgeLedger(ctx context.Context, a *app) {
	t := time.NewTicker(purgeInterval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		n, err := a.store.PurgeInteractions(pctx, time.Now().Add(-a.cfg.InteractionsRetention))
		cancel()
		a.metrics.purged.Add(float64(n))
		switch {
		case err != nil && ctx.Err() == nil:
			a.log.Warn("ledger purge failed; retrying in an hour", "err", err, "deleted", n)
		case n > 0:
			a.log.Info("ledger purged", "deleted", n, "retention", a.cfg.InteractionsRetention)
		}
		purgeAskMemory(ctx, a) // expired /ask memory, on the same schedule (course.go)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// setupPlatforms starts the adapters the configuration turns on.
func setupPlatforms(ctx context.Context, a *app) ([]platform, error) {
	var out []platform
	for _, setup := range []func(context.Context, *app) (*platform, error){setupSlack, setupDiscord} {
		p, err := setup(ctx, a)
		if err != nil {
			return nil, err
		}
		if p != nil {
			out = append(out, *p)
		}
	}
	return out, nil
}

package main

import (
	"context"
	"net/http"
	"time"
)

// platform is one adapter as serve runs it.
type platform struct {
	name string
	// routes are the adapter's HTTP endpoints, by ServeMux pattern
	// ("POST /slack/commands").
	routes map[string]http.Handler
	// run keeps a long-lived connection (Socket Mode, the Discord gateway)
	// until ctx is done; nil if the adapter has none. An error ends serve.
	run func(ctx context.Context) error
}

// newServer is classbot's whole HTTP surface.
func newServer(a *app, platforms []platform) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", handleHealthz)
	mux.Handle("GET /readyz", handleReadyz(a))
	mux.Handle("GET /metrics", a.metrics.handler())
	for _, p := range platforms {
		for pattern, h := range p.routes {
			mux.Handle(pattern, h)
		}
	}
	return mux
}

// handleHealthz says the process is up.
func handleHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// handleReadyz says whether the database answers.
func handleReadyz(a *app) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := a.store.Ping(ctx); err != nil {
			a.log.WarnContext(ctx, "readyz: database unreachable", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("database unreachable\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
}

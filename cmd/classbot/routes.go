package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/classbot/classbot/bot"
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
	// status, if set, is one line for /readyz about something the adapter
	// is still retrying (empty when all is well). It never fails readiness.
	status func() string
	// reopener answers queue mode's jobs of this platform.
	reopener bot.Reopener
}

// reopeners are the platforms' Reopeners, for queue mode's workers.
func reopeners(platforms []platform) map[string]bot.Reopener {
	m := make(map[string]bot.Reopener, len(platforms))
	for _, p := range platforms {
		if p.reopener != nil {
			m[p.name] = p.reopener
		}
	}
	return m
}

// newServer is classbot's whole HTTP surface.
func newServer(a *app, platforms []platform) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", handleHealthz)
	mux.Handle("GET /readyz", handleReadyz(a, platforms))
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

// readyTTL is how long /readyz reuses one database ping: a load balancer
// or a probe polling it often must not take a pool connection each time.
const readyTTL = time.Second

// readiness caches the database's health for readyTTL. Safe for
// concurrent use: one caller pings, the others wait for its result.
type readiness struct {
	ping func(context.Context) error

	mu      sync.Mutex
	checked time.Time
	err     error
}

func (r *readiness) check(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.checked.IsZero() && time.Since(r.checked) < readyTTL {
		return r.err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r.err = r.ping(ctx)
	r.checked = time.Now()
	return r.err
}

// handleReadyz says whether the database answers (503 while it does not),
// with one line of detail per platform that has something to report (the
// Discord commands' registration).
func handleReadyz(a *app, platforms []platform) http.Handler {
	rd := &readiness{ping: a.store.Ping}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		var detail strings.Builder
		for _, p := range platforms {
			if p.status != nil {
				if line := p.status(); line != "" {
					fmt.Fprintf(&detail, "%s: %s\n", p.name, line)
				}
			}
		}
		if err := rd.check(r.Context()); err != nil {
			a.log.WarnContext(r.Context(), "readyz: database unreachable", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "database unreachable\n"+detail.String())
			return
		}
		_, _ = io.WriteString(w, "ready\n"+detail.String())
	})
}

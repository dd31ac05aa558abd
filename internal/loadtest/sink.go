package loadtest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/classbot/classbot/internal/llmstub"
)

// tracker matches follow-ups at the sink to the commands that were sent.
// It counts posts per command, so that "delivered exactly once" means what
// it says: every command got at least one post (delivered) and no command
// got more than one (duplicates). In queue mode a follow-up is an
// idempotent replacement (Slack: a response_url post with
// replace_original; Discord: a PATCH of @original), so a second post is
// invisible to the student but still a repeated delivery: a retried or
// rescued job, worth counting. It is safe for concurrent use.
type tracker struct {
	mu         sync.Mutex
	sent       map[uint64]*pending // commands sent, by seq
	followLat  []time.Duration     // due → first post, one per delivered command
	delivered  int                 // commands with at least one post
	duplicates int                 // commands with more than one post
	extra      int                 // posts beyond each command's first
	unknown    int                 // follow-ups for no command we sent
	// afterRefusal counts the commands answered "busy"/"sorry" at once (no
	// work, try again) that got a follow-up all the same: the refusal was
	// wrong, and a student who tried again is answered twice.
	afterRefusal int
	// places counts the place-in-line edits of acknowledgements (not
	// answers), and placeLat the time from sending to the first one.
	places    int
	placeLat  []time.Duration
	placeSeen map[uint64]bool
	last      time.Time     // the last first post
	changed   chan struct{} // closed and replaced on every delivery
}

// pending is one sent command: when it was due, how many follow-ups
// reached the sink for it, and whether it was refused at once.
type pending struct {
	at      time.Time
	posts   int
	refused bool
}

func newTracker() *tracker {
	return &tracker{sent: make(map[uint64]*pending, 1<<14), changed: make(chan struct{})}
}

func (t *tracker) add(seq uint64, at time.Time) {
	t.mu.Lock()
	t.sent[seq] = &pending{at: at}
	t.mu.Unlock()
}

// forget drops a command that will get no follow-up. A post that arrives
// for it afterwards counts as unknown.
func (t *tracker) forget(seq uint64) {
	t.mu.Lock()
	delete(t.sent, seq)
	t.mu.Unlock()
}

// refuse marks a command answered "busy"/"sorry" at once: it expects no
// follow-up, and one that comes anyway is counted (afterRefusal).
func (t *tracker) refuse(seq uint64) {
	t.mu.Lock()
	if p, ok := t.sent[seq]; ok {
		p.refused = true
	}
	t.mu.Unlock()
}

// deliver records one follow-up post for command seq, arriving at now.
func (t *tracker) deliver(seq uint64, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.sent[seq]
	if !ok {
		t.unknown++
		return
	}
	p.posts++
	if p.refused {
		if p.posts == 1 {
			t.afterRefusal++
		}
		return
	}
	switch {
	case p.posts == 2:
		t.duplicates++
		t.extra++
		return
	case p.posts > 2:
		t.extra++
		return
	}
	t.followLat = append(t.followLat, now.Sub(p.at))
	t.delivered++
	t.last = now
	close(t.changed)
	t.changed = make(chan struct{})
}

// place records a place-in-line edit of command seq's acknowledgement.
func (t *tracker) place(seq uint64, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.sent[seq]
	if !ok {
		return
	}
	t.places++
	if t.placeSeen == nil {
		t.placeSeen = map[uint64]bool{}
	}
	if !t.placeSeen[seq] {
		t.placeSeen[seq] = true
		t.placeLat = append(t.placeLat, now.Sub(p.at))
	}
}

func (t *tracker) deliveredCount() (int, chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.delivered, t.changed
}

// placeMarker is in the bot's place-in-line edits of an acknowledgement.
var placeMarker = []byte("in line for the assistant")

// sink stands in for the platforms' side of follow-ups: Slack's
// response_url (POST /slack/commands/TEAM/SEQ/X) and Discord's webhook REST
// API under /api/v10/ (PATCH webhooks/APP/TOKEN/messages/@original, POST
// webhooks/APP/TOKEN for extra messages), plus {"ok":true} for any Slack
// Web API call under /slack/api/.
type sink struct {
	t   *tracker
	srv *http.Server
	url string
}

func startSink(addr string, t *tracker) (*sink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &sink{t: t, url: "http://" + ln.Addr().String()}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *sink) close() { closeServer(s.srv) }

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	deliver := s.t.deliver
	if bytes.Contains(body, placeMarker) {
		deliver = s.t.place // an edit of the acknowledgement, not the answer
	}
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/slack/commands/"):
		parts := strings.Split(strings.TrimPrefix(p, "/slack/commands/"), "/")
		if len(parts) >= 2 {
			if seq, err := strconv.ParseUint(parts[1], 10, 64); err == nil {
				deliver(seq, now)
			}
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok"))
	case strings.HasPrefix(p, "/slack/api/"):
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	case strings.HasPrefix(p, "/api/"):
		// /api/vN/webhooks/APP/TOKEN[/messages/@original]
		parts := strings.Split(strings.Trim(p, "/"), "/")
		if len(parts) >= 5 && parts[2] == "webhooks" {
			if seq, ok := seqFromDiscordToken(parts[4]); ok {
				deliver(seq, now)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"1400000000000000001","channel_id":"1100000000000000001","type":0,"content":"","flags":64}`))
	default:
		http.NotFound(w, r)
	}
}

// modelServer serves the model stand-in (internal/llmstub) with the run's
// latency.
type modelServer struct {
	stub *llmstub.Server
	srv  *http.Server
	url  string // base, http://127.0.0.1:PORT/v1
}

func startModel(addr string, l *Latency) (*modelServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	stub := &llmstub.Server{LatencyFunc: l.Sample}
	m := &modelServer{stub: stub, url: "http://" + ln.Addr().String() + "/v1"}
	m.srv = &http.Server{Handler: stub, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { _ = m.srv.Serve(ln) }()
	return m, nil
}

func (m *modelServer) close() {
	m.stub.Close() // wakes sleeping requests
	closeServer(m.srv)
}

func closeServer(srv *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		_ = srv.Close()
	}
}

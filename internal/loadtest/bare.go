package loadtest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// BareHandler is the reference the bot's CPU cost is compared with: a plain
// net/http handler for POST /slack/commands that does only what no Slack
// bot can skip. It verifies the signature (HMAC-SHA256 and a timestamp
// within 5 minutes; 401 otherwise), parses the form, answers 200 with an
// ephemeral acknowledgement, and posts one follow-up to the response_url
// (loopback only) from a goroutine, at most maxFollowUps at once. No store,
// no model, no logging. Stop it by cancelling ctx and waiting for Wait.
type BareHandler struct {
	secret []byte
	client *http.Client
	slots  chan struct{}
	ctx    context.Context
	wg     sync.WaitGroup
}

// NewBareHandler returns the reference handler for signing secret.
func NewBareHandler(ctx context.Context, secret string, maxFollowUps int) *BareHandler {
	return &BareHandler{
		secret: []byte(secret),
		client: newClient(256, 15*time.Second),
		slots:  make(chan struct{}, maxFollowUps),
		ctx:    ctx,
	}
}

// Wait waits for the follow-ups in flight.
func (h *BareHandler) Wait() { h.wg.Wait() }

var bareAck = []byte(`{"response_type":"ephemeral","text":"Registering you…"}`)

func (h *BareHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/slack/commands" {
		if r.URL.Path == "/healthz" {
			_, _ = w.Write([]byte("ok\n"))
			return
		}
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	ts := r.Header.Get("X-Slack-Request-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute ||
		!hmac.Equal([]byte(SlackSignature(string(h.secret), ts, body)), []byte(r.Header.Get("X-Slack-Signature"))) {
		http.Error(w, "invalid request signature", http.StatusUnauthorized)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	target := form.Get("response_url")
	if u, err := url.Parse(target); err != nil || u.Scheme != "http" || !loopbackHostPort(u.Host) {
		http.Error(w, "response_url must be on 127.0.0.1", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(bareAck)

	h.slots <- struct{}{}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer func() { <-h.slots }()
		msg := fmt.Sprintf(`{"response_type":"ephemeral","replace_original":true,"text":%q}`, "You're registered, "+form.Get("user_name")+".")
		ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader([]byte(msg)))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := h.client.Do(req)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}()
}

// ServeBare runs the bare reference on addr until ctx is done. It writes
// "classbot listening on http://ADDR (bare reference)" to out once it
// listens, like classbot serve (a line for people: Child finds it by
// polling GET /healthz on the address it chose).
func ServeBare(ctx context.Context, addr, secret string, out io.Writer) error {
	if secret == "" {
		return errors.New("the bare reference needs SLACK_SIGNING_SECRET")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	h := NewBareHandler(ctx, secret, 10000)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	fmt.Fprintf(out, "classbot listening on http://%s (bare reference)\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	h.Wait()
	return err
}

package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// ErrUnavailable is wrapped by Run's error when a model call still failed
// after the last attempt the retry policy allowed (HTTP 429, 5xx, transport
// errors or attempt timeouts every time). The last underlying error is wrapped
// too.
var ErrUnavailable = errors.New("model unavailable")

// attemptKey is the context key of the *attempt a model call is recorded in.
type attemptKey struct{}

// attempt records what the transport saw during one model call attempt;
// go-openai hides response headers from its errors, so the transport reports
// them here through the request's context.
type attempt struct {
	mu         sync.Mutex
	sent       bool // the request reached the transport
	status     int  // HTTP status of the last response; 0 if none
	retryAfter string
}

func (a *attempt) record(resp *http.Response) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sent = true
	if resp != nil {
		a.status = resp.StatusCode
		a.retryAfter = resp.Header.Get("Retry-After")
	}
}

func (a *attempt) snapshot() (sent bool, status int, retryAfter string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sent, a.status, a.retryAfter
}

// retryAfterTransport records each response's status and Retry-After header
// in the *attempt found in the request's context, if any.
type retryAfterTransport struct{ base http.RoundTripper }

func (t retryAfterTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if a, ok := req.Context().Value(attemptKey{}).(*attempt); ok {
		a.record(resp)
	}
	return resp, err
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(24*time.Hour/time.Second) {
			secs = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// retryable reports whether an attempt that failed with err may be retried.
// ctx is the caller's context, attemptCtx the attempt's own.
func retryable(ctx, attemptCtx context.Context, err error, sent bool, status int) bool {
	if ctx.Err() != nil {
		return false // the caller gave up: never retry
	}
	if status == 0 {
		var apiErr *openai.APIError
		var reqErr *openai.RequestError
		switch {
		case errors.As(err, &apiErr):
			status = apiErr.HTTPStatusCode
		case errors.As(err, &reqErr):
			status = reqErr.HTTPStatusCode
		}
	}
	switch {
	case status == http.StatusTooManyRequests || status >= 500:
		return true
	case status >= 400:
		return false
	case attemptCtx.Err() != nil:
		return true // the attempt timed out
	default:
		// A transport error, or a broken 2xx body; an error raised before the
		// request was sent (bad URL, invalid request) would repeat itself.
		return sent
	}
}

// backoff returns the full-jitter wait before retry number n (1-based).
func backoff(base, ceiling time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	return time.Duration(rand.Int64N(int64(d) + 1))
}

// call makes one model call with retries. It returns the response, the number
// of retries made and an error that names the model. It holds a concurrency
// slot only while an attempt is in progress.
func (r *Runner) call(ctx context.Context, req openai.ChatCompletionRequest) (openai.ChatCompletionResponse, int, error) {
	var (
		waited  time.Duration
		lastErr error
		retries int
	)
	for n := 1; ; n++ {
		resp, rec, attemptErr, err := r.attempt(ctx, req)
		if err != nil {
			return resp, retries, fmt.Errorf("model %s: %w", req.Model, err)
		}
		if attemptErr == nil {
			return resp, retries, nil
		}
		lastErr = attemptErr
		if !rec.retryable {
			return resp, retries, fmt.Errorf("model %s: %w", req.Model, redact(lastErr, r.cfg.APIKey))
		}
		if n >= r.cfg.MaxAttempts {
			return resp, retries, fmt.Errorf("model %s: gave up after %d attempts: %w: %w",
				req.Model, n, ErrUnavailable, redact(lastErr, r.cfg.APIKey))
		}
		wait := backoff(r.cfg.RetryBaseDelay, r.cfg.RetryMaxDelay, n)
		if d, ok := parseRetryAfter(rec.retryAfter, time.Now()); ok {
			wait = d
		}
		deadline, hasDeadline := ctx.Deadline()
		if waited+wait > r.cfg.MaxRetryWait || (hasDeadline && time.Until(deadline) < wait) {
			return resp, retries, fmt.Errorf("model %s: gave up after %d attempts (next wait %s exceeds the retry budget): %w: %w",
				req.Model, n, wait.Round(time.Millisecond), ErrUnavailable, redact(lastErr, r.cfg.APIKey))
		}
		r.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "agent: model call failed, retrying",
			slog.String("model", req.Model),
			slog.Int("attempt", n),
			slog.Int("status", rec.status),
			slog.Duration("wait", wait),
		)
		retries++
		if r.cfg.OnRetry != nil {
			r.cfg.OnRetry()
		}
		waited += wait
		if err := sleep(ctx, wait); err != nil {
			return resp, retries, fmt.Errorf("model %s: waiting to retry after %d attempts: %w (last error: %w)",
				req.Model, n, err, redact(lastErr, r.cfg.APIKey))
		}
	}
}

// attemptRecord is what the retry loop learns from one attempt.
type attemptRecord struct {
	retryable  bool
	status     int
	retryAfter string
}

// attempt makes one attempt. err is the caller's cancellation (waiting for a
// slot or during the attempt): not retryable and not the model's fault.
// attemptErr is the model call's own failure.
func (r *Runner) attempt(ctx context.Context, req openai.ChatCompletionRequest) (resp openai.ChatCompletionResponse, rec attemptRecord, attemptErr, err error) {
	if err := r.sem.Acquire(ctx, 1); err != nil {
		return resp, rec, nil, fmt.Errorf("waiting for a model slot: %w", err)
	}
	defer r.sem.Release(1)

	a := &attempt{}
	attemptCtx, cancel := context.WithTimeout(context.WithValue(ctx, attemptKey{}, a), r.cfg.AttemptTimeout)
	defer cancel()
	resp, attemptErr = r.model.complete(attemptCtx, req)
	if attemptErr == nil {
		return resp, rec, nil, nil
	}
	if ctx.Err() != nil {
		if errors.Is(attemptErr, ctx.Err()) {
			return resp, rec, nil, redact(attemptErr, r.cfg.APIKey)
		}
		return resp, rec, nil, fmt.Errorf("%w: %w", ctx.Err(), redact(attemptErr, r.cfg.APIKey))
	}
	sent, status, retryAfter := a.snapshot()
	rec = attemptRecord{
		retryable:  retryable(ctx, attemptCtx, attemptErr, sent, status),
		status:     status,
		retryAfter: retryAfter,
	}
	return resp, rec, attemptErr, nil
}

// sleep waits for d or until ctx is done, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// redact hides secret in err's message while keeping err's chain for
// errors.Is and errors.As. A server that echoes request headers into an error
// body must not leak the API key into logs.
func redact(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return redactedError{err: err, secret: secret}
}

type redactedError struct {
	err    error
	secret string
}

func (e redactedError) Error() string {
	return strings.ReplaceAll(e.err.Error(), e.secret, "[redacted]")
}

func (e redactedError) Unwrap() error { return e.err }

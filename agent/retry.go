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
	"time"

	"github.com/cenkalti/backoff/v5"
	openai "github.com/sashabaranov/go-openai"

	"github.com/classbot/classbot/internal/redact"
)

// ErrUnavailable is wrapped by Run's error when a model call still failed
// after the last attempt the retry policy allowed (HTTP 429, 5xx, transport
// errors or attempt timeouts every time). The last underlying error is wrapped
// too.
var ErrUnavailable = errors.New("model unavailable")

// call makes one chat completion call with retries (see callWithRetries).
func (r *Runner) call(ctx context.Context, clock *budgetContext, req openai.ChatCompletionRequest) (openai.ChatCompletionResponse, int, error) {
	return callWithRetries(ctx, r.cfg, r.sem, clock, req.Model, func(ctx context.Context) (openai.ChatCompletionResponse, error) {
		return r.streamOrComplete(ctx, req)
	})
}

// slots is what a model call waits on for its turn: a semaphore.Weighted,
// or the Runner's fairSlots.
type slots interface {
	Acquire(ctx context.Context, n int64) error
	Release(n int64)
}

// callWithRetries makes one model call, do, with retries driven by
// backoff.Retry: the library runs the loop, counts attempts (MaxAttempts),
// stops at a permanent error and waits between attempts until the wait is
// over or ctx is done, whichever comes first. callWithRetries decides what is
// retryable and how long to wait (retryPolicy). It returns the response, the
// number of retries made and an error that names the model. It holds a slot
// of sem only while an attempt is in progress.
func callWithRetries[T any](ctx context.Context, cfg Config, sem slots, clock *budgetContext, model string,
	do func(context.Context) (T, error)) (T, int, error) {
	var (
		tries   int
		retries int
		lastErr error // the last attempt's own failure, redacted
		stopErr error // the caller's cancellation or a failure not worth retrying
	)
	policy := newRetryPolicy(ctx, cfg)
	operation := func() (T, error) {
		tries++
		resp, failure, retry, err := attempt(ctx, cfg, sem, clock, do)
		switch {
		case err != nil:
			stopErr = err
			return resp, backoff.Permanent(err)
		case failure == nil:
			return resp, nil
		}
		lastErr = redact.Secret(failure, cfg.APIKey, "[redacted]")
		if !retry {
			stopErr = lastErr
			return resp, backoff.Permanent(lastErr)
		}
		policy.retryAfter, policy.hasRetryAfter = retryAfter(failure, time.Now())
		return resp, lastErr
	}
	notify := func(_ error, wait time.Duration) {
		retries++
		cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "agent: model call failed, retrying",
			slog.String("model", model),
			slog.Int("attempt", tries),
			slog.Int("status", statusOf(lastErr)),
			slog.Duration("wait", wait),
		)
		if cfg.OnRetryFunc != nil {
			cfg.OnRetryFunc()
		}
	}
	resp, err := backoff.Retry(ctx, operation,
		backoff.WithBackOff(policy),
		backoff.WithMaxTries(uint(cfg.MaxAttempts)),
		backoff.WithMaxElapsedTime(0), // MaxRetryWait bounds the waits only; retryPolicy enforces it
		backoff.WithNotify(notify),
	)
	switch {
	case err == nil:
		return resp, retries, nil
	case stopErr != nil:
		return resp, retries, fmt.Errorf("model %s: %w", model, stopErr)
	case tries >= cfg.MaxAttempts:
		return resp, retries, fmt.Errorf("model %s: gave up after %d attempts: %w: %w",
			model, tries, ErrUnavailable, lastErr)
	case policy.refused:
		return resp, retries, fmt.Errorf("model %s: gave up after %d attempts (next wait %s exceeds the retry budget): %w: %w",
			model, tries, policy.refusedWait.Round(time.Millisecond), ErrUnavailable, lastErr)
	case ctx.Err() != nil:
		return resp, retries, fmt.Errorf("model %s: waiting to retry after %d attempts: %w (last error: %w)",
			model, tries, ctx.Err(), lastErr)
	default: // not reached: every way out of backoff.Retry is covered above
		return resp, retries, fmt.Errorf("model %s: %w", model, redact.Secret(err, cfg.APIKey, "[redacted]"))
	}
}

// attempt makes one attempt, do, while holding a slot of sem. err is the
// caller's cancellation (waiting for a slot or during the attempt): not
// retryable and not the model's fault. failure is the model call's own, and
// retry says whether it is worth another attempt. clock, the Run's work
// budget if it has one, is paused while waiting for the slot.
func attempt[T any](ctx context.Context, cfg Config, sem slots, clock *budgetContext,
	do func(context.Context) (T, error)) (resp T, failure error, retry bool, err error) {
	clock.pause()
	if err := sem.Acquire(ctx, 1); err != nil {
		return resp, nil, false, fmt.Errorf("waiting for a model slot: %w", err)
	}
	clock.resume()
	defer sem.Release(1)

	attemptCtx, cancel := context.WithTimeout(ctx, cfg.AttemptTimeout)
	defer cancel()
	start := time.Now()
	resp, failure = do(attemptCtx)
	if o, ok := sem.(interface{ observe(time.Duration) }); ok {
		o.observe(time.Since(start))
	}
	if failure == nil {
		return resp, nil, false, nil
	}
	if ctx.Err() != nil {
		if errors.Is(failure, ctx.Err()) {
			return resp, nil, false, redact.Secret(failure, cfg.APIKey, "[redacted]")
		}
		return resp, nil, false, fmt.Errorf("%w: %w", ctx.Err(), redact.Secret(failure, cfg.APIKey, "[redacted]"))
	}
	return resp, failure, retryable(failure, attemptCtx.Err() != nil), nil
}

// retryable reports whether an attempt that failed with err may be retried:
// HTTP 408, 409, 429 and 5xx, attempt timeouts, and transport errors or
// broken 2xx bodies once the request was sent. Other 4xx answers
// ([IsPermanent]), and errors raised before sending (bad URL, invalid
// request), would repeat themselves.
func retryable(err error, timedOut bool) bool {
	switch status := statusOf(err); {
	case status >= 400:
		return !IsPermanent(err)
	case timedOut:
		return true
	default:
		var ce *callError
		return errors.As(err, &ce) && ce.sent
	}
}

// retryAfter returns the wait the server asked for in the failed attempt's
// Retry-After header, if it sent a valid one.
func retryAfter(err error, now time.Time) (time.Duration, bool) {
	var ce *callError
	if !errors.As(err, &ce) {
		return 0, false
	}
	return parseRetryAfter(ce.retryAfter, now)
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
// The backoff library has no parser for it (backoff.RetryAfter takes whole
// seconds only).
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

// retryPolicy is the [backoff.BackOff] of one model call. Before retry n the
// wait is drawn uniformly from [0, ceiling] (full jitter), where the ceiling
// is the library's exponential backoff without randomization: RetryBaseDelay
// doubling per retry up to RetryMaxDelay. When the failed attempt carried a
// Retry-After, the wait is that plus the draw, so that calls told the same
// Retry-After at once do not all come back at once. It answers
// [backoff.Stop] when the wait would take the call's total waiting past
// MaxRetryWait or end after ctx's deadline.
//
// A retryPolicy serves one call and is not safe for concurrent use;
// backoff.Retry calls it from the goroutine running the call. The library's
// own RetryAfterError is not used: it would bypass the budget check here and
// reset the exponential ceiling.
type retryPolicy struct {
	ceiling backoff.ExponentialBackOff
	budget  time.Duration   // MaxRetryWait
	ctx     context.Context // the call's: its deadline, read at each wait, may move (see budgetContext)
	waited  time.Duration   // sum of the waits granted so far

	// Set by the attempt that just failed.
	retryAfter    time.Duration
	hasRetryAfter bool

	// Set when the policy stopped the retries.
	refused     bool
	refusedWait time.Duration
}

func newRetryPolicy(ctx context.Context, cfg Config) *retryPolicy {
	p := &retryPolicy{
		ceiling: backoff.ExponentialBackOff{
			InitialInterval:     cfg.RetryBaseDelay,
			RandomizationFactor: 0, // full jitter is drawn in NextBackOff
			Multiplier:          2,
			MaxInterval:         cfg.RetryMaxDelay,
		},
		budget: cfg.MaxRetryWait,
		ctx:    ctx,
	}
	return p
}

// NextBackOff returns the wait before the next retry, or backoff.Stop.
func (p *retryPolicy) NextBackOff() time.Duration {
	wait := time.Duration(rand.Int64N(int64(p.ceiling.NextBackOff()) + 1))
	if p.hasRetryAfter {
		wait += p.retryAfter
	}
	deadline, hasDeadline := p.ctx.Deadline()
	if p.waited+wait > p.budget || (hasDeadline && time.Until(deadline) < wait) {
		p.refused, p.refusedWait = true, wait
		return backoff.Stop
	}
	p.waited += wait
	return wait
}

// Reset starts the policy over; backoff.Retry calls it before the first attempt.
func (p *retryPolicy) Reset() {
	p.ceiling.Reset()
	p.waited = 0
	p.retryAfter, p.hasRetryAfter = 0, false
	p.refused, p.refusedWait = false, 0
}

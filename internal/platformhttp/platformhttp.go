// Package platformhttp holds what the platform adapters share about receiving
// signed HTTP requests and posting answers back: the refusal reasons counted
// in metrics, the body and clock limits, the bounded HTTP client, and
// redaction of secrets that live in URLs.
package platformhttp

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Reasons a request is refused before dispatch (a metric label: a short
// fixed set, the same on every platform).
const (
	RefuseTooLarge         = "too_large"
	RefuseBadBody          = "bad_body"
	RefuseMissingSignature = "missing_signature"
	RefuseStale            = "stale_timestamp"
	RefuseBadSignature     = "bad_signature"
	RefuseUnsupported      = "unsupported_type"
)

const (
	// MaxBodyBytes bounds a request's body; larger ones get 413.
	MaxBodyBytes = 64 << 10
	// MaxClockSkew is how far a signed request's timestamp may be from now.
	MaxClockSkew = 5 * time.Minute
)

// CheckTimestamp returns RefuseStale unless ts (Unix seconds) is within
// MaxClockSkew of now, and "" when it is.
func CheckTimestamp(ts string, now time.Time) string {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return RefuseStale
	}
	if skew := now.Sub(time.Unix(sec, 0)); skew > MaxClockSkew || skew < -MaxClockSkew {
		return RefuseStale
	}
	return ""
}

// NewHTTPClient is the adapters' default client for answers: a bounded
// connection pool (64 per host, so a burst cannot leave tens of thousands of
// sockets in TIME_WAIT) and timeouts on every stage.
func NewHTTPClient() *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Timeout: 20 * time.Second,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          64,
			MaxIdleConnsPerHost:   64,
			MaxConnsPerHost:       64,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
	}
}

// Redact replaces secret (an interaction token, a response_url) in err's
// message with placeholder, keeping err's chain for errors.Is and As. A
// *url.Error names the URL it failed on, and these URLs are credentials.
func Redact(err error, secret, placeholder string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return redactedError{msg: strings.ReplaceAll(err.Error(), secret, placeholder), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }

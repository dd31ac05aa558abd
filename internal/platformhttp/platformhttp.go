// Package platformhttp holds what the platform adapters share about receiving
// signed HTTP requests and posting answers back: the refusal reasons counted
// in metrics, the body and clock limits, and the bounded HTTP client.
// Redaction of secrets in errors is internal/redact.
package platformhttp

import (
	"net"
	"net/http"
	"strconv"
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
	// RefuseResponseURL: a signed command whose reply address is not one
	// the adapter may post to (Slack: outside SLACK_RESPONSE_URL_PREFIX).
	RefuseResponseURL = "bad_response_url"
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

// The dialer settings of NewHTTPClient, for a caller that replaces its
// DialContext (to check the addresses dialled) and keeps the rest.
const (
	DialTimeout   = 10 * time.Second
	DialKeepAlive = 30 * time.Second
)

// NewHTTPClient is the adapters' default client for answers: a bounded
// connection pool (64 per host, so a burst cannot leave tens of thousands of
// sockets in TIME_WAIT) and timeouts on every stage. Its Transport is an
// *http.Transport.
func NewHTTPClient() *http.Client {
	dialer := &net.Dialer{Timeout: DialTimeout, KeepAlive: DialKeepAlive}
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

// Package platformhttp holds what the platform adapters share about receiving
// signed HTTP requests and posting answers back: the refusal reasons counted
// in metrics, the body and clock limits, the bounded HTTP client, and
// redaction of secrets that live in URLs.
package platformhttp

import (
	"net"
	"net/http"
	"net/url"
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

// Redact hides secret (an interaction token, a response_url: URLs that are
// credentials) in err, keeping err's chain for errors.Is and errors.As. Call
// it on the error of a request whose URL is, or contains, the secret.
//
// net/http renders the URL of a failed request again (re-escaping it and
// masking a user:password@ as user:***@), and names a redirect's target
// instead of the URL posted to, so a string match on secret is not enough.
// Redact therefore rewrites every *url.Error in the chain first: a URL that
// contains secret as is keeps the rest (secret becomes placeholder), any
// other URL (a re-rendered or redirected one) becomes placeholder whole.
// Then any copy of secret left in the message, as is or %-escaped, becomes
// placeholder too. The *url.Error values are changed in place: they belong
// to the failed request, which is over. Redact is safe to call on errors
// that share nothing with other goroutines; it returns nil for nil.
func Redact(err error, secret, placeholder string) error {
	if err == nil || secret == "" {
		return err
	}
	msg := err.Error()
	walk(err, func(e error) {
		ue, ok := e.(*url.Error)
		if !ok || ue.URL == placeholder {
			return
		}
		before := ue.Error()
		if strings.Contains(ue.URL, secret) {
			ue.URL = strings.ReplaceAll(ue.URL, secret, placeholder)
		} else {
			ue.URL = placeholder
		}
		msg = strings.ReplaceAll(msg, before, ue.Error())
	})
	for _, s := range []string{secret, url.PathEscape(secret), url.QueryEscape(secret)} {
		msg = strings.ReplaceAll(msg, s, placeholder)
	}
	if msg == err.Error() {
		return err
	}
	return redactedError{msg: msg, err: err}
}

// walk calls f on err and on every error in its chain (Unwrap() error and
// Unwrap() []error alike).
func walk(err error, f func(error)) {
	for err != nil {
		f(err)
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e, f)
			}
			return
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		default:
			return
		}
	}
}

type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }

// Package redact keeps secrets out of error messages: interaction tokens and
// response URLs (URLs that are credentials), API keys a server echoes back.
// It is the one redaction every package uses.
package redact

import (
	"net/url"
	"strings"
)

// Secret hides secret (an interaction token, a response_url: URLs that are
// credentials) in err, keeping err's chain for errors.Is and errors.As. Call
// it on the error of a request whose URL is, or contains, the secret.
//
// net/http renders the URL of a failed request again (re-escaping it and
// masking a user:password@ as user:***@), and names a redirect's target
// instead of the URL posted to, so a string match on secret is not enough.
// Secret therefore rewrites every *url.Error in the chain first: a URL that
// contains secret as is keeps the rest (secret becomes placeholder), any
// other URL (a re-rendered or redirected one) becomes placeholder whole.
// Then any copy of secret left in the message, as is or %-escaped, becomes
// placeholder too. The *url.Error values are changed in place: they belong
// to the failed request, which is over. Secret is safe to call on errors
// that share nothing with other goroutines; it returns nil for nil.
func Secret(err error, secret, placeholder string) error {
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

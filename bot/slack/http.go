package slack

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/classbot/classbot/internal/platformhttp"
)

const (
	// MaxBodyBytes bounds a slash command's body; larger ones get 413.
	MaxBodyBytes = platformhttp.MaxBodyBytes
	// MaxClockSkew is how far X-Slack-Request-Timestamp may be from now.
	MaxClockSkew = platformhttp.MaxClockSkew
)

// Reasons a request is refused before dispatch, as passed to
// Config.OnRefuseFunc (a metric label: the same words on every platform).
const (
	RefuseTooLarge         = platformhttp.RefuseTooLarge
	RefuseBadBody          = platformhttp.RefuseBadBody
	RefuseMissingSignature = platformhttp.RefuseMissingSignature
	RefuseStale            = platformhttp.RefuseStale
	RefuseBadSignature     = platformhttp.RefuseBadSignature
	RefuseResponseURL      = platformhttp.RefuseResponseURL
)

// Handler serves POST /slack/commands: it reads at most 64 KiB (413 past
// it), answers Slack's certificate check (ssl_check=1) with 200 and an
// empty body, verifies X-Slack-Signature over the exact body and refuses a
// timestamp more than 5 minutes off (401), parses the slash command form
// (400 if it is not one), refuses a response_url outside
// Config.ResponseURLPrefixes (400), and hands the command to the
// Dispatcher, whose first response becomes the HTTP response. A refused
// request stores nothing and calls no model. Slack's retries
// (X-Slack-Retry-Num) carry the same trigger_id and are answered once. It
// is safe for concurrent use.
func (a *Adapter) Handler() http.Handler {
	return http.HandlerFunc(a.serveHTTP)
}

func (a *Adapter) serveHTTP(w http.ResponseWriter, r *http.Request) {
	received := time.Now()
	ctx := r.Context()
	body, ok := a.readPost(w, r)
	if !ok {
		return
	}
	if sslCheck(body) {
		// Slack checks the certificate with ssl_check=1 (and a verification
		// token, unsigned): not a command, nothing to verify or refuse.
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return
	}
	if reason := a.verify(r.Header, body); reason != "" {
		a.refuse(r, http.StatusUnauthorized, reason)
		http.Error(w, "invalid request signature", http.StatusUnauthorized)
		return
	}

	// SlashCommandParse reads the form from the body already read.
	pr := r.Clone(ctx)
	pr.Body = io.NopCloser(bytes.NewReader(body))
	pr.ContentLength = int64(len(body))
	pr.Form, pr.PostForm = nil, nil
	sc, err := slackgo.SlashCommandParse(pr)
	if err != nil || !valid(sc) {
		a.refuse(r, http.StatusBadRequest, RefuseBadBody)
		http.Error(w, "body is not a slash command", http.StatusBadRequest)
		return
	}
	if err := a.checkResponseURL(sc.ResponseURL); err != nil {
		a.refuse(r, http.StatusBadRequest, RefuseResponseURL, slog.String("response_url_host", responseURLHost(sc.ResponseURL)))
		http.Error(w, "response_url not allowed", http.StatusBadRequest)
		return
	}
	if n := r.Header.Get("X-Slack-Retry-Num"); n != "" {
		a.log.LogAttrs(ctx, slog.LevelInfo, "slack: retried delivery",
			slog.String("interaction", sc.TriggerID), slog.String("retry", n), slog.String("reason", r.Header.Get("X-Slack-Retry-Reason")))
	}

	resp := &httpResponder{delivery: a.delivery(sc), w: w}
	if err := a.cfg.Dispatcher.Dispatch(ctx, command(sc, received), resp); err != nil {
		a.log.LogAttrs(ctx, slog.LevelWarn, "slack: first response failed",
			slog.String("interaction", sc.TriggerID), slog.Any("err", err))
	}
	if !resp.written {
		http.Error(w, "no response", http.StatusInternalServerError)
	}
}

// verify returns why the request's signature is not acceptable, or "".
func (a *Adapter) verify(h http.Header, body []byte) string {
	sig, ts := h.Get("X-Slack-Signature"), h.Get("X-Slack-Request-Timestamp")
	switch {
	case a.cfg.SigningSecret == "":
		return RefuseBadSignature
	case sig == "" || ts == "":
		return RefuseMissingSignature
	}
	if reason := platformhttp.CheckTimestamp(ts, a.cfg.NowFunc()); reason != "" {
		return reason
	}
	sv, err := slackgo.NewSecretsVerifier(h, a.cfg.SigningSecret)
	switch {
	case errors.Is(err, slackgo.ErrExpiredTimestamp):
		return RefuseStale
	case err != nil:
		return RefuseBadSignature
	}
	if _, err := sv.Write(body); err != nil {
		return RefuseBadSignature
	}
	if sv.Ensure() != nil {
		return RefuseBadSignature
	}
	return ""
}

func (a *Adapter) refuse(r *http.Request, status int, reason string, attrs ...slog.Attr) {
	if a.cfg.OnRefuseFunc != nil {
		a.cfg.OnRefuseFunc(reason)
	}
	attrs = append([]slog.Attr{slog.Int("status", status), slog.String("reason", reason), slog.String("remote", r.RemoteAddr)}, attrs...)
	a.log.LogAttrs(r.Context(), slog.LevelWarn, "slack: command refused", attrs...)
}

// sslCheck reports whether body is Slack's certificate check: a form with
// ssl_check=1 (and a token), which wants 200 and nothing else.
func sslCheck(body []byte) bool {
	if !bytes.Contains(body, []byte("ssl_check")) {
		return false
	}
	form, err := url.ParseQuery(string(body))
	return err == nil && form.Get("ssl_check") == "1"
}

// readPost reads the body of a POST from Slack, up to MaxBodyBytes, and
// reports whether to go on; it has already answered the request (503
// without a Dispatcher, 405, 413, 400) when it returns false.
func (a *Adapter) readPost(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if a.cfg.Dispatcher == nil {
		http.Error(w, "no dispatcher configured", http.StatusServiceUnavailable)
		return nil, false
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			a.refuse(r, http.StatusRequestEntityTooLarge, RefuseTooLarge)
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return nil, false
		}
		a.refuse(r, http.StatusBadRequest, RefuseBadBody)
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return nil, false
	}
	return body, true
}

// readSigned is readPost, then the signature check (401).
func (a *Adapter) readSigned(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, ok := a.readPost(w, r)
	if !ok {
		return nil, false
	}
	if reason := a.verify(r.Header, body); reason != "" {
		a.refuse(r, http.StatusUnauthorized, reason)
		http.Error(w, "invalid request signature", http.StatusUnauthorized)
		return nil, false
	}
	return body, true
}

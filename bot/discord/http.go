package discord

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/internal/platformhttp"
)

const (
	// MaxBodyBytes bounds an HTTP interaction's body; larger ones get 413.
	MaxBodyBytes = platformhttp.MaxBodyBytes
	// MaxClockSkew is how far X-Signature-Timestamp may be from now.
	MaxClockSkew = platformhttp.MaxClockSkew
)

// Handler serves POST /discord/interactions: it reads at most 64 KiB (413
// past it), verifies X-Signature-Ed25519 over X-Signature-Timestamp + body
// and refuses a timestamp more than 5 minutes off (401), parses the
// interaction (400 if it isn't JSON), answers a PING with {"type":1}, and
// hands an application command to the Dispatcher, whose first response
// becomes the HTTP response. It needs Config.PublicKey; without one every
// request gets 401. It is safe for concurrent use.
func (a *Adapter) Handler() http.Handler {
	return http.HandlerFunc(a.serveHTTP)
}

func (a *Adapter) serveHTTP(w http.ResponseWriter, r *http.Request) {
	received := time.Now()
	ctx := r.Context()
	if a.cfg.Dispatcher == nil {
		httpError(w, http.StatusServiceUnavailable, "no dispatcher configured")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httpError(w, http.StatusMethodNotAllowed, "POST only")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			a.refuse(r, http.StatusRequestEntityTooLarge, RefuseTooLarge)
			httpError(w, http.StatusRequestEntityTooLarge, "request body too large")
			return
		}
		a.refuse(r, http.StatusBadRequest, RefuseBadBody)
		httpError(w, http.StatusBadRequest, "cannot read body")
		return
	}
	if reason := a.verify(r, body); reason != "" {
		a.refuse(r, http.StatusUnauthorized, reason)
		httpError(w, http.StatusUnauthorized, "invalid request signature")
		return
	}

	var in discordgo.Interaction
	if err := json.Unmarshal(body, &in); err != nil || in.Type == 0 {
		a.refuse(r, http.StatusBadRequest, RefuseBadBody)
		httpError(w, http.StatusBadRequest, "body is not an interaction")
		return
	}
	switch in.Type {
	case discordgo.InteractionPing:
		writeJSON(w, []byte(`{"type":1}`))
		return
	case discordgo.InteractionApplicationCommand:
	default:
		a.refuse(r, http.StatusBadRequest, RefuseUnsupported)
		httpError(w, http.StatusBadRequest, "interaction type not supported")
		return
	}

	c := a.command(&in, received)
	resp := &httpResponder{webhook: a.webhook(&in), w: w}
	if err := a.cfg.Dispatcher.Dispatch(ctx, c, resp); err != nil {
		a.log.LogAttrs(ctx, slog.LevelWarn, "discord: first response failed",
			slog.String("interaction", in.ID), slog.Any("err", err))
	}
	if !resp.written {
		httpError(w, http.StatusInternalServerError, "no response")
	}
}

// verify returns why the request's signature is not acceptable, or "".
func (a *Adapter) verify(r *http.Request, body []byte) string {
	sig, ts := r.Header.Get("X-Signature-Ed25519"), r.Header.Get("X-Signature-Timestamp")
	switch {
	case len(a.cfg.PublicKey) == 0:
		return RefuseBadSignature
	case sig == "" || ts == "":
		return RefuseMissingSignature
	}
	if reason := platformhttp.CheckTimestamp(ts, a.cfg.Now()); reason != "" {
		return reason
	}
	// VerifyInteraction reads r.Body; give it the bytes already read.
	vr := r.Clone(r.Context())
	vr.Body = io.NopCloser(bytes.NewReader(body))
	if !discordgo.VerifyInteraction(vr, a.cfg.PublicKey) {
		return RefuseBadSignature
	}
	return ""
}

// Reasons a request is refused before dispatch, as passed to Config.OnRefuse
// (a metric label: a short fixed set).
const (
	RefuseTooLarge         = platformhttp.RefuseTooLarge
	RefuseBadBody          = platformhttp.RefuseBadBody
	RefuseMissingSignature = platformhttp.RefuseMissingSignature
	RefuseStale            = platformhttp.RefuseStale
	RefuseBadSignature     = platformhttp.RefuseBadSignature
	RefuseUnsupported      = platformhttp.RefuseUnsupported
)

func (a *Adapter) refuse(r *http.Request, status int, reason string) {
	if a.cfg.OnRefuse != nil {
		a.cfg.OnRefuse(reason)
	}
	a.log.LogAttrs(r.Context(), slog.LevelWarn, "discord: interaction refused",
		slog.Int("status", status), slog.String("reason", reason), slog.String("remote", r.RemoteAddr))
}

func (a *Adapter) webhook(in *discordgo.Interaction) webhook {
	app := in.AppID
	if app == "" {
		app = a.cfg.AppID
	}
	return webhook{a: a, appID: app, token: in.Token}
}

// command turns an application command interaction into a bot.Command.
func (a *Adapter) command(in *discordgo.Interaction, received time.Time) bot.Command {
	c := bot.Command{
		Platform:      bot.PlatformDiscord,
		InteractionID: in.ID,
		Workspace:     in.GuildID,
		Channel:       in.ChannelID,
		ReceivedAt:    received,
	}
	if c.Workspace == "" {
		c.Workspace = "dm"
	}
	switch {
	case in.Member != nil && in.Member.User != nil:
		c.User = in.Member.User.ID
	case in.User != nil:
		c.User = in.User.ID
	}
	if in.Type == discordgo.InteractionApplicationCommand {
		data := in.ApplicationCommandData()
		c.Name = data.Name
		if len(data.Options) > 0 {
			c.Options = make(map[string]string, len(data.Options))
			for _, o := range data.Options {
				if o == nil {
					continue
				}
				if s, ok := o.Value.(string); ok {
					c.Options[o.Name] = s
				} else if o.Value != nil {
					c.Options[o.Name] = fmt.Sprint(o.Value)
				}
			}
		}
	}
	return c
}

func writeJSON(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func httpError(w http.ResponseWriter, status int, msg string) {
	http.Error(w, msg, status)
}

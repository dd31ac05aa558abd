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
// interaction (400 if it isn't JSON), answers a PING with {"type":1},
// refuses an application command whose ids or token are malformed (400),
// answers one with an option that is not a string with a type 4 ephemeral
// "please type it as text" (200: the request is genuine, and a 400 would
// show the student only "This interaction failed"), and hands the rest to
// the Dispatcher, whose first response becomes the HTTP response. It needs Config.PublicKey; without one every
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
	case discordgo.InteractionApplicationCommand, discordgo.InteractionModalSubmit, discordgo.InteractionMessageComponent:
	default:
		a.refuse(r, http.StatusBadRequest, RefuseUnsupported)
		httpError(w, http.StatusBadRequest, "interaction type not supported")
		return
	}

	// The ids and the token become parts of REST paths: refuse any that is
	// not what Discord sends.
	if reason := a.checkIDs(&in); reason != "" {
		a.refuse(r, http.StatusBadRequest, reason)
		httpError(w, http.StatusBadRequest, "interaction id, application id or token is malformed")
		return
	}
	resp := &httpResponder{webhook: a.webhook(&in), w: w}
	if wantsModal(&in) {
		if err := resp.write(registerModal()); err != nil {
			a.log.LogAttrs(ctx, slog.LevelWarn, "discord: opening the register modal failed",
				slog.String("interaction", in.ID), slog.Any("err", err))
		}
		return
	}
	c, err := a.command(&in, received)
	if err != nil {
		// The signature is valid, so Discord sent it: a 400 would show
		// the student "This interaction failed". Tell them what to fix.
		a.refuse(r, http.StatusOK, RefuseBadOption)
		if err := resp.Respond(ctx, badOptionReply(err)); err != nil {
			a.log.LogAttrs(ctx, slog.LevelWarn, "discord: answer to a refused interaction failed",
				slog.String("interaction", in.ID), slog.Any("err", err))
		}
		return
	}
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
	if reason := platformhttp.CheckTimestamp(ts, a.cfg.NowFunc()); reason != "" {
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

// Reasons an interaction is refused before dispatch, as passed to
// Config.OnRefuseFunc (a metric label: a short fixed set).
const (
	RefuseTooLarge         = platformhttp.RefuseTooLarge
	RefuseBadBody          = platformhttp.RefuseBadBody
	RefuseMissingSignature = platformhttp.RefuseMissingSignature
	RefuseStale            = platformhttp.RefuseStale
	RefuseBadSignature     = platformhttp.RefuseBadSignature
	RefuseUnsupported      = platformhttp.RefuseUnsupported
	// RefuseBadIDs: the interaction id or application id is not a numeric
	// snowflake, or the token is not 1 to MaxTokenLen characters of
	// [A-Za-z0-9._-] (or is "." or ".."). HTTP: 400; gateway: ignored.
	RefuseBadIDs = "bad_ids"
	// RefuseBadOption: an option's value is not a string (every classbot
	// option is one). The student is told to type it as text.
	RefuseBadOption = "bad_option"
)

// countRefusal reports reason to Config.OnRefuseFunc.
func (a *Adapter) countRefusal(reason string) {
	if a.cfg.OnRefuseFunc != nil {
		a.cfg.OnRefuseFunc(reason)
	}
}

func (a *Adapter) refuse(r *http.Request, status int, reason string) {
	a.countRefusal(reason)
	a.log.LogAttrs(r.Context(), slog.LevelWarn, "discord: interaction refused",
		slog.Int("status", status), slog.String("reason", reason), slog.String("remote", r.RemoteAddr))
}

// MaxTokenLen bounds an interaction token's length. Discord's are about
// 200 characters.
const MaxTokenLen = 500

// checkIDs returns RefuseBadIDs unless the interaction's id, its
// application id (or Config.AppID when it has none) and its token are safe
// to put in a REST path as they are, and "" when they are.
func (a *Adapter) checkIDs(in *discordgo.Interaction) string {
	app := in.AppID
	if app == "" {
		app = a.cfg.AppID
	}
	if !isSnowflake(in.ID) || !isSnowflake(app) || !validToken(in.Token) {
		return RefuseBadIDs
	}
	return ""
}

// isSnowflake reports whether s is a Discord id: a decimal uint64.
func isSnowflake(s string) bool {
	if len(s) > 20 || !allDigits(s) {
		return false
	}
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

// validToken reports whether t is 1 to MaxTokenLen characters of
// [A-Za-z0-9._-] and not a dot segment ("." or ".."), so it is exactly one
// path segment that no client or proxy rewrites.
func validToken(t string) bool {
	if t == "" || len(t) > MaxTokenLen || t == "." || t == ".." {
		return false
	}
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

func (a *Adapter) webhook(in *discordgo.Interaction) webhook {
	app := in.AppID
	if app == "" {
		app = a.cfg.AppID
	}
	return webhook{a: a, appID: app, token: in.Token, interaction: in.ID, channel: in.ChannelID, user: userID(in), guild: in.GuildID}
}

// userID is the id of the user who sent in: the member's in a guild, the
// user's in a DM; empty when Discord gave neither.
func userID(in *discordgo.Interaction) string {
	switch {
	case in.Member != nil && in.Member.User != nil:
		return in.Member.User.ID
	case in.User != nil:
		return in.User.ID
	}
	return ""
}

// command turns an application command interaction into a bot.Command.
// Every classbot option is a string: an option of another type, or whose
// value is not a JSON string, fails the whole command with a
// *badOptionError, so that nothing else typed (a number, true, an object)
// is ever turned into text and stored.
func (a *Adapter) command(in *discordgo.Interaction, received time.Time) (bot.Command, error) {
	c := bot.Command{
		Platform:      bot.PlatformDiscord,
		InteractionID: in.ID,
		Workspace:     in.GuildID,
		Channel:       in.ChannelID,
		User:          userID(in),
		ReceivedAt:    received,
		// Signed by Discord (HTTP) or from its gateway: the member's
		// permissions in this channel, never an option.
		Admin: in.Member != nil && in.Member.Permissions&discordgo.PermissionManageGuild != 0,
	}
	if c.Workspace == "" {
		c.Workspace = "dm"
	}
	if in.Type == discordgo.InteractionModalSubmit {
		return modalCommand(c, in)
	}
	if in.Type == discordgo.InteractionMessageComponent {
		return componentCommand(c, in), nil
	}
	if in.Type != discordgo.InteractionApplicationCommand {
		return c, nil
	}
	data := in.ApplicationCommandData()
	c.Name = data.Name
	if len(data.Options) > 0 {
		c.Options = make(map[string]string, len(data.Options))
		for _, o := range data.Options {
			if o == nil {
				continue
			}
			if boolOption(c.Name, o.Name) {
				v, ok := o.Value.(bool)
				if !ok || o.Type != discordgo.ApplicationCommandOptionBoolean {
					return c, &badOptionError{option: o.Name, value: o.Value, typ: o.Type, want: discordgo.ApplicationCommandOptionBoolean}
				}
				c.Options[o.Name] = strconv.FormatBool(v)
				continue
			}
			s, ok := o.Value.(string)
			if !ok || o.Type != discordgo.ApplicationCommandOptionString {
				return c, &badOptionError{option: o.Name, value: o.Value, typ: o.Type, want: discordgo.ApplicationCommandOptionString}
			}
			c.Options[o.Name] = s
		}
	}
	return c, nil
}

// badOptionError is an option whose value is not of its declared type.
type badOptionError struct {
	option string
	value  any
	typ    discordgo.ApplicationCommandOptionType
	want   discordgo.ApplicationCommandOptionType
}

func (e *badOptionError) Error() string {
	return fmt.Sprintf("option %.40q has type %d and a %T value; want type %d", e.option, e.typ, e.value, e.want)
}

// boolOption reports whether option is declared bot.OptionBool by the
// command named command.
func boolOption(command, option string) bool {
	for _, s := range bot.Commands {
		if s.Name != command {
			continue
		}
		for _, o := range s.Options {
			if o.Name == option {
				return o.Type == bot.OptionBool
			}
		}
	}
	return false
}

// badOptionReply is what the student sees for err (a *badOptionError): which
// option to type again, named only when it is one of classbot's.
func badOptionReply(err error) bot.Reply {
	what := "each option"
	var be *badOptionError
	if errors.As(err, &be) && knownOption(be.option) {
		if be.want == discordgo.ApplicationCommandOptionBoolean {
			return bot.Reply{Text: "Please choose True or False for " + be.option + " and try again.", Ephemeral: true}
		}
		what = "your " + be.option
	}
	return bot.Reply{Text: "Please type " + what + " as plain text and try again.", Ephemeral: true}
}

// knownOption reports whether name is an option of one of bot.Commands.
func knownOption(name string) bool {
	for _, s := range bot.Commands {
		for _, o := range s.Options {
			if o.Name == name {
				return true
			}
		}
	}
	return false
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

package discord

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/bwmarrin/discordgo"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/internal/chunk"
	"github.com/classbot/classbot/internal/redact"
)

// MaxMessageLen is Discord's limit on a message's content, in characters
// (counted as UTF-16 code units, as Discord's clients count them).
const MaxMessageLen = 2000

// noMentions is set on every message: an empty, present parse list, so
// nothing in the text (@everyone, @here, <@&role>, <@user>) pings anyone.
// discordgo's Parse field has no omitempty, and an empty (not nil) slice
// marshals as "parse":[].
func noMentions() *discordgo.MessageAllowedMentions {
	return &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}}
}

func flags(r bot.Reply) discordgo.MessageFlags {
	if r.Ephemeral {
		return discordgo.MessageFlagsEphemeral
	}
	return 0
}

// deferred is the type 5 response: "classbot is thinking…".
func deferred(r bot.Reply) *discordgo.InteractionResponse {
	return &discordgo.InteractionResponse{
		Type: discordgo.InteractionResponseDeferredChannelMessageWithSource,
		Data: &discordgo.InteractionResponseData{Flags: flags(r), AllowedMentions: noMentions()},
	}
}

// message is the type 4 response carrying content; last: it is the
// reply's only message, which carries its feedback buttons.
func message(r bot.Reply, content string, last bool) *discordgo.InteractionResponse {
	data := &discordgo.InteractionResponseData{Content: content, Flags: flags(r), AllowedMentions: noMentions()}
	if last {
		data.Components = feedbackButtons(r)
	}
	return &discordgo.InteractionResponse{Type: discordgo.InteractionResponseChannelMessageWithSource, Data: data}
}

// MaxMessages caps the messages one answer becomes: the first response
// (or the edit of a deferral) and up to four follow-ups. A longer answer's
// last message is cut short and ends with "…", as on Slack.
const MaxMessages = 5

// Split cuts text into at most MaxMessages messages of at most
// MaxMessageLen characters (UTF-16 code units), preferring line breaks,
// then spaces, and cutting inside a word only when a word alone is too
// long; when the text needs more, the last message ends with "…" (see
// chunk.Split). It never returns an empty list: empty text gives one empty
// part.
func Split(text string) []string {
	return chunk.Split(text, MaxMessageLen, MaxMessages, utf16.RuneLen)
}

// webhook delivers what comes after the first response, over REST: the edit
// of the original response and follow-up messages. It is shared by both
// transports.
type webhook struct {
	a           *Adapter
	appID       string
	token       string // a secret: never logged
	interaction string // interaction id
	channel     string
	user        string
	guild       string // empty in a DM
}

// edit replaces the original (deferred) response's content and, when
// embeds is not nil, its embeds (an empty list clears them), and when
// comps is not nil, its components (buttons). With files
// it is a multipart request whose attachments are exactly files: running
// it again replaces them rather than adding more.
func (w webhook) edit(ctx context.Context, content string, embeds *[]*discordgo.MessageEmbed, comps []discordgo.MessageComponent, files ...*bot.File) error {
	uri := discordgo.EndpointInteractionResponseActions(w.appID, w.token)
	data := &discordgo.WebhookEdit{Content: &content, Embeds: embeds, AllowedMentions: noMentions()}
	if comps != nil {
		data.Components = &comps
	}
	// discordgo's InteractionResponseEdit puts every edit of every
	// interaction in one rate-limit bucket, which serialises them; Discord
	// limits webhooks per token, so the bucket here is the URL.
	var err error
	if len(files) == 0 {
		_, err = w.a.session.RequestWithBucketID(http.MethodPatch, uri, data, uri, discordgo.WithContext(ctx))
	} else {
		atts := make([]*discordgo.MessageAttachment, len(files))
		for i, f := range files {
			atts[i] = &discordgo.MessageAttachment{ID: strconv.Itoa(i), Filename: f.Name}
		}
		data.Attachments = &atts
		var (
			ct   string
			body []byte
		)
		ct, body, err = discordgo.MultipartBodyWithJSON(data, discordFiles(files))
		if err == nil {
			_, err = w.a.session.RequestRaw(http.MethodPatch, uri, ct, body, uri, 0, discordgo.WithContext(ctx))
		}
	}
	if err != nil {
		return fmt.Errorf("edit original response: %w", redact.Secret(err, w.token, "[token]"))
	}
	return nil
}

// discordFiles turns a reply's files into discordgo's, each with a fresh
// reader (a retried request reads them again).
func discordFiles(files []*bot.File) []*discordgo.File {
	out := make([]*discordgo.File, 0, len(files))
	for _, f := range files {
		out = append(out, &discordgo.File{Name: f.Name, ContentType: contentType(f.Name), Reader: bytes.NewReader(f.Data)})
	}
	return out
}

func contentType(name string) string {
	if strings.HasSuffix(name, ".csv") {
		return "text/csv"
	}
	return "application/octet-stream"
}

// filesOf returns r's file as a list: none, or one.
func filesOf(r bot.Reply) []*bot.File {
	if r.File == nil {
		return nil
	}
	return []*bot.File{r.File}
}

// followUps sends parts as follow-up messages, in order; the last carries
// the reply's feedback buttons.
func (w webhook) followUps(ctx context.Context, r bot.Reply, parts []string) error {
	in := &discordgo.Interaction{AppID: w.appID, Token: w.token}
	for i, p := range parts {
		params := &discordgo.WebhookParams{Content: p, Flags: flags(r), AllowedMentions: noMentions()}
		if i == len(parts)-1 {
			params.Components = feedbackButtons(r)
		}
		_, err := w.a.session.FollowupMessageCreate(in, true, params, discordgo.WithContext(ctx))
		if err != nil {
			return fmt.Errorf("follow-up message %d of %d: %w", i+1, len(parts), redact.Secret(err, w.token, "[token]"))
		}
	}
	return nil
}

// FollowUp edits the deferred response with the answer's first part and
// sends the rest as follow-ups.
func (w webhook) FollowUp(ctx context.Context, r bot.Reply) error {
	parts := Split(r.Text)
	var comps []discordgo.MessageComponent
	if len(parts) == 1 {
		comps = feedbackButtons(r)
	}
	if err := w.edit(ctx, parts[0], nil, comps, filesOf(r)...); err != nil {
		return err
	}
	return w.followUps(ctx, r, parts[1:])
}

// httpResponder answers an HTTP interaction: the first response is the HTTP
// response; later ones go over REST. The Dispatcher calls it from one
// goroutine at a time (see bot.Responder).
type httpResponder struct {
	webhook
	w       http.ResponseWriter
	written bool
	preview preview
}

var _ bot.Responder = (*httpResponder)(nil)

// write sends resp as the whole HTTP response and flushes it, so Discord has
// it before anything else happens.
func (h *httpResponder) write(resp *discordgo.InteractionResponse) error {
	if h.written {
		return errors.New("discord: interaction already answered")
	}
	h.written = true
	b, err := json.Marshal(resp)
	if err != nil {
		return err
	}
	hd := h.w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Content-Length", strconv.Itoa(len(b)))
	h.w.WriteHeader(http.StatusOK)
	if _, err := h.w.Write(b); err != nil {
		return fmt.Errorf("write interaction response: %w", err)
	}
	if err := http.NewResponseController(h.w).Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("flush interaction response: %w", err)
	}
	return nil
}

// Ack defers: type 5, ephemeral when r is. Discord shows "classbot is
// thinking…"; r.Text cannot be shown with a deferral and is not sent.
func (h *httpResponder) Ack(_ context.Context, r bot.Reply) error {
	return h.write(deferred(r))
}

// Respond answers with type 4; parts past the first 2,000 characters follow
// as follow-up messages once the response is flushed. They are sent with
// ctx, which must outlive the HTTP request: Discord often closes the
// connection as soon as it has read the response (the Dispatcher passes a
// context detached from the request and bounded by its ReplyTimeout).
//
// An answer with a file is deferred in the HTTP response, then delivered
// by an edit carrying the attachment (an HTTP response cannot be
// multipart).
func (h *httpResponder) Respond(ctx context.Context, r bot.Reply) error {
	if r.File != nil {
		if err := h.write(deferred(r)); err != nil {
			return err
		}
		return h.FollowUp(ctx, r)
	}
	parts := Split(r.Text)
	if err := h.write(message(r, parts[0], len(parts) == 1)); err != nil {
		return err
	}
	return h.followUps(ctx, r, parts[1:])
}

// gatewayResponder answers a gateway interaction entirely over REST.
type gatewayResponder struct {
	webhook
	preview preview
}

var _ bot.Responder = (*gatewayResponder)(nil)

func (g *gatewayResponder) callback(ctx context.Context, resp *discordgo.InteractionResponse) error {
	in := &discordgo.Interaction{ID: g.interaction, AppID: g.appID, Token: g.token}
	if err := g.a.session.InteractionRespond(in, resp, discordgo.WithContext(ctx)); err != nil {
		return fmt.Errorf("interaction callback: %w", redact.Secret(err, g.token, "[token]"))
	}
	return nil
}

// Ack defers with a type 5 callback, ephemeral when r is.
func (g *gatewayResponder) Ack(ctx context.Context, r bot.Reply) error {
	return g.callback(ctx, deferred(r))
}

// Respond answers with a type 4 callback (multipart when r has a file)
// and follow-ups for long text.
func (g *gatewayResponder) Respond(ctx context.Context, r bot.Reply) error {
	parts := Split(r.Text)
	resp := message(r, parts[0], len(parts) == 1)
	resp.Data.Files = discordFiles(filesOf(r))
	if err := g.callback(ctx, resp); err != nil {
		return err
	}
	return g.followUps(ctx, r, parts[1:])
}

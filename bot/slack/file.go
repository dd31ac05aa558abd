package slack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/classbot/classbot/bot"
)

// fileTimeout bounds a file's delivery: opening the direct message and the
// upload's three calls.
const fileTimeout = 20 * time.Second

// postKindFile is the bot.PostLog kind of a file shared into the user's
// direct message: a queued command's later attempt does not share it again.
const postKindFile = "slack_file"

// Notes added to an answer about its file.
const (
	fileSentNote   = "The whole list is in %s, which I sent you in our direct message."
	noScopeNote    = "(To get the whole list as a file in your direct messages, the Slack app needs the files:write and im:write scopes.)"
	fileFailedNote = "(I couldn't send you the file just now.)"
)

// withFile delivers r.File into the user's direct message (never the
// channel the command was typed in) and returns the answer's text with a
// note saying so; when that cannot be done (no bot token, a missing
// scope, any failure), the text gets the file's Inline version instead.
// Without a file it returns r.Text. posts, if not nil, records the share
// and tells a later attempt it was made.
func (d delivery) withFile(ctx context.Context, r bot.Reply, posts bot.PostLog) string {
	f := r.File
	if f == nil {
		return r.Text
	}
	sent := fmt.Sprintf(fileSentNote, f.Name)
	if posts != nil && posts.Posted(postKindFile) != "" {
		return r.Text + "\n\n" + sent
	}
	if d.a.cfg.BotToken == "" || d.user == "" || len(f.Data) == 0 {
		return r.Text + "\n" + f.Inline
	}
	fctx, cancel := context.WithTimeout(ctx, fileTimeout)
	defer cancel()
	id, err := d.shareFile(fctx, f)
	if err != nil {
		var se slackgo.SlackErrorResponse
		scope := errors.As(err, &se) && (se.Err == "missing_scope" || se.Err == "not_allowed_token_type")
		d.a.log.LogAttrs(ctx, slog.LevelWarn, "slack: sending the file to the user's direct message failed; answering inline",
			slog.String("interaction", d.id), slog.Bool("missing_scope", scope), slog.Any("err", err))
		note := fileFailedNote
		if scope {
			note = noScopeNote
		}
		return r.Text + "\n" + f.Inline + "\n" + note
	}
	if posts != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bot.RecordPostTimeout)
		defer cancel()
		if err := posts.RecordPost(rctx, postKindFile, id); err != nil {
			d.a.log.LogAttrs(ctx, slog.LevelWarn, "slack: recording the shared file failed", slog.String("interaction", d.id), slog.Any("err", err))
		}
	}
	return r.Text + "\n\n" + sent
}

// shareFile opens the direct message with the user and uploads f into it
// (files.getUploadURLExternal, the upload, files.completeUploadExternal).
// It returns the file's id.
func (d delivery) shareFile(ctx context.Context, f *bot.File) (string, error) {
	ch, _, _, err := d.a.api.OpenConversationContext(ctx, &slackgo.OpenConversationParameters{Users: []string{d.user}, ReturnIM: true})
	if err != nil {
		return "", fmt.Errorf("conversations.open: %w", err)
	}
	if ch == nil || ch.ID == "" {
		return "", errors.New("conversations.open: no channel id")
	}
	sum, err := d.a.api.UploadFileContext(ctx, slackgo.UploadFileParameters{
		Filename: f.Name, Title: f.Name, FileSize: len(f.Data), Reader: bytes.NewReader(f.Data),
		Channel: ch.ID, InitialComment: "Here is " + f.Name + ", as you asked.",
	})
	if err != nil {
		return "", fmt.Errorf("upload %s: %w", f.Name, err)
	}
	return sum.ID, nil
}

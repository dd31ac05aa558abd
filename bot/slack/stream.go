package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	slackgo "github.com/slack-go/slack"

	"github.com/classbot/classbot/bot"
)

const (
	// DefaultStreamInterval is the least time between two
	// chat.appendStream calls of one answer.
	DefaultStreamInterval = time.Second
	// MaxStreamLen is the most characters one streamed message takes,
	// counted after escaping (Slack's limit on a streamed message's
	// markdown_text). An answer past it goes on in messages of its own.
	MaxStreamLen = 12000
	// postKindStream is the bot.PostLog kind of a streamed answer's
	// message: a later attempt of the command finds it and replaces its
	// text rather than starting a second message.
	postKindStream = "slack_stream"
)

// Thread is where a streamed answer goes: a thread of the student's
// message (a mention, a direct message, an assistant thread). A slash
// command has no message to thread under, so its answers are not
// streamed.
type Thread struct {
	Channel string // C…, G…, or D… for a direct message
	TS      string // thread_ts: the message the answer replies to
	User    string // the student; recipient_user_id outside direct messages
	Team    string // the student's team; recipient_team_id outside direct messages
}

// ThreadStream writes one answer into a Thread while the model writes it, with
// chat.startStream, chat.appendStream and chat.stopStream, and delivers
// the whole answer with Finish. Every chunk it sends is escaped text whose
// raw form ended where the model's text did, so no chunk boundary splits
// an entity (&amp;) or lets <!channel> through: the chunks joined are
// exactly Escape of the answer. When streaming is refused (not_in_channel,
// missing_scope, an older workspace, any error), Finish posts the answer
// with chat.postMessage instead. A ThreadStream serves one answer, from one
// goroutine (bot.Streamer); create it with Adapter.NewStream.
type ThreadStream struct {
	a     *Adapter
	th    Thread
	posts bot.PostLog // nil: nothing recorded

	ts      string    // the streamed message; "" before it starts
	sent    string    // raw text whose escape the message shows
	msgLen  int       // characters (escaped) in the message
	last    time.Time // when the last append went out
	off     bool      // chat.startStream was refused: Finish posts instead
	replace bool      // the message shows what may not be the answer's start: Finish replaces it
	// feedback is the /ask interaction id the finished answer's feedback
	// buttons carry (bot.Reply.Feedback); "": no buttons.
	feedback string
}

// SetFeedback makes Finish end the answer with the "helpful" / "not
// helpful" buttons for the /ask interaction id (bot.Reply.Feedback): the
// blocks of chat.stopStream, which Slack shows under the streamed text, or
// of the answer's last message when it is posted. "" removes them.
func (s *ThreadStream) SetFeedback(id string) { s.feedback = id }

// buttons returns the feedback buttons as the blocks of a chat.* call.
func (s *ThreadStream) buttons() []slackgo.MsgOption {
	if b := feedbackActions(bot.Reply{Feedback: s.feedback}); b != nil {
		return []slackgo.MsgOption{slackgo.MsgOptionBlocks(b)}
	}
	return nil
}

// NewStream returns a ThreadStream into th. With posts, the streamed message's
// ts is recorded there before any text is appended, and a ThreadStream whose
// PostLog holds one from an earlier attempt shows nothing until Finish,
// which replaces that message's text.
func (a *Adapter) NewStream(th Thread, posts bot.PostLog) *ThreadStream {
	return &ThreadStream{a: a, th: th, posts: posts}
}

var _ bot.Streamer = (*ThreadStream)(nil)

// shown returns the part of text a stream may send: the answer's leading
// and trailing white space is not (the final answer is trimmed), so what
// was sent is always a prefix of it.
func shown(text string) string { return strings.TrimSpace(text) }

// Stream appends what text adds to what the message shows, at most every
// StreamInterval; the first call starts the message. Failures are logged
// and leave the delivery to Finish.
func (s *ThreadStream) Stream(ctx context.Context, text string) {
	text = shown(text)
	if s.off || text == "" {
		return
	}
	if !s.last.IsZero() && time.Since(s.last) < s.a.streamInterval {
		return
	}
	if s.ts == "" && !s.start(ctx) {
		return
	}
	if s.replace || !strings.HasPrefix(text, s.sent) {
		s.replace = true // the model started over: Finish replaces the text
		return
	}
	delta := Escape(text[len(s.sent):])
	n := utf8.RuneCountInString(delta)
	if delta == "" || s.msgLen+n > MaxStreamLen {
		return // Finish carries the rest, in messages of its own past the limit
	}
	s.last = time.Now()
	if _, _, err := s.a.api.AppendStreamContext(ctx, s.th.Channel, s.ts, slackgo.MsgOptionMarkdownText(delta)); err != nil {
		s.replace = true
		s.a.log.LogAttrs(ctx, slog.LevelInfo, "slack: chat.appendStream failed; the answer comes whole",
			slog.String("channel", s.th.Channel), slog.Any("error", err))
		return
	}
	s.sent, s.msgLen = text, s.msgLen+n
}

// start begins the streamed message, or finds the one an earlier attempt
// started, and reports whether there is one.
func (s *ThreadStream) start(ctx context.Context) bool {
	if s.posts != nil {
		if ts := s.posts.Posted(postKindStream); ts != "" {
			s.ts, s.replace = ts, true
			return true
		}
	}
	opts := []slackgo.MsgOption{slackgo.MsgOptionTS(s.th.TS)}
	if !strings.HasPrefix(s.th.Channel, "D") {
		opts = append(opts, slackgo.MsgOptionRecipientUserID(s.th.User), slackgo.MsgOptionRecipientTeamID(s.th.Team))
	}
	_, ts, err := s.a.api.StartStreamContext(ctx, s.th.Channel, opts...)
	if err != nil {
		s.off = true
		s.a.log.LogAttrs(ctx, slog.LevelInfo, "slack: chat.startStream refused; the answer will be posted whole",
			slog.String("channel", s.th.Channel), slog.Any("error", err))
		return false
	}
	s.ts = ts
	s.record(ctx, ts)
	return true
}

// record keeps ts in the PostLog, with its own time budget.
func (s *ThreadStream) record(ctx context.Context, ts string) {
	if s.posts == nil {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bot.RecordPostTimeout)
	defer cancel()
	if err := s.posts.RecordPost(rctx, postKindStream, ts); err != nil {
		s.a.log.LogAttrs(ctx, slog.LevelWarn, "slack: recording the streamed message failed; a retry may post again",
			slog.String("channel", s.th.Channel), slog.Any("error", err))
	}
}

// Finish delivers the whole answer, text, and ends the stream: it appends
// what the message does not show yet and stops it; when the message may
// show something else (the model started over, an append failed, an
// earlier attempt's message) it stops it and replaces its text with
// chat.update. What does not fit in MaxStreamLen follows in the thread
// with chat.postMessage, cut into Messages; so does the whole answer when
// no stream was started (or it was refused). With a PostLog, a message an
// earlier attempt recorded is finished, never a second one started. The
// answer's last message carries the feedback buttons (SetFeedback).
func (s *ThreadStream) Finish(ctx context.Context, text string) error {
	text = shown(text)
	if s.ts == "" && !s.off && s.posts != nil {
		if ts := s.posts.Posted(postKindStream); ts != "" {
			s.ts, s.replace = ts, true
		}
	}
	if s.ts == "" {
		return s.post(ctx, text, true)
	}
	if s.replace || !strings.HasPrefix(text, s.sent) {
		// The message may be streaming still (an earlier attempt's, or a
		// failed append): stopped first, it takes chat.update.
		_, _, _ = s.a.api.StopStreamContext(ctx, s.th.Channel, s.ts)
		head, rest := cut(text, MaxStreamLen)
		opts := []slackgo.MsgOption{slackgo.MsgOptionText(Escape(head), false)}
		if rest == "" {
			// With blocks, Slack shows them instead of the text: the text
			// goes into sections above the buttons.
			opts = append(opts, msgBlocks(answerBlocks(bot.Reply{Feedback: s.feedback}, head))...)
		}
		if _, _, _, err := s.a.api.UpdateMessageContext(ctx, s.th.Channel, s.ts, opts...); err != nil {
			return fmt.Errorf("chat.update of the streamed answer: %w", err)
		}
		return s.post(ctx, rest, false)
	}
	head, rest := cut(text[len(s.sent):], MaxStreamLen-s.msgLen)
	var opts []slackgo.MsgOption
	if head != "" {
		opts = append(opts, slackgo.MsgOptionMarkdownText(Escape(head)))
	}
	if rest == "" {
		opts = append(opts, s.buttons()...) // shown under the streamed text
	}
	if _, _, err := s.a.api.StopStreamContext(ctx, s.th.Channel, s.ts, opts...); err != nil {
		return fmt.Errorf("chat.stopStream: %w", err)
	}
	s.sent += head
	return s.post(ctx, rest, false)
}

// post sends text to the thread with chat.postMessage, cut into Messages,
// the last one with the feedback buttons; record: the first message's ts
// goes into the PostLog (it is the answer's message when no stream was
// started).
func (s *ThreadStream) post(ctx context.Context, text string, record bool) error {
	if strings.TrimSpace(text) == "" {
		if record {
			return errors.New("slack: empty answer")
		}
		return nil
	}
	parts := Messages(text)
	for i, p := range parts {
		opts := []slackgo.MsgOption{slackgo.MsgOptionTS(s.th.TS), slackgo.MsgOptionText(p, false)}
		if i == len(parts)-1 {
			opts = append(opts, msgBlocks(feedbackBlocks(bot.Reply{Feedback: s.feedback}, p))...)
		}
		_, ts, err := s.a.api.PostMessageContext(ctx, s.th.Channel, opts...)
		if err != nil {
			return fmt.Errorf("chat.postMessage %d: %w", i+1, err)
		}
		if record && i == 0 {
			s.record(ctx, ts)
		}
	}
	return nil
}

// cut returns text's longest head whose escape has at most n characters,
// cut at a rune and, when one is near, after a line break or a space, and
// the rest.
func cut(text string, n int) (head, rest string) {
	size := 0
	for i, r := range text {
		size += escapedLen(r)
		if size > n {
			head = text[:i]
			if at := strings.LastIndexAny(head, "\n "); at > 0 && at >= len(head)-200 {
				head = head[:at+1]
			}
			return head, text[len(head):]
		}
	}
	return text, ""
}

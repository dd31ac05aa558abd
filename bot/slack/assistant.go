package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/internal/chunk"
	"github.com/classbot/classbot/store"
)

// CourseFinder tells which course a class answers from; *store.Postgres
// and *store.Memory implement it.
type CourseFinder interface {
	CourseFor(ctx context.Context, c store.Class) (store.Course, error)
}

// StatusText is the assistant thread's status while the agent works.
const StatusText = "searching the course notes…"

// Greeting is what an assistant thread starts with.
const Greeting = "Hi! I'm the class assistant. Ask me anything about the course: I answer from the teacher's notes and say where I found it."

// Prompts are the suggested prompts of an assistant thread: what the course
// is about (named when the class has a course), the next deadline and the
// late policy. Each is an ordinary question the notes can answer.
func Prompts(course string) []slackgo.AssistantThreadsPrompt {
	about := slackgo.AssistantThreadsPrompt{Title: "What is this course about?", Message: "What is this course about, and what will we cover?"}
	if course != "" {
		about = slackgo.AssistantThreadsPrompt{Title: "About " + course, Message: "What is " + course + " about, and what will we cover?"}
	}
	return []slackgo.AssistantThreadsPrompt{
		about,
		{Title: "Next deadline", Message: "When is the next deadline?"},
		{Title: "Late policy", Message: "What is the late policy?"},
	}
}

// greet posts the greeting in a new assistant thread and sets its
// suggested prompts, built from the course of the channel the student was
// viewing (the thread's context), or of the direct message when there is
// none. A failure is logged: the student can still type a question.
func (a *Adapter) greet(ctx context.Context, team string, th slackevents.AssistantThread) {
	if th.ChannelID == "" || th.ThreadTimeStamp == "" {
		return
	}
	course := a.courseName(ctx, team, th)
	opts := []slackgo.MsgOption{slackgo.MsgOptionText(Escape(Greeting), false), slackgo.MsgOptionTS(th.ThreadTimeStamp)}
	if c, _ := a.contexts.lookup(th.ChannelID, th.ThreadTimeStamp); c.viewing != "" {
		// Kept where any process can read it (storedContext).
		opts = append(opts, slackgo.MsgOptionMetadata(contextMetadata(c.viewing)))
	}
	if _, ts, err := a.api.PostMessageContext(ctx, th.ChannelID, opts...); err != nil {
		a.log.LogAttrs(ctx, slog.LevelWarn, "slack: assistant greeting failed", slog.Any("err", err))
	} else {
		a.contexts.setGreeting(th.ChannelID, th.ThreadTimeStamp, ts)
	}
	a.contexts.setCourse(th.ChannelID, th.ThreadTimeStamp, course)
	a.setPrompts(ctx, th, course)
}

// refreshPrompts sets the suggested prompts of an assistant thread whose
// student moved to another channel, when that channel's course is not the
// one the prompts name: a prompt about the old course would be answered
// from the new one. A failure is logged.
func (a *Adapter) refreshPrompts(ctx context.Context, team string, th slackevents.AssistantThread) {
	if a.cfg.Courses == nil || th.ChannelID == "" || th.ThreadTimeStamp == "" {
		return
	}
	course := a.courseName(ctx, team, th)
	if !a.contexts.setCourse(th.ChannelID, th.ThreadTimeStamp, course) {
		return
	}
	a.setPrompts(ctx, th, course)
}

// setPrompts sets the thread's suggested prompts (Prompts) for course.
func (a *Adapter) setPrompts(ctx context.Context, th slackevents.AssistantThread, course string) {
	title := "Try asking"
	if course != "" {
		title = "Ask about " + course
	}
	if err := a.api.SetAssistantThreadsSuggestedPromptsContext(ctx, slackgo.AssistantThreadsSetSuggestedPromptsParameters{
		ChannelID: th.ChannelID, ThreadTS: th.ThreadTimeStamp, Title: title, Prompts: Prompts(course),
	}); err != nil {
		a.log.LogAttrs(ctx, slog.LevelWarn, "slack: setting suggested prompts failed", slog.Any("err", err))
	}
}

// courseName returns the name of the course th's class answers from, or ""
// when there is no Config.Courses or no course.
func (a *Adapter) courseName(ctx context.Context, team string, th slackevents.AssistantThread) string {
	if a.cfg.Courses == nil {
		return ""
	}
	if th.Context.TeamID != "" {
		team = th.Context.TeamID
	}
	ch := th.Context.ChannelID
	if ch == "" {
		ch = th.ChannelID
	}
	c, err := a.cfg.Courses.CourseFor(ctx, store.Class{Platform: bot.PlatformSlack, Workspace: team, Channel: ch})
	if err != nil {
		return ""
	}
	return c.Name
}

// threadResponder answers a question typed in a thread, a direct message
// or a mention: with chat.postMessage in the thread of the question, and,
// in an assistant thread, with assistant.threads.setStatus while the agent
// works. The Dispatcher calls it from one goroutine at a time. An answer
// the model streams (Stream) is written into the thread with a
// ThreadStream, which FollowUp finishes.
type threadResponder struct {
	a         *Adapter
	channel   string
	user      string
	team      string // the student's team: a streamed message's recipient
	thread    string // ts of the thread's parent
	assistant bool   // an assistant thread: it has a status line
	// posts, set in a queue worker (UsePostLog), records the answer's
	// post or streamed message: a later attempt finding it posts no other.
	posts  bot.PostLog
	stream *ThreadStream // nil until the first Stream
}

var (
	_ bot.Responder  = (*threadResponder)(nil)
	_ bot.Streamer   = (*threadResponder)(nil)
	_ bot.Addressed  = (*threadResponder)(nil)
	_ bot.PostLogger = (*threadResponder)(nil)
)

// postKindThread is the bot.PostLog kind of an answer posted in a thread.
const postKindThread = "slack_thread"

// UsePostLog makes FollowUp post the whole answer as one message, record
// it in l, and post nothing when l holds one already; a streamed message
// is recorded there too, and a later attempt finishes it: a retried queued
// job does not answer twice.
func (t *threadResponder) UsePostLog(l bot.PostLog) {
	t.posts = l
	if t.stream != nil {
		t.stream.posts = l
	}
}

// threadStream returns the ThreadStream of the answer, created once.
func (t *threadResponder) threadStream() *ThreadStream {
	if t.stream == nil {
		t.stream = t.a.NewStream(Thread{Channel: t.channel, TS: t.thread, User: t.user, Team: t.team}, t.posts)
	}
	return t.stream
}

// Stream shows the answer so far in the thread (ThreadStream.Stream).
func (t *threadResponder) Stream(ctx context.Context, text string) {
	t.threadStream().Stream(ctx, text)
}

// streamed reports whether the answer has a streamed message, this
// attempt's or, in the PostLog, an earlier one's: FollowUp finishes it.
func (t *threadResponder) streamed() bool {
	if t.stream != nil && t.stream.ts != "" {
		return true
	}
	return t.posts != nil && t.posts.Posted(postKindStream) != ""
}

// Address says where the answer goes: channel, user, thread and whether it
// is an assistant thread. It holds no secret.
func (t *threadResponder) Address() (json.RawMessage, error) {
	return json.Marshal(address{Channel: t.channel, User: t.user, Team: t.team, Thread: t.thread, Assistant: t.assistant})
}

// reopenThread is Reopen for an address a threadResponder made.
func (a *Adapter) reopenThread(c bot.Command, ad address) (bot.Responder, error) {
	if ad.Channel == "" {
		ad.Channel = c.Channel
	}
	if ad.User == "" {
		ad.User = c.User
	}
	if ad.Channel == "" || ad.User == "" {
		return nil, fmt.Errorf("slack: reopen %s: the address has no channel or user", c.InteractionID)
	}
	if a.cfg.BotToken == "" {
		return nil, fmt.Errorf("slack: reopen %s: answering in a thread needs SLACK_BOT_TOKEN", c.InteractionID)
	}
	if ad.Team == "" {
		ad.Team = c.Workspace
	}
	return &threadResponder{a: a, channel: ad.Channel, user: ad.User, team: ad.Team, thread: ad.Thread, assistant: ad.Assistant}, nil
}

// Ack shows StatusText in an assistant thread (Slack clears it when the
// answer is posted); elsewhere nothing: the event was answered already.
// A refused status (an older workspace, a missing scope) is logged, not
// returned: the answer still comes.
func (t *threadResponder) Ack(ctx context.Context, _ bot.Reply) error {
	if !t.assistant {
		return nil
	}
	if err := t.a.api.SetAssistantThreadsStatusContext(ctx, slackgo.AssistantThreadsSetStatusParameters{
		ChannelID: t.channel, ThreadTS: t.thread, Status: StatusText,
	}); err != nil {
		t.a.log.LogAttrs(ctx, slog.LevelInfo, "slack: assistant status refused", slog.Any("err", err))
	}
	return nil
}

func (t *threadResponder) Respond(ctx context.Context, r bot.Reply) error { return t.FollowUp(ctx, r) }

// FollowUp posts the answer in the thread, escaped and split like every
// answer. An ephemeral reply in a channel (a refusal meant for the student
// only) goes with chat.postEphemeral in the thread; in a direct message
// the student alone sees it anyway. When part of the answer was streamed,
// FollowUp finishes that message with the reply instead (an ephemeral
// one replaces its text), so no half answer stays in the thread. An /ask
// answer (r.Feedback) ends with the feedback buttons: under the streamed
// text, or on its last posted message.
func (t *threadResponder) FollowUp(ctx context.Context, r bot.Reply) error {
	text := r.Text
	if r.File != nil && r.File.Inline != "" {
		text += "\n\n" + r.File.Inline
	}
	if t.streamed() {
		s := t.threadStream()
		if r.Ephemeral {
			s.replace = true
		}
		s.SetFeedback(r.Feedback)
		return s.Finish(ctx, text)
	}
	if t.posts != nil {
		return t.postOnce(ctx, r, text)
	}
	parts := Messages(text)
	for i, p := range parts {
		opts := []slackgo.MsgOption{slackgo.MsgOptionText(p, false), slackgo.MsgOptionTS(t.thread)}
		if i == len(parts)-1 {
			opts = append(opts, msgBlocks(feedbackBlocks(r, p))...)
		}
		var err error
		if r.Ephemeral && !t.isDM() {
			_, err = t.a.api.PostEphemeralContext(ctx, t.channel, t.user, opts...)
		} else {
			_, _, err = t.a.api.PostMessageContext(ctx, t.channel, opts...)
		}
		if err != nil {
			return fmt.Errorf("slack: answer %d in thread: %w", i+1, err)
		}
	}
	return nil
}

// isDM reports whether the channel is a direct message (ids start with D).
func (t *threadResponder) isDM() bool { return len(t.channel) > 0 && t.channel[0] == 'D' }

// postOnce posts text as one message (at most MaxFollowUpLen characters,
// as a reopened slash command's answer) in the thread, unless the post log
// holds one, and records it.
func (t *threadResponder) postOnce(ctx context.Context, r bot.Reply, text string) error {
	if t.posts.Posted(postKindThread) != "" {
		return nil
	}
	raw := chunk.Split(text, MaxFollowUpLen, 1, escapedLen)[0]
	opts := append([]slackgo.MsgOption{slackgo.MsgOptionText(Escape(raw), false), slackgo.MsgOptionTS(t.thread)},
		msgBlocks(answerBlocks(r, raw))...)
	var (
		ts  string
		err error
	)
	if r.Ephemeral && !t.isDM() {
		ts, err = t.a.api.PostEphemeralContext(ctx, t.channel, t.user, opts...)
	} else {
		_, ts, err = t.a.api.PostMessageContext(ctx, t.channel, opts...)
	}
	if err != nil {
		return fmt.Errorf("slack: answer in thread: %w", err)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bot.RecordPostTimeout)
	defer cancel()
	if err := t.posts.RecordPost(rctx, postKindThread, ts); err != nil {
		t.a.log.LogAttrs(ctx, slog.LevelWarn, "slack: recording a thread answer failed", slog.Any("err", err))
	}
	return nil
}

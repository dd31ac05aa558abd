package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

// maxThreadContexts is how many assistant threads' contexts an Adapter
// remembers; past it, the thread whose context was first remembered is
// forgotten.
const maxThreadContexts = 10000

// threadKey names an assistant thread: its direct message channel and
// the ts of its parent message.
type threadKey struct{ channel, ts string }

// threadContexts remembers, per assistant thread, the channel the student
// was viewing when the thread started (assistant_thread_started) or last
// moved to (assistant_thread_context_changed): a question in the thread
// is answered from that channel's course. It is this process's cache;
// the context is also kept in Slack, in the metadata of classbot's
// greeting in the thread (see storedContext), which a process that did not
// receive the thread's events (a restart, another replica) reads once.
// It is safe for concurrent use.
type threadContexts struct {
	mu    sync.Mutex
	m     map[threadKey]threadContext
	order []threadKey // insertion order, for eviction
}

// threadContext is what is remembered of one assistant thread.
type threadContext struct {
	viewing  string // the channel the student is viewing; "": none
	course   string // the course its suggested prompts name; "": not set yet
	greeting string // ts of classbot's greeting, whose metadata keeps viewing; "": not known
}

// remember records th's context channel, if it has one other than the
// thread's own channel, and reports whether it differs from the one
// remembered before.
func (t *threadContexts) remember(th slackevents.AssistantThread) bool {
	viewing := th.Context.ChannelID
	if th.ChannelID == "" || th.ThreadTimeStamp == "" || viewing == "" || viewing == th.ChannelID {
		return false
	}
	k := threadKey{th.ChannelID, th.ThreadTimeStamp}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.m[k]
	t.putLocked(k, threadContext{viewing: viewing, course: old.course, greeting: old.greeting})
	return old.viewing != viewing
}

// putLocked stores c for k, forgetting the oldest thread past
// maxThreadContexts; t.mu must be held.
func (t *threadContexts) putLocked(k threadKey, c threadContext) {
	if t.m == nil {
		t.m = make(map[threadKey]threadContext)
	}
	if _, ok := t.m[k]; !ok {
		t.order = append(t.order, k)
	}
	t.m[k] = c
	for len(t.order) > maxThreadContexts {
		delete(t.m, t.order[0])
		t.order = t.order[1:]
	}
}

// lookup returns what is remembered of the thread ts of channel, and
// whether anything is (a thread read from Slack without a context is
// remembered with viewing "").
func (t *threadContexts) lookup(channel, ts string) (threadContext, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.m[threadKey{channel, ts}]
	return c, ok
}

// found records what storedContext read of the thread ts of channel,
// unless an event has given its context meanwhile.
func (t *threadContexts) found(channel, ts, viewing, greeting string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := threadKey{channel, ts}
	c, ok := t.m[k]
	if ok && c.viewing != "" {
		if c.greeting == "" {
			c.greeting = greeting
			t.m[k] = c
		}
		return
	}
	t.putLocked(k, threadContext{viewing: viewing, greeting: greeting, course: c.course})
}

// setGreeting records the ts of classbot's greeting in the thread ts of
// channel.
func (t *threadContexts) setGreeting(channel, ts, greeting string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := threadKey{channel, ts}
	c := t.m[k]
	c.greeting = greeting
	t.putLocked(k, c)
}

// setCourse records that the suggested prompts of the thread ts of
// channel name course, and reports whether that changes what they named.
// A thread not remembered (no context) is not recorded, and reports true.
func (t *threadContexts) setCourse(channel, ts, course string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := threadKey{channel, ts}
	c, ok := t.m[k]
	if !ok || c.viewing == "" {
		return true
	}
	if c.course == course {
		return false
	}
	c.course = course
	t.m[k] = c
	return true
}

// contextEventType is the event_type of the message metadata in which
// classbot keeps an assistant thread's context, on its greeting.
const contextEventType = "classbot_assistant_context"

// contextMetadata is the metadata that keeps viewing, the channel the
// student is viewing.
func contextMetadata(viewing string) slackgo.SlackMetadata {
	return slackgo.SlackMetadata{EventType: contextEventType, EventPayload: map[string]any{"channel_id": viewing}}
}

// storedContext reads the context kept in the metadata of classbot's
// greeting in the assistant thread ts of channel (conversations.replies,
// needing im:history): the channel the student is viewing and the
// greeting's ts, "" for what it does not find.
func (a *Adapter) storedContext(ctx context.Context, channel, ts string) (viewing, greeting string, err error) {
	msgs, _, _, err := a.api.GetConversationRepliesContext(ctx, &slackgo.GetConversationRepliesParameters{
		ChannelID: channel, Timestamp: ts, Limit: 20, IncludeAllMetadata: true,
	})
	if err != nil {
		return "", "", fmt.Errorf("conversations.replies: %w", err)
	}
	for _, m := range msgs {
		if m.Metadata.EventType != contextEventType || m.BotID == "" {
			continue
		}
		v, _ := m.Metadata.EventPayload["channel_id"].(string)
		return v, m.Timestamp, nil
	}
	return "", "", nil
}

// viewing returns the channel the student is viewing in the assistant
// thread ts of channel: remembered, or else read once from the thread's
// greeting (storedContext) and remembered. "" when there is none or it
// cannot be read (logged).
func (a *Adapter) viewing(ctx context.Context, channel, ts string) string {
	if c, ok := a.contexts.lookup(channel, ts); ok {
		return c.viewing
	}
	v, g, err := a.storedContext(ctx, channel, ts)
	if err != nil {
		a.log.LogAttrs(ctx, slog.LevelInfo, "slack: reading an assistant thread's context failed; answering from the direct message's course",
			slog.String("channel", channel), slog.Any("err", err))
		var refused slackgo.SlackErrorResponse
		if !errors.As(err, &refused) {
			return "" // a timeout, a 5xx: the next question tries again
		}
		v, g = "", "" // Slack's answer (thread_not_found, missing_scope): no context for this thread
	}
	a.contexts.found(channel, ts, v, g)
	if c, ok := a.contexts.lookup(channel, ts); ok {
		return c.viewing
	}
	return v
}

// keepContext writes th's context into the metadata of classbot's
// greeting in the thread (chat.update), so that a process that did not
// see this event reads it there. A failure is logged: this process still
// has it.
func (a *Adapter) keepContext(ctx context.Context, th slackevents.AssistantThread) {
	c, _ := a.contexts.lookup(th.ChannelID, th.ThreadTimeStamp)
	if c.viewing == "" {
		return
	}
	greeting := c.greeting
	if greeting == "" {
		_, g, err := a.storedContext(ctx, th.ChannelID, th.ThreadTimeStamp)
		if err != nil || g == "" {
			a.log.LogAttrs(ctx, slog.LevelInfo, "slack: no greeting to keep an assistant thread's context on",
				slog.String("channel", th.ChannelID), slog.Any("err", err))
			return
		}
		greeting = g
		a.contexts.setGreeting(th.ChannelID, th.ThreadTimeStamp, g)
	}
	if _, _, _, err := a.api.UpdateMessageContext(ctx, th.ChannelID, greeting,
		slackgo.MsgOptionText(Escape(Greeting), false), slackgo.MsgOptionMetadata(contextMetadata(c.viewing))); err != nil {
		a.log.LogAttrs(ctx, slog.LevelInfo, "slack: keeping an assistant thread's context failed",
			slog.String("channel", th.ChannelID), slog.Any("err", err))
	}
}

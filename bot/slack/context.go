package slack

import (
	"sync"

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
// is answered from that channel's course. It lives in this process's
// memory only: after a restart, or on a replica that did not receive the
// thread's events, a thread has no context and its questions are answered
// from the course of the direct message's class (the workspace's course,
// else the default one) until the student moves to another channel.
// It is safe for concurrent use.
type threadContexts struct {
	mu    sync.Mutex
	m     map[threadKey]threadContext
	order []threadKey // insertion order, for eviction
}

// threadContext is what is remembered of one assistant thread.
type threadContext struct {
	viewing string // the channel the student is viewing
	course  string // the course its suggested prompts name; "": not set yet
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
	if t.m == nil {
		t.m = make(map[threadKey]threadContext)
	}
	old, ok := t.m[k]
	if !ok {
		t.order = append(t.order, k)
	}
	t.m[k] = threadContext{viewing: viewing, course: old.course}
	for len(t.order) > maxThreadContexts {
		delete(t.m, t.order[0])
		t.order = t.order[1:]
	}
	return old.viewing != viewing
}

// viewing returns the channel the student was viewing in the assistant
// thread ts of channel, or "" when it is not known.
func (t *threadContexts) viewing(channel, ts string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[threadKey{channel, ts}].viewing
}

// setCourse records that the suggested prompts of the thread ts of
// channel name course, and reports whether that changes what they named.
// A thread not remembered (no context) is not recorded, and reports true.
func (t *threadContexts) setCourse(channel, ts, course string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := threadKey{channel, ts}
	c, ok := t.m[k]
	if !ok {
		return true
	}
	if c.course == course {
		return false
	}
	c.course = course
	t.m[k] = c
	return true
}

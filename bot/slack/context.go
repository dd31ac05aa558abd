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
	m     map[threadKey]string
	order []threadKey // insertion order, for eviction
}

// remember records th's context channel, if it has one other than the
// thread's own channel.
func (t *threadContexts) remember(th slackevents.AssistantThread) {
	viewing := th.Context.ChannelID
	if th.ChannelID == "" || th.ThreadTimeStamp == "" || viewing == "" || viewing == th.ChannelID {
		return
	}
	k := threadKey{th.ChannelID, th.ThreadTimeStamp}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[threadKey]string)
	}
	if _, ok := t.m[k]; !ok {
		t.order = append(t.order, k)
	}
	t.m[k] = viewing
	for len(t.order) > maxThreadContexts {
		delete(t.m, t.order[0])
		t.order = t.order[1:]
	}
}

// viewing returns the channel the student was viewing in the assistant
// thread ts of channel, or "" when it is not known.
func (t *threadContexts) viewing(channel, ts string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[threadKey{channel, ts}]
}

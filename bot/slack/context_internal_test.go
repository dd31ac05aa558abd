package slack

import (
	"fmt"
	"testing"

	"github.com/slack-go/slack/slackevents"
)

// The contexts kept are bounded: past maxThreadContexts threads, the
// oldest is forgotten; a thread's change of context updates it in place.
func TestThreadContextsAreBounded(t *testing.T) {
	var c threadContexts
	th := func(i int, viewing string) slackevents.AssistantThread {
		return slackevents.AssistantThread{ChannelID: "D0STUDENT", ThreadTimeStamp: fmt.Sprintf("1700000000.%06d", i),
			Context: slackevents.AssistantThreadContext{ChannelID: viewing}}
	}
	c.remember(th(0, "C0FIRST"))
	c.remember(th(0, "C0MOVED"))
	if got := viewingOf(&c, "D0STUDENT", "1700000000.000000"); got != "C0MOVED" {
		t.Fatalf("viewing %q, want the channel the thread moved to", got)
	}
	c.remember(th(1, "D0STUDENT")) // the direct message itself: no context
	if got := viewingOf(&c, "D0STUDENT", "1700000000.000001"); got != "" {
		t.Fatalf("viewing %q for a thread viewing its own channel, want none", got)
	}
	for i := 2; i <= maxThreadContexts+1; i++ {
		c.remember(th(i, "C0CLASS"))
	}
	if len(c.m) != maxThreadContexts || len(c.order) != maxThreadContexts {
		t.Fatalf("%d contexts kept (%d in order), want %d", len(c.m), len(c.order), maxThreadContexts)
	}
	if got := viewingOf(&c, "D0STUDENT", "1700000000.000000"); got != "" {
		t.Fatalf("the oldest thread's context is still kept: %q", got)
	}
	if got := viewingOf(&c, "D0STUDENT", fmt.Sprintf("1700000000.%06d", maxThreadContexts+1)); got != "C0CLASS" {
		t.Fatalf("the newest thread's context %q, want C0CLASS", got)
	}
}

func viewingOf(t *threadContexts, channel, ts string) string {
	c, _ := t.lookup(channel, ts)
	return c.viewing
}

// What storedContext read never overrides a context an event gave; a
// thread read without a context is remembered as such (no second read).
func TestThreadContextsFound(t *testing.T) {
	var c threadContexts
	c.remember(slackevents.AssistantThread{ChannelID: "D1", ThreadTimeStamp: "1.1", Context: slackevents.AssistantThreadContext{ChannelID: "C0EVENT"}})
	c.found("D1", "1.1", "C0STORED", "1.2")
	if got, _ := c.lookup("D1", "1.1"); got.viewing != "C0EVENT" || got.greeting != "1.2" {
		t.Fatalf("%+v, want the event's context and the greeting's ts", got)
	}
	c.found("D1", "2.1", "", "")
	if got, ok := c.lookup("D1", "2.1"); !ok || got.viewing != "" {
		t.Fatalf("%+v %v, want a thread known to have no context", got, ok)
	}
	if !c.setCourse("D1", "2.1", "cs101") || !c.setCourse("D1", "1.1", "cs101") || c.setCourse("D1", "1.1", "cs101") {
		t.Fatal("setCourse: want true for a thread without context or a new course, false for the same course")
	}
}

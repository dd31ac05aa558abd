package slack

import (
	"context"
	"html"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/classbot/classbot/agent"
	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/slack/slacktest"
	"github.com/classbot/classbot/store"
)

const (
	streamChannel = "C0CLASS01"
	streamThread  = "1700000000.000001"
)

func streamAdapter(t *testing.T) (*Adapter, *slacktest.Server) {
	t.Helper()
	srv := slacktest.New()
	t.Cleanup(srv.Close)
	a, err := New(Config{BotToken: "xoxb-test", APIURL: srv.APIURL, StreamInterval: time.Nanosecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return a, srv
}

var thread = Thread{Channel: streamChannel, TS: streamThread, User: "U0STUDENT", Team: "T0A1B2C3D"}

// wholeEntities matches a chunk in which every & starts a whole entity.
var wholeEntities = regexp.MustCompile(`^([^&<>]|&amp;|&lt;|&gt;)*$`)

// checkChunks fails the test unless every chunk of m is whole escaped
// units and the chunks joined show final.
func checkChunks(t *testing.T, m slacktest.Streamed, final string) {
	t.Helper()
	for _, c := range m.Chunks {
		if !wholeEntities.MatchString(c) {
			t.Errorf("chunk %q splits an entity or holds a raw <, > or &", c)
		}
	}
	if got := strings.Join(m.Chunks, ""); got != Escape(final) {
		t.Errorf("chunks joined %q, want %q", got, Escape(final))
	}
}

// A model that writes "<!chan" then "nel>" never lets <!channel> through:
// each chunk is escaped text that ended where the model's did.
func TestStreamEscapesAcrossChunks(t *testing.T) {
	a, srv := streamAdapter(t)
	s := a.NewStream(thread, nil)
	ctx := t.Context()
	for _, text := range []string{"Hi <!chan", "Hi <!channel> & <@U1", "Hi <!channel> & <@U1> &amp"} {
		s.Stream(ctx, text)
	}
	final := "Hi <!channel> & <@U1> &amp; bye."
	if err := s.Finish(ctx, final); err != nil {
		t.Fatal(err)
	}
	got := srv.Streamed(streamChannel)
	if len(got) != 1 {
		t.Fatalf("%d messages, want 1 streamed", len(got))
	}
	m := got[0]
	if !m.Stopped || m.ThreadTS != streamThread || m.RecipientUserID != "U0STUDENT" || m.RecipientTeamID != "T0A1B2C3D" {
		t.Errorf("message %+v: want stopped, in the thread, with the recipient's ids", m)
	}
	if len(m.Chunks) != 4 {
		t.Errorf("chunks %q, want three appends and the stop's", m.Chunks)
	}
	checkChunks(t, m, final)
}

// In a direct message no recipient ids are sent (Slack wants them only
// in channels).
func TestStreamInDirectMessage(t *testing.T) {
	a, srv := streamAdapter(t)
	th := Thread{Channel: "D0STUDENT", TS: streamThread, User: "U0STUDENT", Team: "T0A1B2C3D"}
	s := a.NewStream(th, nil)
	s.Stream(t.Context(), "Hello")
	if err := s.Finish(t.Context(), "Hello there."); err != nil {
		t.Fatal(err)
	}
	m := srv.Streamed("D0STUDENT")
	if len(m) != 1 || m[0].RecipientUserID != "" || m[0].Text != "Hello there." {
		t.Errorf("messages %+v", m)
	}
}

// When Slack refuses the stream (the bot is not in the channel, a scope is
// missing) the answer is posted whole, once, in the thread.
func TestStreamRefusedFallsBackToOnePost(t *testing.T) {
	for _, code := range []string{"not_in_channel", "missing_scope", "unknown_method"} {
		t.Run(code, func(t *testing.T) {
			a, srv := streamAdapter(t)
			srv.FailStreams(code)
			s := a.NewStream(thread, nil)
			s.Stream(t.Context(), "Due <Fri")
			s.Stream(t.Context(), "Due <Friday>")
			if err := s.Finish(t.Context(), "Due <Friday>."); err != nil {
				t.Fatal(err)
			}
			m := srv.Streamed(streamChannel)
			if len(m) != 1 || m[0].Text != "Due &lt;Friday&gt;." || m[0].ThreadTS != streamThread {
				t.Errorf("messages %+v, want one post of the escaped answer in the thread", m)
			}
			if n := len(srv.APICalls("chat.startStream")); n != 1 {
				t.Errorf("%d chat.startStream calls, want 1: a refusal is not retried per chunk", n)
			}
		})
	}
}

// An answer longer than a streamed message takes goes on in the thread:
// no message is over MaxStreamLen and nothing is lost.
func TestStreamPastTheLimitGoesOnInTheThread(t *testing.T) {
	a, srv := streamAdapter(t)
	s := a.NewStream(thread, nil)
	final := strings.TrimSpace(strings.Repeat("a<b ", 3500)) // 14,000 characters, more once escaped
	for i := 1000; i < len(final); i += 1000 {
		s.Stream(t.Context(), final[:i])
	}
	if err := s.Finish(t.Context(), final); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Streamed(streamChannel)
	if len(msgs) < 2 || !msgs[0].Stopped {
		t.Fatalf("%d messages, want the stopped stream and more", len(msgs))
	}
	var all []string
	for _, m := range msgs {
		if n := len([]rune(m.Text)); n > MaxStreamLen {
			t.Errorf("message of %d characters", n)
		}
		if !wholeEntities.MatchString(m.Text) {
			t.Errorf("message splits an entity")
		}
		all = append(all, strings.Fields(html.UnescapeString(m.Text))...)
	}
	if strings.Join(all, " ") != final {
		t.Error("the messages joined are not the answer")
	}
}

// memPostLog is a queued command's PostLog, kept across attempts.
type memPostLog struct {
	mu sync.Mutex
	m  map[string]string
}

func (l *memPostLog) Posted(kind string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m[kind]
}

func (l *memPostLog) RecordPost(_ context.Context, kind, id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]string{}
	}
	l.m[kind] = id
	return nil
}

// A retried attempt after a partial stream finishes that message with the
// whole answer; it never starts a second one.
func TestStreamRetryFinishesTheSameMessage(t *testing.T) {
	a, srv := streamAdapter(t)
	posts := &memPostLog{}
	first := a.NewStream(thread, posts)
	first.Stream(t.Context(), "The exam is on")
	// The attempt ends here (a crash, a timeout): no Finish.
	if posts.Posted(postKindStream) == "" {
		t.Fatal("the streamed message's ts was not recorded")
	}
	second := a.NewStream(thread, posts)
	second.Stream(t.Context(), "The exam is in")
	second.Stream(t.Context(), "The exam is in May")
	if err := second.Finish(t.Context(), "The exam is in May."); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Streamed(streamChannel)
	if len(msgs) != 1 || msgs[0].Text != "The exam is in May." || !msgs[0].Stopped {
		t.Errorf("messages %+v, want the one message, stopped, showing the answer", msgs)
	}
}

// A queued retry whose first attempt fell back to a post replaces that
// post rather than posting again.
func TestStreamRetryAfterFallbackReplacesThePost(t *testing.T) {
	a, srv := streamAdapter(t)
	srv.FailStreams("not_in_channel")
	posts := &memPostLog{}
	if err := a.NewStream(thread, posts).Finish(t.Context(), "First try."); err != nil {
		t.Fatal(err)
	}
	if err := a.NewStream(thread, posts).Finish(t.Context(), "Second try."); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Streamed(streamChannel)
	if len(msgs) != 1 || msgs[0].Text != "Second try." {
		t.Errorf("messages %+v, want one, replaced", msgs)
	}
}

// streamAgent streams parts; after the first it waits until Slack has it.
type streamAgent struct {
	parts      []string
	afterFirst func() error
}

func (s *streamAgent) Run(ctx context.Context, a agent.Agent, input string) (agent.Result, error) {
	return s.RunStream(ctx, a, input, func(string) {})
}

func (s *streamAgent) RunStream(_ context.Context, _ agent.Agent, _ string, onText func(string)) (agent.Result, error) {
	var sb strings.Builder
	for i, p := range s.parts {
		sb.WriteString(p)
		onText(sb.String())
		if i == 0 && s.afterFirst != nil {
			if err := s.afterFirst(); err != nil {
				return agent.Result{}, err
			}
		}
	}
	return agent.Result{Output: sb.String()}, nil
}

// Through the Dispatcher, a question asked in a thread is answered there,
// streamed: the first text is in Slack before the model has finished.
func TestThreadResponderStreamsThroughTheDispatcher(t *testing.T) {
	a, srv := streamAdapter(t)
	ag := &streamAgent{parts: []string{"Homework 2 ", "is due <!here> ", "Friday."}}
	ag.afterFirst = func() error {
		return srv.Wait(10*time.Second, func() bool { return len(srv.APICalls("chat.appendStream")) > 0 })
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	d := bot.NewDispatcher(t.Context(), bot.New(store.NewMemory(), ag, bot.Options{Logger: log}), bot.Config{Mode: bot.ModeAsync, Logger: log})
	t.Cleanup(func() { _ = d.Shutdown(context.WithoutCancel(t.Context())) })
	c := bot.Command{Platform: bot.PlatformSlack, InteractionID: "Ev1", Workspace: "T0A1B2C3D", Channel: streamChannel,
		User: "U0STUDENT", Name: "ask", Text: "when is hw 2 due?"}
	if err := d.Dispatch(t.Context(), c, &threadResponder{a: a, channel: thread.Channel, user: thread.User, team: thread.Team, thread: thread.TS}); err != nil {
		t.Fatal(err)
	}
	final := "Homework 2 is due <!here> Friday."
	if err := srv.Wait(10*time.Second, func() bool {
		m := srv.Streamed(streamChannel)
		return len(m) == 1 && m[0].Stopped
	}); err != nil {
		t.Fatalf("no stopped stream: %v", err)
	}
	m := srv.Streamed(streamChannel)[0]
	checkChunks(t, m, final)
	if m.Chunks[0] != "Homework 2" {
		t.Errorf("first chunk %q", m.Chunks[0])
	}
}

// A queued question whose first attempt streamed part of its answer and
// stopped is answered once: the retry, streaming or not, finishes that
// message rather than posting another.
func TestThreadResponderRetryFinishesTheStream(t *testing.T) {
	a, srv := streamAdapter(t)
	posts := &memPostLog{}
	attempt := func() *threadResponder {
		r := &threadResponder{a: a, channel: thread.Channel, user: thread.User, team: thread.Team, thread: thread.TS}
		r.UsePostLog(posts)
		return r
	}
	first := attempt()
	first.Stream(t.Context(), "Homework 2 is")
	if err := attempt().FollowUp(t.Context(), bot.Reply{Text: "Homework 2 is due Friday.", Feedback: "Ev9"}); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Streamed(streamChannel)
	if len(msgs) != 1 || msgs[0].Text != "Homework 2 is due Friday." || !msgs[0].Stopped {
		t.Errorf("messages %+v, want the one streamed, finished with the answer", msgs)
	}
	// The finished message (replaced by chat.update) shows the answer in
	// its blocks, above the feedback buttons.
	if b := msgs[0].Blocks; slacktest.SectionText(b) != "Homework 2 is due Friday." ||
		len(slacktest.Buttons(b, actionHelpful)) != 1 || len(slacktest.Buttons(b, actionNotHelpful)) != 1 {
		t.Errorf("blocks %s, want the answer and the two buttons", b)
	}
	if n := len(srv.APICalls("chat.postMessage")); n != 0 {
		t.Errorf("%d chat.postMessage calls, want 0", n)
	}
}

package discord_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/classbot/classbot/agent"
	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/discord"
	"github.com/classbot/classbot/bot/discord/discordtest"
	"github.com/classbot/classbot/store"
)

// streamAgent streams parts, one every pace, as a model writing its answer
// would; afterFirst, if set, runs once the first part was handed on.
type streamAgent struct {
	parts      []string
	pace       time.Duration
	afterFirst func(ctx context.Context, question string) error
}

func (s *streamAgent) Run(ctx context.Context, a agent.Agent, input string) (agent.Result, error) {
	return s.RunStream(ctx, a, input, func(string) {})
}

func (s *streamAgent) RunStream(ctx context.Context, _ agent.Agent, input string, onText func(string)) (agent.Result, error) {
	var sb strings.Builder
	for i, p := range s.parts {
		sb.WriteString(p)
		onText(sb.String())
		if i == 0 && s.afterFirst != nil {
			if err := s.afterFirst(ctx, input); err != nil {
				return agent.Result{}, err
			}
		}
		if s.pace > 0 && i < len(s.parts)-1 {
			t := time.NewTimer(s.pace)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return agent.Result{}, ctx.Err()
			}
		}
	}
	return agent.Result{Output: sb.String(), Turns: 1}, nil
}

type streamFixture struct {
	discord *discordtest.Server
	srv     *httptest.Server
	key     ed25519.PrivateKey
	disp    *bot.Dispatcher
}

func streamSetup(t testing.TB, a bot.Agent, interval time.Duration) *streamFixture {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &streamFixture{discord: discordtest.New(), key: priv}
	t.Cleanup(f.discord.Close)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b := bot.New(store.NewMemory(), a, bot.Options{Logger: log})
	f.disp = bot.NewDispatcher(t.Context(), b, bot.Config{Mode: bot.ModeAsync, Logger: log, StudentAskRate: -1}) // one student asks 200 times
	ad, err := discord.New(discord.Config{
		AppID: appID, PublicKey: pub, APIURL: f.discord.APIURL, Dispatcher: f.disp, Logger: log,
		StreamInterval: interval,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(ad.Handler())
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), wait)
		defer cancel()
		if err := f.disp.Shutdown(ctx); err != nil {
			t.Errorf("dispatcher shutdown: %v", err)
		}
	})
	return f
}

// ask posts a signed /ask with question q as interaction id and returns
// the HTTP status.
func (f *streamFixture) ask(t testing.TB, id, q string) int {
	b, err := discordtest.Interaction(payload, id, "token-"+id, "ask", map[string]string{"question": q})
	if err != nil {
		t.Error(err)
		return 0
	}
	req, err := discordtest.NewRequest(t.Context(), f.srv.URL, f.key, time.Now(), b)
	if err != nil {
		t.Error(err)
		return 0
	}
	resp, err := (&http.Client{Timeout: wait}).Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// edits returns the contents of the edits of token's original response, in
// order, failing the test if any of them could ping.
func (f *streamFixture) edits(t *testing.T, token string) []string {
	t.Helper()
	var out []string
	for _, r := range f.discord.Requests() {
		if isEdit(token)(r) {
			if err := discordtest.NoPings(r.Body); err != nil {
				t.Errorf("edit %q: %v", r.Body, err)
			}
			out = append(out, content(t, r))
		}
	}
	return out
}

// The first edit shows the answer's beginning while the model is still
// writing: the stand-in model does not go on until Discord has it.
func TestStreamFirstEditBeforeTheModelFinishes(t *testing.T) {
	var f *streamFixture
	a := &streamAgent{parts: []string{"Homework 2 ", "is due ", "Friday @everyone."}}
	a.afterFirst = func(ctx context.Context, q string) error {
		token := "token-" + strings.TrimPrefix(q, "question ")
		_, err := f.discord.WaitRequest(wait, func(r discordtest.Request) bool {
			return isEdit(token)(r) && strings.Contains(string(r.Body), "Homework 2")
		})
		return err
	}
	f = streamSetup(t, a, time.Millisecond)
	const id = "1200000000000000001"
	if st := f.ask(t, id, "question "+id); st != http.StatusOK {
		t.Fatalf("status %d", st)
	}
	token := "token-" + id
	final := "Homework 2 is due Friday @everyone."
	if err := f.discord.Wait(wait, func() bool {
		e := f.edits(t, token)
		return len(e) > 0 && e[len(e)-1] == final
	}); err != nil {
		t.Fatalf("edits %q: the last is not the whole answer: %v", f.edits(t, token), err)
	}
	if e := f.edits(t, token); e[0] != "Homework 2" {
		t.Errorf("first edit %q, want the answer's first words", e[0])
	}
}

// Edits are spaced by StreamInterval: with an interval longer than the
// whole answer takes, only the first preview and the final edit go out.
func TestStreamEditsAreThrottled(t *testing.T) {
	a := &streamAgent{parts: strings.SplitAfter("one two three four five six seven eight", " ")}
	f := streamSetup(t, a, time.Hour)
	const id = "1200000000000000002"
	if st := f.ask(t, id, "how many?"); st != http.StatusOK {
		t.Fatalf("status %d", st)
	}
	token := "token-" + id
	final := "one two three four five six seven eight"
	if err := f.discord.Wait(wait, func() bool {
		e := f.edits(t, token)
		return len(e) > 0 && e[len(e)-1] == final
	}); err != nil {
		t.Fatal(err)
	}
	if e := f.edits(t, token); len(e) != 2 || e[0] != "one" {
		t.Errorf("edits %q, want the first preview and the final answer", e)
	}
}

// Many answers streamed at once against a stand-in that enforces a
// per-route limit: no request is answered 429, and every answer's last
// edit is the whole answer.
func TestStreamManyAnswersWithinTheRouteLimit(t *testing.T) {
	n := 200
	if testing.Short() {
		n = 50
	}
	parts := strings.SplitAfter(strings.Repeat("word ", 40), " ")
	a := &streamAgent{parts: parts, pace: 2 * time.Millisecond}
	f := streamSetup(t, a, 10*time.Millisecond)
	f.discord.RouteLimit(3, 200*time.Millisecond)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("13%017d", i)
			if st := f.ask(t, id, "q"); st != http.StatusOK {
				t.Errorf("interaction %d: status %d", i, st)
			}
		}()
	}
	wg.Wait()
	final := strings.TrimSpace(strings.Join(parts, ""))
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), time.Minute)
	defer cancel()
	if err := f.disp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	lost := 0
	for i := range n {
		e := f.edits(t, fmt.Sprintf("token-13%017d", i))
		if len(e) == 0 || e[len(e)-1] != final {
			lost++
		}
	}
	if lost != 0 || f.discord.RateLimited() != 0 {
		t.Errorf("%d of %d final edits lost, %d requests answered 429; want 0 and 0", lost, n, f.discord.RateLimited())
	}
}

// The stand-in answers 429 past its route limit, so the test above would
// see a client that ignored the limit.
func TestStandInEnforcesTheRouteLimit(t *testing.T) {
	d := discordtest.New()
	t.Cleanup(d.Close)
	d.RouteLimit(2, time.Hour)
	url := d.APIURL + "webhooks/" + appID + "/tok/messages/@original"
	var codes []int
	for range 3 {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPatch, url, strings.NewReader(`{"content":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
		if resp.Header.Get("X-RateLimit-Reset-After") == "" {
			t.Error("no X-RateLimit-Reset-After")
		}
	}
	if fmt.Sprint(codes) != "[200 200 429]" || d.RateLimited() != 1 {
		t.Errorf("codes %v, %d limited; want [200 200 429], 1", codes, d.RateLimited())
	}
}

// In queue mode a retried attempt after a partial stream edits the same
// original response, which its FollowUp completes: no second message.
func TestStreamRetryInQueueModeEditsTheSameMessage(t *testing.T) {
	w := setupWorker(t, "")
	const id = "1200000000000000009"
	first := w.reopen(id)
	first.(bot.Streamer).Stream(t.Context(), "The exam is on")
	// The attempt ends here: no FollowUp.
	second := w.reopen(id)
	second.(bot.Streamer).Stream(t.Context(), "The exam is in May")
	if err := second.FollowUp(t.Context(), bot.Reply{Text: "The exam is in May."}); err != nil {
		t.Fatal(err)
	}
	edits, followUps := w.webhookCalls("token-" + id)
	if len(followUps) != 0 || len(edits) != 3 {
		t.Fatalf("%d edits, %d follow-ups; want 3 edits of @original and no other message", len(edits), len(followUps))
	}
	if got := content(t, edits[len(edits)-1]); got != "The exam is in May." {
		t.Errorf("last edit %q", got)
	}
}

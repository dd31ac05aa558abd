package discord_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/bwmarrin/discordgo"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/discord"
	"github.com/classbot/classbot/bot/discord/discordtest"
)

const student = "1300000000000000001" // the member in the recorded interaction

// clock is a settable Config.NowFunc.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// logBuffer collects log output from many goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// worker is what a queue worker has: an adapter configured like the one
// that received the interaction, a stand-in for Discord, and a clock.
type worker struct {
	t        *testing.T
	discord  *discordtest.Server
	adapter  *discord.Adapter
	clock    *clock
	logs     *logBuffer
	received time.Time // the commands' ReceivedAt; the clock starts a minute later
}

func setupWorker(t *testing.T, botToken string) *worker {
	t.Helper()
	w := &worker{t: t, discord: discordtest.New(), logs: &logBuffer{}, received: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	t.Cleanup(w.discord.Close)
	w.clock = &clock{now: w.received.Add(time.Minute)}
	var err error
	w.adapter, err = discord.New(discord.Config{
		AppID: appID, BotToken: botToken, APIURL: w.discord.APIURL,
		Logger:  slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		NowFunc: w.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// interaction is a recorded /register interaction with id and token-id.
func (w *worker) interaction(id string) *discordgo.Interaction {
	w.t.Helper()
	var in discordgo.Interaction
	if err := json.Unmarshal(interaction(w.t, id, "register", nil), &in); err != nil {
		w.t.Fatal(err)
	}
	return &in
}

// reopen does what a queue worker does with an interaction received over
// HTTP: Address, then Reopen from that JSON.
func (w *worker) reopen(id string) bot.Responder {
	w.t.Helper()
	in := w.interaction(id)
	raw, err := discord.Responders(w.adapter, in)["http"].(bot.Addressed).Address()
	if err != nil {
		w.t.Fatal(err)
	}
	c := bot.Command{
		Platform: bot.PlatformDiscord, InteractionID: id, Workspace: guildID, Channel: in.ChannelID,
		User: student, Name: "register", ReceivedAt: w.received,
	}
	r, err := w.adapter.Reopen(w.t.Context(), c, raw)
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

// webhookCalls returns the webhook calls made with token: edits and follow-ups.
func (w *worker) webhookCalls(token string) (edits, followUps []discordtest.Request) {
	for _, r := range w.discord.Requests() {
		switch {
		case isEdit(token)(r):
			edits = append(edits, r)
		case strings.HasPrefix(r.Path, "webhooks/"+appID+"/"+token):
			followUps = append(followUps, r)
		}
	}
	return edits, followUps
}

// noSecrets fails if token shows in err or in the logs.
func (w *worker) noSecrets(token string, err error) {
	w.t.Helper()
	if err != nil && strings.Contains(err.Error(), token) {
		w.t.Fatalf("the token shows in the error: %v", err)
	}
	if strings.Contains(w.logs.String(), token) {
		w.t.Fatalf("the token shows in the logs: %s", w.logs.String())
	}
}

// sent is a message as classbot sends it: an edit or a direct message.
type sent struct {
	Content string `json:"content"`
	Embeds  []struct {
		Description string `json:"description"`
	} `json:"embeds"`
}

func decodeSent(t *testing.T, r discordtest.Request) sent {
	t.Helper()
	var m sent
	if err := r.JSON(&m); err != nil {
		t.Fatalf("%s %s body %q: %v", r.Method, r.Path, r.Body, err)
	}
	if err := discordtest.NoPings(r.Body); err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.Path, err)
	}
	return m
}

func TestDiscordAddressReopensToTheSameToken(t *testing.T) {
	w := setupWorker(t, "")
	const id = "1200000000000000101"
	for kind, r := range discord.Responders(w.adapter, w.interaction(id)) {
		t.Run(kind, func(t *testing.T) {
			a, ok := r.(bot.Addressed)
			if !ok {
				t.Fatalf("%T does not implement bot.Addressed", r)
			}
			raw, err := a.Address()
			if err != nil {
				t.Fatal(err)
			}
			if len(raw) > 400 {
				t.Errorf("address is %d bytes, want a small object: %s", len(raw), raw)
			}
			for _, want := range []string{appID, "token-" + id, id, "1100000000000000003", student, guildID} {
				if !bytes.Contains(raw, []byte(`"`+want+`"`)) {
					t.Errorf("address %s lacks %q", raw, want)
				}
			}
		})
	}

	r := w.reopen(id)
	if err := r.FollowUp(t.Context(), bot.Reply{Text: "Welcome, Ada! @everyone"}); err != nil {
		t.Fatal(err)
	}
	edits, followUps := w.webhookCalls("token-" + id)
	if len(edits) != 1 || len(followUps) != 0 {
		t.Fatalf("%d edits of @original and %d other webhook calls, want 1 and 0", len(edits), len(followUps))
	}
	if m := decodeSent(t, edits[0]); m.Content != "Welcome, Ada! @everyone" || len(m.Embeds) != 0 {
		t.Fatalf("edit %+v, want the answer as content", m)
	}
	if r.Ack(t.Context(), bot.Reply{}) == nil || r.Respond(t.Context(), bot.Reply{Text: "x"}) == nil {
		t.Fatal("a reopened Responder's Ack and Respond succeeded; the first response was given long ago")
	}
	if n := len(w.discord.Requests()); n != 1 {
		t.Fatalf("Ack or Respond called Discord: %d requests", n)
	}
}

func TestDiscordReopenedFollowUpTwiceEditsTheSameMessage(t *testing.T) {
	w := setupWorker(t, "test-bot-token")
	const id = "1200000000000000102"
	long := strings.Repeat("word ", 600) // 3,000 characters: content and an embed
	// A job that edited, crashed before recording it, and ran again with
	// a shorter answer: the second edit must also clear the first's embeds.
	for _, text := range []string{long, "Welcome, Ada! (second run)"} {
		if err := w.reopen(id).FollowUp(t.Context(), bot.Reply{Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	edits, followUps := w.webhookCalls("token-" + id)
	if len(edits) != 2 || len(followUps) != 0 {
		t.Fatalf("%d edits of @original and %d follow-up messages, want 2 and 0", len(edits), len(followUps))
	}
	if m := decodeSent(t, edits[0]); len(m.Embeds) != 1 {
		t.Fatalf("first edit has %d embeds, want 1", len(m.Embeds))
	}
	var last struct {
		Content string           `json:"content"`
		Embeds  *json.RawMessage `json:"embeds"`
	}
	if err := edits[1].JSON(&last); err != nil {
		t.Fatal(err)
	}
	if last.Content != "Welcome, Ada! (second run)" || last.Embeds == nil || string(*last.Embeds) != "[]" {
		t.Fatalf("second edit %s, want the new content and \"embeds\":[]", edits[1].Body)
	}
	if dms := w.discord.DirectMessages(student); len(dms) != 0 {
		t.Fatalf("%d direct messages, want none", len(dms))
	}
}

func TestDiscordReopenedLongAnswerIsOneEdit(t *testing.T) {
	w := setupWorker(t, "")
	const id = "1200000000000000103"
	text := strings.Repeat("Office hours are on Tuesday in room 4, bring your laptop. 🎓\n", 400) // ~24,000 units
	if err := w.reopen(id).FollowUp(t.Context(), bot.Reply{Text: text}); err != nil {
		t.Fatal(err)
	}
	edits, followUps := w.webhookCalls("token-" + id)
	if len(edits) != 1 || len(followUps) != 0 {
		t.Fatalf("%d edits and %d follow-up messages, want the whole answer in 1 edit", len(edits), len(followUps))
	}
	m := decodeSent(t, edits[0])
	checkLimits(t, m.Content, embedTexts(m))
	if !strings.HasPrefix(m.Content, "Office hours are on Tuesday") || len(m.Embeds) < 2 {
		t.Fatalf("content %.40q and %d embeds: want the answer's start and the rest in embeds", m.Content, len(m.Embeds))
	}
	if got := m.Embeds[len(m.Embeds)-1].Description; !strings.HasSuffix(got, "…") {
		t.Fatalf("last embed ends %q, want the cut marked with …", got[max(0, len(got)-20):])
	}
}

func embedTexts(m sent) []string {
	var out []string
	for _, e := range m.Embeds {
		out = append(out, e.Description)
	}
	return out
}

func units(s string) int { return len(utf16.Encode([]rune(s))) }

// checkLimits fails unless content and embeds fit Discord's limits.
func checkLimits(t *testing.T, content string, embeds []string) {
	t.Helper()
	if units(content) > discord.MaxMessageLen {
		t.Fatalf("content has %d units, over %d", units(content), discord.MaxMessageLen)
	}
	if len(embeds) > discord.MaxEmbeds {
		t.Fatalf("%d embeds, over %d", len(embeds), discord.MaxEmbeds)
	}
	sum := 0
	for i, e := range embeds {
		if e == "" || units(e) > discord.MaxEmbedLen {
			t.Fatalf("embed %d has %d units", i, units(e))
		}
		sum += units(e)
	}
	if sum > discord.MaxEmbedsLenSum {
		t.Fatalf("embeds have %d units together, over %d", sum, discord.MaxEmbedsLenSum)
	}
}

func TestOneMessage(t *testing.T) {
	tests := []struct {
		name       string
		text       string
		wantEmbeds int
		wantCut    bool
	}{
		{"empty", "", 0, false},
		{"short", "Welcome!", 0, false},
		{"exactly content", strings.Repeat("a", discord.MaxMessageLen), 0, false},
		{"one embed", strings.Repeat("abc ", 1000), 1, false},
		{"two embeds", strings.Repeat("abcd ", 1600), 2, false},
		{"cut", strings.Repeat("abcd ", 3000), 2, true},
		{"one long word", strings.Repeat("x", 20000), 2, true},
		{"astral runes", strings.Repeat("🎓", 9000), 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			content, embeds := discord.OneMessage(tt.text)
			if embeds == nil {
				t.Fatal("embeds is nil, want an empty list (it clears an earlier edit's)")
			}
			checkLimits(t, content, embeds)
			if len(embeds) != tt.wantEmbeds {
				t.Fatalf("%d embeds, want %d", len(embeds), tt.wantEmbeds)
			}
			all := strings.Join(append([]string{content}, embeds...), "")
			cut := strings.HasSuffix(all, "…")
			if cut != tt.wantCut {
				t.Fatalf("cut %v, want %v", cut, tt.wantCut)
			}
			if !cut && strings.Join(strings.Fields(strings.Join(append([]string{content}, embeds...), " ")), " ") != strings.Join(strings.Fields(tt.text), " ") {
				t.Fatal("text lost without a cut")
			}
		})
	}
}

func TestDiscordReopenedExpiry(t *testing.T) {
	tests := []struct {
		name     string
		late     time.Duration // how long after the interaction the worker runs
		status   int           // what the webhook answers, if not 0
		wantEdit bool          // an edit reached Discord first
	}{
		{"window passed", discord.TokenLife - discord.ExpiryMargin + time.Second, 0, false},
		{"window nearly over", discord.TokenLife - 10*time.Second, 0, false},
		{"404 Unknown Webhook", 5 * time.Minute, http.StatusNotFound, true},
		{"401 Invalid Webhook Token", 5 * time.Minute, http.StatusUnauthorized, true},
	}
	for _, tt := range tests {
		for _, withToken := range []bool{true, false} {
			name, token := tt.name+"/no bot token", ""
			if withToken {
				name, token = tt.name+"/bot token", "test-bot-token"
			}
			t.Run(name, func(t *testing.T) {
				w := setupWorker(t, token)
				const id = "1200000000000000104"
				if tt.status != 0 {
					w.discord.FailWebhooks("token-"+id, tt.status)
				}
				r := w.reopen(id)
				w.clock.set(w.received.Add(tt.late))
				err := r.FollowUp(t.Context(), bot.Reply{Text: "Welcome, Ada! Your email ada@example.com is saved. @everyone", Ephemeral: true})

				edits, followUps := w.webhookCalls("token-" + id)
				if len(edits) != map[bool]int{true: 1, false: 0}[tt.wantEdit] || len(followUps) != 0 {
					t.Fatalf("%d edits and %d follow-ups, want an edit: %v, no follow-ups", len(edits), len(followUps), tt.wantEdit)
				}
				dms := w.discord.DirectMessages(student)
				if withToken {
					if err != nil {
						t.Fatalf("FollowUp: %v, want the answer sent in a direct message", err)
					}
					if len(dms) != 1 {
						t.Fatalf("%d direct messages to the student, want 1", len(dms))
					}
					m := decodeSent(t, dms[0]) // checks allowed_mentions
					if !strings.Contains(m.Content, "/register") || !strings.Contains(m.Content, "ada@example.com is saved. @everyone") {
						t.Fatalf("direct message %q, want the answer and what it answers", m.Content)
					}
				} else {
					if !errors.Is(err, bot.ErrExpired) {
						t.Fatalf("FollowUp: %v, want an error wrapping bot.ErrExpired", err)
					}
					if len(dms) != 0 {
						t.Fatalf("%d direct messages without a bot token", len(dms))
					}
				}
				w.noSecrets("token-"+id, err)
			})
		}
	}
}

func TestDiscordReopenedDirectMessageRefused(t *testing.T) {
	w := setupWorker(t, "test-bot-token")
	const id = "1200000000000000105"
	w.discord.FailDirectMessages(http.StatusForbidden)
	r := w.reopen(id)
	w.clock.set(w.received.Add(discord.TokenLife))
	err := r.FollowUp(t.Context(), bot.Reply{Text: "Welcome!"})
	if !errors.Is(err, bot.ErrExpired) {
		t.Fatalf("FollowUp: %v, want bot.ErrExpired: nothing else can reach the student", err)
	}
	if edits, _ := w.webhookCalls("token-" + id); len(edits) != 0 {
		t.Fatalf("%d edits after the token died", len(edits))
	}
}

func TestDiscordReopenedTransientFailureIsRetried(t *testing.T) {
	w := setupWorker(t, "test-bot-token")
	const id = "1200000000000000106"
	w.discord.FailWebhooks("token-"+id, http.StatusInternalServerError)
	err := w.reopen(id).FollowUp(t.Context(), bot.Reply{Text: "Welcome!"})
	if err == nil || errors.Is(err, bot.ErrExpired) {
		t.Fatalf("FollowUp: %v, want an error for a retry, not ErrExpired", err)
	}
	if dms := w.discord.DirectMessages(student); len(dms) != 0 {
		t.Fatalf("%d direct messages: a retry of the job would show the answer twice", len(dms))
	}
	w.noSecrets("token-"+id, err)

	w.discord.FailWebhooks("token-"+id, 0)
	if err := w.reopen(id).FollowUp(t.Context(), bot.Reply{Text: "Welcome!"}); err != nil {
		t.Fatal(err)
	}
	if _, followUps := w.webhookCalls("token-" + id); len(followUps) != 0 {
		t.Fatalf("%d follow-up messages, want only edits", len(followUps))
	}
}

func TestDiscordReopenRefusesBadAddresses(t *testing.T) {
	w := setupWorker(t, "test-bot-token")
	c := bot.Command{Platform: bot.PlatformDiscord, InteractionID: "1200000000000000107", User: student, ReceivedAt: w.received}
	for name, raw := range map[string]string{
		"not JSON":           `{"tok":`,
		"no token":           `{"app":"` + appID + `"}`,
		"token with a path":  `{"app":"` + appID + `","tok":"../../users/@me"}`,
		"app not snowflake":  `{"app":"x/y","tok":"abc"}`,
		"user not snowflake": `{"app":"` + appID + `","tok":"abc","user":"../x"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if r, err := w.adapter.Reopen(t.Context(), c, json.RawMessage(raw)); err == nil {
				t.Fatalf("Reopen(%s) = %T, want an error", raw, r)
			}
		})
	}
	if _, err := w.adapter.Reopen(t.Context(), bot.Command{Platform: bot.PlatformSlack}, json.RawMessage(`{"app":"`+appID+`","tok":"abc"}`)); err == nil {
		t.Fatal("Reopen took a Slack command")
	}
	if n := len(w.discord.Requests()); n != 0 {
		t.Fatalf("the stand-in got %d requests", n)
	}
}

// memPostLog is a bot.PostLog in memory, as the queue keeps one per command.
type memPostLog struct {
	mu    sync.Mutex
	posts map[string]string
}

func (l *memPostLog) Posted(kind string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.posts[kind]
}

func (l *memPostLog) RecordPost(_ context.Context, kind, id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.posts == nil {
		l.posts = map[string]string{}
	}
	l.posts[kind] = id
	return nil
}

// The direct message fallback is recorded as it is sent, and a later
// attempt of the same command, finding it, sends nothing more.
func TestDiscordReopenedDirectMessageIsSentOnce(t *testing.T) {
	w := setupWorker(t, "test-bot-token")
	const id = "1200000000000000109"
	log := &memPostLog{}
	for attempt := 1; attempt <= 2; attempt++ {
		r := w.reopen(id)
		pl, ok := r.(bot.PostLogger)
		if !ok {
			t.Fatal("a reopened Discord responder takes no PostLog")
		}
		pl.UsePostLog(log)
		w.clock.set(w.received.Add(discord.TokenLife))
		if err := r.FollowUp(t.Context(), bot.Reply{Text: "Welcome!"}); err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
		if n := len(w.discord.DirectMessages(student)); n != 1 {
			t.Fatalf("after attempt %d: %d direct messages, want 1", attempt, n)
		}
	}
	if log.Posted("discord_dm") == "" {
		t.Error("the direct message was not recorded")
	}
}

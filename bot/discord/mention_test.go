package discord_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/discord"
	"github.com/classbot/classbot/bot/discord/discordtest"
)

const (
	botUserID = "1100000000000000099"
	channelID = "1100000000000000003"
)

// messageCreate is a MESSAGE_CREATE payload in the test guild's channel.
func messageCreate(t *testing.T, id, author, content string, authorIsBot bool, mentions ...string) json.RawMessage {
	t.Helper()
	ms := []map[string]any{}
	for _, m := range mentions {
		ms = append(ms, map[string]any{"id": m, "username": "u" + m, "discriminator": "0"})
	}
	b, err := json.Marshal(map[string]any{
		"id": id, "type": 0, "channel_id": channelID, "guild_id": guildID, "content": content,
		"author":   map[string]any{"id": author, "username": "ada", "discriminator": "0", "bot": authorIsBot},
		"mentions": ms, "mention_roles": []any{}, "mention_everyone": false,
		"timestamp": "2026-12-02T04:00:00.000000+00:00", "tts": false, "attachments": []any{}, "embeds": []any{},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// replies returns the channel messages that reply to message id.
func (f *fixture) replies(id string) []discordtest.Request {
	var out []discordtest.Request
	for _, r := range f.discord.Requests() {
		if r.Method != http.MethodPost || r.Path != "channels/"+channelID+"/messages" {
			continue
		}
		var m struct {
			Ref *struct {
				MessageID string `json:"message_id"`
			} `json:"message_reference"`
		}
		if r.JSON(&m) == nil && m.Ref != nil && m.Ref.MessageID == id {
			out = append(out, r)
		}
	}
	return out
}

func TestDiscordMentionIsAnsweredAsAsk(t *testing.T) {
	f := setup(t, options{mode: bot.ModeAsync, botToken: "test-bot-token", guild: guildID, open: true, mentions: true})
	f.discord.BotUserID = botUserID
	var (
		mu    sync.Mutex
		asked []string
	)
	f.agent.answerFunc = func(in string) string {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, in)
		return "Homework 2 is due Friday. @everyone"
	}
	runGateway(t, f)
	waitReady(t, f)
	if got := f.discord.Intents(); got != int(discord.MentionIntents) {
		t.Fatalf("IDENTIFY intents %d, want %d (guild messages and message content)", got, discord.MentionIntents)
	}

	id := "1400000000000000001"
	msg := messageCreate(t, id, studentID, "<@"+botUserID+"> when is hw 2 due?", false, botUserID)
	if n := f.discord.SendEvent("MESSAGE_CREATE", msg); n != 1 {
		t.Fatalf("sent on %d connections", n)
	}
	if err := f.discord.Wait(wait, func() bool { return len(f.replies(id)) == 1 }); err != nil {
		t.Fatalf("no reply to the mention: %v", err)
	}
	reply := f.replies(id)[0]
	if c := content(t, reply); !strings.Contains(c, "Homework 2 is due Friday") {
		t.Fatalf("reply %q lacks the answer", c)
	}
	if err := discordtest.NoPings(reply.Body); err != nil {
		t.Fatal(err)
	}
	var am struct {
		AllowedMentions struct {
			RepliedUser bool `json:"replied_user"`
		} `json:"allowed_mentions"`
	}
	if err := reply.JSON(&am); err != nil || am.AllowedMentions.RepliedUser {
		t.Fatalf("reply pings the student (replied_user true) or is not JSON: %s", reply.Body)
	}
	mu.Lock()
	got := strings.Join(asked, "\n")
	mu.Unlock()
	if !strings.Contains(got, "when is hw 2 due?") || strings.Contains(got, botUserID) {
		t.Fatalf("the model got %q, want the question without the mention", got)
	}
	in, err := f.store.GetInteraction(t.Context(), bot.PlatformDiscord, id)
	if err != nil || in.Command != "ask" {
		t.Fatalf("ledger row %+v, %v; want an ask under the message id", in, err)
	}

	// A redelivered message (a resumed gateway) is not answered again;
	// other messages are not answered at all.
	f.discord.SendEvent("MESSAGE_CREATE", msg)
	f.discord.SendEvent("MESSAGE_CREATE", messageCreate(t, "1400000000000000002", studentID, "hello all", false))
	f.discord.SendEvent("MESSAGE_CREATE", messageCreate(t, "1400000000000000003", studentID, "<@1100000000000000098> hi", false, "1100000000000000098"))
	f.discord.SendEvent("MESSAGE_CREATE", messageCreate(t, "1400000000000000004", "1100000000000000097", "<@"+botUserID+"> hi", true, botUserID))
	// Content empty: the Message Content intent is not granted.
	f.discord.SendEvent("MESSAGE_CREATE", messageCreate(t, "1400000000000000005", studentID, "", false, botUserID))
	// A last mention that is answered proves the ones before were read.
	last := "1400000000000000006"
	f.discord.SendEvent("MESSAGE_CREATE", messageCreate(t, last, studentID, "<@!"+botUserID+"> and hw 3?", false, botUserID))
	if err := f.discord.Wait(wait, func() bool { return len(f.replies(last)) == 1 }); err != nil {
		for _, r := range f.discord.Requests() {
			t.Logf("%s %s %s", r.Method, r.Path, r.Body)
		}
		t.Fatalf("no reply to the last mention: %v", err)
	}
	f.shutdown()
	if n := len(f.replies(id)); n != 1 {
		t.Fatalf("%d replies to one message delivered twice, want 1", n)
	}
	for _, other := range []string{"1400000000000000002", "1400000000000000003", "1400000000000000004", "1400000000000000005"} {
		if n := len(f.replies(other)); n != 0 {
			t.Fatalf("message %s got %d replies, want none", other, n)
		}
	}
	if calls, _ := f.agent.stats(); calls != 2 {
		t.Fatalf("agent called %d times, want 2", calls)
	}
}

func TestDiscordMentionsOffByDefault(t *testing.T) {
	f := setup(t, options{mode: bot.ModeAsync, botToken: "test-bot-token", guild: guildID, open: true})
	f.discord.BotUserID = botUserID
	f.discord.DeniedIntents = int(discordgo.IntentMessageContent) // not switched on in the portal
	runGateway(t, f)
	waitReady(t, f)
	if got := f.discord.Intents(); got != 0 {
		t.Fatalf("IDENTIFY intents %d, want none without Config.Mentions", got)
	}
	id := "1400000000000000010"
	f.discord.SendEvent("MESSAGE_CREATE", messageCreate(t, id, studentID, "<@"+botUserID+"> when is hw 2 due?", false, botUserID))
	// An interaction after it is answered: the message was read and ignored.
	iid := "1200000000000000800"
	sendAndWaitCallback(t, f, iid, interaction(t, iid, "", nil))
	f.shutdown()
	if n := len(f.replies(id)); n != 0 {
		t.Fatalf("%d replies with mentions off", n)
	}
}

// In queue mode a worker reopens a mention's Responder from its address
// and replies once, however often the job runs.
func TestDiscordMentionReopenedRepliesOnce(t *testing.T) {
	w := setupWorker(t, "test-bot-token")
	const msg = "1400000000000000020"
	raw, err := discord.MentionResponder(w.adapter, msg, channelID, guildID).(bot.Addressed).Address()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "test-bot-token") {
		t.Fatalf("address %s holds the bot token", raw)
	}
	c := bot.Command{Platform: bot.PlatformDiscord, InteractionID: msg, Workspace: guildID, Channel: channelID, User: student, Name: "ask"}
	log := &memPostLog{}
	for range 2 {
		r, err := w.adapter.Reopen(t.Context(), c, raw)
		if err != nil {
			t.Fatal(err)
		}
		r.(bot.PostLogger).UsePostLog(log)
		if err := r.FollowUp(t.Context(), bot.Reply{Text: "Friday."}); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for _, r := range w.discord.Requests() {
		if r.Method == http.MethodPost && r.Path == "channels/"+channelID+"/messages" {
			n++
			if !strings.Contains(string(r.Body), `"message_id":"`+msg+`"`) {
				t.Fatalf("post %s is not a reply to the message", r.Body)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d replies from two attempts, want 1", n)
	}
	if _, err := w.adapter.Reopen(t.Context(), c, json.RawMessage(`{"msg":"../1"}`)); err == nil {
		t.Fatal("a malformed message id was reopened")
	}
}

// edits returns the edits of channel messages, in order.
func (f *fixture) edits() []discordtest.Request {
	return channelEdits(f.discord)
}

func channelEdits(s *discordtest.Server) []discordtest.Request {
	var out []discordtest.Request
	for _, r := range s.Requests() {
		if r.Method == http.MethodPatch && strings.HasPrefix(r.Path, "channels/"+channelID+"/messages/") {
			out = append(out, r)
		}
	}
	return out
}

// A mention's answer streams into one reply: the reply is posted with the
// answer so far, then edited until it holds the whole answer.
func TestDiscordMentionStreamsIntoItsReply(t *testing.T) {
	const id = "1400000000000000030"
	parts := []string{"Homework 2 ", "is due ", "Friday. @everyone"}
	var f *fixture
	model := &streamAgent{parts: parts, afterFirst: func(context.Context, string) error {
		// The first part is posted before the model writes on.
		return f.discord.Wait(wait, func() bool { return len(f.replies(id)) == 1 })
	}}
	f = setup(t, options{mode: bot.ModeAsync, botToken: "test-bot-token", guild: guildID, mentions: true,
		model: model, streamInterval: time.Nanosecond})
	f.discord.BotUserID = botUserID
	runGateway(t, f)
	waitReady(t, f)
	f.discord.SendEvent("MESSAGE_CREATE", messageCreate(t, id, studentID, "<@"+botUserID+"> when is hw 2 due?", false, botUserID))
	answer := strings.Join(parts, "")
	if err := f.discord.Wait(wait, func() bool {
		e := f.edits()
		return len(e) > 0 && strings.Contains(content(t, e[len(e)-1]), "Friday.")
	}); err != nil {
		t.Fatalf("the reply was not edited to the answer: %v", err)
	}
	f.shutdown()
	replies := f.replies(id)
	if len(replies) != 1 {
		t.Fatalf("%d replies, want 1", len(replies))
	}
	if c := content(t, replies[0]); c != strings.TrimSpace(parts[0]) {
		t.Fatalf("the reply was posted with %q, want the first part %q", c, parts[0])
	}
	edits := f.edits()
	for _, e := range append(edits, replies...) {
		if err := discordtest.NoPings(e.Body); err != nil {
			t.Fatal(err)
		}
		if e.Method == http.MethodPatch && e.Path != edits[0].Path {
			t.Fatalf("edits of %s and %s, want one message edited", edits[0].Path, e.Path)
		}
	}
	if c := content(t, edits[len(edits)-1]); c != answer {
		t.Fatalf("last edit %q, want the answer %q", c, answer)
	}
}

// A queued retry edits the reply an earlier attempt posted and recorded,
// while streaming and when it answers, and posts none.
func TestDiscordMentionRetryEditsRecordedReply(t *testing.T) {
	w := setupWorker(t, "test-bot-token")
	const msg = "1400000000000000031"
	attempt, log := mentionAttempts(t, w, msg)
	// The first attempt streams a part and dies before its FollowUp.
	attempt().(bot.Streamer).Stream(t.Context(), "Homework 2")
	posted := log.Posted("discord_mention")
	if posted == "" {
		t.Fatal("the streamed reply was not recorded")
	}
	r := attempt()
	r.(bot.Streamer).Stream(t.Context(), "Homework 2 is due")
	answer := "Homework 2 is due Friday. @everyone"
	if err := r.FollowUp(t.Context(), bot.Reply{Text: answer}); err != nil {
		t.Fatal(err)
	}
	posts := 0
	for _, q := range w.discord.Requests() {
		if q.Method == http.MethodPost && q.Path == "channels/"+channelID+"/messages" {
			posts++
		}
	}
	if posts != 1 {
		t.Fatalf("%d replies from two attempts, want 1", posts)
	}
	edits := channelEdits(w.discord)
	if len(edits) != 2 {
		t.Fatalf("%d edits, want the stream's and the answer's", len(edits))
	}
	for _, e := range edits {
		if e.Path != "channels/"+channelID+"/messages/"+posted {
			t.Fatalf("edit of %s, want of the recorded reply %s", e.Path, posted)
		}
		if err := discordtest.NoPings(e.Body); err != nil {
			t.Fatal(err)
		}
	}
	if got := content(t, edits[1]); got != answer {
		t.Fatalf("last edit %q, want %q", got, answer)
	}
}

// A queued retry whose recorded reply was deleted (the edit is answered
// 404 Unknown Message) posts a new reply, records it, and a later attempt
// edits that one: the student gets the answer instead of a job failing
// on every attempt.
func TestDiscordMentionRetryRepostsADeletedReply(t *testing.T) {
	w := setupWorker(t, "test-bot-token")
	const msg = "1400000000000000032"
	attempt, log := mentionAttempts(t, w, msg)
	for _, streams := range []bool{false, true} {
		// The earlier attempt's reply is deleted before this one runs.
		attempt().(bot.Streamer).Stream(t.Context(), "Homework 2")
		first := log.Posted("discord_mention")
		w.discord.DeleteMessage(channelID, first)
		r := attempt()
		if streams {
			r.(bot.Streamer).Stream(t.Context(), "Homework 2 is due")
		}
		if err := r.FollowUp(t.Context(), bot.Reply{Text: "Homework 2 is due Friday."}); err != nil {
			t.Fatalf("FollowUp after the reply was deleted: %v", err)
		}
		second := log.Posted("discord_mention")
		if second == "" || second == first {
			t.Fatalf("recorded reply %q, want a new one in place of the deleted %s", second, first)
		}
		// A further attempt edits the new reply and posts none.
		posts := len(w.replies(msg))
		if err := attempt().FollowUp(t.Context(), bot.Reply{Text: "Homework 2 is due Friday."}); err != nil {
			t.Fatal(err)
		}
		if n := len(w.replies(msg)); n != posts {
			t.Fatalf("%d replies after a further attempt, want %d", n, posts)
		}
		e := channelEdits(w.discord)
		if last := e[len(e)-1]; last.Path != "channels/"+channelID+"/messages/"+second || content(t, last) != "Homework 2 is due Friday." {
			t.Fatalf("last edit %s %q, want the answer in the new reply %s", last.Path, content(t, last), second)
		}
	}
}

// mentionAttempts returns how a queue worker reopens the reply to the
// mention msg for each attempt, all with one PostLog.
func mentionAttempts(t *testing.T, w *worker, msg string) (attempt func() bot.Responder, log *memPostLog) {
	t.Helper()
	raw, err := discord.MentionResponder(w.adapter, msg, channelID, guildID).(bot.Addressed).Address()
	if err != nil {
		t.Fatal(err)
	}
	c := bot.Command{Platform: bot.PlatformDiscord, InteractionID: msg, Workspace: guildID, Channel: channelID, User: student, Name: "ask"}
	log = &memPostLog{}
	return func() bot.Responder {
		r, err := w.adapter.Reopen(t.Context(), c, raw)
		if err != nil {
			t.Fatal(err)
		}
		r.(bot.PostLogger).UsePostLog(log)
		return r
	}, log
}

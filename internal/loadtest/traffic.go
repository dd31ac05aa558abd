package loadtest

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// student is one simulated student: a class (workspace or guild) on one
// platform, a user id, a name and an email that no other student has.
type student struct {
	platform     string
	class, index int
	name, email  string
}

var firstNames = []string{
	"Ada", "Grace", "Alan", "Katherine", "Edsger", "Barbara", "Donald", "Frances", "John", "Radia",
	"Ken", "Margaret", "Dennis", "Hedy", "Linus", "Karen", "Niklaus", "Shafi", "Tim", "Jean",
	"Bjarne", "Adele", "Guido", "Sophie", "Leslie", "Mary", "Robin", "Annie", "Tony", "Evelyn",
	"Claude", "Joan", "Vint", "Ruth", "Yukihiro", "Lynn", "Rob", "Anita", "James", "Elena",
	"Chidi", "Amara", "Mateo", "Priya", "Noor", "Kofi", "Ines", "Sven", "Mei", "Olu",
}

var lastNames = []string{
	"Lovelace", "Hopper", "Turing", "Johnson", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus", "Perlman",
	"Thompson", "Hamilton", "Ritchie", "Lamarr", "Torvalds", "Spärck Jones", "Wirth", "Goldwasser", "Berners-Lee", "Sammet",
	"Stroustrup", "Goldberg", "van Rossum", "Wilson", "Lamport", "Keller", "Milner", "Easley", "Hoare", "Boyd",
	"Shannon", "Clarke", "Cerf", "Teitelbaum", "Matsumoto", "Conway", "Pike", "Borg", "Gosling", "Okafor",
	"Nwosu", "Adeyemi", "García", "Raman", "Haddad", "Mensah", "Ferreira", "Lindqvist", "Chen", "Balogun",
}

var questions = []string{
	"When is the first assignment due?",
	"Can I use a map as a set in Go?",
	"What is the difference between a goroutine and a thread?",
	"Is the final exam open book?",
	"How do I run the tests for homework 2?",
	"Why does my program deadlock when I close a channel twice?",
	"What does the 3-second deadline in the lab mean?",
	"Where are the slides from Tuesday's lecture?",
}

func (c Config) platformOf(class int) string {
	switch c.Platform {
	case PlatformMix:
		if class%2 == 0 {
			return PlatformSlack
		}
		return PlatformDiscord
	default:
		return c.Platform
	}
}

func (c Config) student(class, i int) student {
	f := firstNames[(i+class)%len(firstNames)]
	l := lastNames[(i/len(firstNames)+3*class+i)%len(lastNames)]
	local := strings.ToLower(strings.NewReplacer(" ", "", "ä", "a", "í", "i", "-", "").Replace(f + "." + l))
	return student{
		platform: c.platformOf(class),
		class:    class, index: i,
		name:  fmt.Sprintf("%s %s", f, l),
		email: fmt.Sprintf("%s.%d.%d@school%d.example.edu", local, class, i, class),
	}
}

// ids of a student, as the platforms would send them.
func (s student) slackTeam() string    { return fmt.Sprintf("T%08d", 1000+s.class) }
func (s student) slackUser() string    { return fmt.Sprintf("U%08d%04d", 1000+s.class, s.index) }
func (s student) slackChannel() string { return fmt.Sprintf("C%08d", 1000+s.class) }
func (s student) guild() string {
	return strconv.FormatInt(1100000000000000000+int64(s.class)*1000, 10)
}
func (s student) channel() string {
	return strconv.FormatInt(1100000000000000001+int64(s.class)*1000, 10)
}
func (s student) discordUser() string {
	return strconv.FormatInt(1300000000000000000+int64(s.class)*1000000+int64(s.index), 10)
}
func (s student) key() string { return fmt.Sprintf("%s/%d/%d", s.platform, s.class, s.index) }

// command is one request to send.
type command struct {
	seq      uint64 // 1, 2, ... within the run
	run      uint64 // the run's id: interaction ids differ from every earlier run's
	student  student
	name     string // "register" or "ask"
	platform string
}

// pick chooses the next command: a random student, /register or /ask.
func (c Config) pick(rng *rand.Rand, run, seq uint64) command {
	s := c.student(rng.IntN(c.Classes), rng.IntN(c.Students))
	name := "register"
	if c.AskRatio > 0 && rng.Float64() < c.AskRatio {
		name = "ask"
	}
	return command{seq: seq, run: run, student: s, name: name, platform: s.platform}
}

// slackForm is a slash command's form body, in the field order Slack sends
// (the recorded shape from Slack's documentation), with a response_url on
// the sink that names the command's sequence number.
func slackForm(cmd command, sinkURL string) []byte {
	s := cmd.student
	text := s.name + " " + s.email
	if cmd.name == "ask" {
		text = questions[cmd.seq%uint64(len(questions))]
	}
	responseURL := fmt.Sprintf("%s/slack/commands/%s/%d/%s", sinkURL, s.slackTeam(), cmd.seq, "lt"+strconv.FormatUint(cmd.seq*2654435761%1000003, 36))
	var b strings.Builder
	b.Grow(512)
	add := func(k, v string) {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(v))
	}
	add("token", "gIkuvaNzQIHg97ATvDxqgjtO")
	add("team_id", s.slackTeam())
	add("team_domain", fmt.Sprintf("class%d", s.class))
	add("channel_id", s.slackChannel())
	add("channel_name", "general")
	add("user_id", s.slackUser())
	add("user_name", strings.ToLower(strings.Fields(s.name)[0]))
	add("command", "/"+cmd.name)
	add("text", text)
	add("api_app_id", "A0LOADTEST1")
	add("is_enterprise_install", "false")
	add("response_url", responseURL)
	add("trigger_id", fmt.Sprintf("%d.%d.%016x", cmd.run+cmd.seq, 738474920+s.class, cmd.seq*0x9e3779b97f4a7c15))
	return []byte(b.String())
}

// SlackSignature is Slack's request signature:
// v0=hex(HMAC-SHA256(secret, "v0:" + timestamp + ":" + body)).
func SlackSignature(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("v0:" + timestamp + ":"))
	m.Write(body)
	return "v0=" + hex.EncodeToString(m.Sum(nil))
}

// tokenMark ends every Discord token the generator makes ("interaction:
// loadtest" in base64): it tells the load test's queued jobs from others.
const tokenMark = "aW50ZXJhY3Rpb246bG9hZHRlc3Q"

// discordToken is the interaction token of command seq; the sink finds the
// command again from it.
func discordToken(seq, run uint64) string {
	return "lt" + strconv.FormatUint(seq, 10) + "-" + strconv.FormatUint(run, 36) + "-" + tokenMark
}

// runID is a snowflake-like number (milliseconds since Discord's epoch,
// shifted as Discord does) that starts a run's interaction ids, so no two
// runs against the same database send the same id (the bot would take the
// second as a retry and do nothing).
func runID() uint64 {
	const discordEpoch = 1420070400000
	return uint64(time.Now().UnixMilli()-discordEpoch) << 22
}

func seqFromDiscordToken(tok string) (uint64, bool) {
	s, ok := strings.CutPrefix(tok, "lt")
	if !ok {
		return 0, false
	}
	s, _, _ = strings.Cut(s, "-")
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// discordInteraction is an APPLICATION_COMMAND interaction in the shape
// Discord sends (see bot/discord/testdata/register_interaction.json).
type discordInteraction struct {
	AppPermissions string          `json:"app_permissions"`
	ApplicationID  string          `json:"application_id"`
	Channel        discordChannel  `json:"channel"`
	ChannelID      string          `json:"channel_id"`
	Context        int             `json:"context"`
	Data           discordData     `json:"data"`
	Entitlements   []string        `json:"entitlements"`
	Guild          map[string]any  `json:"guild"`
	GuildID        string          `json:"guild_id"`
	GuildLocale    string          `json:"guild_locale"`
	ID             string          `json:"id"`
	Locale         string          `json:"locale"`
	Member         discordMember   `json:"member"`
	Token          string          `json:"token"`
	Type           int             `json:"type"`
	Version        int             `json:"version"`
	Extra          json.RawMessage `json:"authorizing_integration_owners"`
}

type discordChannel struct {
	Flags       int    `json:"flags"`
	GuildID     string `json:"guild_id"`
	ID          string `json:"id"`
	Name        string `json:"name"`
	Permissions string `json:"permissions"`
	Type        int    `json:"type"`
}

type discordData struct {
	GuildID string          `json:"guild_id"`
	ID      string          `json:"id"`
	Name    string          `json:"name"`
	Options []discordOption `json:"options"`
	Type    int             `json:"type"`
}

type discordOption struct {
	Name  string `json:"name"`
	Type  int    `json:"type"`
	Value string `json:"value"`
}

type discordMember struct {
	Deaf        bool        `json:"deaf"`
	Flags       int         `json:"flags"`
	JoinedAt    string      `json:"joined_at"`
	Mute        bool        `json:"mute"`
	Pending     bool        `json:"pending"`
	Permissions string      `json:"permissions"`
	Roles       []string    `json:"roles"`
	User        discordUser `json:"user"`
}

type discordUser struct {
	Discriminator string `json:"discriminator"`
	GlobalName    string `json:"global_name"`
	ID            string `json:"id"`
	PublicFlags   int    `json:"public_flags"`
	Username      string `json:"username"`
}

func discordBody(cmd command, appID string) []byte {
	s := cmd.student
	opts := []discordOption{{Name: "name", Type: 3, Value: s.name}, {Name: "email", Type: 3, Value: s.email}}
	if cmd.name == "ask" {
		opts = []discordOption{{Name: "question", Type: 3, Value: questions[cmd.seq%uint64(len(questions))]}}
	}
	in := discordInteraction{
		AppPermissions: "562949953601536",
		ApplicationID:  appID,
		Channel:        discordChannel{GuildID: s.guild(), ID: s.channel(), Name: "general", Permissions: "2251799813685247"},
		ChannelID:      s.channel(),
		Data:           discordData{GuildID: s.guild(), ID: "1100000000000000010", Name: cmd.name, Options: opts, Type: 1},
		Entitlements:   []string{},
		Guild:          map[string]any{"features": []string{}, "id": s.guild(), "locale": "en-US"},
		GuildID:        s.guild(),
		GuildLocale:    "en-US",
		ID:             strconv.FormatUint(cmd.run+cmd.seq, 10),
		Locale:         "en-GB",
		Member: discordMember{
			JoinedAt: "2024-09-02T08:15:30.123000+00:00", Permissions: "2251799813685247", Roles: []string{},
			User: discordUser{Discriminator: "0", GlobalName: strings.Fields(s.name)[0], ID: s.discordUser(), Username: strings.ToLower(strings.Fields(s.name)[0]) + strconv.Itoa(s.index)},
		},
		Token:   discordToken(cmd.seq, cmd.run),
		Type:    2,
		Version: 1,
		Extra:   json.RawMessage(`{"0":"` + s.guild() + `"}`),
	}
	b, _ := json.Marshal(in)
	return b
}

// DiscordSignature is hex(Ed25519(key, timestamp + body)), Discord's
// X-Signature-Ed25519.
func DiscordSignature(key ed25519.PrivateKey, timestamp string, body []byte) string {
	msg := make([]byte, 0, len(timestamp)+len(body))
	msg = append(append(msg, timestamp...), body...)
	return hex.EncodeToString(ed25519.Sign(key, msg))
}

func unixNow() string { return strconv.FormatInt(time.Now().Unix(), 10) }

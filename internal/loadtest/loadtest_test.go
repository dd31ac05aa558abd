package loadtest

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseLatency(t *testing.T) {
	tests := []struct {
		in      string
		want    Latency
		wantErr bool
	}{
		{"2s", Latency{Median: 2 * time.Second}, false},
		{"150ms", Latency{Median: 150 * time.Millisecond}, false},
		{"lognormal:median=2s,p99=6s", Latency{Median: 2 * time.Second, P99: 6 * time.Second}, false},
		{"lognormal:p99=6s,median=2s", Latency{Median: 2 * time.Second, P99: 6 * time.Second}, false},
		{"lognormal:median=2s", Latency{}, true},
		{"lognormal:median=6s,p99=2s", Latency{}, true},
		{"lognormal:mean=2s,p99=6s", Latency{}, true},
		{"soon", Latency{}, true},
		{"-1s", Latency{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLatency(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && *got != tt.want {
				t.Errorf("got %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestLognormalHitsItsMedianAndP99(t *testing.T) {
	l := Latency{Median: 2 * time.Second, P99: 6 * time.Second}
	s := make([]time.Duration, 20000)
	for i := range s {
		s[i] = l.Sample()
	}
	slices.Sort(s)
	if m := quantile(s, .5); m < 1800*time.Millisecond || m > 2200*time.Millisecond {
		t.Errorf("median %s, want about 2s", m)
	}
	if p := quantile(s, .99); p < 5*time.Second || p > 7*time.Second {
		t.Errorf("p99 %s, want about 6s", p)
	}
}

func TestQuantileIsNearestRank(t *testing.T) {
	s := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for q, want := range map[float64]time.Duration{.5: 5, .9: 9, .99: 10, 1: 10, .1: 1} {
		if got := quantile(s, q); got != want {
			t.Errorf("quantile(%v) = %d, want %d", q, got, want)
		}
	}
}

// Slack's documented example: secret 8f742231b10e8888abcd99yyyzzz85a5,
// timestamp 1531420618 and the slash command body below.
func TestSlackSignatureMatchesSlacksExample(t *testing.T) {
	body := "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	got := SlackSignature("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", []byte(body))
	if want := "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestRequestsAreRealisticAndUnique(t *testing.T) {
	c := Config{Platform: PlatformMix, Classes: 4, Students: 50}.withDefaults()
	rng := rand.New(rand.NewPCG(1, 2))
	run := runID()
	ids := map[string]bool{}
	for seq := uint64(1); seq <= 200; seq++ {
		cmd := c.pick(rng, run, seq)
		switch cmd.platform {
		case PlatformSlack:
			form, err := url.ParseQuery(string(slackForm(cmd, "http://127.0.0.1:9")))
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"token", "team_id", "channel_id", "user_id", "command", "text", "response_url", "trigger_id"} {
				if form.Get(k) == "" {
					t.Fatalf("Slack form has no %s: %v", k, form)
				}
			}
			if cmd.student.class%2 != 0 {
				t.Errorf("class %d is on Slack; a mix puts odd classes on Discord", cmd.student.class)
			}
			ids["s"+form.Get("trigger_id")] = true
		case PlatformDiscord:
			var in discordInteraction
			if err := json.Unmarshal(discordBody(cmd, "1"), &in); err != nil {
				t.Fatal(err)
			}
			if in.Type != 2 || in.Data.Name != "register" || len(in.Data.Options) != 2 || in.Member.User.ID == "" {
				t.Fatalf("Discord interaction %+v", in)
			}
			if seq, ok := seqFromDiscordToken(in.Token); !ok || seq != cmd.seq {
				t.Errorf("token %q does not give back seq %d", in.Token, cmd.seq)
			}
			ids["d"+in.ID] = true
		}
	}
	if len(ids) != 200 {
		t.Errorf("%d distinct interaction ids for 200 commands", len(ids))
	}
	a, b := c.student(1, 7), c.student(1, 8)
	if a.email == b.email || a.slackUser() == b.slackUser() {
		t.Error("two students share an email or a user id")
	}
}

func TestDiscordSignatureVerifies(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	sig, _ := hex.DecodeString(DiscordSignature(priv, "1700000000", []byte(`{"type":1}`)))
	if !ed25519.Verify(pub, []byte(`1700000000{"type":1}`), sig) {
		t.Fatal("signature does not verify over timestamp + body")
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		platform string
		followUp bool
		body     string
		want     int
	}{
		{PlatformDiscord, true, `{"type":5,"data":{"flags":64}}`, kindDeferred},
		{PlatformDiscord, false, `{"type":4,"data":{"content":"You're registered"}}`, kindAnswer},
		{PlatformDiscord, true, `{"type":4,"data":{"content":"Lots of students are typing right now, so I'm busy."}}`, kindRefused},
		{PlatformSlack, true, `{"response_type":"ephemeral","text":"Registering you…"}`, kindDeferred},
		{PlatformSlack, false, `{"text":"You're registered, Ada"}`, kindAnswer},
		{PlatformSlack, false, `{"text":"Sorry, that took too long."}`, kindRefused},
	}
	for _, tt := range tests {
		if got := classify(tt.platform, tt.followUp, []byte(tt.body)); got != tt.want {
			t.Errorf("classify(%s, followUp=%v, %s) = %d, want %d", tt.platform, tt.followUp, tt.body, got, tt.want)
		}
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:80"} {
		if err := CheckLoopbackURL(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"http://10.0.0.1:8080", "http://example.com", "https://127.0.0.1", "127.0.0.1:80"} {
		if err := CheckLoopbackURL(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestTrackerCountsEachCommandsPosts(t *testing.T) {
	tr := newTracker()
	at := time.Now()
	for seq := uint64(1); seq <= 4; seq++ {
		tr.add(seq, at)
	}
	tr.forget(4) // answered at once: no follow-up expected
	now := at.Add(2 * time.Second)
	tr.deliver(1, now)
	tr.deliver(2, now)
	tr.deliver(2, now.Add(time.Second)) // a job run twice: replaced, still a second post
	tr.deliver(2, now.Add(2*time.Second))
	tr.deliver(4, now)  // forgotten
	tr.deliver(99, now) // never sent
	tr.add(5, at)
	tr.refuse(5) // told "sorry, try again"
	tr.deliver(5, now)
	tr.deliver(5, now)
	if tr.delivered != 2 || tr.duplicates != 1 || tr.extra != 2 || tr.unknown != 2 || tr.afterRefusal != 1 {
		t.Errorf("delivered %d, posted more than once %d, extra posts %d, unknown %d, after a refusal %d; want 2, 1, 2, 2, 1",
			tr.delivered, tr.duplicates, tr.extra, tr.unknown, tr.afterRefusal)
	}
	if len(tr.followLat) != 2 || tr.followLat[1] != 2*time.Second {
		t.Errorf("end-to-end latencies %v, want the first post's of each command", tr.followLat)
	}
	if n, _ := tr.deliveredCount(); n != 2 {
		t.Errorf("deliveredCount = %d, want 2 (command 3 has none yet)", n)
	}
}

func TestConfigTakesQueueMode(t *testing.T) {
	if err := (Config{Mode: "queue"}).Validate(); err != nil {
		t.Errorf("queue mode refused: %v", err)
	}
	if err := (Config{Mode: "kafka"}).Validate(); err == nil {
		t.Error("an unknown mode accepted")
	}
	for mode, want := range map[string]bool{"sync": false, "async": true, "queue": true} {
		if got := (Config{Mode: mode}).followsUp(); got != want {
			t.Errorf("%s: followsUp = %v, want %v", mode, got, want)
		}
	}
}

func TestClassifyAuto(t *testing.T) {
	tests := []struct {
		platform, body string
		want           int
	}{
		{PlatformSlack, `{"response_type":"ephemeral","text":"Registering you…"}`, kindDeferred},
		{PlatformSlack, `{"response_type":"in_channel","text":"Thinking…"}`, kindDeferred},
		{PlatformSlack, `{"response_type":"ephemeral","text":"You're registered, Ada (ada@example.com)."}`, kindAnswer},
		{PlatformSlack, `{"text":"Lots of students are typing right now, so I'm busy."}`, kindRefused},
		{PlatformDiscord, `{"type":5,"data":{"flags":64}}`, kindDeferred},
		{PlatformDiscord, `{"type":4,"data":{"content":"You're registered"}}`, kindAnswer},
	}
	for _, tt := range tests {
		if got := classifyAuto(tt.platform, []byte(tt.body)); got != tt.want {
			t.Errorf("classifyAuto(%s, %s) = %d, want %d", tt.platform, tt.body, got, tt.want)
		}
	}
}

// A place-in-line edit at the sink is not the answer: it is counted apart,
// and the answer after it is the command's one delivery.
func TestSinkTellsPlaceEditsFromAnswers(t *testing.T) {
	tr := newTracker()
	s, err := startSink("127.0.0.1:0", tr)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	tr.add(7, time.Now())
	post := func(body string) {
		t.Helper()
		resp, err := http.Post(s.url+"/slack/commands/T1/7/x", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	post(`{"replace_original":true,"text":"Thinking… You're #12 in line for the assistant; your answer comes as soon as it's your turn."}`)
	post(`{"text":"A goroutine is a function running concurrently."}`)
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.places != 1 || len(tr.placeLat) != 1 || tr.delivered != 1 || tr.duplicates != 0 {
		t.Errorf("places %d, delivered %d, posted twice %d; want 1, 1, 0", tr.places, tr.delivered, tr.duplicates)
	}
}

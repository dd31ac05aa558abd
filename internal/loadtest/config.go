package loadtest

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"time"
)

// Platforms the generator speaks.
const (
	PlatformSlack   = "slack"
	PlatformDiscord = "discord"
	PlatformMix     = "mix" // even classes on Slack, odd classes on Discord
)

// Deadline is Slack's and Discord's: the first response within 3 seconds.
const Deadline = 3 * time.Second

// Config is one run. Zero values mean the defaults given on each field.
type Config struct {
	// Label names the run in reports and on the chart ("async", "sync", "bare").
	Label string
	// Mode is the bot's handler mode, "sync", "async", "queue" or "auto": it
	// decides whether follow-ups are expected (async and queue; in auto
	// mode, for the commands acknowledged rather than answered) and, for queue, that
	// the run's River jobs are counted and stale ones of earlier runs are
	// removed first (see DatabaseURL). Default "async".
	Mode string
	// Platform is slack, discord or mix. Default slack.
	Platform string
	// Classes is the number of Slack workspaces / Discord guilds. Default 10.
	Classes int
	// Students is the number of students per class. Default 500.
	Students int
	// AskRatio is the share of /ask commands; the rest are /register.
	// Default 0 (all /register); negative means 0.
	AskRatio float64

	// Rate, when set, makes an open loop: this many commands per second for
	// Duration, whatever the bot's answers. Zero means a closed loop.
	Rate float64
	// Concurrency is the closed loop's students typing back to back, each
	// waiting for its acknowledgement before the next command. Default 50.
	Concurrency int
	// Duration bounds the send loop. Default 10 s.
	Duration time.Duration
	// Requests, when set, stops the closed loop after this many commands
	// (Duration still caps it).
	Requests int
	// Connections bounds the generator's connections to the bot (a
	// keep-alive pool). Default: Concurrency for a closed loop, 4096 for an
	// open loop (enough for 1,000/s answered in 4 s: a platform would open
	// as many as the bot keeps busy). An open-loop command that finds MaxPending commands
	// already waiting is not sent and counted as dropped.
	Connections int
	// MaxPending bounds an open loop's commands waiting for their
	// acknowledgement. Default 20000.
	MaxPending int
	// Timeout bounds one request (its acknowledgement). Default 10 s.
	Timeout time.Duration
	// Drain bounds the wait for follow-ups after the send loop. Default 30 s.
	Drain time.Duration

	// Target is the bot's base URL, http://127.0.0.1:PORT. Set by Run from
	// the StartFunc's answer; set it yourself to use a running bot.
	Target string
	// SlackSecret signs Slack requests (SLACK_SIGNING_SECRET).
	SlackSecret string
	// DiscordKey signs Discord interactions; its public half is the bot's
	// DISCORD_PUBLIC_KEY. DiscordAppID is DISCORD_APP_ID.
	DiscordKey   ed25519.PrivateKey
	DiscordAppID string

	// ModelLatency is the model stand-in's latency. Default fixed 2 s.
	ModelLatency *Latency
	// SinkAddr and ModelAddr are where the follow-up sink and the model
	// stand-in listen. Default 127.0.0.1:0 (any free port).
	SinkAddr, ModelAddr string
	// DatabaseURL, when set, is read directly (never through a proxy)
	// before and after the run: registrations and interactions rows, and
	// the database's committed transactions (pg_stat_database.xact_commit).
	// After the run the bot is stopped first, so that its backends report
	// their counts, and the reading waits up to 12 s for them to settle.
	// In queue mode it is also where the run's River jobs are counted, and
	// before the bot starts, unfinished jobs that earlier load-test runs
	// left behind are deleted: their sink is gone, so they could only fail
	// and retry inside this run (a load-test job is recognised by its reply
	// address, which points at a loopback sink; no other job is touched).
	// Give the load test a database of its own.
	DatabaseURL string
	// DBLatency is reported only: the latency a proxy between the bot and
	// PostgreSQL adds each way (the caller puts the proxy there, see
	// ProxyDatabase, and gives the bot its URL in Options.BotEnv).
	DBLatency time.Duration
	// Seed makes the traffic repeatable. Default 1.
	Seed uint64
}

// followsUp reports whether the mode may answer with a follow-up after the
// acknowledgement (async, queue, auto) rather than in the response (sync).
func (c Config) followsUp() bool { return c.Mode != "sync" }

func (c Config) withDefaults() Config {
	if c.Mode == "" {
		c.Mode = "async"
	}
	if c.Platform == "" {
		c.Platform = PlatformSlack
	}
	if c.Classes <= 0 {
		c.Classes = 10
	}
	if c.Students <= 0 {
		c.Students = 500
	}
	if c.AskRatio < 0 {
		c.AskRatio = 0
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 50
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Connections <= 0 {
		c.Connections = c.Concurrency
		if c.Rate > 0 {
			c.Connections = 4096
		}
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 20000
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Drain <= 0 {
		c.Drain = 30 * time.Second
	}
	if c.ModelLatency == nil {
		c.ModelLatency = &Latency{Median: 2 * time.Second}
	}
	if c.SinkAddr == "" {
		c.SinkAddr = "127.0.0.1:0"
	}
	if c.ModelAddr == "" {
		c.ModelAddr = "127.0.0.1:0"
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	return c
}

// Validate checks what can be checked before a run.
func (c Config) Validate() error {
	var errs []error
	switch c.Platform {
	case "", PlatformSlack, PlatformDiscord, PlatformMix:
	default:
		errs = append(errs, fmt.Errorf("platform %q: use slack, discord or mix", c.Platform))
	}
	switch c.Mode {
	case "", "sync", "async", "queue", "auto":
	default:
		errs = append(errs, fmt.Errorf("mode %q: use sync, async, queue or auto", c.Mode))
	}
	if c.AskRatio > 1 {
		errs = append(errs, errors.New("the ask ratio is a share between 0 and 1"))
	}
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		errs = append(errs, errors.New("the rate must be a positive number of commands per second"))
	}
	if c.Duration > time.Hour {
		errs = append(errs, errors.New("the duration is capped at one hour"))
	}
	for _, a := range []string{c.SinkAddr, c.ModelAddr} {
		if a != "" && !loopbackHostPort(a) {
			errs = append(errs, fmt.Errorf("%s: the load test listens on 127.0.0.1 only", a))
		}
	}
	if c.Target != "" {
		if err := CheckLoopbackURL(c.Target); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CheckLoopbackURL refuses a target that is not on this machine's loopback
// interface: the load test sends traffic to 127.0.0.1 only.
func CheckLoopbackURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("target %q must be an http:// URL such as http://127.0.0.1:8080", s)
	}
	if !loopbackHostPort(u.Host) {
		return fmt.Errorf("target %q: the load test sends traffic to 127.0.0.1 (or localhost) only", s)
	}
	return nil
}

func loopbackHostPort(hp string) bool {
	host, _, err := net.SplitHostPort(hp)
	if err != nil {
		host = hp
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Latency is the model stand-in's latency: fixed (P99 zero) or lognormal
// with the given median and 99th percentile.
type Latency struct {
	Median time.Duration
	P99    time.Duration // zero: fixed at Median
}

// z99 is the standard normal's 99th percentile.
const z99 = 2.3263478740408408

// ParseLatency reads "2s", "150ms" or "lognormal:median=2s,p99=6s".
func ParseLatency(s string) (*Latency, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "lognormal:"); ok {
		var l Latency
		for _, kv := range strings.Split(rest, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok {
				return nil, fmt.Errorf("model latency %q: want lognormal:median=2s,p99=6s", s)
			}
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("model latency %q: %s=%q is not a positive duration", s, k, v)
			}
			switch k {
			case "median":
				l.Median = d
			case "p99":
				l.P99 = d
			default:
				return nil, fmt.Errorf("model latency %q: unknown parameter %q (median, p99)", s, k)
			}
		}
		if l.Median == 0 || l.P99 == 0 {
			return nil, fmt.Errorf("model latency %q: a lognormal needs both median and p99", s)
		}
		if l.P99 < l.Median {
			return nil, fmt.Errorf("model latency %q: p99 must be at least the median", s)
		}
		return &l, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return nil, fmt.Errorf("model latency %q: want a duration such as 2s, or lognormal:median=2s,p99=6s", s)
	}
	return &Latency{Median: d}, nil
}

// Sample draws one latency. It is safe for concurrent use.
func (l *Latency) Sample() time.Duration {
	if l.P99 <= l.Median {
		return l.Median
	}
	sigma := math.Log(float64(l.P99)/float64(l.Median)) / z99
	return time.Duration(float64(l.Median) * math.Exp(sigma*rand.NormFloat64()))
}

func (l *Latency) String() string {
	if l.P99 <= l.Median {
		return l.Median.String()
	}
	return fmt.Sprintf("lognormal:median=%s,p99=%s", l.Median, l.P99)
}

package discord

import (
	"cmp"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/internal/platformhttp"
)

// DefaultAPIURL is Discord's REST base.
const DefaultAPIURL = "https://discord.com/api/v10/"

// Config configures an Adapter. Fields not marked required may be left zero.
type Config struct {
	// AppID is the application id (DISCORD_APP_ID). Required for the gateway
	// and command registration; for HTTP interactions the id in each
	// interaction is used when it is empty.
	AppID string
	// PublicKey verifies HTTP interactions (DISCORD_PUBLIC_KEY, decoded).
	// Required for Handler.
	PublicKey ed25519.PublicKey
	// BotToken (DISCORD_BOT_TOKEN) turns on the gateway and command
	// registration, and lets a queue worker send an answer whose
	// interaction token has expired as a direct message. With or without
	// the "Bot " prefix. Never logged.
	BotToken string
	// GuildID (DISCORD_GUILD_ID): register commands in this guild (instant)
	// instead of globally (up to an hour to appear). Default: global.
	GuildID string
	// APIURL is the REST base every call goes to (DISCORD_API_URL).
	// Default DefaultAPIURL.
	APIURL string
	// HTTPClient makes the REST calls; its transport is wrapped to send them
	// to APIURL. Default: a client with a bounded connection pool (64
	// connections per host), 10 s dial/TLS/response-header timeouts and a
	// 20 s overall timeout.
	HTTPClient *http.Client
	// Dispatcher runs the commands. Required by Handler and Run; only
	// RegisterCommands works without it.
	Dispatcher *bot.Dispatcher
	// Logger gets the adapter's own lines (refusals, delivery failures).
	// Default slog.Default(). Emails and tokens are never logged.
	Logger *slog.Logger
	// OnRefuseFunc, when set, is called with one of the Refuse* reasons for
	// every interaction refused before dispatch: an HTTP request answered
	// with 401, 400 or 413, or a gateway event ignored (for metrics). It may
	// be called from many goroutines at once.
	OnRefuseFunc func(reason string)
	// RegisterResultFunc, when set, is called by Run after each attempt to
	// register the commands, with nil on success or the attempt's error
	// (for metrics and /readyz). It is called from Run's registration
	// goroutine, one call at a time.
	RegisterResultFunc func(err error)
	// Mentions turns on answering a mention of the bot in a guild channel
	// as /ask, in a reply to the message, over the gateway. It requests
	// MentionIntents, whose Message Content intent is privileged: switch
	// it on in the Developer Portal first. Default off.
	Mentions bool
	// StreamInterval is the least time between two edits of the deferred
	// response that show an answer while the model writes it. Default
	// DefaultStreamInterval.
	StreamInterval time.Duration
	// NowFunc returns the current time, for the signature timestamp check
	// and for a reopened Responder's check that the interaction token still
	// works (see Reopen). Default time.Now.
	NowFunc func() time.Time
}

// Adapter connects Discord to a bot.Dispatcher. Create it with New. Its
// Handler and Run may be used at the same time from many goroutines. It runs
// no command concurrency of its own: every command goes to the Dispatcher.
type Adapter struct {
	cfg     Config
	log     *slog.Logger
	session *discordgo.Session // REST calls and, with a bot token, the gateway

	streamInterval time.Duration // Config.StreamInterval, defaulted

	// registerBackoff is the first delay between registration attempts;
	// it doubles up to registerMaxBackoff. Tests shorten both.
	registerBackoff, registerMaxBackoff time.Duration

	self botUser // the bot's user id, from READY

	regMu      sync.Mutex // guards registered and regErr
	registered bool
	regErr     error
}

// New checks cfg and returns an Adapter. It does no I/O.
func New(cfg Config) (*Adapter, error) {
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	base, err := url.Parse(cfg.APIURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("discord: API URL %q must be an http(s) URL", cfg.APIURL)
	}
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
	}
	if cfg.PublicKey != nil && len(cfg.PublicKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("discord: public key has %d bytes, want %d", len(cfg.PublicKey), ed25519.PublicKeySize)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.NowFunc == nil {
		cfg.NowFunc = time.Now
	}
	cfg.BotToken = strings.TrimSpace(cfg.BotToken)
	token := ""
	if cfg.BotToken != "" {
		token = "Bot " + strings.TrimPrefix(cfg.BotToken, "Bot ")
	}
	s, err := discordgo.New(token)
	if err != nil {
		return nil, fmt.Errorf("discord: new session: %w", err)
	}
	s.Client = rewritingClient(cfg.HTTPClient, base)
	s.StateEnabled = false                     // classbot keeps no guild state
	s.Identify.Intents = discordgo.IntentsNone // interactions arrive without intents
	if cfg.Mentions {
		s.Identify.Intents = MentionIntents
	}
	s.ShouldReconnectOnError = false // Run reconnects, so it can stop
	s.MaxRestRetries = 1             // one retry on 502
	s.LogLevel = discordgo.LogError  // discordgo logs through log.Printf
	return &Adapter{
		cfg:                cfg,
		log:                cfg.Logger,
		session:            s,
		streamInterval:     cmp.Or(cfg.StreamInterval, DefaultStreamInterval),
		registerBackoff:    time.Second,
		registerMaxBackoff: 5 * time.Minute,
	}, nil
}

// rewritingClient returns a copy of c (or the default client) whose
// transport sends discordgo's discord.com API calls to base.
func rewritingClient(c *http.Client, base *url.URL) *http.Client {
	if c == nil {
		c = platformhttp.NewHTTPClient()
	}
	out := *c
	rt := out.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	out.Transport = &rewriter{base: base, next: rt}
	return &out
}

// rewriter moves requests for https://discord.com/api/vN/PATH to base+PATH.
// discordgo builds its endpoint URLs at package init, so this is the one
// place where a per-session API base can be applied.
type rewriter struct {
	base *url.URL
	next http.RoundTripper
}

func (t *rewriter) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.EqualFold(req.URL.Host, "discord.com") {
		return t.next.RoundTrip(req)
	}
	rest := apiPath(req.URL.Path)
	r := req.Clone(req.Context())
	u := *req.URL
	u.Scheme, u.Host, u.User = t.base.Scheme, t.base.Host, t.base.User
	u.Path = t.base.Path + rest
	u.RawPath = ""
	if req.URL.RawPath != "" {
		u.RawPath = t.base.EscapedPath() + apiPath(req.URL.RawPath)
	}
	r.URL = &u
	r.Host = ""
	return t.next.RoundTrip(r)
}

// apiPath strips "/api/vN/" (or "/api/") from p.
func apiPath(p string) string {
	p = strings.TrimPrefix(p, "/")
	if rest, ok := strings.CutPrefix(p, "api/"); ok {
		p = rest
		if len(p) > 1 && p[0] == 'v' {
			if i := strings.IndexByte(p, '/'); i > 1 && allDigits(p[1:i]) {
				p = p[i+1:]
			}
		}
	}
	return p
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

package slack

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/internal/platformhttp"
)

// DefaultAPIURL is Slack's Web API base.
const DefaultAPIURL = "https://slack.com/api/"

// Config configures an Adapter. Fields not marked required may be left zero.
type Config struct {
	// SigningSecret verifies HTTP slash commands (SLACK_SIGNING_SECRET).
	// Required for Handler: without it every request gets 401. Never logged.
	SigningSecret string
	// BotToken (SLACK_BOT_TOKEN, xoxb-…) posts the chat.postEphemeral
	// fallback when a response_url fails or, in queue mode, has expired.
	// Default: no fallback. Never logged.
	BotToken string
	// AppToken (SLACK_APP_TOKEN, xapp-…) is the app-level token Socket Mode
	// connects with. Required for Run. Never logged.
	AppToken string
	// APIURL is the Web API base every call goes to (SLACK_API_URL), with or
	// without its trailing slash. Default DefaultAPIURL.
	APIURL string
	// HTTPClient makes the Web API calls (chat.postEphemeral,
	// apps.connections.open). Default: a client with a bounded connection
	// pool (64 connections per host), 10 s dial/TLS/response-header timeouts
	// and a 20 s overall timeout, so a burst of follow-ups cannot open
	// thousands of sockets. Posts to a response_url never use it: they go
	// through a client of the adapter's own with the same bounds, no proxy,
	// no redirects, and the address checks of ResponseURLPrefixes.
	HTTPClient *http.Client
	// ResponseURLPrefixes (SLACK_RESPONSE_URL_PREFIX, comma-separated) are
	// the only places a slash command's response_url may point. A
	// response_url is accepted when it has no user:password@, its scheme,
	// host and port equal a prefix's (a missing port is the scheme's
	// default), its path starts with the prefix's path and has no "." or
	// ".." segment. A command with any other response_url is refused before
	// dispatch: 400 on HTTP, an ephemeral apology in Socket Mode. Posts go
	// to public addresses only (checked on the address dialled, so DNS
	// cannot point an allowed name elsewhere): a private, loopback or
	// link-local address is dialled only when a prefix names it as an IP
	// address with its port, like http://127.0.0.1:8089/ for a local
	// stand-in. Redirects are not followed: a 3xx is a failed post. Each
	// prefix must be an http(s) URL without user info, query or fragment;
	// New refuses others. Default DefaultResponseURLPrefixes.
	ResponseURLPrefixes []string
	// Dispatcher runs the commands. Required by Handler and Run.
	Dispatcher *bot.Dispatcher
	// Logger gets the adapter's own lines (refusals, delivery failures,
	// connection changes). Default slog.Default(). Emails, tokens, secrets
	// and response URLs are never logged.
	Logger *slog.Logger
	// StreamInterval is the least time between two chat.appendStream
	// calls of a streamed answer. Default DefaultStreamInterval.
	StreamInterval time.Duration
	// NowFunc returns the current time, for the signature timestamp check
	// and for a reopened Responder's check that the response_url still
	// lives (see Reopen). Default time.Now. (slack-go's verifier also checks
	// the timestamp against the wall clock.)
	NowFunc func() time.Time
	// OnRefuseFunc, when set, is called with one of the Refuse* reasons for
	// every HTTP request refused before dispatch (for metrics). It may be
	// called from many goroutines at once.
	OnRefuseFunc func(reason string)
	// Courses, if set, names the class's course in an assistant thread's
	// suggested prompts. Default nil: generic prompts.
	Courses CourseFinder
}

// DefaultResponseURLPrefixes is where Slack's own response_urls point.
var DefaultResponseURLPrefixes = []string{"https://hooks.slack.com/"}

// Adapter connects Slack to a bot.Dispatcher. Create it with New. Its
// Handler and Run may be used at the same time, from many goroutines. It
// runs no goroutines of its own for commands: the Dispatcher owns them.
type Adapter struct {
	cfg   Config
	log   *slog.Logger
	api   *slackgo.Client // Web API: chat.postEphemeral, apps.connections.open
	hooks *http.Client    // posts to response_urls, guarded by prefixes

	streamInterval time.Duration // Config.StreamInterval, defaulted
	prefixes       []urlPrefix
	events         recentEvents   // greeted assistant threads' event ids
	contexts       threadContexts // the channel each assistant thread's student is viewing
}

// New checks cfg and returns an Adapter. It does no I/O.
func New(cfg Config) (*Adapter, error) {
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	base, err := url.Parse(cfg.APIURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("slack: API URL %q must be an http(s) URL", cfg.APIURL)
	}
	if !strings.HasSuffix(cfg.APIURL, "/") {
		cfg.APIURL += "/" // slack-go appends method names to it
	}
	cfg.SigningSecret = strings.TrimSpace(cfg.SigningSecret)
	cfg.BotToken = strings.TrimSpace(cfg.BotToken)
	cfg.AppToken = strings.TrimSpace(cfg.AppToken)
	if cfg.AppToken != "" && !strings.HasPrefix(cfg.AppToken, "xapp-") {
		return nil, fmt.Errorf("slack: the app-level token must start with xapp-")
	}
	if len(cfg.ResponseURLPrefixes) == 0 {
		cfg.ResponseURLPrefixes = DefaultResponseURLPrefixes
	}
	prefixes, err := parsePrefixes(cfg.ResponseURLPrefixes)
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.NowFunc == nil {
		cfg.NowFunc = time.Now
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = platformhttp.NewHTTPClient()
	}
	opts := []slackgo.Option{slackgo.OptionAPIURL(cfg.APIURL), slackgo.OptionHTTPClient(hc)}
	if cfg.AppToken != "" {
		opts = append(opts, slackgo.OptionAppLevelToken(cfg.AppToken))
	}
	return &Adapter{
		cfg:   cfg,
		log:   cfg.Logger,
		api:   slackgo.New(cfg.BotToken, opts...),
		hooks: newHookClient(prefixes),

		streamInterval: cmp.Or(cfg.StreamInterval, DefaultStreamInterval),
		prefixes:       prefixes,
	}, nil
}

// command turns a slash command into a bot.Command. The trigger id is the
// interaction id: Slack's retries of one command carry the same one, so the
// Dispatcher's ledger answers them once. The text becomes plain text (see
// PlainText), as every adapter hands the bot what the student typed.
func command(sc slackgo.SlashCommand, received time.Time) bot.Command {
	ws := sc.TeamID
	if ws == "" {
		ws = sc.EnterpriseID // an org-wide install may leave team_id empty
	}
	return bot.Command{
		Platform:      bot.PlatformSlack,
		InteractionID: sc.TriggerID,
		Workspace:     ws,
		Channel:       sc.ChannelID,
		User:          sc.UserID,
		Name:          strings.TrimPrefix(strings.TrimSpace(sc.Command), "/"),
		Text:          PlainText(sc.Text),
		ReceivedAt:    received,
	}
}

// valid reports whether sc has what a command needs.
func valid(sc slackgo.SlashCommand) bool {
	return strings.TrimPrefix(strings.TrimSpace(sc.Command), "/") != "" && sc.TriggerID != "" && sc.UserID != "" &&
		(sc.TeamID != "" || sc.EnterpriseID != "")
}

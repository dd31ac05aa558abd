package slack

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
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
	// fallback when a response_url fails. Default: no fallback. Never logged.
	BotToken string
	// AppToken (SLACK_APP_TOKEN, xapp-…) is the app-level token Socket Mode
	// connects with. Required for Run. Never logged.
	AppToken string
	// APIURL is the Web API base every call goes to (SLACK_API_URL), with or
	// without its trailing slash. Default DefaultAPIURL.
	APIURL string
	// HTTPClient makes the Web API calls and the response_url posts.
	// Default: a client with a bounded connection pool (64 connections per
	// host), 10 s dial/TLS/response-header timeouts and a 20 s overall
	// timeout, so a burst of follow-ups cannot open thousands of sockets.
	HTTPClient *http.Client
	// Dispatcher runs the commands. Required by Handler and Run.
	Dispatcher *bot.Dispatcher
	// Logger gets the adapter's own lines (refusals, delivery failures,
	// connection changes). Default slog.Default(). Emails, tokens, secrets
	// and response URLs are never logged.
	Logger *slog.Logger
	// Now returns the current time, for the signature timestamp check.
	// Default time.Now. (slack-go's verifier also checks the timestamp
	// against the wall clock.)
	Now func() time.Time
	// OnRefuse, when set, is called with one of the Refuse* reasons for
	// every HTTP request refused before dispatch (for metrics).
	OnRefuse func(reason string)
	// MaxSocketHandlers bounds Socket Mode commands being handled at once
	// (sync mode holds one for the whole command); past it a command is
	// answered at once with "busy". Default 1000.
	MaxSocketHandlers int
}

// Adapter connects Slack to a bot.Dispatcher. Create it with New. Its
// Handler and Run may be used at the same time, from many goroutines.
type Adapter struct {
	cfg   Config
	log   *slog.Logger
	http  *http.Client
	api   *slackgo.Client // Web API: chat.postEphemeral, apps.connections.open
	slots chan struct{}   // Socket Mode handlers in progress

	mu       sync.Mutex // guards closing against handlers.Add
	closing  bool
	handlers sync.WaitGroup
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
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxSocketHandlers <= 0 {
		cfg.MaxSocketHandlers = 1000
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
		http:  hc,
		api:   slackgo.New(cfg.BotToken, opts...),
		slots: make(chan struct{}, cfg.MaxSocketHandlers),
	}, nil
}

// command turns a slash command into a bot.Command. The trigger id is the
// interaction id: Slack's retries of one command carry the same one, so the
// Dispatcher's ledger answers them once.
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
		Text:          sc.Text,
		ReceivedAt:    received,
	}
}

// valid reports whether sc has what a command needs.
func valid(sc slackgo.SlashCommand) bool {
	return strings.TrimPrefix(strings.TrimSpace(sc.Command), "/") != "" && sc.TriggerID != "" && sc.UserID != "" &&
		(sc.TeamID != "" || sc.EnterpriseID != "")
}

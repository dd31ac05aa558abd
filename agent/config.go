package agent

import (
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults used by [NewRunner] for zero fields of [Config].
const (
	DefaultModel          = "gpt-4o-mini"      // any endpoint other than Google's
	DefaultGeminiModel    = "gemini-2.5-flash" // BaseURL on generativelanguage.googleapis.com
	DefaultMaxConcurrency = 16
	DefaultMaxAttempts    = 4
	DefaultMaxRetryWait   = 30 * time.Second
	DefaultAttemptTimeout = 60 * time.Second
	DefaultRetryBaseDelay = 250 * time.Millisecond
	DefaultRetryMaxDelay  = 8 * time.Second
	DefaultMaxTurns       = 6
	DefaultMaxTokens      = 1024
	// OfflineModel is what [Runner.Model] reports for the offline model.
	OfflineModel = "offline"
)

// Config configures a [Runner]. The zero value is usable: every zero field
// takes the default given in its comment. Reading the environment is the
// caller's job (cmd/classbot); this package never does.
type Config struct {
	// BaseURL of an OpenAI-compatible API, including its version path, e.g.
	// "https://generativelanguage.googleapis.com/v1beta/openai" or
	// "http://127.0.0.1:11434/v1". Empty: OpenAI's default
	// (https://api.openai.com/v1).
	BaseURL string

	// APIKey is sent as a bearer token. Empty: no key (a local Ollama or vLLM).
	// It never appears in errors or logs.
	APIKey string

	// Model used when an Agent does not name one. Empty: DefaultGeminiModel
	// ("gemini-2.5-flash") when BaseURL's host is generativelanguage.googleapis.com,
	// otherwise DefaultModel ("gpt-4o-mini").
	Model string

	// MaxConcurrency bounds the model calls (attempts) in progress at once
	// across the Runner; callers wait for a slot, honouring their context.
	// The slots are shared fairly between classes ([WithClass]): each
	// freed slot goes to the next class with calls waiting, in turn.
	// Zero or negative: 16.
	MaxConcurrency int
	// ClassRPM is CLASS_LLM_RPM: model requests (attempts) per minute per
	// class, a minute's worth at once at most; a class over it waits for
	// its turn while other classes go on. Zero or negative: no limit.
	ClassRPM float64

	// MaxAttempts bounds the attempts of one model call, the first included.
	// Zero or negative: 4.
	MaxAttempts int

	// MaxRetryWait bounds the total time one model call spends sleeping
	// between attempts; a retry whose wait would exceed what is left is not
	// made. Zero or negative: 30s.
	MaxRetryWait time.Duration

	// AttemptTimeout bounds one HTTP attempt; an attempt that times out is
	// retried like a transport error. Zero or negative: 60s.
	AttemptTimeout time.Duration

	// RetryBaseDelay is the backoff before the first retry; it doubles per
	// retry up to RetryMaxDelay, and the actual wait is drawn uniformly from
	// [0, that] (full jitter). After a Retry-After header from the server the
	// wait is that plus the draw. Zero or negative: 250ms.
	RetryBaseDelay time.Duration

	// RetryMaxDelay caps the backoff ceiling. Zero or negative: 8s.
	RetryMaxDelay time.Duration

	// MaxTokens caps the length of each answer, in tokens: it is sent as
	// max_tokens on every chat completion request (as max_completion_tokens
	// for the models go-openai knows to reject max_tokens: OpenAI's o-series
	// and gpt-5 onwards). A model that reaches the cap stops with finish
	// reason "length"; Run keeps that cut answer and reports
	// Result.Truncated. classbot reads it from LLM_MAX_TOKENS.
	// Zero or negative: 1024.
	MaxTokens int

	// HTTPClient sends the requests; it is used as is and may be shared.
	// Nil: a client whose transport bounds connections per host
	// (MaxIdleConnsPerHost = MaxConcurrency, MaxConnsPerHost = 2*MaxConcurrency)
	// and has dial (10s), TLS handshake (10s) and idle (90s) timeouts.
	HTTPClient *http.Client

	// Logger receives one line per Run and one per retry; never the input
	// text nor the API key. Nil: slog.Default().
	Logger *slog.Logger

	// OnRetryFunc, if set, is called once per retry (for metrics), just
	// before the wait. It is called from the goroutine running Run and must be
	// safe for concurrent use. Default nil.
	OnRetryFunc func()

	// Offline selects the built-in offline model (see the package
	// documentation) instead of an HTTP endpoint; BaseURL, APIKey and
	// HTTPClient are then ignored. The caller decides: classbot runs offline
	// when neither a key nor a base URL is configured. Default false.
	Offline bool

	// OfflineLatency is how long the offline model takes to answer, to make
	// the demo feel like a real model. Zero: answers at once.
	OfflineLatency time.Duration
}

// withDefaults returns cfg with every zero field replaced by its default.
func (cfg Config) withDefaults() Config {
	if cfg.Model == "" {
		switch {
		case cfg.Offline:
			cfg.Model = OfflineModel
		case isGoogleBaseURL(cfg.BaseURL):
			cfg.Model = DefaultGeminiModel
		default:
			cfg.Model = DefaultModel
		}
	}
	if cfg.MaxConcurrency <= 0 {
		cfg.MaxConcurrency = DefaultMaxConcurrency
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.MaxRetryWait <= 0 {
		cfg.MaxRetryWait = DefaultMaxRetryWait
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = DefaultAttemptTimeout
	}
	if cfg.RetryBaseDelay <= 0 {
		cfg.RetryBaseDelay = DefaultRetryBaseDelay
	}
	if cfg.RetryMaxDelay <= 0 {
		cfg.RetryMaxDelay = DefaultRetryMaxDelay
	}
	if cfg.RetryMaxDelay < cfg.RetryBaseDelay {
		cfg.RetryMaxDelay = cfg.RetryBaseDelay
	}
	if cfg.MaxTokens <= 0 {
		cfg.MaxTokens = DefaultMaxTokens
	}
	if cfg.OfflineLatency < 0 {
		cfg.OfflineLatency = 0
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

func isGoogleBaseURL(base string) bool {
	u, err := url.Parse(base)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Hostname(), "generativelanguage.googleapis.com")
}

// newHTTPClient returns cfg.HTTPClient, or when it is nil a client whose
// transport bounds connections per host and has dial, TLS and idle timeouts.
func newHTTPClient(cfg Config) *http.Client {
	if cfg.HTTPClient != nil {
		return cfg.HTTPClient
	}
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          2 * cfg.MaxConcurrency, // keep every connection we may reuse: a smaller pool redials and leaves sockets in TIME_WAIT
		MaxIdleConnsPerHost:   cfg.MaxConcurrency,
		MaxConnsPerHost:       2 * cfg.MaxConcurrency,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}}
}

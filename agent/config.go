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
	// Zero or negative: 16.
	MaxConcurrency int

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
	// [0, that] (full jitter). A Retry-After header from the server replaces
	// the drawn wait. Zero or negative: 250ms.
	RetryBaseDelay time.Duration

	// RetryMaxDelay caps the backoff ceiling. Zero or negative: 8s.
	RetryMaxDelay time.Duration

	// HTTPClient sends the requests. Its Transport (nil: http.DefaultTransport)
	// is wrapped to read Retry-After; the caller's client is not modified.
	// Nil: a client whose transport bounds connections per host
	// (MaxIdleConnsPerHost = MaxConcurrency, MaxConnsPerHost = 2*MaxConcurrency)
	// and has dial (10s), TLS handshake (10s) and idle (90s) timeouts.
	HTTPClient *http.Client

	// Logger receives one line per Run and one per retry; never the input
	// text nor the API key. Nil: slog.Default().
	Logger *slog.Logger

	// OnRetry, if set, is called once per retry (for metrics). It is called
	// from the goroutine running Run and must be safe for concurrent use.
	OnRetry func()

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

// newHTTPClient returns a client whose transport records each response's
// status and Retry-After for the retry loop (see retryAfterTransport).
func newHTTPClient(cfg Config) *http.Client {
	var c http.Client
	if cfg.HTTPClient != nil {
		c = *cfg.HTTPClient
	} else {
		c.Transport = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          2 * cfg.MaxConcurrency, // keep every connection we may reuse: a smaller pool redials and leaves sockets in TIME_WAIT
			MaxIdleConnsPerHost:   cfg.MaxConcurrency,
			MaxConnsPerHost:       2 * cfg.MaxConcurrency,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		}
	}
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = retryAfterTransport{base: base}
	return &c
}

package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/queue"
	"github.com/classbot/classbot/store"
)

// Config is everything classbot reads from its environment. Each field names
// its variable and default; .env.example lists them all.
type Config struct {
	Mode bot.Mode // HANDLER_MODE (sync|async|queue|auto); --mode overrides. Default async.
	// AutoInlineBudget is AUTO_INLINE_BUDGET: in auto mode, work done within
	// it is answered inline, else acknowledged then and followed up. It must
	// stay under the platforms' 3-second deadline. Default 2s.
	AutoInlineBudget time.Duration
	// StudentAskRate is STUDENT_ASK_RATE: /ask per student per minute (a
	// minute's worth at once), counted in each process; 0 turns it off.
	// Default 5.
	StudentAskRate float64
	// ClassLLMRPM is CLASS_LLM_RPM: model requests per minute per class (a
	// channel), counted in each process; 0: no limit. Default 0. The
	// model's slots (LLM_MAX_CONCURRENCY) are shared between classes in
	// turn either way.
	ClassLLMRPM float64
	DatabaseURL string // DATABASE_URL. Default empty: the in-memory store, with a warning.

	LLMBaseURL string // LLM_BASE_URL, alias GEMINI_BASE_URL. Default empty (OpenAI's API if a key is set).
	LLMAPIKey  string // LLM_API_KEY, alias GEMINI_API_KEY. Neither key nor base URL: the offline model.
	LLMModel   string // LLM_MODEL. Default gemini-2.5-flash for Gemini's endpoint, gpt-4o-mini otherwise.
	// LLMEmbeddingModel is LLM_EMBEDDING_MODEL: with it, course sections and
	// questions are embedded through the provider's /v1/embeddings and
	// /ask's search is hybrid (lexical and vector rankings fused). Default
	// empty: lexical search only.
	LLMEmbeddingModel string

	HTTPAddr    string // HTTP_ADDR: webhooks and health. Default ":8080".
	MetricsAddr string // METRICS_ADDR: GET /metrics, apart from the public webhooks. Default "127.0.0.1:9090".

	SlackBotToken      string // SLACK_BOT_TOKEN: Web API token (chat.postEphemeral fallback, Socket Mode); checked with auth.test at start.
	SlackAppToken      string // SLACK_APP_TOKEN: app-level token; turns on Socket Mode.
	SlackSigningSecret string // SLACK_SIGNING_SECRET: turns on POST /slack/commands.
	SlackAPIURL        string // SLACK_API_URL. Default "https://slack.com/api/".
	// SlackResponseURLPrefixes (SLACK_RESPONSE_URL_PREFIX, comma-separated):
	// the only places a response_url may point. Default "https://hooks.slack.com/".
	SlackResponseURLPrefixes []string

	DiscordBotToken  string // DISCORD_BOT_TOKEN: gateway connection and command registration.
	DiscordAppID     string // DISCORD_APP_ID: the application id.
	DiscordPublicKey string // DISCORD_PUBLIC_KEY: hex Ed25519 key; turns on POST /discord/interactions.
	DiscordGuildID   string // DISCORD_GUILD_ID: register commands in this guild instead of globally.
	DiscordMentions  bool   // DISCORD_MENTIONS: answer mentions of the bot (needs the Message Content intent).
	DiscordAPIURL    string // DISCORD_API_URL. Default "https://discord.com/api/v10/".

	MaxInFlight       int           // MAX_IN_FLIGHT: commands in progress at once, in every mode. Default 1000.
	LLMMaxConcurrency int           // LLM_MAX_CONCURRENCY: model calls in progress at once. Default 16.
	LLMMaxTokens      int           // LLM_MAX_TOKENS: cap on one answer's length, in tokens. Default 1024.
	ShutdownTimeout   time.Duration // SHUTDOWN_TIMEOUT: how long shutdown waits for in-flight work. Default 30s.

	InteractionsRetention time.Duration // INTERACTIONS_RETENTION: how long ledger rows are kept. Default 720h (30 days).

	QueueWorkers    int           // QUEUE_WORKERS: queue mode's jobs running at once in this process; 0: none (a web-only replica). Default twice LLM_MAX_CONCURRENCY (queue.WorkersFor).
	QueueJobTimeout time.Duration // QUEUE_JOB_TIMEOUT: one attempt of one queued job. Default queue.DefaultJobTimeout.

	CourseInstructions string // COURSE_INSTRUCTIONS, or the contents of COURSE_FILE.
	CourseFile         string // COURSE_FILE: a file with the course instructions.

	// Course notes and /ask memory (course.go).
	CourseDir      string        // COURSE_DIR: folder of Markdown/text notes indexed for /ask. Default empty: no notes.
	AskMemoryTurns int           // ASK_MEMORY_TURNS: earlier /ask turns replayed per student and channel; 0 turns memory off. Default 6.
	AskMemoryTTL   time.Duration // ASK_MEMORY_TTL: how long /ask remembers a turn. Default 24h.

	// Course notes files over this are skipped (config.go).
	CourseMaxFileBytes int64 // COURSE_MAX_FILE_BYTES: bytes, or "10MB", "512KB". Default 10MB.

	TeacherUserIDs []string // TEACHER_USER_IDS: comma-separated Slack or Discord user ids allowed teacher commands (roster.go). Default none.
}

// Defaults, documented in README.md and .env.example.
const (
	defaultHTTPAddr          = ":8080"
	defaultMetricsAddr       = "127.0.0.1:9090"
	defaultSlackAPIURL       = "https://slack.com/api/"
	defaultDiscordAPIURL     = "https://discord.com/api/v10/"
	defaultMaxInFlight       = 1000
	defaultLLMMaxConcurrency = 16
	defaultLLMMaxTokens      = 1024
	defaultResponseURLPrefix = "https://hooks.slack.com/"
	defaultShutdownTimeout   = 30 * time.Second
	defaultRetention         = 30 * 24 * time.Hour
	defaultQueueWorkers      = queue.DefaultWorkers
	defaultQueueJobTimeout   = queue.DefaultJobTimeout
	defaultAutoInlineBudget  = 2 * time.Second
	defaultStudentAskRate    = 5
)

// loadConfig reads the configuration and checks it. Its errors are
// sentences a teacher can act on.
func loadConfig(getenv func(string) string) (Config, error) {
	env := func(k, def string) string {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
		return def
	}
	c := Config{
		DatabaseURL:        env("DATABASE_URL", ""),
		LLMBaseURL:         env("LLM_BASE_URL", env("GEMINI_BASE_URL", "")),
		LLMAPIKey:          env("LLM_API_KEY", env("GEMINI_API_KEY", "")),
		LLMModel:           env("LLM_MODEL", ""),
		LLMEmbeddingModel:  env("LLM_EMBEDDING_MODEL", ""),
		HTTPAddr:           env("HTTP_ADDR", defaultHTTPAddr),
		MetricsAddr:        env("METRICS_ADDR", defaultMetricsAddr),
		SlackBotToken:      env("SLACK_BOT_TOKEN", ""),
		SlackAppToken:      env("SLACK_APP_TOKEN", ""),
		SlackSigningSecret: env("SLACK_SIGNING_SECRET", ""),
		SlackAPIURL:        env("SLACK_API_URL", defaultSlackAPIURL),
		DiscordBotToken:    env("DISCORD_BOT_TOKEN", ""),
		DiscordAppID:       env("DISCORD_APP_ID", ""),
		DiscordPublicKey:   env("DISCORD_PUBLIC_KEY", ""),
		DiscordGuildID:     env("DISCORD_GUILD_ID", ""),
		DiscordAPIURL:      env("DISCORD_API_URL", defaultDiscordAPIURL),
		CourseInstructions: env("COURSE_INSTRUCTIONS", ""),
		CourseFile:         env("COURSE_FILE", ""),
	}
	var errs []error
	var err error
	if v := env("DISCORD_MENTIONS", ""); v != "" {
		if c.DiscordMentions, err = strconv.ParseBool(v); err != nil {
			errs = append(errs, fmt.Errorf("DISCORD_MENTIONS must be true or false, not %q", v))
		}
	}
	if c.Mode, err = bot.ParseMode(env("HANDLER_MODE", string(bot.ModeAsync))); err != nil {
		errs = append(errs, fmt.Errorf("HANDLER_MODE: %w", err))
	}
	if c.AutoInlineBudget, err = positiveDuration(env("AUTO_INLINE_BUDGET", ""), defaultAutoInlineBudget); err != nil {
		errs = append(errs, fmt.Errorf("AUTO_INLINE_BUDGET %w", err))
	} else if c.AutoInlineBudget.Seconds() >= platformDeadline {
		errs = append(errs, fmt.Errorf("AUTO_INLINE_BUDGET must stay under the platforms' 3-second deadline, such as 2s, not %s", c.AutoInlineBudget))
	}
	if c.StudentAskRate, err = perMinute(env("STUDENT_ASK_RATE", ""), defaultStudentAskRate); err != nil {
		errs = append(errs, fmt.Errorf("STUDENT_ASK_RATE %w", err))
	}
	if c.ClassLLMRPM, err = perMinute(env("CLASS_LLM_RPM", ""), 0); err != nil {
		errs = append(errs, fmt.Errorf("CLASS_LLM_RPM %w", err))
	}
	if c.MaxInFlight, err = positiveInt(env("MAX_IN_FLIGHT", ""), defaultMaxInFlight); err != nil {
		errs = append(errs, fmt.Errorf("MAX_IN_FLIGHT %w", err))
	}
	if c.LLMMaxConcurrency, err = positiveInt(env("LLM_MAX_CONCURRENCY", ""), defaultLLMMaxConcurrency); err != nil {
		errs = append(errs, fmt.Errorf("LLM_MAX_CONCURRENCY %w", err))
	}
	if c.LLMEmbeddingModel != "" && c.LLMBaseURL == "" && c.LLMAPIKey == "" {
		errs = append(errs, errors.New("LLM_EMBEDDING_MODEL needs a model provider: set LLM_BASE_URL or LLM_API_KEY, or unset LLM_EMBEDDING_MODEL"))
	}
	if c.LLMMaxTokens, err = positiveInt(env("LLM_MAX_TOKENS", ""), defaultLLMMaxTokens); err != nil {
		errs = append(errs, fmt.Errorf("LLM_MAX_TOKENS %w", err))
	}
	for _, p := range strings.Split(env("SLACK_RESPONSE_URL_PREFIX", defaultResponseURLPrefix), ",") {
		if p = strings.TrimSpace(p); p != "" {
			c.SlackResponseURLPrefixes = append(c.SlackResponseURLPrefixes, p)
		}
	}
	if c.InteractionsRetention, err = positiveDuration(env("INTERACTIONS_RETENTION", ""), defaultRetention); err != nil {
		errs = append(errs, fmt.Errorf("INTERACTIONS_RETENTION %w", err))
	}
	if c.ShutdownTimeout, err = positiveDuration(env("SHUTDOWN_TIMEOUT", ""), defaultShutdownTimeout); err != nil {
		errs = append(errs, fmt.Errorf("SHUTDOWN_TIMEOUT %w", err))
	}
	if w := env("QUEUE_WORKERS", ""); w == "0" {
		c.QueueWorkers = 0 // a web-only replica: other processes run the jobs
	} else if c.QueueWorkers, err = positiveInt(w, queue.WorkersFor(c.LLMMaxConcurrency)); err != nil {
		errs = append(errs, fmt.Errorf("QUEUE_WORKERS %w (or 0 for none)", err))
	}
	if c.QueueJobTimeout, err = positiveDuration(env("QUEUE_JOB_TIMEOUT", ""), defaultQueueJobTimeout); err != nil {
		errs = append(errs, fmt.Errorf("QUEUE_JOB_TIMEOUT %w", err))
	}
	if c.CourseFile != "" && c.CourseInstructions == "" {
		b, err := os.ReadFile(c.CourseFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("COURSE_FILE: cannot read %s: %w", c.CourseFile, err))
		}
		c.CourseInstructions = string(b)
	}
	c.CourseMaxFileBytes = store.DefaultMaxFileBytes
	if v := env("COURSE_MAX_FILE_BYTES", ""); v != "" {
		if c.CourseMaxFileBytes, err = store.ParseFileSize(v); err != nil {
			errs = append(errs, fmt.Errorf("COURSE_MAX_FILE_BYTES %w", err))
		}
	}
	errs = append(errs, loadCourseConfig(&c, env)...)
	errs = append(errs, loadTeacherConfig(&c, env)...)
	return c, errors.Join(append(errs, c.validate())...)
}

// validate checks what can be checked without the network.
func (c Config) validate() error {
	var errs []error
	if c.DatabaseURL != "" {
		if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			errs = append(errs, errors.New("DATABASE_URL must look like postgres://user@host:5432/dbname"))
		}
	}
	if c.LLMBaseURL != "" {
		if u, err := url.Parse(c.LLMBaseURL); err != nil || u.Scheme == "" || u.Host == "" {
			errs = append(errs, errors.New("LLM_BASE_URL must be a URL such as http://localhost:11434/v1"))
		}
	}
	for name, v := range map[string]string{"SLACK_API_URL": c.SlackAPIURL, "DISCORD_API_URL": c.DiscordAPIURL} {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s must be an http(s) URL", name))
		}
	}
	if c.SlackAppToken != "" && !strings.HasPrefix(c.SlackAppToken, "xapp-") {
		errs = append(errs, errors.New("SLACK_APP_TOKEN must be an app-level token starting with xapp-"))
	}
	if c.SlackAppToken != "" && c.SlackBotToken == "" {
		errs = append(errs, errors.New("SLACK_APP_TOKEN (Socket Mode) needs SLACK_BOT_TOKEN too"))
	}
	if c.DiscordPublicKey != "" {
		if b, err := hex.DecodeString(c.DiscordPublicKey); err != nil || len(b) != 32 {
			errs = append(errs, errors.New("DISCORD_PUBLIC_KEY must be 64 hex characters (the Public Key on the Discord developer portal)"))
		}
		if c.DiscordAppID == "" {
			errs = append(errs, errors.New("DISCORD_PUBLIC_KEY needs DISCORD_APP_ID too (the Application ID on the Discord developer portal)"))
		}
	}
	if c.DiscordBotToken != "" && c.DiscordAppID == "" {
		errs = append(errs, errors.New("DISCORD_BOT_TOKEN needs DISCORD_APP_ID too (the Application ID on the Discord developer portal)"))
	}
	return errors.Join(errs...)
}

func positiveInt(s string, def int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("must be a whole number above 0, not %q", s)
	}
	return n, nil
}

// perMinute reads a rate per minute: a number, 0 for none.
func perMinute(s string, def float64) (float64, error) {
	if s == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("must be a number per minute, 0 for no limit, not %q", s)
	}
	return f, nil
}

func positiveDuration(s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("must be a duration such as 30s or 2m, not %q", s)
	}
	return d, nil
}

// hintError is an error rewritten for the person running classbot: its
// message says what to change, and the original stays in the chain.
type hintError struct {
	msg string
	err error
}

func (e *hintError) Error() string { return e.msg }
func (e *hintError) Unwrap() error { return e.err }

// explainDatabaseError rewrites the ways a first connection to PostgreSQL
// fails into one line that names DATABASE_URL and says what to do: the
// database does not exist (with the createdb command that makes it),
// nothing listens where DATABASE_URL points (start PostgreSQL), the role
// does not exist or the password is wrong. It never repeats the password.
// Any other error is returned as it is.
func explainDatabaseError(err error) error {
	var ce *pgconn.ConnectError
	if err == nil || !errors.As(err, &ce) || ce.Config == nil {
		return err
	}
	c := ce.Config
	where := net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port)))
	conn := fmt.Sprintf("-h %s -p %d -U %s", shellQuote(c.Host), c.Port, shellQuote(c.User))
	// SQLSTATEs: 3D000 invalid_catalog_name, 28P01 invalid_password,
	// 28000 invalid_authorization_specification.
	var pe *pgconn.PgError
	errors.As(err, &pe)
	var msg string
	switch {
	case pe != nil && pe.Code == "3D000":
		msg = fmt.Sprintf("the database %q does not exist on the PostgreSQL server at %s (DATABASE_URL): create it with `createdb %s %s` (or `psql %s -d postgres -c %s`), or set DATABASE_URL to a database that exists",
			c.Database, where, conn, shellQuote(c.Database), conn, shellQuote("CREATE DATABASE "+sqlIdent(c.Database)))
	case pe != nil && pe.Code == "28P01":
		msg = fmt.Sprintf("PostgreSQL at %s refused the password of user %q: fix the password in DATABASE_URL", where, c.User)
	case pe != nil && pe.Code == "28000":
		msg = fmt.Sprintf("PostgreSQL at %s refused user %q (%s): fix the user in DATABASE_URL, or create the role as a superuser (for example `createuser -h %s -p %d -U postgres %s`)",
			where, c.User, pe.Message, shellQuote(c.Host), c.Port, shellQuote(c.User))
	case errors.Is(err, syscall.ECONNREFUSED):
		msg = fmt.Sprintf("nothing accepts connections at %s, where DATABASE_URL points: start PostgreSQL there (for example `sudo systemctl start postgresql`, `brew services start postgresql`, or `docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres`) or fix the host and port in DATABASE_URL",
			where)
	default:
		return err
	}
	return &hintError{msg: msg, err: err}
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// sqlIdent quotes a PostgreSQL identifier when it needs it.
func sqlIdent(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == "" && (s[0] < '0' || s[0] > '9') {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

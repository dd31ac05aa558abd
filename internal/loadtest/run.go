package loadtest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	classbot "github.com/classbot/classbot/bot"
)

// Bot is the server under test.
type Bot struct {
	// URL is its base, http://127.0.0.1:PORT.
	URL string
	// PID is its process, for CPU time and peak memory from /proc; zero when
	// it runs inside this process or is not known.
	PID int
	// Store says what it stores in: "postgres", "memory" or "none" (the bare
	// reference).
	Store string
	// Stop stops it (gracefully, then by force when ctx is done); nil for a
	// bot this run did not start.
	Stop func(ctx context.Context) error
}

// StartFunc starts the bot with env (the variables classbot serve reads:
// secrets, the stand-ins' URLs, HANDLER_MODE, HTTP_ADDR=127.0.0.1:0,
// METRICS_ADDR=127.0.0.1:0) and returns once it listens. It may replace
// HTTP_ADDR with a free port of its choosing (Child does, so that it knows
// the address without reading the bot's output). It must stop everything it
// started when ctx is done or Bot.Stop is called.
type StartFunc func(ctx context.Context, env map[string]string) (*Bot, error)

// Options are what a run needs besides its Config.
type Options struct {
	// Start starts the bot; nil means Config.Target is a running one.
	Start StartFunc
	// BotEnv is added to the bot's environment (DATABASE_URL,
	// MAX_IN_FLIGHT, ...).
	BotEnv map[string]string
	// TargetPID is the running target's process, for CPU and memory.
	TargetPID int
	// Progress gets a line now and then (nil: none).
	Progress io.Writer
}

// answer kinds, from the first response's body.
const (
	kindDeferred = iota // acknowledged; a follow-up will come
	kindAnswer          // answered in the response (sync mode)
	kindRefused         // answered at once with busy / sorry: no work done
)

// runner is one run's state.
type runner struct {
	cfg    Config
	client *http.Client
	sink   *sink
	t      *tracker
	// followUps: the bot answers with follow-ups (async and queue modes),
	// so a Slack acknowledgement is a deferral.
	followUps bool

	seq   atomic.Uint64
	runID uint64

	mu           sync.Mutex
	acks         []time.Duration // 200 responses' acknowledgement latency
	answers      []time.Duration // sync: answered in the response (complete)
	sent         int
	statusErrors int // a status other than 200
	transport    int // connection errors
	timeouts     int
	refused      int
	expected     int
	dropped      int
	lastAck      time.Time
	students     map[string]struct{} // registered students (by platform/class/index)
	errSample    string
}

// Run does one bounded run and returns its report. The bot is started with
// opts.Start (and stopped at the end) or is cfg.Target.
func Run(ctx context.Context, cfg Config, opts Options) (*Report, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Start == nil && cfg.Target == "" {
		return nil, errors.New("loadtest: no bot: give a StartFunc or a target URL")
	}
	if cfg.SlackSecret == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		cfg.SlackSecret = hex.EncodeToString(b[:])
	}
	if cfg.DiscordKey == nil {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		cfg.DiscordKey = priv
	}
	if cfg.DiscordAppID == "" {
		cfg.DiscordAppID = "1100000000000000001"
	}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}

	r := &runner{cfg: cfg, t: newTracker(), followUps: cfg.followsUp(), students: map[string]struct{}{}, runID: runID()}
	var err error
	if r.sink, err = startSink(cfg.SinkAddr, r.t); err != nil {
		return nil, fmt.Errorf("start the follow-up sink: %w", err)
	}
	defer r.sink.close()
	model, err := startModel(cfg.ModelAddr, cfg.ModelLatency)
	if err != nil {
		return nil, fmt.Errorf("start the model stand-in: %w", err)
	}
	defer model.close()

	env := map[string]string{
		"HTTP_ADDR":            "127.0.0.1:0",
		"METRICS_ADDR":         "127.0.0.1:0", // never a fixed port another bot may hold
		"HANDLER_MODE":         cfg.Mode,
		"SLACK_SIGNING_SECRET": cfg.SlackSecret,
		"SLACK_API_URL":        r.sink.url + "/slack/api/",
		// The sink's loopback address is where this run's response_urls
		// point: the only place the bot may post them.
		"SLACK_RESPONSE_URL_PREFIX": r.sink.url + "/slack/commands/",
		"DISCORD_PUBLIC_KEY":        hex.EncodeToString(cfg.DiscordKey.Public().(ed25519.PublicKey)),
		"DISCORD_APP_ID":            cfg.DiscordAppID,
		"DISCORD_API_URL":           r.sink.url + "/api/v10/",
		"LLM_BASE_URL":              model.url,
		"LLM_API_KEY":               "loadtest-dummy-key",
		"LLM_MODEL":                 "loadtest-model",
		"SHUTDOWN_TIMEOUT":          "10s",
	}
	for k, v := range opts.BotEnv {
		env[k] = v
	}

	var jobs0 queueSnapshot
	if cfg.Mode == "queue" && cfg.DatabaseURL != "" {
		// Before the bot starts, so that its workers never take them.
		n, err := clearStaleJobs(ctx, cfg.DatabaseURL)
		if err != nil {
			return nil, fmt.Errorf("remove earlier runs' unfinished jobs: %w", err)
		}
		if n > 0 {
			fmt.Fprintf(progress, "loadtest: %s: deleted %d unfinished jobs of earlier load-test runs (their sink is gone)\n", labelOr(cfg), n)
		}
	}

	bot := &Bot{URL: cfg.Target, PID: opts.TargetPID}
	if opts.Start != nil {
		if bot, err = opts.Start(ctx, env); err != nil {
			return nil, fmt.Errorf("start the bot: %w", err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
			defer cancel()
			if bot.Stop != nil {
				_ = bot.Stop(sctx)
			}
		}()
	}
	if err := CheckLoopbackURL(bot.URL); err != nil {
		return nil, err
	}
	cfg.Target = strings.TrimRight(bot.URL, "/")
	r.cfg = cfg
	r.client = newClient(cfg.Connections, cfg.Timeout)
	defer r.client.CloseIdleConnections()
	if err := waitHealthy(ctx, r.client, cfg.Target); err != nil {
		return nil, err
	}

	rep := &Report{Label: cfg.Label, Mode: cfg.Mode, Platform: cfg.Platform, Classes: cfg.Classes, Students: cfg.Students,
		AskRatio: cfg.AskRatio, ModelLatency: cfg.ModelLatency.String(), Store: bot.Store, Connections: cfg.Connections}
	if bot.Store == "none" {
		rep.ModelLatency = "none (not called)"
	}
	if cfg.Rate > 0 {
		rep.Loop, rep.Rate = "open", cfg.Rate
	} else {
		rep.Loop, rep.Concurrency, rep.RequestLimit = "closed", cfg.Concurrency, cfg.Requests
	}
	rep.DurationLimit = cfg.Duration.String()
	if cfg.DBLatency > 0 {
		rep.DBLatency = cfg.DBLatency.String()
	}
	var db0 dbSnapshot
	db0Err := errors.New("no database")
	if cfg.DatabaseURL != "" {
		db0, db0Err = readDB(ctx, cfg.DatabaseURL, false)
		if db0Err != nil {
			rep.DBError = "before the run: " + db0Err.Error()
		}
		if cfg.Mode == "queue" {
			jobs0, _ = readJobs(ctx, cfg.DatabaseURL, 0)
		}
	}
	self := os.Getpid()
	selfCPU0, _ := procCPU(self)
	var cpu0 time.Duration
	if bot.PID > 0 {
		cpu0, _ = procCPU(bot.PID)
	}
	busy0, pg0, machineErr := machineCPU()

	start := time.Now()
	fmt.Fprintf(progress, "loadtest: %s: sending for up to %s…\n", labelOr(cfg), cfg.Duration)
	if cfg.Rate > 0 {
		r.openLoop(ctx, start)
	} else {
		r.closedLoop(ctx, start)
	}
	sendEnd := time.Now()

	r.mu.Lock()
	expected := r.expected
	r.mu.Unlock()
	if r.followUps && expected > 0 {
		fmt.Fprintf(progress, "loadtest: %s: waiting up to %s for %d follow-ups…\n", labelOr(cfg), cfg.Drain, expected)
		r.drain(ctx, expected, cfg.Drain)
	}

	if selfCPU1, err := procCPU(self); err == nil {
		rep.GeneratorCPUSeconds = (selfCPU1 - selfCPU0).Seconds()
	}
	if busy1, pg1, err := machineCPU(); err == nil && machineErr == nil {
		rep.MachineCPUSeconds = (busy1 - busy0).Seconds()
		rep.PostgresCPUSeconds = (pg1 - pg0).Seconds()
	}
	if bot.PID > 0 && bot.PID != self {
		if cpu1, err := procCPU(bot.PID); err == nil {
			rep.BotCPUSeconds = (cpu1 - cpu0).Seconds()
		}
		if hwm, err := procPeakRSS(bot.PID); err == nil {
			rep.BotPeakRSSMB = float64(hwm) / (1 << 20)
		}
	}
	// Stop the bot before counting: a graceful stop finishes the work in
	// flight, so a follow-up (or a repeated one) it still posts is counted,
	// and its database backends report their commits when they end.
	if bot.Stop != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		_ = bot.Stop(sctx)
		cancel()
	}
	r.fill(rep, start, sendEnd)
	if cfg.DatabaseURL != "" {
		fmt.Fprintf(progress, "loadtest: %s: reading PostgreSQL's counters…\n", labelOr(cfg))
		db1, err := readDB(ctx, cfg.DatabaseURL, true)
		switch {
		case err != nil:
			rep.DBError = err.Error()
		case db1.rowsErr != nil:
			rep.DBError = "count rows: " + db1.rowsErr.Error()
		default:
			// A fresh database has no tables before the run: zero rows.
			rep.DB = &DBRows{Registrations: db1.registrations, Interactions: db1.interactions,
				RegistrationsAdded: db1.registrations - db0.registrations, InteractionsAdded: db1.interactions - db0.interactions}
		}
		if err == nil && db0Err == nil {
			n := db1.commits - db0.commits
			rep.PostgresCommits = &n
			if rep.Complete > 0 {
				per := float64(n) / float64(rep.Complete)
				rep.CommitsPerInteraction = &per
			}
		}
		if cfg.Mode == "queue" {
			if j, err := readJobs(ctx, cfg.DatabaseURL, jobs0.maxID); err != nil {
				rep.DBError = strings.TrimPrefix(rep.DBError+"; ", "; ") + "count River's jobs: " + err.Error()
			} else {
				rep.Jobs = &j.jobs
			}
		}
	}
	return rep, nil
}

func labelOr(c Config) string {
	if c.Label != "" {
		return c.Label
	}
	return c.Mode
}

// newClient is the generator's HTTP client: a keep-alive pool of at most n
// connections, so a run reuses its connections instead of leaving
// thousands in TIME_WAIT, and a timeout on every request.
func newClient(n int, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          n,
			MaxIdleConnsPerHost:   n,
			MaxConnsPerHost:       n,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: timeout,
			DisableCompression:    true,
		},
	}
}

// waitHealthy polls GET /healthz for up to 30 s.
func waitHealthy(ctx context.Context, c *http.Client, base string) error {
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
		resp, err := c.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /healthz: %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("the bot at %s is not healthy after 30s: %w", base, last)
}

func (r *runner) openLoop(ctx context.Context, start time.Time) {
	cfg := r.cfg
	end := start.Add(cfg.Duration)
	pending := make(chan struct{}, cfg.MaxPending)
	rng := mrand.New(mrand.NewPCG(cfg.Seed, 0))
	var wg sync.WaitGroup
	for i := 0; ; i++ {
		at := start.Add(time.Duration(float64(i) * float64(time.Second) / cfg.Rate))
		if !at.Before(end) || ctx.Err() != nil {
			break
		}
		if d := time.Until(at); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		cmd := cfg.pick(rng, r.runID, r.seq.Add(1))
		select {
		case pending <- struct{}{}:
		default:
			r.mu.Lock()
			r.dropped++
			r.mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-pending }()
			// Latency counts from the moment the command was due, so a
			// generator that falls behind does not hide the bot's delays.
			r.send(ctx, cmd, at)
		}()
	}
	wg.Wait()
}

func (r *runner) closedLoop(ctx context.Context, start time.Time) {
	cfg := r.cfg
	end := start.Add(cfg.Duration)
	var wg sync.WaitGroup
	for w := range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := mrand.New(mrand.NewPCG(cfg.Seed, uint64(w)+1))
			for ctx.Err() == nil && time.Now().Before(end) {
				n := r.seq.Add(1)
				if cfg.Requests > 0 && n > uint64(cfg.Requests) {
					return
				}
				r.send(ctx, cfg.pick(rng, r.runID, n), time.Now())
			}
		}()
	}
	wg.Wait()
}

// request builds the signed HTTP request for cmd.
func (r *runner) request(ctx context.Context, cmd command) (*http.Request, error) {
	ts := unixNow()
	if cmd.platform == PlatformDiscord {
		body := discordBody(cmd, r.cfg.DiscordAppID)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.cfg.Target+"/discord/interactions", bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "Discord-Interactions/1.0 (+https://discord.com)")
		req.Header.Set("X-Signature-Timestamp", ts)
		req.Header.Set("X-Signature-Ed25519", DiscordSignature(r.cfg.DiscordKey, ts, body))
		return req, nil
	}
	body := slackForm(cmd, r.sink.url)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.cfg.Target+"/slack/commands", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", SlackSignature(r.cfg.SlackSecret, ts, body))
	return req, nil
}

// send sends one command and records what came back. at is when it was due.
func (r *runner) send(ctx context.Context, cmd command, at time.Time) {
	req, err := r.request(ctx, cmd)
	if err != nil {
		r.fail(&r.transport, err)
		return
	}
	if r.followUps {
		r.t.add(cmd.seq, at) // before sending: the follow-up may beat the ack's bookkeeping
	}
	r.mu.Lock()
	r.sent++
	r.mu.Unlock()
	resp, err := r.client.Do(req)
	if err != nil {
		r.t.forget(cmd.seq)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			r.fail(&r.timeouts, err)
		} else {
			r.fail(&r.transport, err)
		}
		return
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	now := time.Now()
	lat := now.Sub(at)
	if err != nil {
		r.t.forget(cmd.seq)
		r.fail(&r.transport, err)
		return
	}
	if resp.StatusCode != http.StatusOK {
		r.t.forget(cmd.seq)
		r.fail(&r.statusErrors, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body)))
		return
	}
	kind := classify(cmd.platform, r.followUps, body)
	if r.cfg.Mode == "auto" {
		kind = classifyAuto(cmd.platform, body)
	}
	switch kind {
	case kindRefused:
		r.t.refuse(cmd.seq) // a follow-up for it would contradict the refusal
	case kindAnswer:
		r.t.forget(cmd.seq)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.acks = append(r.acks, lat)
	if now.After(r.lastAck) {
		r.lastAck = now
	}
	switch kind {
	case kindDeferred:
		r.expected++
	case kindAnswer:
		r.answers = append(r.answers, lat)
	case kindRefused:
		r.refused++
		return
	}
	if cmd.name == "register" {
		r.students[cmd.student.key()] = struct{}{}
	}
}

func (r *runner) fail(counter *int, err error) {
	r.mu.Lock()
	*counter++
	if r.errSample == "" {
		r.errSample = err.Error()
	}
	r.mu.Unlock()
}

// classify reads a 200 response: a deferral (Discord type 5; Slack's
// acknowledgement in async and queue modes, followUps), an answer (sync
// mode), or an immediate refusal (busy, restarting, sorry).
func classify(platform string, followUps bool, body []byte) int {
	lower := bytes.ToLower(body)
	if bytes.Contains(lower, []byte("busy")) || bytes.Contains(lower, []byte("restarting")) || bytes.Contains(lower, []byte("sorry")) ||
		bytes.Contains(lower, []byte("try again in")) {
		return kindRefused
	}
	if platform == PlatformDiscord {
		if bytes.Contains(body, []byte(`"type":5`)) {
			return kindDeferred
		}
		return kindAnswer
	}
	if followUps {
		return kindDeferred
	}
	return kindAnswer
}

// ackTexts are the bot's acknowledgements: in auto mode a Slack response
// that says one of them is a deferral, any other is the answer.
var ackTexts = func() []string {
	var acks []string
	for _, c := range classbot.Commands {
		if c.Ack != "" {
			acks = append(acks, c.Ack)
		}
	}
	return acks
}()

// classifyAuto reads a 200 response in auto mode, where each command is
// answered in the response or acknowledged and followed up.
func classifyAuto(platform string, body []byte) int {
	kind := classify(platform, true, body)
	if kind != kindDeferred || platform == PlatformDiscord {
		return kind
	}
	var m struct {
		Text string `json:"text"`
	}
	if json.Unmarshal(body, &m) == nil && slices.Contains(ackTexts, m.Text) {
		return kindDeferred
	}
	return kindAnswer
}

// drain waits until want follow-ups have arrived or d has passed.
func (r *runner) drain(ctx context.Context, want int, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		got, changed := r.t.deliveredCount()
		if got >= want {
			return
		}
		select {
		case <-changed:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/classbot/classbot/bot/discord/discordtest"
	"github.com/classbot/classbot/bot/slack/slacktest"
)

// lockedBuffer is an io.Writer safe for the concurrent writes of run.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// served is a classbot serve started in-process by startServe.
type served struct {
	URL        string // http://127.0.0.1:PORT, the webhooks and health
	MetricsURL string // http://127.0.0.1:PORT of METRICS_ADDR
	Stdout     *lockedBuffer
	Stderr     *lockedBuffer
	cancel     context.CancelFunc
	done       chan struct{} // closed when run returns
	err        error         // what run returned; read after done is closed
}

// Stop cancels serve's context and returns what run returned. It may be
// called more than once (cleanup calls it too).
func (s *served) Stop(t *testing.T) error {
	t.Helper()
	s.cancel()
	select {
	case <-s.done:
		return s.err
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30s of its context being cancelled")
		return nil
	}
}

var (
	listeningRE = regexp.MustCompile(`listening on (http://[0-9.:]+)`)
	metricsRE   = regexp.MustCompile(`metrics on (http://[0-9.:]+)/metrics`)
)

// startServe runs "classbot serve" with env (HTTP_ADDR defaults to
// 127.0.0.1:0) and waits until it listens. It is stopped at cleanup.
func startServe(t *testing.T, env map[string]string, args ...string) *served {
	t.Helper()
	if _, ok := env["HTTP_ADDR"]; !ok {
		env["HTTP_ADDR"] = "127.0.0.1:0"
	}
	if _, ok := env["METRICS_ADDR"]; !ok {
		env["METRICS_ADDR"] = "127.0.0.1:0"
	}
	getenv := func(k string) string { return env[k] }
	ctx, cancel := context.WithCancel(t.Context())
	s := &served{Stdout: &lockedBuffer{}, Stderr: &lockedBuffer{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.err = run(ctx, append([]string{"classbot", "serve"}, args...), getenv, strings.NewReader(""), s.Stdout, s.Stderr)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := s.Stdout.String()
		if m, mm := listeningRE.FindStringSubmatch(out), metricsRE.FindStringSubmatch(out); m != nil && mm != nil {
			s.URL, s.MetricsURL = m[1], mm[1]
			break
		}
		select {
		case <-s.done:
			t.Fatalf("serve exited before listening: %v\nstderr:\n%s", s.err, s.Stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("serve did not listen within 30s\nstderr:\n%s", s.Stderr.String())
		}
	}
	t.Cleanup(func() { _ = s.Stop(t) })
	return s
}

func TestServeHealthzAndStop(t *testing.T) {
	s := startServe(t, map[string]string{})
	resp, err := http.Get(s.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		t.Fatalf("GET /healthz = %d %q, want 200 ok", resp.StatusCode, body)
	}
	resp, err = http.Get(s.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /readyz = %d, want 200", resp.StatusCode)
	}
	// /metrics is served on METRICS_ADDR only, never on the public listener.
	if m := getBody(t, s.MetricsURL+"/metrics"); !strings.Contains(m, "classbot_in_flight") {
		t.Errorf("METRICS_ADDR /metrics lacks classbot_in_flight")
	}
	if resp, err := http.Get(s.URL + "/metrics"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET /metrics on HTTP_ADDR = %d, want 404", resp.StatusCode)
		}
	}
	if err := s.Stop(t); err != nil {
		t.Fatalf("serve returned %v after its context was cancelled, want nil", err)
	}
	if _, err := http.Get(s.URL + "/healthz"); err == nil {
		t.Fatal("server still answers after serve returned")
	}
}

func TestRunUsage(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantUsage bool // a *usageError (exit 2)
		wantErr   bool
		wantOut   string
	}{
		{name: "no command", args: nil, wantUsage: true, wantErr: true},
		{name: "unknown command", args: []string{"frobnicate"}, wantUsage: true, wantErr: true},
		{name: "help", args: []string{"--help"}, wantOut: "classbot <command>"},
		{name: "serve help", args: []string{"serve", "--help"}, wantOut: "Usage: classbot serve"},
		{name: "demo help", args: []string{"demo", "--help"}, wantOut: "--db-delay"},
		{name: "help lists demo ask", args: []string{"--help"}, wantOut: "\n  demo ask  "},
		{name: "demo help shows demo ask", args: []string{"demo", "--help"}, wantOut: "classbot demo ask [--mode"},
		{name: "bad flag", args: []string{"demo", "--nope"}, wantUsage: true, wantErr: true},
		{name: "bad mode", args: []string{"demo", "--mode", "fast", "--name", "Ada", "--email", "a@b.c"}, wantUsage: true, wantErr: true},
		{name: "ask without question", args: []string{"ask"}, wantUsage: true, wantErr: true},
		{name: "version", args: []string{"version"}, wantOut: "classbot "},
		{name: "migrate without database", args: []string{"migrate"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut lockedBuffer
			err := run(t.Context(), append([]string{"classbot"}, tt.args...), func(string) string { return "" }, strings.NewReader(""), &out, &errOut)
			if (err != nil) != tt.wantErr {
				t.Fatalf("run(%q) = %v, want error %v", tt.args, err, tt.wantErr)
			}
			var ue *usageError
			if errors.As(err, &ue) != tt.wantUsage {
				t.Fatalf("run(%q) = %v, usage error %v, want %v", tt.args, err, errors.As(err, &ue), tt.wantUsage)
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Fatalf("stdout %q does not contain %q", out.String(), tt.wantOut)
			}
		})
	}
}

func TestConfigErrorsAreSentences(t *testing.T) {
	env := map[string]string{
		"DISCORD_PUBLIC_KEY": "not-hex",
		"MAX_IN_FLIGHT":      "-3",
		"HANDLER_MODE":       "fast",
	}
	_, err := loadConfig(func(k string) string { return env[k] })
	if err == nil {
		t.Fatal("loadConfig accepted a bad configuration")
	}
	for _, want := range []string{"DISCORD_PUBLIC_KEY must be 64 hex characters", "MAX_IN_FLIGHT must be a whole number", "HANDLER_MODE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// getBody GETs url and returns its body; any status but 200 fails the test.
func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// lookupOf is an os.LookupEnv over m: a key in m is set, even to "".
func lookupOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// TestEmptyVariableOverridesDotEnv: DATABASE_URL= in the environment turns
// off the database .env names, so migrate says there is none instead of
// using .env's.
func TestEmptyVariableOverridesDotEnv(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.WriteFile(".env", []byte("DATABASE_URL=mysql://from-dotenv/db\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	migrate := func(environ func(string) (string, bool)) error {
		var out, errOut lockedBuffer
		return run(t.Context(), []string{"classbot", "migrate"}, environ, strings.NewReader(""), &out, &errOut)
	}
	if err := migrate(lookupOf(nil)); err == nil || !strings.Contains(err.Error(), "DATABASE_URL must look like postgres://") {
		t.Fatalf("unset DATABASE_URL: %v, want .env's (bad) URL to be used", err)
	}
	if err := migrate(lookupOf(map[string]string{"DATABASE_URL": ""})); err == nil || !strings.Contains(err.Error(), "DATABASE_URL is not set") {
		t.Fatalf("DATABASE_URL set to empty: %v, want it to win over .env", err)
	}
}

// TestBinaryEmptyVariableOverridesDotEnv: main hands run a lookup, so the
// built binary honours an empty variable too.
func TestBinaryEmptyVariableOverridesDotEnv(t *testing.T) {
	if testing.Short() {
		t.Skip("builds classbot")
	}
	bin := buildClassbot(t, t.TempDir())
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("DATABASE_URL=mysql://from-dotenv/db\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), bin, "migrate")
	cmd.Dir, cmd.Env = dir, []string{"PATH=" + os.Getenv("PATH"), "DATABASE_URL="}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "DATABASE_URL is not set") {
		t.Fatalf("classbot migrate with DATABASE_URL= and a .env: %v\n%s\nwant the empty variable to win", err, out)
	}
}

// TestModelWarningOnlyForCommandsThatRunTheAgent: with no model configured,
// the commands that run the agent say so; those that never call it don't.
func TestModelWarningOnlyForCommandsThatRunTheAgent(t *testing.T) {
	notes := t.TempDir()
	if err := os.WriteFile(filepath.Join(notes, "syllabus.md"), []byte("# Exam\nThe exam is on Friday.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const warning = "no model configured"
	tests := []struct {
		args []string
		want bool // the warning is printed
	}{
		{[]string{"course", "index", "--dir", notes}, false},
		{[]string{"course", "search", "exam"}, false},
		{[]string{"version"}, false},
		{[]string{"ask", "--agent-delay", "0s", "When is the exam?"}, true},
		{[]string{"demo", "ask", "When is the exam?"}, true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[:min(2, len(tt.args))], " "), func(t *testing.T) {
			var out, errOut lockedBuffer
			err := run(t.Context(), append([]string{"classbot"}, tt.args...), envOf(map[string]string{"COURSE_DIR": notes}), strings.NewReader(""), &out, &errOut)
			if err != nil {
				t.Fatalf("%v: %v\nstderr: %s", tt.args, err, errOut.String())
			}
			if got := strings.Contains(errOut.String(), warning); got != tt.want {
				t.Errorf("%v: warned %v, want %v\nstderr: %s", tt.args, got, tt.want, errOut.String())
			}
		})
	}
}

func TestCallsModel(t *testing.T) {
	for _, tt := range []struct {
		args string
		want bool
	}{
		{"serve", true}, {"worker", true}, {"demo", true}, {"demo ask", true}, {"ask", true}, {"course eval", true},
		{"course index", false}, {"course search", false}, {"course list", false}, {"course", false},
		{"migrate", false}, {"queue", false}, {"version", false}, {"discord register-commands", false}, {"", false},
	} {
		if got := callsModel(strings.Fields(tt.args)); got != tt.want {
			t.Errorf("callsModel(%q) = %v, want %v", tt.args, got, tt.want)
		}
	}
}

// TestDiscordRefusedTokenNamesTheVariable: Discord answering 401 to the
// bot token, whether from register-commands or at serve's start, ends in
// an error that names DISCORD_BOT_TOKEN (and never prints the token).
func TestDiscordRefusedTokenNamesTheVariable(t *testing.T) {
	stand := discordtest.New()
	t.Cleanup(stand.Close)
	stand.FailCommandRegistrations(http.StatusUnauthorized)
	env := map[string]string{
		"DISCORD_BOT_TOKEN": discordBotToken, "DISCORD_APP_ID": discordAppID, "DISCORD_GUILD_ID": discordGuildID,
		"DISCORD_API_URL": stand.APIURL, "SHUTDOWN_TIMEOUT": "5s",
	}
	check := func(t *testing.T, err error, output string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "Discord refused DISCORD_BOT_TOKEN (401 Unauthorized)") {
			t.Fatalf("err = %v, want one naming DISCORD_BOT_TOKEN", err)
		}
		if strings.Contains(err.Error()+output, discordBotToken) {
			t.Fatal("the bot token was printed")
		}
	}

	t.Run("register-commands", func(t *testing.T) {
		var out, errOut lockedBuffer
		err := run(t.Context(), []string{"classbot", "discord", "register-commands"}, envOf(env), strings.NewReader(""), &out, &errOut)
		check(t, err, out.String()+errOut.String())
	})
	t.Run("serve", func(t *testing.T) {
		env["HTTP_ADDR"], env["METRICS_ADDR"] = "127.0.0.1:0", "127.0.0.1:0"
		// The context's deadline only bounds a failing test: serve is
		// expected to end by itself.
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		var out, errOut lockedBuffer
		err := run(ctx, []string{"classbot", "serve"}, envOf(env), strings.NewReader(""), &out, &errOut)
		if ctx.Err() != nil {
			t.Fatalf("serve still ran 30s after Discord refused the token (returned %v)\nstderr:\n%s", err, errOut.String())
		}
		check(t, err, out.String()+errOut.String())
	})
}

// TestSlackRefusedTokenNamesTheVariable: Slack answering invalid_auth to
// the bot token (auth.test at start) or to the app-level token (Socket
// Mode) ends serve with an error that names that variable.
func TestSlackRefusedTokenNamesTheVariable(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		standApp string // the only app-level token the stand-in takes
		want     string
		secret   string // must not be printed
	}{
		{"bot token", map[string]string{"SLACK_SIGNING_SECRET": slackSecret, "SLACK_BOT_TOKEN": "xoxp-not-a-bot-token"}, "",
			"Slack refused SLACK_BOT_TOKEN (invalid_auth)", "xoxp-not-a-bot-token"},
		{"app token", map[string]string{"SLACK_APP_TOKEN": "xapp-1-revoked", "SLACK_BOT_TOKEN": slackBotToken}, slackAppToken,
			"Slack refused SLACK_APP_TOKEN (invalid_auth)", "xapp-1-revoked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stand := slacktest.New()
			stand.AppToken = tt.standApp
			t.Cleanup(stand.Close)
			env := map[string]string{"SLACK_API_URL": stand.APIURL, "HTTP_ADDR": "127.0.0.1:0", "METRICS_ADDR": "127.0.0.1:0", "SHUTDOWN_TIMEOUT": "5s"}
			for k, v := range tt.env {
				env[k] = v
			}
			// The deadline only bounds a failing test: serve must end by itself.
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			var out, errOut lockedBuffer
			err := run(ctx, []string{"classbot", "serve"}, envOf(env), strings.NewReader(""), &out, &errOut)
			if ctx.Err() != nil {
				t.Fatalf("serve still ran 30s after Slack refused the token (returned %v)\nstderr:\n%s", err, errOut.String())
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one saying %q", err, tt.want)
			}
			if strings.Contains(err.Error()+out.String()+errOut.String(), tt.secret) {
				t.Fatal("the refused token was printed")
			}
		})
	}
}

// TestSlackBotTokenCheckThatCannotReachSlackIsSkipped: auth.test failing
// for another reason than the token (here nothing listens) is logged, and
// serve starts.
func TestSlackBotTokenCheckThatCannotReachSlackIsSkipped(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	api := "http://" + ln.Addr().String() + "/api/"
	ln.Close()
	s := startServe(t, map[string]string{"SLACK_SIGNING_SECRET": slackSecret, "SLACK_BOT_TOKEN": slackBotToken, "SLACK_API_URL": api})
	if !strings.Contains(s.Stderr.String(), "could not check SLACK_BOT_TOKEN") {
		t.Errorf("stderr does not say the check was skipped:\n%s", s.Stderr)
	}
}

// answerCalls returns the calls the Slack stand-in got other than the
// start-up check of SLACK_BOT_TOKEN (auth.test): what carried answers.
func answerCalls(sl *slacktest.Server) []slacktest.Call {
	var out []slacktest.Call
	for _, c := range sl.Calls() {
		if c.Path != "api/auth.test" {
			out = append(out, c)
		}
	}
	return out
}

package slack_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/slack"
	"github.com/classbot/classbot/store"
)

// Tests of what a probe of hostile and careless requests found (issue 9)
// and of Slack's certificate check (issue 8).

func TestSlackSSLCheck(t *testing.T) {
	f := setup(t, options{open: true})
	for _, body := range []string{
		"ssl_check=1&token=gIkuvaNzQIHg97ATvDxqgjtO",
		"token=gIkuvaNzQIHg97ATvDxqgjtO&ssl_check=1&command=%2Fregister&text=Ada+a%40example.com",
	} {
		// Slack does not sign its certificate check.
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, f.srv.URL, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		status, got := f.do(req)
		if status != http.StatusOK || len(got) != 0 {
			t.Fatalf("ssl_check %q = %d %q, want 200 with an empty body", body, status, got)
		}
	}
	f.shutdown()
	if r := f.refusals(); len(r) != 0 {
		t.Fatalf("ssl_check counted as refusals %q", r)
	}
	if calls := f.agent.stats(); calls != 0 {
		t.Fatal("ssl_check reached the model")
	}
	if n, _ := f.store.CountRegistrations(t.Context()); n != 0 {
		t.Fatal("ssl_check registered someone")
	}
	// A request that is not a certificate check still needs a signature.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, f.srv.URL, strings.NewReader("ssl_check=0&token=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if status, _ := f.do(req); status != http.StatusUnauthorized {
		t.Fatalf("ssl_check=0 unsigned = %d, want 401", status)
	}
}

// Issue 9.1: in sync mode the rest of a long answer is posted after the
// HTTP response, and Slack closes the connection once it has read it; the
// posts must not die with the request.
func TestSlackSyncFollowUpsOutliveTheRequest(t *testing.T) {
	closed := make(chan struct{}) // the server saw the client go
	var once sync.Once
	f := setup(t, options{mode: bot.ModeSync, open: true, handler: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			stop := context.AfterFunc(r.Context(), func() { once.Do(func() { close(closed) }) })
			defer stop()
			h.ServeHTTP(w, r)
		})
	}})
	long := strings.TrimSpace(strings.Repeat(strings.Repeat("The first assignment is due on Friday. ", 20)+"\n", 12))
	f.agent.answerFunc = func(string) string { return long }
	want := slack.Messages(long)
	if len(want) < 3 {
		t.Fatalf("the answer is cut into %d messages; the test needs at least 3", len(want))
	}
	trigger := "sync-long-closed"
	// The response_url holds every post until Slack has gone, so a post
	// tied to the request's context is cancelled first.
	f.slack.HoldResponseURL(trigger, closed)

	client := &http.Client{Timeout: wait, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(f.signed(f.command(askForm, trigger, nil), time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close() // and, with keep-alives off, the connection
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d %s, %v", resp.StatusCode, body, err)
	}
	if m := decode(t, body); m.Text != want[0] {
		t.Fatalf("the response is not the answer's first message: %.80q…", m.Text)
	}
	select {
	case <-closed:
	case <-time.After(wait):
		t.Fatal("the server never saw the client close the connection")
	}
	if err := f.slack.Wait(wait, func() bool { return f.slack.Delivered(trigger) >= len(want)-1 }); err != nil {
		t.Fatalf("%d of %d later parts delivered after Slack closed the connection", f.slack.Delivered(trigger), len(want)-1)
	}
	f.shutdown()
	var texts []string
	for _, p := range f.slack.Posts(trigger) {
		texts = append(texts, message(t, p).Text)
	}
	if !slices.Equal(texts, want[1:]) {
		t.Fatalf("response_url got %d messages, not the answer's last %d in order", len(texts), len(want)-1)
	}
	if in, err := f.store.GetInteraction(t.Context(), bot.PlatformSlack, trigger); err != nil || in.Outcome != bot.OutcomeOK || in.RepliedAt.IsZero() {
		t.Fatalf("ledger row %+v, %v; want ok and replied", in, err)
	}
}

// Issue 9.5: a response_url outside the prefixes is refused before dispatch.
func TestSlackResponseURLOutsidePrefixes(t *testing.T) {
	setupURL := func(t *testing.T) (*fixture, string) {
		f := setup(t, options{open: true, botToken: botToken})
		return f, strings.TrimPrefix(f.slack.URL, "http://")
	}
	tests := []struct {
		name string
		url  func(host string) string
	}{
		{"another host", func(string) string { return "https://evil.example/commands/T0A1B2C3D/1/x" }},
		{"a look-alike host", func(string) string { return "https://hooks.slack.com.evil.example/commands/x" }},
		{"Slack's own host, not the prefix", func(string) string { return "https://hooks.slack.com/commands/T0A1B2C3D/1/x" }},
		{"another port", func(h string) string { host, _, _ := net.SplitHostPort(h); return "http://" + host + ":1/commands/x" }},
		{"another scheme", func(h string) string { return "https://" + h + "/commands/x" }},
		{"not http", func(h string) string { return "gopher://" + h + "/commands/x" }},
		{"user and password", func(h string) string { return "http://hook-user:hunter2@" + h + "/commands/x" }},
		{"dot segments", func(h string) string { return "http://" + h + "/commands/../../admin" }},
		{"escaped dot segments", func(h string) string { return "http://" + h + "/commands/%2e%2e/admin" }},
		{"not a URL", func(string) string { return "/commands/x" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, host := setupURL(t)
			trigger := "bad-url-" + strings.ReplaceAll(tt.name, " ", "-")
			ru := tt.url(host)
			status, body := f.post(f.command(registerForm, trigger, map[string]string{"response_url": ru}))
			if status != http.StatusBadRequest || !strings.Contains(string(body), "response_url") {
				t.Fatalf("response_url %q: %d %q, want 400 naming response_url", ru, status, body)
			}
			f.shutdown()
			if calls := f.agent.stats(); calls != 0 {
				t.Fatal("the command was dispatched")
			}
			if _, err := f.store.GetInteraction(t.Context(), bot.PlatformSlack, trigger); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("ledger lookup: %v, want ErrNotFound", err)
			}
			if n := len(f.slack.Calls()); n != 0 {
				t.Fatalf("Slack got %d calls", n)
			}
			if got := f.refusals(); !slices.Equal(got, []string{slack.RefuseResponseURL}) {
				t.Fatalf("OnRefuseFunc got %q, want [%q]", got, slack.RefuseResponseURL)
			}
			if logs := f.logs.String(); strings.Contains(logs, "hunter2") || strings.Contains(logs, "/commands") {
				t.Fatalf("the logs show the refused response_url:\n%s", logs)
			}
		})
	}
	t.Run("inside the prefix", func(t *testing.T) {
		f, _ := setupURL(t)
		if status, body := f.post(f.command(registerForm, "good-url", nil)); status != http.StatusOK {
			t.Fatalf("status %d %s", status, body)
		}
		if _, err := f.slack.WaitPosts(wait, "good-url", 1); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSlackSocketModeRefusesResponseURL(t *testing.T) {
	f := setup(t, options{mode: bot.ModeAsync, open: true, appToken: appToken})
	f.runSocket()
	trigger := "socket-bad-url"
	env := f.envelope(registerForm, trigger, map[string]string{"response_url": "http://169.254.169.254/latest/meta-data/"})
	ack, err := f.slack.WaitAck(wait, env)
	if err != nil {
		t.Fatal(err)
	}
	if p := ackPayload(t, ack); p.ResponseType != "ephemeral" || !strings.Contains(p.Text, "Sorry") {
		t.Fatalf("ack %s, want an ephemeral apology", ack.Payload)
	}
	// A good command after it is answered: the loop goes on.
	good := f.envelope(askForm, "socket-good-url", nil)
	if _, err := f.slack.WaitAck(wait, good); err != nil {
		t.Fatal(err)
	}
	if _, err := f.slack.WaitPosts(wait, "socket-good-url", 1); err != nil {
		t.Fatal(err)
	}
	f.shutdown()
	if calls := f.agent.stats(); calls != 1 {
		t.Fatalf("the model was called %d times, want once (for the good command)", calls)
	}
	if _, err := f.store.GetInteraction(t.Context(), bot.PlatformSlack, trigger); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ledger lookup: %v, want ErrNotFound", err)
	}
}

// A prefix naming a host, not an address, allows public addresses only:
// "localhost" passes the prefix check but is refused when dialled, as a
// host name an attacker pointed at 127.0.0.1 would be.
func TestSlackResponseURLDialGuard(t *testing.T) {
	var base string // http://localhost:PORT, PORT the stand-in's
	f := setup(t, options{mode: bot.ModeAsync, open: true, botToken: botToken, prefixes: func(standIn string) []string {
		base = strings.Replace(standIn, "127.0.0.1", "localhost", 1)
		return []string{base + "/"}
	}})
	trigger := "rebound"
	status, body := f.post(f.command(registerForm, trigger, map[string]string{"response_url": base + "/commands/" + trigger}))
	if status != http.StatusOK {
		t.Fatalf("status %d %s", status, body)
	}
	// The answer cannot go to the response_url: it goes to the student
	// through chat.postEphemeral instead.
	if err := f.slack.Wait(wait, func() bool { return len(f.slack.APICalls("chat.postEphemeral")) > 0 }); err != nil {
		t.Fatalf("no fallback after the refused dial: %v", err)
	}
	f.shutdown()
	if n := len(f.slack.Posts(trigger)); n != 0 {
		t.Fatalf("%d posts reached a loopback address through a host name", n)
	}
	if logs := f.logs.String(); !strings.Contains(logs, "non-public address") {
		t.Fatalf("the logs do not say why the post failed:\n%s", logs)
	}
}

// Redirects are not followed: the body (a welcome shows the email) is
// posted once, to the response_url, and the redirect target is not logged.
func TestSlackResponseURLNoRedirects(t *testing.T) {
	f := setup(t, options{mode: bot.ModeAsync, open: true})
	trigger := "redirected"
	f.slack.RedirectResponseURL(trigger, f.slack.ResponseURL("elsewhere-c2VjcmV0"))
	if status, body := f.post(f.command(registerForm, trigger, nil)); status != http.StatusOK {
		t.Fatalf("status %d %s", status, body)
	}
	if _, err := f.slack.WaitPosts(wait, trigger, 1); err != nil {
		t.Fatal(err)
	}
	f.shutdown()
	if n := len(f.slack.Posts("elsewhere-c2VjcmV0")); n != 0 {
		t.Fatalf("the redirect was followed %d times", n)
	}
	if in, _ := f.store.GetInteraction(t.Context(), bot.PlatformSlack, trigger); in.Outcome != bot.OutcomeError || !in.RepliedAt.IsZero() {
		t.Fatalf("ledger row %+v, want an undelivered error", in)
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "302") {
		t.Fatalf("the logs do not show the failed post:\n%s", logs)
	}
	if strings.Contains(logs, "c2VjcmV0") || strings.Contains(logs, "/commands/") {
		t.Fatalf("the logs show a response_url or the redirect's target:\n%s", logs)
	}
}

// Issue 9.3: the response_url is never logged, even when net/http renders
// it differently from what Slack sent.
func TestSlackResponseURLNeverLogged(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String() // nothing listens: every post fails
	l.Close()
	for _, mode := range []bot.Mode{bot.ModeAsync, bot.ModeSync} {
		t.Run(string(mode), func(t *testing.T) {
			f := setup(t, options{mode: mode, open: true, prefixes: func(string) []string { return []string{dead + "/"} }})
			long := strings.Repeat("Long answers need the response_url in sync mode too. ", 80)
			f.agent.answerFunc = func(string) string { return long }
			trigger := "logged-" + string(mode)
			// net/http renders this URL differently: the scheme lower-cased,
			// the space and the é %-escaped.
			ru := "HTTP" + strings.TrimPrefix(dead, "http") + "/commands/T0A1B2C3D%2F7712 345/QW1xZ0xrTnB6é?x=%7E1"
			status, body := f.post(f.command(askForm, trigger, map[string]string{"response_url": ru}))
			if status != http.StatusOK {
				t.Fatalf("status %d %s", status, body)
			}
			f.shutdown()
			logs := f.logs.String()
			if !strings.Contains(logs, "[response_url]") {
				t.Fatalf("the logs do not show the failed post:\n%s", logs)
			}
			u, _ := url.Parse(ru)
			for _, leak := range []string{"QW1xZ0xr", "7712", u.Path, u.EscapedPath(), u.String()} {
				if strings.Contains(logs, leak) {
					t.Fatalf("the logs show %q of the response_url:\n%s", leak, logs)
				}
			}
		})
	}
}

// Issue 9.6: Slack sends a typed &, < and > as entities; classbot stores
// and answers with what the student typed.
func TestSlackTextEntities(t *testing.T) {
	f := setup(t, options{mode: bot.ModeSync, open: true})
	f.agent.answerFunc = func(string) string { return "Noted." }
	status, body := f.post(f.command(registerForm, "entities-register",
		map[string]string{"text": "Ada &amp; Bo <mailto:ada@example.com|ada@example.com>"}))
	if status != http.StatusOK {
		t.Fatalf("status %d %s", status, body)
	}
	reg, ok := f.registration("U0A1B2C3D4E")
	if !ok || reg.Name != "Ada & Bo" || reg.Email != "ada@example.com" {
		t.Fatalf("registration %+v (found %v), want the name Ada & Bo", reg, ok)
	}
	if text := decode(t, body).Text; !strings.Contains(text, "Ada &amp; Bo") || strings.Contains(text, "&amp;amp;") {
		t.Fatalf("answer %q, want the name escaped once", text)
	}
	if in := f.agent.lastInput(); !strings.Contains(in, "Ada & Bo") || strings.Contains(in, "&amp;") {
		t.Fatalf("the model got %q, want the name as typed", in)
	}

	for _, tt := range []struct{ text, want string }{
		{"a &amp;&amp; b", "a && b"},
		{"is &lt;div&gt; &amp;lt; allowed?", "is <div> &lt; allowed?"},
		{"see <https://example.com/a?b=1&amp;c=2|example.com/a?b=1&amp;c=2>", "see example.com/a?b=1&c=2"},
	} {
		if status, body := f.post(f.command(askForm, "entities-ask-"+tt.want, map[string]string{"text": tt.text})); status != http.StatusOK {
			t.Fatalf("status %d %s", status, body)
		}
		if in := f.agent.lastInput(); !strings.Contains(in, tt.want) {
			t.Fatalf("/ask %q: the model got %q, want it to contain %q", tt.text, in, tt.want)
		}
	}
}

func TestSlackSocketModeTextEntities(t *testing.T) {
	f := setup(t, options{mode: bot.ModeSync, open: true, appToken: appToken})
	f.runSocket()
	env := f.envelope(registerForm, "socket-entities", map[string]string{"text": "Ada &amp; Bo <mailto:ada@example.com|ada@example.com>"})
	if _, err := f.slack.WaitAck(wait, env); err != nil {
		t.Fatal(err)
	}
	if reg, ok := f.registration("U0A1B2C3D4E"); !ok || reg.Name != "Ada & Bo" {
		t.Fatalf("registration %+v (found %v), want the name Ada & Bo", reg, ok)
	}
}

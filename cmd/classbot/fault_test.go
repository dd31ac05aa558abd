package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/classbot/classbot/bot/slack/slacktest"
	"github.com/classbot/classbot/internal/pgproxy"
)

// The promises of issue 10 for a database that stops answering, as a
// student and an operator see them.
const (
	ackDeadline   = 3 * time.Second                                      // Slack shows "this app did not respond" after it
	toldWithin    = 30 * time.Second                                     // a student hears that it did not work
	readyzWithin  = 5 * time.Second                                      // /readyz says the database is gone
	recoverWithin = 30 * time.Second                                     // service resumes once the database answers
	couldNotSave  = "Sorry, I couldn't save your registration just now." // the write failed: nothing stored
	// A write the database never answered may still commit: the student
	// is told that, and that registering again is safe.
	couldNotConfirm = "Sorry, the database is slow to answer, so I couldn't confirm your registration."
	faultStudents   = 20
)

// faultServe is classbot serve with Slack over HTTP, the Slack and model
// stand-ins, and a DATABASE_URL that goes through a pgproxy in front of the
// test database, so a test can cut the database off or make it hang.
type faultServe struct {
	*slackServe
	proxy *pgproxy.Proxy
	// keepAlive, if set, carries every command over one kept-alive
	// connection; nil: each command on a connection of its own.
	keepAlive *http.Transport
}

func startFaultServe(t *testing.T, args ...string) *faultServe {
	t.Helper()
	p, through := proxiedURL(t, testDatabaseURL)
	s := startSlackServe(t, map[string]string{
		"DATABASE_URL":     through,
		"HANDLER_MODE":     "async",
		"SHUTDOWN_TIMEOUT": "2s",
	}, args...)
	// Cleanups run last first: the database is back before serve stops.
	t.Cleanup(func() { _ = p.Restore() })
	return &faultServe{slackServe: s, proxy: p}
}

// student is one slash command sent during a fault, and what came of it.
type student struct {
	command, trigger, user, name, email string

	sent    time.Time
	took    time.Duration // from sending to the whole HTTP response
	status  int
	body    []byte
	err     error
	replied time.Duration // from sending to the first response_url post
}

func newStudent(command string, n int, tag string) *student {
	id := newID()
	return &student{
		command: command,
		trigger: id + ".7700000000001." + tag,
		user:    "U" + id,
		name:    fmt.Sprintf("Student %d %s", n, tag),
		email:   fmt.Sprintf("student%d-%s@fault.example", n, id),
	}
}

func (st *student) text() string {
	if st.command == "/ask" {
		return "When is the first exam?"
	}
	return st.name + " " + st.email
}

// send posts the student's command, signed, and records the response and
// how long it took. It does not fail the test: it may run in a goroutine.
func (f *faultServe) send(st *student, timeout time.Duration) {
	body, err := slacktest.Command(slackPayload, map[string]string{
		"command": st.command, "trigger_id": st.trigger, "user_id": st.user,
		"text": st.text(), "response_url": f.slack.ResponseURL(st.trigger),
	})
	if err != nil {
		st.err = err
		return
	}
	st.sent = time.Now()
	req, err := slacktest.NewRequest(context.Background(), f.URL+"/slack/commands", slackSecret, st.sent, body)
	if err != nil {
		st.err = err
		return
	}
	resp, err := f.client(timeout).Do(req)
	if err != nil {
		st.err = err
		st.took = time.Since(st.sent)
		return
	}
	defer resp.Body.Close()
	st.body, st.err = io.ReadAll(resp.Body)
	st.took = time.Since(st.sent)
	st.status = resp.StatusCode
}

// client is how a student's command reaches serve: a connection of its
// own, as if each came from a different Slack front end. (Commands that
// follow one another on one kept-alive connection, as behind a load
// balancer, have their own test.)
func (f *faultServe) client(timeout time.Duration) *http.Client {
	if f.keepAlive != nil {
		return &http.Client{Timeout: timeout, Transport: f.keepAlive}
	}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
}

// sendAll sends every student's command at once and waits for the HTTP
// responses; the client gives up after timeout.
func (f *faultServe) sendAll(students []*student, timeout time.Duration) {
	var wg sync.WaitGroup
	for _, st := range students {
		wg.Go(func() { f.send(st, timeout) })
	}
	wg.Wait()
}

// readyz returns /readyz's status, or 0 if it did not answer within
// readyzWithin.
func (f *faultServe) readyz() int {
	resp, err := (&http.Client{Timeout: readyzWithin}).Get(f.URL + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitReadyz polls /readyz until it answers want, and returns how long
// that took from since; it fails the test after within, or as soon as
// /readyz itself does not answer (a probe that hangs is no answer).
func (f *faultServe) waitReadyz(t *testing.T, since time.Time, want int, within time.Duration) time.Duration {
	t.Helper()
	deadline := since.Add(within)
	for {
		start := time.Now()
		got := f.readyz()
		if got == want {
			return time.Since(since)
		}
		if got == 0 {
			t.Fatalf("/readyz did not answer within %s (asked %s after the fault changed), want %d\nstderr:\n%s",
				readyzWithin, start.Sub(since).Round(time.Millisecond), want, f.Stderr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz = %d %s after the fault changed, want %d within %s\nstderr:\n%s",
				got, time.Since(since).Round(time.Millisecond), want, within, f.Stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkAcks asserts that every command was answered 200 within the
// platform's deadline with its command's acknowledgement, and returns the
// slowest.
func checkAcks(t *testing.T, students []*student) time.Duration {
	t.Helper()
	var slowest time.Duration
	for _, st := range students {
		if st.err != nil {
			t.Errorf("%s from %s: no response after %s: %v", st.command, st.user, st.took.Round(time.Millisecond), st.err)
			continue
		}
		slowest = max(slowest, st.took)
		if st.status != http.StatusOK || st.took >= ackDeadline {
			t.Errorf("%s from %s = %d after %s, want 200 within %s", st.command, st.user, st.status, st.took.Round(time.Millisecond), ackDeadline)
			continue
		}
		want := "Registering you…"
		if st.command == "/ask" {
			want = "Thinking…"
		}
		if r := decodeSlack(t, st.body); r.Text != want {
			t.Errorf("%s from %s acknowledged %s, want %q", st.command, st.user, st.body, want)
		}
	}
	return slowest
}

// waitTold waits until every student's response_url got a post (each within
// toldWithin of sending), checks what it says, and returns the latest.
func (f *faultServe) waitTold(t *testing.T, students []*student, want string) time.Duration {
	t.Helper()
	pending := func() []*student {
		var out []*student
		now := time.Now()
		for _, st := range students {
			if st.replied == 0 {
				if len(f.answers(st)) > 0 {
					st.replied = now.Sub(st.sent)
				} else {
					out = append(out, st)
				}
			}
		}
		return out
	}
	var latest time.Time
	for _, st := range students {
		if st.sent.After(latest) {
			latest = st.sent
		}
	}
	if err := f.slack.Wait(time.Until(latest.Add(toldWithin)), func() bool { return len(pending()) == 0 }); err != nil {
		for _, st := range pending() {
			t.Errorf("%s from %s: nothing at the response_url within %s", st.command, st.user, toldWithin)
		}
		t.Fatalf("stderr:\n%s", f.Stderr)
	}
	var slowest time.Duration
	for _, st := range students {
		slowest = max(slowest, st.replied)
		if st.replied > toldWithin {
			t.Errorf("%s from %s: told after %s, want within %s", st.command, st.user, st.replied.Round(time.Millisecond), toldWithin)
		}
		r := decodeSlack(t, f.answers(st)[0].Body)
		switch st.command {
		case "/register":
			if !strings.HasPrefix(r.Text, want) || r.ResponseType != "ephemeral" {
				t.Errorf("/register from %s was told %q (%s), want an ephemeral %q", st.user, r.Text, r.ResponseType, want)
			}
		case "/ask":
			if !strings.Contains(r.Text, st.text()) || strings.HasPrefix(r.Text, "Sorry") {
				t.Errorf("/ask, which needs no database, was told %q, want the model's answer", r.Text)
			}
		}
	}
	return slowest
}

// answers are the posts to st's response_url that answer it: not the
// edits that show a place in line while its model call waits.
func (f *faultServe) answers(st *student) []slacktest.Call {
	var out []slacktest.Call
	for _, p := range f.slack.Posts(st.trigger) {
		if !strings.Contains(string(p.Body), "in line for the assistant") {
			out = append(out, p)
		}
	}
	return out
}

// register sends one /register and waits for its welcome; the row must be
// in PostgreSQL (read directly, not through the proxy).
func (f *faultServe) registerWorks(t *testing.T, tag string) time.Duration {
	t.Helper()
	st := newStudent("/register", 0, tag)
	f.send(st, slackWait)
	if st.err != nil || st.status != http.StatusOK {
		t.Fatalf("/register %s = %d %s %v\nstderr:\n%s", tag, st.status, st.body, st.err, f.Stderr)
	}
	posts, err := f.slack.WaitPosts(slackWait, st.trigger, 1)
	if err != nil {
		t.Fatalf("/register %s: %v\nstderr:\n%s", tag, err, f.Stderr)
	}
	if r := decodeSlack(t, posts[0].Body); !strings.Contains(r.Text, discordWelcome+st.name) {
		t.Fatalf("/register %s was told %q, want the welcome", tag, r.Text)
	}
	reg, err := openStore(t).GetRegistration(t.Context(), "slack", slackTeam, st.user)
	if err != nil || reg.Email != st.email {
		t.Fatalf("/register %s: row %+v, %v; want it stored with %s", tag, reg, err, st.email)
	}
	return time.Since(st.sent)
}

// storedOf counts how many of students' registrations are in PostgreSQL.
func storedOf(t *testing.T, students []*student) int {
	t.Helper()
	pg := openStore(t)
	n := 0
	for _, st := range students {
		if st.command != "/register" {
			continue
		}
		if _, err := pg.GetRegistration(t.Context(), "slack", slackTeam, st.user); err == nil {
			n++
		}
	}
	return n
}

// faultStudentsOf is faultStudents registrations and one question.
func faultStudentsOf(tag string) []*student {
	out := make([]*student, 0, faultStudents+1)
	for i := range faultStudents {
		out = append(out, newStudent("/register", i+1, tag))
	}
	return append(out, newStudent("/ask", 0, tag))
}

// secretsOf is what must never reach the logs: the students' emails and
// response_urls.
func (f *faultServe) secretsOf(students []*student) []string {
	var out []string
	for _, st := range students {
		out = append(out, st.email, f.slack.ResponseURL(st.trigger))
	}
	return out
}

// A database that stops answering (connections stay open, nothing comes
// back: a partition, a hung server): every student is acknowledged within
// the platform's deadline and told within 30 s that it did not work,
// /readyz says so within seconds, and service resumes by itself when the
// database answers again.
func TestHungDatabase(t *testing.T) {
	f := startFaultServe(t)
	f.registerWorks(t, "before")
	if got := f.readyz(); got != http.StatusOK {
		t.Fatalf("/readyz = %d before the fault, want 200", got)
	}

	students := faultStudentsOf("hung")
	f.proxy.BlackHole()
	holed := time.Now()
	sent := make(chan struct{})
	go func() { defer close(sent); f.sendAll(students, slackWait) }()
	readyIn := f.waitReadyz(t, holed, http.StatusServiceUnavailable, readyzWithin)
	<-sent
	slowestAck := checkAcks(t, students)
	toldIn := f.waitTold(t, students, couldNotConfirm)

	backIn, servedIn := f.restoreAndRecover(t)
	noSecretsLogged(t, f.Stderr.String(), f.secretsOf(students)...)
	t.Logf("black hole: slowest ack %s; every student told within %s; /readyz 503 after %s; after restore: /readyz 200 after %s, a registration welcomed after %s; %d of %d registrations told it could not be confirmed are stored after all",
		slowestAck.Round(time.Millisecond), toldIn.Round(time.Millisecond), readyIn.Round(time.Millisecond),
		backIn.Round(time.Millisecond), servedIn.Round(time.Millisecond), storedOf(t, students), faultStudents)
}

// restoreAndRecover ends the fault and checks that service comes back by
// itself: /readyz 200, then a /register stored and welcomed, each within
// recoverWithin. It returns how long each took after the restore.
func (f *faultServe) restoreAndRecover(t *testing.T) (backIn, servedIn time.Duration) {
	t.Helper()
	if err := f.proxy.Restore(); err != nil {
		t.Fatal(err)
	}
	restored := time.Now()
	backIn = f.waitReadyz(t, restored, http.StatusOK, recoverWithin)
	f.registerWorks(t, "after")
	servedIn = time.Since(restored)
	if servedIn > recoverWithin {
		t.Errorf("a /register after the database came back took until %s after it, want within %s", servedIn.Round(time.Millisecond), recoverWithin)
	}
	return backIn, servedIn
}

// A database that refuses connections (it is down, or its address is
// gone): the same promises, and everything fails fast.
func TestDatabaseCut(t *testing.T) {
	f := startFaultServe(t)
	f.registerWorks(t, "before")

	students := faultStudentsOf("cut")
	f.proxy.Cut()
	cut := time.Now()
	f.sendAll(students, slackWait)
	slowestAck := checkAcks(t, students)
	readyIn := f.waitReadyz(t, cut, http.StatusServiceUnavailable, readyzWithin)
	toldIn := f.waitTold(t, students, couldNotSave)
	if n := storedOf(t, students); n != 0 {
		t.Errorf("%d registrations were stored while the database refused connections", n)
	}

	backIn, servedIn := f.restoreAndRecover(t)
	noSecretsLogged(t, f.Stderr.String(), f.secretsOf(students)...)
	t.Logf("cut: slowest ack %s; every student told within %s; /readyz 503 after %s; after restore: /readyz 200 after %s, a registration welcomed after %s",
		slowestAck.Round(time.Millisecond), toldIn.Round(time.Millisecond), readyIn.Round(time.Millisecond),
		backIn.Round(time.Millisecond), servedIn.Round(time.Millisecond))
}

// Sync mode answers inside the platform's request, so with a hung database
// its first response waits for the registration write's own bound
// (bot.Options.StoreTimeout, 10 s) and misses Slack's 3 s: that is what
// sync mode is, and why async is the default. It must still answer, and
// say honestly that the registration was not saved, rather than hang.
func TestHungDatabaseSyncMode(t *testing.T) {
	f := startFaultServe(t, "--mode", "sync")
	st := newStudent("/register", 1, "sync-before")
	f.send(st, slackWait)
	if st.err != nil || st.status != http.StatusOK || !strings.Contains(decodeSlack(t, st.body).Text, discordWelcome+st.name) {
		t.Fatalf("sync /register before the fault = %d %s %v, want the welcome", st.status, st.body, st.err)
	}

	f.proxy.BlackHole()
	st = newStudent("/register", 2, "sync-hung")
	f.send(st, slackWait) // the bound under test is 10 s; the client waits 20 s
	if st.err != nil {
		t.Fatalf("sync /register with a hung database: no answer within %s: %v\nstderr:\n%s", slackWait, st.err, f.Stderr)
	}
	r := decodeSlack(t, st.body)
	if st.status != http.StatusOK || !strings.HasPrefix(r.Text, couldNotConfirm) || r.ResponseType != "ephemeral" {
		t.Fatalf("sync /register with a hung database = %d %s, want an ephemeral %q", st.status, st.body, couldNotConfirm)
	}

	if err := f.proxy.Restore(); err != nil {
		t.Fatal(err)
	}
	restored := time.Now()
	backIn := f.waitReadyz(t, restored, http.StatusOK, recoverWithin)
	st2 := newStudent("/register", 3, "sync-after")
	f.send(st2, slackWait)
	if st2.err != nil || st2.status != http.StatusOK || !strings.Contains(decodeSlack(t, st2.body).Text, discordWelcome+st2.name) {
		t.Fatalf("sync /register after the database came back = %d %s %v, want the welcome", st2.status, st2.body, st2.err)
	}
	if _, err := openStore(t).GetRegistration(t.Context(), "slack", slackTeam, st2.user); err != nil {
		t.Fatalf("sync /register after the database came back: not stored: %v", err)
	}
	noSecretsLogged(t, f.Stderr.String(), st.email, st2.email)
	t.Logf("sync mode, hung database: answered %q after %s (past Slack's %s by design); after restore /readyz 200 after %s, a registration welcomed after %s",
		couldNotConfirm, st.took.Round(time.Millisecond), ackDeadline, backIn.Round(time.Millisecond), time.Since(restored).Round(time.Millisecond))
}

// Behind a load balancer, or with a platform that keeps its connection
// alive, one connection carries one command after another, and net/http
// reads the next request only once the handler of the previous one has
// returned. A handler that answers a student and then waits on a hung
// database (the ledger's finish after an immediate answer, bounded by
// bot.Config.ReplyTimeout, 15 s) holds back the next student's
// acknowledgement on that connection past the platform's deadline. The
// Dispatcher settles the ledger row after the handler has returned (it took
// 15 s, the ReplyTimeout, before that fix).
func TestHungDatabaseKeepAlive(t *testing.T) {
	f := startFaultServe(t)
	f.keepAlive = &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
	t.Cleanup(f.keepAlive.CloseIdleConnections)
	f.registerWorks(t, "keepalive-before")

	f.proxy.BlackHole()
	// An immediate answer: the email is missing.
	first := newStudent("/register", 1, "keepalive-invalid")
	first.email = ""
	f.send(first, slackWait)
	if first.err != nil || first.status != http.StatusOK || first.took >= ackDeadline {
		t.Fatalf("/register without an email = %d %s after %s (%v), want an answer within %s", first.status, first.body, first.took, first.err, ackDeadline)
	}
	next := newStudent("/register", 2, "keepalive-next")
	f.send(next, slackWait)
	checkAcks(t, []*student{next})
	t.Logf("keep-alive, hung database: an immediate answer after %s, then the next command's ack after %s",
		first.took.Round(time.Millisecond), next.took.Round(time.Millisecond))
}

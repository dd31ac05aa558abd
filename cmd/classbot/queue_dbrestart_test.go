package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/classbot/classbot/bot/slack/slacktest"
	"github.com/classbot/classbot/internal/pgproxy"
)

const (
	// dbAwayFor is how long the database is away: a restart's few seconds.
	dbAwayFor = 4 * time.Second
	// steadyEvery is the pace of the commands sent before, during and
	// after the restart (10 a second).
	steadyEvery = 100 * time.Millisecond
	// steadyAround is how long the stream runs before the cut and after
	// /readyz says the database is back.
	steadyAround = 2 * time.Second
	// answeredAfterRestore bounds how long after the database is back every
	// acknowledged command is answered: a job whose end could not be
	// recorded while the database was away is rescued (RescueStuckJobsAfter
	// 25 s, the rescuer every 30 s) and runs again.
	answeredAfterRestore = 90 * time.Second
)

// proxiedURL starts a pgproxy in front of dbURL's server and returns it with
// dbURL rewritten to go through it. The proxy outlives the test's context
// and is closed at cleanup, after serve has stopped (cleanups run last
// first), so serve's shutdown does not wait on a fault.
func proxiedURL(t *testing.T, dbURL string) (*pgproxy.Proxy, string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pgproxy.Start(context.WithoutCancel(t.Context()), u.Host, pgproxy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	u.Host = p.Addr()
	q := u.Query()
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	return p, u.String()
}

// steadyStream sends a /register every steadyEvery to base until stop is
// closed, each on a connection of its own, and returns every student once
// all responses are in.
func steadyStream(base string, sl *slacktest.Server, stop <-chan struct{}) func() []*student {
	var (
		mu  sync.Mutex
		all []*student
		wg  sync.WaitGroup
	)
	client := &http.Client{Timeout: slackWait, Transport: &http.Transport{DisableKeepAlives: true}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(steadyEvery)
		defer tick.Stop()
		for i := 1; ; i++ {
			st := newStudent("/register", i, "pgrestart")
			mu.Lock()
			all = append(all, st)
			mu.Unlock()
			wg.Go(func() { sendSlack(client, base, sl, st) })
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return func() []*student {
		<-done
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return all
	}
}

// PostgreSQL restarted under load, as its clients see a restart: every
// connection dropped and new ones refused for dbAwayFor, then back. With
// commands arriving steadily: those that arrive while the database is away
// are told at once that the command could not be taken (queue mode
// acknowledges only what is durably recorded), /readyz answers 503 while
// it is away and 200 after, classbot reconnects by itself, and every
// command that was acknowledged is answered exactly once.
func TestQueueDatabaseRestart(t *testing.T) {
	dbURL := queueDB(t)
	proxy, through := proxiedURL(t, dbURL)
	testDatabaseRestart(t, dbURL, through, proxy.Cut, proxy.Restore)
}

// The same with the machine's PostgreSQL really stopped (fast shutdown: every
// session ended) and started again. It restarts the server every other test
// uses, so it runs only when CLASSBOT_TEST_PG_RESTART=1: .ci/run runs it on
// its own, after the suite.
func TestQueueRealPostgresRestart(t *testing.T) {
	if os.Getenv("CLASSBOT_TEST_PG_RESTART") != "1" {
		t.Skip("restarts the machine's PostgreSQL: set CLASSBOT_TEST_PG_RESTART=1 (.ci/run does, alone)")
	}
	versions, err := os.ReadDir("/etc/postgresql")
	if err != nil || len(versions) == 0 {
		t.Fatalf("no PostgreSQL cluster under /etc/postgresql to restart: %v", err)
	}
	cluster := func(action string, extra ...string) error {
		args := append([]string{"--skip-systemctl-redirect", versions[0].Name(), "main", action}, extra...)
		out, err := exec.Command("pg_ctlcluster", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("pg_ctlcluster %s: %v\n%s", action, err, out)
		}
		return nil
	}
	dbURL := queueDB(t)
	stopped := false
	t.Cleanup(func() {
		if stopped {
			_ = cluster("start")
		}
	})
	testDatabaseRestart(t, dbURL, dbURL, func() {
		if err := cluster("stop", "-m", "fast"); err != nil {
			t.Error(err)
		}
		stopped = true
	}, func() error {
		stopped = false
		return cluster("start")
	})
}

// testDatabaseRestart runs serve in queue mode on serveURL (dbURL, or a
// way to it), sends commands steadily, takes the database away with cut
// for dbAwayFor and brings it back with restore, and checks what the
// students saw.
func testDatabaseRestart(t *testing.T, dbURL, serveURL string, cut func(), restore func() error) {
	sl := slacktest.New()
	t.Cleanup(sl.Close)
	model := newCountingModel(t, 200*time.Millisecond) // jobs are running when the database goes
	s := startServe(t, queueEnv(serveURL, sl, model.URL))
	t.Cleanup(func() { _ = restore() }) // before serve stops
	f := &faultServe{slackServe: &slackServe{served: s, slack: sl}}

	stop := make(chan struct{})
	collect := steadyStream(s.URL, sl, stop)
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
			collect()
		}
	}()
	time.Sleep(steadyAround) // the stream's "before": the length of a phase, not a wait for something
	if got := f.readyz(); got != http.StatusOK {
		t.Fatalf("/readyz = %d before the restart, want 200\nstderr:\n%s", got, s.Stderr)
	}

	cut()
	away := time.Now()
	readyIn := f.waitReadyz(t, away, http.StatusServiceUnavailable, readyzWithin)
	time.Sleep(time.Until(away.Add(dbAwayFor))) // the restart's length
	if got := f.readyz(); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d at the end of the restart, want 503", got)
	}
	// The database may take commands before restore returns (a real
	// server's start): "away" ends when the restore begins.
	back := time.Now()
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	backIn := f.waitReadyz(t, back, http.StatusOK, recoverWithin)
	time.Sleep(steadyAround) // the stream's "after"
	close(stop)
	students := collect()

	// Sort the commands by when they came, as the database saw them.
	var during, ackedAll, refused []*student
	ackedAfter, unconfirmed := 0, 0
	for _, st := range students {
		r := decodeSlackOrEmpty(st.body)
		inside := st.sent.After(away) && st.sent.Add(st.took).Before(back)
		switch {
		case st.err != nil || st.status != http.StatusOK:
			t.Errorf("/register sent %s after the cut: %d %s (%v) after %s, want 200", fmtDur(st.sent.Sub(away)), st.status, st.body, st.err, fmtDur(st.took))
		case r.Text == registeringAck:
			ackedAll = append(ackedAll, st)
			if inside {
				t.Errorf("/register sent %s after the cut, while the database was away, was acknowledged: nothing could have recorded it", fmtDur(st.sent.Sub(away)))
			}
			if st.sent.After(back) {
				ackedAfter++
			}
		case strings.HasPrefix(r.Text, couldNotTake) && r.ResponseType == "ephemeral":
			refused = append(refused, st)
		case strings.HasPrefix(r.Text, "The database is slow to confirm") && r.ResponseType == "ephemeral" && !inside:
			// Its commit was under way when the connection was cut: nobody
			// can know whether it landed, and the student is told so.
			unconfirmed++
		default:
			t.Errorf("/register sent %s after the cut was answered %s, want %q or a refusal %q", fmtDur(st.sent.Sub(away)), st.body, registeringAck, couldNotTake)
		}
		if inside {
			during = append(during, st)
		}
	}
	var slowestRefusal time.Duration
	for _, st := range refused {
		slowestRefusal = max(slowestRefusal, st.took)
		if st.took >= ackDeadline {
			t.Errorf("/register refused after %s, want within %s", fmtDur(st.took), ackDeadline)
		}
	}
	for _, st := range during {
		if r := decodeSlackOrEmpty(st.body); !strings.HasPrefix(r.Text, couldNotTake) {
			t.Errorf("/register sent while the database was away was answered %s, want %q", st.body, couldNotTake)
		}
	}
	if len(during) < int(dbAwayFor/steadyEvery)/2 {
		t.Fatalf("only %d commands came while the database was away, want about %d: the test did not test", len(during), dbAwayFor/steadyEvery)
	}
	if ackedAfter == 0 {
		t.Fatalf("no command was acknowledged after the database came back: classbot did not reconnect\nstderr:\n%s", tail(s.Stderr.String(), 40))
	}

	// Every acknowledged command is answered, once.
	_, last, left := waitAnswered(sl, ackedAll, answeredAfterRestore)
	if left > 0 {
		t.Fatalf("%d of %d acknowledged commands unanswered %s after the database came back\nstderr:\n%s", left, len(ackedAll), answeredAfterRestore, tail(s.Stderr.String(), 40))
	}
	reposts := checkAnsweredOnce(t, sl, ackedAll)
	waitLedgerOK(t, dbURL, ackedAll, 15*time.Second)
	if n := registeredOf(t, dbURL, ackedAll); n != len(ackedAll) {
		t.Errorf("%d of %d acknowledged registrations stored", n, len(ackedAll))
	}
	// What was refused while the database was away left nothing behind.
	for _, st := range during {
		if n := len(sl.Posts(st.trigger)); n != 0 {
			t.Errorf("/register refused while the database was away got %d follow-ups", n)
		}
	}
	if got := ledgerOutcomes(t, dbURL, during); len(got) != 0 {
		t.Errorf("commands refused while the database was away have ledger rows %v, want none", got)
	}
	t.Logf("database away %s under %d commands/s: %d commands, %d acknowledged (%d after it came back), %d refused (slowest refusal %s; %d of them while it was away), %d told it was unconfirmed; /readyz 503 after %s, 200 %s after it came back; every acknowledged command answered once, the last %s after it came back (%d replace_original re-posts)",
		dbAwayFor, time.Second/steadyEvery, len(students), len(ackedAll), ackedAfter, len(refused), fmtDur(slowestRefusal), len(during), unconfirmed,
		fmtDur(readyIn), fmtDur(backIn), fmtDur(last.Sub(back)), reposts)
}

// decodeSlackOrEmpty decodes a Slack reply, or returns the zero reply.
func decodeSlackOrEmpty(b []byte) slackReply {
	var r slackReply
	_ = json.Unmarshal(b, &r)
	return r
}

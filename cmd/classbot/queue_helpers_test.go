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

	"github.com/jackc/pgx/v5"

	"github.com/classbot/classbot/bot/slack/slacktest"
	"github.com/classbot/classbot/internal/pgtest"
)

// Queue mode's fault tests (issue 11): what a student sees at the Slack
// stand-in, and what the ledger says, when a process is killed, the
// database restarts, the model is down or two replicas share the work.

const (
	registeringAck = "Registering you…"
	thinkingAck    = "Thinking…"
	// couldNotTake is queue mode's answer when the command could not be
	// recorded before the acknowledgement (bot.queueFailedText).
	couldNotTake = "Sorry, I couldn't take your command just now"
)

// queueDB creates a database of its own for one test and drops it at the
// end: River's jobs are shared by every process on a database, so two
// tests on one database would run each other's jobs. serve migrates it.
func queueDB(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, drop, err := pgtest.Create(ctx, pgtest.Server(), "classbot_cmd_queue")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Logf("dropping the test database: %v", err)
		}
	})
	return u
}

// withPoolSize sets pool_max_conns in a database URL.
func withPoolSize(dbURL string, n int) string {
	sep := "?"
	if strings.Contains(dbURL, "?") {
		sep = "&"
	}
	return fmt.Sprintf("%s%spool_max_conns=%d", dbURL, sep, n)
}

// queueEnv is the environment of a classbot serve in queue mode on dbURL,
// with Slack over HTTP answering through sl and the model at modelURL.
func queueEnv(dbURL string, sl *slacktest.Server, modelURL string) map[string]string {
	return map[string]string{
		"HANDLER_MODE": "queue",
		// Each serve would open up to 16 connections (+ River's listener);
		// the packages' tests run side by side against one server whose
		// max_connections is 100.
		"DATABASE_URL":              withPoolSize(dbURL, 8),
		"SLACK_SIGNING_SECRET":      slackSecret,
		"SLACK_BOT_TOKEN":           slackBotToken, // so that a chat.postEphemeral fallback is possible, and visible
		"SLACK_API_URL":             sl.APIURL,
		"SLACK_RESPONSE_URL_PREFIX": sl.URL + "/commands/",
		"LLM_BASE_URL":              modelURL + "/v1",
		"SHUTDOWN_TIMEOUT":          "5s",
	}
}

// sendSlack posts st's command, signed, to base's /slack/commands with its
// response_url at sl, and records the response. It does not fail the test:
// it runs in goroutines.
func sendSlack(client *http.Client, base string, sl *slacktest.Server, st *student) {
	body, err := slacktest.Command(slackPayload, map[string]string{
		"command": st.command, "trigger_id": st.trigger, "user_id": st.user,
		"text": st.text(), "response_url": sl.ResponseURL(st.trigger),
	})
	if err != nil {
		st.err = err
		return
	}
	st.sent = time.Now()
	req, err := slacktest.NewRequest(context.Background(), base+"/slack/commands", slackSecret, st.sent, body)
	if err != nil {
		st.err = err
		return
	}
	resp, err := client.Do(req)
	if err != nil {
		st.err, st.took = err, time.Since(st.sent)
		return
	}
	defer resp.Body.Close()
	st.body, st.err = io.ReadAll(resp.Body)
	st.took, st.status = time.Since(st.sent), resp.StatusCode
}

// sendSlackAll sends every student's command, at most parallel at once;
// baseOf(i) is where the i-th goes.
func sendSlackAll(sl *slacktest.Server, students []*student, parallel int, baseOf func(i int) string) {
	client := &http.Client{Timeout: slackWait}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, st := range students {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			sendSlack(client, baseOf(i), sl, st)
		})
	}
	wg.Wait()
}

// ackText is the acknowledgement of st's command.
func ackText(st *student) string {
	if st.command == "/ask" {
		return thinkingAck
	}
	return registeringAck
}

// acked reports whether st got 200 with its command's acknowledgement.
func acked(t *testing.T, st *student) bool {
	t.Helper()
	return st.err == nil && st.status == http.StatusOK && decodeSlack(t, st.body).Text == ackText(st)
}

// requireAcked fails the test unless every student was acknowledged, and
// returns the slowest acknowledgement.
func requireAcked(t *testing.T, students []*student) time.Duration {
	t.Helper()
	var slowest time.Duration
	bad := 0
	for _, st := range students {
		slowest = max(slowest, st.took)
		if !acked(t, st) {
			if bad++; bad <= 5 {
				t.Errorf("%s from %s = %d %s (%v) after %s, want 200 %q", st.command, st.user, st.status, st.body, st.err, st.took.Round(time.Millisecond), ackText(st))
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d commands were not acknowledged", bad, len(students))
	}
	return slowest
}

// unanswered returns the students whose response_url shows no answer yet.
func unanswered(sl *slacktest.Server, students []*student) []*student {
	var out []*student
	for _, st := range students {
		if v := sl.Visible(st.trigger); len(v) == 0 || isPlaceEdit(v[0].Text) {
			out = append(out, st)
		}
	}
	return out
}

// isPlaceEdit tells an edit of the acknowledgement that shows the
// student's place in line ("You're #3 in line for the assistant…"), which
// is not an answer.
func isPlaceEdit(text string) bool { return strings.Contains(text, "in line for the assistant") }

// waitAnswered waits until every student sees an answer at the stand-in,
// or until timeout. It returns when the first and the last answer were
// seen (last is zero if some never came) and how many are unanswered.
func waitAnswered(sl *slacktest.Server, students []*student, timeout time.Duration) (first, last time.Time, left int) {
	pending := students
	err := sl.Wait(timeout, func() bool {
		pending = unanswered(sl, pending)
		if first.IsZero() && len(pending) < len(students) {
			first = time.Now()
		}
		return len(pending) == 0
	})
	if err != nil {
		return first, time.Time{}, len(unanswered(sl, students))
	}
	return first, time.Now(), 0
}

// checkAnsweredOnce checks what each student sees at the response_url:
// exactly one message, the answer to their command (ephemeral for a
// /register, which shows the email); a second
// post is allowed only as a replace_original of it (a re-run job), and
// nothing reaches them through chat.postEphemeral. Edits that show the
// place in line come before the answer and are not counted. It returns how
// many posts replaced an answer already shown.
func checkAnsweredOnce(t *testing.T, sl *slacktest.Server, students []*student) (reposts int) {
	t.Helper()
	bad := 0
	fail := func(format string, args ...any) {
		if bad++; bad <= 10 {
			t.Errorf(format, args...)
		}
	}
	for _, st := range students {
		visible := sl.Visible(st.trigger)
		posts := sl.Posts(st.trigger)
		if len(visible) != 1 {
			fail("%s from %s: the student sees %d messages at the response_url (%d posts), want exactly 1", st.command, st.user, len(visible), len(posts))
			continue
		}
		m := visible[0]
		switch want := discordWelcome + st.name; {
		case st.command == "/register" && m.ResponseType != "ephemeral":
			fail("/register from %s: answer %q is %q, want ephemeral (it shows the email)", st.user, m.Text, m.ResponseType)
		case st.command == "/register" && !strings.Contains(m.Text, want):
			fail("/register from %s was answered %q, want the model's %q", st.user, m.Text, want)
		case st.command == "/ask" && (!strings.Contains(m.Text, st.text()) || strings.HasPrefix(m.Text, "Sorry")):
			fail("/ask from %s was answered %q, want the model's answer", st.user, m.Text)
		}
		answers := 0
		for i, p := range posts {
			msg, err := p.Message()
			if i > 0 && (err != nil || !msg.ReplaceOriginal) {
				fail("%s from %s: post %d of %d to the response_url does not replace the first: %s", st.command, st.user, i+1, len(posts), p.Body)
			}
			if err == nil && !isPlaceEdit(msg.Text) {
				answers++
			}
		}
		reposts += max(answers-1, 0)
	}
	if n := len(sl.APICalls("chat.postEphemeral")); n != 0 {
		fail("%d answers went through chat.postEphemeral, want none: every response_url was alive", n)
	}
	if bad > 10 {
		t.Errorf("… and %d more", bad-10)
	}
	return reposts
}

// ledgerOutcomes counts the ledger rows of the students' commands by
// outcome ("ok" only once replied_at is set too).
func ledgerOutcomes(t *testing.T, dbURL string, students []*student) map[string]int {
	t.Helper()
	ids := make([]string, len(students))
	for i, st := range students {
		ids[i] = st.trigger
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT CASE WHEN outcome = 'ok' AND replied_at IS NULL THEN 'ok without replied_at' ELSE outcome END, count(*)
		FROM interactions WHERE platform = 'slack' AND id = ANY($1) GROUP BY 1`, ids)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for rows.Next() {
		var o string
		var n int
		if err := rows.Scan(&o, &n); err != nil {
			t.Fatal(err)
		}
		out[o] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitLedgerOK waits until every student's ledger row ends "ok" (the row
// is finished in the same transaction as the job, just after the post).
func waitLedgerOK(t *testing.T, dbURL string, students []*student, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := ledgerOutcomes(t, dbURL, students)
		if got["ok"] == len(students) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ledger outcomes %v of %d commands, want all ok", got, len(students))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// queryInt runs a query returning one integer on dbURL.
func queryInt(t *testing.T, dbURL, sql string, args ...any) int {
	t.Helper()
	var n int
	pgtest.QueryRow(t, dbURL, sql, args, &n)
	return n
}

// queryInts runs a query returning one integer per row on dbURL.
func queryInts(t *testing.T, dbURL, sql string, args ...any) []int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// registeredOf counts how many of the students' registrations are stored.
func registeredOf(t *testing.T, dbURL string, students []*student) int {
	t.Helper()
	var users []string
	for _, st := range students {
		if st.command == "/register" {
			users = append(users, st.user)
		}
	}
	return queryInt(t, dbURL, `SELECT count(*) FROM registrations WHERE platform = 'slack' AND user_id = ANY($1)`, users)
}

// studentsOf is n fresh students sending command, tagged tag.
func studentsOf(command string, n int, tag string) []*student {
	out := make([]*student, n)
	for i := range out {
		out[i] = newStudent(command, i+1, tag)
	}
	return out
}

func fmtDur(d time.Duration) string { return fmt.Sprint(d.Round(10 * time.Millisecond)) }

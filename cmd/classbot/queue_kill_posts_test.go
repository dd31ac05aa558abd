package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/classbot/classbot/bot/slack/slacktest"
)

// execSQL runs statements on dbURL.
func execSQL(t *testing.T, dbURL, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}

// kill -9 after the answers were posted (through the response_url for half
// of the students, through the chat.postEphemeral fallback for the other
// half, whose response_url is dead) and before any was recorded as
// delivered: after a restart every student has exactly one answer, the
// model is not asked again and no memory turn is stored twice. A trigger
// holds the end's record (the update that clears the job's input) so the
// process dies inside that window every time.
func TestQueueKill9AfterPostsBeforeRecords(t *testing.T) {
	t.Parallel()
	bin := buildClassbot(t, t.TempDir())
	dbURL := queueDB(t)
	sl := slacktest.New()
	t.Cleanup(sl.Close)
	model := newCountingModel(t, 0)
	env := queueEnv(dbURL, sl, model.URL)
	env["HTTP_ADDR"], env["METRICS_ADDR"] = "127.0.0.1:0", "127.0.0.1:0"

	const n = 40
	students := studentsOf("/ask", n, "postkill")
	live, dead := students[:n/2], students[n/2:]
	for _, st := range dead {
		sl.FailResponseURLWith(st.trigger, http.StatusNotFound, "expired_url")
	}
	first := startChild(t, bin, env) // it migrates the database
	execSQL(t, dbURL, `
CREATE FUNCTION hold_end() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.job_input IS NOT NULL AND NEW.job_input IS NULL THEN
        PERFORM pg_sleep(600);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER hold_end BEFORE UPDATE ON interactions FOR EACH ROW EXECUTE FUNCTION hold_end();`)

	sendSlackAll(sl, students, 8, func(int) string { return first.URL })
	requireAcked(t, students)

	ephemeralTo := func() map[string]int {
		out := map[string]int{}
		for _, c := range sl.APICalls("chat.postEphemeral") {
			out[c.Form.Get("user")]++
		}
		return out
	}
	err := sl.Wait(60*time.Second, func() bool {
		for _, st := range live {
			if v := sl.Visible(st.trigger); len(v) == 0 || isPlaceEdit(v[0].Text) {
				return false
			}
		}
		return len(ephemeralTo()) == len(dead)
	})
	if err != nil {
		t.Fatalf("the answers were not all posted: %v\nstderr:\n%s", err, tail(first.Stderr.String(), 20))
	}
	deadline := time.Now().Add(30 * time.Second)
	for queryInt(t, dbURL, `SELECT count(*) FROM interactions WHERE posted IS NOT NULL`) < len(dead) {
		if time.Now().After(deadline) {
			t.Fatal("the fallbacks' posts were not recorded")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := queryInt(t, dbURL, `SELECT count(*) FROM interactions WHERE replied_at IS NOT NULL OR job_input IS NULL`); got != 0 {
		t.Fatalf("%d commands recorded as ended before the kill: the window under test is missed", got)
	}
	first.kill9(t)
	// The dead process's sessions sleep in the trigger holding their rows:
	// end them, and let the end's record through from now on.
	execSQL(t, dbURL, `
SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid();
DROP TRIGGER hold_end ON interactions;`)
	asked := model.Requests()
	posts := len(sl.Calls())

	restarted := time.Now()
	second := startChild(t, bin, env)
	deadline = time.Now().Add(killWaitAtMost)
	for ledgerOutcomes(t, dbURL, students)["ok"] != n {
		if time.Now().After(deadline) {
			t.Fatalf("ledger %v after %s\nstderr:\n%s", ledgerOutcomes(t, dbURL, students), killWaitAtMost, tail(second.Stderr.String(), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(restarted)

	if got := model.Requests(); got != asked || asked != n {
		t.Errorf("model requests: %d before the kill, %d in all; want %d, none after the restart", asked, got, n)
	}
	for _, st := range live {
		if v := sl.Visible(st.trigger); len(v) != 1 {
			t.Errorf("%s sees %d answers at the response_url", st.user, len(v))
		}
		for i, p := range sl.Posts(st.trigger)[1:] {
			if m, err := p.Message(); err != nil || !m.ReplaceOriginal {
				t.Errorf("%s: post %d does not replace the first", st.user, i+2)
			}
		}
	}
	eph := ephemeralTo()
	for _, st := range dead {
		if eph[st.user] != 1 {
			t.Errorf("%s got %d answers through chat.postEphemeral, want 1", st.user, eph[st.user])
		}
	}
	for _, st := range live {
		if eph[st.user] != 0 {
			t.Errorf("%s, whose response_url lives, got %d chat.postEphemeral", st.user, eph[st.user])
		}
	}
	if got := queryInt(t, dbURL, `SELECT count(*) FROM ask_memory`); got != n {
		t.Errorf("%d memory turns stored, want %d: one each", got, n)
	}
	if got := queryInt(t, dbURL, `SELECT count(*) FROM interactions WHERE job_input IS NOT NULL OR outbox IS NOT NULL OR posted IS NOT NULL`); got != 0 {
		t.Errorf("%d ledger rows still hold a job's data", got)
	}
	t.Logf("kill -9 with %d answers posted (%d through chat.postEphemeral) and none recorded: every one ended ok %s after the restart, %d calls at Slack after the restart, no model request",
		n, len(dead), fmtDur(took), len(sl.Calls())-posts)
}

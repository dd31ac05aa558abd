package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/classbot/classbot/bot/discord/discordtest"
	"github.com/classbot/classbot/bot/slack/slacktest"
	"github.com/classbot/classbot/internal/pgtest"
)

const (
	replicaCommands = 1000
	// replicasAnsweredWithin bounds the whole burst's answers (a bound
	// for a hung test, not a speed target).
	replicasAnsweredWithin = 2 * time.Minute
)

// Two replicas of classbot serve on one database, as behind a load
// balancer: 1,000 commands sent to them alternately over HTTP are each
// answered exactly once, and both replicas ran jobs (River's attempted_by).
func TestQueueTwoReplicas(t *testing.T) {
	dbURL := queueDB(t)
	sl := slacktest.New()
	t.Cleanup(sl.Close)
	model := newCountingModel(t, 50*time.Millisecond)
	a := startServe(t, queueEnv(dbURL, sl, model.URL))
	b := startServe(t, queueEnv(dbURL, sl, model.URL))

	students := studentsOf("/register", replicaCommands, "replicas")
	start := time.Now()
	sendSlackAll(sl, students, 32, func(i int) string {
		if i%2 == 0 {
			return a.URL
		}
		return b.URL
	})
	slowestAck := requireAcked(t, students)
	_, last, left := waitAnswered(sl, students, replicasAnsweredWithin)
	if left > 0 {
		t.Fatalf("%d of %d commands unanswered after %s\nstderr of the first:\n%s\nstderr of the second:\n%s",
			left, replicaCommands, replicasAnsweredWithin, tail(a.Stderr.String(), 20), tail(b.Stderr.String(), 20))
	}
	if reposts := checkAnsweredOnce(t, sl, students); reposts != 0 {
		t.Errorf("%d answers were posted twice (replaced), want every job run once when nothing fails", reposts)
	}
	waitLedgerOK(t, dbURL, students, 15*time.Second)
	if n := registeredOf(t, dbURL, students); n != replicaCommands {
		t.Errorf("%d of %d registrations stored", n, replicaCommands)
	}
	// River marks a job completed when its worker has returned, through its
	// own batched completer: a moment after the ledger row says answered.
	jobs := 0
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		jobs = queryInt(t, dbURL, `SELECT count(*) FROM river_job WHERE state = 'completed'`)
		if jobs == replicaCommands || time.Now().After(deadline) {
			break
		}
	}
	if jobs != replicaCommands {
		t.Errorf("%d jobs completed, want %d: one per command", jobs, replicaCommands)
	}
	// Which process ran each job: River records the client ids of its
	// attempts; each replica has its own.
	split := queryInts(t, dbURL, `SELECT count(*) FROM river_job GROUP BY attempted_by[cardinality(attempted_by)] ORDER BY 1 DESC`)
	if len(split) != 2 {
		t.Fatalf("jobs ran on %d processes (%v), want both replicas", len(split), split)
	}
	t.Logf("two replicas, %d commands sent alternately: slowest ack %s; all answered once within %s of the first; jobs run %d and %d by the two replicas",
		replicaCommands, fmtDur(slowestAck), fmtDur(last.Sub(start)), split[0], split[1])
}

// Discord in queue mode over HTTP interactions: the deferral (type 5)
// comes back only once the job is committed, and the answer is one PATCH
// of @original (idempotent), never a follow-up message.
func TestQueueDiscordHTTPInteractions(t *testing.T) {
	dbURL := queueDB(t)
	d := startDiscordServe(t, map[string]string{"HANDLER_MODE": "queue", "DATABASE_URL": withPoolSize(dbURL, 8)})

	const n = 20
	type interaction struct{ id, user, name string }
	var all []interaction
	for i := range n {
		in := interaction{id: newID(), user: newID(), name: "Queue Student " + string(rune('A'+i))}
		all = append(all, in)
		status, body := d.post(t, d.signed(t, registerPayload(t, in.id, in.user, in.name, "q"+in.id+"@example.com"), time.Now()))
		var resp discordtest.Response
		if err := json.Unmarshal(body, &resp); err != nil || status != http.StatusOK || resp.Type != 5 || resp.Data == nil || resp.Data.Flags != 64 {
			t.Fatalf("/register = %d %s, want a type 5 deferral, ephemeral", status, body)
		}
		var jobs int
		pgtest.QueryRow(t, dbURL, `SELECT count(*) FROM river_job WHERE args->>'id' = $1`, []any{in.id}, &jobs)
		if jobs != 1 {
			t.Fatalf("deferred with %d jobs committed, want 1", jobs)
		}
	}
	edits := func(id string) (patches, others int, last discordtest.Request) {
		for _, r := range d.discord.Requests() {
			if !strings.Contains(r.Path, "/token-"+id) {
				continue
			}
			if r.Method == http.MethodPatch && strings.HasSuffix(r.Path, "/messages/@original") {
				patches, last = patches+1, r
			} else {
				others++
			}
		}
		return patches, others, last
	}
	if err := d.discord.Wait(discordWait, func() bool {
		for _, in := range all {
			if p, _, _ := edits(in.id); p == 0 {
				return false
			}
		}
		return true
	}); err != nil {
		t.Fatalf("not every interaction got its edit of @original: %v\nstderr:\n%s", err, tail(d.Stderr.String(), 20))
	}
	waitDone := time.Now().Add(15 * time.Second)
	for queryInt(t, dbURL, `SELECT count(*) FROM interactions WHERE platform = 'discord' AND outcome = 'ok' AND replied_at IS NOT NULL`) < n {
		if time.Now().After(waitDone) {
			t.Fatal("the ledger rows did not all end ok")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, in := range all {
		patches, others, last := edits(in.id)
		if patches != 1 || others != 0 {
			t.Errorf("interaction %s: %d edits of @original and %d other webhook calls, want exactly one edit", in.id, patches, others)
		}
		var msg struct{ Content string }
		_ = last.JSON(&msg)
		if !strings.Contains(msg.Content, discordWelcome+in.name) {
			t.Errorf("interaction %s was answered %q, want the welcome", in.id, msg.Content)
		}
		if err := discordtest.NoPings(last.Body); err != nil {
			t.Error(err)
		}
	}
	if dms := d.discord.DirectMessages(all[0].user); len(dms) != 0 {
		t.Errorf("%d direct messages, want none: every token was alive", len(dms))
	}
}

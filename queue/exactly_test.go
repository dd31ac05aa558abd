package queue_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	openai "github.com/sashabaranov/go-openai"

	"github.com/classbot/classbot/agent"
	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/internal/pgproxy"
	"github.com/classbot/classbot/queue"
	"github.com/classbot/classbot/store"
)

func ask(id, user, question string) bot.Command {
	return bot.Command{
		Platform: bot.PlatformConsole, InteractionID: id, Workspace: "W1", Channel: "C1", User: user,
		Name: "ask", Text: question,
	}
}

// query runs one statement on the test database and scans its one row.
func query(t *testing.T, dbURL, sql string, args []any, dest ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, sql, args...).Scan(dest...); err != nil {
		t.Fatal(err)
	}
}

// A post that fails after the model answered is retried with the answer
// recorded in the outbox: one model call, one memory turn, one answer.
func TestQueueFailedPostRepostsTheRecordedAnswer(t *testing.T) {
	dbURL := newDB(t)
	b, m := newBoard(), &model{}
	b.failing.Store(1)
	var pg *store.Postgres
	{
		var err error
		pg, err = store.Open(context.Background(), dbURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pg.Close)
	}
	r := startReplicaWith(t, dbURL, m, queue.Config{Workers: 5}, bot.Options{Memory: pg},
		map[string]bot.Reopener{bot.PlatformConsole: b})
	send(t, r, dbURL, ask("P1", "U1", "What is a monad?"))
	waitPosts(t, b, []string{"P1"}, 30*time.Second)
	waitCompleted(t, dbURL, 1, 30*time.Second)
	if n := m.calls.Load(); n != 1 {
		t.Errorf("the model was called %d times, want once", n)
	}
	b.mu.Lock()
	posts, visible := b.posts["P1"], b.visible["P1"]
	b.mu.Unlock()
	if posts != 1 || visible != "Welcome to the course!" {
		t.Errorf("%d posts, visible %q", posts, visible)
	}
	turns, err := pg.AskTurns(context.Background(), store.AskKey{Platform: bot.PlatformConsole, Workspace: "W1", Channel: "C1", User: "U1"}, time.Time{}, 10)
	if err != nil || len(turns) != 1 {
		t.Errorf("memory turns %d (%v), want 1", len(turns), err)
	}
	var attempt int
	query(t, dbURL, `SELECT attempt FROM river_job`, nil, &attempt)
	if attempt != 2 {
		t.Errorf("attempts %d, want the failed post's and the re-post's", attempt)
	}
	// River records Work's error as given: Report.Rescued relies on it.
	var firstErr string
	query(t, dbURL, `SELECT errors[1]->>'error' FROM river_job`, nil, &firstErr)
	if !strings.HasPrefix(firstErr, "classbot: ") {
		t.Errorf("the failed attempt's error in River: %q", firstErr)
	}
	if in := ledger(t, r, "P1"); in.Outcome != bot.OutcomeOK || in.RepliedAt.IsZero() {
		t.Errorf("ledger: %+v", in)
	}
}

// Once commands have ended, answered or discarded, nothing of the
// student's is left in River's tables, nor in the ledger's job columns.
func TestQueueLeavesNoStudentDataInRiver(t *testing.T) {
	dbURL := newDB(t)
	b, m := newBoard(), &model{}
	b.refuse.Store("D1", true) // its reply cannot be reopened: the job is discarded
	r := startReplica(t, dbURL, m, b, queue.Config{Workers: 5, MaxAttempts: 1})
	const question = "Is the exam on Friday the thirteenth?"
	send(t, r, dbURL, register("R1", "U1"))
	send(t, r, dbURL, ask("A1", "U2", question))
	send(t, r, dbURL, register("D1", "U3"))
	waitPosts(t, b, []string{"R1", "A1"}, 30*time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for s := jobStates(t, dbURL); s["completed"] != 2 || s["discarded"] != 1; s = jobStates(t, dbURL) {
		if time.Now().After(deadline) {
			t.Fatalf("jobs %v, want 2 completed and 1 discarded", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	secrets := []string{"Ada Lovelace", "ada@example.com", question, tokenOf("R1"), tokenOf("A1"), tokenOf("D1")}
	var leaks, kept int
	query(t, dbURL, `SELECT count(*) FROM river_job j, unnest($1::text[]) s
		WHERE strpos(lower(j.args::text), lower(s)) > 0 OR strpos(lower(coalesce(j.errors::text, '')), lower(s)) > 0`,
		[]any{secrets}, &leaks)
	if leaks != 0 {
		t.Errorf("%d (job, secret) pairs in river_job", leaks)
	}
	query(t, dbURL, `SELECT count(*) FROM interactions WHERE job_input IS NOT NULL OR outbox IS NOT NULL`, nil, &kept)
	if kept != 0 {
		t.Errorf("%d ledger rows still hold a job's input or answer", kept)
	}
}

// A worker without a job's platform never takes it: jobs go to a queue per
// platform, and a worker takes only its platforms' queues. A job left in
// the shared queue of earlier versions is put back without using an
// attempt. A worker that has the platform answers every job once, at its
// first attempt.
func TestQueuePlatformlessWorkerBesideAFullOne(t *testing.T) {
	dbURL := newDB(t)
	b := newBoard()
	web := startReplica(t, dbURL, &model{}, b, queue.Config{Workers: -1})
	const n = 20
	ids := make([]string, n)
	for i := range n {
		ids[i] = "N" + string(rune('A'+i))
		send(t, web, dbURL, register(ids[i], "U"+ids[i]))
	}
	var inQueue int
	query(t, dbURL, `SELECT count(*) FROM river_job WHERE queue = $1`, []any{queue.QueueFor(bot.PlatformConsole)}, &inQueue)
	if inQueue != n {
		t.Fatalf("%d of %d jobs in the %s queue", inQueue, n, queue.QueueFor(bot.PlatformConsole))
	}
	// Half of them as an earlier version enqueued them.
	query(t, dbURL, `WITH moved AS (UPDATE river_job SET queue = $1 WHERE id IN (SELECT id FROM river_job ORDER BY id LIMIT $2) RETURNING 1)
		SELECT count(*) FROM moved`, []any{queue.Name, n / 2}, &inQueue)

	var snoozed atomic.Int32
	startReplicaWith(t, dbURL, &model{}, queue.Config{Workers: 10, PlatformSnooze: 100 * time.Millisecond,
		ObserveFunc: func(r queue.Report) {
			if r.Snoozed == queue.SnoozeNoPlatform {
				snoozed.Add(1)
			}
		}}, bot.Options{}, nil)
	deadline := time.Now().Add(30 * time.Second)
	for snoozed.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the platform-less worker snoozed %d times", snoozed.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	var touched int
	query(t, dbURL, `SELECT count(*) FROM river_job WHERE queue <> $1 AND (state <> 'available' OR attempt <> 0)`, []any{queue.Name}, &touched)
	if touched != 0 {
		t.Errorf("the platform-less worker took %d jobs of a platform queue", touched)
	}
	startReplica(t, dbURL, &model{}, b, queue.Config{Workers: 10})
	waitPosts(t, b, ids, 30*time.Second)
	waitCompleted(t, dbURL, n, 30*time.Second)
	b.mu.Lock()
	for _, id := range ids {
		if b.posts[id] != 1 {
			t.Errorf("%s posted %d times", id, b.posts[id])
		}
	}
	b.mu.Unlock()
	var maxAttempt int
	query(t, dbURL, `SELECT max(attempt) FROM river_job`, nil, &maxAttempt)
	if maxAttempt != 1 {
		t.Errorf("a job took %d attempts, want 1: the platform-less worker spent some", maxAttempt)
	}
}

// permanentModel refuses every request as a provider does a bad one.
type permanentModel struct{ calls atomic.Int32 }

func (m *permanentModel) Run(context.Context, agent.Agent, string) (agent.Result, error) {
	m.calls.Add(1)
	return agent.Result{}, &openai.APIError{HTTPStatusCode: 400, Message: "invalid request"}
}

// A model's 400 is answered at once, not retried.
func TestQueuePermanentModelRefusalIsNotRetried(t *testing.T) {
	dbURL := newDB(t)
	b, m := newBoard(), &permanentModel{}
	r := startReplica(t, dbURL, m, b, queue.Config{Workers: 5})
	send(t, r, dbURL, register("F1", "U1"))
	waitPosts(t, b, []string{"F1"}, 30*time.Second)
	waitCompleted(t, dbURL, 1, 30*time.Second)
	if n := m.calls.Load(); n != 1 {
		t.Errorf("the model was called %d times, want once", n)
	}
	b.mu.Lock()
	visible := b.visible["F1"]
	b.mu.Unlock()
	if !strings.Contains(visible, "your registration is saved") {
		t.Errorf("visible %q", visible)
	}
}

// blockingModel blocks every call until its ctx ends.
type blockingModel struct{ started chan struct{} }

func (m *blockingModel) Run(ctx context.Context, _ agent.Agent, _ string) (agent.Result, error) {
	select {
	case m.started <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return agent.Result{}, ctx.Err()
}

// A shutdown that interrupts a job puts it back without using an attempt.
func TestQueueShutdownSnoozesTheRunningJob(t *testing.T) {
	dbURL := newDB(t)
	b := newBoard()
	web := startReplica(t, dbURL, &model{}, b, queue.Config{Workers: -1})
	send(t, web, dbURL, register("S1", "U1"))
	m := &blockingModel{started: make(chan struct{}, 1)}
	stopping := startReplica(t, dbURL, m, b, queue.Config{Workers: 5})
	select {
	case <-m.started:
	case <-time.After(30 * time.Second):
		t.Fatal("the job never started")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_ = stopping.q.Stop(ctx) // gives up waiting: the running job is cancelled
	cancel()
	var attempt int
	var state string
	query(t, dbURL, `SELECT attempt, state::text FROM river_job`, nil, &attempt, &state)
	if attempt != 0 || state == "retryable" {
		t.Errorf("after the shutdown: attempt %d, state %s; want the attempt given back", attempt, state)
	}
	startReplica(t, dbURL, &model{}, b, queue.Config{Workers: 5})
	waitPosts(t, b, []string{"S1"}, 30*time.Second)
	waitCompleted(t, dbURL, 1, 30*time.Second)
	query(t, dbURL, `SELECT attempt FROM river_job`, nil, &attempt)
	if attempt != 1 {
		t.Errorf("the job took %d attempts, want 1", attempt)
	}
}

// A connection lost during the enqueue's COMMIT: the student hears "slow
// to confirm", and the job, which did commit, answers once.
func TestQueueLostCommitSaysSlowToConfirm(t *testing.T) {
	dbURL := newDB(t)
	var armed atomic.Bool
	proxy, err := pgproxy.Start(context.Background(), hostPort(t, dbURL), pgproxy.Options{
		CutAfterFunc: func(c []byte) bool {
			return armed.Load() && strings.Contains(strings.ToLower(string(c)), "commit") && armed.CompareAndSwap(true, false)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	b := newBoard()
	// Only the web replica's enqueue commits through the proxy (River's
	// own transactions would match too); the other replica answers.
	r := startReplica(t, throughProxy(t, dbURL, proxy.Addr()), &model{}, b, queue.Config{Workers: -1})
	startReplica(t, dbURL, &model{}, b, queue.Config{Workers: 5})
	armed.Store(true)
	req := send(t, r, dbURL, register("K1", "U1"))
	if armed.Load() {
		t.Fatal("no COMMIT went through the proxy")
	}
	rep, _ := req.reply.Load().(bot.Reply)
	if req.acks.Load() != 0 || !strings.Contains(rep.Text, "slow to confirm") {
		t.Errorf("%d acks, reply %q; want the slow-to-confirm answer", req.acks.Load(), rep.Text)
	}
	waitPosts(t, b, []string{"K1"}, 30*time.Second)
	waitCompleted(t, dbURL, 1, 30*time.Second)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.posts["K1"] != 1 {
		t.Errorf("posted %d times", b.posts["K1"])
	}
}

// budgetModel records the work budget each call finds in its ctx.
type budgetModel struct {
	model
	budget atomic.Int64
}

func (m *budgetModel) Run(ctx context.Context, a agent.Agent, input string) (agent.Result, error) {
	if d, ok := agent.WorkBudget(ctx); ok {
		m.budget.Store(int64(d))
	}
	return m.model.Run(ctx, a, input)
}

// The model's part of an attempt gets JobTimeout through
// agent.WithWorkBudget, which starts once it has its model slot.
func TestQueueGivesTheModelItsWorkBudget(t *testing.T) {
	dbURL := newDB(t)
	b, m := newBoard(), &budgetModel{}
	r := startReplica(t, dbURL, m, b, queue.Config{Workers: 5, JobTimeout: 7 * time.Second})
	send(t, r, dbURL, register("B1", "U1"))
	waitPosts(t, b, []string{"B1"}, 30*time.Second)
	if got := time.Duration(m.budget.Load()); got != 7*time.Second {
		t.Errorf("work budget %s, want QUEUE_JOB_TIMEOUT's 7s", got)
	}
}

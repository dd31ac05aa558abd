package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/classbot/classbot/store"
)

// batches records what the writer reports through ObserveBatchFunc.
type batches struct {
	mu   sync.Mutex
	rows []int
}

func (b *batches) observe(rows int, _ time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rows = append(b.rows, rows)
}

func (b *batches) sizes() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.rows)
}

// openPostgresConfig is openPostgres with a Config; its batches are
// recorded in the returned *batches.
func openPostgresConfig(t *testing.T, cfg store.Config) (*store.Postgres, *batches) {
	t.Helper()
	openPostgres(t) // migrated and emptied
	seen := &batches{}
	cfg.ObserveBatchFunc = seen.observe
	pg, err := store.OpenWithConfig(t.Context(), testDatabaseURL, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)
	return pg, seen
}

// plugWriter holds pg's writer in a commit: another connection locks the
// ledger table and a ledger insert (the plug) waits on that lock. Writes
// queued meanwhile stay in the queue, in order, and form the next batch
// once release is called. release waits for the plug's own result.
func plugWriter(t *testing.T, pg *store.Postgres) (release func()) {
	t.Helper()
	return plugWith(t, pg, func(ctx context.Context) error {
		return pg.RecordInteraction(ctx, interaction(fmt.Sprintf("plug-%d", time.Now().UnixNano())))
	}, func() int { return store.QueuedWrites(pg) })
}

// plugWith holds a writer in a commit: another connection locks the
// ledger table and plug, a ledger write of that writer, waits on the lock
// until release; queuedLen is how many writes wait in that writer's queue.
func plugWith(t *testing.T, pg *store.Postgres, plug func(context.Context) error, queuedLen func() int) (release func()) {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, testDatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE interactions IN EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	plugged := make(chan error, 1)
	go func() { plugged <- plug(ctx) }()
	waitFor(t, "the plug to wait on the lock", func() bool {
		var waiting int
		err := pg.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
		return err == nil && waiting == 1 && queuedLen() == 0
	})
	var once sync.Once
	release = func() {
		once.Do(func() {
			ctx := context.WithoutCancel(ctx) // also when the test has ended
			if err := tx.Commit(ctx); err != nil {
				t.Error(err)
			}
			_ = conn.Close(ctx)
			if err := <-plugged; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("the plug: %v", err)
			}
		})
	}
	t.Cleanup(release)
	return release
}

// waitFor polls cond every millisecond for up to 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// queued runs write in a goroutine once the writer queue holds n-1 writes,
// waits until it is the n-th, and returns where its result will arrive.
// Calling it for n = 1, 2, 3... queues writes in that order.
func queued[T any](t *testing.T, pg *store.Postgres, n int, write func() T) <-chan T {
	t.Helper()
	return queuedIn(t, func() int { return store.QueuedWrites(pg) }, n, write)
}

// queuedIn is queued for the writer whose queue length queuedLen reports.
func queuedIn[T any](t *testing.T, queuedLen func() int, n int, write func() T) <-chan T {
	t.Helper()
	out := make(chan T, 1)
	go func() { out <- write() }()
	waitFor(t, fmt.Sprintf("write %d to be queued", n), func() bool { return queuedLen() == n })
	return out
}

type upsertResult struct {
	created bool
	err     error
}

// One batch holding two inserts of one id, two upserts of one student, an
// insert and its finish, and a finish of nothing: each caller gets its own
// result, as if the writes had run one after the other.
func TestGroupCommitOneBatchEachCallerItsOwnResult(t *testing.T) {
	pg, seen := openPostgresConfig(t, store.Config{})
	ctx := t.Context()
	release := plugWriter(t, pg)

	upsert := func(name string) func() upsertResult {
		return func() upsertResult {
			r := ada()
			r.Name = name
			c, err := pg.UpsertRegistration(ctx, r)
			return upsertResult{c, err}
		}
	}
	record := func(id string) func() error {
		return func() error { return pg.RecordInteraction(ctx, interaction(id)) }
	}
	finish := func(id string) func() error {
		return func() error {
			return pg.FinishInteraction(ctx, store.Interaction{Platform: "slack", ID: id, Outcome: "ok"})
		}
	}
	dup := interaction("a")
	dup.Command = "ask"

	recA := queued(t, pg, 1, record("a"))
	recA2 := queued(t, pg, 2, func() error { return pg.RecordInteraction(ctx, dup) })
	upAda1 := queued(t, pg, 3, upsert("Ada One"))
	upAda2 := queued(t, pg, 4, upsert("Ada Two"))
	recB := queued(t, pg, 5, record("b"))
	finB := queued(t, pg, 6, finish("b"))
	finNone := queued(t, pg, 7, finish("none"))
	upGrace := queued(t, pg, 8, func() upsertResult {
		c, err := pg.UpsertRegistration(ctx, store.Registration{Platform: "discord", Workspace: "G1", User: "U2",
			Name: "Grace Hopper", Email: "grace@example.com"})
		return upsertResult{c, err}
	})
	release()

	if err := <-recA; err != nil {
		t.Errorf("first insert of a: %v, want new", err)
	}
	if err := <-recA2; !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("second insert of a: %v, want ErrDuplicate", err)
	}
	if r := <-upAda1; r.err != nil || !r.created {
		t.Errorf("first upsert of Ada: %+v, want created", r)
	}
	if r := <-upAda2; r.err != nil || r.created {
		t.Errorf("second upsert of Ada: %+v, want updated", r)
	}
	if err := <-recB; err != nil {
		t.Errorf("insert of b: %v", err)
	}
	if err := <-finB; err != nil {
		t.Errorf("finish of b, queued after its insert: %v", err)
	}
	if err := <-finNone; !errors.Is(err, store.ErrNotFound) {
		t.Errorf("finish of a missing row: %v, want ErrNotFound", err)
	}
	if r := <-upGrace; r.err != nil || !r.created {
		t.Errorf("upsert of Grace: %+v, want created", r)
	}
	if got := seen.sizes(); !slices.Equal(got, []int{1, 8}) {
		t.Errorf("batches of %v writes, want the plug alone then all 8 together", got)
	}
	if n := store.GroupedBatches(pg); n != 0 {
		t.Errorf("%d batches ran as multi-row statements; a batch with a key twice must run write by write", n)
	}

	if a, err := pg.GetInteraction(ctx, "slack", "a"); err != nil || a.Command != "register" {
		t.Errorf("row a = %+v, %v; want the first insert's", a, err)
	}
	if b, err := pg.GetInteraction(ctx, "slack", "b"); err != nil || b.Outcome != "ok" {
		t.Errorf("row b = %+v, %v; want finished", b, err)
	}
	if r, err := pg.GetRegistration(ctx, "slack", "T1", "U1"); err != nil || r.Name != "Ada Two" {
		t.Errorf("Ada = %+v, %v; want the later upsert's name", r, err)
	}
}

// A row the database refuses (here a constraint the Go checks do not know)
// fails only its own caller: the batch is retried one write at a time and
// the others commit, each with the result it would have had alone.
func TestGroupCommitOneRefusedRowFailsOnlyItsCaller(t *testing.T) {
	pg, seen := openPostgresConfig(t, store.Config{})
	ctx := t.Context()
	if _, err := pg.Pool().Exec(ctx, `ALTER TABLE registrations ADD CONSTRAINT registrations_test_no_mallory CHECK (name <> 'Mallory')`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := pg.Pool().Exec(context.WithoutCancel(ctx), `ALTER TABLE registrations DROP CONSTRAINT registrations_test_no_mallory`); err != nil {
			t.Error(err)
		}
	})
	release := plugWriter(t, pg)

	upsert := func(user, name string) func() upsertResult {
		return func() upsertResult {
			r := ada()
			r.User, r.Name = user, name
			c, err := pg.UpsertRegistration(ctx, r)
			return upsertResult{c, err}
		}
	}
	good1 := queued(t, pg, 1, upsert("U1", "Ada"))
	bad := queued(t, pg, 2, upsert("U2", "Mallory"))
	rec := queued(t, pg, 3, func() error { return pg.RecordInteraction(ctx, interaction("c")) })
	good2 := queued(t, pg, 4, upsert("U3", "Grace"))
	fin := queued(t, pg, 5, func() error {
		return pg.FinishInteraction(ctx, store.Interaction{Platform: "slack", ID: "c", Outcome: "ok"})
	})
	release()

	// Created, not updated: the refused batch left nothing behind before
	// the one-by-one retry.
	if r := <-good1; r.err != nil || !r.created {
		t.Errorf("good upsert before the bad one: %+v, want created", r)
	}
	if r := <-bad; !errors.Is(r.err, store.ErrInvalid) || !strings.Contains(r.err.Error(), "registrations_test_no_mallory") {
		t.Errorf("refused upsert: %v, want ErrInvalid naming the constraint", r.err)
	}
	if err := <-rec; err != nil {
		t.Errorf("ledger insert in the same batch: %v, want new", err)
	}
	if r := <-good2; r.err != nil || !r.created {
		t.Errorf("good upsert after the bad one: %+v, want created", r)
	}
	if err := <-fin; err != nil {
		t.Errorf("ledger finish in the same batch: %v", err)
	}
	if got := seen.sizes(); !slices.Equal(got, []int{1, 5}) {
		t.Errorf("batches of %v writes, want the plug alone then all 5 together", got)
	}
	if n, err := pg.CountRegistrations(ctx); err != nil || n != 2 {
		t.Errorf("count = %d, %v; want the 2 good registrations", n, err)
	}
	if c, err := pg.GetInteraction(ctx, "slack", "c"); err != nil || c.Outcome != "ok" {
		t.Errorf("row c = %+v, %v; want recorded and finished", c, err)
	}
}

// A caller that stops waiting while its ledger insert is queued gets ctx's
// error at once, and the insert still happens, so the finish that follows
// finds its row.
func TestGroupCommitFinishWhileInsertStillQueued(t *testing.T) {
	pg, _ := openPostgresConfig(t, store.Config{})
	ctx := t.Context()
	release := plugWriter(t, pg)

	recCtx, cancel := context.WithCancel(ctx)
	rec := queued(t, pg, 1, func() error { return pg.RecordInteraction(recCtx, interaction("q")) })
	cancel()
	// The writer is held by the plug: only a caller that does not wait for
	// it can return now.
	if err := <-rec; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled insert: %v, want context.Canceled", err)
	}
	fin := queued(t, pg, 2, func() error {
		return pg.FinishInteraction(ctx, store.Interaction{Platform: "slack", ID: "q", Outcome: "timeout"})
	})
	release()
	if err := <-fin; err != nil {
		t.Errorf("finish queued behind its insert: %v, want nil", err)
	}
	if q, err := pg.GetInteraction(ctx, "slack", "q"); err != nil || q.Outcome != "timeout" {
		t.Errorf("row q = %+v, %v; want recorded and finished", q, err)
	}
}

// Many concurrent writes make far fewer commits.
func TestGroupCommitBatchesConcurrentWrites(t *testing.T) {
	pg, seen := openPostgresConfig(t, store.Config{})
	ctx := t.Context()
	const n = 200
	var (
		wg     sync.WaitGroup
		failed atomic.Int64
		start  = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-start
			if err := pg.RecordInteraction(ctx, interaction(fmt.Sprintf("many-%d", i))); err != nil {
				t.Error(err)
				failed.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	sizes := seen.sizes()
	total := 0
	for _, s := range sizes {
		total += s
	}
	if total != n {
		t.Errorf("batches hold %d writes, want %d", total, n)
	}
	if len(sizes) > n/4 {
		t.Errorf("%d concurrent writes took %d commits (%v), want at most %d", n, len(sizes), sizes, n/4)
	}
	t.Logf("%d writes in %d commits: %v", n, len(sizes), sizes)
}

// A write that finds the writer idle goes out at once, however long the
// window (an hour here). Under contention the writer holds a batch open
// for the window, and the batch closes early at MaxBatchRows.
func TestGroupCommitLoneWriteIsNotDelayedAndBatchClosesAtMaxRows(t *testing.T) {
	pg, seen := openPostgresConfig(t, store.Config{BatchWindow: time.Hour, MaxBatchRows: 3})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := pg.RecordInteraction(ctx, interaction("lone")); err != nil {
		t.Fatalf("a lone write to an idle writer: %v", err)
	}
	release := plugWriter(t, pg) // a lone write too: it is not held either
	record := func(id string) func() error {
		return func() error { return pg.RecordInteraction(ctx, interaction(id)) }
	}
	var full []<-chan error
	for i := range 3 {
		full = append(full, queued(t, pg, i+1, record(fmt.Sprintf("full-%d", i))))
	}
	release()
	for _, res := range full {
		if err := <-res; err != nil {
			t.Fatal(err)
		}
	}
	// Within the hour after a batch of three: these wait for each other
	// until the batch is full.
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			if err := record(fmt.Sprintf("held-%d", i))(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := seen.sizes(); !slices.Equal(got, []int{1, 1, 3, 3}) {
		t.Errorf("batches of %v writes, want [1 1 3 3]: two lone writes at once, then two full batches", got)
	}
}

// Close commits the writes still queued, ends the writer, and refuses
// later writes with ErrClosed.
func TestGroupCommitCloseFlushesQueuedWrites(t *testing.T) {
	pg, _ := openPostgresConfig(t, store.Config{})
	ctx := t.Context()
	release := plugWriter(t, pg)
	var results []<-chan error
	for i := range 5 {
		results = append(results, queued(t, pg, i+1, func() error {
			return pg.RecordInteraction(ctx, interaction(fmt.Sprintf("flush-%d", i)))
		}))
	}
	closed := make(chan struct{})
	go func() { pg.Close(); close(closed) }()
	waitFor(t, "Close to shut the queue", func() bool { return store.WriterStopping(pg) })
	release()
	<-closed
	for i, res := range results {
		if err := <-res; err != nil {
			t.Errorf("write %d queued before Close: %v", i, err)
		}
	}
	if err := pg.RecordInteraction(ctx, interaction("late")); !errors.Is(err, store.ErrClosed) {
		t.Errorf("write after Close: %v, want ErrClosed", err)
	}
	if _, err := pg.UpsertRegistration(ctx, ada()); !errors.Is(err, store.ErrClosed) {
		t.Errorf("upsert after Close: %v, want ErrClosed", err)
	}
	again := openPostgresNoTruncate(t)
	for i := range 5 {
		if _, err := again.GetInteraction(ctx, "slack", fmt.Sprintf("flush-%d", i)); err != nil {
			t.Errorf("flush-%d after Close: %v", i, err)
		}
	}
}

func openPostgresNoTruncate(t *testing.T) *store.Postgres {
	t.Helper()
	pg, err := store.Open(t.Context(), testDatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)
	return pg
}

// A batch with no key twice runs as one multi-row statement per kind of
// write; each caller still gets its own result: new or duplicate (also
// against rows committed before), an unacknowledged row taken over,
// created or updated, finished or not found.
func TestGroupCommitGroupedStatementsEachCallerItsOwnResult(t *testing.T) {
	pg, seen := openPostgresConfig(t, store.Config{})
	ctx := t.Context()
	// Committed before the batch: a row, an unacknowledged row, a student.
	for _, id := range []string{"old", "older", "unacked"} {
		if err := pg.RecordInteraction(ctx, interaction(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := pg.FinishInteraction(ctx, store.Interaction{Platform: "slack", ID: "unacked", Outcome: store.OutcomeAckFailed}); err != nil {
		t.Fatal(err)
	}
	if _, err := pg.UpsertRegistration(ctx, ada()); err != nil {
		t.Fatal(err)
	}
	before, groupedBefore := len(seen.sizes()), store.GroupedBatches(pg)
	release := plugWriter(t, pg)

	recNew := queued(t, pg, 1, func() error { return pg.RecordInteraction(ctx, interaction("new")) })
	recOld := queued(t, pg, 2, func() error { return pg.RecordInteraction(ctx, interaction("old")) })
	recUnacked := queued(t, pg, 3, func() error { return pg.RecordInteraction(ctx, interaction("unacked")) })
	upAda := queued(t, pg, 4, func() upsertResult {
		r := ada()
		r.Name = "Ada Again"
		c, err := pg.UpsertRegistration(ctx, r)
		return upsertResult{c, err}
	})
	upGrace := queued(t, pg, 5, func() upsertResult {
		c, err := pg.UpsertRegistration(ctx, store.Registration{Platform: "discord", Workspace: "G1", User: "U2",
			Name: "Grace Hopper", Email: "grace@example.com"})
		return upsertResult{c, err}
	})
	finOld := queued(t, pg, 6, func() error {
		return pg.FinishInteraction(ctx, store.Interaction{Platform: "slack", ID: "older", Outcome: "ok", RepliedAt: time.Now()})
	})
	finNone := queued(t, pg, 7, func() error {
		return pg.FinishInteraction(ctx, store.Interaction{Platform: "slack", ID: "none", Outcome: "ok"})
	})
	release()

	if err := <-recNew; err != nil {
		t.Errorf("insert of a new id: %v", err)
	}
	if err := <-recOld; !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("insert of a committed id: %v, want ErrDuplicate", err)
	}
	if err := <-recUnacked; err != nil {
		t.Errorf("insert over an unacknowledged row: %v, want it taken over", err)
	}
	if r := <-upAda; r.err != nil || r.created {
		t.Errorf("upsert of a registered student: %+v, want updated", r)
	}
	if r := <-upGrace; r.err != nil || !r.created {
		t.Errorf("upsert of a new student: %+v, want created", r)
	}
	if err := <-finOld; err != nil {
		t.Errorf("finish of a committed row: %v", err)
	}
	if err := <-finNone; !errors.Is(err, store.ErrNotFound) {
		t.Errorf("finish of a missing row: %v, want ErrNotFound", err)
	}
	if got := seen.sizes()[before:]; !slices.Equal(got, []int{1, 7}) {
		t.Errorf("batches of %v writes, want the plug alone then all 7 together", got)
	}
	if n := store.GroupedBatches(pg) - groupedBefore; n != 1 {
		t.Errorf("%d batches ran as multi-row statements, want the batch of 7", n)
	}
	if old, err := pg.GetInteraction(ctx, "slack", "older"); err != nil || old.Outcome != "ok" || old.RepliedAt.IsZero() {
		t.Errorf("row older = %+v, %v; want finished", old, err)
	}
	if un, err := pg.GetInteraction(ctx, "slack", "unacked"); err != nil || un.Outcome != "" {
		t.Errorf("row unacked = %+v, %v; want taken over (outcome empty)", un, err)
	}
	if r, err := pg.GetRegistration(ctx, "slack", "T1", "U1"); err != nil || r.Name != "Ada Again" {
		t.Errorf("Ada = %+v, %v; want the update", r, err)
	}
}

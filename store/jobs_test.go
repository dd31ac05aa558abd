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

	"github.com/classbot/classbot/internal/pgproxy"
	"github.com/classbot/classbot/store"
)

// fakeQueue records what the store's queue hooks were given and writes it
// in the batch's transaction, as River does, to a table of its own.
type fakeQueue struct {
	mu       sync.Mutex
	enqueues [][]any
	fail     error
}

func (f *fakeQueue) hooks() store.JobHooks {
	return store.JobHooks{
		Enqueue: func(ctx context.Context, tx pgx.Tx, jobs []any) error {
			f.mu.Lock()
			f.enqueues = append(f.enqueues, slices.Clone(jobs))
			fail := f.fail
			f.mu.Unlock()
			for _, j := range jobs {
				if _, err := tx.Exec(ctx, `INSERT INTO fake_jobs (name) VALUES ($1)`, j.(string)); err != nil {
					return err
				}
			}
			return fail
		},
	}
}

var input = []byte(`{"command":{}}`)

func openQueueStore(t *testing.T) (*store.Postgres, *fakeQueue, *batches) {
	t.Helper()
	pg, seen := openPostgresConfig(t, store.Config{})
	if _, err := pg.Pool().Exec(t.Context(), `
DROP TABLE IF EXISTS fake_jobs;
CREATE TABLE fake_jobs (id bigserial PRIMARY KEY, name text NOT NULL, done bool NOT NULL DEFAULT false)`); err != nil {
		t.Fatal(err)
	}
	f := &fakeQueue{}
	pg.SetJobHooks(f.hooks())
	return pg, f, seen
}

// plugLane holds pg's acknowledgement lane in a commit, as plugWriter
// does the main writer: enqueues made meanwhile wait in its queue.
func plugLane(t *testing.T, pg *store.Postgres) (release func()) {
	t.Helper()
	return plugWith(t, pg, func(ctx context.Context) error {
		return pg.RecordAndEnqueue(ctx, interaction("plug"), input, "plug")
	}, func() int { return store.QueuedEnqueues(pg) })
}

// queuedEnqueue runs write in a goroutine and waits until it is the n-th
// write in the acknowledgement lane's queue.
func queuedEnqueue(t *testing.T, pg *store.Postgres, n int, write func() error) <-chan error {
	t.Helper()
	return queuedIn(t, func() int { return store.QueuedEnqueues(pg) }, n, write)
}

func jobNames(t *testing.T, pg *store.Postgres, where string) []string {
	t.Helper()
	rows, err := pg.Pool().Query(t.Context(), `SELECT name FROM fake_jobs WHERE `+where+` ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// A burst of commands queued while a commit is in flight is one
// transaction: one call of the Enqueue hook for all of their jobs; a
// duplicate delivery among them writes neither a row nor a job.
func TestRecordAndEnqueueShareOneTransaction(t *testing.T) {
	pg, f, seen := openQueueStore(t)
	ctx := t.Context()
	if err := pg.RecordAndEnqueue(ctx, interaction("seen"), input, "seen"); err != nil {
		t.Fatal(err)
	}
	before := len(seen.sizes())
	release := plugLane(t, pg)
	// The main writer is not held up by the lane's commit in flight.
	if _, err := pg.UpsertRegistration(ctx, store.Registration{Platform: "slack", Workspace: "T1", User: "U1",
		Name: "Ada", Email: "ada@example.com"}); err != nil {
		t.Fatalf("the main writer while the lane commits: %v", err)
	}
	var results []<-chan error
	for i := range 5 {
		id := fmt.Sprintf("new%d", i)
		results = append(results, queuedEnqueue(t, pg, i+1, func() error { return pg.RecordAndEnqueue(ctx, interaction(id), input, id) }))
	}
	dup := queuedEnqueue(t, pg, 6, func() error { return pg.RecordAndEnqueue(ctx, interaction("seen"), input, "seen again") })
	release()
	for i, r := range results {
		if err := <-r; err != nil {
			t.Errorf("enqueue %d: %v", i, err)
		}
	}
	if err := <-dup; !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("a redelivery: %v, want ErrDuplicate", err)
	}
	if got := seen.sizes()[before:]; !slices.Equal(got, []int{1, 1, 6}) {
		t.Errorf("batches of %v writes, want the main writer's, the plug, then all six together", got)
	}
	f.mu.Lock()
	calls := slices.Clone(f.enqueues)
	f.mu.Unlock()
	if len(calls) != 3 || !slices.Equal(calls[2], []any{"new0", "new1", "new2", "new3", "new4"}) {
		t.Errorf("Enqueue calls %v, want one for the burst without the duplicate", calls)
	}
	if got := jobNames(t, pg, "true"); !slices.Equal(got, []string{"new0", "new1", "new2", "new3", "new4", "plug", "seen"}) {
		t.Errorf("jobs %v", got)
	}
}

// A failing Enqueue hook rolls the ledger rows back with it: both or
// neither, and every caller hears of it.
func TestRecordAndEnqueueIsAllOrNothing(t *testing.T) {
	pg, f, _ := openQueueStore(t)
	ctx := t.Context()
	f.fail = errors.New("queue full")
	err := pg.RecordAndEnqueue(ctx, interaction("lost"), input, "lost")
	if err == nil || !errors.Is(err, f.fail) {
		t.Fatalf("enqueue with a failing hook: %v", err)
	}
	if _, err := pg.GetInteraction(ctx, "slack", "lost"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the ledger row outlived its job's failure: %v", err)
	}
	if got := jobNames(t, pg, "true"); len(got) != 0 {
		t.Errorf("jobs %v", got)
	}
	// And the next one, the hook healed, commits.
	f.mu.Lock()
	f.fail = nil
	f.mu.Unlock()
	if err := pg.RecordAndEnqueue(ctx, interaction("lost"), input, "lost"); err != nil {
		t.Fatalf("a redelivery after the failure: %v", err)
	}
}

// A queued command's ledger row keeps the job's input and its outbox (the
// first answer recorded wins) until FinishJob clears both, alone or in a
// grouped batch; a row whose command ended takes no more answers.
func TestJobRowLifecycle(t *testing.T) {
	pg, _, _ := openQueueStore(t)
	ctx := t.Context()
	for _, id := range []string{"one", "two", "three"} {
		if err := pg.RecordAndEnqueue(ctx, interaction(id), []byte(`{"q":"`+id+`"}`), id); err != nil {
			t.Fatal(err)
		}
	}
	row, err := pg.ReadJob(ctx, "slack", "one")
	if err != nil || string(row.Input) != `{"q": "one"}` || row.Outbox != nil || !row.RepliedAt.IsZero() {
		t.Fatalf("a new row: %+v (input %s), %v", row, row.Input, err)
	}
	if err := pg.SaveOutbox(ctx, "slack", "one", []byte(`{"text":"first"}`)); err != nil {
		t.Fatal(err)
	}
	if err := pg.SaveOutbox(ctx, "slack", "one", []byte(`{"text":"second"}`)); err != nil {
		t.Fatal(err)
	}
	if row, err := pg.ReadJob(ctx, "slack", "one"); err != nil || string(row.Outbox) != `{"text": "first"}` {
		t.Fatalf("outbox %s, %v; want the first answer", row.Outbox, err)
	}
	for _, p := range [][2]string{{"dm", "111"}, {"ephemeral", "1.2"}} {
		if err := pg.RecordPost(ctx, "slack", "one", p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
	if row, err := pg.ReadJob(ctx, "slack", "one"); err != nil || row.Posted["dm"] != "111" || row.Posted["ephemeral"] != "1.2" {
		t.Fatalf("posted %v, %v", row.Posted, err)
	}
	// Two finishes in one batch go out grouped; a third alone.
	release := plugWriter(t, pg)
	var results []<-chan error
	for i, id := range []string{"one", "two"} {
		results = append(results, queued(t, pg, i+1, func() error {
			return pg.FinishJob(ctx, store.Interaction{Platform: "slack", ID: id, Outcome: "ok", RepliedAt: time.Now()})
		}))
	}
	release()
	for _, r := range results {
		if err := <-r; err != nil {
			t.Fatal(err)
		}
	}
	if err := pg.FinishJob(ctx, store.Interaction{Platform: "slack", ID: "three", Outcome: "ok", RepliedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"one", "two", "three"} {
		row, err := pg.ReadJob(ctx, "slack", id)
		if err != nil || row.Input != nil || row.Outbox != nil || row.Posted != nil || row.RepliedAt.IsZero() || row.Outcome != "ok" {
			t.Errorf("%s after FinishJob: %+v, %v", id, row, err)
		}
	}
	if err := pg.SaveOutbox(ctx, "slack", "one", []byte(`{}`)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an answer for an ended command: %v, want ErrNotFound", err)
	}
	if err := pg.RecordPost(ctx, "slack", "one", "dm", "1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a post for an ended command: %v, want ErrNotFound", err)
	}
	if _, err := pg.ReadJob(ctx, "slack", "never"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ReadJob of no row: %v", err)
	}
}

// A connection lost once the COMMIT was sent leaves the caller unable to
// know: the error wraps ErrUncertain (and here the commit did land). Lost
// before the COMMIT, the transaction rolled back: the error does not.
func TestLostCommitIsUncertain(t *testing.T) {
	direct, _, _ := openQueueStore(t)
	cfg, err := pgx.ParseConfig(testDatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct {
		name, cutAt string
		write       func(pg *store.Postgres, id string) error
		uncertain   bool
		written     bool
	}{
		{"commit of an enqueue", "commit", func(pg *store.Postgres, id string) error {
			return pg.RecordAndEnqueue(t.Context(), interaction(id), input, id)
		}, true, true},
		{"before an enqueue's commit", "insert into fake_jobs", func(pg *store.Postgres, id string) error {
			return pg.RecordAndEnqueue(t.Context(), interaction(id), input, id)
		}, false, false},
		{"an implicit transaction", "insert into interactions", func(pg *store.Postgres, id string) error {
			return pg.RecordInteraction(t.Context(), interaction(id))
		}, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var armed atomic.Bool
			proxy, err := pgproxy.Start(t.Context(), fmt.Sprintf("%s:%d", cfg.Host, cfg.Port), pgproxy.Options{
				CutAfterFunc: func(b []byte) bool {
					return armed.Load() && strings.Contains(strings.ToLower(string(b)), c.cutAt) && armed.CompareAndSwap(true, false)
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = proxy.Close() })
			url := strings.Replace(testDatabaseURL, fmt.Sprintf("%s:%d", cfg.Host, cfg.Port), proxy.Addr(), 1)
			pg, err := store.OpenWithConfig(t.Context(), url, store.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pg.Close)
			f := &fakeQueue{}
			pg.SetJobHooks(f.hooks())
			id := fmt.Sprintf("cut%d", i)
			armed.Store(true)
			err = c.write(pg, id)
			if err == nil {
				t.Fatal("the write succeeded through a cut connection")
			}
			if got := errors.Is(err, store.ErrUncertain); got != c.uncertain {
				t.Errorf("error %v: uncertain %v, want %v", err, got, c.uncertain)
			}
			_, rerr := direct.GetInteraction(t.Context(), "slack", id)
			if written := rerr == nil; written != c.written {
				t.Errorf("row written: %v (%v), want %v", written, rerr, c.written)
			}
		})
	}
}

// HoldUnanswered keeps a command's answer from being recorded while its f
// runs (SaveOutbox waits), holds no row lock (the ledger's other writes go
// on), and is refused once the answer is recorded.
func TestHoldUnansweredHoldsTheAnswerBack(t *testing.T) {
	pg, _, _ := openQueueStore(t)
	ctx := t.Context()
	for _, id := range []string{"held", "other"} {
		if err := pg.RecordAndEnqueue(ctx, interaction(id), input, id); err != nil {
			t.Fatal(err)
		}
	}
	inside, release := make(chan struct{}), make(chan struct{})
	holdDone := make(chan bool, 1)
	go func() {
		held, err := pg.HoldUnanswered(ctx, "slack", "held", func(context.Context, pgx.Tx) error {
			close(inside)
			<-release
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		holdDone <- held
	}()
	<-inside
	saved := make(chan error, 1)
	go func() { saved <- pg.SaveOutbox(ctx, "slack", "held", []byte(`{"text":"answer"}`)) }()
	// The row itself is not locked: another write of it goes through.
	if err := pg.RecordPost(ctx, "slack", "held", "probe", "m1"); err != nil {
		t.Fatalf("a write of the held row: %v", err)
	}
	if err := pg.SaveOutbox(ctx, "slack", "other", []byte(`{"text":"other"}`)); err != nil {
		t.Fatalf("another command's answer: %v", err)
	}
	select {
	case err := <-saved:
		close(release)
		t.Fatalf("the answer was recorded while held (%v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	if !<-holdDone {
		t.Error("HoldUnanswered did not hold an unanswered command")
	}
	if err := <-saved; err != nil {
		t.Fatal(err)
	}
	held, err := pg.HoldUnanswered(ctx, "slack", "held", func(context.Context, pgx.Tx) error {
		t.Error("f called for an answered command")
		return nil
	})
	if held || err != nil {
		t.Errorf("an answered command: held %v, %v", held, err)
	}
}

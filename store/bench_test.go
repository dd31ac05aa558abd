package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/classbot/classbot/internal/pgtest"
	"github.com/classbot/classbot/store"
)

// openPostgresTB is openPostgres for benchmarks: a migrated, emptied store
// on this package's test database.
func openPostgresTB(tb testing.TB) *store.Postgres {
	tb.Helper()
	ctx := tb.Context()
	pg, err := store.Open(ctx, testDatabaseURL)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pg.Close)
	if err := store.Migrate(ctx, pg.Pool()); err != nil {
		tb.Fatal(err)
	}
	if _, err := pg.Pool().Exec(ctx, "TRUNCATE registrations, interactions"); err != nil {
		tb.Fatal(err)
	}
	return pg
}

var benchSeq atomic.Int64

// BenchmarkPostgresRegister is the store's share of one /register: the
// ledger row, the registration upsert, and the ledger's finish, as the
// dispatcher writes them, one after the other (three commits: alone, each
// write finds the writer idle and goes out at once).
func BenchmarkPostgresRegister(b *testing.B) {
	pg := openPostgresTB(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		n := benchSeq.Add(1)
		now := time.Now()
		in := store.Interaction{Platform: "slack", ID: fmt.Sprintf("bench-%d", n), Command: "register", Mode: "async",
			Workspace: "T1", Channel: "C1", User: fmt.Sprintf("U%d", n), ReceivedAt: now}
		if err := pg.RecordInteraction(ctx, in); err != nil {
			b.Fatal(err)
		}
		if _, err := pg.UpsertRegistration(ctx, store.Registration{Platform: "slack", Workspace: "T1", User: in.User,
			Channel: "C1", Name: "Ada Lovelace", Email: fmt.Sprintf("ada.%d@example.com", n)}); err != nil {
			b.Fatal(err)
		}
		in.AcknowledgedAt, in.StoredAt, in.AgentDoneAt, in.RepliedAt, in.Outcome = now, now, now, time.Now(), "ok"
		if err := pg.FinishInteraction(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPostgresUpsertRegistration is one registration write.
func BenchmarkPostgresUpsertRegistration(b *testing.B) {
	pg := openPostgresTB(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		n := benchSeq.Add(1)
		if _, err := pg.UpsertRegistration(ctx, store.Registration{Platform: "discord", Workspace: "G1", User: fmt.Sprintf("%d", n),
			Channel: "C1", Name: "Grace Hopper", Email: "grace@example.com"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPostgresRecordInteraction is one ledger insert, the write that
// happens before the acknowledgement.
func BenchmarkPostgresRecordInteraction(b *testing.B) {
	pg := openPostgresTB(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		n := benchSeq.Add(1)
		if err := pg.RecordInteraction(ctx, store.Interaction{Platform: "discord", ID: fmt.Sprintf("bench-ri-%d", n), Command: "register",
			Mode: "async", Workspace: "G1", Channel: "C1", User: "U1", ReceivedAt: time.Now()}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPostgresRegisterParallel is BenchmarkPostgresRegister from many
// goroutines at once (8 per CPU), as under load: the writer's group commit
// gathers their writes.
func BenchmarkPostgresRegisterParallel(b *testing.B) {
	pg := openPostgresTB(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := benchSeq.Add(1)
			now := time.Now()
			in := store.Interaction{Platform: "slack", ID: fmt.Sprintf("bench-p-%d", n), Command: "register", Mode: "async",
				Workspace: "T2", Channel: "C1", User: fmt.Sprintf("U%d", n), ReceivedAt: now}
			if err := pg.RecordInteraction(ctx, in); err != nil {
				b.Fatal(err)
			}
			if _, err := pg.UpsertRegistration(ctx, store.Registration{Platform: "slack", Workspace: "T2", User: in.User,
				Channel: "C1", Name: "Ada Lovelace", Email: "ada@example.com"}); err != nil {
				b.Fatal(err)
			}
			in.AcknowledgedAt, in.RepliedAt, in.Outcome = now, time.Now(), "ok"
			if err := pg.FinishInteraction(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPostgresRegisterParallel64 is a class typing at once: 32
// goroutines per CPU each doing /register's three writes. It reports the
// database's commits per register (from pg_stat_database.xact_commit: 3
// without group commit) and the writer's writes per commit (from
// Config.ObserveBatchFunc).
func BenchmarkPostgresRegisterParallel64(b *testing.B) {
	openPostgresTB(b).Close() // migrated and emptied, its backends gone
	ctx := context.Background()
	before := xactCommits(b)
	var batches, rows atomic.Int64
	pg, err := store.OpenWithConfig(ctx, testDatabaseURL, store.Config{
		ObserveBatchFunc: func(n int, _ time.Duration) { batches.Add(1); rows.Add(int64(n)) },
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pg.Close)
	b.ResetTimer()
	b.ReportAllocs()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := benchSeq.Add(1)
			now := time.Now()
			in := store.Interaction{Platform: "slack", ID: fmt.Sprintf("bench-w-%d", n), Command: "register", Mode: "async",
				Workspace: "T3", Channel: "C1", User: fmt.Sprintf("U%d", n), ReceivedAt: now}
			if err := pg.RecordInteraction(ctx, in); err != nil {
				b.Fatal(err)
			}
			if _, err := pg.UpsertRegistration(ctx, store.Registration{Platform: "slack", Workspace: "T3", User: in.User,
				Channel: "C1", Name: "Ada Lovelace", Email: "ada@example.com"}); err != nil {
				b.Fatal(err)
			}
			in.AcknowledgedAt, in.RepliedAt, in.Outcome = now, time.Now(), "ok"
			if err := pg.FinishInteraction(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.StopTimer()
	pg.Close() // a backend's statistics are flushed when it exits
	b.ReportMetric(float64(xactCommits(b)-before)/float64(b.N), "commits/op")
	b.ReportMetric(float64(rows.Load())/float64(max(batches.Load(), 1)), "rows/commit")
}

// xactCommits is the test database's committed transactions so far, once
// every other backend on it has exited (and so flushed its statistics).
func xactCommits(tb testing.TB) int64 {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var others int
		pgtest.QueryRow(tb, testDatabaseURL, `SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()`, nil, &others)
		if others == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var n int64
	pgtest.QueryRow(tb, testDatabaseURL, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`, nil, &n)
	return n
}

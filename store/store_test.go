package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/errgroup"

	"github.com/classbot/classbot/internal/pgtest"
	"github.com/classbot/classbot/store"
)

var testDatabaseURL string

func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m, "classbot_store_test", &testDatabaseURL))
}

// contract is what both stores promise.
type contract interface {
	UpsertRegistration(ctx context.Context, r store.Registration) (bool, error)
	GetRegistration(ctx context.Context, platform, workspace, user string) (store.Registration, error)
	CountRegistrations(ctx context.Context) (int, error)
	RecordInteraction(ctx context.Context, in store.Interaction) error
	FinishInteraction(ctx context.Context, in store.Interaction) error
	GetInteraction(ctx context.Context, platform, id string) (store.Interaction, error)
	PurgeInteractions(ctx context.Context, olderThan time.Time) (int64, error)
	Ping(ctx context.Context) error
	Close()
}

var (
	_ contract = (*store.Postgres)(nil)
	_ contract = (*store.Memory)(nil)
)

// openPostgres opens the test database, migrated and emptied.
func openPostgres(t *testing.T) *store.Postgres {
	t.Helper()
	ctx := t.Context()
	pg, err := store.Open(ctx, testDatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)
	if err := store.Migrate(ctx, pg.Pool()); err != nil {
		t.Fatal(err)
	}
	if _, err := pg.Pool().Exec(ctx, "TRUNCATE registrations, interactions"); err != nil {
		t.Fatal(err)
	}
	return pg
}

// eachStore runs the test against PostgreSQL and memory. The PostgreSQL
// subtests share one database, so they do not run in parallel.
func eachStore(t *testing.T, test func(t *testing.T, s contract)) {
	t.Run("postgres", func(t *testing.T) { test(t, openPostgres(t)) })
	t.Run("memory", func(t *testing.T) { test(t, store.NewMemory()) })
}

func ada() store.Registration {
	return store.Registration{Platform: "slack", Workspace: "T1", User: "U1", Channel: "C1", Name: "Ada Lovelace", Email: "Ada@Example.COM"}
}

func TestRegistrationCreateThenUpdate(t *testing.T) {
	eachStore(t, func(t *testing.T, s contract) {
		ctx := t.Context()
		created, err := s.UpsertRegistration(ctx, ada())
		if err != nil || !created {
			t.Fatalf("first registration: created=%v err=%v, want created", created, err)
		}
		got, err := s.GetRegistration(ctx, "slack", "T1", "U1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "Ada Lovelace" || got.Email != "ada@example.com" || got.Channel != "C1" {
			t.Errorf("stored %+v, want the name, the lower-cased email and the channel", got)
		}
		if got.CreatedAt.IsZero() || !got.UpdatedAt.Equal(got.CreatedAt) {
			t.Errorf("created_at %v updated_at %v, want set and equal", got.CreatedAt, got.UpdatedAt)
		}

		again := ada()
		again.Name, again.Email, again.Channel = "Ada King", "ada@lovelace.org", "C2"
		created, err = s.UpsertRegistration(ctx, again)
		if err != nil || created {
			t.Fatalf("second registration: created=%v err=%v, want updated", created, err)
		}
		upd, err := s.GetRegistration(ctx, "slack", "T1", "U1")
		if err != nil {
			t.Fatal(err)
		}
		if upd.Name != "Ada King" || upd.Email != "ada@lovelace.org" || upd.Channel != "C2" {
			t.Errorf("after update %+v", upd)
		}
		if !upd.CreatedAt.Equal(got.CreatedAt) || upd.UpdatedAt.Before(got.UpdatedAt) {
			t.Errorf("update moved created_at (%v -> %v) or did not advance updated_at (%v -> %v)",
				got.CreatedAt, upd.CreatedAt, got.UpdatedAt, upd.UpdatedAt)
		}
		if n, err := s.CountRegistrations(ctx); err != nil || n != 1 {
			t.Errorf("count = %d, %v; want 1", n, err)
		}
	})
}

func TestRegistrationUniquePerPlatformWorkspaceUser(t *testing.T) {
	eachStore(t, func(t *testing.T, s contract) {
		ctx := t.Context()
		variants := []store.Registration{ada()}
		for _, f := range []func(*store.Registration){
			func(r *store.Registration) { r.Platform = "discord" },
			func(r *store.Registration) { r.Workspace = "T2" },
			func(r *store.Registration) { r.User = "U2" },
		} {
			r := ada()
			f(&r)
			variants = append(variants, r)
		}
		for _, r := range variants {
			if created, err := s.UpsertRegistration(ctx, r); err != nil || !created {
				t.Fatalf("%s/%s/%s: created=%v err=%v, want a new student", r.Platform, r.Workspace, r.User, created, err)
			}
		}
		if n, _ := s.CountRegistrations(ctx); n != 4 {
			t.Errorf("count = %d, want 4", n)
		}
	})
}

func TestRegistrationNotFound(t *testing.T) {
	eachStore(t, func(t *testing.T, s contract) {
		_, err := s.GetRegistration(t.Context(), "slack", "T1", "nobody")
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("err = %v, want ErrNotFound", err)
		}
	})
}

func TestRegistrationInvalidIsRefusedAndNamesNoValue(t *testing.T) {
	eachStore(t, func(t *testing.T, s contract) {
		ctx := t.Context()
		long := ada()
		long.Name = strings.Repeat("é", store.MaxNameChars+1)
		empty := ada()
		empty.Name = ""
		noUser := ada()
		noUser.User = ""
		bigEmail := ada()
		bigEmail.Email = strings.Repeat("a", 250) + "@x.io"
		for _, r := range []store.Registration{long, empty, noUser, bigEmail} {
			_, err := s.UpsertRegistration(ctx, r)
			if !errors.Is(err, store.ErrInvalid) {
				t.Errorf("name %d chars, user %q, email %d bytes: err = %v, want ErrInvalid", len([]rune(r.Name)), r.User, len(r.Email), err)
			}
			if err != nil && strings.Contains(err.Error(), r.Email) {
				t.Errorf("error %q contains the email", err)
			}
		}
		exact := ada()
		exact.Name = strings.Repeat("é", store.MaxNameChars)
		if _, err := s.UpsertRegistration(ctx, exact); err != nil {
			t.Errorf("a name of exactly %d characters: %v", store.MaxNameChars, err)
		}
	})
}

func TestConcurrentRegistrationsOfOneStudent(t *testing.T) {
	eachStore(t, func(t *testing.T, s contract) {
		ctx := t.Context()
		const n = 16
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			created int
			errs    []error
		)
		for i := range n {
			wg.Go(func() {
				r := ada()
				r.Name = "Ada " + string(rune('A'+i))
				c, err := s.UpsertRegistration(ctx, r)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				}
				if c {
					created++
				}
			})
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("errors: %v", errs)
		}
		if created != 1 {
			t.Errorf("%d of %d concurrent registrations reported created, want exactly 1", created, n)
		}
		if c, _ := s.CountRegistrations(ctx); c != 1 {
			t.Errorf("count = %d, want 1", c)
		}
	})
}

func interaction(id string) store.Interaction {
	return store.Interaction{
		Platform: "slack", ID: id, Command: "register", Mode: "async",
		Workspace: "T1", Channel: "C1", User: "U1",
		ReceivedAt: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC),
	}
}

func TestLedgerDetectsDuplicates(t *testing.T) {
	eachStore(t, func(t *testing.T, s contract) {
		ctx := t.Context()
		if err := s.RecordInteraction(ctx, interaction("trig-1")); err != nil {
			t.Fatal(err)
		}
		dup := interaction("trig-1")
		dup.Command = "ask"
		if err := s.RecordInteraction(ctx, dup); !errors.Is(err, store.ErrDuplicate) {
			t.Fatalf("second record of the same id: err = %v, want ErrDuplicate", err)
		}
		got, err := s.GetInteraction(ctx, "slack", "trig-1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Command != "register" {
			t.Errorf("duplicate overwrote the row: command = %q", got.Command)
		}
		// The same id on another platform is another interaction.
		other := interaction("trig-1")
		other.Platform = "discord"
		if err := s.RecordInteraction(ctx, other); err != nil {
			t.Errorf("same id on discord: %v", err)
		}
	})
}

func TestLedgerRedeliveryOfAnUnacknowledgedRowIsNew(t *testing.T) {
	eachStore(t, func(t *testing.T, s contract) {
		ctx := t.Context()
		first := interaction("trig-unacked")
		if err := s.RecordInteraction(ctx, first); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishInteraction(ctx, store.Interaction{Platform: "slack", ID: "trig-unacked", Outcome: store.OutcomeAckFailed}); err != nil {
			t.Fatal(err)
		}
		again := interaction("trig-unacked")
		again.ReceivedAt = first.ReceivedAt.Add(time.Minute)
		if err := s.RecordInteraction(ctx, again); err != nil {
			t.Fatalf("redelivery of an unacknowledged interaction: err = %v, want it recorded as new", err)
		}
		got, err := s.GetInteraction(ctx, "slack", "trig-unacked")
		if err != nil {
			t.Fatal(err)
		}
		if got.Outcome != "" || !got.ReceivedAt.Equal(again.ReceivedAt) {
			t.Errorf("taken-over row: outcome %q received %v, want the redelivery's", got.Outcome, got.ReceivedAt)
		}
		// Once taken over, it is an ordinary row: a third delivery is a duplicate.
		if err := s.RecordInteraction(ctx, interaction("trig-unacked")); !errors.Is(err, store.ErrDuplicate) {
			t.Fatalf("third delivery: err = %v, want ErrDuplicate", err)
		}
	})
}

func TestLedgerConcurrentDeliveriesRecordOnce(t *testing.T) {
	eachStore(t, func(t *testing.T, s contract) {
		ctx := t.Context()
		const n = 16
		var (
			wg         sync.WaitGroup
			mu         sync.Mutex
			ok, dup    int
			unexpected []error
		)
		for range n {
			wg.Go(func() {
				err := s.RecordInteraction(ctx, interaction("trig-race"))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, store.ErrDuplicate):
					dup++
				default:
					unexpected = append(unexpected, err)
				}
			})
		}
		wg.Wait()
		if ok != 1 || dup != n-1 || len(unexpected) > 0 {
			t.Errorf("recorded %d, duplicates %d, errors %v; want 1, %d, none", ok, dup, unexpected, n-1)
		}
	})
}

// Concurrent callers each get their own result, however the store groups
// their writes: of the deliveries of one id exactly one is new, of the
// registrations of one student exactly one is created, a finish after its
// insert finds the row, and a finish of nothing is ErrNotFound.
func TestConcurrentWritesEachGetTheirOwnResult(t *testing.T) {
	eachStore(t, func(t *testing.T, s contract) {
		ctx := t.Context()
		const n = 12
		var (
			wg                                  sync.WaitGroup
			mu                                  sync.Mutex
			newDup, dups, created, createdOther int
			chained, notFound                   int
			unexpected                          []error
			start                               = make(chan struct{})
		)
		fail := func(what string, err error) {
			mu.Lock()
			defer mu.Unlock()
			unexpected = append(unexpected, fmt.Errorf("%s: %w", what, err))
		}
		for i := range n {
			wg.Go(func() { // n deliveries of one id
				<-start
				err := s.RecordInteraction(ctx, interaction("same"))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					newDup++
				case errors.Is(err, store.ErrDuplicate):
					dups++
				default:
					unexpected = append(unexpected, err)
				}
			})
			wg.Go(func() { // n registrations of one student
				<-start
				r := ada()
				r.Name = fmt.Sprintf("Ada %d", i)
				c, err := s.UpsertRegistration(ctx, r)
				if err != nil {
					fail("upsert of one student", err)
					return
				}
				if c {
					mu.Lock()
					created++
					mu.Unlock()
				}
			})
			wg.Go(func() { // n students
				<-start
				r := ada()
				r.User = fmt.Sprintf("other-%d", i)
				c, err := s.UpsertRegistration(ctx, r)
				if err != nil || !c {
					fail("upsert of a new student", fmt.Errorf("created=%v err=%v", c, err))
					return
				}
				mu.Lock()
				createdOther++
				mu.Unlock()
			})
			wg.Go(func() { // n inserts, each followed by its finish
				<-start
				id := fmt.Sprintf("chain-%d", i)
				if err := s.RecordInteraction(ctx, interaction(id)); err != nil {
					fail("insert", err)
					return
				}
				if err := s.FinishInteraction(ctx, store.Interaction{Platform: "slack", ID: id, Outcome: "ok"}); err != nil {
					fail("finish after its insert", err)
					return
				}
				mu.Lock()
				chained++
				mu.Unlock()
			})
			wg.Go(func() { // n finishes of nothing
				<-start
				err := s.FinishInteraction(ctx, store.Interaction{Platform: "slack", ID: fmt.Sprintf("ghost-%d", i), Outcome: "ok"})
				if !errors.Is(err, store.ErrNotFound) {
					fail("finish of nothing", err)
					return
				}
				mu.Lock()
				notFound++
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		if len(unexpected) > 0 {
			t.Fatalf("unexpected results: %v", unexpected)
		}
		if newDup != 1 || dups != n-1 {
			t.Errorf("deliveries of one id: %d new, %d duplicates; want 1 and %d", newDup, dups, n-1)
		}
		if created != 1 {
			t.Errorf("registrations of one student: %d created, want 1", created)
		}
		if createdOther != n || chained != n || notFound != n {
			t.Errorf("new students %d, finished chains %d, finishes of nothing %d; want %d each", createdOther, chained, notFound, n)
		}
		if c, err := s.CountRegistrations(ctx); err != nil || c != n+1 {
			t.Errorf("count = %d, %v; want %d", c, err, n+1)
		}
		for i := range n {
			got, err := s.GetInteraction(ctx, "slack", fmt.Sprintf("chain-%d", i))
			if err != nil || got.Outcome != "ok" {
				t.Errorf("chain-%d = %+v, %v; want finished", i, got, err)
			}
		}
	})
}

// PurgeInteractions deletes the rows received before the cutoff, more than
// one chunk of them, and keeps the rest (a row received exactly at the
// cutoff included).
func TestPurgeInteractions(t *testing.T) {
	eachStore(t, func(t *testing.T, s contract) {
		ctx := t.Context()
		cutoff := time.Date(2026, 10, 26, 0, 0, 0, 0, time.UTC)
		const old, young = store.PurgeChunkRows*2 + 500, 10
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(64)
		for i := range old + young {
			g.Go(func() error {
				in := interaction(fmt.Sprintf("p-%d", i))
				in.ReceivedAt = cutoff.Add(-time.Duration(old-i) * time.Minute) // i < old: before the cutoff
				return s.RecordInteraction(gctx, in)
			})
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		n, err := s.PurgeInteractions(ctx, cutoff)
		if err != nil || n != old {
			t.Fatalf("purge = %d, %v; want %d", n, err, old)
		}
		if n, err := s.PurgeInteractions(ctx, cutoff); err != nil || n != 0 {
			t.Errorf("second purge = %d, %v; want 0", n, err)
		}
		for _, i := range []int{0, old - 1} {
			if _, err := s.GetInteraction(ctx, "slack", fmt.Sprintf("p-%d", i)); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("old row p-%d: %v, want ErrNotFound", i, err)
			}
		}
		for i := old; i < old+young; i++ {
			if _, err := s.GetInteraction(ctx, "slack", fmt.Sprintf("p-%d", i)); err != nil {
				t.Errorf("young row p-%d: %v", i, err)
			}
		}
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.PurgeInteractions(cancelled, cutoff.Add(time.Hour)); !errors.Is(err, context.Canceled) {
			t.Errorf("purge with a cancelled context: %v, want context.Canceled", err)
		}
	})
}

func TestLedgerFinishSetsOnlyWhatIsGiven(t *testing.T) {
	eachStore(t, func(t *testing.T, s contract) {
		ctx := t.Context()
		in := interaction("trig-2")
		if err := s.RecordInteraction(ctx, in); err != nil {
			t.Fatal(err)
		}
		t0 := in.ReceivedAt
		ack, stored, done, replied := t0.Add(time.Millisecond), t0.Add(time.Second), t0.Add(2*time.Second), t0.Add(3*time.Second)
		steps := []store.Interaction{
			{Platform: "slack", ID: "trig-2", AcknowledgedAt: ack},
			{Platform: "slack", ID: "trig-2", StoredAt: stored},
			{Platform: "slack", ID: "trig-2", AgentDoneAt: done, RepliedAt: replied, Outcome: "ok"},
			{Platform: "slack", ID: "trig-2"}, // sets nothing, clears nothing
		}
		for _, st := range steps {
			if err := s.FinishInteraction(ctx, st); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.GetInteraction(ctx, "slack", "trig-2")
		if err != nil {
			t.Fatal(err)
		}
		for name, pair := range map[string][2]time.Time{
			"received": {got.ReceivedAt, t0}, "acknowledged": {got.AcknowledgedAt, ack},
			"stored": {got.StoredAt, stored}, "agent done": {got.AgentDoneAt, done}, "replied": {got.RepliedAt, replied},
		} {
			if !pair[0].Equal(pair[1]) {
				t.Errorf("%s at %v, want %v", name, pair[0], pair[1])
			}
		}
		if got.Outcome != "ok" || got.Mode != "async" || got.User != "U1" || got.Channel != "C1" || got.Workspace != "T1" {
			t.Errorf("row %+v", got)
		}
	})
}

func TestLedgerFinishUnknownAndGetUnknown(t *testing.T) {
	eachStore(t, func(t *testing.T, s contract) {
		ctx := t.Context()
		if err := s.FinishInteraction(ctx, store.Interaction{Platform: "slack", ID: "nope", Outcome: "ok"}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("finish unknown: %v, want ErrNotFound", err)
		}
		if _, err := s.GetInteraction(ctx, "slack", "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("get unknown: %v, want ErrNotFound", err)
		}
	})
}

func TestLedgerRefusesAnEmptyID(t *testing.T) {
	eachStore(t, func(t *testing.T, s contract) {
		if err := s.RecordInteraction(t.Context(), interaction("")); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("err = %v, want ErrInvalid", err)
		}
	})
}

func TestStoresHonourCancelledContexts(t *testing.T) {
	eachStore(t, func(t *testing.T, s contract) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := s.UpsertRegistration(ctx, ada()); err == nil {
			t.Error("UpsertRegistration with a cancelled context succeeded")
		}
		if n, err := s.CountRegistrations(t.Context()); err != nil || n != 0 {
			t.Errorf("count after a cancelled write = %d, %v; want 0", n, err)
		}
	})
}

// The schema's CHECK constraints hold even for a writer that skips the
// Go-side checks: PostgreSQL itself refuses the row with check_violation
// (SQLSTATE 23514) naming the constraint, not some unrelated error.
func TestSchemaChecksHold(t *testing.T) {
	const checkViolation = "23514"
	pg := openPostgres(t)
	for _, tc := range []struct {
		name, sql  string
		args       []any
		constraint string
	}{
		{"a 101-character name",
			`INSERT INTO registrations (platform, workspace, user_id, name, email) VALUES ('slack','T1','U9',$1,'x@y.z')`,
			[]any{strings.Repeat("n", 101)}, "registrations_name_check"},
		{"an upper-case email",
			`INSERT INTO registrations (platform, workspace, user_id, name, email) VALUES ('slack','T1','U9','Ann','Ann@Y.Z')`,
			nil, "registrations_email_check"},
		{"an empty interaction id",
			`INSERT INTO interactions (platform, id, command, mode, received_at) VALUES ('slack','','register','async',now())`,
			nil, "interactions_id_check"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pg.Pool().Exec(t.Context(), tc.sql, tc.args...)
			var pe *pgconn.PgError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a PostgreSQL error", err)
			}
			if pe.Code != checkViolation || pe.ConstraintName != tc.constraint {
				t.Errorf("SQLSTATE %s constraint %q, want %s (check_violation) on %q",
					pe.Code, pe.ConstraintName, checkViolation, tc.constraint)
			}
		})
	}
}

func TestMigrateIsIdempotentAndSafeConcurrently(t *testing.T) {
	ctx := t.Context()
	// A database of its own, so the first migration really happens here.
	dbURL, drop, err := pgtest.Create(ctx, pgtest.Server(), "classbot_migrate_test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Log(err)
		}
	})
	const n = 4
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		applied int
		errs    []error
	)
	for range n {
		wg.Go(func() {
			pg, err := store.Open(ctx, dbURL)
			if err == nil {
				defer pg.Close()
				var a int
				_, a, err = store.MigrateVersion(ctx, pg.Pool())
				mu.Lock()
				applied += a
				mu.Unlock()
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("concurrent migrations: %v", errs)
	}
	pg, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	version, again, err := store.MigrateVersion(ctx, pg.Pool())
	if err != nil {
		t.Fatal(err)
	}
	if again != 0 || version < 1 {
		t.Errorf("migrating an up-to-date database applied %d, version %d; want 0 and >= 1", again, version)
	}
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if applied != len(files) {
		t.Errorf("%d processes together applied %d migrations, want each of the %d exactly once", n, applied, len(files))
	}
}

func TestOpenFailsClearlyWithoutThePassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err := store.Open(ctx, "postgres://classbot:s3cret-pw@127.0.0.1:1/nodb?sslmode=disable&connect_timeout=2")
	if err == nil {
		t.Fatal("Open succeeded against a closed port")
	}
	if strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("error shows the password: %v", err)
	}
	if !strings.Contains(err.Error(), "cannot reach PostgreSQL") {
		t.Errorf("error %q does not say what is wrong", err)
	}
	if _, err := store.Open(ctx, "postgres://u:s3cret-pw@[::1"); err == nil || strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("bad URL: err = %v, want an error without the password", err)
	}
}

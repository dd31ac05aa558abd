package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/classbot/classbot/internal/pgtest"
	"github.com/classbot/classbot/store"
)

// privacyStore is what /whoami and /forget need of both stores.
type privacyStore interface {
	UpsertRegistration(ctx context.Context, r store.Registration) (bool, error)
	RecordInteraction(ctx context.Context, in store.Interaction) error
	AddAskTurn(ctx context.Context, t store.AskTurn) error
	StudentData(ctx context.Context, s store.Student, limit int) (store.StudentData, error)
	Forget(ctx context.Context, s store.Student) (store.ForgetReport, error)
}

func privacyStores(t *testing.T) map[string]privacyStore {
	t.Helper()
	pg := openPostgres(t)
	if _, err := pg.Pool().Exec(t.Context(), "TRUNCATE ask_memory"); err != nil {
		t.Fatal(err)
	}
	return map[string]privacyStore{"postgres": pg, "memory": store.NewMemory()}
}

// cmdID is the ledger id of user's i-th command: like a platform's, it
// does not contain the user id.
func cmdID(user string, i int) string {
	return fmt.Sprintf("cmd-%x-%d", len(user)*7919+int(user[len(user)-1]), i)
}

// student puts one student in a class: a registration, two ledger rows,
// two remembered questions.
func student(t *testing.T, s privacyStore, user, name string) {
	t.Helper()
	ctx := t.Context()
	for i := range 2 {
		in := store.Interaction{Platform: "slack", ID: cmdID(user, i), Command: "ask", Mode: "async",
			Workspace: "T1", Channel: "C1", User: user}
		if err := s.RecordInteraction(ctx, in); err != nil {
			t.Fatal(err)
		}
		turn := store.AskTurn{AskKey: store.AskKey{Platform: "slack", Workspace: "T1", Channel: "C1", User: user},
			Question: fmt.Sprintf("question %d of %s about recursion", i, name), Answer: "an answer for " + name, Via: in.ID}
		if err := s.AddAskTurn(ctx, turn); err != nil {
			t.Fatal(err)
		}
	}
	reg := store.Registration{Platform: "slack", Workspace: "T1", User: user, Channel: "C1",
		Name: name, Email: strings.ToLower(name) + "@school.example", Via: cmdID(user, 0)}
	if _, err := s.UpsertRegistration(ctx, reg); err != nil {
		t.Fatal(err)
	}
}

func TestForgetDeletesTheStudentAndNoOneElse(t *testing.T) {
	for name, s := range privacyStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			student(t, s, "U_ADA", "Ada")
			student(t, s, "U_BOB", "Bob")
			ada := store.Student{Platform: "slack", Workspace: "T1", User: "U_ADA"}
			before, err := s.StudentData(ctx, ada, 1)
			if err != nil {
				t.Fatal(err)
			}
			if before.Registration == nil || before.Registration.Email != "ada@school.example" ||
				before.AskTurns != 2 || len(before.Questions) != 1 || before.Interactions != 2 ||
				!strings.Contains(before.Questions[0].Question, "question 1 of Ada") {
				t.Fatalf("before forgetting: %+v", before)
			}
			rep, err := s.Forget(ctx, ada)
			if err != nil {
				t.Fatal(err)
			}
			if want := (store.ForgetReport{Registrations: 1, AskTurns: 2, Interactions: 2}); rep != want {
				t.Errorf("report %+v, want %+v", rep, want)
			}
			after, err := s.StudentData(ctx, ada, 10)
			if err != nil {
				t.Fatal(err)
			}
			if after.Registration != nil || after.AskTurns != 0 || len(after.Questions) != 0 || after.Interactions != 0 {
				t.Errorf("after forgetting: %+v", after)
			}
			bob, err := s.StudentData(ctx, store.Student{Platform: "slack", Workspace: "T1", User: "U_BOB"}, 10)
			if err != nil {
				t.Fatal(err)
			}
			if bob.Registration == nil || bob.AskTurns != 2 || bob.Interactions != 2 {
				t.Errorf("the other student was touched: %+v", bob)
			}
			if pg, ok := s.(*store.Postgres); ok {
				if traces := Traces(t, pg.Pool(), "U_ADA", "Ada", "ada@school.example", "of Ada about"); len(traces) > 0 {
					t.Errorf("left behind: %v", traces)
				}
			}
		})
	}
}

// A write tied to a command that arrived before /forget, landing after it,
// is not made.
func TestForgetRefusesALaterWriteOfAnEarlierCommand(t *testing.T) {
	for name, s := range privacyStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			student(t, s, "U_ADA", "Ada")
			ada := store.Student{Platform: "slack", Workspace: "T1", User: "U_ADA"}
			if _, err := s.Forget(ctx, ada); err != nil {
				t.Fatal(err)
			}
			_, err := s.UpsertRegistration(ctx, store.Registration{Platform: "slack", Workspace: "T1", User: "U_ADA",
				Name: "Ada", Email: "ada@school.example", Via: cmdID("U_ADA", 1)})
			if !errors.Is(err, store.ErrForgotten) {
				t.Errorf("late registration: %v, want ErrForgotten", err)
			}
			if err := s.AddAskTurn(ctx, store.AskTurn{AskKey: store.AskKey{Platform: "slack", Workspace: "T1", Channel: "C1", User: "U_ADA"},
				Question: "late question", Answer: "late answer", Via: cmdID("U_ADA", 1)}); err != nil {
				t.Errorf("late turn: %v", err)
			}
			d, err := s.StudentData(ctx, ada, 10)
			if err != nil {
				t.Fatal(err)
			}
			if d.Registration != nil || d.AskTurns != 0 {
				t.Errorf("a late write landed: %+v", d)
			}
			// A new command after /forget is theirs again: registering anew works.
			if err := s.RecordInteraction(ctx, store.Interaction{Platform: "slack", ID: "new", Command: "register",
				Mode: "async", Workspace: "T1", User: "U_ADA"}); err != nil {
				t.Fatal(err)
			}
			if created, err := s.UpsertRegistration(ctx, store.Registration{Platform: "slack", Workspace: "T1", User: "U_ADA",
				Name: "Ada", Email: "ada@school.example", Via: "new"}); err != nil || !created {
				t.Errorf("registering again after forgetting: %v, %v", created, err)
			}
		})
	}
}

// Writes racing Forget either land before it (and are deleted) or are
// refused: never left behind. Each round races a registration and a
// remembered turn of a command with the student's Forget.
func TestForgetRacingWritesLeaveNothing(t *testing.T) {
	pg := openPostgres(t)
	ctx := t.Context()
	for round := range 150 {
		user := fmt.Sprintf("U_RACE_%d", round)
		via := fmt.Sprintf("race-%d", round)
		if err := pg.RecordInteraction(ctx, store.Interaction{Platform: "slack", ID: via, Command: "register",
			Mode: "async", Workspace: "T1", User: user}); err != nil {
			t.Fatal(err)
		}
		var (
			wg     sync.WaitGroup
			regErr error
		)
		wg.Add(3)
		go func() {
			defer wg.Done()
			_, regErr = pg.UpsertRegistration(ctx, store.Registration{Platform: "slack", Workspace: "T1", User: user,
				Name: "Racer", Email: "racer@school.example", Via: via})
		}()
		go func() {
			defer wg.Done()
			if err := pg.AddAskTurn(ctx, store.AskTurn{AskKey: store.AskKey{Platform: "slack", Workspace: "T1", Channel: "C1", User: user},
				Question: "q", Answer: "a", Via: via}); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := pg.Forget(ctx, store.Student{Platform: "slack", Workspace: "T1", User: user}); err != nil {
				t.Error(err)
			}
		}()
		wg.Wait()
		if regErr != nil && !errors.Is(regErr, store.ErrForgotten) {
			t.Fatal(regErr)
		}
		if traces := Traces(t, pg.Pool(), user); len(traces) > 0 {
			t.Fatalf("round %d left behind: %v", round, traces)
		}
	}
}

func TestStudentDataIsTheStudentsOnly(t *testing.T) {
	for name, s := range privacyStores(t) {
		t.Run(name, func(t *testing.T) {
			student(t, s, "U_ADA", "Ada")
			d, err := s.StudentData(t.Context(), store.Student{Platform: "slack", Workspace: "T2", User: "U_ADA"}, 5)
			if err != nil {
				t.Fatal(err)
			}
			if d.Registration != nil || d.AskTurns != 0 || d.Interactions != 0 {
				t.Errorf("another workspace's data: %+v", d)
			}
		})
	}
}

// Traces fails t on an error of pgtest.Traces and returns what it found.
func Traces(t *testing.T, pool *pgxpool.Pool, needles ...string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	found, err := pgtest.Traces(ctx, pool, needles...)
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// A write that holds one of the student's ledger rows and then needs
// another that Forget has locked (a writer batch with a guarded
// registration and a ledger finish) is not aborted as a deadlock, and
// Forget still succeeds: it gives way and tries again.
func TestForgetGivesWayToAWriteHoldingTheStudentsRows(t *testing.T) {
	pg := openPostgres(t)
	ctx := t.Context()
	for _, id := range []string{"gw-first", "gw-second"} {
		if err := pg.RecordInteraction(ctx, store.Interaction{Platform: "slack", ID: id, Command: "ask", Mode: "async",
			Workspace: "T1", User: "U_GW"}); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := pg.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, `SELECT 1 FROM interactions WHERE platform = 'slack' AND id = 'gw-second' FOR SHARE`); err != nil {
		t.Fatal(err)
	}
	type result struct {
		rep store.ForgetReport
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := pg.Forget(ctx, store.Student{Platform: "slack", Workspace: "T1", User: "U_GW"})
		done <- result{rep, err}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		if err := pg.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Forget never waited for the held row")
		}
		time.Sleep(5 * time.Millisecond) // polling the server, with a deadline
	}
	// The other half of the cycle: the row Forget locked first.
	if _, err := tx.Exec(ctx, `UPDATE interactions SET outcome = 'ok' WHERE platform = 'slack' AND id = 'gw-first'`); err != nil {
		t.Fatalf("the write was aborted: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.rep.Interactions != 2 {
		t.Fatalf("Forget: %+v, %v", r.rep, r.err)
	}
}

// In one grouped batch, each guarded registration gets its own result:
// created while its command's ledger row is the student's, ErrForgotten
// once the student was forgotten, and unguarded ones as before.
func TestGuardedRegistrationsInOneBatch(t *testing.T) {
	pg := openPostgres(t)
	ctx := t.Context()
	for id, u := range map[string]string{"reg-1": "U_KEEP", "reg-2": "U_GONE"} {
		if err := pg.RecordInteraction(ctx, store.Interaction{Platform: "slack", ID: id, Command: "register",
			Mode: "async", Workspace: "T1", User: u}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pg.Forget(ctx, store.Student{Platform: "slack", Workspace: "T1", User: "U_GONE"}); err != nil {
		t.Fatal(err)
	}
	before := store.GroupedBatches(pg)
	release := plugWriter(t, pg)
	upsert := func(user, via string) func() upsertResult {
		return func() upsertResult {
			c, err := pg.UpsertRegistration(ctx, store.Registration{Platform: "slack", Workspace: "T1", User: user,
				Name: "Student " + user, Email: strings.ToLower(user) + "@school.example", Via: via})
			return upsertResult{c, err}
		}
	}
	keep := queued(t, pg, 1, upsert("U_KEEP", "reg-1"))
	gone := queued(t, pg, 2, upsert("U_GONE", "reg-2"))
	free := queued(t, pg, 3, upsert("U_FREE", ""))
	release()
	if r := <-keep; r.err != nil || !r.created {
		t.Errorf("guarded registration of a student: %+v", r)
	}
	if r := <-gone; !errors.Is(r.err, store.ErrForgotten) {
		t.Errorf("guarded registration of a forgotten student: %+v, want ErrForgotten", r)
	}
	if r := <-free; r.err != nil || !r.created {
		t.Errorf("unguarded registration: %+v", r)
	}
	if store.GroupedBatches(pg) == before {
		t.Error("the three registrations were not one grouped batch")
	}
	if found := Traces(t, pg.Pool(), "U_GONE"); len(found) > 0 {
		t.Errorf("left behind: %v", found)
	}
}

package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ForgottenUser is the user id a forgotten student's ledger rows keep: a
// constant, the same for everyone, so the row still recognises a
// redelivery of its command (the ledger's dedupe) and counts in the
// figures, but says nothing about whose it was. The ledger row of a
// confirmed /forget is written with it from the start.
const ForgottenUser = "forgotten"

// ErrForgotten is returned by a write tied to a command (Registration.Via)
// whose ledger row is no longer the student's: they asked to be forgotten
// after the command arrived, and the write was not made.
var ErrForgotten = errors.New("the student asked to be forgotten")

// Student names one student in one class: their rows in every table.
type Student struct {
	Platform  string
	Workspace string // Slack team id, Discord guild id
	User      string
}

// StudentData is everything the store holds about one student in one class.
type StudentData struct {
	Registration *Registration // nil: not registered
	AskTurns     int           // remembered /ask turns, in every channel
	Questions    []AskTurn     // the newest remembered turns (Question, Channel, At), newest first
	Interactions int           // ledger rows (commands typed) still kept
}

// ForgetReport counts what Forget deleted or anonymised.
type ForgetReport struct {
	Registrations int64 // registrations deleted (0 or 1)
	AskTurns      int64 // remembered /ask turns deleted
	Interactions  int64 // ledger rows whose user id became ForgottenUser (and whose job input and outbox were cleared)
	Jobs          int64 // queued jobs deleted (JobHooks.Forget)
}

// StudentData returns what the store holds about s, with at most limit
// remembered questions. Safe for concurrent use.
func (p *Postgres) StudentData(ctx context.Context, s Student, limit int) (StudentData, error) {
	var d StudentData
	r, err := p.GetRegistration(ctx, s.Platform, s.Workspace, s.User)
	switch {
	case err == nil:
		d.Registration = &r
	case !errors.Is(err, ErrNotFound):
		return StudentData{}, err
	}
	const counts = `
SELECT (SELECT count(*) FROM ask_memory WHERE platform = $1 AND workspace = $2 AND user_id = $3),
       (SELECT count(*) FROM interactions WHERE platform = $1 AND workspace = $2 AND user_id = $3)`
	if err := p.pool.QueryRow(ctx, counts, s.Platform, s.Workspace, s.User).Scan(&d.AskTurns, &d.Interactions); err != nil {
		return StudentData{}, pgErr("counting a student's rows", err)
	}
	if limit <= 0 || d.AskTurns == 0 {
		return d, nil
	}
	rows, err := p.pool.Query(ctx, `
SELECT channel, question, created_at FROM ask_memory
WHERE platform = $1 AND workspace = $2 AND user_id = $3
ORDER BY created_at DESC, id DESC LIMIT $4`, s.Platform, s.Workspace, s.User, limit)
	if err != nil {
		return StudentData{}, pgErr("reading a student's questions", err)
	}
	t := AskTurn{AskKey: AskKey{Platform: s.Platform, Workspace: s.Workspace, User: s.User}}
	_, err = pgx.ForEachRow(rows, []any{&t.Channel, &t.Question, &t.At}, func() error {
		d.Questions = append(d.Questions, t)
		return nil
	})
	if err != nil {
		return StudentData{}, pgErr("reading a student's questions", err)
	}
	return d, nil
}

// Forget deletes s's registration and remembered /ask turns, and turns
// s's ledger rows into ForgottenUser's, clearing what queued commands kept
// there (job input, outbox, posts), in one transaction; the jobs of those
// commands not yet running are deleted in it too (JobHooks.Forget). A
// queued job already running finds its input gone and ends without
// answering.
//
// Writes that race with it lose: Forget first waits until every write
// submitted to the store's writers before it has committed (so no ledger
// row of s's lands afterwards), and a registration or remembered turn tied
// to a command (Via) is written only if that command's ledger row is
// still s's, a check that locks the row: either the write commits first
// and Forget deletes it, or Forget commits first and the write is not
// made (ErrForgotten, or nothing for a turn). Safe for concurrent use.
func (p *Postgres) Forget(ctx context.Context, s Student) (ForgetReport, error) {
	if s.Platform == "" || s.User == "" || s.User == ForgottenUser {
		return ForgetReport{}, fmt.Errorf("%w: a student to forget needs a platform and a user", ErrInvalid)
	}
	for _, w := range []*writer{p.enq, p.w} {
		// A finish of no row, behind every write submitted before it.
		res := w.submit(ctx, &write{kind: writeFinish, in: Interaction{Platform: s.Platform}})
		if res.err != nil && !errors.Is(res.err, ErrNotFound) {
			return ForgetReport{}, fmt.Errorf("store: waiting for earlier writes: %w", res.err)
		}
	}
	for {
		rep, err := p.forget(ctx, s)
		if err == nil || !lockConflict(err) || ctx.Err() != nil {
			if err != nil {
				return ForgetReport{}, pgErr("forgetting a student", err)
			}
			return rep, nil
		}
		// It gave way to a write holding one of the student's rows and
		// waiting for another that Forget held: that write has it now.
	}
}

// forgetLockTimeout bounds Forget's wait for one row lock. It is below
// PostgreSQL's deadlock_timeout (1 s by default), so that when a batch of
// the writer holds one of the student's ledger rows (a guarded write) and
// waits for another that Forget has locked, Forget gives way before a
// deadlock is declared, and the batch, which carries other students'
// writes, is never the one aborted.
const forgetLockTimeout = "300ms"

// lockConflict reports whether err is PostgreSQL giving up a lock wait:
// lock_timeout (55P03) or a deadlock (40P01).
func lockConflict(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "55P03" || pe.Code == "40P01")
}

// forget is one attempt of Forget's transaction.
func (p *Postgres) forget(ctx context.Context, s Student) (ForgetReport, error) {
	var rep ForgetReport
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '"+forgetLockTimeout+"'"); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
UPDATE interactions SET user_id = '`+ForgottenUser+`', job_input = NULL, outbox = NULL, posted = NULL
WHERE platform = $1 AND workspace = $2 AND user_id = $3
RETURNING id`, s.Platform, s.Workspace, s.User)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		rep.Interactions = int64(len(ids))
		tag, err := tx.Exec(ctx, `DELETE FROM ask_memory WHERE platform = $1 AND workspace = $2 AND user_id = $3`,
			s.Platform, s.Workspace, s.User)
		if err != nil {
			return err
		}
		rep.AskTurns = tag.RowsAffected()
		tag, err = tx.Exec(ctx, `DELETE FROM registrations WHERE platform = $1 AND workspace = $2 AND user_id = $3`,
			s.Platform, s.Workspace, s.User)
		if err != nil {
			return err
		}
		rep.Registrations = tag.RowsAffected()
		if h := p.w.hooks.Load(); h != nil && h.Forget != nil && len(ids) > 0 {
			if rep.Jobs, err = h.Forget(ctx, tx, s.Platform, ids); err != nil {
				return fmt.Errorf("deleting queued jobs: %w", err)
			}
		}
		return nil
	})
	return rep, err
}

// StudentData returns what the store holds about s, with at most limit
// remembered questions.
func (m *Memory) StudentData(ctx context.Context, s Student, limit int) (StudentData, error) {
	if err := ctx.Err(); err != nil {
		return StudentData{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var d StudentData
	if r, ok := m.registrations[regKey{s.Platform, s.Workspace, s.User}]; ok {
		d.Registration = &r
	}
	for i := len(m.asks) - 1; i >= 0; i-- {
		t := m.asks[i]
		if t.Platform == s.Platform && t.Workspace == s.Workspace && t.User == s.User {
			d.AskTurns++
			if len(d.Questions) < limit {
				d.Questions = append(d.Questions, AskTurn{AskKey: t.AskKey, Question: t.Question, At: t.At})
			}
		}
	}
	for _, in := range m.interactions {
		if in.Platform == s.Platform && in.Workspace == s.Workspace && in.User == s.User {
			d.Interactions++
		}
	}
	return d, nil
}

// Forget deletes s's registration and remembered turns and turns s's
// ledger rows into ForgottenUser's, at once; a registration or turn tied
// to a command (Via) whose ledger row is no longer s's is not written
// afterwards (see Postgres.Forget).
func (m *Memory) Forget(ctx context.Context, s Student) (ForgetReport, error) {
	if err := ctx.Err(); err != nil {
		return ForgetReport{}, err
	}
	if s.Platform == "" || s.User == "" || s.User == ForgottenUser {
		return ForgetReport{}, fmt.Errorf("%w: a student to forget needs a platform and a user", ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var rep ForgetReport
	k := regKey{s.Platform, s.Workspace, s.User}
	if _, ok := m.registrations[k]; ok {
		delete(m.registrations, k)
		rep.Registrations = 1
	}
	kept := m.asks[:0]
	for _, t := range m.asks {
		if t.Platform == s.Platform && t.Workspace == s.Workspace && t.User == s.User {
			rep.AskTurns++
			continue
		}
		kept = append(kept, t)
	}
	clear(m.asks[len(kept):])
	m.asks = kept
	for lk, in := range m.interactions {
		if in.Platform == s.Platform && in.Workspace == s.Workspace && in.User == s.User {
			in.User = ForgottenUser
			m.interactions[lk] = in
			rep.Interactions++
		}
	}
	return rep, nil
}

// stillTheirs reports whether the ledger row (platform, via) is user's,
// or there is none (via is empty: a write tied to no command; or the
// command's ledger insert failed). The caller holds m.mu.
func (m *Memory) stillTheirs(platform, via, user string) bool {
	in, ok := m.interactions[ledgerKey{platform, via}]
	return !ok || in.User == user
}

// viaStillTheirs is the check that a registration's command (Via, $7) is
// still the student's ($1 platform, $3 user), in upsertRegistrationViaSQL:
// its ledger row, if there is one, still holds their user id. It locks
// that row until the write commits, so Forget, which updates the row
// first, orders itself wholly before or after the write. A command with
// no ledger row (its insert failed) is not refused.
const viaStillTheirs = `SELECT 1 WHERE COALESCE(
    (SELECT i.user_id FROM interactions i WHERE i.platform = $1::text AND i.id = $7::text FOR SHARE), $3::text) = $3::text`

// viaStillTheirsGrouped is viaStillTheirs over the unnest rows u.
const viaStillTheirsGrouped = `SELECT 1 WHERE COALESCE(
    (SELECT i.user_id FROM interactions i WHERE i.platform = u.platform AND i.id = u.via FOR SHARE), u.user_id) = u.user_id`

// askTurnSQL inserts a remembered turn if its command (Via, $8) is still
// the student's ($4; see viaStillTheirs).
const askTurnSQL = `
INSERT INTO ask_memory (platform, workspace, channel, user_id, question, answer, created_at, via)
SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::timestamptz, NULLIF($8::text, '')
WHERE $8::text = '' OR COALESCE(
    (SELECT i.user_id FROM interactions i WHERE i.platform = $1::text AND i.id = $8::text FOR SHARE), $4::text) = $4::text`

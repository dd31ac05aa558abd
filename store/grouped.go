package store

import (
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// The grouped form of a batch: one multi-row statement per kind of write
// (unnest over arrays of the rows' values), so a batch of hundreds of writes
// is at most three statements for PostgreSQL to plan and run, instead of
// one each. It is used when no key occurs twice in the batch: then the
// writes do not see each other, and running all ledger inserts, then all
// upserts, then all ledger finishes gives each caller the result it would
// have had in arrival order. A batch with a repeated key (the same student
// twice, an insert and its finish) runs statement by statement instead.

const (
	recordInteractionsSQL = `
INSERT INTO interactions (platform, id, command, mode, workspace, channel, user_id,
    received_at, acknowledged_at, stored_at, agent_done_at, replied_at, outcome, job_input)
SELECT u.platform, u.id, u.command, u.mode, u.workspace, u.channel, u.user_id,
    u.received_at, u.acknowledged_at, u.stored_at, u.agent_done_at, u.replied_at, u.outcome, u.job_input::jsonb
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
    $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[], $13::text[], $14::text[])
    AS u(platform, id, command, mode, workspace, channel, user_id,
        received_at, acknowledged_at, stored_at, agent_done_at, replied_at, outcome, job_input)
ON CONFLICT (platform, id) DO UPDATE SET
    command = EXCLUDED.command, mode = EXCLUDED.mode, workspace = EXCLUDED.workspace,
    channel = EXCLUDED.channel, user_id = EXCLUDED.user_id, received_at = EXCLUDED.received_at,
    acknowledged_at = EXCLUDED.acknowledged_at, stored_at = EXCLUDED.stored_at,
    agent_done_at = EXCLUDED.agent_done_at, replied_at = EXCLUDED.replied_at, outcome = EXCLUDED.outcome,
    job_input = EXCLUDED.job_input, outbox = NULL, posted = NULL
WHERE interactions.outcome = '` + OutcomeAckFailed + `'
RETURNING platform, id`

	upsertRegistrationsSQL = `
INSERT INTO registrations (platform, workspace, user_id, channel, name, email)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
ON CONFLICT (platform, workspace, user_id) DO UPDATE
SET channel = EXCLUDED.channel, name = EXCLUDED.name, email = EXCLUDED.email, updated_at = now()
RETURNING platform, workspace, user_id, (xmax = 0)`

	// upsertRegistrationsViaSQL is upsertRegistrationsSQL when some rows
	// are tied to their command (via, $7; see upsertRegistrationViaSQL).
	upsertRegistrationsViaSQL = `
INSERT INTO registrations (platform, workspace, user_id, channel, name, email)
SELECT u.platform, u.workspace, u.user_id, u.channel, u.name, u.email
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
    AS u(platform, workspace, user_id, channel, name, email, via)
WHERE u.via = '' OR EXISTS (` + viaStillTheirsGrouped + `)
ON CONFLICT (platform, workspace, user_id) DO UPDATE
SET channel = EXCLUDED.channel, name = EXCLUDED.name, email = EXCLUDED.email, updated_at = now()
RETURNING platform, workspace, user_id, (xmax = 0)`

	finishInteractionsSQL = `
UPDATE interactions AS i SET
    acknowledged_at = COALESCE(u.acknowledged_at, i.acknowledged_at),
    stored_at       = COALESCE(u.stored_at, i.stored_at),
    agent_done_at   = COALESCE(u.agent_done_at, i.agent_done_at),
    replied_at      = COALESCE(u.replied_at, i.replied_at),
    outcome         = COALESCE(NULLIF(u.outcome, ''), i.outcome),
    job_input       = CASE WHEN u.clear THEN NULL ELSE i.job_input END,
    outbox          = CASE WHEN u.clear THEN NULL ELSE i.outbox END,
    posted          = CASE WHEN u.clear THEN NULL ELSE i.posted END
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::timestamptz[], $6::timestamptz[], $7::text[], $8::bool[])
    AS u(platform, id, acknowledged_at, stored_at, agent_done_at, replied_at, outcome, clear)
WHERE i.platform = u.platform AND i.id = u.id
RETURNING i.platform, i.id`
)

type studentKey struct{ platform, workspace, user string }

// groupable reports whether no key occurs twice in batch.
func groupable(batch []*write) bool {
	ledger := make(map[ledgerKey]struct{}, len(batch))
	students := make(map[studentKey]struct{})
	for _, wr := range batch {
		if wr.kind == writeUpsert {
			k := studentKey{wr.reg.Platform, wr.reg.Workspace, wr.reg.User}
			if _, dup := students[k]; dup {
				return false
			}
			students[k] = struct{}{}
			continue
		}
		k := ledgerKey{wr.in.Platform, wr.in.ID}
		if _, dup := ledger[k]; dup {
			return false
		}
		ledger[k] = struct{}{}
	}
	return true
}

// addGrouped adds batch's writes to b as at most three statements whose
// callbacks set each write's result in results (same index as batch).
func addGrouped(b *pgx.Batch, batch []*write, results []writeResult) {
	var records, upserts, finishes []int // indexes into batch
	for i, wr := range batch {
		switch {
		case wr.kind.ledgerInsert():
			records = append(records, i)
		case wr.kind == writeUpsert:
			upserts = append(upserts, i)
		case wr.kind.ledgerUpdate():
			finishes = append(finishes, i)
		}
	}
	if len(records) > 0 {
		addRecords(b, batch, records, results)
	}
	if len(upserts) > 0 {
		addUpserts(b, batch, upserts, results)
	}
	if len(finishes) > 0 {
		addFinishes(b, batch, finishes, results)
	}
}

func addRecords(b *pgx.Batch, batch []*write, idx []int, results []writeResult) {
	n := len(idx)
	var (
		platform, id, command, mode, workspace, channel, user, outcome = make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		received                     = make([]time.Time, n)
		acked, stored, done, replied = make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n)
		input                        = make([]*string, n)
	)
	byKey := make(map[ledgerKey]int, n)
	for j, i := range idx {
		in := batch[i].in
		platform[j], id[j], command[j], mode[j] = in.Platform, in.ID, in.Command, in.Mode
		workspace[j], channel[j], user[j], outcome[j] = in.Workspace, in.Channel, in.User, in.Outcome
		received[j] = in.ReceivedAt
		input[j] = jsonText(batch[i].input)
		acked[j], stored[j], done[j], replied[j] = nullTime(in.AcknowledgedAt), nullTime(in.StoredAt), nullTime(in.AgentDoneAt), nullTime(in.RepliedAt)
		byKey[ledgerKey{in.Platform, in.ID}] = i
		results[i].err = ErrDuplicate // unless RETURNING names it
	}
	b.Queue(recordInteractionsSQL, platform, id, command, mode, workspace, channel, user,
		received, acked, stored, done, replied, outcome, input).
		Query(clearReturned(byKey, results))
}

func addUpserts(b *pgx.Batch, batch []*write, idx []int, results []writeResult) {
	n := len(idx)
	platform, workspace, user, channel, name, email, via := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	byKey := make(map[studentKey]int, n)
	for j, i := range idx {
		r := batch[i].reg
		platform[j], workspace[j], user[j], channel[j], name[j], email[j], via[j] = r.Platform, r.Workspace, r.User, r.Channel, r.Name, r.Email, r.Via
		byKey[studentKey{r.Platform, r.Workspace, r.User}] = i
		if r.Via != "" {
			results[i].err = ErrForgotten // until the row comes back: see upsertRegistrationsSQL
		}
	}
	q, args := upsertRegistrationsSQL, []any{platform, workspace, user, channel, name, email}
	if slices.ContainsFunc(via, func(v string) bool { return v != "" }) {
		q, args = upsertRegistrationsViaSQL, append(args, via)
	}
	b.Queue(q, args...).
		Query(func(rows pgx.Rows) error {
			var (
				k       studentKey
				created bool
			)
			_, err := pgx.ForEachRow(rows, []any{&k.platform, &k.workspace, &k.user, &created}, func() error {
				if i, ok := byKey[k]; ok {
					results[i].created, results[i].err = created, nil
				}
				return nil
			})
			return err
		})
}

func addFinishes(b *pgx.Batch, batch []*write, idx []int, results []writeResult) {
	n := len(idx)
	platform, id, outcome := make([]string, n), make([]string, n), make([]string, n)
	acked, stored, done, replied := make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n)
	clearJob := make([]bool, n)
	byKey := make(map[ledgerKey]int, n)
	for j, i := range idx {
		in := batch[i].in
		platform[j], id[j], outcome[j] = in.Platform, in.ID, in.Outcome
		clearJob[j] = batch[i].kind == writeFinishJob
		acked[j], stored[j], done[j], replied[j] = nullTime(in.AcknowledgedAt), nullTime(in.StoredAt), nullTime(in.AgentDoneAt), nullTime(in.RepliedAt)
		byKey[ledgerKey{in.Platform, in.ID}] = i
		results[i].err = ErrNotFound // unless RETURNING names it
	}
	b.Queue(finishInteractionsSQL, platform, id, acked, stored, done, replied, outcome, clearJob).
		Query(clearReturned(byKey, results))
}

// clearReturned is the callback of a statement that RETURNs the (platform,
// id) of each ledger row it wrote: those writes succeeded, so their result's
// preset error (ErrDuplicate, ErrNotFound) is cleared.
func clearReturned(byKey map[ledgerKey]int, results []writeResult) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		var k ledgerKey
		_, err := pgx.ForEachRow(rows, []any{&k.platform, &k.id}, func() error {
			if i, ok := byKey[k]; ok {
				results[i].err = nil
			}
			return nil
		})
		return err
	}
}

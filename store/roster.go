package store

import (
	"cmp"
	"context"
	"slices"
)

// RosterFilter picks registrations; an empty field matches any value.
type RosterFilter struct {
	Platform  string
	Workspace string
	Channel   string
}

func (f RosterFilter) match(r Registration) bool {
	return (f.Platform == "" || f.Platform == r.Platform) &&
		(f.Workspace == "" || f.Workspace == r.Workspace) &&
		(f.Channel == "" || f.Channel == r.Channel)
}

// rosterLess orders a roster: oldest registration first, then by key.
func rosterLess(a, b Registration) int {
	return cmp.Or(a.CreatedAt.Compare(b.CreatedAt),
		cmp.Compare(a.Platform, b.Platform), cmp.Compare(a.Workspace, b.Workspace), cmp.Compare(a.User, b.User))
}

// EachRegistration calls fn with every registration f picks, oldest
// first, streaming them from PostgreSQL (one query, rows read as they
// arrive). It stops at fn's first error and returns it.
func (p *Postgres) EachRegistration(ctx context.Context, f RosterFilter, fn func(Registration) error) error {
	const q = `
SELECT platform, workspace, user_id, channel, name, email, created_at, updated_at
FROM registrations
WHERE ($1 = '' OR platform = $1) AND ($2 = '' OR workspace = $2) AND ($3 = '' OR channel = $3)
ORDER BY created_at, platform, workspace, user_id`
	rows, err := p.pool.Query(ctx, q, f.Platform, f.Workspace, f.Channel)
	if err != nil {
		return pgErr("listing registrations", err)
	}
	defer rows.Close()
	var r Registration
	for rows.Next() {
		if err := rows.Scan(&r.Platform, &r.Workspace, &r.User, &r.Channel, &r.Name, &r.Email, &r.CreatedAt, &r.UpdatedAt); err != nil {
			return pgErr("reading a registration", err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return pgErr("listing registrations", err)
	}
	return nil
}

// EachRegistration calls fn with every registration f picks, oldest
// first, from a copy taken under the lock. It stops at fn's first error.
func (m *Memory) EachRegistration(ctx context.Context, f RosterFilter, fn func(Registration) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	var out []Registration
	for _, r := range m.registrations {
		if f.match(r) {
			out = append(out, r)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(out, rosterLess)
	for _, r := range out {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

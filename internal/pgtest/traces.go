package pgtest

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Traces returns, for every table of the database (classbot's and River's,
// in every schema but PostgreSQL's own), each row whose text holds one of
// needles, ignoring case, as "table: needle in row". It is how a test
// proves that nothing of a forgotten student is left anywhere.
func Traces(ctx context.Context, pool *pgxpool.Pool, needles ...string) ([]string, error) {
	rows, err := pool.Query(ctx, `SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables
WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	var found []string
	for _, tb := range tables {
		for _, n := range needles {
			rows, err := pool.Query(ctx, `SELECT t::text FROM `+tb+` t WHERE strpos(lower(t::text), lower($1)) > 0`, n)
			if err != nil {
				return nil, fmt.Errorf("searching %s: %w", tb, err)
			}
			hits, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return nil, fmt.Errorf("searching %s: %w", tb, err)
			}
			for _, h := range hits {
				found = append(found, fmt.Sprintf("%s: %q in %s", tb, n, h))
			}
		}
	}
	return found, nil
}

package loadtest

import (
	"context"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

type dbCounts struct{ registrations, interactions int64 }

// countRows counts classbot's registrations and interactions rows.
func countRows(ctx context.Context, dbURL string) (dbCounts, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, withoutPoolParams(dbURL))
	if err != nil {
		return dbCounts{}, err
	}
	defer conn.Close(ctx)
	var c dbCounts
	err = conn.QueryRow(ctx, "SELECT (SELECT count(*) FROM registrations), (SELECT count(*) FROM interactions)").Scan(&c.registrations, &c.interactions)
	return c, err
}

// withoutPoolParams drops pgxpool's pool_* parameters, which a single
// connection would send to the server as settings.
func withoutPoolParams(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		return dbURL
	}
	q := u.Query()
	for k := range q {
		if strings.HasPrefix(k, "pool_") {
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

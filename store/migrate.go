package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrate applies every pending schema migration. It takes a PostgreSQL
// advisory lock for the duration, so processes migrating at once apply each
// migration exactly once; a second call with nothing pending is a no-op.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := migrate(ctx, pool)
	return err
}

// MigrateVersion applies pending migrations like Migrate and returns the
// schema version afterwards and how many migrations this call applied.
func MigrateVersion(ctx context.Context, pool *pgxpool.Pool) (version int64, applied int, err error) {
	p, err := migrate(ctx, pool)
	if err != nil {
		return 0, 0, err
	}
	return p.version, p.applied, nil
}

type migrated struct {
	version int64
	applied int
}

func migrate(ctx context.Context, pool *pgxpool.Pool) (migrated, error) {
	fsys, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return migrated{}, err
	}
	// Retry the lock every second for up to five minutes: a second process
	// waits for the first one's migrations instead of failing.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return migrated{}, err
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return migrated{}, fmt.Errorf("store: migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return migrated{}, fmt.Errorf("store: migrating the database: %w", err)
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return migrated{}, fmt.Errorf("store: reading the schema version: %w", err)
	}
	return migrated{version: v, applied: len(results)}, nil
}

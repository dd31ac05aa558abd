package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"time"

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
	_, err := migrate(ctx, pool, nil)
	return err
}

// MigrateWith applies classbot's migrations like Migrate and then runs
// also (another component's migrations: River's, for queue mode), all under
// one PostgreSQL advisory lock, so processes starting at once migrate one
// after the other.
func MigrateWith(ctx context.Context, pool *pgxpool.Pool, also func(context.Context) error) (version int64, applied int, err error) {
	p, err := migrate(ctx, pool, also)
	if err != nil {
		return 0, 0, err
	}
	return p.version, p.applied, nil
}

// migrateLockKey is the advisory lock MigrateWith holds: any constant
// of classbot's own (goose's lock, taken inside it, has another key).
const migrateLockKey = 0x636c617373626f74 // "classbot"

// MigrateVersion applies pending migrations like Migrate and returns the
// schema version afterwards and how many migrations this call applied.
func MigrateVersion(ctx context.Context, pool *pgxpool.Pool) (version int64, applied int, err error) {
	return MigrateWith(ctx, pool, nil)
}

type migrated struct {
	version int64
	applied int
}

func migrate(ctx context.Context, pool *pgxpool.Pool, also func(context.Context) error) (migrated, error) {
	if also != nil {
		conn, err := pool.Acquire(ctx)
		if err != nil {
			return migrated{}, fmt.Errorf("store: migrations: %w", err)
		}
		defer conn.Release()
		if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(migrateLockKey)); err != nil {
			return migrated{}, fmt.Errorf("store: taking the migration lock: %w", err)
		}
		defer func() {
			// The session lock ends with the session if this fails.
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_, _ = conn.Exec(uctx, "SELECT pg_advisory_unlock($1)", int64(migrateLockKey))
		}()
	}
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
	if also != nil {
		if err := also(ctx); err != nil {
			return migrated{}, err
		}
	}
	return migrated{version: v, applied: len(results)}, nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/classbot/classbot/queue"
	"github.com/classbot/classbot/store"
)

func runMigrate(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "migrate", "")
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("migrate takes no arguments")
	}
	cfg, err := loadConfig(e.getenv)
	if err != nil {
		return err
	}
	if cfg.DatabaseURL == "" {
		return errors.New("DATABASE_URL is not set: there is no database to migrate")
	}
	pg, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pg.Close()
	v, applied, err := queue.Migrate(ctx, pg.Pool())
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "database is up to date: schema version %d (%d migrations applied now), and River's queue tables\n", v, applied)
	return nil
}

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

func runVersion(_ context.Context, e env, args []string) error {
	fs := newFlagSet(e, "version", "")
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	v := version
	if v == "" {
		v = "dev"
		if bi, ok := debug.ReadBuildInfo(); ok {
			if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
				v = bi.Main.Version
			}
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					v += " (" + s.Value[:12] + ")"
				}
			}
		}
	}
	fmt.Fprintln(e.stdout, "classbot", v)
	return nil
}

// openMigrated opens the PostgreSQL store of DATABASE_URL and migrates
// classbot's tables, for subcommands that only read or write the database
// (roster export, feedback). Without DATABASE_URL it says so and why the
// command needs it (why). The caller closes the store.
func openMigrated(ctx context.Context, e env, why string) (*store.Postgres, error) {
	cfg, err := loadConfig(e.getenv)
	if err != nil {
		return nil, err
	}
	if cfg.DatabaseURL == "" {
		return nil, errors.New("DATABASE_URL is not set: " + why)
	}
	pg, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if err := store.Migrate(ctx, pg.Pool()); err != nil {
		pg.Close()
		return nil, err
	}
	return pg, nil
}

// Package pgtest gives each test package a fresh PostgreSQL database.
//
// Tests run against the server in TEST_DATABASE_URL (default: the local
// server CI starts, postgres://postgres@127.0.0.1:5432/postgres). If it
// cannot be reached the tests fail, with a hint; they are never skipped, so
// a green run always means the PostgreSQL tests ran.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultServer is the server used when TEST_DATABASE_URL is not set.
const DefaultServer = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// Main is a TestMain body: it creates a database named prefix_<random>,
// stores its URL in *dbURL, runs the tests and drops the database.
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, "classbot_store_test", &testDatabaseURL)) }
func Main(m *testing.M, prefix string, dbURL *string) int {
	server := Server()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, drop, err := Create(ctx, server, prefix)
	if err != nil {
		fmt.Fprintf(os.Stderr, "PostgreSQL is not reachable at %s (%v).\n"+
			"Start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` "+
			"(or `bash .ci/run`, which does), or point TEST_DATABASE_URL at a server.\n", Redact(server), err)
		return 1
	}
	*dbURL = u
	code := m.Run()
	if err := drop(); err != nil {
		fmt.Fprintf(os.Stderr, "dropping the test database: %v\n", err)
	}
	return code
}

// Server is the PostgreSQL server tests use: TEST_DATABASE_URL, or DefaultServer.
func Server() string {
	if s := os.Getenv("TEST_DATABASE_URL"); s != "" {
		return s
	}
	return DefaultServer
}

// Create makes a database named prefix_<random> on server and returns its
// URL and a function that drops it.
func Create(ctx context.Context, server, prefix string) (string, func() error, error) {
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := prefix + "_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", nil, err
	}
	u, err := url.Parse(server)
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, server)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		_, err = c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		return err
	}
	return u.String(), drop, nil
}

// Redact hides the password in a URL.
func Redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// QueryRow runs one query against the database at dbURL and scans its row.
func QueryRow(t testing.TB, dbURL, sql string, args []any, dest ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, sql, args...).Scan(dest...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

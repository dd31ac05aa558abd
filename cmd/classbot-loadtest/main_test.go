package main

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/classbot/classbot/internal/pgtest"
)

// testDatabaseURL is a fresh PostgreSQL database for this test package,
// created by TestMain and dropped after the tests.
var testDatabaseURL string

// botBinary is classbot, built once by TestMain the way the command builds
// it; the tests pass it as --bot-binary.
var botBinary string

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "serve-bare" {
		// This test binary is the bare reference's child process: the
		// command starts its own executable with "serve-bare".
		main()
		os.Exit(0)
	}
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "classbot-loadtest-test-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if botBinary, err = buildBot(ctx, dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return pgtest.Main(m, "classbot_loadtest_test", &testDatabaseURL)
}

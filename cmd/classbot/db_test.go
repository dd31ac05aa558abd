package main

import (
	"os"
	"testing"

	"github.com/classbot/classbot/internal/pgtest"
)

// testDatabaseURL is a fresh PostgreSQL database for this test package,
// created by TestMain and dropped after the tests. Tests that need
// PostgreSQL pass it as DATABASE_URL.
var testDatabaseURL string

func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m, "classbot_cmd_test", &testDatabaseURL))
}

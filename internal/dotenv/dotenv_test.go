package dotenv_test

import (
	"os"
	"strings"
	"testing"

	"github.com/classbot/classbot/internal/dotenv"
)

// writeDotEnv makes a fresh working directory holding a .env with content.
func writeDotEnv(t *testing.T, content string) {
	t.Helper()
	t.Chdir(t.TempDir())
	if err := os.WriteFile(".env", []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func lookupOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLookup(t *testing.T) {
	writeDotEnv(t, "FROM_FILE=file\nSET_IN_BOTH=file\nEMPTIED=file\n")
	getenv, err := dotenv.Lookup(lookupOf(map[string]string{"SET_IN_BOTH": "env", "EMPTIED": "", "ONLY_ENV": "env"}))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"FROM_FILE":   "file", // unset in the environment: .env's
		"SET_IN_BOTH": "env",  // the environment wins
		"EMPTIED":     "",     // set to empty in the environment: still wins
		"ONLY_ENV":    "env",
		"NOWHERE":     "",
	} {
		if got := getenv(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

// TestGetenvCountsEmptyAsUnset: a getenv cannot say "set to empty", so
// .env's value is used; this is why run takes a lookup from main.
func TestGetenvCountsEmptyAsUnset(t *testing.T) {
	writeDotEnv(t, "EMPTIED=file\n")
	getenv, err := dotenv.Getenv(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if got := getenv("EMPTIED"); got != "file" {
		t.Errorf("EMPTIED = %q, want .env's %q", got, "file")
	}
}

func TestNoDotEnv(t *testing.T) {
	t.Chdir(t.TempDir())
	getenv, err := dotenv.Lookup(lookupOf(map[string]string{"A": "env"}))
	if err != nil {
		t.Fatal(err)
	}
	if getenv("A") != "env" || getenv("B") != "" {
		t.Errorf("A = %q, B = %q; want the environment alone", getenv("A"), getenv("B"))
	}
}

func TestBadDotEnvIsAnError(t *testing.T) {
	writeDotEnv(t, "A='unterminated\n")
	if _, err := dotenv.Lookup(lookupOf(nil)); err == nil || !strings.Contains(err.Error(), ".env") {
		t.Errorf("err = %v, want one that names .env", err)
	}
}

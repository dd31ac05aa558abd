package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/internal/dotenv"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigDefaults(t *testing.T) {
	c, err := loadConfig(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != bot.ModeAsync || c.HTTPAddr != ":8080" || c.MaxInFlight != 1000 || c.LLMMaxConcurrency != 16 ||
		c.ShutdownTimeout != 30*time.Second || c.DatabaseURL != "" ||
		c.SlackAPIURL != "https://slack.com/api/" || c.DiscordAPIURL != "https://discord.com/api/v10/" {
		t.Errorf("defaults: %+v", c)
	}
}

func TestDotEnvIsReadAndRealEnvironmentWins(t *testing.T) {
	t.Chdir(t.TempDir())
	file := "# a teacher's .env\nHANDLER_MODE=sync\nLLM_MODEL=from-file\nMAX_IN_FLIGHT=7\n"
	if err := os.WriteFile(".env", []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv, err := dotenv.Getenv(envOf(map[string]string{"LLM_MODEL": "from-env"}))
	if err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(getenv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != bot.ModeSync || c.MaxInFlight != 7 {
		t.Errorf(".env not read: mode %q, MAX_IN_FLIGHT %d", c.Mode, c.MaxInFlight)
	}
	if c.LLMModel != "from-env" {
		t.Errorf("LLM_MODEL = %q, want the real environment's value to win over .env", c.LLMModel)
	}
}

func TestDotEnvThatCannotBeParsedIsAnError(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.WriteFile(".env", []byte("HANDLER_MODE='sync\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := dotenv.Getenv(envOf(nil)); err == nil || !strings.Contains(err.Error(), ".env") {
		t.Errorf("err = %v, want one that names .env", err)
	}
}

func TestGeminiVariablesAreAliases(t *testing.T) {
	c, err := loadConfig(envOf(map[string]string{
		"GEMINI_BASE_URL": "https://generativelanguage.googleapis.com/v1beta/openai/",
		"GEMINI_API_KEY":  "gemini-key",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.LLMBaseURL != "https://generativelanguage.googleapis.com/v1beta/openai/" || c.LLMAPIKey != "gemini-key" {
		t.Errorf("GEMINI_* not used: base %q key set %v", c.LLMBaseURL, c.LLMAPIKey != "")
	}
	c, err = loadConfig(envOf(map[string]string{
		"GEMINI_API_KEY": "gemini-key", "LLM_API_KEY": "llm-key",
		"GEMINI_BASE_URL": "http://gemini.invalid/", "LLM_BASE_URL": "http://127.0.0.1:11434/v1",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.LLMAPIKey != "llm-key" || c.LLMBaseURL != "http://127.0.0.1:11434/v1" {
		t.Errorf("LLM_* must win over GEMINI_*: base %q", c.LLMBaseURL)
	}
}

func TestCourseFileIsRead(t *testing.T) {
	f := filepath.Join(t.TempDir(), "course.md")
	if err := os.WriteFile(f, []byte("Go 101. Office hours: Tuesdays."), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(envOf(map[string]string{"COURSE_FILE": f}))
	if err != nil {
		t.Fatal(err)
	}
	if c.CourseInstructions != "Go 101. Office hours: Tuesdays." {
		t.Errorf("course instructions %q", c.CourseInstructions)
	}
	if _, err := loadConfig(envOf(map[string]string{"COURSE_FILE": f + ".missing"})); err == nil || !strings.Contains(err.Error(), "COURSE_FILE") {
		t.Errorf("a missing COURSE_FILE: err = %v, want one naming COURSE_FILE", err)
	}
}

// dbURLWith returns testDatabaseURL with its database, user and password
// replaced (an empty argument keeps what is there).
func dbURLWith(t *testing.T, database, user, password string) string {
	t.Helper()
	u, err := url.Parse(testDatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	if database != "" {
		u.Path = "/" + database
	}
	if user != "" {
		u.User = url.UserPassword(user, password)
	}
	return u.String()
}

func migrateWith(t *testing.T, databaseURL string) error {
	t.Helper()
	var out, errOut lockedBuffer
	return run(t.Context(), []string{"classbot", "migrate"}, envOf(map[string]string{"DATABASE_URL": databaseURL}), strings.NewReader(""), &out, &errOut)
}

// TestMissingDatabaseSaysHowToCreateIt: migrate against a database that
// does not exist names DATABASE_URL and gives a createdb command, and that
// command, run as printed, creates it.
func TestMissingDatabaseSaysHowToCreateIt(t *testing.T) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "classbot_missing_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, testDatabaseURL)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Error(err)
		}
	})
	dbURL := dbURLWith(t, name, "", "")
	if u, _ := url.Parse(dbURL); u.User != nil {
		dbURL = dbURLWith(t, name, u.User.Username(), "s3cret-password")
	}

	err := migrateWith(t, dbURL)
	if err == nil {
		t.Fatal("migrate succeeded on a database that does not exist")
	}
	msg := err.Error()
	for _, want := range []string{"does not exist", "DATABASE_URL", "createdb ", name, "CREATE DATABASE " + name} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "s3cret-password") || strings.Contains(msg, "\n") {
		t.Errorf("error %q repeats the password or is more than one line", msg)
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "3D000" {
		t.Errorf("the original error is not in the chain: %v", err)
	}

	// The command it prints works.
	_, rest, _ := strings.Cut(msg, "`createdb ")
	args, _, ok := strings.Cut(rest, "`")
	if _, lookErr := exec.LookPath("createdb"); lookErr != nil || !ok {
		t.Skipf("createdb not on PATH (%v) or no command found in %q", lookErr, msg)
	}
	if out, err := exec.CommandContext(t.Context(), "sh", "-c", "createdb "+args).CombinedOutput(); err != nil {
		t.Fatalf("createdb %s: %v\n%s", args, err, out)
	}
	if err := migrateWith(t, dbURL); err != nil {
		t.Fatalf("migrate after running the printed createdb: %v", err)
	}
}

// TestUnreachableDatabaseSaysToStartIt: nothing listening where
// DATABASE_URL points is named, with how to start PostgreSQL.
func TestUnreachableDatabaseSaysToStartIt(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	err = migrateWith(t, "postgres://postgres@"+addr+"/classbot?sslmode=disable&connect_timeout=5")
	if err == nil {
		t.Fatal("migrate succeeded with nothing listening")
	}
	for _, want := range []string{"nothing accepts connections at " + addr, "DATABASE_URL", "start PostgreSQL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestUnknownRoleNamesDatabaseURL: a user PostgreSQL does not know is
// named, and the hint points at DATABASE_URL.
func TestUnknownRoleNamesDatabaseURL(t *testing.T) {
	err := migrateWith(t, dbURLWith(t, "", "classbot_no_such_role", ""))
	if err == nil {
		t.Fatal("migrate succeeded as a role that does not exist")
	}
	for _, want := range []string{`refused user "classbot_no_such_role"`, "DATABASE_URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestOtherErrorsAreNotRewritten(t *testing.T) {
	for _, err := range []error{nil, errors.New("something else"), fmt.Errorf("wrapped: %w", syscall.ECONNREFUSED)} {
		if got := explainDatabaseError(err); got != err {
			t.Errorf("explainDatabaseError(%v) = %v, want it unchanged", err, got)
		}
	}
}

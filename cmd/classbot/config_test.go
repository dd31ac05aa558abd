package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

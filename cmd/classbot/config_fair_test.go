package main

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/classbot/classbot/bot"
)

func TestAutoModeConfig(t *testing.T) {
	c, err := loadConfig(envOf(nil))
	if err != nil || c.AutoInlineBudget != 2*time.Second {
		t.Fatalf("default AUTO_INLINE_BUDGET = %s, %v; want 2s", c.AutoInlineBudget, err)
	}
	c, err = loadConfig(envOf(map[string]string{"HANDLER_MODE": "auto", "AUTO_INLINE_BUDGET": "1500ms"}))
	if err != nil || c.Mode != bot.ModeAuto || c.AutoInlineBudget != 1500*time.Millisecond {
		t.Fatalf("HANDLER_MODE=auto AUTO_INLINE_BUDGET=1500ms: %q %s, %v", c.Mode, c.AutoInlineBudget, err)
	}
	for _, bad := range []string{"3s", "10s", "soon", "-1s"} {
		_, err := loadConfig(envOf(map[string]string{"AUTO_INLINE_BUDGET": bad}))
		if err == nil || !strings.Contains(err.Error(), "AUTO_INLINE_BUDGET") {
			t.Errorf("AUTO_INLINE_BUDGET=%s: %v, want an error that names it", bad, err)
		}
	}
}

func TestStudentAskRateConfig(t *testing.T) {
	for _, tt := range []struct {
		env  string
		want float64
	}{{"", 5}, {"12", 12}, {"0.5", 0.5}, {"0", 0}} {
		c, err := loadConfig(envOf(map[string]string{"STUDENT_ASK_RATE": tt.env}))
		if err != nil || c.StudentAskRate != tt.want {
			t.Errorf("STUDENT_ASK_RATE=%q: %g, %v; want %g", tt.env, c.StudentAskRate, err, tt.want)
		}
	}
	for _, bad := range []string{"-1", "lots", "NaN"} {
		if _, err := loadConfig(envOf(map[string]string{"STUDENT_ASK_RATE": bad})); err == nil || !strings.Contains(err.Error(), "STUDENT_ASK_RATE") {
			t.Errorf("STUDENT_ASK_RATE=%s: %v, want an error that names it", bad, err)
		}
	}
	if offIfZero(0) >= 0 || offIfZero(5) != 5 {
		t.Error("0 must turn the bot's limit off")
	}
}

func TestClassLLMRPMConfig(t *testing.T) {
	c, err := loadConfig(envOf(nil))
	if err != nil || c.ClassLLMRPM != 0 {
		t.Fatalf("default CLASS_LLM_RPM = %g, %v; want 0", c.ClassLLMRPM, err)
	}
	c, err = loadConfig(envOf(map[string]string{"CLASS_LLM_RPM": "10"}))
	if err != nil || c.ClassLLMRPM != 10 {
		t.Fatalf("CLASS_LLM_RPM=10: %g, %v", c.ClassLLMRPM, err)
	}
	if ac := agentConfig(c, slog.New(slog.DiscardHandler), 0, nil); ac.ClassRPM != 10 {
		t.Errorf("the runner gets ClassRPM %g, want 10", ac.ClassRPM)
	}
	if _, err := loadConfig(envOf(map[string]string{"CLASS_LLM_RPM": "-3"})); err == nil || !strings.Contains(err.Error(), "CLASS_LLM_RPM") {
		t.Errorf("CLASS_LLM_RPM=-3: %v, want an error that names it", err)
	}
}

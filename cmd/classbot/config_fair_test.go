package main

import (
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

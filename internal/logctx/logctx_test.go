package logctx_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/classbot/classbot/internal/logctx"
)

func TestHandlerAddsTheInteractionOnce(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(logctx.NewHandler(slog.NewTextHandler(&buf, nil))).With("component", "agent")
	ctx := logctx.WithInteraction(context.Background(), "T-123")

	log.InfoContext(ctx, "model call done")
	log.InfoContext(ctx, "command", "interaction", "T-123")
	log.InfoContext(context.Background(), "no command")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("lines: %q", lines)
	}
	if !strings.Contains(lines[0], "interaction=T-123") || !strings.Contains(lines[0], "component=agent") {
		t.Errorf("line without the id: %s", lines[0])
	}
	if strings.Count(lines[1], "interaction=") != 1 {
		t.Errorf("id logged twice: %s", lines[1])
	}
	if strings.Contains(lines[2], "interaction=") {
		t.Errorf("id without a command: %s", lines[2])
	}
}

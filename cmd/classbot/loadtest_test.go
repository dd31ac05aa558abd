package main

import (
	"errors"
	"strings"
	"testing"
)

// The load test is cmd/classbot-loadtest (its tests live there); classbot
// loadtest only says where it went, as bad usage (exit status 2).
func TestLoadtestPointsToItsOwnCommand(t *testing.T) {
	for _, args := range [][]string{{}, {"--rate", "100"}, {"--help"}} {
		var stdout, stderr lockedBuffer
		err := run(t.Context(), append([]string{"classbot", "loadtest"}, args...), func(string) string { return "" },
			strings.NewReader(""), &stdout, &stderr)
		var ue *usageError
		if !errors.As(err, &ue) {
			t.Fatalf("classbot loadtest %v: err = %v, want a usage error (exit status 2)", args, err)
		}
		if !strings.Contains(err.Error(), "go run ./cmd/classbot-loadtest") {
			t.Errorf("classbot loadtest %v: %q does not say to run go run ./cmd/classbot-loadtest", args, err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("classbot loadtest %v: %q is more than one line", args, err)
		}
	}
}

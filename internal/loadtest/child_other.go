//go:build !linux

package loadtest

import (
	"errors"
	"os/exec"
)

// PrepareChild does nothing outside Linux.
func PrepareChild(*exec.Cmd) {}

// StartPinned needs Linux's sched_setaffinity (or taskset).
func StartPinned(*exec.Cmd, []int) error {
	return errors.New("pinning the bot to CPUs needs Linux (or taskset)")
}

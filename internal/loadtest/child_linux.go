package loadtest

import (
	"fmt"
	"os/exec"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// PrepareChild makes cmd's process get SIGTERM when this one dies, so a
// killed load test leaves no bot behind.
func PrepareChild(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
}

// StartPinned starts cmd from an OS thread pinned to cpus, so the child
// inherits that affinity (sched_setaffinity, what taskset does), and
// restores the thread's affinity afterwards.
func StartPinned(cmd *exec.Cmd, cpus []int) error {
	runtime.LockOSThread()
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	for _, c := range cpus {
		set.Set(c)
	}
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("pin to CPUs %v: %w", cpus, err)
	}
	err := cmd.Start()
	if rerr := unix.SchedSetaffinity(0, &old); rerr != nil {
		// The thread stays pinned: leave it locked so no other goroutine
		// runs on it; Go ends it when this goroutine does.
		if err == nil {
			err = fmt.Errorf("restore CPU affinity: %w", rerr)
		}
		return err
	}
	runtime.UnlockOSThread()
	return err
}

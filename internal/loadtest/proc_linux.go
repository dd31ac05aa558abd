package loadtest

import (
	"fmt"
	"time"

	"github.com/prometheus/procfs"
)

// procCPU is the CPU time (user + system) process pid has used, from
// /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	st, err := p.Stat()
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	return time.Duration(st.CPUTime() * float64(time.Second)), nil
}

// procPeakRSS is process pid's peak resident set (VmHWM in
// /proc/PID/status), in bytes.
func procPeakRSS(pid int) (int64, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	st, err := p.NewStatus()
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	if st.VmHWM == 0 {
		return 0, fmt.Errorf("process %d: no VmHWM in its status", pid)
	}
	return int64(st.VmHWM), nil
}

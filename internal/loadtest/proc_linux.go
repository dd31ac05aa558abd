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

// machineCPU is the CPU time the whole machine has been busy (every CPU's
// time minus idle and iowait, from /proc/stat) and the part of it spent by
// PostgreSQL's processes (those named "postgres"), so that a run can tell
// the CPU it and its database used from what other programs took.
func machineCPU() (busy, postgres time.Duration, err error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0, 0, err
	}
	st, err := fs.Stat()
	if err != nil {
		return 0, 0, err
	}
	t := st.CPUTotal
	sec := t.User + t.Nice + t.System + t.IRQ + t.SoftIRQ + t.Steal
	busy = time.Duration(sec * float64(time.Second))
	procs, err := fs.AllProcs()
	if err != nil {
		return busy, 0, err
	}
	for _, p := range procs {
		ps, err := p.Stat()
		if err != nil || ps.Comm != "postgres" {
			continue
		}
		postgres += time.Duration(ps.CPUTime() * float64(time.Second))
	}
	return busy, postgres, nil
}

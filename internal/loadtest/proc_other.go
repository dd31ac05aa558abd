//go:build !linux

package loadtest

import (
	"errors"
	"time"
)

var errNoProc = errors.New("CPU and memory figures need Linux's /proc")

func procCPU(int) (time.Duration, error) { return 0, errNoProc }
func procPeakRSS(int) (int64, error)     { return 0, errNoProc }

func machineCPU() (busy, postgres time.Duration, err error) { return 0, 0, errNoProc }

package main

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func TestReadinessReusesOnePingForASecond(t *testing.T) {
	var pings atomic.Int64
	fail := atomic.Bool{}
	rd := &readiness{ping: func(context.Context) error {
		pings.Add(1)
		if fail.Load() {
			return errors.New("down")
		}
		return nil
	}}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if err := rd.check(t.Context()); err != nil {
				t.Errorf("check = %v, want nil", err)
			}
		})
	}
	wg.Wait()
	if n := pings.Load(); n != 1 {
		t.Fatalf("50 concurrent checks pinged %d times, want 1", n)
	}
	// Once the result is older than readyTTL, the next check pings again
	// and reports the new state.
	fail.Store(true)
	rd.mu.Lock()
	rd.checked = rd.checked.Add(-readyTTL)
	rd.mu.Unlock()
	if err := rd.check(t.Context()); err == nil {
		t.Fatal("check after the TTL reused the old result")
	}
	if n := pings.Load(); n != 2 {
		t.Fatalf("pinged %d times, want 2", n)
	}
}

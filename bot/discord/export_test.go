package discord

import "time"

// SetRegisterBackoff shortens the delays between Run's command
// registration attempts, for tests: first, doubling up to max.
func SetRegisterBackoff(a *Adapter, first, max time.Duration) {
	a.registerBackoff, a.registerMaxBackoff = first, max
}

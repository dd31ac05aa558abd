package bot

import (
	"sync"
	"time"
)

// recentIDs remembers the interactions this process has seen lately, so a
// retried or doubled delivery is recognised in memory, before (and without)
// the database: the acknowledgement must not wait on PostgreSQL for that.
// It keeps an id for window, and at most max ids (the oldest go first).
// It is safe for concurrent use.
type recentIDs struct {
	window time.Duration
	max    int

	mu    sync.Mutex
	seen  map[recentKey]time.Time
	order []recentEntry // in arrival order; a ring would do, a slice is clear
}

type recentKey struct{ platform, id string }

type recentEntry struct {
	key recentKey
	at  time.Time
}

func newRecentIDs(window time.Duration, max int) *recentIDs {
	return &recentIDs{window: window, max: max, seen: make(map[recentKey]time.Time)}
}

// add records (platform, id) and reports whether it was new.
func (r *recentIDs) add(platform, id string, now time.Time) bool {
	k := recentKey{platform, id}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evict(now)
	if _, ok := r.seen[k]; ok {
		return false
	}
	r.seen[k] = now
	r.order = append(r.order, recentEntry{k, now})
	return true
}

// forget removes (platform, id): its delivery was never acknowledged, so a
// redelivery must be worked on.
func (r *recentIDs) forget(platform, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.seen, recentKey{platform, id})
}

// evict drops entries older than the window, and the oldest past max.
func (r *recentIDs) evict(now time.Time) {
	n := 0
	for n < len(r.order) {
		e := r.order[n]
		if now.Sub(e.at) < r.window && len(r.order)-n < r.max {
			break
		}
		// Only delete the map entry if it is this one (forget and a later
		// add may have replaced it).
		if at, ok := r.seen[e.key]; ok && at.Equal(e.at) {
			delete(r.seen, e.key)
		}
		n++
	}
	if n > 0 {
		r.order = r.order[n:]
		if cap(r.order) > 1024 && len(r.order) < cap(r.order)/4 {
			r.order = append([]recentEntry(nil), r.order...) // let the old array go
		}
	}
}

package store

// QueuedWrites is how many writes wait in p's queue (not yet taken by the
// writer), for tests that arrange writes into one batch.
func QueuedWrites(p *Postgres) int { return len(p.w.backlog) }

// WriterStopping reports whether p's Close has shut the queue, so the
// writer is flushing what is left.
func WriterStopping(p *Postgres) bool {
	select {
	case <-p.w.stop:
		return true
	default:
		return false
	}
}

// GroupedBatches is how many batches p's writer sent as multi-row
// statements (one per kind of write) rather than one statement a write.
func GroupedBatches(p *Postgres) int64 { return p.w.grouped.Load() }

// QueuedEnqueues is how many writes wait in p's acknowledgement lane.
func QueuedEnqueues(p *Postgres) int { return len(p.enq.backlog) }

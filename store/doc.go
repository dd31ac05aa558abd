// Package store keeps classbot's records: registered students and the
// interactions ledger.
//
// Postgres is the real store (pgx/v5 with pgxpool; schema migrations embedded
// in the binary and applied with goose under a PostgreSQL advisory lock, so
// two processes starting at once serialize). Memory has the same behaviour
// for running without a database; one contract test suite runs against both.
//
// Group commit: Postgres's three hot-path writes (RecordInteraction,
// FinishInteraction, UpsertRegistration) go through one writer goroutine,
// started by Open and stopped by Close, that commits the writes of
// concurrent callers together: one pipeline of statements (one multi-row
// statement per kind of write, grouped.go), one implicit transaction, one
// round trip per batch (writer.go; Config tunes it and
// reports each batch to ObserveBatchFunc). Each caller still gets its own
// result and error. PurgeInteractions keeps the ledger short in small
// chunks, beside the writer.
//
// The ledger's primary key (platform, id) is what makes a platform's retries
// and double deliveries harmless: RecordInteraction fails with ErrDuplicate
// the second time an id is seen.
//
// store imports neither bot nor agent. Emails are personal data: nothing in
// this package logs, and errors never contain a registration's fields.
package store

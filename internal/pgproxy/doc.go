// Package pgproxy is a TCP proxy on 127.0.0.1 that puts a slower or broken
// network between a client and a server, for load tests and fault tests.
// It knows nothing of PostgreSQL's protocol: it forwards bytes, so it works
// in front of any TCP server, though it was written for PostgreSQL at
// 127.0.0.1:5432.
//
// What it can do to the traffic:
//   - Options.Latency: every chunk read from one side is written to the other
//     Latency after it was read, in order, in each direction. A connection
//     keeps reading while earlier chunks wait, so throughput is not limited
//     to one chunk per Latency: the proxy behaves like a longer wire.
//   - Cut: the proxy stops listening (a client gets "connection refused")
//     and closes every connection it holds, until Restore.
//   - BlackHole: every connection stays open and new ones are accepted, but
//     no byte passes either way (a partition, a hung server), until Restore.
//     Bytes held back are delivered after Restore, as TCP would after a
//     partition heals.
//
// Every goroutine the proxy starts ends by Close (or when Start's context
// is done), and Close waits for them.
package pgproxy

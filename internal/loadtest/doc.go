// Package loadtest is classbot's load generator: it plays many students in
// many classes typing /register and /ask at once, as signed Slack slash
// commands and signed Discord HTTP interactions, against a classbot serve
// (or the bare reference handler, see BareHandler) on 127.0.0.1, and
// measures what a platform would see: the acknowledgement latency against
// the 3-second deadline, the follow-ups that arrive later and their
// end-to-end latency, throughput, and the bot process's CPU time and peak
// memory.
//
// The pieces:
//   - Config and Run: one bounded run, open loop (a fixed rate) or closed
//     loop (a fixed number of students typing back to back).
//   - Latency: the model stand-in's latency, fixed or lognormal.
//   - the stand-ins it starts itself: the model (internal/llmstub) and a
//     sink for follow-ups (Slack response_url posts, Discord webhook edits).
//   - Report: the figures, as text, JSON and a latency chart (Plot).
//
// The bot itself is started by the caller through a StartFunc. Child is the
// one the command uses: the real classbot binary (or the bare reference) as
// a child process in a private working directory, on a port picked for it,
// so its CPU time and memory can be read from /proc (through
// github.com/prometheus/procfs).
//
// The command is cmd/classbot-loadtest, apart from classbot itself, so that
// the binary a teacher deploys links neither this package nor gonum/plot.
//
// Every loop ends by itself: the send loop after Config.Duration (or
// Config.Requests), every request after Config.Timeout, the wait for
// follow-ups after Config.Drain. Traffic goes only to 127.0.0.1.
package loadtest

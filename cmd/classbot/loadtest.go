package main

import "context"

// runLoadtest only points to the load test's own command,
// cmd/classbot-loadtest. The load generator (internal/loadtest, with its
// model stand-in and gonum/plot) is not linked into classbot, so that the
// binary a teacher deploys carries only what serving needs. The load test
// builds and starts this binary as its bot.
//
// It stays a subcommand, answering one line and exit status 2, so that
// anyone who types the old command learns where it went.
func runLoadtest(context.Context, env, []string) error {
	return usagef("loadtest is its own command: from the source tree, run go run ./cmd/classbot-loadtest --help")
}

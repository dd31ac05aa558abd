// Command classbot-loadtest plays a whole class typing at once against a
// real classbot serve and measures it. It is a command of its own, run from
// the source tree:
//
//	go run ./cmd/classbot-loadtest --rate 1000 --duration 30s
//
// so that the classbot binary a teacher deploys does not carry the load
// generator, its model stand-in and gonum/plot. It builds classbot from the
// same source tree (go build ./cmd/classbot, once per invocation) and starts
// it as a child process, or starts the binary given with --bot-binary.
// Run it with --help for the flags.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "classbot-loadtest:", err)
		var ue *usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/classbot/classbot/internal/dotenv"
)

// usageError is bad usage: the command line was wrong. main exits 2 on it.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// env is what every subcommand gets from run.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// subcommand is one "classbot NAME".
type subcommand struct {
	name    string
	summary string
	run     func(ctx context.Context, e env, args []string) error
}

func subcommands() []subcommand {
	return []subcommand{
		{"serve", "run the bot: HTTP server, Slack and Discord adapters (and queue workers in queue mode)", runServe},
		{"worker", "run queue mode's workers only: no HTTP server, no platform connections", runWorker},
		{"queue", "show queue mode's jobs: waiting, running, latency, retries, rescues, expiries", runQueue},
		{"demo", "register a student in sync or async mode and show the timings", runDemo},
		{"ask", "ask the assistant one question from the terminal", runAsk},
		{"migrate", "apply the database migrations to DATABASE_URL", runMigrate},
		{"course", "courses and their notes for /ask: course add|bind|unbind|index|list|search|remove|eval", runCourse},
		{"discord", "Discord tools: discord register-commands", runDiscord},
		{"loadtest", "moved: from the source tree, go run ./cmd/classbot-loadtest", runLoadtest},
		{"version", "print the version", runVersion},
	}
}

const mainUsage = `classbot puts an AI teaching assistant into class channels on Slack and Discord.

Usage:
  classbot <command> [flags]

Commands:
%s
Configuration comes from the environment and from a .env file in the working
directory (real environment variables win); see .env.example.
Run "classbot <command> --help" for a command's flags.
`

// run is the whole program. main only calls it, so tests can run classbot
// in-process. It returns a *usageError for bad usage.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	getenv, err := dotenv.Getenv(getenv)
	if err != nil {
		return err
	}
	e := env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	cmds := subcommands()
	usage := func(w io.Writer) {
		var b strings.Builder
		for _, c := range cmds {
			fmt.Fprintf(&b, "  %-9s %s\n", c.name, c.summary)
		}
		fmt.Fprintf(w, mainUsage, b.String())
	}
	if len(args) < 2 {
		usage(stderr)
		return usagef("no command given")
	}
	name := args[1]
	switch name {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return nil
	}
	for _, c := range cmds {
		if c.name == name {
			err := c.run(ctx, e, args[2:])
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
	}
	usage(stderr)
	return usagef("unknown command %q", name)
}

// newFlagSet returns a FlagSet whose errors are usage errors and whose help
// goes to stdout.
func newFlagSet(e env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("classbot "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: classbot %s %s\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; --help prints usage to stdout and returns flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, e env, args []string) error {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(e.stdout)
			fs.Usage()
			return flag.ErrHelp
		}
	}
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return usagef("%s: %v (see --help)", fs.Name(), err)
	}
	return nil
}

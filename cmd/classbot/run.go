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
	// callsModel: the command runs the agent (see callsModel), so it warns
	// when no model is configured; the others never mention the model.
	callsModel bool
}

// callsModel reports whether a command line (without "classbot") runs the
// agent: serve, worker, demo (and demo ask), ask and course eval.
func callsModel(args []string) bool {
	if len(args) == 0 {
		return false
	}
	switch args[0] {
	case "serve", "worker", "demo", "ask":
		return true
	case "course":
		return len(args) > 1 && args[1] == "eval"
	}
	return false
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
		{"demo ask", "ask one question about the example course (or COURSE_DIR's notes), with citations", runDemo},
		{"ask", "ask the assistant one question from the terminal", runAsk},
		{"migrate", "apply the database migrations to DATABASE_URL", runMigrate},
		{"course", "courses and their notes for /ask: course add|bind|unbind|index|list|search|remove|eval", runCourse},
		{"discord", "Discord tools: discord register-commands", runDiscord},
		{"roster", "roster export: the registered students as CSV on stdout", runRoster},
		{"feedback", "the answers students marked not helpful, with the question and the cited sections", runFeedback},
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
directory; a variable set in the environment wins, even when empty (FOO=).
See .env.example.
Run "classbot <command> --help" for a command's flags.
`

// envSource is how run reads the environment: a lookup such as os.LookupEnv,
// which tells a variable set to the empty string from an unset one, or a
// getenv such as a test's map, for which an empty variable is unset.
type envSource interface {
	func(string) (string, bool) | func(string) string
}

// run is the whole program. main only calls it, with os.LookupEnv, so tests
// can run classbot in-process. A variable set in the environment wins over
// .env, even when empty. It returns a *usageError for bad usage.
func run[E envSource](ctx context.Context, args []string, environ E, stdin io.Reader, stdout, stderr io.Writer) error {
	var (
		getenv func(string) string
		err    error
	)
	switch f := any(environ).(type) {
	case func(string) (string, bool):
		getenv, err = dotenv.Lookup(f)
	case func(string) string:
		getenv, err = dotenv.Getenv(f)
	}
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
			e.callsModel = callsModel(args[1:])
			err := c.run(ctx, e, args[2:])
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return explainDatabaseError(err)
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

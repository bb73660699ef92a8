// Package cli is the job binary's subcommands: flags and environment,
// logging, the result line and metrics around the other packages' work.
// The commands are documented in README.md and docs/.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"benchling-webhook/internal/exitcode"
)

// Version is set at build time with -ldflags "-X benchling-webhook/internal/cli.Version=…".
var Version = "dev"

// Env carries what the process gets from its surroundings, so tests can
// run commands without touching the real process state.
type Env struct {
	Stdout, Stderr io.Writer
	// Stdin is read by "job verify --request -" (os.Stdin when nil).
	Stdin io.Reader
	// Lookup reads an environment variable (os.LookupEnv).
	Lookup func(string) (string, bool)
}

const usage = `job: the benchling-webhook container's commands.

Usage:
  job export [flags]   stream a Benchling export ZIP into S3 (or a folder)
  job verify [flags]   verify a Benchling webhook (signature, timestamp, source IP)
  job reconcile [flags]
                       package the entries webhooks missed (the worker's default command, daily)
  job package [flags] ENTRY_ID...
                       start packaging the named entries now (for an operator)
  job version          print the version
  job help             print this help

Run "job COMMAND --help" for a command's flags. Exit codes: README.md, "Exit codes".
`

// Run runs the subcommand named by args[0] and returns the exit code.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Lookup == nil {
		env.Lookup = os.LookupEnv
	}
	if env.Stdin == nil {
		env.Stdin = os.Stdin
	}
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, usage)
		return exitcode.Usage
	}
	switch args[0] {
	case "export":
		return exportCommand.main(ctx, args[1:], env)
	case "verify":
		return verifyCommand.main(ctx, args[1:], env)
	case "reconcile":
		return reconcileCommand.main(ctx, args[1:], env)
	case "package":
		return packageCommand.main(ctx, args[1:], env)
	case "version", "--version":
		fmt.Fprintln(env.Stdout, Version)
		return exitcode.OK
	case "help", "-h", "--help":
		fmt.Fprint(env.Stdout, usage)
		return exitcode.OK
	}
	fmt.Fprintf(env.Stderr, "job: unknown command %q\n\n%s", args[0], usage)
	return exitcode.Usage
}

// WithSignals returns a context cancelled by SIGINT or SIGTERM, with an
// [exitcode.Interrupted] cause naming the signal. ECS sends SIGTERM, waits
// 30 s (the task's stopTimeout), then SIGKILL. Call stop to release it.
func WithSignals(parent context.Context) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			cancel(exitcode.Interrupted{Signal: s})
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}

// resolve maps the outcome of a command to its exit code; an interruption
// wins over the errors it caused.
func resolve(ctx context.Context, err error) (int, error) {
	if err == nil {
		return exitcode.OK, nil
	}
	var in exitcode.Interrupted
	if cause := context.Cause(ctx); errors.As(cause, &in) {
		return in.ExitCode(), cause
	}
	return exitcode.Resolve(err), err
}

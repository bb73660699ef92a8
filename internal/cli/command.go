package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/pflag"

	"benchling-webhook/internal/exitcode"
)

// command is the shape every subcommand shares (copilot-cli's vars/opts):
// flags bound to the command's opts, then the environment ([applyEnv]),
// the logger, one validation that also normalises, and the work.
type command struct {
	name     string // "export"
	synopsis string // the usage line, after "Usage: "
	about    string // what the command does, under the usage line
	// envFlag is the flag whose variable the usage names as the example.
	envFlag string
	// args: the command takes positional arguments (job package's ids).
	args bool
	// newOpts binds the command's flags to a new opts, with its
	// dependencies built from env.
	newOpts func(fs *pflag.FlagSet, env Env) opts
}

// opts is a command's configuration: its vars (the raw flags), what
// validate derives from them, and its dependencies.
type opts interface {
	// validate checks the whole configuration before any I/O, and
	// normalises it (prefixes, host names) for run; args are the
	// positional arguments.
	validate(s *session, args []string) error
	// invalid prints the result line (and metrics) of a configuration
	// that validate refused with err.
	invalid(s *session, err error)
	// run does the work and prints the result line; it returns the exit
	// code.
	run(ctx context.Context, s *session) int
}

// session is what a command runs with: its surroundings and its logger.
type session struct {
	Env
	log *slog.Logger
	// jsonLogs: the log lines are JSON, so the metric line may be written.
	jsonLogs bool
}

// logVars are the logging flags every command has.
type logVars struct {
	format string
	level  string
}

func (v *logVars) bind(fs *pflag.FlagSet) {
	fs.StringVar(&v.format, flagLogFormat, "auto", "Log format on stderr: json (for CloudWatch), text, or auto (text on a terminal, else json).")
	fs.StringVar(&v.level, flagLogLevel, "info", "Log level: debug, info, warn or error.")
}

// newFlagSet is the flag set of command name, flags in the order given.
func newFlagSet(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SortFlags = false
	return fs
}

// main runs the command with args (after its name) and returns the exit code.
func (c command) main(ctx context.Context, args []string, env Env) int {
	o, s, code := c.parse(args, env)
	if o == nil {
		return code
	}
	return o.run(ctx, s)
}

// parse reads flags and environment, builds the logger and validates. A
// nil opts means parsing ended the command with code: help, a usage
// error, or a configuration validate refused (its result line printed).
func (c command) parse(args []string, env Env) (opts, *session, int) {
	fs := newFlagSet(c.name)
	o := c.newOpts(fs, env)
	var lv logVars
	lv.bind(fs)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: %s\n\n%s\nEvery flag can also come from the environment: --%s from %s, and so on.\n\nFlags:\n%s",
			c.synopsis, c.about, c.envFlag, envName(c.envFlag), fs.FlagUsages())
	}
	fail := func(err error) (opts, *session, int) {
		fmt.Fprintf(env.Stderr, "job %s: %v\n", c.name, err)
		return nil, nil, exitcode.Usage
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, nil, exitcode.OK
		}
		return fail(err)
	}
	if !c.args && fs.NArg() > 0 {
		return fail(fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if err := applyEnv(fs, env.Lookup); err != nil {
		return fail(err)
	}
	log, err := newLogger(env.Stderr, lv.format, lv.level)
	if err != nil {
		return fail(err)
	}
	s := &session{Env: env, log: log, jsonLogs: jsonLogs(lv.format, env.Stderr)}
	if err := o.validate(s, fs.Args()); err != nil {
		code := validationCode(err)
		err = exitcode.Wrap(err, code)
		log.Error("invalid configuration", "error", err.Error())
		o.invalid(s, err)
		return nil, nil, code
	}
	return o, s, exitcode.OK
}

// validationCode is the exit code of what validate refused: 3 (bad input)
// when every problem is bad input, such as an entry id that is not one
// (quiltpkg.ErrInvalidEntryID), else 2 (usage or configuration).
func validationCode(err error) int {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if validationCode(e) != exitcode.BadInput {
				return exitcode.Usage
			}
		}
		return exitcode.BadInput
	}
	if exitcode.Resolve(err) == exitcode.BadInput {
		return exitcode.BadInput
	}
	return exitcode.Usage
}

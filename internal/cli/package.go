package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/spf13/pflag"

	"benchling-webhook/internal/benchling"
	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/quiltpkg"
	"benchling-webhook/internal/reconcile"
	"benchling-webhook/internal/sfn"
)

var packageCommand = command{
	name:     "package",
	synopsis: "job package [flags] ENTRY_ID...",
	about: "Starts the packaging state machine for each entry (etr_…) now, named as job reconcile names it\n" +
		"(the entry id and its modifiedAt, read from Benchling), and prints each execution's ARN, or\n" +
		"\"already started: ARN\" when this version already has one that is RUNNING or SUCCEEDED; one that\n" +
		"FAILED, TIMED_OUT or was ABORTED is started again as NAME-r1 (up to NAME-r5; --repackage forces a\n" +
		"new execution). It needs states:StartExecution and states:DescribeExecution. For an operator with AWS credentials:\n" +
		"the settings are the task's (BENCHLING_BASE_URL, BENCHLING_CLIENT_ID, REGISTRY, PACKAGE_PREFIX,\n" +
		"PACKAGING_STATE_MACHINE_ARN) and the client secret comes from BENCHLING_CLIENT_SECRET only, e.g.\n" +
		"  export BENCHLING_CLIENT_SECRET=$(aws secretsmanager get-secret-value \\\n" +
		"    --secret-id APP/ENV/benchling/client_secret --query SecretString --output text)\n" +
		"An id that is not an entry id ends it with exit 3, naming the id, before any call.\n" +
		"The exit code is the worst entry's (docs/operations.md, \"Package one entry now\").\n",
	envFlag: flagRegistry,
	args:    true,
	newOpts: func(fs *pflag.FlagSet, env Env) opts {
		o := &packageOpts{now: time.Now, newSFN: func(ctx context.Context) (sfn.API, error) { return newSFNClient(ctx, env) }}
		o.packageVars.bind(fs)
		return o
	},
}

// packageVars holds the raw flag values of "job package".
type packageVars struct {
	tenantVars
	wait         bool
	timeout      time.Duration
	pollInterval time.Duration
	repackage    bool
}

// packageOpts is packageVars plus what "job package" depends on.
type packageOpts struct {
	packageVars
	tenant tenantOpts
	ids    []string
	// newSFN builds the Step Functions client (starts and, with --wait,
	// describes executions).
	newSFN func(ctx context.Context) (sfn.API, error)
	now    func() time.Time
}

func (v *packageVars) bind(fs *pflag.FlagSet) {
	v.tenantVars.bind(fs)
	fs.BoolVar(&v.wait, flagWait, false, "Wait for the executions to end (DescribeExecution every --poll-interval) and print each one's status.")
	fs.DurationVar(&v.timeout, flagTimeout, 30*time.Minute, "With --wait, stop waiting after this long (exit 4 if an execution is still running; it keeps running).")
	fs.DurationVar(&v.pollInterval, flagPollInterval, 5*time.Second, "With --wait, how often each running execution is described.")
	fs.BoolVar(&v.repackage, flagRepackage, false, "Package an entry again even if this version was packaged, or is being packaged (a -rYYYYMMDDTHHMMSSZ name suffix).")
}

// validate checks the configuration before any I/O; the ids are checked
// by run, as bad input (exit 3), not a usage error.
func (o *packageOpts) validate(s *session, args []string) error {
	o.ids = dedupe(args)
	o.tenant.tenantVars = o.tenantVars
	errs := o.tenant.validate(s.Env, true)
	if len(o.ids) == 0 {
		errs = append(errs, errors.New("name at least one entry id (etr_…)"))
	}
	if o.timeout <= 0 {
		errs = append(errs, fmt.Errorf("--%s must be positive", flagTimeout))
	}
	if o.pollInterval <= 0 {
		errs = append(errs, fmt.Errorf("--%s must be positive", flagPollInterval))
	}
	return errors.Join(errs...)
}

// packageExecution is one entry's line in the result.
type packageExecution struct {
	Entity         string `json:"entity"`
	ModifiedAt     string `json:"modifiedAt,omitempty"`
	Name           string `json:"name,omitempty"`
	ExecutionARN   string `json:"executionArn,omitempty"`
	AlreadyStarted bool   `json:"alreadyStarted"`
	// Restarted: a new execution NAME-rN, as the version's earlier one
	// ended (PreviousStatus) without a package.
	Restarted      bool   `json:"restarted,omitempty"`
	PreviousStatus string `json:"previousStatus,omitempty"`
	// Status, ExecutionError and Cause: with --wait, how the execution
	// ended (RUNNING if it had not by --timeout).
	Status         string `json:"status,omitempty"`
	ExecutionError string `json:"executionError,omitempty"`
	Cause          string `json:"cause,omitempty"`
	// Error says why the entry could not be started, or waited for.
	Error    string `json:"error,omitempty"`
	ExitCode int    `json:"exitCode"`
}

// packageResult is the last stdout line of "job package".
type packageResult struct {
	Executions []packageExecution `json:"executions"`
	Waited     bool               `json:"waited"`
	DurationMs int64              `json:"durationMs"`
	ExitCode   int                `json:"exitCode"`
	Error      string             `json:"error,omitempty"`
	ErrorKind  string             `json:"errorKind,omitempty"`
}

// dedupe returns ids without repeats, in order.
func dedupe(ids []string) []string {
	var out []string
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

func (o *packageOpts) invalid(s *session, err error) {
	o.printResult(s.Env, nil, 0, exitcode.Resolve(err), err)
}

// run packages the entries and prints the result; it returns the exit code.
func (o *packageOpts) run(ctx context.Context, s *session) int {
	start := o.now()
	log := s.log
	if execs, err := checkIDs(o.ids); err != nil {
		log.Error("package refused: not an entry id", "error", err.Error(), "exitCode", exitcode.BadInput)
		o.printResult(s.Env, execs, o.now().Sub(start), exitcode.BadInput, err)
		return exitcode.BadInput
	}
	execs, err := o.packageAll(ctx, s.Env, log)
	code, err := resolve(ctx, err)
	if err != nil {
		log.Error("package failed", "error", err.Error(), "exitCode", code, "kind", exitcode.Name(code))
	} else {
		log.Info("package done", "entries", len(execs), "waited", o.wait)
	}
	o.printResult(s.Env, execs, o.now().Sub(start), code, err)
	return code
}

// checkIDs checks every id against the entry-id grammar
// ([quiltpkg.ValidEntryID]) before any Benchling call or start: an id goes
// into S3 keys and execution names. One bad id refuses them all (exit 3),
// each bad one named in its own line.
func checkIDs(ids []string) ([]packageExecution, error) {
	var execs []packageExecution
	for _, id := range ids {
		if !quiltpkg.ValidEntryID(id) {
			execs = append(execs, packageExecution{Entity: id, ExitCode: exitcode.BadInput,
				Error: fmt.Sprintf("%q is not an entry id (etr_ and letters or digits); nothing was started", id)})
		}
	}
	return execs, entriesError(execs)
}

// packageAll starts (and with --wait, waits for) every entry. The error
// joins the entries' errors, with the worst exit code among them.
func (o *packageOpts) packageAll(ctx context.Context, env Env, log *slog.Logger) ([]packageExecution, error) {
	bench, err := o.tenant.newBenchling(log)
	if err != nil {
		return nil, err
	}
	client, err := o.newSFN(ctx)
	if err != nil {
		return nil, err
	}
	p := o.tenant.packager(client)
	var suffix string
	if o.repackage {
		suffix = "r" + o.now().UTC().Format("20060102T150405Z")
	}
	execs := make([]packageExecution, 0, len(o.ids))
	for _, id := range o.ids {
		if ctx.Err() != nil {
			break
		}
		ex := packageExecution{Entity: id}
		err := o.startOne(ctx, bench, p, suffix, &ex, log)
		if err != nil {
			ex.Error, ex.ExitCode = err.Error(), exitcode.Resolve(err)
			log.Error("entry not started", "entity", id, "error", ex.Error, "exitCode", ex.ExitCode)
		}
		execs = append(execs, ex)
		switch {
		case err != nil && ex.ExitCode == exitcode.Usage:
			// Configuration: every other entry would fail the same way.
			return execs, entriesError(execs)
		case err != nil:
		case ex.AlreadyStarted:
			fmt.Fprintf(env.Stdout, "already started: %s\n", ex.ExecutionARN)
		default:
			fmt.Fprintln(env.Stdout, ex.ExecutionARN)
		}
	}
	if o.wait && ctx.Err() == nil {
		o.waitAll(ctx, client, execs, env, log)
	}
	if ctx.Err() != nil {
		return execs, fmt.Errorf("package: %w", context.Cause(ctx))
	}
	return execs, entriesError(execs)
}

// entryGetter reads an entry from Benchling.
type entryGetter interface {
	GetEntry(ctx context.Context, id string) (benchling.Entry, error)
}

var _ entryGetter = (*benchling.Client)(nil)

// startOne reads the entry's modifiedAt and starts its packaging.
func (o *packageOpts) startOne(ctx context.Context, bench entryGetter, p *reconcile.Packager, suffix string, ex *packageExecution, log *slog.Logger) error {
	e, err := bench.GetEntry(ctx, ex.Entity)
	if err != nil {
		return err
	}
	ex.ModifiedAt = e.ModifiedAt.Format(time.RFC3339Nano)
	s, err := p.Start(ctx, reconcile.Target{Entity: e.ID, ModifiedAt: e.ModifiedAt, MessageType: reconcile.MessageManual, NameSuffix: suffix})
	ex.Name = s.Name
	if err != nil {
		return err
	}
	ex.ExecutionARN, ex.AlreadyStarted, ex.Restarted, ex.PreviousStatus = s.ARN, s.AlreadyStarted, s.Restarted, s.PreviousStatus
	if s.Restarted {
		log.Info("packaging restarted", "entity", e.ID, "executionArn", s.ARN, "previousStatus", s.PreviousStatus)
	}
	return nil
}

// waitAll describes the started executions every poll interval until each
// has ended, --timeout passes or ctx ends, and prints each outcome.
func (o *packageOpts) waitAll(ctx context.Context, client sfn.API, execs []packageExecution, env Env, log *slog.Logger) {
	wctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	var pending []int
	for i, ex := range execs {
		if ex.ExecutionARN != "" {
			pending = append(pending, i)
		}
	}
	describer := sfn.New(client)
	for len(pending) > 0 {
		var still []int
		for _, i := range pending {
			ex := &execs[i]
			out, err := describer.Describe(wctx, ex.ExecutionARN)
			switch {
			case err != nil && wctx.Err() != nil:
				still = append(still, i)
			case err != nil && exitcode.Resolve(err) != exitcode.Transient:
				ex.Error, ex.ExitCode = err.Error(), exitcode.Resolve(err)
				log.Error("execution not described", "entity", ex.Entity, "executionArn", ex.ExecutionARN, "error", err.Error())
			case err != nil:
				log.Warn("describe execution failed; trying again", "entity", ex.Entity, "executionArn", ex.ExecutionARN, "error", err.Error())
				still = append(still, i)
			case out.Running():
				still = append(still, i)
			default:
				ex.Status, ex.ExecutionError, ex.Cause = string(out.Status), out.Error, out.Cause
				if out.Status != sfntypes.ExecutionStatusSucceeded {
					ex.ExitCode = exitcode.Internal
				}
				printOutcome(env, *ex)
			}
		}
		pending = still
		if len(pending) == 0 {
			return
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return // interrupted: the result says so
			}
			for _, i := range pending {
				ex := &execs[i]
				ex.Status, ex.ExitCode = string(sfntypes.ExecutionStatusRunning), exitcode.Transient
				ex.Error = fmt.Sprintf("still running after --%s %s", flagTimeout, o.timeout)
				printOutcome(env, *ex)
			}
			return
		case <-time.After(o.pollInterval):
		}
	}
}

// printOutcome prints "ARN STATUS", and for a failure its error and cause.
func printOutcome(env Env, ex packageExecution) {
	switch {
	case ex.Status == string(sfntypes.ExecutionStatusSucceeded):
		fmt.Fprintf(env.Stdout, "%s %s\n", ex.ExecutionARN, ex.Status)
	case ex.Error != "":
		fmt.Fprintf(env.Stdout, "%s %s (%s)\n", ex.ExecutionARN, ex.Status, ex.Error)
	default:
		fmt.Fprintf(env.Stdout, "%s %s error=%q cause=%q\n", ex.ExecutionARN, ex.Status, ex.ExecutionError, ex.Cause)
	}
}

// codeRank orders exit codes by which one the command reports when
// entries end differently: configuration first (nothing can work), then
// bad input, a failed packaging, and transient faults last, so that exit
// 4 means a retry may help every entry that did not work.
var codeRank = map[int]int{exitcode.OK: 0, exitcode.Transient: 1, exitcode.Internal: 2, exitcode.BadInput: 3, exitcode.Usage: 4}

// entriesError joins the entries' errors under the worst exit code.
func entriesError(execs []packageExecution) error {
	var errs []error
	worst := exitcode.OK
	for _, ex := range execs {
		if ex.ExitCode == exitcode.OK {
			continue
		}
		msg := ex.Error
		if msg == "" {
			msg = fmt.Sprintf("execution %s %s: %s: %s", ex.ExecutionARN, ex.Status, ex.ExecutionError, ex.Cause)
		}
		errs = append(errs, fmt.Errorf("%s: %s", ex.Entity, msg))
		if codeRank[ex.ExitCode] > codeRank[worst] {
			worst = ex.ExitCode
		}
	}
	if len(errs) == 0 {
		return nil
	}
	if worst == exitcode.OK {
		worst = exitcode.Internal // a code without a rank
	}
	return exitcode.Wrap(errors.Join(errs...), worst)
}

func (o *packageOpts) printResult(env Env, execs []packageExecution, elapsed time.Duration, code int, err error) {
	res := packageResult{Executions: execs, Waited: o.wait, DurationMs: elapsed.Milliseconds(), ExitCode: code}
	if res.Executions == nil {
		res.Executions = []packageExecution{}
	}
	if err != nil {
		res.Error, res.ErrorKind = err.Error(), exitcode.Name(code)
	}
	b, _ := json.Marshal(res)
	fmt.Fprintln(env.Stdout, string(b))
}

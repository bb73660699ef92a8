package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/pflag"

	"benchling-webhook/internal/benchling"
	"benchling-webhook/internal/emf"
	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/extract"
	"benchling-webhook/internal/reconcile"
	"benchling-webhook/internal/sfn"
	"benchling-webhook/internal/store"
)

// envClientSecret is where the Benchling app's client secret comes from:
// only the environment (the manifest's secrets, from Secrets Manager),
// never a flag, so it shows in no process list or shell history.
const envClientSecret = "BENCHLING_CLIENT_SECRET"

// tenantVars are the settings job reconcile and job package share: the
// addon's outputs, as environment variables in the task.
type tenantVars struct {
	baseURL    string
	clientID   string
	registry   string
	prefix     string
	machineARN string
}

func addTenantFlags(fs *pflag.FlagSet, v *tenantVars) {
	fs.StringVar(&v.baseURL, flagBenchlingBaseURL, "", "The Benchling tenant's URL, https://TENANT.benchling.com. Required.")
	fs.StringVar(&v.clientID, flagBenchlingClientID, "", "The Benchling app's OAuth client id. Required. Its secret is read from the environment variable "+envClientSecret+" only (in the task, the manifest's secrets put it there from Secrets Manager).")
	fs.StringVar(&v.registry, flagRegistry, "", "The S3 bucket that holds the packages. Required.")
	fs.StringVar(&v.prefix, flagPackagePrefix, "", `The package name prefix, e.g. "benchling": entry E is packaged as <prefix>/E. Required.`)
	fs.StringVar(&v.machineARN, flagPackagingStateMachineARN, "", "The ARN of the packaging state machine, which the executions are started on. Required.")
}

// validate checks the shared settings; needMachine is false for a dry run.
func (v *tenantVars) validate(secret string, needMachine bool) []error {
	var errs []error
	required := func(val, flag string) {
		if val == "" {
			errs = append(errs, fmt.Errorf("--%s (or %s) is required", flag, envName(flag)))
		}
	}
	required(v.baseURL, flagBenchlingBaseURL)
	required(v.clientID, flagBenchlingClientID)
	required(v.registry, flagRegistry)
	required(v.prefix, flagPackagePrefix)
	if secret == "" {
		errs = append(errs, fmt.Errorf("the environment variable %s (the Benchling app's client secret) is required", envClientSecret))
	}
	if v.prefix != "" {
		if _, err := extract.CheckPrefix(v.prefix, false); err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", flagPackagePrefix, err))
		}
	}
	if needMachine || v.machineARN != "" {
		required(v.machineARN, flagPackagingStateMachineARN)
		if v.machineARN != "" {
			if err := sfn.CheckStateMachineARN(v.machineARN); err != nil {
				errs = append(errs, fmt.Errorf("--%s: %w", flagPackagingStateMachineARN, err))
			}
		}
	}
	return errs
}

// newBenchling builds the Benchling client; its retries log to log.
func (v *tenantVars) newBenchling(secret string, log *slog.Logger) (*benchling.Client, error) {
	return benchling.New(benchling.Config{BaseURL: v.baseURL, ClientID: v.clientID, ClientSecret: secret, Logger: log})
}

// packager returns the packaging starter for client.
func (v *tenantVars) packager(client sfn.API) *reconcile.Packager {
	prefix, _ := extract.CheckPrefix(v.prefix, false)
	return &reconcile.Packager{Client: client, StateMachineARN: v.machineARN, Registry: v.registry,
		Prefix: prefix, BaseURL: strings.TrimRight(v.baseURL, "/")}
}

// awsClients loads the SDK configuration once (AWS_REGION, the credential
// chain, AWS_ENDPOINT_URL_S3 / _SFN, AWS_MAX_ATTEMPTS: 5 attempts when
// unset) and returns the S3 and Step Functions clients.
func awsClients(ctx context.Context, env Env) (*s3.Client, sfn.API, error) {
	cfg, err := loadAWSConfig(ctx, env, 5)
	if err != nil {
		return nil, nil, err
	}
	return s3ClientFromConfig(cfg), sfn.NewAPI(cfg), nil
}

// reconcileVars holds the raw flag values of "job reconcile".
type reconcileVars struct {
	tenantVars
	since         string
	window        time.Duration
	maxStart      int
	startInterval time.Duration
	pageSize      int
	dryRun        bool
	metrics       bool
	logFormat     string
	logLevel      string
}

func newReconcileFlags(v *reconcileVars) *pflag.FlagSet {
	fs := pflag.NewFlagSet("reconcile", pflag.ContinueOnError)
	fs.SortFlags = false
	addTenantFlags(fs, &v.tenantVars)
	fs.StringVar(&v.since, flagSince, "", "List the entries modified after this time instead of since the last successful run: an RFC 3339 time (2025-03-01T00:00:00Z), a date (2025-03-01, UTC) or a duration back from now (48h). "+
		"The state is then recorded only if this window starts no later than the recorded one.")
	fs.DurationVar(&v.window, flagWindow, reconcile.DefaultWindow, "The window of the first run, when no state is recorded yet: entries modified in the last 720h (30 days) by default.")
	fs.IntVar(&v.maxStart, flagMaxStart, reconcile.DefaultMaxStart, "Start at most this many packaging executions in one run, restarts included; 50 by default. "+
		"Each is a Benchling export, several Benchling API calls and a Fargate task: this bounds how many a run adds to those already running. "+
		"The stale entries over the cap are left for the next run, and the state is not recorded until a run gets through them all.")
	fs.DurationVar(&v.startInterval, flagStartInterval, reconcile.DefaultStartInterval, "Make at most one StartExecution call per this interval; 2s by default, 0 turns the pacing off. "+
		"Each packaging execution makes several Benchling calls (read the entry, start an export, poll it), and Benchling allows a tenant 60 requests per 30 s, "+
		"shared with the webhooks' executions: pacing spreads a large run's executions out instead of starting them all at once. "+
		"A run of --max-start executions spends at least --max-start times this interval starting them (100 s by default); a SIGTERM stops the waiting at once.")
	fs.IntVar(&v.pageSize, flagPageSize, benchling.DefaultPageSize, "Entries per Benchling list request, 1 to 100.")
	fs.BoolVar(&v.dryRun, flagDryRun, false, "Print one JSON line per entry it would start (before the summary), and start and record nothing. Needs no state machine ARN.")
	fs.BoolVar(&v.metrics, flagMetrics, true, "When the run ends, write one CloudWatch embedded metric format line to stderr (namespace <app>/<env>/<workload>, dimension Command=reconcile), all Count but the last: "+
		"EntriesSeen (entries listed); StaleFound (entries whose package is missing, older than the entry, or incomplete: no README.md, or one older than entry.json); "+
		"Started (executions started under the version's own name); Restarted (executions started again as NAME-r1 to NAME-r5, because the version's earlier execution failed, timed out, was aborted, or succeeded without leaving a current package); "+
		"Skipped (upToDate + alreadyStarted: entries whose package is current, plus stale ones whose execution is still running; not the deferred ones); "+
		"Failures (entries whose check or start failed, plus those given up on after 5 restarts; at least 1 when the run itself failed with exit 1, 2 or 4); DurationSeconds. "+
		"Not written for --dry-run, which starts nothing, nor for an interrupted run (exit 130 or 143), which did not finish: neither moves the alarms. "+
		"Only with JSON logs (--log-format json, or auto off a terminal). On by default; --metrics=false or METRICS=false turns it off.")
	fs.StringVar(&v.logFormat, flagLogFormat, "auto", "Log format on stderr: json (for CloudWatch), text, or auto (text on a terminal, else json).")
	fs.StringVar(&v.logLevel, flagLogLevel, "info", "Log level: debug, info, warn or error.")
	return fs
}

// validate checks the configuration before any I/O and returns the
// window's start given by --since (zero without it).
func (v *reconcileVars) validate(secret string, now time.Time) (time.Time, error) {
	errs := v.tenantVars.validate(secret, !v.dryRun)
	since, err := parseSince(v.since, now)
	if err != nil {
		errs = append(errs, fmt.Errorf("--%s: %w", flagSince, err))
	}
	if v.window <= 0 {
		errs = append(errs, fmt.Errorf("--%s must be positive", flagWindow))
	}
	if v.maxStart < 1 {
		errs = append(errs, fmt.Errorf("--%s must be at least 1", flagMaxStart))
	}
	if v.startInterval < 0 {
		errs = append(errs, fmt.Errorf("--%s must not be negative", flagStartInterval))
	}
	if v.pageSize < 1 || v.pageSize > benchling.MaxPageSize {
		errs = append(errs, fmt.Errorf("--%s must be between 1 and %d", flagPageSize, benchling.MaxPageSize))
	}
	return since, errors.Join(errs...)
}

// parseSince parses --since: an RFC 3339 time, a date (UTC) or a duration
// back from now. "" is the zero time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	var t time.Time
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("the duration %q must be positive", s)
		}
		t = now.Add(-d)
	} else if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
		if t, err = time.ParseInLocation(time.DateOnly, s, time.UTC); err != nil {
			return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time, a date (2025-03-01) or a duration (48h)", s)
		}
	}
	if t.After(now) {
		return time.Time{}, fmt.Errorf("%s is in the future", t.UTC().Format(time.RFC3339))
	}
	return t.UTC(), nil
}

// reconcileResult is the last stdout line of "job reconcile".
type reconcileResult struct {
	EntriesSeen    int    `json:"entriesSeen"`
	Stale          int    `json:"stale"`
	Started        int    `json:"started"`
	Restarted      int    `json:"restarted"` // started again as NAME-rN
	Skipped        int    `json:"skipped"`   // upToDate + alreadyStarted
	Failed         int    `json:"failed"`
	GaveUp         int    `json:"gaveUp"` // not started again after 5 restarts
	UpToDate       int    `json:"upToDate"`
	AlreadyStarted int    `json:"alreadyStarted"`
	Deferred       int    `json:"deferred"`             // over --max-start
	WouldStart     int    `json:"wouldStart,omitempty"` // with --dry-run
	DryRun         bool   `json:"dryRun"`
	Since          string `json:"since"`
	SinceFrom      string `json:"sinceFrom,omitempty"` // flag, state or default
	StateRecorded  bool   `json:"stateRecorded"`
	DurationMs     int64  `json:"durationMs"`
	ExitCode       int    `json:"exitCode"`
	Error          string `json:"error,omitempty"`
	ErrorKind      string `json:"errorKind,omitempty"`
}

func runReconcile(ctx context.Context, args []string, env Env) int {
	var v reconcileVars
	fs := newReconcileFlags(&v)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: job reconcile [flags]\n\n"+
			"Packages what webhooks missed: lists the Benchling entries modified since the last successful\n"+
			"run (recorded in s3://REGISTRY/PACKAGE_PREFIX/.reconcile/state.json; --window on the first run),\n"+
			"and starts one packaging execution per entry whose package is missing, older than the entry, or\n"+
			"incomplete (no README.md, which job export writes last, or one older than entry.json).\n"+
			"An execution is named after the entry and its modifiedAt, so no version is started twice while it\n"+
			"runs; one that ended without a current package (FAILED, TIMED_OUT, ABORTED, or SUCCEEDED and still\n"+
			"stale) is started again as NAME-r1 … NAME-r5 (\"restarted\"), then given up (\"gaveUp\", logged as an\n"+
			"error). The task role needs states:StartExecution and states:DescribeExecution.\n"+
			"At most --max-start executions per run, one StartExecution per --start-interval.\n"+
			"The worker's default command, run daily by the schedule and by `copilot job run`.\n"+
			"Exit codes: 0 done, 2 configuration (missing settings, access denied, no such bucket or state\n"+
			"machine, credentials Benchling refuses), 4 transient (Benchling, S3 or Step Functions unreachable\n"+
			"after retries, or some entries failed: the next run retries them), 1 a bug, 143 SIGTERM.\n"+
			"Every flag can also come from the environment: --benchling-base-url from BENCHLING_BASE_URL, and so on.\n\nFlags:\n%s", fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitcode.OK
		}
		fmt.Fprintf(env.Stderr, "job reconcile: %v\n", err)
		return exitcode.Usage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "job reconcile: unexpected arguments %q\n", fs.Args())
		return exitcode.Usage
	}
	if err := applyEnv(fs, env.Lookup); err != nil {
		fmt.Fprintf(env.Stderr, "job reconcile: %v\n", err)
		return exitcode.Usage
	}
	log, err := newLogger(env.Stderr, v.logFormat, v.logLevel)
	if err != nil {
		fmt.Fprintf(env.Stderr, "job reconcile: %v\n", err)
		return exitcode.Usage
	}
	start := time.Now()
	secret, _ := env.Lookup(envClientSecret)
	since, err := v.validate(secret, start)
	if err != nil {
		err = exitcode.Wrap(err, exitcode.Usage)
		log.Error("invalid configuration", "error", err.Error())
		finishReconcile(env, v, log, reconcile.Summary{}, 0, exitcode.Usage, err)
		return exitcode.Usage
	}

	sum, err := runReconcileWith(ctx, v, since, secret, env, log)
	code, err := resolve(ctx, err)
	finishReconcile(env, v, log, sum, time.Since(start), code, err)
	return code
}

func runReconcileWith(ctx context.Context, v reconcileVars, since time.Time, secret string, env Env, log *slog.Logger) (reconcile.Summary, error) {
	bench, err := v.newBenchling(secret, log)
	if err != nil {
		return reconcile.Summary{}, err
	}
	s3c, sfnc, err := awsClients(ctx, env)
	if err != nil {
		return reconcile.Summary{}, err
	}
	var outMu sync.Mutex
	report := func(a reconcile.Action) {
		if !v.dryRun {
			return // a real run logs each start; stdout keeps the summary
		}
		b, _ := json.Marshal(a)
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintln(env.Stdout, string(b))
	}
	prefix, _ := extract.CheckPrefix(v.prefix, false)
	interval := v.startInterval
	if interval == 0 {
		interval = -1 // the flag's 0 is reconcile's "no pacing"
	}
	return reconcile.Run(ctx, reconcile.Config{
		Lister:        bench,
		Store:         store.NewS3(s3c, store.S3Options{Bucket: v.registry, ListWhenDenied: true}),
		Packager:      v.packager(sfnc),
		Prefix:        prefix,
		Since:         since,
		Window:        v.window,
		MaxStart:      v.maxStart,
		StartInterval: interval,
		PageSize:      v.pageSize,
		DryRun:        v.dryRun,
		Report:        report,
		Logger:        log,
	})
}

// finishReconcile logs the summary, writes the metric line and prints
// the result line, in that order: the result is stdout's last line.
func finishReconcile(env Env, v reconcileVars, log *slog.Logger, sum reconcile.Summary, elapsed time.Duration, code int, err error) {
	res := reconcileResult{
		EntriesSeen: sum.EntriesSeen, Stale: sum.Stale, Started: sum.Started, Restarted: sum.Restarted, Skipped: sum.Skipped(),
		Failed: sum.Failed, GaveUp: sum.GaveUp,
		UpToDate: sum.UpToDate, AlreadyStarted: sum.AlreadyStarted, Deferred: sum.Deferred, WouldStart: sum.WouldStart,
		DryRun: v.dryRun, SinceFrom: sum.SinceFrom, StateRecorded: sum.StateRecorded,
		DurationMs: elapsed.Milliseconds(), ExitCode: code,
	}
	if !sum.Since.IsZero() {
		res.Since = sum.Since.Format(time.RFC3339)
	}
	attrs := []any{"entriesSeen", res.EntriesSeen, "stale", res.Stale, "started", res.Started, "restarted", res.Restarted,
		"skipped", res.Skipped, "failed", res.Failed, "gaveUp", res.GaveUp, "deferred", res.Deferred, "dryRun", res.DryRun, "since", res.Since, "stateRecorded", res.StateRecorded,
		"seconds", elapsed.Seconds(), "exitCode", code}
	if err != nil {
		res.Error, res.ErrorKind = err.Error(), exitcode.Name(code)
		log.Error("reconcile failed", append(attrs, "error", err.Error(), "kind", res.ErrorKind)...)
	} else {
		log.Info("reconcile done", attrs...)
	}
	writeReconcileMetrics(env, v, log, res, elapsed)
	b, _ := json.Marshal(res)
	fmt.Fprintln(env.Stdout, string(b))
}

// writeReconcileMetrics writes the run's EMF line to stderr (JSON logs and
// --metrics only), after every other line of the run. Failures counts
// the entries that failed or were given up on, and is at least 1 when the
// run itself failed (exit 1, 2 or 4) so that the alarm on it sees
// configuration faults too. A dry run writes none (it starts nothing: its
// StaleFound would trip alarms that watch what was left undone), nor does
// an interrupted run (a deploy, a stopped task: its counts are partial).
func writeReconcileMetrics(env Env, v reconcileVars, log *slog.Logger, res reconcileResult, elapsed time.Duration) {
	if !v.metrics || !jsonLogs(v.logFormat, env.Stderr) || v.dryRun || res.ExitCode >= 128 {
		return
	}
	failures := res.Failed + res.GaveUp
	if res.ExitCode != exitcode.OK {
		failures = max(failures, 1)
	}
	metrics := []emf.Metric{
		{Name: "EntriesSeen", Unit: emf.UnitCount, Value: float64(res.EntriesSeen)},
		{Name: "StaleFound", Unit: emf.UnitCount, Value: float64(res.Stale)},
		{Name: "Started", Unit: emf.UnitCount, Value: float64(res.Started)},
		{Name: "Restarted", Unit: emf.UnitCount, Value: float64(res.Restarted)},
		{Name: "Skipped", Unit: emf.UnitCount, Value: float64(res.Skipped)},
		{Name: "Failures", Unit: emf.UnitCount, Value: float64(failures)},
		{Name: "DurationSeconds", Unit: emf.UnitSeconds, Value: elapsed.Seconds()},
	}
	props := map[string]any{
		"outcome":  exitcode.Name(res.ExitCode),
		"exitCode": res.ExitCode,
		"dryRun":   res.DryRun,
		"since":    res.Since,
		"registry": v.registry,
		"prefix":   v.prefix,
	}
	if err := emf.Write(env.Stderr, emf.Namespace(env.Lookup), "reconcile", time.Now(), metrics, props); err != nil {
		log.Warn("metrics not written", "error", err.Error())
	}
}

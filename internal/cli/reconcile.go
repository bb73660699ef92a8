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
	"benchling-webhook/internal/quiltpkg"
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

// tenantOpts are tenantVars checked and normalised.
type tenantOpts struct {
	tenantVars
	// secret is the Benchling app's client secret (envClientSecret).
	secret string
	// pkgPrefix is --package-prefix as quiltpkg.CheckPrefix returns it.
	pkgPrefix string
	// tenantURL is --benchling-base-url without trailing slashes.
	tenantURL string
}

func (v *tenantVars) bind(fs *pflag.FlagSet) {
	fs.StringVar(&v.baseURL, flagBenchlingBaseURL, "", "The Benchling tenant's URL, https://TENANT.benchling.com. Required.")
	fs.StringVar(&v.clientID, flagBenchlingClientID, "", "The Benchling app's OAuth client id. Required; its secret comes from "+envClientSecret+" only.")
	fs.StringVar(&v.registry, flagRegistry, "", "The S3 bucket that holds the packages. Required.")
	fs.StringVar(&v.prefix, flagPackagePrefix, "", `The package name prefix, e.g. "benchling": entry E is packaged as <prefix>/E. Required.`)
	fs.StringVar(&v.machineARN, flagPackagingStateMachineARN, "", "The ARN of the packaging state machine the executions are started on. Required.")
}

// validate checks the shared settings and reads the secret from the
// environment; needMachine is false for a dry run.
func (o *tenantOpts) validate(env Env, needMachine bool) []error {
	v := &o.tenantVars
	o.secret, _ = env.Lookup(envClientSecret)
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
	if o.secret == "" {
		errs = append(errs, fmt.Errorf("the environment variable %s (the Benchling app's client secret) is required", envClientSecret))
	}
	if v.prefix != "" {
		p := strings.TrimRight(v.prefix, "/")
		if err := quiltpkg.CheckPackagePrefix(p); err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", flagPackagePrefix, err))
		}
		o.pkgPrefix = p
	}
	o.tenantURL = strings.TrimRight(v.baseURL, "/")
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
func (o *tenantOpts) newBenchling(log *slog.Logger) (*benchling.Client, error) {
	return benchling.New(benchling.Config{BaseURL: o.tenantURL, ClientID: o.clientID, ClientSecret: o.secret, Logger: log})
}

// packager returns the packaging starter for client.
func (o *tenantOpts) packager(client sfn.API) *reconcile.Packager {
	return &reconcile.Packager{Client: client, StateMachineARN: o.machineARN, Registry: o.registry,
		Prefix: o.pkgPrefix, BaseURL: o.tenantURL}
}

// awsClients loads the SDK configuration once (AWS_REGION, the credential
// chain, AWS_ENDPOINT_URL_S3 / _SFN, AWS_MAX_ATTEMPTS: [apiMaxAttempts]
// when unset) and returns the S3 and Step Functions clients.
func awsClients(ctx context.Context, env Env) (*s3.Client, sfn.API, error) {
	cfg, err := loadAWSConfig(ctx, env, apiMaxAttempts)
	if err != nil {
		return nil, nil, err
	}
	return s3ClientFromConfig(cfg), sfn.NewAPI(cfg), nil
}

var reconcileCommand = command{
	name:     "reconcile",
	synopsis: "job reconcile [flags]",
	about: "Packages what webhooks missed: lists the Benchling entries modified since the last successful\n" +
		"run (recorded in s3://REGISTRY/PACKAGE_PREFIX/.reconcile/state.json; --window on the first run),\n" +
		"and starts one packaging execution per entry whose package is missing, older than the entry, or\n" +
		"incomplete: its record (PACKAGE_PREFIX/.packaging/ENTRY/record.json, what the export wrote) is\n" +
		"missing or in progress, or a file it lists is missing or has another ETag (one listing per\n" +
		"package). A record in progress whose execution is RUNNING, or that is younger than\n" +
		"--in-progress-timeout, is being packaged and left alone. Multipart uploads below the prefix\n" +
		"older than --abort-uploads-after are aborted (s3:ListBucketMultipartUploads, s3:AbortMultipartUpload).\n" +
		"An execution is named after the entry and its modifiedAt, so no version is started twice while it\n" +
		"runs; one that ended without a current package (FAILED, TIMED_OUT, ABORTED, or SUCCEEDED and still\n" +
		"stale) is started again as NAME-r1 … NAME-r5 (\"restarted\"), then given up (\"gaveUp\", logged as an\n" +
		"error). The task role needs states:StartExecution and states:DescribeExecution.\n" +
		"At most --max-start executions per run, one StartExecution per --start-interval.\n" +
		"The worker's default command, run daily by the schedule and by `copilot job run`.\n" +
		"Details, metrics and exit codes: docs/operations.md, \"Reconcile\".\n",
	envFlag: flagBenchlingBaseURL,
	newOpts: func(fs *pflag.FlagSet, _ Env) opts {
		o := &reconcileOpts{}
		o.reconcileVars.bind(fs)
		return o
	},
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
	inProgress    time.Duration
	abortAfter    time.Duration
}

// reconcileOpts is reconcileVars checked and normalised.
type reconcileOpts struct {
	reconcileVars
	tenant tenantOpts
	// sinceTime is --since as a time; zero without it.
	sinceTime time.Time
}

func (v *reconcileVars) bind(fs *pflag.FlagSet) {
	v.tenantVars.bind(fs)
	fs.StringVar(&v.since, flagSince, "", "List the entries modified after this time instead of since the last successful run: RFC 3339, a date (UTC) or a duration back (48h).")
	fs.DurationVar(&v.window, flagWindow, reconcile.DefaultWindow, "The window of the first run, when no state is recorded yet.")
	fs.IntVar(&v.maxStart, flagMaxStart, reconcile.DefaultMaxStart, "Start at most this many packaging executions in one run, restarts included; the rest wait for the next run.")
	fs.DurationVar(&v.startInterval, flagStartInterval, reconcile.DefaultStartInterval, "Least time between two StartExecution calls (Benchling allows 60 requests per 30 s); 0 turns the pacing off.")
	fs.IntVar(&v.pageSize, flagPageSize, benchling.DefaultPageSize, "Entries per Benchling list request, 1 to 100.")
	fs.DurationVar(&v.inProgress, flagInProgressTimeout, reconcile.DefaultInProgressTimeout, "A package whose record has been in progress for less than this, and whose run Step Functions cannot report on (a job export by hand), is taken to be being packaged, and is not started again; an older one is a dead export, and is repaired. The default is the packaging state machine's timeout.")
	fs.DurationVar(&v.abortAfter, flagAbortUploadsAfter, reconcile.DefaultAbortUploadsAfter, "Abort the multipart uploads below the package prefix that were started longer ago than this (a killed export's, billed until aborted); 0 aborts none. Keep it above the packaging state machine's timeout (4h).")
	fs.BoolVar(&v.dryRun, flagDryRun, false, "Print one JSON line per entry it would start, and start and record nothing. Needs no state machine ARN.")
	fs.BoolVar(&v.metrics, flagMetrics, true, "When the run ends, write one CloudWatch embedded metric format line to stderr, with JSON logs only (docs/operations.md, \"Metrics\").")
}

// validate checks the configuration before any I/O and parses --since.
func (o *reconcileOpts) validate(s *session, _ []string) error {
	v := &o.reconcileVars
	o.tenant.tenantVars = v.tenantVars
	errs := o.tenant.validate(s.Env, !v.dryRun)
	since, err := parseSince(v.since, time.Now())
	if err != nil {
		errs = append(errs, fmt.Errorf("--%s: %w", flagSince, err))
	}
	o.sinceTime = since
	if v.window <= 0 {
		errs = append(errs, fmt.Errorf("--%s must be positive", flagWindow))
	}
	if v.maxStart < 1 {
		errs = append(errs, fmt.Errorf("--%s must be at least 1", flagMaxStart))
	}
	if v.startInterval < 0 {
		errs = append(errs, fmt.Errorf("--%s must not be negative", flagStartInterval))
	}
	if v.inProgress <= 0 {
		errs = append(errs, fmt.Errorf("--%s must be positive", flagInProgressTimeout))
	}
	if v.abortAfter < 0 {
		errs = append(errs, fmt.Errorf("--%s must not be negative", flagAbortUploadsAfter))
	}
	if v.pageSize < 1 || v.pageSize > benchling.MaxPageSize {
		errs = append(errs, fmt.Errorf("--%s must be between 1 and %d", flagPageSize, benchling.MaxPageSize))
	}
	return errors.Join(errs...)
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
	InvalidIDs     int    `json:"invalidIds,omitempty"` // listed ids that are not entry ids: skipped, exit 3
	OldUploads     int    `json:"oldUploads"`           // multipart uploads older than --abort-uploads-after
	UploadsAborted int    `json:"uploadsAborted"`       // of those, aborted (none with --dry-run)
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

func (o *reconcileOpts) invalid(s *session, err error) {
	o.finish(s, reconcile.Summary{}, 0, exitcode.Resolve(err), err)
}

func (o *reconcileOpts) run(ctx context.Context, s *session) int {
	start := time.Now()
	sum, err := o.reconcile(ctx, s)
	code, err := resolve(ctx, err)
	o.finish(s, sum, time.Since(start), code, err)
	return code
}

func (o *reconcileOpts) reconcile(ctx context.Context, s *session) (reconcile.Summary, error) {
	bench, err := o.tenant.newBenchling(s.log)
	if err != nil {
		return reconcile.Summary{}, err
	}
	s3c, sfnc, err := awsClients(ctx, s.Env)
	if err != nil {
		return reconcile.Summary{}, err
	}
	var outMu sync.Mutex
	report := func(a reconcile.Action) {
		if !o.dryRun {
			return // a real run logs each start; stdout keeps the summary
		}
		b, _ := json.Marshal(a)
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintln(s.Stdout, string(b))
	}
	interval := o.startInterval
	if interval == 0 {
		interval = -1 // the flag's 0 is reconcile's "no pacing"
	}
	abortAfter := o.abortAfter
	if abortAfter == 0 {
		abortAfter = -1 // the flag's 0 is reconcile's "abort none"
	}
	return reconcile.Run(ctx, reconcile.Config{
		Lister:            bench,
		Store:             store.NewS3(s3c, store.S3Options{Bucket: o.registry, ListWhenDenied: true}),
		Packager:          o.tenant.packager(sfnc),
		Prefix:            o.tenant.pkgPrefix,
		Since:             o.sinceTime,
		Window:            o.window,
		MaxStart:          o.maxStart,
		StartInterval:     interval,
		PageSize:          o.pageSize,
		DryRun:            o.dryRun,
		InProgressTimeout: o.inProgress,
		AbortUploadsAfter: abortAfter,
		Report:            report,
		Logger:            s.log,
	})
}

// finish logs the summary, writes the metric line and prints the result
// line, in that order: the result is stdout's last line.
func (o *reconcileOpts) finish(s *session, sum reconcile.Summary, elapsed time.Duration, code int, err error) {
	log := s.log
	res := reconcileResult{
		EntriesSeen: sum.EntriesSeen, Stale: sum.Stale, Started: sum.Started, Restarted: sum.Restarted, Skipped: sum.Skipped(),
		Failed: sum.Failed, GaveUp: sum.GaveUp,
		UpToDate: sum.UpToDate, AlreadyStarted: sum.AlreadyStarted, Deferred: sum.Deferred, WouldStart: sum.WouldStart,
		InvalidIDs: sum.InvalidIDs, OldUploads: sum.OldUploads, UploadsAborted: sum.UploadsAborted,
		DryRun: o.dryRun, SinceFrom: sum.SinceFrom, StateRecorded: sum.StateRecorded,
		DurationMs: elapsed.Milliseconds(), ExitCode: code,
	}
	if !sum.Since.IsZero() {
		res.Since = sum.Since.Format(time.RFC3339)
	}
	attrs := []any{"entriesSeen", res.EntriesSeen, "stale", res.Stale, "started", res.Started, "restarted", res.Restarted,
		"skipped", res.Skipped, "failed", res.Failed, "gaveUp", res.GaveUp, "deferred", res.Deferred, "oldUploads", res.OldUploads, "uploadsAborted", res.UploadsAborted, "dryRun", res.DryRun, "since", res.Since, "stateRecorded", res.StateRecorded,
		"seconds", elapsed.Seconds(), "exitCode", code}
	if err != nil {
		res.Error, res.ErrorKind = err.Error(), exitcode.Name(code)
		log.Error("reconcile failed", append(attrs, "error", err.Error(), "kind", res.ErrorKind)...)
	} else {
		log.Info("reconcile done", attrs...)
	}
	o.writeMetrics(s, res, elapsed)
	b, _ := json.Marshal(res)
	fmt.Fprintln(s.Stdout, string(b))
}

// writeMetrics writes the run's EMF line to stderr (JSON logs and
// --metrics only), after every other line of the run. Failures counts
// the entries that failed or were given up on, and is at least 1 when the
// run itself failed (exit 1, 2 or 4) so that the alarm on it sees
// configuration faults too. A dry run writes none (it starts nothing: its
// StaleFound would trip alarms that watch what was left undone), nor does
// an interrupted run (a deploy, a stopped task: its counts are partial).
func (o *reconcileOpts) writeMetrics(s *session, res reconcileResult, elapsed time.Duration) {
	if !o.metrics || !s.jsonLogs || o.dryRun || res.ExitCode >= 128 {
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
		{Name: "UploadsAborted", Unit: emf.UnitCount, Value: float64(res.UploadsAborted)},
		{Name: "DurationSeconds", Unit: emf.UnitSeconds, Value: elapsed.Seconds()},
	}
	props := map[string]any{
		"outcome":  exitcode.Name(res.ExitCode),
		"exitCode": res.ExitCode,
		"dryRun":   res.DryRun,
		"since":    res.Since,
		"registry": o.registry,
		"prefix":   o.prefix,
	}
	if err := emf.Write(s.Stderr, emf.Namespace(s.Lookup), "reconcile", time.Now(), metrics, props); err != nil {
		s.log.Warn("metrics not written", "error", err.Error())
	}
}

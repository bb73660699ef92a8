package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/pflag"

	"benchling-webhook/internal/benchling"
	"benchling-webhook/internal/emf"
	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/export"
	"benchling-webhook/internal/extract"
	"benchling-webhook/internal/quiltpkg"
	"benchling-webhook/internal/store"
	"benchling-webhook/internal/workflow"
)

var exportCommand = command{
	name:     "export",
	synopsis: "job export (--export-task-id ID | --download-url URL) (--registry BUCKET --package-name PREFIX | --local-dir DIR) [flags]",
	about: "Streams a Benchling export ZIP into S3 under <package-name>/, entry by entry.\n" +
		"With --export-task-id it asks Benchling for the export's download link itself (--benchling-base-url,\n" +
		"--benchling-client-id and " + envClientSecret + "), and again when the link has expired, so the link\n" +
		"(a read capability) is in no flag, environment override or log; the packaging machine runs it so.\n" +
		"It first waits for the export: polled at once, then after --export-poll-first, doubling up to\n" +
		"--export-poll-max, for at most --export-wait (Benchling's FAILED: exit 6; still running: exit 7).\n",
	envFlag: flagDownloadURL,
	newOpts: func(fs *pflag.FlagSet, _ Env) opts {
		o := &exportOpts{}
		o.exportVars.bind(fs)
		return o
	},
}

// exportVars holds the raw flag values of "job export".
type exportVars struct {
	downloadURL      string
	exportTaskID     string
	pollFirst        time.Duration
	pollMax          time.Duration
	exportWait       time.Duration
	benchlingURL     string
	clientID         string
	registry         string
	packageName      string
	localDir         string
	concurrency      int
	bufferMemory     byteSize
	partSize         byteSize
	partConcurrency  int
	maxBytes         byteSize
	maxEntries       int
	manifest         string
	progressInterval time.Duration
	readme           bool
	catalogHost      string
	quiltWorkflow    string
	metrics          bool
}

// exportOpts is exportVars checked and normalised, plus what "job export"
// depends on.
type exportOpts struct {
	exportVars
	// prefix is --package-name as quiltpkg.CheckPrefix returns it (also
	// after a failed validation, when the name itself was valid).
	prefix string
	// catalog is --catalog-host as quiltpkg.CheckCatalogHost returns it.
	catalog string
	// secret is the Benchling app's client secret (envClientSecret), with
	// --export-task-id.
	secret string
	// s3 is the client of the bucket store, for the workflow check's
	// schemas in other buckets; nil with --local-dir.
	s3 *s3.Client
	// rejected is why the bucket's Quilt workflow refused the package, for
	// the metrics line; nil otherwise.
	rejected *workflow.RejectedError
}

// minPartSize is S3's minimum multipart part size.
const minPartSize = 5 << 20

// bind binds the flags. Defaults are the extractor's (sized for a 1 vCPU
// / 2 GB Fargate task; see docs/performance.md); the long explanations
// are in the README's flag table and docs/export.md.
func (v *exportVars) bind(fs *pflag.FlagSet) {
	// An entry up to one part is a small one: --part-size is the
	// extractor's SmallEntry, and so shares its default.
	v.partSize, v.maxBytes, v.bufferMemory = extract.DefaultSmallEntry, extract.DefaultMaxTotalBytes, extract.DefaultBufferMemory
	fs.StringVar(&v.downloadURL, flagDownloadURL, "", "The export ZIP: an https URL (Benchling's presigned S3 link), or a local path or file:// URL. This or --export-task-id is required.")
	fs.StringVar(&v.exportTaskID, flagExportTaskID, "", "Benchling's export task id (POST /api/v2/exports' taskId): the link is read from GET /api/v2/tasks/{id}, and read again when it has expired. Needs --benchling-base-url, --benchling-client-id and "+envClientSecret+".")
	fs.DurationVar(&v.pollFirst, flagExportPollFirst, benchling.DefaultExportFirstPoll, "With --export-task-id: the task is polled at once, then after this wait, each later wait twice the last.")
	fs.DurationVar(&v.pollMax, flagExportPollMax, benchling.DefaultExportMaxPoll, "With --export-task-id: the longest wait between two polls (at least --"+flagExportPollFirst+").")
	fs.DurationVar(&v.exportWait, flagExportWait, benchling.DefaultExportWait, "With --export-task-id: how long the export may stay RUNNING; then exit 7 (FAILED: exit 6).")
	fs.StringVar(&v.benchlingURL, flagBenchlingBaseURL, "", "The Benchling tenant's URL, https://TENANT.benchling.com, with --export-task-id.")
	fs.StringVar(&v.clientID, flagBenchlingClientID, "", "The Benchling app's OAuth client id, with --export-task-id; its secret comes from "+envClientSecret+" only.")
	fs.StringVar(&v.registry, flagRegistry, "", "The S3 bucket that receives the files. Required unless --local-dir is given.")
	fs.StringVar(&v.packageName, flagPackageName, "", `The Quilt package name, <prefix>/<entry id> such as "benchling/etr_123" (prefix: letters, digits, '_' or '-'): entries land at <package-name>/<entry path>. Required with --registry; optional with --local-dir.`)
	fs.StringVar(&v.localDir, flagLocalDir, "", "Write the files below this folder instead of S3, at <local-dir>/<package-name>/<entry path>.")
	fs.IntVar(&v.concurrency, flagConcurrency, extract.DefaultConcurrency, "Entries uploaded at once; their memory is bounded by --buffer-memory.")
	fs.Var(&v.bufferMemory, flagBufferMemory, "Memory for the data of entries in flight: a small entry counts its size, a large one (part-concurrency+3) × part-size.")
	fs.Var(&v.partSize, flagPartSize, "Multipart part size, 5MiB to 5GiB; entries up to this size are checked in memory and sent in one request.")
	fs.IntVar(&v.partConcurrency, flagPartConcurrency, 1, "Parts of one large entry uploaded at once; each costs part-size of memory per large entry in flight.")
	fs.Var(&v.maxBytes, flagMaxBytes, "Refuse an archive whose entries declare more uncompressed bytes; also caps the temporary file used when Range is not supported.")
	fs.IntVar(&v.maxEntries, flagMaxEntries, extract.DefaultMaxEntries, "Refuse an archive with more entries (directories included); about 300 bytes of memory each.")
	fs.StringVar(&v.manifest, flagManifest, "", "Also write the stored files (key, size, CRC-32, ETag, version id) as JSON to this local path.")
	fs.DurationVar(&v.progressInterval, flagProgressInterval, 5*time.Second, "How often a progress line is logged (files, bytes, rate); 0 turns it off.")
	fs.BoolVar(&v.readme, flagReadme, false, "Also write <package-name>/README.md, rendered from <package-name>/entry.json and the exported files (docs/export.md, \"README.md\").")
	fs.StringVar(&v.catalogHost, flagCatalogHost, "", "The Quilt catalog's host name, e.g. catalog.example.com: with --readme and --registry the README links to the package there.")
	fs.StringVar(&v.quiltWorkflow, flagQuiltWorkflow, "", `The Quilt workflow the packaging message names ("" or "none": none). With --readme and --registry, when the bucket has .quilt/workflows/config.yml, entry.json is checked against that workflow (or the config's default_workflow) before anything is written; a package Quilt would refuse exits 5 (docs/deploy.md, "Quilt workflows").`)
	fs.BoolVar(&v.metrics, flagMetrics, true, "When the export ends, write one CloudWatch embedded metric format line to stderr, with JSON logs only (docs/operations.md, \"Metrics\").")
}

// validate checks the whole configuration before any I/O and normalises
// the package name and the catalog host.
func (o *exportOpts) validate(s *session, _ []string) error {
	v := &o.exportVars
	var errs []error
	switch {
	case v.downloadURL == "" && v.exportTaskID == "":
		errs = append(errs, fmt.Errorf("--%s (or %s) or --%s (or %s) is required", flagExportTaskID, envName(flagExportTaskID), flagDownloadURL, envName(flagDownloadURL)))
	case v.downloadURL != "" && v.exportTaskID != "":
		errs = append(errs, fmt.Errorf("give --%s or --%s, not both", flagExportTaskID, flagDownloadURL))
	case v.exportTaskID != "":
		var env Env
		if s != nil {
			env = s.Env
		}
		errs = append(errs, o.validateTask(env)...)
	}
	switch {
	case v.localDir == "" && v.registry == "":
		errs = append(errs, fmt.Errorf("--%s (or %s) is required, or --%s to write to a folder", flagRegistry, envName(flagRegistry), flagLocalDir))
	case v.localDir != "" && v.registry != "":
		errs = append(errs, fmt.Errorf("give --%s or --%s, not both", flagRegistry, flagLocalDir))
	case v.registry != "" && v.packageName == "":
		errs = append(errs, fmt.Errorf("--%s (or %s) is required with --%s", flagPackageName, envName(flagPackageName), flagRegistry))
	}
	// The package name is a Quilt package name, <prefix>/<entry id>
	// (quiltpkg.CheckPackageName): a bad prefix or shape is configuration
	// (exit 2), a bad entry id bad input (exit 3, when it is the only
	// problem). Only a --local-dir export may go without one (the folder's
	// root).
	if name := strings.TrimRight(v.packageName, "/"); name != "" {
		if _, err := quiltpkg.CheckPackageName(name); err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", flagPackageName, err))
		} else if p, err := quiltpkg.CheckPrefix(name, false); err != nil {
			errs = append(errs, err)
		} else {
			o.prefix = p
		}
	} else if v.packageName != "" && v.localDir == "" {
		errs = append(errs, fmt.Errorf("--%s %q is not a package name", flagPackageName, v.packageName))
	}
	if v.concurrency < 1 || v.concurrency > 64 {
		errs = append(errs, fmt.Errorf("--%s must be between 1 and 64", flagConcurrency))
	}
	if v.bufferMemory < minPartSize {
		errs = append(errs, fmt.Errorf("--%s must be at least 5MiB", flagBufferMemory))
	}
	if v.partConcurrency < 1 || v.partConcurrency > 16 {
		errs = append(errs, fmt.Errorf("--%s must be between 1 and 16", flagPartConcurrency))
	}
	if v.partSize < minPartSize || v.partSize > 5<<30 {
		errs = append(errs, fmt.Errorf("--%s must be between 5MiB and 5GiB (S3's part limits)", flagPartSize))
	}
	if v.maxBytes < 1 {
		errs = append(errs, fmt.Errorf("--%s must be positive", flagMaxBytes))
	}
	if v.maxEntries < 1 {
		errs = append(errs, fmt.Errorf("--%s must be positive", flagMaxEntries))
	}
	if v.progressInterval < 0 {
		errs = append(errs, fmt.Errorf("--%s must not be negative", flagProgressInterval))
	}
	if w := v.quiltWorkflow; w != "" && w != workflow.None && !workflow.ValidName(w) {
		errs = append(errs, fmt.Errorf("--%s %q: not a Quilt workflow name (letters, digits, '_' and '-', not starting with a digit, at most 64), or %q", flagQuiltWorkflow, w, workflow.None))
	}
	if v.catalogHost != "" {
		if h, err := quiltpkg.CheckCatalogHost(v.catalogHost); err != nil {
			errs = append(errs, fmt.Errorf("--%s must be a host name such as catalog.example.com, not %q", flagCatalogHost, v.catalogHost))
		} else {
			o.catalog = h
		}
	}
	return errors.Join(errs...)
}

// validateTask checks what --export-task-id needs: a task id of Benchling's
// shape, the tenant, the client id and the secret.
func (o *exportOpts) validateTask(env Env) []error {
	v := &o.exportVars
	var errs []error
	if err := benchling.CheckTaskID(v.exportTaskID); err != nil {
		errs = append(errs, exitcode.Wrap(fmt.Errorf("--%s: %w", flagExportTaskID, err), exitcode.BadInput))
	}
	if v.pollFirst <= 0 || v.exportWait <= 0 {
		errs = append(errs, fmt.Errorf("--%s and --%s must be positive", flagExportPollFirst, flagExportWait))
	}
	if v.pollMax < v.pollFirst {
		errs = append(errs, fmt.Errorf("--%s must be at least --%s", flagExportPollMax, flagExportPollFirst))
	}
	for _, f := range []struct{ val, flag string }{{v.benchlingURL, flagBenchlingBaseURL}, {v.clientID, flagBenchlingClientID}} {
		if f.val == "" {
			errs = append(errs, fmt.Errorf("--%s (or %s) is required with --%s", f.flag, envName(f.flag), flagExportTaskID))
		}
	}
	if env.Lookup != nil {
		o.secret, _ = env.Lookup(envClientSecret)
	}
	if o.secret == "" {
		errs = append(errs, fmt.Errorf("the environment variable %s (the Benchling app's client secret) is required with --%s", envClientSecret, flagExportTaskID))
	}
	return errs
}

// exportResult is the last stdout line. It keeps the old Lambda's shape,
// {"statusCode":200,"body":{"message":…,"numFiles":N}}, and adds fields.
type exportResult struct {
	StatusCode int        `json:"statusCode"`
	Body       exportBody `json:"body"`
}

type exportBody struct {
	Message      string `json:"message"`
	NumFiles     int    `json:"numFiles"`
	Bytes        int64  `json:"bytes"`
	DurationMs   int64  `json:"durationMs"`
	Destination  string `json:"destination,omitempty"`
	Registry     string `json:"registry,omitempty"`
	PackageName  string `json:"packageName,omitempty"`
	Dirs         int    `json:"dirs"`
	ArchiveBytes int64  `json:"archiveBytes"`
	Requests     int64  `json:"requests"`
	BytesFetched int64  `json:"bytesFetched"`
	Readme       string `json:"readme,omitempty"` // the README's key, with --readme
	ExitCode     int    `json:"exitCode"`
	Error        string `json:"error,omitempty"`
	ErrorKind    string `json:"errorKind,omitempty"`
}

func (o *exportOpts) invalid(s *session, err error) {
	code := exitcode.Resolve(err)
	o.writeMetrics(s, export.Result{}, 0, code)
	o.printResult(s, export.Result{}, 0, code, err)
}

func (o *exportOpts) run(ctx context.Context, s *session) int {
	start := time.Now()
	out, err := o.export(ctx, s)
	code, err := resolve(ctx, err)
	if code == exitcode.WorkflowRejected {
		errors.As(err, &o.rejected)
	}
	elapsed := time.Since(start)
	if err != nil {
		s.log.Error("export failed", "error", err.Error(), "exitCode", code, "kind", exitcode.Name(code))
	} else {
		s.log.Info("export done", "files", len(out.Files), "bytes", out.Bytes, "seconds", elapsed.Seconds(),
			"requests", out.Stats.Requests, "bytesFetched", out.Stats.BytesFetched)
	}
	o.writeMetrics(s, out, elapsed, code)
	o.printResult(s, out, elapsed, code, err)
	return code
}

// config is the export the options describe, writing to st.
func (o *exportOpts) config(st export.Store, progress *extract.Progress, s *session) export.Config {
	return export.Config{
		Source:      o.downloadURL,
		Store:       st,
		PackageName: o.prefix,
		Registry:    o.registry,
		LocalDir:    o.localDir,
		Readme:      o.readme,
		CatalogHost: o.catalog,
		Manifest:    o.manifest,
		Extract: extract.Options{
			Concurrency:      o.concurrency,
			BufferMemory:     int64(o.bufferMemory),
			LargeEntryMemory: o.largeEntryMemory(),
			MaxEntries:       o.maxEntries,
			MaxTotalBytes:    int64(o.maxBytes),
			SmallEntry:       int64(o.partSize),
			Progress:         progress,
		},
		Logger: s.log,
	}
}

// export opens the destination and runs the export, reporting progress.
func (o *exportOpts) export(ctx context.Context, s *session) (export.Result, error) {
	o.setMemoryLimit(s.Env)
	st, closeStore, err := o.newStore(ctx, s.Env)
	if err != nil {
		return export.Result{}, err
	}
	defer closeStore()
	var progress extract.Progress
	rep := startReporter(ctx, &progress, s.log, s.Stderr, o.progressInterval)
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			rep.stop()
		}
	}
	defer stop()
	cfg := o.config(st, &progress, s)
	cfg.Workflow = o.workflowChecker(st)
	cfg.Extracted = stop // the bar's last line comes before the README's log line
	if o.exportTaskID != "" {
		if cfg.Source, cfg.Refresh, err = o.taskLink(ctx, s); err != nil {
			return export.Result{}, err
		}
	}
	return export.Run(ctx, cfg)
}

// taskLink waits for the export task --export-task-id to finish (polled
// from --export-poll-first, doubling up to --export-poll-max, for at most
// --export-wait: FAILED is exit 6, still running exit 7), and returns its
// download link with the function that asks Benchling again (for an
// expired link). The packaging machine starts this task right after
// StartExport, so the task's start overlaps Benchling's export and the
// machine never sees the task's answer. The link goes to the download
// only: never to a log line or an error.
func (o *exportOpts) taskLink(ctx context.Context, s *session) (string, func(context.Context) (string, error), error) {
	client, err := benchling.New(benchling.Config{BaseURL: strings.TrimRight(o.benchlingURL, "/"), ClientID: o.clientID, ClientSecret: o.secret, Logger: s.log})
	if err != nil {
		return "", nil, err
	}
	start := time.Now()
	link, err := client.WaitExport(ctx, o.exportTaskID, benchling.ExportWait{First: o.pollFirst, Max: o.pollMax, Total: o.exportWait})
	if err != nil {
		return "", nil, fmt.Errorf("read export task %s: %w", o.exportTaskID, err)
	}
	s.log.Info("export finished; download link read from Benchling", "task", o.exportTaskID, "waitedSeconds", time.Since(start).Seconds())
	ask := func(ctx context.Context) (string, error) { return client.ExportDownloadURL(ctx, o.exportTaskID) }
	return link, ask, nil
}

// newStore opens the export's destination: a folder with --local-dir,
// else the bucket.
func (o *exportOpts) newStore(ctx context.Context, env Env) (export.Store, func(), error) {
	if o.localDir != "" {
		d, err := store.NewDir(o.localDir)
		if err != nil {
			return nil, nil, err
		}
		return d, func() { d.Close() }, nil
	}
	client, err := newS3Client(ctx, env, o.concurrency*o.partConcurrency)
	if err != nil {
		return nil, nil, err
	}
	o.s3 = client
	// The task role may list only below the package prefix: a missing
	// record or staged entry.json reads as denied without ListWhenDenied.
	opts := store.S3Options{Bucket: o.registry, PartSize: int64(o.partSize), PartConcurrency: o.partConcurrency, ListWhenDenied: true}
	if o.readme {
		opts.ContentType = export.ContentType(o.prefix)
	}
	return store.NewS3(client, opts), func() {}, nil
}

// workflowChecker is the Quilt workflow check of an S3 export with
// --readme (entry.json is the package's metadata); nil otherwise. The
// config and the schemas in the bucket are read through st; a schema in
// another bucket through a store of that bucket.
func (o *exportOpts) workflowChecker(st export.Store) *workflow.Checker {
	if o.localDir != "" || !o.readme || o.s3 == nil {
		return nil
	}
	return &workflow.Checker{
		Bucket:   o.registry,
		Workflow: o.quiltWorkflow,
		Get: func(ctx context.Context, bucket, key string, max int64) ([]byte, error) {
			if bucket == o.registry {
				return st.Get(ctx, key, max)
			}
			return store.NewS3(o.s3, store.S3Options{Bucket: bucket, ListWhenDenied: true}).Get(ctx, key, max)
		},
	}
}

// newS3Client loads the SDK configuration ([loadAWSConfig], with
// [s3MaxAttempts]) and keeps a connection per upload in flight: a new one
// costs a TLS handshake.
func newS3Client(ctx context.Context, env Env, conns int) (*s3.Client, error) {
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConnsPerHost = conns + 4
	})
	cfg, err := loadAWSConfig(ctx, env, s3MaxAttempts, config.WithHTTPClient(httpClient))
	if err != nil {
		return nil, err
	}
	return s3ClientFromConfig(cfg), nil
}

// largeEntryMemory is what one streamed entry holds in the S3 store: the
// transfer manager's pool of part-concurrency+1 parts, plus its first part,
// which it reads with io.ReadAll and so may grow to nearly twice part-size.
func (o *exportOpts) largeEntryMemory() int64 {
	return int64(o.partConcurrency+3) * int64(o.partSize)
}

// setMemoryLimit sets a soft memory limit from the flags (the buffer
// memory plus room for the runtime and the directory), unless GOMEMLIMIT is
// set, so the garbage collector keeps the footprint near what the flags
// promise.
func (o *exportOpts) setMemoryLimit(env Env) {
	if _, ok := env.Lookup("GOMEMLIMIT"); ok {
		return
	}
	debug.SetMemoryLimit(int64(o.bufferMemory) + 24<<20)
}

// writeMetrics writes the export's metrics as one EMF line to stderr,
// the task's log stream, where CloudWatch extracts them; stdout's last line
// stays the result. Nothing is written in text mode or with --metrics=false.
//
// The line bypasses the logger (whose JSON would add time, level and msg)
// but shares its writer, so it must not land inside a log line: it is
// written after the last log line, when the export's goroutines (the
// uploads, the progress reporter) have ended and nothing else writes to
// stderr. A failure to write it is logged; it does not change the outcome.
func (o *exportOpts) writeMetrics(s *session, res export.Result, elapsed time.Duration, code int) {
	if !o.metrics || !s.jsonLogs {
		return
	}
	succeeded := 0.0
	if code == exitcode.OK {
		succeeded = 1
	}
	metrics := []emf.Metric{
		{Name: "Files", Unit: emf.UnitCount, Value: float64(len(res.Files))},
		{Name: "Bytes", Unit: emf.UnitBytes, Value: float64(res.Bytes)},
		{Name: "DurationSeconds", Unit: emf.UnitSeconds, Value: elapsed.Seconds()},
		{Name: "Succeeded", Unit: emf.UnitCount, Value: succeeded},
		{Name: "Failed", Unit: emf.UnitCount, Value: 1 - succeeded},
	}
	props := map[string]any{
		"outcome":     exitcode.Name(code), // "ok", or the error kind: usage, bad-input, transient, workflow-rejected, internal, interrupted
		"exitCode":    code,
		"packageName": o.prefix,
		"registry":    o.registry,
	}
	if code == exitcode.WorkflowRejected {
		// Only on a refusal: the alarm counts these (docs/deploy.md,
		// "Quilt workflows"); why is a property, for Logs Insights.
		metrics = append(metrics, emf.Metric{Name: "QuiltWorkflowRejected", Unit: emf.UnitCount, Value: 1})
		if o.rejected != nil {
			props["workflowReason"], props["workflow"] = o.rejected.Reason, o.rejected.Workflow
		}
	}
	if err := emf.Write(s.Stderr, emf.Namespace(s.Lookup), "export", time.Now(), metrics, props); err != nil {
		s.log.Warn("metrics not written", "error", err.Error())
	}
}

func (o *exportOpts) printResult(s *session, res export.Result, elapsed time.Duration, code int, err error) {
	body := exportBody{
		NumFiles:     len(res.Files),
		Bytes:        res.Bytes,
		DurationMs:   elapsed.Milliseconds(),
		Registry:     o.registry,
		PackageName:  o.prefix,
		Dirs:         res.Dirs,
		ArchiveBytes: res.ArchiveSize,
		Requests:     res.Stats.Requests,
		BytesFetched: res.Stats.BytesFetched,
		Readme:       res.Readme,
		ExitCode:     code,
	}
	if o.registry != "" || o.localDir != "" {
		body.Destination = export.Config{PackageName: o.prefix, Registry: o.registry, LocalDir: o.localDir}.Destination()
	}
	out := exportResult{StatusCode: 200, Body: body}
	if err != nil {
		out.StatusCode = 500
		if code == exitcode.BadInput || code == exitcode.Usage {
			out.StatusCode = 400
		}
		out.Body.Message = "Export failed: " + err.Error()
		out.Body.Error = err.Error()
		out.Body.ErrorKind = exitcode.Name(code)
	} else {
		out.Body.Message = "Successfully processed " + strconv.Itoa(len(res.Files)) + " files"
	}
	b, _ := json.Marshal(out)
	fmt.Fprintln(s.Stdout, string(b))
}

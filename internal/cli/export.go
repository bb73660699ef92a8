package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/pflag"

	"benchling-webhook/internal/emf"
	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/extract"
	"benchling-webhook/internal/httprange"
	"benchling-webhook/internal/render"
	"benchling-webhook/internal/store"
)

// exportVars holds the raw flag values of "job export".
type exportVars struct {
	downloadURL      string
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
	logFormat        string
	logLevel         string
	readme           bool
	catalogHost      string
	metrics          bool
}

// Defaults sized for a 1 vCPU / 2 GB Fargate task; see docs/performance.md.
const (
	defaultConcurrency     = 16
	defaultBufferMemory    = 60 << 20
	defaultPartSize        = 5 << 20
	defaultPartConcurrency = 1
	defaultMaxBytes        = 50 << 30
	defaultMaxEntries      = 100_000
)

func newExportFlags(v *exportVars) *pflag.FlagSet {
	fs := pflag.NewFlagSet("export", pflag.ContinueOnError)
	fs.SortFlags = false
	v.partSize, v.maxBytes, v.bufferMemory = defaultPartSize, defaultMaxBytes, defaultBufferMemory
	fs.StringVar(&v.downloadURL, flagDownloadURL, "", "Where the export ZIP is: the https URL Benchling returns (a presigned S3 link), or a local path or file:// URL for trying it out. Required.")
	fs.StringVar(&v.registry, flagRegistry, "", "The S3 bucket that receives the files. Required unless --local-dir is given.")
	fs.StringVar(&v.packageName, flagPackageName, "", `The key prefix, e.g. "benchling/etr_123": every entry lands at <package-name>/<entry path>. Required with --registry.`)
	fs.StringVar(&v.localDir, flagLocalDir, "", "Write the files below this folder instead of S3 (at <local-dir>/<package-name>/<entry path>). For trying the job without AWS.")
	fs.IntVar(&v.concurrency, flagConcurrency, defaultConcurrency, "Number of entries uploaded at once. Many small entries in flight hide the latency of each request; their memory is bounded by --buffer-memory.")
	fs.Var(&v.bufferMemory, flagBufferMemory, "Memory for the data of entries in flight: a small entry counts its size, a large one (part-concurrency+3) × part-size, so the default allows 3 large entries (3 × 4 × 5 MiB) or many small ones at once. The process needs about 40 MiB more.")
	fs.Var(&v.partSize, flagPartSize, "Multipart part size, at least 5MiB. Entries up to this size are checked in memory and stored with one request; larger ones stream in parts of this size. Memory: see --buffer-memory.")
	fs.IntVar(&v.partConcurrency, flagPartConcurrency, defaultPartConcurrency, "Parts of one large entry uploaded at once. Each extra part costs part-size of memory per large entry in flight (see --buffer-memory).")
	fs.Var(&v.maxBytes, flagMaxBytes, "Refuse an archive whose entries declare more uncompressed bytes than this in total; also caps the temporary file used when the download server ignores Range requests.")
	fs.IntVar(&v.maxEntries, flagMaxEntries, defaultMaxEntries, "Refuse an archive with more entries than this (directories included). Memory: about 300 bytes per entry for the directory.")
	fs.StringVar(&v.manifest, flagManifest, "", "Also write the list of stored files (key, size, CRC-32, ETag, version) as JSON to this local path.")
	fs.DurationVar(&v.progressInterval, flagProgressInterval, 5*time.Second, "How often to log a progress line (files, bytes, rate); 0 turns it off.")
	fs.StringVar(&v.logFormat, flagLogFormat, "auto", "Log format on stderr: json (for CloudWatch), text, or auto (text on a terminal, else json).")
	fs.StringVar(&v.logLevel, flagLogLevel, "info", "Log level: debug, info, warn or error.")
	fs.BoolVar(&v.readme, flagReadme, false, "Also write <package-name>/README.md, rendered from <package-name>/entry.json and the list of exported files. "+
		"entry.json is read from the same bucket or folder before the download starts: the state machine must have written it (missing: exit 2; not an entry, or not the entry a package name ending in etr_… names: exit 3). "+
		"An archive with README.md, entry.json or input.json at its root is then refused (exit 3), and a failure to write the README deletes the exported files. "+
		"The result line gives its key as \"readme\"; numFiles and --manifest count the archive's files only. Off by default; README=true turns it on from the environment.")
	fs.StringVar(&v.catalogHost, flagCatalogHost, "", "The Quilt catalog's host name, e.g. catalog.example.com. With --readme and --registry, the README links to the package in the catalog, to its revise page and to QuiltSync.")
	fs.BoolVar(&v.metrics, flagMetrics, true, "When the export ends, write one CloudWatch embedded metric format line to stderr (the task's log stream), "+
		"which CloudWatch turns into the metrics Files, Bytes, DurationSeconds, Succeeded and Failed (namespace <app>/<env>/<workload>, dimension Command=export; docs/operations.md, \"Metrics\"). "+
		"Only with JSON logs (--log-format json, or auto off a terminal), never in text mode. On by default; --metrics=false or METRICS=false turns it off.")
	return fs
}

// validate checks the whole configuration before any I/O.
func (v *exportVars) validate() error {
	var errs []error
	if v.downloadURL == "" {
		errs = append(errs, fmt.Errorf("--%s (or %s) is required", flagDownloadURL, envName(flagDownloadURL)))
	}
	switch {
	case v.localDir == "" && v.registry == "":
		errs = append(errs, fmt.Errorf("--%s (or %s) is required, or --%s to write to a folder", flagRegistry, envName(flagRegistry), flagLocalDir))
	case v.localDir != "" && v.registry != "":
		errs = append(errs, fmt.Errorf("give --%s or --%s, not both", flagRegistry, flagLocalDir))
	case v.registry != "" && v.packageName == "":
		errs = append(errs, fmt.Errorf("--%s (or %s) is required with --%s", flagPackageName, envName(flagPackageName), flagRegistry))
	}
	if _, err := extract.CheckPrefix(v.packageName, v.localDir != ""); err != nil && (v.packageName != "" || v.registry != "") {
		errs = append(errs, err)
	}
	if v.concurrency < 1 || v.concurrency > 64 {
		errs = append(errs, fmt.Errorf("--%s must be between 1 and 64", flagConcurrency))
	}
	if v.bufferMemory < 5<<20 {
		errs = append(errs, fmt.Errorf("--%s must be at least 5MiB", flagBufferMemory))
	}
	if v.partConcurrency < 1 || v.partConcurrency > 16 {
		errs = append(errs, fmt.Errorf("--%s must be between 1 and 16", flagPartConcurrency))
	}
	if v.partSize < 5<<20 || v.partSize > 5<<30 {
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
	if v.catalogHost != "" {
		h := strings.TrimRight(strings.TrimPrefix(strings.TrimPrefix(v.catalogHost, "https://"), "http://"), "/")
		if h == "" || strings.ContainsAny(h, "/?#@\\ \t\r\n") {
			errs = append(errs, fmt.Errorf("--%s must be a host name such as catalog.example.com, not %q", flagCatalogHost, v.catalogHost))
		}
	}
	return errors.Join(errs...)
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

func runExport(ctx context.Context, args []string, env Env) int {
	var v exportVars
	fs := newExportFlags(&v)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: job export --download-url URL (--registry BUCKET --package-name PREFIX | --local-dir DIR) [flags]\n\n"+
			"Streams a Benchling export ZIP into S3 under <package-name>/, entry by entry.\n"+
			"Every flag can also come from the environment: --download-url from DOWNLOAD_URL, and so on.\n\nFlags:\n%s", fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitcode.OK
		}
		fmt.Fprintf(env.Stderr, "job export: %v\n", err)
		return exitcode.Usage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "job export: unexpected arguments %q\n", fs.Args())
		return exitcode.Usage
	}
	if err := applyEnv(fs, env.Lookup); err != nil {
		fmt.Fprintf(env.Stderr, "job export: %v\n", err)
		return exitcode.Usage
	}
	log, err := newLogger(env.Stderr, v.logFormat, v.logLevel)
	if err != nil {
		fmt.Fprintf(env.Stderr, "job export: %v\n", err)
		return exitcode.Usage
	}
	if err := v.validate(); err != nil {
		log.Error("invalid configuration", "error", err.Error())
		writeExportMetrics(env, v, log, exportOutcome{}, 0, exitcode.Usage)
		printResult(env, v, exportOutcome{}, time.Duration(0), exitcode.Usage, err)
		return exitcode.Usage
	}

	start := time.Now()
	out, err := export(ctx, v, env, log)
	code, err := resolve(ctx, err)
	elapsed := time.Since(start)
	if err != nil {
		log.Error("export failed", "error", err.Error(), "exitCode", code, "kind", exitcode.Name(code))
	} else {
		log.Info("export done", "files", len(out.res.Files), "bytes", out.res.Bytes, "seconds", elapsed.Seconds(),
			"requests", out.stats.Requests, "bytesFetched", out.stats.BytesFetched)
	}
	writeExportMetrics(env, v, log, out, elapsed, code)
	printResult(env, v, out, elapsed, code, err)
	return code
}

// writeExportMetrics writes the export's metrics as one EMF line to stderr,
// the task's log stream, where CloudWatch extracts them; stdout's last line
// stays the result. Nothing is written in text mode or with --metrics=false.
//
// The line bypasses the logger (whose JSON would add time, level and msg)
// but shares its writer, so it must not land inside a log line: it is
// written after the last log line, when the export's goroutines (the
// uploads, the progress reporter) have ended and nothing else writes to
// stderr. A failure to write it is logged; it does not change the outcome.
func writeExportMetrics(env Env, v exportVars, log *slog.Logger, o exportOutcome, elapsed time.Duration, code int) {
	if !v.metrics || !jsonLogs(v.logFormat, env.Stderr) {
		return
	}
	succeeded := 0.0
	if code == exitcode.OK {
		succeeded = 1
	}
	prefix, _ := extract.CheckPrefix(v.packageName, true)
	metrics := []emf.Metric{
		{Name: "Files", Unit: emf.UnitCount, Value: float64(len(o.res.Files))},
		{Name: "Bytes", Unit: emf.UnitBytes, Value: float64(o.res.Bytes)},
		{Name: "DurationSeconds", Unit: emf.UnitSeconds, Value: elapsed.Seconds()},
		{Name: "Succeeded", Unit: emf.UnitCount, Value: succeeded},
		{Name: "Failed", Unit: emf.UnitCount, Value: 1 - succeeded},
	}
	props := map[string]any{
		"outcome":     exitcode.Name(code), // "ok", or the error kind: usage, bad-input, transient, internal, interrupted
		"exitCode":    code,
		"packageName": prefix,
		"registry":    v.registry,
	}
	if err := emf.Write(env.Stderr, emf.Namespace(env.Lookup), "export", time.Now(), metrics, props); err != nil {
		log.Warn("metrics not written", "error", err.Error())
	}
}

// jsonLogs reports whether newLogger writes JSON for format on w: the
// metric line is for CloudWatch, never for a person at a terminal.
func jsonLogs(format string, w io.Writer) bool {
	switch format {
	case "json":
		return true
	case "auto", "":
		return !isTerminal(w)
	}
	return false
}

// exportOutcome is what an export did, for the result line.
type exportOutcome struct {
	res    extract.Result  // the files stored (none after a failure: they were deleted)
	stats  httprange.Stats // the download's requests and bytes
	size   int64           // the archive's size
	readme string          // the README's key, when --readme wrote it
}

// Names at the package root that the packaging state machine writes
// (entry.json, input.json) or that --readme writes (README.md).
const (
	readmeName  = "README.md"
	entryName   = "entry.json"
	inputName   = "input.json"
	readmeType  = "text/markdown; charset=utf-8"
	maxEntryLen = 32 << 20 // entry.json is metadata; Benchling's entries are far smaller
)

// destStore is where an export writes: a [store.S3] or [store.Dir], and
// how to release it.
type destStore struct {
	sink  metaSink
	close func()
}

// metaSink is the part of a store an export uses: the sink for the
// archive's files and README.md, which also reads entry.json back.
type metaSink interface {
	extract.Sink
	Get(ctx context.Context, key string, max int64) ([]byte, error)
}

var (
	_ metaSink = (*store.S3)(nil)
	_ metaSink = (*store.Dir)(nil)
)

func export(ctx context.Context, v exportVars, env Env, log *slog.Logger) (exportOutcome, error) {
	prefix, _ := extract.CheckPrefix(v.packageName, true)
	setMemoryLimit(v, env)

	dest, err := newDestStore(ctx, v, env, prefix)
	if err != nil {
		return exportOutcome{}, err
	}
	defer dest.close()

	log.Info("export starting", "source", httprange.Redact(v.downloadURL), "destination", destination(v, prefix))
	// entry.json comes first: when it is missing or broken, the export
	// fails before downloading or writing anything.
	var entry render.Entry
	if v.readme {
		if entry, err = readEntry(ctx, dest, v, prefix); err != nil {
			return exportOutcome{}, err
		}
	}
	src, err := httprange.Open(ctx, v.downloadURL, httprange.Options{
		MaxSpool: int64(v.maxBytes),
		Logger:   log,
	})
	if err != nil {
		return exportOutcome{}, fmt.Errorf("open download: %w", err)
	}
	defer src.Close()

	var progress extract.Progress
	rep := startReporter(ctx, &progress, log, env.Stderr, v.progressInterval)
	opts := extract.Options{
		Prefix:           prefix,
		Concurrency:      v.concurrency,
		BufferMemory:     int64(v.bufferMemory),
		LargeEntryMemory: largeEntryMemory(v),
		MaxEntries:       v.maxEntries,
		MaxTotalBytes:    int64(v.maxBytes),
		SmallEntry:       int64(v.partSize),
		Logger:           log,
		Progress:         &progress,
	}
	if v.readme {
		opts.Reserved = []string{readmeName, entryName, inputName}
	}
	res, err := extract.Run(ctx, src, dest.sink, opts)
	rep.stop()
	out := exportOutcome{stats: src.Stats(), size: src.Size()}
	if err != nil {
		return out, err
	}
	if v.readme {
		key, err := writeREADME(ctx, dest.sink, entry, res, v, prefix)
		if err != nil {
			// Undo the whole export, the way extract undoes a failed run.
			keys := make([]string, 0, len(res.Files)+1)
			for _, f := range res.Files {
				keys = append(keys, f.Key)
			}
			if key != "" {
				keys = append(keys, key) // its outcome may be unknown
			}
			_ = extract.Rollback(ctx, dest.sink, keys, opts)
			return out, err
		}
		log.Info("readme written", "key", key)
		out.readme = key
	}
	out.res = res
	if v.manifest != "" {
		if err := writeManifest(v.manifest, res.Files); err != nil {
			return out, err
		}
	}
	return out, nil
}

// newDestStore opens the export's destination: a folder with --local-dir,
// else the bucket.
func newDestStore(ctx context.Context, v exportVars, env Env, prefix string) (destStore, error) {
	if v.localDir != "" {
		d, err := store.NewDir(v.localDir)
		if err != nil {
			return destStore{}, err
		}
		return destStore{sink: d, close: func() { d.Close() }}, nil
	}
	client, err := newS3Client(ctx, env, v.concurrency*v.partConcurrency)
	if err != nil {
		return destStore{}, err
	}
	opts := store.S3Options{Bucket: v.registry, PartSize: int64(v.partSize), PartConcurrency: v.partConcurrency}
	if v.readme {
		// Served as Markdown; the archive cannot hold a file at that key
		// (README.md is a reserved name with --readme).
		readmeKey, _ := extract.Key(prefix, readmeName)
		opts.ContentType = func(key string) string {
			if key == readmeKey {
				return readmeType
			}
			return ""
		}
	}
	return destStore{sink: store.NewS3(client, opts), close: func() {}}, nil
}

// readEntry reads and decodes <prefix>/entry.json from the destination.
// Missing, it is a configuration error (exit 2): the state machine must
// write it before it runs the export. Not an entry, or not the entry the
// package is named after (a last path element "etr_…"), it is bad input
// (exit 3). Other read errors keep the store's codes: 2 for a configuration
// error (no such bucket, access denied), 4 for network and 5xx errors.
func readEntry(ctx context.Context, dest destStore, v exportVars, prefix string) (render.Entry, error) {
	key, err := extract.Key(prefix, entryName)
	if err != nil {
		return render.Entry{}, err
	}
	where := metaLocation(v, key)
	data, err := dest.sink.Get(ctx, key, maxEntryLen)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return render.Entry{}, exitcode.Wrap(fmt.Errorf("read %s: not found: with --%s the state machine must write %s before the export runs", where, flagReadme, entryName), exitcode.Usage)
	case errors.Is(err, store.ErrTooLarge):
		return render.Entry{}, fmt.Errorf("read %s: larger than %d MiB, too large for an entry: %w", where, maxEntryLen>>20, store.ErrTooLarge)
	case err != nil:
		return render.Entry{}, fmt.Errorf("read %s: %w", entryName, err)
	}
	entry, err := render.DecodeEntry(data)
	if err != nil {
		return render.Entry{}, fmt.Errorf("read %s: %w", where, err)
	}
	if id := path.Base(prefix); isEntryID(id) && entry.ID != id {
		return render.Entry{}, exitcode.Wrap(fmt.Errorf("read %s: entry.json names %s but the package is %s", where, entry.ID, prefix), exitcode.BadInput)
	}
	return entry, nil
}

// isEntryID reports whether s looks like a Benchling entry id, "etr_…".
func isEntryID(s string) bool {
	return len(s) > len("etr_") && strings.HasPrefix(s, "etr_")
}

// writeREADME renders README.md from the entry and the files the export
// stored, and writes it through sink like an entry (with its CRC-32). It
// returns the key it wrote, or tried to write.
func writeREADME(ctx context.Context, sink extract.Sink, entry render.Entry, res extract.Result, v exportVars, prefix string) (string, error) {
	key, err := extract.Key(prefix, readmeName)
	if err != nil {
		return "", err
	}
	files := make([]render.File, len(res.Files))
	for i, f := range res.Files {
		files[i] = render.File{Name: f.Name, Size: f.Size}
	}
	b, err := render.New().README(render.READMEData{
		Entry: entry, Files: files, PackageName: prefix, Registry: v.registry, CatalogHost: v.catalogHost,
	})
	if err != nil {
		return key, err
	}
	if _, err := sink.Put(ctx, key, bytes.NewReader(b), int64(len(b)), crc32.ChecksumIEEE(b)); err != nil {
		return key, fmt.Errorf("write %s: %w", readmeName, err)
	}
	return key, nil
}

// metaLocation names key in the destination for messages.
func metaLocation(v exportVars, key string) string {
	if v.localDir != "" {
		return filepath.Join(v.localDir, filepath.FromSlash(key))
	}
	return "s3://" + v.registry + "/" + key
}

func destination(v exportVars, prefix string) string {
	if v.localDir != "" {
		return filepath.Join(v.localDir, filepath.FromSlash(prefix))
	}
	return "s3://" + v.registry + "/" + prefix + "/"
}

// newS3Client loads the standard SDK configuration (AWS_REGION, the
// credential chain, AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, AWS_CA_BUNDLE,
// AWS_MAX_ATTEMPTS) and uses path-style addressing when an endpoint is set.
// Throttling and 5xx answers are retried by the SDK's standard retryer;
// without AWS_MAX_ATTEMPTS it makes up to 8 attempts.
func newS3Client(ctx context.Context, env Env, conns int) (*s3.Client, error) {
	// Keep a connection per upload in flight: a new one costs a TLS handshake.
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConnsPerHost = conns + 4
	})
	cfg, err := loadAWSConfig(ctx, env, 8, config.WithHTTPClient(httpClient))
	if err != nil {
		return nil, err
	}
	return s3ClientFromConfig(cfg), nil
}

// s3ClientFromConfig builds the S3 client of every command: path-style
// addressing when an endpoint is set (AWS_ENDPOINT_URL_S3 or
// AWS_ENDPOINT_URL: a local S3 server has no per-bucket host names).
func s3ClientFromConfig(cfg aws.Config) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if o.BaseEndpoint != nil || cfg.BaseEndpoint != nil {
			o.UsePathStyle = true
		}
	})
}

// largeEntryMemory is what one streamed entry holds in the S3 store: the
// transfer manager's pool of part-concurrency+1 parts, plus its first part,
// which it reads with io.ReadAll and so may grow to nearly twice part-size.
func largeEntryMemory(v exportVars) int64 {
	return int64(v.partConcurrency+3) * int64(v.partSize)
}

// setMemoryLimit sets a soft memory limit from the flags (the buffer
// memory plus room for the runtime and the directory), unless GOMEMLIMIT is
// set, so the garbage collector keeps the footprint near what the flags
// promise.
func setMemoryLimit(v exportVars, env Env) {
	if _, ok := env.Lookup("GOMEMLIMIT"); ok {
		return
	}
	debug.SetMemoryLimit(int64(v.bufferMemory) + 24<<20)
}

func writeManifest(path string, files []extract.Object) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return exitcode.Wrap(fmt.Errorf("write manifest: %w", err), exitcode.Usage)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write manifest: %w", cerr)
		}
	}()
	enc := json.NewEncoder(f)
	enc.SetIndent("", "  ")
	if err := enc.Encode(files); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}

func printResult(env Env, v exportVars, o exportOutcome, elapsed time.Duration, code int, err error) {
	prefix, _ := extract.CheckPrefix(v.packageName, true)
	res := o.res
	body := exportBody{
		NumFiles:     len(res.Files),
		Bytes:        res.Bytes,
		DurationMs:   elapsed.Milliseconds(),
		Registry:     v.registry,
		PackageName:  prefix,
		Dirs:         res.Dirs,
		ArchiveBytes: o.size,
		Requests:     o.stats.Requests,
		BytesFetched: o.stats.BytesFetched,
		Readme:       o.readme,
		ExitCode:     code,
	}
	if v.registry != "" || v.localDir != "" {
		body.Destination = destination(v, prefix)
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
	fmt.Fprintln(env.Stdout, string(b))
}

package cli

import (
	"fmt"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/spf13/pflag"

	"benchling-webhook/internal/exitcode"
)

// Long flag names, in one place. Each flag can also be set through an
// environment variable whose name is derived by [envName]: upper case,
// dashes to underscores (download-url → DOWNLOAD_URL). A flag on the command
// line wins over its variable.
const (
	flagDownloadURL      = "download-url"
	flagExportTaskID     = "export-task-id"    // job export: the link is asked of Benchling (with the tenant flags)
	flagExportPollFirst  = "export-poll-first" // job export --export-task-id: the wait before the second poll
	flagExportPollMax    = "export-poll-max"   // … the longest wait between two polls
	flagExportWait       = "export-wait"       // … how long the task may stay RUNNING (exit 7 after)
	flagRegistry         = "registry"
	flagPackageName      = "package-name"
	flagLocalDir         = "local-dir"
	flagConcurrency      = "concurrency"
	flagBufferMemory     = "buffer-memory"
	flagPartSize         = "part-size"
	flagPartConcurrency  = "part-concurrency"
	flagMaxBytes         = "max-bytes"
	flagMaxEntries       = "max-entries"
	flagManifest         = "manifest"
	flagProgressInterval = "progress-interval"
	flagLogFormat        = "log-format"
	flagLogLevel         = "log-level"
	flagReadme           = "readme"
	flagCatalogHost      = "catalog-host"
	flagQuiltWorkflow    = "quilt-workflow" // job export: the Quilt workflow the package is checked against (QUILT_WORKFLOW)
	flagMetrics          = "metrics"        // the CloudWatch EMF line of export, reconcile and verify (METRICS)
	flagStartInterval    = "start-interval" // paces job reconcile's StartExecution calls

	// job verify
	flagExecutionARN    = "execution-arn"
	flagRequest         = "request"
	flagAppDefinitionID = "app-definition-id"
	flagJWKSURL         = "jwks-url"
	flagAllowedIPs      = "allowed-ips"
	flagMaxBody         = "max-body"
	flagTolerance       = "tolerance"

	// job reconcile and job package: where packages go and how to reach
	// Benchling, from the addon's outputs (BENCHLING_BASE_URL, …).
	flagBenchlingBaseURL         = "benchling-base-url"
	flagBenchlingClientID        = "benchling-client-id"
	flagPackagePrefix            = "package-prefix"
	flagPackagingStateMachineARN = "packaging-state-machine-arn"

	// job reconcile
	flagSince    = "since"
	flagWindow   = "window"
	flagMaxStart = "max-start"
	flagPageSize = "page-size"
	flagDryRun   = "dry-run"
	// job reconcile: when a record in progress is a dead export, and
	// when a multipart upload is abandoned
	flagInProgressTimeout = "in-progress-timeout"
	flagAbortUploadsAfter = "abort-uploads-after"

	// job package
	flagWait         = "wait"
	flagTimeout      = "timeout"
	flagPollInterval = "poll-interval"
	flagRepackage    = "repackage"
)

// envName is the one rule from a flag name to its environment variable.
func envName(flag string) string {
	return strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets every flag that was not given on the command line from its
// environment variable, if that is set. lookup is os.LookupEnv in production.
// The value goes through the flag's own parser, so a boolean flag such as
// --readme takes what strconv.ParseBool does (README=true, 1, false, 0, …);
// anything else is a usage error.
func applyEnv(fs *pflag.FlagSet, lookup func(string) (string, bool)) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Name == "help" {
			return
		}
		name := envName(f.Name)
		v, ok := lookup(name)
		if !ok || v == "" {
			return
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = exitcode.Wrap(fmt.Errorf("invalid value %q for environment variable %s: %w", v, name, serr), exitcode.Usage)
		}
	})
	return err
}

// byteSize is a pflag.Value for sizes such as "8MiB", "5 MB" or "1073741824".
type byteSize int64

var _ pflag.Value = (*byteSize)(nil)

func (b *byteSize) String() string { return humanize.IBytes(uint64(*b)) }
func (b *byteSize) Type() string   { return "size" }
func (b *byteSize) Set(s string) error {
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return fmt.Errorf("not a size (try 8MiB or 50GiB): %w", err)
	}
	if n > 1<<62 {
		return fmt.Errorf("size %s is too large", s)
	}
	*b = byteSize(n)
	return nil
}

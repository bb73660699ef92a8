package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/emf/emftest"
	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/quiltpkg"
	"benchling-webhook/internal/reconcile"
	"benchling-webhook/internal/testkit/s3local"
	"benchling-webhook/internal/testkit/sandbox"
	"benchling-webhook/internal/testkit/sfnfake"
	"benchling-webhook/internal/testkit/syncbuf"
)

const testMachineARN = "arn:aws:states:us-east-1:123456789012:stateMachine:bw-test-worker-packaging"

// tenant is a Benchling sandbox and a fake Step Functions, with the
// environment the worker's task would get for them.
type tenant struct {
	bench *sandbox.Server
	sfn   *sfnfake.Server
	env   map[string]string
}

// newTenant starts the sandbox and the fake, and points the SDK's Step
// Functions client at the fake (the process environment, which the SDK
// reads), away from the developer's own AWS configuration.
func newTenant(t *testing.T) *tenant {
	t.Helper()
	b, err := sandbox.Start(sandbox.Options{ClientID: "client-id", ClientSecret: "the-client-secret", AppDefinitionID: "appdef_test"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	f := sfnfake.NewServer()
	t.Cleanup(f.Close)
	sfnProcessEnv(t, f.URL)
	return &tenant{bench: b, sfn: f, env: map[string]string{
		"BENCHLING_BASE_URL": b.URL(), "BENCHLING_CLIENT_ID": "client-id", "BENCHLING_CLIENT_SECRET": "the-client-secret",
		"REGISTRY": "registry", "PACKAGE_PREFIX": "benchling", "PACKAGING_STATE_MACHINE_ARN": testMachineARN,
		"AWS_MAX_ATTEMPTS": "1", "LOG_FORMAT": "json", "START_INTERVAL": "0", // job reconcile: no pacing
		"COPILOT_APPLICATION_NAME": "bw", "COPILOT_ENVIRONMENT_NAME": "test", "COPILOT_SERVICE_NAME": "worker",
	}}
}

// withS3 starts a local S3 server with the bucket "registry" and points
// the SDK's S3 client at it. It skips the test without versitygw.
func (tn *tenant) withS3(t *testing.T) (*s3local.Server, *s3.Client) {
	t.Helper()
	srv := startS3(t)
	t.Setenv("AWS_ENDPOINT_URL_SFN", tn.sfn.URL) // srv.Env does not name it
	require.NoError(t, srv.CreateBucket(t.Context(), "registry"))
	c, err := srv.Client(t.Context())
	require.NoError(t, err)
	return srv, c
}

// commandRun is one run of a command through Run.
type commandRun struct {
	code   int
	stdout string
	stderr string
	last   []byte // stdout's last line
}

func runCommand(ctx context.Context, t *testing.T, env map[string]string, args ...string) commandRun {
	t.Helper()
	var out, errb syncBuffer
	code := Run(ctx, args, Env{Stdout: &out, Stderr: &errb, Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	r := commandRun{code: code, stdout: out.String(), stderr: errb.String(), last: []byte(lines[len(lines)-1])}
	require.NotContains(t, r.stderr, "the-client-secret", "the secret is never logged")
	require.NotContains(t, r.stdout, "the-client-secret")
	require.NotContains(t, r.stderr, "sbx_", "tokens are never logged")
	return r
}

func (r commandRun) reconcileResult(t *testing.T) reconcileResult {
	t.Helper()
	var res reconcileResult
	require.NoError(t, json.Unmarshal(r.last, &res), "stdout's last line is the summary: %s", r.stdout)
	require.Equal(t, r.code, res.ExitCode)
	return res
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer = syncbuf.Buffer

func putObject(t *testing.T, c *s3.Client, key string, body []byte) {
	t.Helper()
	_, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("registry"), Key: aws.String(key), Body: bytes.NewReader(body)})
	require.NoError(t, err)
}

// putCompletePackage writes entry id's package as modified at at, as job
// export leaves it: a data file, entry.json, input.json, README.md, and
// the complete record of them with the ETags S3 returned.
func putCompletePackage(t *testing.T, c *s3.Client, id string, at time.Time) quiltpkg.Record {
	t.Helper()
	pkg := "benchling/" + id
	rec := quiltpkg.Record{Package: pkg, State: quiltpkg.RecordComplete, Run: "job export", StartedAt: at, EntryModifiedAt: at}
	for _, f := range []struct {
		name string
		body []byte
	}{{"data/plate.csv", []byte("a,b\n1,2\n")}, {"entry.json", entryJSON(id, at)}, {"input.json", []byte(`{"type":"reconcile"}`)}, {"README.md", []byte("# " + id + "\n")}} {
		out, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("registry"), Key: aws.String(pkg + "/" + f.name), Body: bytes.NewReader(f.body)})
		require.NoError(t, err)
		rec.Files = append(rec.Files, quiltpkg.RecordFile{Key: pkg + "/" + f.name, Size: int64(len(f.body)), CRC32: crc32.ChecksumIEEE(f.body), ETag: aws.ToString(out.ETag)})
	}
	b, err := rec.Encode()
	require.NoError(t, err)
	putObject(t, c, quiltpkg.ControlKey(pkg, quiltpkg.RecordName), b)
	return rec
}

func entryJSON(id string, at time.Time) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "name": "x", "modifiedAt": at.UTC().Format("2006-01-02T15:04:05.000000+00:00")})
	return b
}

// TestReconcileCommand runs job reconcile as the schedule does, against
// the sandbox, local S3 and the fake Step Functions.
func TestReconcileCommand(t *testing.T) {
	tn := newTenant(t)
	srv, s3c := tn.withS3(t)
	ctx := t.Context()
	now := time.Now().UTC()
	at := map[string]time.Time{}
	for i, id := range []string{"etr_a1", "etr_b2", "etr_c3", "etr_d4", "etr_e5"} {
		at[id] = now.Add(-time.Duration(10-i) * time.Hour).Truncate(time.Microsecond)
		tn.bench.AddEntry(id, sandbox.EntryOptions{ModifiedAt: at[id]})
	}
	putCompletePackage(t, s3c, "etr_b2", at["etr_b2"])                                                  // up to date
	putObject(t, s3c, "benchling/etr_c3/entry.json", entryJSON("etr_c3", at["etr_c3"].Add(-time.Hour))) // older
	putCompletePackage(t, s3c, "etr_d4", at["etr_d4"])                                                  // up to date
	// An upload a killed export left, and one below another prefix.
	for _, key := range []string{"benchling/etr_b2/data/big.bin", "other/etr_b2/big.bin"} {
		_, err := s3c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("registry"), Key: aws.String(key)})
		require.NoError(t, err)
	}

	// The first run: the default window, three pages of two; the upload
	// is younger than a day, and is left alone.
	r := runCommand(ctx, t, tn.env, "reconcile", "--page-size", "2")
	require.Equal(t, exitcode.OK, r.code, r.stderr)
	res := r.reconcileResult(t)
	require.Equal(t, reconcileResult{EntriesSeen: 5, Stale: 3, Started: 3, Skipped: 2, UpToDate: 2, SinceFrom: "default",
		StateRecorded: true}, zeroVolatile(res))
	ups, err := srv.PendingUploads(ctx, "registry")
	require.NoError(t, err)
	require.Len(t, ups, 2)
	require.Len(t, tn.sfn.Executions(), 3)
	names := map[string]bool{}
	for _, e := range tn.sfn.Executions() {
		names[e.Name] = true
	}
	require.True(t, names[reconcile.ExecutionName("etr_c3", at["etr_c3"], "")])
	require.Contains(t, r.stderr, `"msg":"reconcile done"`)
	require.Contains(t, r.stderr, `"msg":"packaging started"`)
	checkReconcileEMF(t, r.stderr, res)
	objs, err := srv.Objects(ctx, "registry", "benchling/.reconcile/")
	require.NoError(t, err)
	var st reconcile.State
	require.NoError(t, json.Unmarshal(objs["benchling/.reconcile/state.json"], &st))
	require.WithinDuration(t, now, st.LastSuccess, time.Minute)

	// A rerun over the same window starts nothing new, and with a short
	// --abort-uploads-after aborts the upload below the prefix (it counts
	// in the metrics), not the other.
	r = runCommand(ctx, t, tn.env, "reconcile", "--since", "720h", "--abort-uploads-after", "1ms")
	require.Equal(t, exitcode.OK, r.code, r.stderr)
	res = r.reconcileResult(t)
	require.Equal(t, 1, res.UploadsAborted)
	require.Equal(t, 1, res.OldUploads)
	checkReconcileEMF(t, r.stderr, res)
	ups, err = srv.PendingUploads(ctx, "registry")
	require.NoError(t, err)
	require.Len(t, ups, 1)
	require.Contains(t, ups[0], "other/etr_b2/big.bin")
	require.Equal(t, 3, res.AlreadyStarted)
	require.Equal(t, 5, res.Skipped)
	require.Zero(t, res.Started)
	require.Len(t, tn.sfn.Executions(), 3)

	// A dry run lists what it would start, and starts and records nothing.
	tn.bench.AddEntry("etr_f6", sandbox.EntryOptions{ModifiedAt: now})
	before, err := srv.Objects(ctx, "registry", "benchling/.reconcile/")
	require.NoError(t, err)
	env := copyEnv(tn.env)
	delete(env, "PACKAGING_STATE_MACHINE_ARN") // not needed for a dry run
	r = runCommand(ctx, t, env, "reconcile", "--dry-run")
	require.Equal(t, exitcode.OK, r.code, r.stderr)
	res = r.reconcileResult(t)
	require.True(t, res.DryRun)
	require.Equal(t, 1, res.WouldStart)
	require.Equal(t, "state", res.SinceFrom)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 2, "one line per entry, then the summary")
	require.Empty(t, emftest.Lines([]byte(r.stderr)), "a dry run writes no metrics: it starts nothing")
	var a reconcile.Action
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &a))
	require.Equal(t, reconcile.Action{Entity: "etr_f6", ModifiedAt: now.Truncate(time.Microsecond), Reason: reconcile.ReasonMissing,
		Detail: "no benchling/etr_f6/entry.json", Outcome: reconcile.OutcomeWouldStart, Execution: reconcile.ExecutionName("etr_f6", now, "")}, a)
	require.Len(t, tn.sfn.Executions(), 3)
	after, err := srv.Objects(ctx, "registry", "benchling/.reconcile/")
	require.NoError(t, err)
	require.Equal(t, before, after)

	// The next real run starts from the state: only the new entry.
	r = runCommand(ctx, t, tn.env, "reconcile")
	res = r.reconcileResult(t)
	require.Equal(t, exitcode.OK, r.code, r.stderr)
	require.Equal(t, 1, res.EntriesSeen)
	require.Equal(t, 1, res.Started)
}

// zeroVolatile clears the fields that depend on the clock.
func zeroVolatile(r reconcileResult) reconcileResult {
	r.Since, r.DurationMs = "", 0
	return r
}

func copyEnv(env map[string]string) map[string]string {
	out := make(map[string]string, len(env))
	for k, v := range env {
		out[k] = v
	}
	return out
}

// checkReconcileEMF checks the run's one EMF line against the format's
// schema and the result.
func checkReconcileEMF(t *testing.T, stderr string, res reconcileResult) {
	t.Helper()
	lines := emftest.Lines([]byte(stderr))
	require.Len(t, lines, 1, stderr)
	doc, err := emftest.Check(lines[0])
	require.NoError(t, err, string(lines[0]))
	require.Equal(t, "reconcile", doc["Command"])
	dir := doc["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)
	require.Equal(t, "bw/test/worker", dir["Namespace"])
	units := map[string]string{}
	for _, d := range dir["Metrics"].([]any) {
		d := d.(map[string]any)
		units[d["Name"].(string)] = d["Unit"].(string)
	}
	require.Equal(t, map[string]string{"EntriesSeen": "Count", "StaleFound": "Count", "Started": "Count", "Restarted": "Count", "Skipped": "Count",
		"Failures": "Count", "UploadsAborted": "Count", "DurationSeconds": "Seconds"}, units)
	for name, want := range map[string]int{"EntriesSeen": res.EntriesSeen, "StaleFound": res.Stale, "Started": res.Started, "Restarted": res.Restarted,
		"Skipped": res.Skipped, "Failures": res.Failed + res.GaveUp, "UploadsAborted": res.UploadsAborted} {
		require.Equal(t, json.Number(itoa(want)), doc[name], name)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestReconcileConfigErrors(t *testing.T) {
	tn := newTenant(t)
	tests := map[string]struct {
		edit func(map[string]string)
		args []string
		want []string
	}{
		"no secret": {func(e map[string]string) { delete(e, "BENCHLING_CLIENT_SECRET") }, nil, []string{"BENCHLING_CLIENT_SECRET"}},
		"nothing": {func(e map[string]string) {
			for _, k := range []string{"BENCHLING_BASE_URL", "BENCHLING_CLIENT_ID", "REGISTRY", "PACKAGE_PREFIX", "PACKAGING_STATE_MACHINE_ARN"} {
				delete(e, k)
			}
		}, nil, []string{"BENCHLING_BASE_URL", "BENCHLING_CLIENT_ID", "REGISTRY", "PACKAGE_PREFIX", "PACKAGING_STATE_MACHINE_ARN"}},
		"bad arn":         {func(e map[string]string) { e["PACKAGING_STATE_MACHINE_ARN"] = "arn:aws:states:x" }, nil, []string{"not a state machine ARN"}},
		"bad prefix":      {func(e map[string]string) { e["PACKAGE_PREFIX"] = "/abs" }, nil, []string{"--package-prefix"}},
		"two-part prefix": {func(e map[string]string) { e["PACKAGE_PREFIX"] = "lab/benchling" }, nil, []string{"--package-prefix", "one name part"}},
		"dotted prefix":   {func(e map[string]string) { e["PACKAGE_PREFIX"] = "bench.ling" }, nil, []string{"--package-prefix"}},
		"bad since":       {nil, []string{"--since", "yesterday"}, []string{"--since", "not an RFC 3339 time"}},
		"future since":    {nil, []string{"--since", "2999-01-01"}, []string{"in the future"}},
		"bad window":      {nil, []string{"--window", "0s"}, []string{"--window"}},
		"bad max start":   {func(e map[string]string) { e["MAX_START"] = "0" }, nil, []string{"--max-start"}},
		"bad interval":    {func(e map[string]string) { e["START_INTERVAL"] = "-1s" }, nil, []string{"--start-interval must not be negative"}},
		"bad page size":   {nil, []string{"--page-size", "500"}, []string{"--page-size"}},
		"plain http URL":  {func(e map[string]string) { e["BENCHLING_BASE_URL"] = "http://t.benchling.com" }, nil, []string{"must use https"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			env := copyEnv(tn.env)
			if tc.edit != nil {
				tc.edit(env)
			}
			r := runCommand(t.Context(), t, env, append([]string{"reconcile"}, tc.args...)...)
			require.Equal(t, exitcode.Usage, r.code, r.stderr)
			res := r.reconcileResult(t)
			for _, w := range tc.want {
				require.Contains(t, res.Error, w)
			}
			require.Equal(t, "usage", res.ErrorKind)
			require.Zero(t, tn.sfn.Calls("StartExecution"))
			lines := emftest.Lines([]byte(r.stderr))
			require.Len(t, lines, 1, "a failed run reports too")
			doc, err := emftest.Check(lines[0])
			require.NoError(t, err)
			require.Equal(t, json.Number("1"), doc["Failures"], "so the alarm sees it")
		})
	}

	r := runCommand(t.Context(), t, tn.env, "reconcile", "extra")
	require.Equal(t, exitcode.Usage, r.code)
	r = runCommand(t.Context(), t, tn.env, "reconcile", "--help")
	require.Equal(t, exitcode.OK, r.code)
	require.Contains(t, r.stderr, "BENCHLING_CLIENT_SECRET")
}

func TestReconcileNoSuchBucket(t *testing.T) {
	tn := newTenant(t)
	tn.withS3(t)
	tn.bench.AddEntry("etr_a1", sandbox.EntryOptions{})
	env := copyEnv(tn.env)
	env["REGISTRY"] = "no-such-bucket"
	r := runCommand(t.Context(), t, env, "reconcile")
	require.Equal(t, exitcode.Usage, r.code, r.stderr)
	res := r.reconcileResult(t)
	require.Contains(t, res.Error, "read state")
	require.Zero(t, tn.sfn.Calls("StartExecution"))
}

// TestReconcileSIGTERM: the signal arrives while a StartExecution is in
// flight: it finishes, nothing else starts, the state is not recorded,
// the summary is printed and the exit code is 143.
func TestReconcileSIGTERM(t *testing.T) {
	tn := newTenant(t)
	srv, _ := tn.withS3(t)
	for i, id := range []string{"etr_a1", "etr_b2", "etr_c3", "etr_d4", "etr_e5", "etr_f6"} {
		tn.bench.AddEntry(id, sandbox.EntryOptions{ModifiedAt: time.Now().Add(-time.Duration(10-i) * time.Hour)})
	}
	arrived, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	// Every start waits until the signal has been delivered.
	tn.sfn.BeforeStart = func(string) {
		once.Do(func() { close(arrived) })
		<-release
	}
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	go func() {
		<-arrived
		cancel(exitcode.Interrupted{Signal: syscall.SIGTERM})
		close(release)
	}()
	r := runCommand(ctx, t, tn.env, "reconcile")
	require.Equal(t, 143, r.code, r.stderr)
	res := r.reconcileResult(t)
	require.Equal(t, "interrupted", res.ErrorKind)
	require.False(t, res.StateRecorded)
	require.Zero(t, res.Failed)
	require.Equal(t, len(tn.sfn.Executions()), res.Started, "every start made is counted")
	require.Positive(t, res.Started, "the calls in flight finished")
	require.LessOrEqual(t, len(tn.sfn.Executions()), reconcile.DefaultConcurrency, "nothing started after the signal")
	objs, err := srv.Objects(t.Context(), "registry", "benchling/.reconcile/")
	require.NoError(t, err)
	require.Empty(t, objs)
	require.Empty(t, emftest.Lines([]byte(r.stderr)), "an interrupted run writes no metrics: it is not a failure, and its counts are partial")
}

func TestParseSince(t *testing.T) {
	now := time.Date(2025, 3, 7, 12, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		in   string
		want time.Time
		err  string
	}{
		"empty":    {"", time.Time{}, ""},
		"duration": {"48h", now.Add(-48 * time.Hour), ""},
		"rfc3339":  {"2025-03-01T10:00:00+01:00", time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC), ""},
		"nano":     {"2025-03-01T10:00:00.5Z", time.Date(2025, 3, 1, 10, 0, 0, 5e8, time.UTC), ""},
		"date":     {"2025-03-01", time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), ""},
		"negative": {"-1h", time.Time{}, "positive"},
		"future":   {"2025-03-08", time.Time{}, "future"},
		"garbage":  {"last week", time.Time{}, "not an RFC 3339 time"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseSince(tc.in, now)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestReconcileFlagBeatsEnv(t *testing.T) {
	var v reconcileVars
	fs := newReconcileFlags(&v)
	require.NoError(t, fs.Parse([]string{"--max-start", "7"}))
	env := map[string]string{"MAX_START": "9", "PAGE_SIZE": "3", "PACKAGE_PREFIX": "p", "DRY_RUN": "true"}
	require.NoError(t, applyEnv(fs, func(k string) (string, bool) { s, ok := env[k]; return s, ok }))
	require.Equal(t, 7, v.maxStart)
	require.Equal(t, 3, v.pageSize)
	require.Equal(t, "p", v.prefix)
	require.True(t, v.dryRun)
	require.Equal(t, reconcile.DefaultWindow, v.window)
	for flag, want := range map[string]string{flagBenchlingBaseURL: "BENCHLING_BASE_URL", flagBenchlingClientID: "BENCHLING_CLIENT_ID",
		flagPackagePrefix: "PACKAGE_PREFIX", flagPackagingStateMachineARN: "PACKAGING_STATE_MACHINE_ARN"} {
		require.Equal(t, want, envName(flag), "the addon's outputs set these")
	}
}

// TestReconcileIncompleteAndRestart: against local S3, a package that
// lost a recorded file is incomplete, and a version whose execution FAILED
// is started again as NAME-r1; both show in the result and the metrics.
func TestReconcileIncompleteAndRestart(t *testing.T) {
	tn := newTenant(t)
	_, s3c := tn.withS3(t)
	now := time.Now().UTC()
	at := map[string]time.Time{}
	for i, id := range []string{"etr_a1", "etr_b2", "etr_c3", "etr_d4"} {
		at[id] = now.Add(-time.Duration(10-i) * time.Hour).Truncate(time.Microsecond)
		tn.bench.AddEntry(id, sandbox.EntryOptions{ModifiedAt: at[id]})
	}
	putCompletePackage(t, s3c, "etr_a1", at["etr_a1"]) // complete
	putCompletePackage(t, s3c, "etr_b2", at["etr_b2"]) // and then a failed rerun deleted a file
	_, err := s3c.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String("registry"), Key: aws.String("benchling/etr_b2/data/plate.csv")})
	require.NoError(t, err)
	failed := tn.sfn.Add(testMachineARN, reconcile.ExecutionName("etr_c3", at["etr_c3"], ""), "FAILED")
	tn.sfn.Add(testMachineARN, reconcile.ExecutionName("etr_d4", at["etr_d4"], ""), "RUNNING")

	r := runCommand(t.Context(), t, tn.env, "reconcile", "--start-interval", "1ms")
	require.Equal(t, exitcode.OK, r.code, r.stderr)
	res := r.reconcileResult(t)
	require.Equal(t, reconcileResult{EntriesSeen: 4, Stale: 3, Started: 1, Restarted: 1, Skipped: 2, UpToDate: 1, AlreadyStarted: 1,
		SinceFrom: "default", StateRecorded: true}, zeroVolatile(res))
	require.Contains(t, r.stderr, `"detail":"missing 1 file (benchling/etr_b2/data/plate.csv) of the 4 recorded"`)
	require.Contains(t, r.stderr, `"msg":"packaging restarted"`)
	names := map[string]bool{}
	for _, e := range tn.sfn.Executions() {
		names[e.Name] = true
	}
	require.True(t, names[reconcile.ExecutionName("etr_b2", at["etr_b2"], "")])
	require.True(t, names[failed.Name+"-r1"])
	checkReconcileEMF(t, r.stderr, res)
	doc, err := emftest.Check(emftest.Lines([]byte(r.stderr))[0])
	require.NoError(t, err)
	require.Equal(t, json.Number("1"), doc["Restarted"])
}

func TestReconcileDefaults(t *testing.T) {
	var v reconcileVars
	fs := newReconcileFlags(&v)
	require.NoError(t, fs.Parse(nil))
	require.Equal(t, 50, v.maxStart)
	require.Equal(t, 2*time.Second, v.startInterval)
	usage := fs.FlagUsages()
	for _, want := range []string{"60 requests per 30 s", "0 turns the pacing off", `docs/operations.md, "Metrics"`} {
		require.Contains(t, usage, want)
	}
	// The flags' long explanations, and what each metric counts, are in
	// the operations guide the --metrics help points to.
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	require.NoError(t, err)
	doc := strings.Join(strings.Fields(string(b)), " ")
	for _, want := range []string{"except for `--dry-run`, which starts nothing, and an interrupted run",
		"`Skipped` | Count | `upToDate` + `alreadyStarted`", "`Restarted` | Count | executions started again as NAME-r1 to NAME-r5",
		"Benchling allows a tenant 60 requests per 30 s", "the state is not recorded until a run gets through them all"} {
		require.Contains(t, doc, want)
	}
}

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"benchling-webhook/internal/testkit/faultserver"
)

// BenchmarkExport times each implementation on each sample export, as a
// separate process, and reports per sub-benchmark:
//
//   - ns/op: the process's wall time (for ceiling it includes the untimed
//     loading and every trial; use MB/s);
//   - MB/s: uncompressed bytes (1 MB = 1e6 bytes) per second of the measured
//     time: the wall time for job and baseline, the fastest upload trial as
//     the process reports it for ceiling;
//   - peak-RSS-MiB: the process's maximum resident set size;
//   - requests and fetched/archive (job, baseline): requests the download
//     server answered and the bytes it sent over the archive's size.
//
// Every iteration is checked (object count and sizes in S3, a few
// HeadObjects) and its objects deleted, untimed. b.ReportAllocs is not
// called: the work happens in child processes, and the parent's
// allocations (the download server) say nothing about them.
func BenchmarkExport(b *testing.B) {
	h := state.get(b)
	for _, p := range presets {
		b.Run("export="+p.name, func(b *testing.B) {
			ex := h.export(b, p)
			for _, im := range impls {
				b.Run("impl="+im.name, func(b *testing.B) { h.bench(b, ex, im) })
			}
		})
	}
}

// impl is one way of moving an export into S3.
type impl struct {
	name string
	// download is set when the process reads the export from the HTTP
	// server (job, baseline); ceiling reads the local file.
	download bool
	// mayFail marks an implementation whose failure is a result, not a bug
	// in the benchmark (baseline: unbounded concurrency).
	mayFail bool
	// command builds the process; url is the download URL when download
	// is set.
	command func(ctx context.Context, h *harness, ex *export, url string) (*exec.Cmd, error)
	// parse reads the process's last stdout line into r.
	parse func(ex *export, line []byte, r *run) error
}

// impls are the implementations, in the order they run.
var impls = []impl{
	{name: "job", download: true, command: jobCommand, parse: parseJob},
	{name: roleBaseline, download: true, mayFail: true, command: baselineCommand, parse: parseRole},
	{name: roleCeiling, command: ceilingCommand, parse: parseRole},
}

// run is the outcome of one iteration.
type run struct {
	wall     time.Duration // the process's wall time
	measured time.Duration // what MB/s is computed from
	rssKiB   int64         // peak RSS
	cpu      time.Duration // the process's user+system CPU time
	s3CPU    time.Duration // versitygw's CPU time while the process ran
	selfCPU  time.Duration // this process's (download server's) CPU time meanwhile
	requests int64         // download server: requests answered
	fetched  int64         // download server: bytes sent
	note     string        // e.g. the ceiling's best setting
	err      error         // the process failed (only for mayFail impls)
}

// bench runs b.N iterations of im on ex and reports the metrics.
func (h *harness) bench(b *testing.B, ex *export, im impl) {
	var runs []run
	b.ResetTimer()
	for range b.N {
		r, err := h.iterate(b, ex, im)
		if err != nil {
			if !im.mayFail {
				b.Fatalf("%s on %s: %v", im.name, ex.name, err)
			}
			r.err = err
			state.results.add(ex.name, im.name, r)
			b.Skipf("RESULT: %s FAILED on %s after %s (peak RSS %.0f MiB), reported as a failure, not retried with less concurrency: %v",
				im.name, ex.name, r.wall.Round(time.Millisecond), float64(r.rssKiB)/1024, err)
		}
		runs = append(runs, r)
		state.results.add(ex.name, im.name, r)
	}

	var measured time.Duration
	var peak, requests, fetched int64
	for _, r := range runs {
		measured += r.measured
		peak = max(peak, r.rssKiB)
		requests += r.requests
		fetched += r.fetched
	}
	n := float64(len(runs))
	b.ReportMetric(float64(ex.manifest.TotalUncompressed)*n/measured.Seconds()/1e6, "MB/s")
	b.ReportMetric(float64(peak)/1024, "peak-RSS-MiB")
	if im.download {
		b.ReportMetric(float64(requests)/n, "requests")
		b.ReportMetric(float64(fetched)/n/float64(ex.manifest.ArchiveSize), "fetched/archive")
	}
}

// iterate runs one timed process, then (untimed) verifies what it stored
// and deletes it. The timer is running only around the process.
func (h *harness) iterate(b *testing.B, ex *export, im impl) (run, error) {
	b.StopTimer()
	ctx := context.Background()
	// A failed earlier iteration may have left objects behind.
	if err := clearPrefix(ctx, h.client, bucket, packageName); err != nil {
		b.Fatalf("bench: %v", err)
	}
	defer func() {
		if err := clearPrefix(ctx, h.client, bucket, packageName); err != nil {
			b.Fatalf("bench: %v", err)
		}
	}()

	var url string
	var dl *faultserver.Server
	if im.download {
		var err error
		if dl, err = faultserver.NewFile(ex.path, faultserver.Options{}); err != nil {
			b.Fatalf("bench: %v", err)
		}
		defer dl.Close()
		url = dl.FileURL()
	}
	runCtx, cancel := context.WithTimeout(ctx, childTimeout)
	defer cancel()
	cmd, err := im.command(runCtx, h, ex, url)
	if err != nil {
		b.Fatalf("bench: %v", err)
	}
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: 8 << 10}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if dir := os.Getenv(envLogs); dir != "" {
		f, err := createLog(dir, ex.name, im.name)
		if err != nil {
			b.Fatalf("bench: %v", err)
		}
		defer f.Close()
		cmd.Stderr = io.MultiWriter(stderr, f)
	}

	s3Before, selfBefore := procCPU(h.srvPID), selfCPU()
	b.StartTimer()
	start := time.Now()
	runErr := cmd.Run()
	wall := time.Since(start)
	b.StopTimer()

	r := run{wall: wall, measured: wall, s3CPU: procCPU(h.srvPID) - s3Before, selfCPU: selfCPU() - selfBefore}
	if ps := cmd.ProcessState; ps != nil {
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			r.rssKiB = ru.Maxrss // KiB on Linux
			r.cpu = rusageCPU(ru)
		}
	}
	if dl != nil {
		r.requests, r.fetched = dl.Requests(), dl.BytesSent()
	}
	line := lastLine(stdout.Bytes())
	if runErr != nil {
		if runCtx.Err() != nil {
			runErr = fmt.Errorf("%w (killed after %s)", runErr, childTimeout)
		}
		return r, fmt.Errorf("process failed: %w; last stdout line: %s; stderr tail:\n%s", runErr, line, stderr.String())
	}
	if err := im.parse(ex, line, &r); err != nil {
		return r, fmt.Errorf("%w; stderr tail:\n%s", err, stderr.String())
	}
	if err := verify(ctx, h.client, bucket, packageName, ex.manifest); err != nil {
		return r, err
	}
	return r, nil
}

// jobCommand runs the job binary with its default tuning.
func jobCommand(ctx context.Context, h *harness, _ *export, url string) (*exec.Cmd, error) {
	bin := os.Getenv(envJobBin)
	if bin == "" {
		return nil, fmt.Errorf("%s is not set: run `make bench`, or `make build` and set %s to the absolute path of bin/job", envJobBin, envJobBin)
	}
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return nil, fmt.Errorf("%s=%s is not an executable file (run `make build`): %v", envJobBin, bin, err)
	}
	args := []string{"export",
		"--download-url", url,
		"--registry", bucket,
		"--package-name", packageName,
		"--log-format", "json",
	}
	args = append(args, strings.Fields(os.Getenv(envJobFlags))...)
	cmd := h.command(ctx, bin, args...)
	cmd.Env = h.childEnv()
	return cmd, nil
}

// baselineCommand re-executes the test binary as the baseline.
func baselineCommand(ctx context.Context, h *harness, _ *export, url string) (*exec.Cmd, error) {
	return roleCommand(ctx, h, roleBaseline, "-url", url, "-bucket", bucket, "-prefix", packageName)
}

// ceilingCommand re-executes the test binary as the ceiling.
func ceilingCommand(ctx context.Context, h *harness, ex *export, _ string) (*exec.Cmd, error) {
	return roleCommand(ctx, h, roleCeiling, "-zip", ex.path, "-bucket", bucket, "-prefix", packageName,
		"-settings", envOr(envCeiling, defaultCeilingSettings))
}

// roleCommand re-executes the test binary as role.
func roleCommand(ctx context.Context, h *harness, role string, args ...string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the test binary: %w", err)
	}
	cmd := h.command(ctx, self, args...)
	cmd.Env = h.childEnv(envRole + "=" + role)
	return cmd, nil
}

// jobResult is the part of the job's last stdout line the benchmark reads.
type jobResult struct {
	StatusCode int `json:"statusCode"`
	Body       struct {
		Message      string `json:"message"`
		NumFiles     int    `json:"numFiles"`
		Bytes        int64  `json:"bytes"`
		DurationMs   int64  `json:"durationMs"`
		Requests     int64  `json:"requests"`
		BytesFetched int64  `json:"bytesFetched"`
	} `json:"body"`
}

// parseJob checks the job's result line against the manifest.
func parseJob(ex *export, line []byte, r *run) error {
	var res jobResult
	if err := json.Unmarshal(line, &res); err != nil {
		return fmt.Errorf("job: parse result line %q: %w", line, err)
	}
	m := ex.manifest
	if res.StatusCode != 200 || res.Body.NumFiles != len(m.Entries) || res.Body.Bytes != m.TotalUncompressed {
		return fmt.Errorf("job: result %s, want status 200, %d files, %d bytes", line, len(m.Entries), m.TotalUncompressed)
	}
	// The job's own duration leaves out process start-up and loading the
	// AWS configuration.
	r.note = fmt.Sprintf("job's own duration %.2fs", float64(res.Body.DurationMs)/1000)
	// The two byte counts differ by the few bytes of responses the job
	// closes early; only a real disagreement is worth a note.
	if res.Body.Requests != r.requests || absDiff(res.Body.BytesFetched, r.fetched) > 64<<10 {
		r.note += fmt.Sprintf("; job counted %d requests/%d bytes, server %d/%d", res.Body.Requests, res.Body.BytesFetched, r.requests, r.fetched)
	}
	return nil
}

// parseRole reads a baseline or ceiling result line.
func parseRole(ex *export, line []byte, r *run) error {
	var res roleResult
	if err := json.Unmarshal(line, &res); err != nil {
		return fmt.Errorf("parse result line %q: %w", line, err)
	}
	m := ex.manifest
	if res.Error != "" || res.Files != len(m.Entries) || res.Bytes != m.TotalUncompressed {
		return fmt.Errorf("result %s, want %d files, %d bytes", line, len(m.Entries), m.TotalUncompressed)
	}
	if len(res.Trials) > 0 {
		// Ceiling: MB/s comes from its own timing of the fastest trial.
		r.measured = time.Duration(res.DurationMs * float64(time.Millisecond))
		r.note = fmt.Sprintf("best %s; load %.1fs; trials", res.Best, res.LoadMs/1000)
		for _, t := range res.Trials {
			r.note += fmt.Sprintf(" %s=%.2fs", t.Setting, t.DurationMs/1000)
		}
	} else if res.DownloadMs > 0 {
		r.note = fmt.Sprintf("download %.2fs", res.DownloadMs/1000)
	}
	return nil
}

// createLog creates the next free <dir>/<export>-<impl>-<n>.log.
func createLog(dir, export, impl string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create log: %w", err)
	}
	for n := 1; ; n++ {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("%s-%s-%d.log", export, impl, n)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("create log: %w", err)
		}
		return f, nil
	}
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}

// lastLine returns the last non-empty line of out.
func lastLine(out []byte) []byte {
	out = bytes.TrimRight(out, "\n")
	if i := bytes.LastIndexByte(out, '\n'); i >= 0 {
		return out[i+1:]
	}
	return out
}

// tailBuffer keeps the last max bytes written to it. Not safe for
// concurrent use (exec copies stderr from one goroutine).
type tailBuffer struct {
	max int
	buf []byte
}

// Write appends p, dropping the oldest bytes beyond max.
func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// String returns the kept bytes.
func (t *tailBuffer) String() string { return string(t.buf) }

package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"benchling-webhook/internal/testkit/s3local"
	"benchling-webhook/internal/testkit/testenv"
)

// Environment variables the benchmarks read.
const (
	// envJobBin is the path of the job binary; `make bench` sets it.
	envJobBin = "BW_JOB_BIN"
	// envData overrides where the sample exports are cached
	// (default <repo>/out/bench-data).
	envData = "BW_BENCH_DATA"
	// envOut overrides where bench-summary.md is written (default <repo>/out).
	envOut = "BW_BENCH_OUT"
	// envCeiling overrides the ceiling's upload settings (see
	// defaultCeilingSettings).
	envCeiling = "BW_BENCH_CEILING"
	// envJobFlags adds flags to the job's command line, space-separated
	// (e.g. "--concurrency 8"), for tuning experiments; the default, empty,
	// runs the job with its default tuning, as the targets assume.
	envJobFlags = "BW_BENCH_JOB_FLAGS"
	// envKeepAlive set to "0" runs versitygw without HTTP keep-alive (a new
	// TLS connection per request, s3local.Options.NoKeepAlive); by default it
	// keeps connections open, as S3 itself does.
	envKeepAlive = "BW_BENCH_KEEPALIVE"
	// envS3Dir is the directory versitygw's temporary directory (bucket
	// root, TLS key pair, log) is made in. By default /dev/shm when it is a
	// tmpfs with room, else the system's temporary directory: on a disk
	// (here ext4 mounted with discard on a virtual disk) creating and
	// deleting thousands of files costs the server three to four times the
	// CPU and varies from run to run, which drowns what is measured.
	envS3Dir = "BW_BENCH_S3_DIR"
	// envPin, e.g. "0/1", pins each job, baseline and ceiling process to
	// the CPUs before the slash (taskset -c) and versitygw and the
	// benchmark process (the download server) to those after it, so the
	// process measured runs like a 1-vCPU task whose S3 is elsewhere. By
	// default nothing is pinned and all share every CPU.
	envPin = "BW_BENCH_PIN"
	// envLogs names a directory that receives each process's whole stderr
	// as <export>-<impl>-<n>.log (the job logs JSON lines there).
	envLogs = "BW_BENCH_LOGS"
)

const (
	// bucket receives every implementation's objects.
	bucket = "bench"
	// packageName is the key prefix, as in the runs.
	packageName = "benchling/etr_bench"
	// childTimeout bounds one job, baseline or ceiling process.
	childTimeout = 20 * time.Minute
)

// TestMain runs the baseline or ceiling process when the test binary was
// started as one (envRole set). Otherwise it runs the benchmarks and, if
// any ran, prints the summary and stops the S3 server. Nothing is set up
// unless a benchmark asks for it, so `go test ./...` costs nothing here.
func TestMain(m *testing.M) {
	if role := os.Getenv(envRole); role != "" {
		os.Exit(runRole(role, os.Args[1:]))
	}
	code := m.Run()
	if err := state.finish(os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// state is the run's shared harness and results. TestMain needs them after
// m.Run to print the summary, so they live at package level; benchmarks
// run one at a time, and only the results are written to after set-up.
var state suite

// suite holds what one run of the benchmarks shares.
type suite struct {
	once sync.Once
	h    *harness
	err  error

	results results
}

// harness is what every benchmark iteration needs: the S3 server, a client
// for verifying and clearing, and the sample exports.
type harness struct {
	srv     *s3local.Server
	srvPID  int // versitygw's PID, for its CPU time; 0 if unknown
	client  *s3.Client
	tmp     string // versitygw's directory, removed at the end
	dataDir string // cached sample exports
	outDir  string // bench-summary.md
	exports map[string]*export
	// keepAlive tells whether versitygw runs with HTTP keep-alive.
	keepAlive bool
	// pinChild and pinServer are the CPU lists of envPin; "" means unpinned.
	pinChild, pinServer string
}

// get returns the harness, setting it up on first use; it fails b if the
// set-up failed.
func (s *suite) get(b *testing.B) *harness {
	b.Helper()
	s.once.Do(func() { s.h, s.err = newHarness(b.Logf) })
	if s.err != nil {
		b.Fatalf("bench: set up: %v", s.err)
	}
	return s.h
}

// newHarness starts versitygw and creates the bucket. The harness is a
// local variable, not the named result: `return nil, err` sets the result
// to nil before the deferred clean-up runs, and the clean-up needs the
// harness to stop what was started.
func newHarness(logf func(string, ...any)) (_ *harness, err error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return nil, err
	}
	h := &harness{
		dataDir: envOr(envData, filepath.Join(root, "out", "bench-data")),
		outDir:  envOr(envOut, filepath.Join(root, "out")),
		exports: make(map[string]*export),
	}
	// Check the settings before starting anything.
	pinChild, pinServer, err := parsePin(os.Getenv(envPin))
	if err != nil {
		return nil, err
	}
	bin, err := s3local.FindBinary()
	if err != nil {
		return nil, fmt.Errorf("versitygw: %w", err)
	}
	if h.tmp, err = os.MkdirTemp(s3Dir(), "bw-bench-s3-"); err != nil {
		return nil, fmt.Errorf("versitygw directory: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, h.close())
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h.keepAlive = os.Getenv(envKeepAlive) != "0"
	if h.srv, err = s3local.Start(ctx, s3local.Options{Binary: bin, Dir: h.tmp, NoKeepAlive: !h.keepAlive}); err != nil {
		return nil, err
	}
	if h.client, err = h.srv.Client(ctx); err != nil {
		return nil, err
	}
	if err := h.srv.CreateBucket(ctx, bucket); err != nil {
		return nil, err
	}
	h.srvPID = childPID("versitygw")
	if pinChild != "" {
		if err := h.pin(pinChild, pinServer); err != nil {
			return nil, err
		}
	}
	logf("bench: versitygw at %s (pid %d, keep-alive %v, in %s), data in %s", h.srv.Endpoint, h.srvPID, h.keepAlive, h.tmp, h.dataDir)
	return h, nil
}

// s3DirMinFree is the free space s3Dir wants in /dev/shm: the huge export
// (2 GiB) stored once, with room to spare.
const s3DirMinFree = 6 << 30

// s3Dir returns where versitygw's directory goes: $BW_BENCH_S3_DIR, else
// /dev/shm if it has s3DirMinFree bytes free, else "" (the system default).
func s3Dir() string {
	if d := os.Getenv(envS3Dir); d != "" {
		return d
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &st); err == nil && int64(st.Bavail)*st.Bsize >= s3DirMinFree {
		return "/dev/shm"
	}
	return ""
}

// parsePin splits envPin's value, "<child cpus>/<server cpus>"; "" means
// unpinned.
func parsePin(spec string) (child, server string, err error) {
	if spec == "" {
		return "", "", nil
	}
	child, server, ok := strings.Cut(spec, "/")
	if !ok || child == "" || server == "" {
		return "", "", fmt.Errorf("%s=%q: want <child cpus>/<server cpus>, e.g. 0/1", envPin, spec)
	}
	return child, server, nil
}

// pin applies envPin: versitygw and this process go to the server CPUs;
// command wraps each measured process in taskset for the child CPUs.
func (h *harness) pin(child, server string) error {
	if h.srvPID == 0 {
		return fmt.Errorf("%s: cannot find versitygw's PID to pin it", envPin)
	}
	for _, pid := range []int{h.srvPID, os.Getpid()} {
		out, err := exec.Command("taskset", "-a", "-pc", server, strconv.Itoa(pid)).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: taskset -a -pc %s %d: %w: %s", envPin, server, pid, err, out)
		}
	}
	h.pinChild, h.pinServer = child, server
	return nil
}

// command returns the command for a measured process, pinned to the child
// CPUs when envPin is set (taskset execs the program, so the rusage read
// after Wait is the program's own).
func (h *harness) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if h.pinChild != "" {
		return exec.CommandContext(ctx, "taskset", append([]string{"-c", h.pinChild, name}, args...)...)
	}
	return exec.CommandContext(ctx, name, args...)
}

// export returns the sample export for p, generating it on first use.
func (h *harness) export(b *testing.B, p preset) *export {
	b.Helper()
	if ex, ok := h.exports[p.name]; ok {
		return ex
	}
	ex, err := loadExport(h.dataDir, p, b.Logf)
	if err != nil {
		b.Fatalf("bench: %v", err)
	}
	h.exports[p.name] = ex
	return ex
}

// childEnv is the environment of a job, baseline or ceiling process: ours
// without AWS settings (GOGC, GOMEMLIMIT, GODEBUG and so on pass through),
// plus the S3 server's and extra.
func (h *harness) childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, envRole+"=") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, h.srv.Env()...)
	return append(env, extra...)
}

// close stops the server and removes its directory.
func (h *harness) close() error {
	var errs []error
	if h.srv != nil {
		errs = append(errs, h.srv.Close())
	}
	if h.tmp != "" {
		errs = append(errs, os.RemoveAll(h.tmp))
	}
	return errors.Join(errs...)
}

// finish prints and writes the summary, if any benchmark ran, and stops
// the server.
func (s *suite) finish(w *os.File) error {
	if s.h == nil {
		return nil
	}
	var errs []error
	if !s.results.empty() {
		md := s.results.markdown(s.h)
		fmt.Fprintf(w, "\n%s", md)
		path := filepath.Join(s.h.outDir, "bench-summary.md")
		if err := os.MkdirAll(s.h.outDir, 0o755); err != nil {
			errs = append(errs, fmt.Errorf("write summary: %w", err))
		} else if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("write summary: %w", err))
		} else {
			fmt.Fprintf(w, "\nSummary written to %s\n", path)
		}
	}
	errs = append(errs, s.h.close())
	return errors.Join(errs...)
}

// envOr returns the value of the environment variable key, or def.
func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

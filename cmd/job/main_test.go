package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/testkit/faultserver"
	"benchling-webhook/internal/testkit/s3local"
	"benchling-webhook/internal/testkit/samplezip"
	"benchling-webhook/internal/testkit/zipcorpus"
)

// jobBin is the job binary built from this package for the tests.
var jobBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "jobbin")
	if err != nil {
		panic(err)
	}
	jobBin = filepath.Join(dir, "job")
	build := exec.Command("go", "build", "-o", jobBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		panic("build job: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	StatusCode int `json:"statusCode"`
	Body       struct {
		Message      string `json:"message"`
		NumFiles     int    `json:"numFiles"`
		Bytes        int64  `json:"bytes"`
		DurationMs   int64  `json:"durationMs"`
		ExitCode     int    `json:"exitCode"`
		Error        string `json:"error"`
		ErrorKind    string `json:"errorKind"`
		Requests     int64  `json:"requests"`
		BytesFetched int64  `json:"bytesFetched"`
	} `json:"body"`
}

type run struct {
	code   int
	stdout string
	stderr string
	result result
}

// baseEnv keeps the developer's AWS settings and the job's variables out.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") || k == "DOWNLOAD_URL" || k == "EXPORT_TASK_ID" || k == "REGISTRY" || k == "PACKAGE_NAME" || k == "LOCAL_DIR" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "AWS_EC2_METADATA_DISABLED=true")
}

func runJob(t *testing.T, env []string, args ...string) run {
	t.Helper()
	cmd := exec.Command(jobBin, args...)
	cmd.Env = append(baseEnv(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := run{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	r.result = lastResult(t, r.stdout)
	return r
}

func lastResult(t *testing.T, stdout string) result {
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var res result
	if len(lines) > 0 && strings.HasPrefix(lines[len(lines)-1], "{") {
		require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &res), stdout)
	}
	return res
}

func sample(t *testing.T, spec samplezip.Spec) (string, samplezip.Manifest) {
	p := filepath.Join(t.TempDir(), "export.zip")
	m, err := samplezip.WriteFile(p, spec)
	require.NoError(t, err)
	return p, m
}

func TestUsage(t *testing.T) {
	tests := map[string]struct {
		args []string
		env  []string
		code int
		want string
	}{
		"no command":        {nil, nil, 2, "Usage"},
		"unknown command":   {[]string{"nope"}, nil, 2, "unknown command"},
		"help":              {[]string{"help"}, nil, 0, ""},
		"export help":       {[]string{"export", "--help"}, nil, 0, "--download-url"},
		"missing url":       {[]string{"export", "--local-dir", "x"}, nil, 2, "--download-url (or DOWNLOAD_URL) is required"},
		"missing bucket":    {[]string{"export", "--download-url", "x.zip"}, nil, 2, "--registry (or REGISTRY) is required"},
		"missing package":   {[]string{"export", "--download-url", "x.zip", "--registry", "b"}, nil, 2, "--package-name"},
		"bad prefix":        {[]string{"export", "--download-url", "x.zip", "--registry", "b", "--package-name", "../x"}, nil, 2, "must be one name part"},
		"small part":        {[]string{"export", "--download-url", "x.zip", "--local-dir", "d", "--part-size", "1MiB"}, nil, 2, "--part-size"},
		"bad size":          {[]string{"export", "--part-size", "lots"}, nil, 2, "not a size"},
		"unknown flag":      {[]string{"export", "--nope"}, nil, 2, "unknown flag"},
		"bad env":           {[]string{"export"}, []string{"CONCURRENCY=many"}, 2, "environment variable CONCURRENCY"},
		"both destinations": {[]string{"export", "--download-url", "x.zip", "--local-dir", "d", "--registry", "b", "--package-name", "p"}, nil, 2, "not both"},
		"missing file":      {[]string{"export", "--download-url", "/nonexistent/x.zip", "--local-dir", "d"}, nil, 2, "no such file"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := runJob(t, tc.env, tc.args...)
			require.Equal(t, tc.code, r.code, "stderr: %s", r.stderr)
			require.Contains(t, r.stdout+r.stderr, tc.want)
		})
	}
}

func TestExportLocal(t *testing.T) {
	zipPath, m := sample(t, samplezip.Small())
	out := t.TempDir()
	r := runJob(t, nil, "export", "--download-url", "file://"+zipPath, "--local-dir", out, "--package-name", "benchling/etr_1",
		"--manifest", filepath.Join(out, "manifest.json"))
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, 200, r.result.StatusCode)
	require.Equal(t, len(m.Entries), r.result.Body.NumFiles)
	require.Equal(t, "Successfully processed 40 files", r.result.Body.Message)
	require.Equal(t, m.TotalUncompressed, r.result.Body.Bytes)
	for _, e := range m.Entries {
		_, err := os.Stat(filepath.Join(out, "benchling", "etr_1", filepath.FromSlash(e.Name)))
		require.NoError(t, err, e.Name)
	}
	var manifest []map[string]any
	b, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &manifest))
	require.Len(t, manifest, len(m.Entries))
	// Logs are JSON lines on stderr when it is not a terminal.
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		require.True(t, json.Valid([]byte(line)), line)
	}
}

// TestEnvAndFlags: every flag has its environment variable, and a flag
// given on the command line wins.
func TestEnvAndFlags(t *testing.T) {
	zipPath, _ := sample(t, samplezip.Small())
	out := t.TempDir()
	r := runJob(t, []string{"DOWNLOAD_URL=" + zipPath, "LOCAL_DIR=" + out, "PACKAGE_NAME=env/etr_env"}, "export", "--package-name", "flag/etr_flag")
	require.Equal(t, 0, r.code, r.stderr)
	_, err := os.Stat(filepath.Join(out, "flag", "etr_flag"))
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(out, "env"))
	require.True(t, os.IsNotExist(err))
}

func TestHostileExitCodes(t *testing.T) {
	for _, tc := range zipcorpus.Cases() {
		if tc.Want == "" {
			continue
		}
		t.Run(tc.Name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "x.zip")
			require.NoError(t, os.WriteFile(p, tc.Build(), 0o644))
			out := t.TempDir()
			r := runJob(t, nil, "export", "--download-url", p, "--local-dir", out, "--package-name", "benchling/etr_1")
			require.Equal(t, 3, r.code, r.stderr)
			require.Equal(t, 400, r.result.StatusCode)
			require.Equal(t, "bad-input", r.result.Body.ErrorKind)
			require.NotContains(t, r.result.Body.Error, "\n")
			ents, err := os.ReadDir(out)
			require.NoError(t, err)
			if len(ents) > 0 { // the package folder may exist, but holds no file
				var files []string
				filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
					if err == nil && !d.IsDir() {
						files = append(files, p)
					}
					return nil
				})
				require.Empty(t, files)
			}
		})
	}
}

func TestDownloadErrors(t *testing.T) {
	zipPath, _ := sample(t, samplezip.Small())
	data, err := os.ReadFile(zipPath)
	require.NoError(t, err)
	tests := map[string]struct {
		opts faultserver.Options
		code int
		want string
	}{
		"expired link": {faultserver.Options{Status: 403}, 3, "may have expired"},
		"not found":    {faultserver.Options{Status: 404}, 3, "may have expired"},
		"server down":  {faultserver.Options{Status: 503}, 4, "after retries"},
		"flaky":        {faultserver.Options{FailFirst: 2, CutAfter: 100_000, CutTimes: 2}, 0, ""},
		"no range":     {faultserver.Options{NoRange: true}, 0, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fs := faultserver.New(bytes.NewReader(data), int64(len(data)), tc.opts)
			defer fs.Close()
			r := runJob(t, nil, "export", "--download-url", fs.FileURL()+"?X-Amz-Signature=topsecret", "--local-dir", t.TempDir())
			require.Equal(t, tc.code, r.code, r.stderr)
			require.Contains(t, r.result.Body.Message, tc.want)
			require.NotContains(t, r.stdout+r.stderr, "topsecret", "presigned credentials must not be printed")
		})
	}
}

func TestExportToS3(t *testing.T) {
	srv := s3local.StartT(t)
	ctx := context.Background()
	require.NoError(t, srv.CreateBucket(ctx, "registry"))
	spec := samplezip.Small()
	spec.Large = []int64{6 << 20}
	zipPath, m := sample(t, spec)
	data, err := os.ReadFile(zipPath)
	require.NoError(t, err)
	fs := faultserver.New(bytes.NewReader(data), int64(len(data)), faultserver.Options{})
	defer fs.Close()

	r := runJob(t, append(srv.Env(), "DOWNLOAD_URL="+fs.FileURL(), "REGISTRY=registry", "PACKAGE_NAME=benchling/etr_9"), "export")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, len(m.Entries), r.result.Body.NumFiles)
	require.Positive(t, r.result.Body.Requests)
	objs, err := srv.Objects(ctx, "registry", "benchling/etr_9/")
	require.NoError(t, err)
	require.Len(t, objs, len(m.Entries))

	// A bucket that does not exist is a configuration error.
	r = runJob(t, append(srv.Env(), "DOWNLOAD_URL="+fs.FileURL(), "REGISTRY=nope", "PACKAGE_NAME=benchling/etr_1"), "export")
	require.Equal(t, 2, r.code, r.stderr)
}

// TestSIGTERM: ECS stops a task with SIGTERM and kills it 30 s later. The
// job must stop promptly with 143, abort its multipart uploads and delete
// what it wrote.
func TestSIGTERM(t *testing.T) {
	srv := s3local.StartT(t)
	ctx := context.Background()
	require.NoError(t, srv.CreateBucket(ctx, "registry"))
	spec := samplezip.Small()
	spec.Large = []int64{60 << 20}
	zipPath, _ := sample(t, spec)
	data, err := os.ReadFile(zipPath)
	require.NoError(t, err)
	fs := faultserver.New(bytes.NewReader(data), int64(len(data)), faultserver.Options{BytesPerSecond: 10 << 20})
	defer fs.Close()

	cmd := exec.Command(jobBin, "export", "--progress-interval", "100ms")
	cmd.Env = append(baseEnv(), srv.Env()...)
	cmd.Env = append(cmd.Env, "DOWNLOAD_URL="+fs.FileURL(), "REGISTRY=registry", "PACKAGE_NAME=benchling/etr_1")
	var out bytes.Buffer
	cmd.Stdout = &out
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	// Wait until some bytes are on their way, then stop it like ECS does.
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		var line struct {
			Msg   string `json:"msg"`
			Bytes int64  `json:"bytes"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "progress" && line.Bytes > 12<<20 {
			break
		}
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	stopped := time.Now()
	go func() {
		for sc.Scan() {
		}
	}()
	err = cmd.Wait()
	require.Less(t, time.Since(stopped), 10*time.Second)
	ee, ok := err.(*exec.ExitError)
	require.True(t, ok, "%v", err)
	require.Equal(t, 143, ee.ExitCode())
	res := lastResult(t, out.String())
	require.Equal(t, "interrupted", res.Body.ErrorKind)

	objs, err := srv.Objects(ctx, "registry", "")
	require.NoError(t, err)
	require.Empty(t, objs)
	ups, err := srv.PendingUploads(ctx, "registry")
	require.NoError(t, err)
	require.Empty(t, ups)
}

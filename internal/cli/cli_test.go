package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/samplezip"
)

func TestEnvName(t *testing.T) {
	for flag, want := range map[string]string{
		flagDownloadURL: "DOWNLOAD_URL", flagRegistry: "REGISTRY", flagPackageName: "PACKAGE_NAME",
		flagLocalDir: "LOCAL_DIR", flagPartSize: "PART_SIZE", flagMaxEntries: "MAX_ENTRIES",
	} {
		require.Equal(t, want, envName(flag))
	}
}

func TestApplyEnvPrecedence(t *testing.T) {
	tests := map[string]struct {
		args []string
		env  map[string]string
		want exportVars
	}{
		"defaults": {nil, nil, exportVars{concurrency: 16, partSize: 5 << 20}},
		"env only": {nil, map[string]string{"PACKAGE_NAME": "env", "CONCURRENCY": "7", "PART_SIZE": "8MiB"},
			exportVars{packageName: "env", concurrency: 7, partSize: 8 << 20}},
		"flag wins": {[]string{"--package-name", "flag", "--concurrency", "2"}, map[string]string{"PACKAGE_NAME": "env", "CONCURRENCY": "7"},
			exportVars{packageName: "flag", concurrency: 2, partSize: 5 << 20}},
		"empty env ignored": {nil, map[string]string{"CONCURRENCY": ""}, exportVars{concurrency: 16, partSize: 5 << 20}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var v exportVars
			fs := newExportFlags(&v)
			require.NoError(t, fs.Parse(tc.args))
			require.NoError(t, applyEnv(fs, func(k string) (string, bool) { s, ok := tc.env[k]; return s, ok }))
			require.Equal(t, tc.want.packageName, v.packageName)
			require.Equal(t, tc.want.concurrency, v.concurrency)
			require.Equal(t, tc.want.partSize, v.partSize)
		})
	}
}

func TestApplyEnvBadValue(t *testing.T) {
	var v exportVars
	fs := newExportFlags(&v)
	err := applyEnv(fs, func(k string) (string, bool) { return "lots", k == "MAX_BYTES" })
	require.ErrorContains(t, err, "MAX_BYTES")
	require.Equal(t, exitcode.Usage, exitcode.Resolve(err))
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"5MiB": 5 << 20, "50GiB": 50 << 30, "1000": 1000, "5 MB": 5_000_000} {
		var b byteSize
		require.NoError(t, b.Set(in), in)
		require.Equal(t, want, int64(b), in)
	}
	var b byteSize
	require.Error(t, b.Set("lots"))
	require.Error(t, b.Set("-5MiB"))
}

func TestValidate(t *testing.T) {
	ok := exportVars{downloadURL: "x.zip", registry: "b", packageName: "p", concurrency: 4, bufferMemory: 60 << 20, partConcurrency: 1, partSize: 5 << 20, maxBytes: 1, maxEntries: 1}
	require.NoError(t, ok.validate())
	tests := map[string]struct {
		edit func(*exportVars)
		want string
	}{
		"no url":           {func(v *exportVars) { v.downloadURL = "" }, "--download-url"},
		"no destination":   {func(v *exportVars) { v.registry = "" }, "--registry"},
		"both":             {func(v *exportVars) { v.localDir = "d" }, "not both"},
		"no package":       {func(v *exportVars) { v.packageName = "" }, "--package-name"},
		"unsafe package":   {func(v *exportVars) { v.packageName = "a/../b" }, "safe key prefix"},
		"concurrency":      {func(v *exportVars) { v.concurrency = 0 }, "--concurrency"},
		"part concurrency": {func(v *exportVars) { v.partConcurrency = 99 }, "--part-concurrency"},
		"part size":        {func(v *exportVars) { v.partSize = 1 << 20 }, "--part-size"},
		"max bytes":        {func(v *exportVars) { v.maxBytes = 0 }, "--max-bytes"},
		"max entries":      {func(v *exportVars) { v.maxEntries = 0 }, "--max-entries"},
		"interval":         {func(v *exportVars) { v.progressInterval = -1 }, "--progress-interval"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v := ok
			tc.edit(&v)
			require.ErrorContains(t, v.validate(), tc.want)
		})
	}
}

func TestDestination(t *testing.T) {
	require.Equal(t, "out", destination(exportVars{localDir: "out/"}, ""))
	require.Equal(t, filepath.Join("out", "benchling", "etr_1"), destination(exportVars{localDir: "out"}, "benchling/etr_1"))
	require.Equal(t, "s3://b/benchling/etr_1/", destination(exportVars{registry: "b"}, "benchling/etr_1"))
}

// TestRunInProcess runs the command through Run, as main does.
func TestRunInProcess(t *testing.T) {
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "e.zip")
	m, err := samplezip.WriteFile(zipPath, samplezip.Small())
	require.NoError(t, err)
	var out, errb bytes.Buffer
	code := Run(context.Background(), []string{"export", "--download-url", zipPath, "--local-dir", filepath.Join(dir, "out"), "--log-format", "text"},
		Env{Stdout: &out, Stderr: &errb, Lookup: func(string) (string, bool) { return "", false }})
	require.Equal(t, 0, code, errb.String())
	var res exportResult
	require.NoError(t, json.Unmarshal(bytes.TrimSpace(out.Bytes()), &res))
	require.Equal(t, len(m.Entries), res.Body.NumFiles)
	require.Contains(t, errb.String(), "export done")
	require.False(t, strings.HasPrefix(errb.String(), "{"), "text logs were asked for")
	_, err = os.Stat(filepath.Join(dir, "out", m.Entries[0].Name))
	require.NoError(t, err)
}

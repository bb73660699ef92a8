package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/benchling"
	"benchling-webhook/internal/emf/emftest"
	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/render"
	"benchling-webhook/internal/testkit/s3local"
	"benchling-webhook/internal/testkit/samplezip"
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
	ok := exportVars{downloadURL: "x.zip", registry: "b", packageName: "benchling/etr_1", concurrency: 4, bufferMemory: 60 << 20, partConcurrency: 1, partSize: 5 << 20, maxBytes: 1, maxEntries: 1}
	require.NoError(t, validateExport(ok))
	tests := map[string]struct {
		edit func(*exportVars)
		want string
	}{
		"no url":           {func(v *exportVars) { v.downloadURL = "" }, "--download-url"},
		"no destination":   {func(v *exportVars) { v.registry = "" }, "--registry"},
		"both":             {func(v *exportVars) { v.localDir = "d" }, "not both"},
		"no package":       {func(v *exportVars) { v.packageName = "" }, "--package-name"},
		"unsafe package":   {func(v *exportVars) { v.packageName = "a/../b" }, "not two parts"},
		"escaping prefix":  {func(v *exportVars) { v.packageName = "../etr_1" }, "must be one name part"},
		"query in entry":   {func(v *exportVars) { v.packageName = "benchling/etr_a?b" }, `"etr_a?b"`},
		"hash in entry":    {func(v *exportVars) { v.packageName = "benchling/etr_a#b" }, `"etr_a#b"`},
		"three parts":      {func(v *exportVars) { v.packageName = "lab/benchling/etr_1" }, "not two parts"},
		"not an entry":     {func(v *exportVars) { v.packageName = "benchling/p" }, "not a Benchling entry id"},
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
			require.ErrorContains(t, validateExport(v), tc.want)
		})
	}
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

func TestReadmeFlagEnv(t *testing.T) {
	tests := map[string]struct {
		args    []string
		env     map[string]string
		want    bool
		wantErr string
	}{
		"off by default":  {nil, nil, false, ""},
		"env true":        {nil, map[string]string{"README": "true"}, true, ""},
		"env 1":           {nil, map[string]string{"README": "1"}, true, ""},
		"env false":       {nil, map[string]string{"README": "false"}, false, ""},
		"flag wins":       {[]string{"--readme=false"}, map[string]string{"README": "true"}, false, ""},
		"flag on":         {[]string{"--readme"}, map[string]string{"README": "0"}, true, ""},
		"env not a bool":  {nil, map[string]string{"README": "yes"}, false, "environment variable README"},
		"catalog via env": {nil, map[string]string{"CATALOG_HOST": "c.example.com"}, false, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var v exportVars
			fs := newExportFlags(&v)
			require.NoError(t, fs.Parse(tc.args))
			err := applyEnv(fs, func(k string) (string, bool) { s, ok := tc.env[k]; return s, ok })
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				require.Equal(t, exitcode.Usage, exitcode.Resolve(err))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, v.readme)
			require.Equal(t, tc.env["CATALOG_HOST"], v.catalogHost)
		})
	}
	require.Equal(t, "README", envName(flagReadme))
	require.Equal(t, "CATALOG_HOST", envName(flagCatalogHost))
}

func TestValidateCatalogHost(t *testing.T) {
	ok := exportVars{downloadURL: "x.zip", registry: "b", packageName: "benchling/etr_1", concurrency: 4, bufferMemory: 60 << 20, partConcurrency: 1, partSize: 5 << 20, maxBytes: 1, maxEntries: 1}
	for host, valid := range map[string]bool{
		"catalog.example.com": true, "https://catalog.example.com/": true, "localhost:3000": true,
		"https://c.example.com/b/x": false, "c.example.com?x": false, "a b": false, "https://": false, "user@host": false,
	} {
		v := ok
		v.catalogHost = host
		if valid {
			require.NoError(t, validateExport(v), host)
		} else {
			require.ErrorContains(t, validateExport(v), "--catalog-host", host)
		}
	}
}

// fixtureEntry returns the entry of internal/benchling's fixture, minified
// and without the {"entry":…} wrapper, as the state machine stores it.
func fixtureEntry(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "benchling", "testdata", "entry.json"))
	require.NoError(t, err)
	var whole struct{ Entry json.RawMessage }
	require.NoError(t, json.Unmarshal(b, &whole))
	var out bytes.Buffer
	require.NoError(t, json.Compact(&out, whole.Entry))
	return out.Bytes()
}

// runExportT runs "job export args…" in process with env as the environment.
func runExportT(t *testing.T, env map[string]string, args ...string) (int, exportResult, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), append([]string{"export", "--log-format", "text"}, args...),
		Env{Stdout: &out, Stderr: &errb, Lookup: func(k string) (string, bool) { s, ok := env[k]; return s, ok }})
	var res exportResult
	require.NoError(t, json.Unmarshal(bytes.TrimSpace(out.Bytes()), &res), out.String())
	return code, res, errb.String()
}

// treeFiles lists the files below dir, slash-separated and relative.
func treeFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	}))
	return files
}

func TestExportReadmeLocal(t *testing.T) {
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "e.zip")
	m, err := samplezip.WriteFile(zipPath, samplezip.Small())
	require.NoError(t, err)
	out := filepath.Join(dir, "out")
	pkg := filepath.Join(out, "benchling", "etr_0uKCQZ8f")
	require.NoError(t, os.MkdirAll(pkg, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(pkg, "entry.json"), fixtureEntry(t), 0o644))

	// README=true from the environment, as the state machine sets it.
	code, res, stderr := runExportT(t, map[string]string{"README": "true", "CATALOG_HOST": "catalog.example.com"},
		"--download-url", zipPath, "--local-dir", out, "--package-name", "benchling/etr_0uKCQZ8f")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, len(m.Entries), res.Body.NumFiles, "numFiles counts the archive's files only")
	require.Equal(t, "benchling/etr_0uKCQZ8f/README.md", res.Body.Readme)
	require.Contains(t, stderr, "readme written")

	got, err := os.ReadFile(filepath.Join(pkg, "README.md"))
	require.NoError(t, err)
	entry, err := benchling.DecodeEntry(fixtureEntry(t))
	require.NoError(t, err)
	files := make([]render.File, len(m.Entries))
	for i, e := range m.Entries {
		files[i] = render.File{Name: e.Name, Size: e.Size}
	}
	// No --registry: a local folder has no bucket, so no Quilt links.
	want, err := render.New().README(render.READMEData{Entry: entry, Files: files, PackageName: "benchling/etr_0uKCQZ8f", CatalogHost: "catalog.example.com"})
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))
	s := string(got)
	require.Contains(t, s, "| Display ID | EXP25000007 |")
	require.Contains(t, s, "| Path | Size | Bytes |")
	require.Contains(t, s, "| Creator | Ernest Prabhakar \\<eprabhakar@ent_9CIv9U8P\\> |")
	require.Contains(t, s, "[entry.json](entry.json)")
	for _, e := range m.Entries {
		require.Contains(t, s, "| "+strconv.FormatInt(e.Size, 10)+" |\n", e.Name)
	}
	require.Len(t, treeFiles(t, pkg), len(m.Entries)+2, "the files, entry.json and README.md")
}

func TestExportReadmeFailures(t *testing.T) {
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "e.zip")
	_, err := samplezip.WriteFile(zipPath, samplezip.Small())
	require.NoError(t, err)
	reservedZip := filepath.Join(dir, "reserved.zip")
	_, err = samplezip.WriteFile(reservedZip, samplezip.Spec{Files: 3, TotalBytes: 3000, Compressible: 1, Names: []string{"data.csv", "README.md"}})
	require.NoError(t, err)

	tests := map[string]struct {
		zip    string
		setup  func(t *testing.T, pkg string) // prepares <out>/p
		code   int
		errMsg string
		remain []string // files left in <out>/p afterwards
	}{
		"missing entry.json": {zipPath, func(*testing.T, string) {}, exitcode.Usage,
			"entry.json: not found: with --readme the state machine must write entry.json before the export runs", nil},
		"entry.json not JSON": {zipPath, func(t *testing.T, pkg string) { writeFile(t, pkg, "entry.json", "<html>") }, exitcode.BadInput,
			"benchling: invalid entry JSON", []string{"entry.json"}},
		"entry.json without id": {zipPath, func(t *testing.T, pkg string) { writeFile(t, pkg, "entry.json", `{"entry":{"name":"x"}}`) }, exitcode.BadInput,
			`no "id"`, []string{"entry.json"}},
		"reserved name in archive": {reservedZip, func(t *testing.T, pkg string) { writeFile(t, pkg, "entry.json", string(fixtureEntry(t))) }, exitcode.BadInput,
			`extract: reserved entry name: entry "README.md" clashes with the package's own README.md`, []string{"entry.json"}},
		// README.md cannot be written (a folder is in the way): the
		// archive's files, already written, are deleted again.
		"readme write fails": {zipPath, func(t *testing.T, pkg string) {
			writeFile(t, pkg, "entry.json", string(fixtureEntry(t)))
			writeFile(t, pkg, "README.md/keep", "x")
		}, exitcode.Usage, "write README.md", []string{"README.md/keep", "entry.json"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out := t.TempDir()
			pkg := filepath.Join(out, "benchling", "etr_0uKCQZ8f")
			require.NoError(t, os.MkdirAll(pkg, 0o755))
			tc.setup(t, pkg)
			code, res, stderr := runExportT(t, nil, "--download-url", tc.zip, "--local-dir", out, "--package-name", "benchling/etr_0uKCQZ8f", "--readme")
			require.Equal(t, tc.code, code, stderr)
			require.Contains(t, res.Body.Error, tc.errMsg)
			require.Zero(t, res.Body.NumFiles)
			require.Empty(t, res.Body.Readme)
			require.ElementsMatch(t, tc.remain, treeFiles(t, pkg), "nothing of the export is left")
		})
	}

	// A package named after an entry must get that entry's entry.json:
	// refused before anything is downloaded or written.
	out := t.TempDir()
	pkg := filepath.Join(out, "benchling", "etr_other001")
	writeFile(t, pkg, "entry.json", string(fixtureEntry(t)))
	code, res, stderr := runExportT(t, nil, "--download-url", "https://127.0.0.1:1/never.zip", "--local-dir", out,
		"--package-name", "benchling/etr_other001", "--readme")
	require.Equal(t, exitcode.BadInput, code, stderr)
	require.Contains(t, res.Body.Error, "entry.json names etr_0uKCQZ8f but the package is benchling/etr_other001")
	require.Zero(t, res.Body.Requests, "nothing downloaded")
	require.ElementsMatch(t, []string{"entry.json"}, treeFiles(t, pkg))

	// Without --readme the archive with a README.md is exported as before.
	out = t.TempDir()
	code, res, stderr = runExportT(t, nil, "--download-url", reservedZip, "--local-dir", out)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, 3, res.Body.NumFiles)
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
}

// startS3 starts the local S3 server (skipped without it) and points the
// job's environment at it, as the task's environment would.
func startS3(t *testing.T) *s3local.Server {
	t.Helper()
	srv := s3local.StartT(t)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return srv
}

// TestExportReadmeS3 runs the export with --readme against a local S3
// server (versitygw; skipped without it, see `make tools`).
func TestExportReadmeS3(t *testing.T) {
	srv := startS3(t)
	ctx := context.Background()
	require.NoError(t, srv.CreateBucket(ctx, "registry"))
	client, err := srv.Client(ctx)
	require.NoError(t, err)
	_, err = client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String("registry"), Key: aws.String("benchling/etr_0uKCQZ8f/entry.json"),
		Body: bytes.NewReader(fixtureEntry(t)), ContentType: aws.String("application/json"),
	})
	require.NoError(t, err)
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "e.zip")
	m, err := samplezip.WriteFile(zipPath, samplezip.Small())
	require.NoError(t, err)

	code, res, stderr := runExportT(t, nil, "--download-url", zipPath, "--registry", "registry",
		"--package-name", "benchling/etr_0uKCQZ8f", "--readme", "--catalog-host", "catalog.example.com")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "benchling/etr_0uKCQZ8f/README.md", res.Body.Readme)
	objs, err := srv.Objects(ctx, "registry", "benchling/etr_0uKCQZ8f/")
	require.NoError(t, err)
	require.Len(t, objs, len(m.Entries)+2)
	readme := string(objs["benchling/etr_0uKCQZ8f/README.md"])
	require.Contains(t, readme, "| Display ID | EXP25000007 |")
	require.Contains(t, readme, "(https://catalog.example.com/b/registry/packages/benchling/etr_0uKCQZ8f)")
	head, err := client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String("registry"), Key: aws.String("benchling/etr_0uKCQZ8f/README.md"), ChecksumMode: s3types.ChecksumModeEnabled,
	})
	require.NoError(t, err)
	require.Equal(t, "text/markdown; charset=utf-8", aws.ToString(head.ContentType))
	require.Equal(t, crcBase64(crc32.ChecksumIEEE([]byte(readme))), aws.ToString(head.ChecksumCRC32))

	// No entry.json under this prefix: exit 2, nothing written.
	code, res, stderr = runExportT(t, nil, "--download-url", zipPath, "--registry", "registry", "--package-name", "benchling/etr_missing", "--readme")
	require.Equal(t, exitcode.Usage, code, stderr)
	require.Contains(t, res.Body.Error, "s3://registry/benchling/etr_missing/entry.json: not found")
	objs, err = srv.Objects(ctx, "registry", "benchling/etr_missing/")
	require.NoError(t, err)
	require.Empty(t, objs)

	// entry.json of another entry: exit 3, nothing written.
	_, err = client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String("registry"), Key: aws.String("benchling/etr_other001/entry.json"), Body: bytes.NewReader(fixtureEntry(t)),
	})
	require.NoError(t, err)
	code, res, stderr = runExportT(t, nil, "--download-url", zipPath, "--registry", "registry", "--package-name", "benchling/etr_other001", "--readme")
	require.Equal(t, exitcode.BadInput, code, stderr)
	require.Contains(t, res.Body.Error, "s3://registry/benchling/etr_other001/entry.json: entry.json names etr_0uKCQZ8f but the package is benchling/etr_other001")
	objs, err = srv.Objects(ctx, "registry", "benchling/etr_other001/")
	require.NoError(t, err)
	require.Len(t, objs, 1)
	require.Contains(t, objs, "benchling/etr_other001/entry.json")

	// No bucket: exit 2, as for a write.
	code, res, stderr = runExportT(t, nil, "--download-url", zipPath, "--registry", "no-such-bucket", "--package-name", "benchling/etr_0uKCQZ8f", "--readme")
	require.Equal(t, exitcode.Usage, code, stderr)
	require.Contains(t, res.Body.Error, "read entry.json: store: get s3://no-such-bucket/benchling/.packaging/etr_0uKCQZ8f/entry.json")
}

func crcBase64(crc uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], crc)
	return base64.StdEncoding.EncodeToString(b[:])
}

// TestExportMetrics checks the EMF line job export writes to stderr when it
// ends: exactly one, valid against the format's schema, in JSON log mode
// only, and none with --metrics=false.
func TestExportMetrics(t *testing.T) {
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "e.zip")
	m, err := samplezip.WriteFile(zipPath, samplezip.Small())
	require.NoError(t, err)
	copilot := map[string]string{"COPILOT_APPLICATION_NAME": "bw", "COPILOT_ENVIRONMENT_NAME": "test", "COPILOT_SERVICE_NAME": "worker"}
	with := func(kv ...string) map[string]string {
		env := map[string]string{}
		for k, v := range copilot {
			env[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			env[kv[i]] = kv[i+1]
		}
		return env
	}
	export := func(args ...string) []string {
		return append([]string{"--download-url", zipPath, "--local-dir", t.TempDir(), "--package-name", "benchling/etr_1"}, args...)
	}
	tests := map[string]struct {
		env     map[string]string
		args    []string
		lines   int    // EMF lines expected
		outcome string // with a line
	}{
		"json":              {copilot, export("--log-format", "json"), 1, "ok"},
		"json from env":     {with("LOG_FORMAT", "json"), export(), 1, "ok"},
		"auto off terminal": {copilot, export("--log-format", "auto"), 1, "ok"},
		"text":              {copilot, export("--log-format", "text"), 0, ""},
		"flag off":          {copilot, export("--log-format", "json", "--metrics=false"), 0, ""},
		"env off":           {with("METRICS", "false"), export("--log-format", "json"), 0, ""},
		"flag beats env":    {with("METRICS", "false"), export("--log-format", "json", "--metrics"), 1, "ok"},
		"failed export": {copilot, []string{"--log-format", "json", "--download-url", filepath.Join(dir, "missing.zip"),
			"--local-dir", t.TempDir(), "--package-name", "benchling/etr_1"}, 1, ""},
		"invalid configuration": {copilot, []string{"--log-format", "json", "--local-dir", t.TempDir(), "--package-name", "benchling/etr_1"}, 1, "usage"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Run(context.Background(), append([]string{"export"}, tc.args...),
				Env{Stdout: &out, Stderr: &errb, Lookup: func(k string) (string, bool) { s, ok := tc.env[k]; return s, ok }})
			var res exportResult
			require.NoError(t, json.Unmarshal(bytes.TrimSpace(out.Bytes()), &res), "stdout is the result line: %s", out.String())

			lines := emftest.Lines(errb.Bytes())
			require.Len(t, lines, tc.lines, errb.String())
			if tc.lines == 0 {
				return
			}
			// JSON mode: every stderr line is one JSON object, log or EMF,
			// so the EMF line did not interleave with a log line.
			for line := range bytes.Lines(errb.Bytes()) {
				require.True(t, json.Valid(line), "not a JSON line: %q", line)
			}
			doc, err := emftest.Check(lines[0])
			require.NoError(t, err, string(lines[0]))
			aws := doc["_aws"].(map[string]any)
			dir := aws["CloudWatchMetrics"].([]any)[0].(map[string]any)
			require.Equal(t, "bw/test/worker", dir["Namespace"])
			require.Equal(t, []any{[]any{"Command"}}, dir["Dimensions"])
			units := map[string]string{}
			for _, d := range dir["Metrics"].([]any) {
				d := d.(map[string]any)
				units[d["Name"].(string)] = d["Unit"].(string)
			}
			require.Equal(t, map[string]string{"Files": "Count", "Bytes": "Bytes", "DurationSeconds": "Seconds", "Succeeded": "Count", "Failed": "Count"}, units)

			num := func(k string) float64 {
				f, err := doc[k].(json.Number).Float64()
				require.NoError(t, err, k)
				return f
			}
			require.Equal(t, "export", doc["Command"])
			require.Equal(t, "benchling/etr_1", doc["packageName"])
			require.Equal(t, "", doc["registry"], "--local-dir: no bucket")
			require.Equal(t, float64(code), num("exitCode"))
			require.Equal(t, float64(res.Body.NumFiles), num("Files"))
			require.Equal(t, float64(res.Body.Bytes), num("Bytes"))
			require.GreaterOrEqual(t, num("DurationSeconds"), 0.0)
			if code == exitcode.OK {
				require.Equal(t, "ok", doc["outcome"])
				require.Equal(t, len(m.Entries), res.Body.NumFiles)
				require.Equal(t, []float64{1, 0}, []float64{num("Succeeded"), num("Failed")})
				require.Positive(t, num("Bytes"))
			} else {
				require.Equal(t, res.Body.ErrorKind, doc["outcome"])
				require.Equal(t, []float64{0, 1}, []float64{num("Succeeded"), num("Failed")})
			}
			if tc.outcome != "" {
				require.Equal(t, tc.outcome, doc["outcome"])
			}
			require.Equal(t, tc.outcome == "ok", code == exitcode.OK)
		})
	}
}

func TestJSONLogs(t *testing.T) {
	var b bytes.Buffer
	for format, want := range map[string]bool{"json": true, "auto": true, "": true, "text": false} {
		require.Equal(t, want, jsonLogs(format, &b), format)
	}
	require.Equal(t, "METRICS", envName(flagMetrics))
}

package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/quiltpkg"
	"benchling-webhook/internal/testkit/faultserver"
	"benchling-webhook/internal/testkit/s3local"
	"benchling-webhook/internal/testkit/samplezip"
)

// The integrity tests: every export is a whole export (docs/export.md,
// "Package integrity"). A good export, then reruns that fail in every way
// job export can fail, must leave the package as the good export left it,
// byte for byte; a good rerun must leave exactly its own files plus what
// a person added.

const (
	intBucket = "registry"
	intEntry  = "etr_int001"
	intPkg    = "benchling/" + intEntry
	dropKey   = intPkg + "/notes/dropped-by-hand.txt"
)

var intEntryJSON = `{"id":"` + intEntry + `","name":"Integrity","displayId":"EXP1","modifiedAt":"2026-11-30T10:00:00.123456+00:00"}`

// intModifiedAt is intEntryJSON's modifiedAt, which a complete record keeps
// for job reconcile.
var intModifiedAt = time.Date(2026, 11, 30, 10, 0, 0, 123456000, time.UTC)

// zfile is one file of a test archive.
type zfile struct {
	name string
	data []byte
}

// buildZip writes an archive of files; with badCRC its last file's
// recorded CRC-32 is wrong, so the run fails only at the archive's end,
// after every other file is stored.
func buildZip(t *testing.T, files []zfile, badCRC bool) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i, f := range files {
		if badCRC && i == len(files)-1 {
			w, err := zw.CreateRaw(&zip.FileHeader{Name: f.name, Method: zip.Store, CRC32: crc32.ChecksumIEEE(f.data) ^ 1,
				CompressedSize64: uint64(len(f.data)), UncompressedSize64: uint64(len(f.data))})
			require.NoError(t, err)
			_, err = w.Write(f.data)
			require.NoError(t, err)
			continue
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate})
		require.NoError(t, err)
		_, err = w.Write(f.data)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	p := filepath.Join(t.TempDir(), "export.zip")
	require.NoError(t, os.WriteFile(p, buf.Bytes(), 0o644))
	return p
}

// content is n bytes that differ per name (and per version v).
func content(name string, v, n int) []byte {
	b := make([]byte, n)
	seed := crc32.ChecksumIEEE([]byte(fmt.Sprintf("%s#%d", name, v)))
	for i := range b {
		seed = seed*1664525 + 1013904223
		b[i] = byte(seed >> 24)
	}
	return b
}

// goodFiles is the first export: small files and one streamed (multipart)
// file.
func goodFiles(v int) []zfile {
	fs := []zfile{
		{"results/plate1.csv", content("plate1", v, 3000)},
		{"results/plate2.csv", content("plate2", v, 5000)},
		{"attachments/old-name.pdf", content("pdf", v, 9000)},
		{"attachments/removed.png", content("png", v, 12000)},
		{"large/raw.bin", content("raw", v, 6<<20)},
	}
	for i := range 20 {
		fs = append(fs, zfile{fmt.Sprintf("many/f%02d.txt", i), content("many", v*100+i, 700)})
	}
	return fs
}

// s3pkg is a package in a local versitygw bucket.
type s3pkg struct {
	srv    *s3local.Server
	client *s3.Client
	env    []string
}

func newS3Pkg(t *testing.T, versioned bool) *s3pkg {
	t.Helper()
	srv := s3local.StartT(t)
	ctx := context.Background()
	if versioned {
		require.NoError(t, srv.CreateBucket(ctx, intBucket))
	} else {
		require.NoError(t, srv.CreateUnversionedBucket(ctx, intBucket))
	}
	c, err := srv.Client(ctx)
	require.NoError(t, err)
	p := &s3pkg{srv: srv, client: c, env: srv.Env()}
	p.stage(t, 1)
	p.put(t, dropKey, []byte("a person's note, added through the drop zone"))
	return p
}

func (p *s3pkg) put(t *testing.T, key string, data []byte) {
	t.Helper()
	_, err := p.client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(intBucket), Key: aws.String(key), Body: bytes.NewReader(data)})
	require.NoError(t, err)
}

// stage writes entry.json and input.json to the control folder, as the
// packaging state machine does before each export.
func (p *s3pkg) stage(t *testing.T, n int) {
	p.put(t, quiltpkg.ControlKey(intPkg, quiltpkg.EntryName), []byte(intEntryJSON))
	p.put(t, quiltpkg.ControlKey(intPkg, quiltpkg.InputName), []byte(fmt.Sprintf(`{"run":%d}`, n)))
}

func (p *s3pkg) export(t *testing.T, zipURL string, extra ...string) run {
	t.Helper()
	args := append([]string{"export", "--download-url", zipURL, "--registry", intBucket, "--package-name", intPkg, "--readme"}, extra...)
	return runJob(t, p.env, args...)
}

// objects is every object in the bucket (the package and its control
// objects), key to bytes.
func (p *s3pkg) objects(t *testing.T) map[string][]byte {
	t.Helper()
	objs, err := p.srv.Objects(context.Background(), intBucket, "")
	require.NoError(t, err)
	return objs
}

func (p *s3pkg) record(t *testing.T) quiltpkg.Record {
	t.Helper()
	b := p.objects(t)[quiltpkg.ControlKey(intPkg, quiltpkg.RecordName)]
	require.NotNil(t, b, "no record")
	rec, err := quiltpkg.DecodeRecord(b)
	require.NoError(t, err)
	return rec
}

// packageOnly drops the control objects.
func packageOnly(objs map[string][]byte) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range objs {
		if strings.HasPrefix(k, intPkg+"/") {
			out[k] = v
		}
	}
	return out
}

// requireSamePackage: same keys, same bytes.
func requireSamePackage(t *testing.T, want, got map[string][]byte) {
	t.Helper()
	require.Equal(t, sortedKeys(want), sortedKeys(got), "the package's keys")
	for k, v := range want {
		require.True(t, bytes.Equal(v, got[k]), "bytes of %s", k)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// wantKeys is the package a complete export of files leaves, with the
// drop-zone file.
func wantKeys(files []zfile) []string {
	keys := []string{dropKey, intPkg + "/README.md", intPkg + "/entry.json", intPkg + "/input.json"}
	for _, f := range files {
		keys = append(keys, intPkg+"/"+f.name)
	}
	sort.Strings(keys)
	return keys
}

// requireComplete checks a complete export of files: exactly their keys
// (and the drop-zone file), their bytes, a complete record listing every
// file it wrote, and a README listing exactly the package's files.
func requireComplete(t *testing.T, objs map[string][]byte, files []zfile) {
	t.Helper()
	pkg := packageOnly(objs)
	require.Equal(t, wantKeys(files), sortedKeys(pkg))
	for _, f := range files {
		require.True(t, bytes.Equal(f.data, pkg[intPkg+"/"+f.name]), f.name)
	}
	rec, err := quiltpkg.DecodeRecord(objs[quiltpkg.ControlKey(intPkg, quiltpkg.RecordName)])
	require.NoError(t, err)
	require.Equal(t, quiltpkg.RecordComplete, rec.State)
	require.True(t, intModifiedAt.Equal(rec.EntryModifiedAt), "the record keeps the entry's modifiedAt: %s", rec.EntryModifiedAt)
	var recorded []string
	for _, f := range rec.Files {
		recorded = append(recorded, f.Key)
		require.Equal(t, int64(len(pkg[f.Key])), f.Size, f.Key)
		require.Equal(t, crc32.ChecksumIEEE(pkg[f.Key]), f.CRC32, f.Key)
	}
	sort.Strings(recorded)
	require.Equal(t, slices.DeleteFunc(wantKeys(files), func(k string) bool { return k == dropKey }), recorded, "the record lists what the export wrote")
	readme := string(pkg[intPkg+"/README.md"])
	for _, f := range files {
		require.Contains(t, readme, "| ["+f.name+"](", f.name)
	}
	require.Contains(t, readme, "| [notes/dropped-by-hand.txt](", "README lists the drop-zone file")
	_, table, _ := strings.Cut(readme, "## Files")
	table, _, _ = strings.Cut(table, "## Metadata")
	require.Equal(t, len(files)+1, strings.Count(table, "\n| ["), "README lists exactly the package's files:\n%s", readme)
}

func serveZip(t *testing.T, path string, opts faultserver.Options) *faultserver.Server {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	fs := faultserver.New(bytes.NewReader(data), int64(len(data)), opts)
	t.Cleanup(fs.Close)
	return fs
}

// TestIntegrityFailingRerun: a good export, then a rerun whose archive
// has a CRC error at its very end (after every other file, the large one
// included, has been written over the good export's): the package is the
// good export again, byte for byte, with no extra key; the drop-zone file
// stays.
func TestIntegrityFailingRerun(t *testing.T) {
	p := newS3Pkg(t, true)
	good := goodFiles(1)
	r := p.export(t, buildZip(t, good, false))
	require.Equal(t, 0, r.code, r.stderr)
	before := p.objects(t)
	requireComplete(t, before, good)

	bad := append(goodFiles(2), zfile{"new/extra.csv", content("extra", 2, 4000)}, zfile{"zz/last.bin", content("last", 2, 5000)})
	p.stage(t, 2)
	r = p.export(t, buildZip(t, bad, true))
	require.Equal(t, 3, r.code, r.stderr)
	require.Contains(t, r.result.Body.Error, "checksum")
	require.Contains(t, r.stderr, "rolled back")
	after := p.objects(t)
	requireSamePackage(t, packageOnly(before), packageOnly(after))
	requireComplete(t, after, good)
	ups, err := p.srv.PendingUploads(context.Background(), intBucket)
	require.NoError(t, err)
	require.Empty(t, ups)
}

// TestIntegrityStaleFiles: a rerun after one attachment was removed and
// one renamed in Benchling leaves neither old file; the drop-zone file
// stays; README.md lists exactly the package's files.
func TestIntegrityStaleFiles(t *testing.T) {
	p := newS3Pkg(t, true)
	good := goodFiles(1)
	r := p.export(t, buildZip(t, good, false))
	require.Equal(t, 0, r.code, r.stderr)

	var next []zfile
	for _, f := range goodFiles(1) {
		switch f.name {
		case "attachments/removed.png":
			continue
		case "attachments/old-name.pdf":
			f.name = "attachments/new-name.pdf"
		}
		next = append(next, f)
	}
	p.stage(t, 2)
	r = p.export(t, buildZip(t, next, false))
	require.Equal(t, 0, r.code, r.stderr)
	objs := p.objects(t)
	requireComplete(t, objs, next)
	require.NotContains(t, objs, intPkg+"/attachments/removed.png")
	require.NotContains(t, objs, intPkg+"/attachments/old-name.pdf")
	require.JSONEq(t, `{"run":2}`, string(objs[intPkg+"/input.json"]), "input.json is this run's")
}

// TestIntegrityUnversioned: in a bucket without versioning a failed
// rerun cannot restore what it replaced: it exits with the failure's code
// and leaves the in-progress record, so the package reads as incomplete;
// the next good export repairs it, leaving no stale file.
func TestIntegrityUnversioned(t *testing.T) {
	p := newS3Pkg(t, false)
	good := goodFiles(1)
	r := p.export(t, buildZip(t, good, false))
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stderr, "bucket not versioned")

	bad := append(goodFiles(2), zfile{"new/extra.csv", content("extra", 2, 4000)}, zfile{"zz/last.bin", content("last", 2, 5000)})
	r = p.export(t, buildZip(t, bad, true))
	require.Equal(t, 3, r.code, r.stderr)
	require.Contains(t, r.stderr, "cannot be rolled back")
	rec := p.record(t)
	require.Equal(t, quiltpkg.RecordInProgress, rec.State)
	require.Contains(t, rec.Planned, intPkg+"/new/extra.csv")

	next := goodFiles(3)[:3]
	r = p.export(t, buildZip(t, next, false))
	require.Equal(t, 0, r.code, r.stderr)
	requireComplete(t, p.objects(t), next)
}

// TestIntegritySIGKILL: a run killed mid-upload cannot clean up: its
// in-progress record stays (the package reads as incomplete), and the
// next export leaves a complete package with no file of either earlier
// run that it does not hold itself.
func TestIntegritySIGKILL(t *testing.T) {
	p := newS3Pkg(t, true)
	good := goodFiles(1)
	r := p.export(t, buildZip(t, good, false))
	require.Equal(t, 0, r.code, r.stderr)

	killed := append(goodFiles(2), zfile{"a-first/new.csv", content("new", 2, 3000)}, zfile{"b-big/stream.bin", content("big", 2, 40<<20)})
	fs := serveZip(t, buildZip(t, killed, false), faultserver.Options{BytesPerSecond: 8 << 20})
	cmd := startJob(t, p.env, "export", "--download-url", fs.FileURL(), "--registry", intBucket, "--package-name", intPkg, "--readme", "--progress-interval", "100ms")
	waitProgress(t, cmd, 10<<20)
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	rec := p.record(t)
	require.Equal(t, quiltpkg.RecordInProgress, rec.State, "a killed run leaves its journal")
	require.Contains(t, p.objects(t), intPkg+"/a-first/new.csv", "the killed run had written files")

	next := goodFiles(3)[2:6]
	p.stage(t, 3)
	r = p.export(t, buildZip(t, next, false))
	require.Equal(t, 0, r.code, r.stderr)
	requireComplete(t, p.objects(t), next)
}

// TestIntegritySIGTERM: ECS stops a task with SIGTERM; the run restores
// the previous export before it exits 143.
func TestIntegritySIGTERM(t *testing.T) {
	p := newS3Pkg(t, true)
	good := goodFiles(1)
	r := p.export(t, buildZip(t, good, false))
	require.Equal(t, 0, r.code, r.stderr)
	before := p.objects(t)

	next := append(goodFiles(2), zfile{"zz/big.bin", content("big", 2, 40<<20)})
	fs := serveZip(t, buildZip(t, next, false), faultserver.Options{BytesPerSecond: 8 << 20})
	cmd := startJob(t, p.env, "export", "--download-url", fs.FileURL(), "--registry", intBucket, "--package-name", intPkg, "--readme", "--progress-interval", "100ms")
	waitProgress(t, cmd, 10<<20)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	require.True(t, ok, "%v", err)
	require.Equal(t, 143, ee.ExitCode(), cmd.stderr.String())
	requireSamePackage(t, packageOnly(before), packageOnly(p.objects(t)))
	requireComplete(t, p.objects(t), good)
}

// TestIntegrityS3Outage: S3 goes away mid-upload. The rollback cannot
// reach it either, so the in-progress record stays (the package reads as
// incomplete, no Quilt message goes out as the export did not exit 0);
// once S3 is back, the next export leaves a complete package.
func TestIntegrityS3Outage(t *testing.T) {
	p := newS3Pkg(t, true)
	good := goodFiles(1)
	r := p.export(t, buildZip(t, good, false))
	require.Equal(t, 0, r.code, r.stderr)

	px := newProxy(t, p.srv)
	env := px.env(p.env)
	next := append(goodFiles(2), zfile{"a-first/new.csv", content("new", 2, 3000)}, zfile{"zz/big.bin", content("big", 2, 40<<20)})
	fs := serveZip(t, buildZip(t, next, false), faultserver.Options{BytesPerSecond: 8 << 20})
	cmd := startJob(t, env, "export", "--download-url", fs.FileURL(), "--registry", intBucket, "--package-name", intPkg, "--readme", "--progress-interval", "100ms")
	waitProgress(t, cmd, 10<<20)
	px.down.Store(true) // every S3 request now fails with 503
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	require.True(t, ok, "%v", err)
	require.Equal(t, 4, ee.ExitCode(), cmd.stderr.String())
	require.Equal(t, quiltpkg.RecordInProgress, p.record(t).State)

	px.down.Store(false)
	last := goodFiles(3)[1:4]
	r = runJob(t, env, "export", "--download-url", buildZip(t, last, false), "--registry", intBucket, "--package-name", intPkg, "--readme")
	require.Equal(t, 0, r.code, r.stderr)
	requireComplete(t, p.objects(t), last)
}

// job is a started job binary.
type job struct {
	*exec.Cmd
	lines  chan []byte
	stderr *bytes.Buffer
}

func startJob(t *testing.T, env []string, args ...string) *job {
	t.Helper()
	cmd := exec.Command(jobBin, args...)
	cmd.Env = append(baseEnv(), env...)
	pipe, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	j := &job{Cmd: cmd, lines: make(chan []byte, 1024), stderr: &bytes.Buffer{}}
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := slices.Clone(sc.Bytes())
			j.stderr.Write(append(line, '\n'))
			select {
			case j.lines <- line:
			default:
			}
		}
		close(j.lines)
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return j
}

// waitProgress waits (at most 60 s) for a progress line past n bytes.
func waitProgress(t *testing.T, j *job, n int64) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-j.lines:
			require.True(t, ok, "the job ended before %d bytes", n)
			var l struct {
				Msg   string `json:"msg"`
				Bytes int64  `json:"bytes"`
			}
			if json.Unmarshal(line, &l) == nil && l.Msg == "progress" && l.Bytes > n {
				return
			}
		case <-timeout:
			t.Fatalf("no progress past %d bytes in 60 s", n)
		}
	}
}

// proxy is a TLS reverse proxy in front of versitygw that counts the
// requests and can play an outage (503 to everything).
type proxy struct {
	*httptest.Server
	caFile string
	down   atomic.Bool

	mu     sync.Mutex
	counts map[string]int
}

func newProxy(t *testing.T, srv *s3local.Server) *proxy {
	t.Helper()
	target, err := url.Parse(srv.Endpoint)
	require.NoError(t, err)
	ca, err := os.ReadFile(srv.CAFile)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(ca))
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 64}
	px := &proxy{counts: map[string]int{}}
	px.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		px.mu.Lock()
		px.counts[operation(r)]++
		px.mu.Unlock()
		if px.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(px.Close)
	px.caFile = filepath.Join(t.TempDir(), "proxy.pem")
	require.NoError(t, os.WriteFile(px.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: px.Certificate().Raw}), 0o644))
	return px
}

// env is base with the endpoint and CA bundle of the proxy.
func (px *proxy) env(base []string) []string {
	var out []string
	for _, kv := range base {
		if !strings.HasPrefix(kv, "AWS_ENDPOINT_URL_S3=") && !strings.HasPrefix(kv, "AWS_CA_BUNDLE=") {
			out = append(out, kv)
		}
	}
	return append(out, "AWS_ENDPOINT_URL_S3="+px.URL, "AWS_CA_BUNDLE="+px.caFile)
}

func (px *proxy) take() map[string]int {
	px.mu.Lock()
	defer px.mu.Unlock()
	c := px.counts
	px.counts = map[string]int{}
	return c
}

// operation names an S3 request roughly by its API operation.
func operation(r *http.Request) string {
	q := r.URL.Query()
	switch {
	case q.Has("versioning"):
		return "GetBucketVersioning"
	case q.Has("delete"):
		return "DeleteObjects"
	case q.Has("uploads"):
		return "CreateMultipartUpload"
	case q.Has("partNumber"):
		return "UploadPart"
	case q.Has("uploadId") && r.Method == http.MethodPost:
		return "CompleteMultipartUpload"
	case q.Has("uploadId") && r.Method == http.MethodDelete:
		return "AbortMultipartUpload"
	case q.Has("list-type"):
		return "ListObjectsV2"
	case r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != "":
		return "CopyObject"
	}
	return r.Method + "Object"
}

func total(c map[string]int) int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// dirFiles is every file below dir, relative slash path to bytes.
func dirFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = b
		return nil
	}))
	return out
}

// localPkg prepares a --local-dir package: staged entry.json and
// input.json, and a file a person added.
func localPkg(t *testing.T, root string) {
	t.Helper()
	write := func(key, data string) {
		p := filepath.Join(root, filepath.FromSlash(key))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(data), 0o644))
	}
	write(quiltpkg.ControlKey(intPkg, quiltpkg.EntryName), intEntryJSON)
	write(quiltpkg.ControlKey(intPkg, quiltpkg.InputName), `{"run":1}`)
	write(dropKey, "a person's note")
}

func exportLocal(t *testing.T, root, zipPath string) run {
	t.Helper()
	return runJob(t, nil, "export", "--download-url", zipPath, "--local-dir", root, "--package-name", intPkg, "--readme")
}

// TestIntegrityLocalDir: the same guarantees in a folder. A failing rerun
// leaves the folder as the good export left it, byte for byte (files it
// replaced come back from its backups, files it never replaced are not
// touched); a good rerun removes the stale files and keeps the drop-zone
// file.
func TestIntegrityLocalDir(t *testing.T) {
	root := t.TempDir()
	localPkg(t, root)
	good := goodFiles(1)
	r := exportLocal(t, root, buildZip(t, good, false))
	require.Equal(t, 0, r.code, r.stderr)
	pkgDir := filepath.Join(root, filepath.FromSlash(intPkg))
	before := dirFiles(t, pkgDir)
	require.Len(t, before, len(good)+4)

	bad := append(goodFiles(2), zfile{"new/extra.csv", content("extra", 2, 4000)}, zfile{"zz/last.bin", content("last", 2, 5000)})
	r = exportLocal(t, root, buildZip(t, bad, true))
	require.Equal(t, 3, r.code, r.stderr)
	require.Contains(t, r.stderr, "rolled back")
	requireSamePackage(t, before, dirFiles(t, pkgDir))
	require.NoDirExists(t, filepath.Join(root, filepath.FromSlash(quiltpkg.ControlPrefix(intPkg)), "backup"))

	next := goodFiles(3)[1:3]
	r = exportLocal(t, root, buildZip(t, next, false))
	require.Equal(t, 0, r.code, r.stderr)
	got := dirFiles(t, pkgDir)
	var want []string
	for _, k := range wantKeys(next) {
		want = append(want, strings.TrimPrefix(k, intPkg+"/"))
	}
	require.Equal(t, want, sortedKeys(got))
	rec, err := quiltpkg.DecodeRecord(dirFiles(t, root)[quiltpkg.ControlKey(intPkg, quiltpkg.RecordName)])
	require.NoError(t, err)
	require.Equal(t, quiltpkg.RecordComplete, rec.State)
	require.Len(t, rec.Files, len(next)+3)
}

// mountTmpfs mounts a tmpfs of size bytes at a new folder, or skips the
// test when that is not possible (not root, no mount permission).
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: a small file system to fill needs root (mount -t tmpfs)")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("skipping: mount a %d-byte tmpfs: %v", size, err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// TestIntegrityDiskFull: a real "no space left on device" (a 2 MiB tmpfs)
// is exit 2 with a message naming the folder, not exit 1; the rollback
// leaves the previous export in place. The download's spool file on a
// full disk is exit 2 as well.
func TestIntegrityDiskFull(t *testing.T) {
	root := mountTmpfs(t, 2<<20)
	localPkg(t, root)
	good := goodFiles(1)[:4]
	r := exportLocal(t, root, buildZip(t, good, false))
	require.Equal(t, 0, r.code, r.stderr)
	pkgDir := filepath.Join(root, filepath.FromSlash(intPkg))
	before := dirFiles(t, pkgDir)

	r = exportLocal(t, root, buildZip(t, goodFiles(2), false)) // 6 MiB do not fit
	require.Equal(t, 2, r.code, r.stderr)
	require.Equal(t, "usage", r.result.Body.ErrorKind)
	require.Contains(t, r.result.Body.Error, "no space left on device")
	require.Contains(t, r.result.Body.Error, "the disk holding "+root+" is full")
	requireSamePackage(t, before, dirFiles(t, pkgDir))

	// A server without Range requests: the archive is spooled to TMPDIR.
	tmp := mountTmpfs(t, 1<<20)
	fs := serveZip(t, buildZip(t, goodFiles(3), false), faultserver.Options{NoRange: true})
	r = runJob(t, []string{"TMPDIR=" + tmp}, "export", "--download-url", fs.FileURL(), "--local-dir", t.TempDir(), "--package-name", intPkg)
	require.Equal(t, 2, r.code, r.stderr)
	require.Contains(t, r.result.Body.Error, "no space left on device")
}

// TestIntegrityRequestCount measures the S3 requests of a 2,000-file
// export through a counting proxy: a first export, a good rerun and a
// failing rerun (CRC error at the end). Set BW_MEASURE=1 to run it; set
// BW_JOB_BIN to measure another build of job (the one before the
// integrity guarantees, for the "today" figure). BW_MEASURE=medium
// measures samplezip.Medium, the bench's 2,000-file export, instead. docs/export.md,
// "Package integrity", has the figures.
func TestIntegrityRequestCount(t *testing.T) {
	if os.Getenv("BW_MEASURE") == "" {
		t.Skip("set BW_MEASURE=1 to measure the S3 requests of a 2,000-file export")
	}
	bin := jobBin
	if b := os.Getenv("BW_JOB_BIN"); b != "" {
		bin = b
	}
	p := newS3Pkg(t, true)
	// The build before the guarantees reads entry.json and input.json in
	// the package; this one reads them staged (both are written by the
	// state machine, two PUTs either way, not counted here).
	p.put(t, intPkg+"/entry.json", []byte(intEntryJSON))
	p.put(t, intPkg+"/input.json", []byte(`{"run":1}`))
	px := newProxy(t, p.srv)
	env := px.env(p.env)
	files := make([]zfile, 2000)
	for i := range files {
		files[i] = zfile{fmt.Sprintf("data/f%04d.csv", i), content("m", i, 2000+i)}
	}
	good, bad := buildZip(t, files, false), buildZip(t, files, true)
	if os.Getenv("BW_MEASURE") == "medium" {
		// The bench's 2,000-file export (500 MiB; large files go up in
		// parts), without a failing variant.
		good, _ = sample(t, samplezip.Medium())
		bad = good
	}
	exp := func(zip string) (int, map[string]int) {
		cmd := exec.Command(bin, "export", "--download-url", zip, "--registry", intBucket, "--package-name", intPkg, "--readme")
		cmd.Env = append(baseEnv(), env...)
		out, _ := cmd.CombinedOutput()
		_ = out
		return cmd.ProcessState.ExitCode(), px.take()
	}
	px.take()
	steps := []struct {
		name string
		zip  string
	}{{"first export", good}, {"good rerun", good}, {"failing rerun", bad}}
	if good == bad {
		steps = steps[:2]
	}
	for _, step := range steps {
		code, c := exp(step.zip)
		t.Logf("%-14s exit %d: %5d S3 requests %v", step.name, code, total(c), c)
	}
}

// TestIntegrityWithoutReadme: an operator's export without --readme
// replaces the archive's files and keeps the package's own files.
func TestIntegrityWithoutReadme(t *testing.T) {
	root := t.TempDir()
	localPkg(t, root)
	r := exportLocal(t, root, buildZip(t, goodFiles(1), false))
	require.Equal(t, 0, r.code, r.stderr)
	next := goodFiles(2)[:2]
	r = runJob(t, nil, "export", "--download-url", buildZip(t, next, false), "--local-dir", root, "--package-name", intPkg)
	require.Equal(t, 0, r.code, r.stderr)
	var want []string
	for _, k := range wantKeys(next) {
		want = append(want, strings.TrimPrefix(k, intPkg+"/"))
	}
	require.Equal(t, want, sortedKeys(dirFiles(t, filepath.Join(root, filepath.FromSlash(intPkg)))))
	rec, err := quiltpkg.DecodeRecord(dirFiles(t, root)[quiltpkg.ControlKey(intPkg, quiltpkg.RecordName)])
	require.NoError(t, err)
	require.Len(t, rec.Files, len(next)+3, "the archive's files and the package's own three")
}

package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/klauspost/compress/zip"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/extract"
	"benchling-webhook/internal/httprange"
	"benchling-webhook/internal/store"
	"benchling-webhook/internal/testkit/faultserver"
	"benchling-webhook/internal/testkit/s3local"
	"benchling-webhook/internal/testkit/samplezip"
	"benchling-webhook/internal/testkit/zipcorpus"
)

const partSize = 5 << 20

type env struct {
	srv    *s3local.Server
	client *s3.Client
	bucket string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := s3local.StartT(t)
	ctx := context.Background()
	client, err := srv.Client(ctx)
	require.NoError(t, err)
	bucket := "registry"
	require.NoError(t, srv.CreateBucket(ctx, bucket))
	return &env{srv: srv, client: client, bucket: bucket}
}

func (e *env) sink() *store.S3 {
	return store.NewS3(e.client, store.S3Options{Bucket: e.bucket, PartSize: partSize})
}

// serve puts the archive behind an HTTP server with Range, like a presigned S3 link.
func serve(t *testing.T, archive []byte, opts faultserver.Options) (*httprange.Source, *faultserver.Server) {
	t.Helper()
	fs := faultserver.New(bytes.NewReader(archive), int64(len(archive)), opts)
	t.Cleanup(fs.Close)
	src, err := httprange.Open(context.Background(), fs.FileURL(), httprange.Options{
		MaxSpool: 1 << 30, TempDir: t.TempDir(), InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
	})
	require.NoError(t, err)
	t.Cleanup(func() { src.Close() })
	return src, fs
}

func (e *env) requireEmpty(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	objs, err := e.srv.Objects(ctx, e.bucket, "")
	require.NoError(t, err)
	require.Empty(t, keysOf(objs), "no object may be left behind")
	ups, err := e.srv.PendingUploads(ctx, e.bucket)
	require.NoError(t, err)
	require.Empty(t, ups, "no multipart upload may be left pending")
}

// TestExportToS3 streams a realistic export with small and multipart
// entries over HTTP Range into the local S3 server, and checks every byte.
func TestExportToS3(t *testing.T) {
	e := newEnv(t)
	spec := samplezip.Small()
	spec.Large = []int64{12<<20 + 12345} // three parts
	spec.Names = []string{"odd/a b #1 50%?.csv", "odd/résumé Ω.txt", "odd/literal%2Fslash.txt", "odd/empty.txt"}
	var buf bytes.Buffer
	m, err := samplezip.Write(&buf, spec)
	require.NoError(t, err)
	src, fs := serve(t, buf.Bytes(), faultserver.Options{})

	res, err := extract.Run(context.Background(), src, e.sink(), extract.Options{
		Prefix: "benchling/etr_123", SmallEntry: partSize, Concurrency: 4,
	})
	require.NoError(t, err)
	require.Len(t, res.Files, len(m.Entries))

	objs, err := e.srv.Objects(context.Background(), e.bucket, "benchling/etr_123/")
	require.NoError(t, err)
	require.Len(t, objs, len(m.Entries))
	for _, want := range m.Entries {
		got, ok := objs["benchling/etr_123/"+want.Name]
		require.True(t, ok, "missing %q", want.Name)
		sum := sha256.Sum256(got)
		require.Equal(t, want.SHA256, hex.EncodeToString(sum[:]), want.Name)
	}
	for _, n := range spec.Names {
		require.Contains(t, objs, "benchling/etr_123/"+n)
	}

	// S3 holds the archive's CRC-32 as the full-object checksum, multipart included.
	for _, f := range res.Files {
		head, err := e.client.HeadObject(context.Background(), &s3.HeadObjectInput{
			Bucket: aws.String(e.bucket), Key: aws.String(f.Key), ChecksumMode: s3types.ChecksumModeEnabled,
		})
		require.NoError(t, err)
		require.Equal(t, f.Size, aws.ToInt64(head.ContentLength))
		if f.Size > partSize {
			require.Equal(t, s3types.ChecksumTypeFullObject, head.ChecksumType, f.Key)
		}
		require.NotEmpty(t, aws.ToString(head.ChecksumCRC32), f.Key)
	}

	// The archive was fetched about once.
	require.LessOrEqual(t, float64(fs.BytesSent()), 1.05*float64(len(buf.Bytes()))+float64(1<<20))
	e.requireEmptyUploads(t)
}

func (e *env) requireEmptyUploads(t *testing.T) {
	ups, err := e.srv.PendingUploads(context.Background(), e.bucket)
	require.NoError(t, err)
	require.Empty(t, ups)
}

// TestValidCorpusToS3: every valid corpus archive (odd names with spaces,
// '#', '%', '?', '+', non-ASCII; empty files; zip64; zstd; data
// descriptors; prepended stubs) lands at exactly the expected keys with
// exactly the expected content.
func TestValidCorpusToS3(t *testing.T) {
	e := newEnv(t)
	for i, tc := range zipcorpus.Cases() {
		if tc.Want != "" {
			continue
		}
		t.Run(tc.Name, func(t *testing.T) {
			prefix := fmt.Sprintf("benchling/etr_%d", i)
			src, _ := serve(t, tc.Build(), faultserver.Options{})
			_, err := extract.Run(context.Background(), src, e.sink(), extract.Options{Prefix: prefix, SmallEntry: partSize})
			require.NoError(t, err)
			objs, err := e.srv.Objects(context.Background(), e.bucket, prefix+"/")
			require.NoError(t, err)
			got := map[string]string{}
			for k, v := range objs {
				got[strings.TrimPrefix(k, prefix+"/")] = string(v)
			}
			require.Equal(t, tc.Files, got)
		})
	}
}

// TestHostileToS3: every refused corpus archive leaves the bucket empty.
func TestHostileToS3(t *testing.T) {
	e := newEnv(t)
	for _, tc := range zipcorpus.Cases() {
		if tc.Want == "" {
			continue
		}
		t.Run(tc.Name, func(t *testing.T) {
			archive := tc.Build()
			fs := faultserver.New(bytes.NewReader(archive), int64(len(archive)), faultserver.Options{})
			defer fs.Close()
			src, err := httprange.Open(context.Background(), fs.FileURL(), httprange.Options{})
			if err == nil {
				defer src.Close()
				_, err = extract.Run(context.Background(), src, e.sink(), extract.Options{Prefix: "p", SmallEntry: partSize})
			}
			require.Error(t, err)
			require.Equal(t, exitcode.BadInput, exitcode.Resolve(err), "%v", err)
			e.requireEmpty(t)
		})
	}
}

// corruptLast builds an archive of small files followed by one multipart
// entry whose CRC in the central directory is wrong, so the failure shows
// only at the very end of the stream, after parts were uploaded.
func corruptLast(t *testing.T, size int) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := range 5 {
		w, err := zw.Create("small/" + string(rune('a'+i)) + ".txt")
		require.NoError(t, err)
		w.Write(bytes.Repeat([]byte("x"), 1000+i))
	}
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "big.bin", Method: zip.Store})
	require.NoError(t, err)
	w.Write(data)
	require.NoError(t, zw.Close())
	b := buf.Bytes()
	// Patch the CRC of big.bin in the central directory (and the data
	// descriptor the writer used), both hold crc32 of data.
	good := crc32.ChecksumIEEE(data)
	var le [4]byte
	le[0], le[1], le[2], le[3] = byte(good), byte(good>>8), byte(good>>16), byte(good>>24)
	bad := good ^ 0xdeadbeef
	n := 0
	for i := 0; i+4 <= len(b); i++ {
		if bytes.Equal(b[i:i+4], le[:]) {
			b[i], b[i+1], b[i+2], b[i+3] = byte(bad), byte(bad>>8), byte(bad>>16), byte(bad>>24)
			n++
		}
	}
	require.Positive(t, n)
	return b
}

func TestChecksumFailureAfterPartsLeavesNothing(t *testing.T) {
	e := newEnv(t)
	src, _ := serve(t, corruptLast(t, 11<<20), faultserver.Options{})
	_, err := extract.Run(context.Background(), src, e.sink(), extract.Options{Prefix: "p", SmallEntry: partSize, Concurrency: 1})
	require.ErrorIs(t, err, extract.ErrChecksum)
	require.Equal(t, exitcode.BadInput, exitcode.Resolve(err))
	e.requireEmpty(t)
}

// TestCancelAbortsMultipart: a cancellation (SIGTERM) in the middle of a
// multipart upload aborts it and rolls back what was written.
func TestCancelAbortsMultipart(t *testing.T) {
	e := newEnv(t)
	archive := corruptLast(t, 40<<20) // the CRC is never reached: we cancel first
	src, _ := serve(t, archive, faultserver.Options{BytesPerSecond: 8 << 20})
	ctx, cancel := context.WithCancel(context.Background())
	var p extract.Progress
	go func() {
		for p.BytesDone.Load() < 12<<20 {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	start := time.Now()
	_, err := extract.Run(ctx, src, e.sink(), extract.Options{Prefix: "p", SmallEntry: partSize, Progress: &p})
	require.ErrorIs(t, err, context.Canceled)
	require.Less(t, time.Since(start), 20*time.Second)
	e.requireEmpty(t)
}

func TestDownloadCutsAreResumed(t *testing.T) {
	e := newEnv(t)
	spec := samplezip.Small()
	spec.Large = []int64{7 << 20}
	var buf bytes.Buffer
	m, err := samplezip.Write(&buf, spec)
	require.NoError(t, err)
	src, _ := serve(t, buf.Bytes(), faultserver.Options{CutAfter: 300 << 10, CutTimes: 5, FailFirst: 0})
	_, err = extract.Run(context.Background(), src, e.sink(), extract.Options{Prefix: "p", SmallEntry: partSize})
	require.NoError(t, err)
	objs, err := e.srv.Objects(context.Background(), e.bucket, "p/")
	require.NoError(t, err)
	require.Len(t, objs, len(m.Entries))
	require.Positive(t, src.Stats().Retries)
}

func TestConfigErrors(t *testing.T) {
	e := newEnv(t)
	s := store.NewS3(e.client, store.S3Options{Bucket: "no-such-bucket"})
	_, err := s.Put(context.Background(), "k", bytes.NewReader([]byte("x")), 1, crc32.ChecksumIEEE([]byte("x")))
	require.Error(t, err)
	require.Equal(t, exitcode.Usage, exitcode.Resolve(err), "%v", err)

	// A wrong checksum is refused by the server (BadDigest) and leaves nothing.
	s = e.sink()
	_, err = s.Put(context.Background(), "k", bytes.NewReader([]byte("x")), 1, 12345)
	require.Error(t, err)
	e.requireEmpty(t)
}

func TestDirStore(t *testing.T) {
	dir := t.TempDir()
	d, err := store.NewDir(dir)
	require.NoError(t, err)
	defer d.Close()
	ctx := context.Background()
	_, err = d.Put(ctx, "p/a b/#c%.txt", strings.NewReader("hello"), 5, 0)
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(dir, "p", "a b", "#c%.txt"))
	require.NoError(t, err)
	require.Equal(t, "hello", string(b))

	// A failing body leaves no file, not even a partial one.
	_, err = d.Put(ctx, "p/bad.txt", io.MultiReader(strings.NewReader("abc"), errReader{}), 10, 0)
	require.Error(t, err)
	ents, err := os.ReadDir(filepath.Join(dir, "p"))
	require.NoError(t, err)
	require.Len(t, ents, 1) // only "a b"

	// A short body is an error too.
	_, err = d.Put(ctx, "p/short.txt", strings.NewReader("abc"), 10, 0)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)

	// A symlink planted in the folder cannot lead outside it.
	outside := t.TempDir()
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "p", "link")))
	_, err = d.Put(ctx, "p/link/x.txt", strings.NewReader("x"), 1, 0)
	require.Error(t, err)
	ents, _ = os.ReadDir(outside)
	require.Empty(t, ents)

	require.NoError(t, d.Delete(ctx, []string{"p/a b/#c%.txt", "p/missing"}))
	_, err = os.Stat(filepath.Join(dir, "p", "a b", "#c%.txt"))
	require.True(t, errors.Is(err, os.ErrNotExist))
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

func keysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestS3Get(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := store.NewS3(e.client, store.S3Options{Bucket: e.bucket, ContentType: func(key string) string {
		if strings.HasSuffix(key, ".md") {
			return "text/markdown; charset=utf-8"
		}
		return ""
	}})
	for key, body := range map[string]string{"p/entry.json": `{"id":"etr_1"}`, "p/README.md": "# hi"} {
		_, err := s.Put(ctx, key, bytes.NewReader([]byte(body)), int64(len(body)), crc32.ChecksumIEEE([]byte(body)))
		require.NoError(t, err)
	}
	// A multipart upload (a body that is not a *bytes.Reader) gets it too.
	big := bytes.Repeat([]byte("# big\n"), partSize/6+1)
	_, err := s.Put(ctx, "p/big.md", io.MultiReader(bytes.NewReader(big)), int64(len(big)), crc32.ChecksumIEEE(big))
	require.NoError(t, err)
	for key, markdown := range map[string]bool{"p/entry.json": false, "p/README.md": true, "p/big.md": true} {
		head, err := e.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(key)})
		require.NoError(t, err)
		if markdown {
			require.Equal(t, "text/markdown; charset=utf-8", aws.ToString(head.ContentType), key)
		} else {
			require.NotContains(t, aws.ToString(head.ContentType), "markdown", key)
		}
	}

	b, err := s.Get(ctx, "p/entry.json", 14)
	require.NoError(t, err)
	require.Equal(t, `{"id":"etr_1"}`, string(b))

	_, err = s.Get(ctx, "p/entry.json", 13)
	require.ErrorIs(t, err, store.ErrTooLarge)
	require.Equal(t, exitcode.BadInput, exitcode.Resolve(err))

	_, err = s.Get(ctx, "p/missing.json", 100)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorContains(t, err, "s3://registry/p/missing.json")

	_, err = store.NewS3(e.client, store.S3Options{Bucket: "no-such-bucket"}).Get(ctx, "p/entry.json", 100)
	require.Error(t, err)
	require.NotErrorIs(t, err, store.ErrNotFound)
	require.Equal(t, exitcode.Usage, exitcode.Resolve(err), "%v", err)
}

// getClient answers GetObject with err, or with body when err is nil.
type getClient struct {
	store.S3API
	body io.Reader
	err  error
}

func (c getClient) GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	if c.err != nil {
		return nil, c.err
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(c.body)}, nil
}

func TestS3GetErrorClasses(t *testing.T) {
	tests := map[string]struct {
		client   getClient
		code     int
		notFound bool
	}{
		"NoSuchKey":     {client: getClient{err: &s3types.NoSuchKey{}}, notFound: true},
		"AccessDenied":  {client: getClient{err: &smithy.GenericAPIError{Code: "AccessDenied"}}, code: exitcode.Usage},
		"NoSuchBucket":  {client: getClient{err: &smithy.GenericAPIError{Code: "NoSuchBucket"}}, code: exitcode.Usage},
		"5xx":           {client: getClient{err: &smithy.GenericAPIError{Code: "InternalError", Fault: smithy.FaultServer}}, code: exitcode.Transient},
		"network":       {client: getClient{err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}, code: exitcode.Transient},
		"body cut":      {client: getClient{body: io.MultiReader(strings.NewReader("{"), errReader{})}, code: exitcode.Transient},
		"over max":      {client: getClient{body: strings.NewReader(strings.Repeat("x", 11))}, code: exitcode.BadInput},
		"cancelled":     {client: getClient{err: context.Canceled}, code: exitcode.Internal},
		"within max ok": {client: getClient{body: strings.NewReader(strings.Repeat("x", 10))}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b, err := store.NewS3(tc.client, store.S3Options{Bucket: "b"}).Get(context.Background(), "k", 10)
			switch {
			case tc.notFound:
				require.ErrorIs(t, err, store.ErrNotFound)
			case tc.code == exitcode.OK:
				require.NoError(t, err)
				require.Len(t, b, 10)
			default:
				require.Error(t, err)
				require.NotErrorIs(t, err, store.ErrNotFound)
				require.Equal(t, tc.code, exitcode.Resolve(err), "%v", err)
			}
		})
	}
}

func TestDirGet(t *testing.T) {
	dir := t.TempDir()
	d, err := store.NewDir(dir)
	require.NoError(t, err)
	defer d.Close()
	ctx := context.Background()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "p", "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "p", "entry.json"), []byte(`{"id":"etr_1"}`), 0o644))

	b, err := d.Get(ctx, "p/entry.json", 14)
	require.NoError(t, err)
	require.Equal(t, `{"id":"etr_1"}`, string(b))

	_, err = d.Get(ctx, "p/entry.json", 13)
	require.ErrorIs(t, err, store.ErrTooLarge)
	require.Equal(t, exitcode.BadInput, exitcode.Resolve(err))

	_, err = d.Get(ctx, "p/missing.json", 100)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorContains(t, err, filepath.Join(dir, "p", "missing.json"))

	_, err = d.Get(ctx, "p/sub", 100) // a folder, not a file
	require.Error(t, err)
	require.Equal(t, exitcode.Usage, exitcode.Resolve(err), "%v", err)

	// A symlink planted in the folder cannot lead outside it.
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret.json"), []byte("{}"), 0o644))
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "p", "link")))
	_, err = d.Get(ctx, "p/link/secret.json", 100)
	require.Error(t, err)
	require.NotErrorIs(t, err, store.ErrNotFound)
	require.Equal(t, exitcode.Usage, exitcode.Resolve(err), "%v", err)
}

func TestS3Head(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := e.sink()
	before := time.Now().Add(-2 * time.Second)
	_, err := s.Put(ctx, "p/README.md", bytes.NewReader([]byte("#")), 1, crc32.ChecksumIEEE([]byte("#")))
	require.NoError(t, err)
	at, err := s.Head(ctx, "p/README.md")
	require.NoError(t, err)
	require.WithinRange(t, at, before, time.Now().Add(2*time.Second))

	at, err = s.Head(ctx, "p/missing.md")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorContains(t, err, "s3://registry/p/missing.md")
	require.True(t, at.IsZero())
}

// deniedClient denies GetObject and HeadObject of the keys below prefix
// (the SDK's codes: AccessDenied for a GET, Forbidden for a body-less
// HEAD), serves the others from keys, and lists keys unless listDenied.
type deniedClient struct {
	store.S3API
	prefix     string
	keys       []string
	listDenied bool
	lists      int
}

func (c *deniedClient) answer(key, deniedCode string) error {
	if strings.HasPrefix(key, c.prefix) {
		return answer(403, &smithy.GenericAPIError{Code: deniedCode, Message: "Access Denied"})
	}
	if !slices.Contains(c.keys, key) {
		return &s3types.NoSuchKey{}
	}
	return nil
}

// answer is err as the SDK returns an S3 answer with status.
func answer(status int, err error) error {
	return &smithy.OperationError{ServiceID: "S3", OperationName: "GetObject", Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: err},
	}}
}

func (c *deniedClient) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	if err := c.answer(*in.Key, "AccessDenied"); err != nil {
		return nil, err
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(strings.NewReader("{}"))}, nil
}

func (c *deniedClient) HeadObject(_ context.Context, in *s3.HeadObjectInput, _ ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	if err := c.answer(*in.Key, "Forbidden"); err != nil {
		return nil, err
	}
	return &s3.HeadObjectOutput{LastModified: aws.Time(time.Unix(1e9, 0))}, nil
}

func (c *deniedClient) ListObjectsV2(_ context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	c.lists++
	if c.listDenied {
		return nil, answer(403, &smithy.GenericAPIError{Code: "AccessDenied", Message: "Access Denied"})
	}
	out := &s3.ListObjectsV2Output{}
	for _, key := range c.keys {
		if strings.HasPrefix(key, *in.Prefix) {
			out.Contents = append(out.Contents, s3types.Object{Key: aws.String(key)})
		}
	}
	return out, nil
}

// TestS3ListWhenDenied: a Get or Head that S3 denies reads as not found
// when a listing works and does not show the key; a real denial stays
// one (exit 2), and other answers are left alone.
func TestS3ListWhenDenied(t *testing.T) {
	tests := map[string]struct {
		client   *deniedClient
		key      string
		notFound bool
	}{
		"missing, listing allowed": {&deniedClient{prefix: "p/etr_", keys: []string{"p/etr_there/entry.json", "p/etr_gone/entry.json.bak"}}, "p/etr_gone/entry.json", true},
		"present but denied":       {&deniedClient{prefix: "p/etr_", keys: []string{"p/etr_there/entry.json"}}, "p/etr_there/entry.json", false},
		"listing denied too":       {&deniedClient{prefix: "p/etr_", listDenied: true}, "p/etr_gone/entry.json", false},
	}
	for name, tc := range tests {
		for _, verb := range []string{"get", "head"} {
			t.Run(name+"/"+verb, func(t *testing.T) {
				tc.client.lists = 0
				s := store.NewS3(tc.client, store.S3Options{Bucket: "bucket", ListWhenDenied: true})
				var err error
				if verb == "get" {
					_, err = s.Get(t.Context(), tc.key, 100)
				} else {
					_, err = s.Head(t.Context(), tc.key)
				}
				require.Equal(t, 1, tc.client.lists)
				if tc.notFound {
					require.ErrorIs(t, err, store.ErrNotFound)
					return
				}
				require.NotErrorIs(t, err, store.ErrNotFound)
				require.ErrorContains(t, err, "Access Denied")
				require.Equal(t, exitcode.Usage, exitcode.Resolve(err))
			})
		}
	}

	// Other errors, and successes, are left alone; without the option a
	// denial is one.
	c := &deniedClient{prefix: "p/etr_", keys: []string{"q/there"}}
	s := store.NewS3(c, store.S3Options{Bucket: "bucket", ListWhenDenied: true})
	_, err := s.Get(t.Context(), "q/missing", 100)
	require.ErrorIs(t, err, store.ErrNotFound)
	at, err := s.Head(t.Context(), "q/missing")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.True(t, at.IsZero())
	_, err = s.Head(t.Context(), "q/there")
	require.NoError(t, err)
	require.Zero(t, c.lists)
	_, err = store.NewS3(c, store.S3Options{Bucket: "bucket"}).Head(t.Context(), "p/etr_gone/README.md")
	require.Equal(t, exitcode.Usage, exitcode.Resolve(err))
	require.Zero(t, c.lists)
}

package reconcile

import (
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // S3's ETag of a single-part object
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/benchling"
	"benchling-webhook/internal/extract"
	"benchling-webhook/internal/quiltpkg"
	"benchling-webhook/internal/store"
	"benchling-webhook/internal/testkit/sandbox"
	"benchling-webhook/internal/testkit/sfnfake"
	"benchling-webhook/internal/testkit/syncbuf"
)

const (
	testPrefix  = "benchling"
	testBucket  = "registry"
	testMachine = "arn:aws:states:us-east-1:123456789012:stateMachine:app-env-worker-packaging"
)

// memStore is a fake of the S3 store: objects in a map, each written a
// second after the one before (its Head time). getErr, if set, may fail a
// Get or a Head.
type memStore struct {
	mu      sync.Mutex
	objs    map[string][]byte
	written map[string]time.Time
	clock   time.Time // the time of the last write
	puts    int
	heads   int
	lists   int
	uploads []store.Upload
	aborted []string // the upload ids aborted
	getErr  func(key string) error
}

func newMemStore() *memStore {
	return &memStore{objs: map[string][]byte{}, written: map[string]time.Time{}, clock: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (m *memStore) Head(ctx context.Context, key string) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	if m.getErr != nil {
		if err := m.getErr(key); err != nil {
			return time.Time{}, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.heads++
	at, ok := m.written[key]
	if !ok {
		return time.Time{}, fmt.Errorf("head %s: %w", key, store.ErrNotFound)
	}
	return at, nil
}

// writeLocked stores b at key, written a second after the last write.
func (m *memStore) writeLocked(key string, b []byte) {
	m.clock = m.clock.Add(time.Second)
	m.objs[key] = b
	m.written[key] = m.clock
}

func (m *memStore) Get(ctx context.Context, key string, max int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if m.getErr != nil {
		if err := m.getErr(key); err != nil {
			return nil, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[key]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", key, store.ErrNotFound)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("get %s: %w", key, store.ErrTooLarge)
	}
	return bytes.Clone(b), nil
}

func (m *memStore) Put(_ context.Context, key string, body io.Reader, size int64, _ uint32) (extract.Object, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return extract.Object{}, err
	}
	if int64(len(b)) != size {
		return extract.Object{}, fmt.Errorf("put %s: %d bytes, said %d", key, len(b), size)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writeLocked(key, b)
	m.puts++
	return extract.Object{}, nil
}

// List lists the keys below prefix, with an ETag as S3 gives it (the
// quoted MD5 of the content).
func (m *memStore) List(ctx context.Context, prefix string) ([]store.ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if m.getErr != nil {
		if err := m.getErr(prefix); err != nil {
			return nil, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lists++
	var out []store.ObjectInfo
	for k, b := range m.objs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, store.ObjectInfo{Key: k, ETag: etag(b), Size: int64(len(b)), LastModified: m.written[k]})
		}
	}
	slices.SortFunc(out, func(a, b store.ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

func etag(b []byte) string { return fmt.Sprintf("%q", fmt.Sprintf("%x", md5.Sum(b))) }

func (m *memStore) ListUploads(ctx context.Context, prefix string) ([]store.Upload, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if m.getErr != nil {
		if err := m.getErr("uploads:" + prefix); err != nil {
			return nil, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Upload
	for _, u := range m.uploads {
		if strings.HasPrefix(u.Key, prefix) {
			out = append(out, u)
		}
	}
	return out, nil
}

func (m *memStore) AbortUpload(ctx context.Context, key, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.getErr != nil {
		if err := m.getErr("abort:" + key); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.uploads = slices.DeleteFunc(m.uploads, func(u store.Upload) bool { return u.Key == key && u.UploadID == id })
	m.aborted = append(m.aborted, id)
	return nil
}

func (m *memStore) delete(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objs, key)
	delete(m.written, key)
}

func (m *memStore) put(key string, b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writeLocked(key, b)
}

func (m *memStore) get(key string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[key]
	return b, ok
}

// putEntryJSON stores entity's entry.json as the state machine writes it
// (the bare entry object) with modifiedAt at.
func (m *memStore) putEntryJSON(entity string, at time.Time) {
	b, _ := json.Marshal(map[string]any{"id": entity, "modifiedAt": at.UTC().Format("2006-01-02T15:04:05.000000-07:00"), "name": "x"})
	m.put(testPrefix+"/"+entity+"/entry.json", b)
}

// putReadme stores entity's README.md, as job export writes it after
// every file of the archive.
func (m *memStore) putReadme(entity string) {
	m.put(testPrefix+"/"+entity+"/README.md", []byte("# x\n"))
}

// putPackage stores a complete package of entity as modified at at, as
// job export leaves it: a data file, entry.json, input.json, README.md,
// and the complete record of those four (without EntryModifiedAt, so
// entry.json says the version, as records of the first version of job
// export's records do).
func (m *memStore) putPackage(entity string, at time.Time) quiltpkg.Record {
	m.putEntryJSON(entity, at)
	pkg := testPrefix + "/" + entity
	m.put(pkg+"/data/plate.csv", []byte("a,b\n1,2\n"))
	m.put(pkg+"/input.json", []byte(`{"type":"reconcile"}`))
	m.putReadme(entity)
	rec := quiltpkg.Record{Package: pkg, State: quiltpkg.RecordComplete, Run: "job export 2025-01-01T00:00:00Z", StartedAt: at}
	for _, name := range []string{"data/plate.csv", "entry.json", "input.json", "README.md"} {
		b, _ := m.get(pkg + "/" + name)
		rec.Files = append(rec.Files, quiltpkg.RecordFile{Key: pkg + "/" + name, Size: int64(len(b)), CRC32: crc32.ChecksumIEEE(b), ETag: etag(b)})
	}
	m.putRecord(rec)
	return rec
}

// putRecord stores rec as the package's record.
func (m *memStore) putRecord(rec quiltpkg.Record) {
	b, err := rec.Encode()
	if err != nil {
		panic(err)
	}
	m.put(quiltpkg.ControlKey(rec.Package, quiltpkg.RecordName), b)
}

// fixture is a sandbox tenant, a fake store and a fake Step Functions.
type fixture struct {
	bench *sandbox.Server
	store *memStore
	sfn   *sfnfake.Server
	logs  *syncBuffer
}

func newFixture(t *testing.T, opts sandbox.Options) *fixture {
	t.Helper()
	opts.ClientID, opts.ClientSecret, opts.AppDefinitionID = "client", "secret-value", "appdef_test"
	b, err := sandbox.Start(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	f := &fixture{bench: b, store: newMemStore(), sfn: sfnfake.NewServer(), logs: &syncBuffer{}}
	t.Cleanup(f.sfn.Close)
	return f
}

// config returns a Config for the fixture: page size 2, clock at now, no
// pacing.
func (f *fixture) config(t *testing.T, now time.Time) Config {
	t.Helper()
	logger := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	bc, err := benchling.New(benchling.Config{BaseURL: f.bench.URL(), ClientID: "client", ClientSecret: "secret-value", Logger: logger, RetryWait: time.Millisecond})
	require.NoError(t, err)
	client := sfn.New(sfn.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(f.sfn.URL),
		Credentials:      aws.NewCredentialsCache(aws.CredentialsProviderFunc(staticCreds)),
		RetryMaxAttempts: 1,
	})
	return Config{
		Lister: bc,
		Store:  f.store,
		Packager: &Packager{Client: client, StateMachineARN: testMachine, Registry: testBucket,
			Prefix: testPrefix, BaseURL: f.bench.URL()},
		Prefix:        testPrefix,
		PageSize:      2,
		StartInterval: -1,
		Logger:        logger,
		Now:           func() time.Time { return now },
	}
}

func staticCreds(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret", Source: "test"}, nil
}

// entriesCalls returns the sandbox's GET /api/v2/entries calls.
func (f *fixture) entriesCalls() []sandbox.Call {
	var out []sandbox.Call
	for _, c := range f.bench.Calls() {
		if c.Method == http.MethodGet && c.Path == "/api/v2/entries" {
			out = append(out, c)
		}
	}
	return out
}

// started returns the entity of every execution the fake started.
func (f *fixture) started() []string {
	var out []string
	for _, e := range f.sfn.Executions() {
		var in struct{ Entity string }
		_ = json.Unmarshal([]byte(e.Input), &in)
		out = append(out, in.Entity)
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer = syncbuf.Buffer

// recorder collects the Report calls.
type recorder struct {
	mu      sync.Mutex
	actions []Action
}

func (r *recorder) report(a Action) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.actions = append(r.actions, a)
}

func (r *recorder) outcomes() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string]string{}
	for _, a := range r.actions {
		m[a.Entity] = a.Outcome
	}
	return m
}

// noSecrets checks that the logs hold neither the client secret nor a token.
func noSecrets(t *testing.T, logs string) {
	t.Helper()
	require.NotContains(t, logs, "secret-value")
	require.False(t, strings.Contains(logs, "sbx_"), "a token was logged")
}

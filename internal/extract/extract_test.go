package extract

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zip"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/testkit/zipcorpus"
)

// sentinels maps the corpus's outcome names to this package's errors.
var sentinels = map[string]error{
	"ErrNotZip":            ErrNotZip,
	"ErrInsecurePath":      ErrInsecurePath,
	"ErrEncrypted":         ErrEncrypted,
	"ErrUnsupportedMethod": ErrUnsupportedMethod,
	"ErrChecksum":          ErrChecksum,
	"ErrTruncated":         ErrTruncated,
	"ErrTooLarge":          ErrTooLarge,
	"ErrTooManyEntries":    ErrTooManyEntries,
	"ErrOverlap":           ErrOverlap,
	"ErrDuplicateName":     ErrDuplicateName,
	"ErrHeaderMismatch":    ErrHeaderMismatch,
}

func TestSentinelsCoverCorpus(t *testing.T) {
	for _, o := range zipcorpus.Outcomes() {
		require.Contains(t, sentinels, o)
	}
}

// TestCorpus runs every odd and hostile archive through Run, with small
// limits so that the concurrency and grouping paths are exercised too.
func TestCorpus(t *testing.T) {
	for _, tc := range zipcorpus.Cases() {
		t.Run(tc.Name, func(t *testing.T) {
			for _, small := range []int64{1, DefaultSmallEntry} { // streamed and in-memory paths
				sink := newMemSink()
				res, err := Run(context.Background(), newMemSource(tc.Build()), sink, Options{
					Prefix: "benchling/etr_1", Concurrency: 3, SmallEntry: small,
				})
				if tc.Want != "" {
					require.ErrorIs(t, err, sentinels[tc.Want], "%s: %s", tc.Note, err)
					require.Equal(t, exitcode.BadInput, exitcode.Resolve(err))
					require.NotContains(t, err.Error(), "\n", "errors are one line")
					require.Empty(t, sink.snapshot(), "a refused archive leaves nothing behind")
					continue
				}
				require.NoError(t, err, tc.Note)
				got := map[string]string{}
				for k, v := range sink.snapshot() {
					name, ok := strings.CutPrefix(k, "benchling/etr_1/")
					require.True(t, ok, "key %q outside the prefix", k)
					got[name] = string(v)
				}
				require.Equal(t, tc.Files, got)
				require.Len(t, res.Files, len(tc.Files))
				var total int64
				for _, f := range res.Files {
					require.Equal(t, "benchling/etr_1/"+f.Name, f.Key)
					require.Equal(t, int64(len(tc.Files[f.Name])), f.Size)
					require.Len(t, f.CRC32, 8)
					total += f.Size
				}
				require.Equal(t, total, res.Bytes)
			}
		})
	}
}

// TestCorpusToDir checks the same outcomes through the local-folder store:
// names land at the expected paths, and refused archives leave no file.
func TestCorpusToDir(t *testing.T) {
	for _, tc := range zipcorpus.Cases() {
		t.Run(tc.Name, func(t *testing.T) {
			dir := t.TempDir()
			sink := newDirSink(t, dir)
			_, err := Run(context.Background(), newMemSource(tc.Build()), sink, Options{Prefix: "p"})
			files := listFiles(t, dir)
			if tc.Want != "" {
				require.ErrorIs(t, err, sentinels[tc.Want])
				require.Empty(t, files)
				return
			}
			require.NoError(t, err)
			want := map[string]string{}
			for k, v := range tc.Files {
				want["p/"+k] = v
			}
			require.Equal(t, want, files)
		})
	}
}

func TestLimits(t *testing.T) {
	many := zipcorpus.ManyEntries(50)
	_, err := Run(context.Background(), newMemSource(many), newMemSink(), Options{MaxEntries: 49})
	require.ErrorIs(t, err, ErrTooManyEntries)
	_, err = Run(context.Background(), newMemSource(many), newMemSink(), Options{MaxEntries: 50})
	require.NoError(t, err)

	_, err = Run(context.Background(), newMemSource(zipcorpus.DeclaredHuge()), newMemSink(), Options{})
	require.ErrorIs(t, err, ErrTooLarge)

	// The cap counts declared bytes: a 10-byte limit refuses an 11-byte file before reading it.
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("a.txt")
	w.Write([]byte("hello world"))
	zw.Close()
	_, err = Run(context.Background(), newMemSource(buf.Bytes()), newMemSink(), Options{MaxTotalBytes: 10})
	require.ErrorIs(t, err, ErrTooLarge)
	_, err = Run(context.Background(), newMemSource(buf.Bytes()), newMemSink(), Options{MaxTotalBytes: 11})
	require.NoError(t, err)
}

// TestRollback: when an entry fails after others were stored, the stored
// ones are deleted.
func TestRollback(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range []string{"a.txt", "b.txt", "c.txt", "d.txt"} {
		w, _ := zw.Create(n)
		w.Write([]byte(strings.Repeat(n, 100)))
	}
	zw.Close()
	sink := newMemSink()
	sink.failKey = "p/d.txt"
	_, err := Run(context.Background(), newMemSource(buf.Bytes()), sink, Options{Prefix: "p", Concurrency: 1})
	require.ErrorIs(t, err, errStoreFailed)
	require.Empty(t, sink.snapshot())
	require.ElementsMatch(t, []string{"p/a.txt", "p/b.txt", "p/c.txt", "p/d.txt"}, sink.deleted)
}

func TestCancel(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("a.txt")
	w.Write([]byte("x"))
	zw.Close()
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(exitcode.Interrupted{Signal: os.Interrupt})
	_, err := Run(ctx, newMemSource(buf.Bytes()), newMemSink(), Options{})
	require.Error(t, err)
}

func TestZstdEntry(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	zw.RegisterCompressor(zstd.ZipMethodWinZip, zstd.ZipCompressor())
	data := bytes.Repeat([]byte("zstd inside zip "), 100_000)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "z.txt", Method: zstd.ZipMethodWinZip})
	require.NoError(t, err)
	w.Write(data)
	zw.Close()
	for _, small := range []int64{1, DefaultSmallEntry} {
		sink := newMemSink()
		_, err = Run(context.Background(), newMemSource(buf.Bytes()), sink, Options{SmallEntry: small})
		require.NoError(t, err)
		require.Equal(t, data, sink.snapshot()["z.txt"])
	}
}

// FuzzArchive feeds arbitrary bytes to Run. It must not panic, and whenever
// Run accepts an archive, every stored file must equal what the zip
// library itself reads for that entry (a differential check).
func FuzzArchive(f *testing.F) {
	for _, tc := range zipcorpus.Cases() {
		f.Add(tc.Build())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sink := newMemSink()
		res, err := Run(context.Background(), newMemSource(data), sink, Options{
			Prefix: "p", MaxEntries: 100, MaxTotalBytes: 1 << 20, Concurrency: 2, SmallEntry: 64,
		})
		if err != nil {
			if exitcode.Resolve(err) != exitcode.BadInput {
				t.Fatalf("error without the bad-input code: %v", err)
			}
			if len(sink.snapshot()) != 0 {
				t.Fatalf("refused archive left objects: %v", err)
			}
			return
		}
		zr, zerr := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if zerr != nil {
			t.Fatalf("accepted an archive the library refuses: %v", zerr)
		}
		zr.RegisterDecompressor(zstd.ZipMethodWinZip, zstd.ZipDecompressor())
		got := sink.snapshot()
		if len(got) != len(res.Files) {
			t.Fatalf("%d objects, %d results", len(got), len(res.Files))
		}
		for _, zf := range zr.File {
			if strings.HasSuffix(zf.Name, "/") {
				continue
			}
			rc, err := zf.Open()
			if err != nil {
				t.Fatalf("library cannot open accepted entry %q: %v", zf.Name, err)
			}
			want, err := io.ReadAll(rc)
			if err != nil && !errors.Is(err, zip.ErrChecksum) {
				t.Fatalf("library cannot read accepted entry %q: %v", zf.Name, err)
			}
			if !bytes.Equal(got["p/"+zf.Name], want) {
				t.Fatalf("entry %q: stored %d bytes, library reads %d", zf.Name, len(got["p/"+zf.Name]), len(want))
			}
		}
	})
}

func listFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	require.NoError(t, err)
	return out
}

func TestWithGrace(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	ctx, stop := withGrace(parent, 50*time.Millisecond)
	defer stop()
	cancel()
	require.NoError(t, ctx.Err(), "a request under way keeps going for the grace period")
	require.Eventually(t, func() bool { return ctx.Err() != nil }, 5*time.Second, 5*time.Millisecond)

	ctx, stop = withGrace(context.Background(), time.Hour)
	stop()
	require.Error(t, ctx.Err(), "cancel ends it at once")
}

func TestBufferPool(t *testing.T) {
	var p bufferPool
	for _, n := range []int64{0, 1, 4096, 4097, 1 << 20, 5<<20 + 3} {
		b := p.get(n)
		require.Len(t, b, int(n))
		require.Equal(t, bufSize(n), int64(cap(b)))
		require.GreaterOrEqual(t, int64(cap(b)), n)
		require.LessOrEqual(t, int64(cap(b)), max(2*n, 4096))
		p.put(b)
		b2 := p.get(n)
		require.Len(t, b2, int(n))
		p.put(b2)
	}
	p.put(make([]byte, 100)) // not from the pool: ignored
}

// TestBeforeWriteAndKeepOnError: BeforeWrite sees every key before the
// first write, and its error ends the run with nothing written; with
// KeepOnError a failed run leaves its writes and reports them.
func TestBeforeWriteAndKeepOnError(t *testing.T) {
	i := slicesIndex(zipcorpus.Cases(), "crc-mismatch")
	bad := zipcorpus.Cases()[i]
	good := zipcorpus.Cases()[slicesIndex(zipcorpus.Cases(), "deflate")]

	sink := newMemSink()
	var planned []string
	_, err := Run(context.Background(), newMemSource(good.Build()), sink, Options{Prefix: "p", BeforeWrite: func(_ context.Context, keys []string) error {
		require.Empty(t, sink.snapshot(), "called before the first write")
		planned = keys
		return errors.New("journal failed")
	}})
	require.ErrorContains(t, err, "journal failed")
	require.Len(t, planned, len(good.Files))
	require.Empty(t, sink.snapshot())

	sink = newMemSink()
	res, err := Run(context.Background(), newMemSource(bad.Build()), sink, Options{Prefix: "p", KeepOnError: true, Concurrency: 1})
	require.ErrorIs(t, err, ErrChecksum)
	require.NotEmpty(t, res.Attempted)
	require.Empty(t, sink.deleted, "nothing deleted: the caller rolls back")
	for _, f := range res.Files {
		require.Contains(t, sink.snapshot(), f.Key)
	}
}

func slicesIndex(cs []zipcorpus.Case, name string) int {
	for i, c := range cs {
		if c.Name == name {
			return i
		}
	}
	panic("no corpus case " + name)
}

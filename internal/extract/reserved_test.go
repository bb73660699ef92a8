package extract

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/klauspost/compress/zip"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/exitcode"
)

// reservedMeta are the names "job export --readme" reserves
// (quiltpkg.Reserved, which this package cannot import: it imports extract).
var reservedMeta = []string{"README.md", "entry.json", "input.json"}

// zipOf builds an archive of the named entries (a trailing slash makes a
// folder), each holding its own name.
func zipOf(t *testing.T, names ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range names {
		w, err := zw.Create(n)
		require.NoError(t, err)
		if !strings.HasSuffix(n, "/") {
			_, err = w.Write([]byte(n))
			require.NoError(t, err)
		}
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// TestReservedNames runs a small corpus of archives against Reserved, in
// the style of TestCorpus: each refused archive fails with
// ErrReservedName before anything is written, in memory and in a folder.
func TestReservedNames(t *testing.T) {
	tests := []struct {
		name    string
		entries []string
		refused bool
	}{
		{"readme at root", []string{"a.txt", "README.md"}, true},
		{"entry.json at root", []string{"entry.json", "b.txt"}, true},
		{"input.json at root", []string{"input.json"}, true},
		{"folder named like a reserved file", []string{"README.md/", "a.txt"}, true},
		{"file below a reserved name", []string{"entry.json/x.txt"}, true},
		{"reserved name in a subfolder", []string{"docs/README.md", "x/entry.json", "y/input.json"}, false},
		{"other case", []string{"readme.md", "Entry.JSON"}, false},
		{"longer name", []string{"README.md.bak", "entry.json5", "input.jsonl"}, false},
		{"no reserved names", []string{"a.txt", "b/c.txt"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := zipOf(t, tc.entries...)
			mem := newMemSink()
			_, err := Run(context.Background(), newMemSource(data), mem, Options{Prefix: "p", Reserved: reservedMeta})
			dir := t.TempDir()
			_, derr := Run(context.Background(), newMemSource(data), newDirSink(t, dir), Options{Prefix: "p", Reserved: reservedMeta})
			if !tc.refused {
				require.NoError(t, err)
				require.NoError(t, derr)
				return
			}
			for _, err := range []error{err, derr} {
				require.ErrorIs(t, err, ErrReservedName)
				require.Equal(t, exitcode.BadInput, exitcode.Resolve(err))
				require.Contains(t, err.Error(), "clashes with the package's own")
			}
			require.Empty(t, mem.snapshot(), "a refused archive leaves nothing behind")
			require.Empty(t, mem.deleted, "refused in the plan: nothing to roll back")
			require.Empty(t, listFiles(t, dir))

			// Without Reserved the same archive is fine (unless it has a
			// folder and a file of one name, which is refused anyway).
			if !strings.HasSuffix(tc.entries[0], "/") {
				_, err = Run(context.Background(), newMemSource(data), newMemSink(), Options{Prefix: "p"})
				require.NoError(t, err)
			}
		})
	}
}

func TestRollbackFunc(t *testing.T) {
	sink := newMemSink()
	for _, k := range []string{"p/a", "p/b", "p/README.md"} {
		_, err := sink.Put(context.Background(), k, strings.NewReader("x"), 1, 0)
		require.NoError(t, err)
	}
	// A cancelled context still rolls back: Rollback uses a fresh one.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var logs bytes.Buffer
	err := Rollback(ctx, sink, []string{"p/a", "p/b", "p/README.md"}, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	require.Empty(t, sink.snapshot())
	require.Contains(t, logs.String(), "rolled back")
	require.NoError(t, Rollback(ctx, sink, nil, Options{}))
}

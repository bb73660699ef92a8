package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/quiltpkg"
	"benchling-webhook/internal/store"
)

// TestDirBackups: after StartBackup a Put that replaces a file keeps the
// old one; Restore and Delete put it back, a file never replaced is left
// alone, the record next to the backups is never backed up, and backups
// a dead run left are moved back by the next StartBackup.
func TestDirBackups(t *testing.T) {
	dir := t.TempDir()
	d, err := store.NewDir(dir)
	require.NoError(t, err)
	defer d.Close()
	ctx := context.Background()
	put := func(key, s string) {
		t.Helper()
		_, err := d.Put(ctx, key, bytes.NewReader([]byte(s)), int64(len(s)), crc32.ChecksumIEEE([]byte(s)))
		require.NoError(t, err)
	}
	read := func(key string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(key)))
		if errors.Is(err, fs.ErrNotExist) {
			return "<none>"
		}
		require.NoError(t, err)
		return string(b)
	}
	put("p/a", "a1")
	put("p/b", "b1")
	put("p/c", "c1")
	put(".packaging/p/record.json", "r1")
	require.NoError(t, d.StartBackup(".packaging/p/backup"))
	put("p/a", "a2")
	put("p/a", "a3") // the backup keeps the file from before the run
	put("p/new", "n2")
	put(".packaging/p/record.json", "r2")
	require.NoFileExists(t, filepath.Join(dir, ".packaging/p/backup/.packaging/p/record.json"))
	_, err = d.Restore(ctx, quiltpkg.RecordFile{Key: "p/a"})
	require.NoError(t, err)
	_, err = d.Restore(ctx, quiltpkg.RecordFile{Key: "p/b"}) // never replaced
	require.NoError(t, err)
	require.NoError(t, d.Delete(ctx, []string{"p/new"}))
	require.Equal(t, "a1", read("p/a"))
	require.Equal(t, "b1", read("p/b"))
	require.Equal(t, "<none>", read("p/new"))

	// A run that died: its backups go back into place at the next start.
	put("p/c", "c2")
	require.Equal(t, "c2", read("p/c"))
	d2, err := store.NewDir(dir)
	require.NoError(t, err)
	defer d2.Close()
	require.NoError(t, d2.StartBackup(".packaging/p/backup"))
	require.Equal(t, "c1", read("p/c"))
	require.NoError(t, d2.DropBackup())
	require.NoDirExists(t, filepath.Join(dir, ".packaging/p/backup"))

	files, err := d.List(ctx, "p/")
	require.NoError(t, err)
	var keys []string
	for _, f := range files {
		keys = append(keys, f.Key)
	}
	require.ElementsMatch(t, []string{"p/a", "p/b", "p/c"}, keys)
}

// TestIsDiskFull: ENOSPC, EDQUOT and EROFS, wrapped, are disk full, and
// exit 2 even without a store's code.
func TestIsDiskFull(t *testing.T) {
	for _, e := range []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS} {
		err := fmt.Errorf("write x: %w", &fs.PathError{Op: "write", Path: "x", Err: e})
		require.True(t, store.IsDiskFull(err), e)
		require.Equal(t, exitcode.Usage, exitcode.Resolve(err), e)
	}
	require.False(t, store.IsDiskFull(syscall.EIO))
	require.Equal(t, exitcode.Internal, exitcode.Resolve(syscall.EIO))
}

// TestS3Restore: Restore makes a recorded version current again (a new
// version, same bytes), also when it is already the current one; with no
// version recorded it is ErrCannotRestore.
func TestS3Restore(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	st := e.sink()
	v1, err := st.Put(ctx, "p/a b.txt", bytes.NewReader([]byte("one")), 3, crc32.ChecksumIEEE([]byte("one")))
	require.NoError(t, err)
	require.NotEmpty(t, v1.VersionID, "the test bucket is versioned")
	rec := quiltpkg.RecordFile{Key: "p/a b.txt", Size: 3, VersionID: v1.VersionID, ETag: v1.ETag}
	got, err := st.Restore(ctx, rec) // the current version already
	require.NoError(t, err)
	require.NotEmpty(t, got.VersionID) // S3 makes a new version; versitygw may keep the same
	_, err = st.Put(ctx, "p/a b.txt", bytes.NewReader([]byte("two!")), 4, crc32.ChecksumIEEE([]byte("two!")))
	require.NoError(t, err)
	_, err = st.Restore(ctx, rec)
	require.NoError(t, err)
	out, err := e.srv.Objects(ctx, e.bucket, "p/")
	require.NoError(t, err)
	require.Equal(t, "one", string(out["p/a b.txt"]))

	_, err = st.Restore(ctx, quiltpkg.RecordFile{Key: "p/a b.txt"})
	require.ErrorIs(t, err, store.ErrCannotRestore)
	_, err = st.Restore(ctx, quiltpkg.RecordFile{Key: "p/huge", VersionID: "v", Size: 6 << 30})
	require.ErrorIs(t, err, store.ErrCannotRestore)

	v, err := st.Versioned(ctx)
	require.NoError(t, err)
	require.True(t, v)
}

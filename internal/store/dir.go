package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/extract"
)

// Dir stores objects as files below a folder: key "a/b.csv" becomes
// <folder>/a/b.csv. Each file is written under a temporary name and renamed
// into place once complete, so a failed entry leaves no file. All access
// goes through an [os.Root], so no key (and no symlink planted in the
// folder) can reach outside it. Safe for concurrent use; Close it when done.
type Dir struct {
	dir  string // the folder, for messages
	root *os.Root
}

var _ extract.Sink = (*Dir)(nil)

// NewDir opens (creating if needed) the folder dir.
func NewDir(dir string) (*Dir, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, exitcode.Wrap(fmt.Errorf("store: create folder %s: %w", dir, err), exitcode.Usage)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, exitcode.Wrap(fmt.Errorf("store: open folder %s: %w", dir, err), exitcode.Usage)
	}
	return &Dir{dir: dir, root: root}, nil
}

// Close releases the folder.
func (d *Dir) Close() error { return d.root.Close() }

// Put writes body to the file for key, checking that exactly size bytes came.
func (d *Dir) Put(ctx context.Context, key string, body io.Reader, size int64, _ uint32) (obj extract.Object, err error) {
	if err := ctx.Err(); err != nil {
		return obj, err
	}
	if dir := path.Dir(key); dir != "." {
		if err := d.root.MkdirAll(dir, 0o755); err != nil {
			return obj, exitcode.Wrap(fmt.Errorf("store: create folder for %s: %w", key, err), exitcode.Usage)
		}
	}
	tmp := path.Join(path.Dir(key), ".partial-"+randomHex()+"-"+path.Base(key))
	f, err := d.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return obj, exitcode.Wrap(fmt.Errorf("store: create %s: %w", key, err), exitcode.Usage)
	}
	defer func() {
		if err != nil {
			_ = d.root.Remove(tmp)
		}
	}()
	n, err := io.Copy(f, body)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("store: write %s: %w", key, cerr)
	}
	if err != nil {
		return obj, fmt.Errorf("store: write %s: %w", key, err)
	}
	if n != size {
		return obj, fmt.Errorf("store: write %s: got %d of %d bytes: %w", key, n, size, io.ErrUnexpectedEOF)
	}
	if err := d.root.Rename(tmp, key); err != nil {
		return obj, exitcode.Wrap(fmt.Errorf("store: rename into %s: %w", key, err), exitcode.Usage)
	}
	return extract.Object{Key: key}, nil
}

// Get reads the file for key whole. It is meant for small metadata such as
// a package's entry.json, and refuses a file larger than max bytes
// ([ErrTooLarge], exit 3). A missing file is [ErrNotFound]; a file that
// cannot be read is exit 2, like the other errors of the folder.
func (d *Dir) Get(ctx context.Context, key string, max int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	where := filepath.Join(d.dir, filepath.FromSlash(key))
	f, err := d.root.Open(key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("store: read %s: %w", where, ErrNotFound)
	}
	if err != nil {
		return nil, exitcode.Wrap(fmt.Errorf("store: read %s: %w", where, err), exitcode.Usage)
	}
	defer f.Close()
	data, err := readAtMost(f, max)
	if errors.Is(err, ErrTooLarge) {
		return nil, fmt.Errorf("store: read %s: more than %d bytes: %w", where, max, err)
	}
	if err != nil {
		return nil, exitcode.Wrap(fmt.Errorf("store: read %s: %w", where, err), exitcode.Usage)
	}
	return data, nil
}

// Delete removes the files for keys; missing files are not an error.
func (d *Dir) Delete(_ context.Context, keys []string) error {
	var errs []error
	for _, k := range keys {
		if err := d.root.Remove(k); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func randomHex() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

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
	"strings"
	"sync"
	"syscall"

	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/extract"
	"benchling-webhook/internal/quiltpkg"
)

// Dir stores objects as files below a folder: key "a/b.csv" becomes
// <folder>/a/b.csv. Each file is written under a temporary name and renamed
// into place once complete, so a failed entry leaves no file. All access
// goes through an [os.Root], so no key (and no symlink planted in the
// folder) can reach outside it. Safe for concurrent use; Close it when done.
type Dir struct {
	dir  string // the folder, for messages
	root *os.Root

	mu     sync.Mutex
	backup string // with [Dir.StartBackup]: where replaced files are moved
}

var _ extract.Sink = (*Dir)(nil)

// NewDir opens (creating if needed) the folder dir.
func NewDir(dir string) (*Dir, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, (&Dir{dir: dir}).fsError(fmt.Errorf("store: create folder %s: %w", dir, err))
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
			return obj, d.fsError(fmt.Errorf("store: create folder for %s: %w", key, err))
		}
	}
	tmp := path.Join(path.Dir(key), ".partial-"+randomHex()+"-"+path.Base(key))
	f, err := d.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return obj, d.fsError(fmt.Errorf("store: create %s: %w", key, err))
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
		// The body's own errors (a CRC mismatch, a failed download) keep
		// their codes; only the disk's are the folder's.
		err = fmt.Errorf("store: write %s: %w", key, err)
		if IsDiskFull(err) {
			err = d.fsError(err)
		}
		return obj, err
	}
	if n != size {
		return obj, fmt.Errorf("store: write %s: got %d of %d bytes: %w", key, n, size, io.ErrUnexpectedEOF)
	}
	if err := d.keep(key); err != nil {
		return obj, err
	}
	if err := d.root.Rename(tmp, key); err != nil {
		return obj, d.fsError(fmt.Errorf("store: rename into %s: %w", key, err))
	}
	return extract.Object{Key: key}, nil
}

// fsError gives err, a failure of the folder, its exit code: 2 for every
// one (the folder is configuration), with a message that says so when
// the disk is full, over quota or read-only ([IsDiskFull]).
func (d *Dir) fsError(err error) error {
	if IsDiskFull(err) {
		return exitcode.Wrap(fmt.Errorf("%w: the disk holding %s is full or read-only; free space or choose another folder (a retry on the same disk cannot help)", err, d.dir), exitcode.Usage)
	}
	return exitcode.Wrap(err, exitcode.Usage)
}

// IsDiskFull reports whether err is a file system's "no space left"
// (ENOSPC), "quota exceeded" (EDQUOT) or "read-only" (EROFS).
func IsDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EROFS)
}

// StartBackup makes every later [Dir.Put] that replaces a file first move
// the old file to the same key below the folder backup (a key prefix in
// this folder, e.g. a package's control folder), where [Dir.Restore] finds
// it and [Dir.DropBackup] removes it. Files a run that died left there are
// moved back into place first: they are what the package held before it.
func (d *Dir) StartBackup(backup string) error {
	d.mu.Lock()
	d.backup = backup
	d.mu.Unlock()
	var errs []error
	err := fs.WalkDir(d.root.FS(), backup, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == backup {
				return fs.SkipAll
			}
			return err
		}
		if e.IsDir() {
			return nil
		}
		key := strings.TrimPrefix(p, backup+"/")
		if err := d.moveBack(key); err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, d.fsError(fmt.Errorf("store: read backups in %s: %w", filepath.Join(d.dir, filepath.FromSlash(backup)), err)))
	}
	return errors.Join(errs...)
}

// DropBackup removes the backups of [Dir.StartBackup] and stops taking them.
func (d *Dir) DropBackup() error {
	d.mu.Lock()
	backup := d.backup
	d.backup = ""
	d.mu.Unlock()
	if backup == "" {
		return nil
	}
	if err := d.root.RemoveAll(backup); err != nil {
		return d.fsError(fmt.Errorf("store: remove backups %s: %w", filepath.Join(d.dir, filepath.FromSlash(backup)), err))
	}
	return nil
}

// backupKey is where key's old file is kept, "" when no backup is taken.
func (d *Dir) backupKey(key string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.backup == "" {
		return ""
	}
	return d.backup + "/" + key
}

// keep moves the file at key, if any, to its backup, unless this run
// already did (the backup holds the file from before the run).
func (d *Dir) keep(key string) error {
	b := d.backupKey(key)
	if b == "" || strings.HasPrefix(key, path.Dir(strings.TrimSuffix(b, "/"+key))+"/") {
		return nil // no backups, or a file next to them (the record): never backed up
	}
	if _, err := d.root.Lstat(b); err == nil {
		return nil
	}
	if info, err := d.root.Lstat(key); errors.Is(err, fs.ErrNotExist) || (err == nil && info.IsDir()) {
		return nil // nothing to keep; a folder in the way fails the rename
	}
	if err := d.root.MkdirAll(path.Dir(b), 0o755); err != nil {
		return d.fsError(fmt.Errorf("store: create backup folder for %s: %w", key, err))
	}
	if err := d.root.Rename(key, b); err != nil {
		return d.fsError(fmt.Errorf("store: back up %s: %w", key, err))
	}
	return nil
}

// moveBack puts key's backup, if any, back in place.
func (d *Dir) moveBack(key string) error {
	b := d.backupKey(key)
	if b == "" {
		return nil
	}
	if _, err := d.root.Lstat(b); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := d.root.Rename(b, key); err != nil {
		return d.fsError(fmt.Errorf("store: restore %s: %w", key, err))
	}
	return nil
}

// Restore puts back the file this run replaced at f's key (its backup);
// a file the run never replaced is left as it is. It returns f.
func (d *Dir) Restore(_ context.Context, f quiltpkg.RecordFile) (quiltpkg.RecordFile, error) {
	return f, d.moveBack(f.Key)
}

// Versioned reports true: with [Dir.StartBackup] a folder keeps what each
// run replaced until the run ends.
func (d *Dir) Versioned(context.Context) (bool, error) { return true, nil }

// List returns the files (key, size) below prefix (which ends with a
// slash); "" lists the whole folder. Files being written (".partial-")
// are left out.
func (d *Dir) List(_ context.Context, prefix string) ([]ObjectInfo, error) {
	start := strings.TrimSuffix(prefix, "/")
	if start == "" {
		start = "."
	}
	var keys []ObjectInfo
	err := fs.WalkDir(d.root.FS(), start, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == start {
				return fs.SkipAll
			}
			return err
		}
		if e.IsDir() || strings.HasPrefix(e.Name(), ".partial-") {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		keys = append(keys, ObjectInfo{Key: p, Size: info.Size(), LastModified: info.ModTime()})
		return nil
	})
	if err != nil {
		return nil, d.fsError(fmt.Errorf("store: list %s: %w", filepath.Join(d.dir, filepath.FromSlash(prefix)), err))
	}
	return keys, nil
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
// After [Dir.StartBackup], a file this run replaced gets its old file
// back instead of none.
func (d *Dir) Delete(_ context.Context, keys []string) error {
	var errs []error
	for _, k := range keys {
		if err := d.root.Remove(k); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		if err := d.moveBack(k); err != nil {
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

package extract

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"testing"
)

// dirSink is a minimal local-folder store for this package's tests (the
// real one, store.Dir, imports this package). It writes each file under a
// temporary name and renames it into place.
type dirSink struct{ root *os.Root }

func newDirSink(t *testing.T, dir string) *dirSink {
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return &dirSink{root: r}
}

func (d *dirSink) Put(_ context.Context, key string, body io.Reader, size int64, _ uint32) (Object, error) {
	if err := d.root.MkdirAll(path.Dir(key), 0o755); err != nil {
		return Object{}, err
	}
	tmp := key + ".partial"
	f, err := d.root.Create(tmp)
	if err != nil {
		return Object{}, err
	}
	n, err := io.Copy(f, body)
	f.Close()
	if err == nil && n != size {
		err = fmt.Errorf("short write %d/%d", n, size)
	}
	if err != nil {
		d.root.Remove(tmp)
		return Object{}, err
	}
	return Object{}, d.root.Rename(tmp, key)
}

func (d *dirSink) Delete(_ context.Context, keys []string) error {
	var errs []error
	for _, k := range keys {
		errs = append(errs, d.root.Remove(k))
	}
	return errors.Join(errs...)
}

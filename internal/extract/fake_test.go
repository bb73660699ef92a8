package extract

import (
	"bytes"
	"context"
	"io"
	"maps"
	"sync"
)

// memSource is an archive in memory.
type memSource struct{ r *bytes.Reader }

func newMemSource(b []byte) *memSource { return &memSource{r: bytes.NewReader(b)} }

func (m *memSource) ReadAt(p []byte, off int64) (int, error) { return m.r.ReadAt(p, off) }
func (m *memSource) Size() int64                             { return m.r.Size() }
func (m *memSource) Stream(_ context.Context, off, n int64) io.ReadCloser {
	return io.NopCloser(io.NewSectionReader(m.r, off, n))
}

// memSink is a fake store: a map from key to content. Like a real store,
// it keeps nothing when the body fails.
type memSink struct {
	mu      sync.Mutex
	objects map[string][]byte
	deleted []string
	failKey string // Put of this key fails (after reading the body)
}

func newMemSink() *memSink { return &memSink{objects: map[string][]byte{}} }

func (s *memSink) Put(_ context.Context, key string, body io.Reader, size int64, crc uint32) (Object, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return Object{}, err
	}
	if key == s.failKey {
		return Object{}, errStoreFailed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects[key] = b
	return Object{ETag: "etag"}, nil
}

func (s *memSink) Delete(_ context.Context, keys []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		delete(s.objects, k)
		s.deleted = append(s.deleted, k)
	}
	return nil
}

func (s *memSink) snapshot() map[string][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.objects)
}

type storeError string

func (e storeError) Error() string { return string(e) }

const errStoreFailed = storeError("memsink: put failed")

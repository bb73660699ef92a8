package httprange

import (
	"errors"
	"io"
)

// ReadAt implements io.ReaderAt. Misses fetch at least BlockSize bytes.
func (s *Source) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("httprange: negative offset")
	}
	if off >= s.size {
		return 0, io.EOF
	}
	want := p
	if rest := s.size - off; int64(len(want)) > rest {
		want = want[:rest]
	}
	if s.file != nil {
		n, err := s.file.ReadAt(want, off)
		if err == nil && len(want) < len(p) {
			err = io.EOF
		}
		return n, err
	}
	n := 0
	for n < len(want) {
		m, err := s.readCached(want[n:], off+int64(n))
		n += m
		if err != nil {
			return n, err
		}
	}
	if len(want) < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readCached copies from a cached block holding off, fetching one if needed.
func (s *Source) readCached(p []byte, off int64) (int, error) {
	s.mu.Lock()
	for _, b := range s.blocks {
		if off >= b.off && off < b.off+int64(len(b.data)) {
			n := copy(p, b.data[off-b.off:])
			s.mu.Unlock()
			return n, nil
		}
	}
	s.mu.Unlock()
	n := max(int64(len(p)), s.opts.BlockSize)
	n = min(n, s.size-off)
	data := make([]byte, n)
	r := s.Stream(s.ctx, off, n)
	_, err := io.ReadFull(r, data)
	r.Close()
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	if len(s.blocks) >= 3 { // keep the tail (first) and the two newest
		s.blocks = append(s.blocks[:1], s.blocks[2:]...)
	}
	s.blocks = append(s.blocks, block{off: off, data: data})
	s.mu.Unlock()
	return copy(p, data), nil
}

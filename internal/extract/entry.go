package extract

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"
)

// Compression methods this package reads (APPNOTE.TXT 4.4.5).
const (
	methodStore       = 0
	methodDeflate     = 8
	methodZstdPKWare  = 20 // deprecated id for zstd, still written by some tools
	methodZstd        = 93
	methodAES         = 99 // WinZip AES encryption
	flagEncrypted     = 0x1
	flagDescriptor    = 0x8
	flagStrongEncrypt = 0x40
	flagMaskedHeader  = 0x2000
)

// zstdMaxWindow caps the memory a hostile zstd frame can make the decoder
// allocate. Zip tools write zstd entries with windows of a few MiB.
const zstdMaxWindow = 32 << 20

// entry is one file of the archive, checked and placed.
type entry struct {
	name     string
	key      string
	method   uint16
	crc      uint32
	csize    int64
	usize    int64
	off      int64 // local header offset
	end      int64 // no byte of this entry (header, data, descriptor) lies at or past end
	isDir    bool
	nameRaw  string // the central directory's name bytes
	flagDesc bool
}

// decoders keeps flate and zstd decoders for reuse across entries.
type decoders struct {
	flate sync.Pool // io.ReadCloser implementing flate.Resetter
	zstd  sync.Pool // *zstd.Decoder
}

// open returns a reader of e's decompressed data from raw, which yields
// exactly e.csize compressed bytes. release returns the decoder for reuse.
func (d *decoders) open(e *entry, raw io.Reader) (r io.Reader, release func(), err error) {
	switch e.method {
	case methodStore:
		return raw, func() {}, nil
	case methodDeflate:
		// The decoder has fast paths for these two readers only.
		var br flate.Reader
		switch r := raw.(type) {
		case *bytes.Reader:
			br = r
		case *bufio.Reader:
			br = r
		default:
			br = bufio.NewReaderSize(raw, 32<<10)
		}
		if fr, ok := d.flate.Get().(io.ReadCloser); ok {
			if err := fr.(flate.Resetter).Reset(br, nil); err == nil {
				return fr, func() { d.flate.Put(fr) }, nil
			}
		}
		fr := flate.NewReader(br)
		return fr, func() { d.flate.Put(fr) }, nil
	case methodZstd, methodZstdPKWare:
		if zr, ok := d.zstd.Get().(*zstd.Decoder); ok {
			if err := zr.Reset(raw); err == nil {
				return zr, func() { _ = zr.Reset(nil); d.zstd.Put(zr) }, nil
			}
			zr.Close()
		}
		zr, err := zstd.NewReader(raw,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxWindow),
		)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: entry %q: %w", ErrChecksum, e.name, err)
		}
		return zr, func() { _ = zr.Reset(nil); d.zstd.Put(zr) }, nil
	}
	return nil, nil, fmt.Errorf("%w: entry %q uses method %d", ErrUnsupportedMethod, e.name, e.method)
}

// readLocalHeader reads e's local header from r, positioned at e.off, checks
// it against the central directory and returns the header's length.
func readLocalHeader(r io.Reader, e *entry) (int64, error) {
	var h [localHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, fmt.Errorf("entry %q: read local header: %w", e.name, srcErr(err, ErrTruncated))
	}
	if binary.LittleEndian.Uint32(h[0:]) != localHeaderSig {
		return 0, fmt.Errorf("%w: entry %q: no local header at offset %d", ErrHeaderMismatch, e.name, e.off)
	}
	flags := binary.LittleEndian.Uint16(h[6:])
	method := binary.LittleEndian.Uint16(h[8:])
	nameLen := int64(binary.LittleEndian.Uint16(h[26:]))
	extraLen := int64(binary.LittleEndian.Uint16(h[28:]))
	name := make([]byte, nameLen)
	if _, err := io.ReadFull(r, name); err != nil {
		return 0, fmt.Errorf("entry %q: read local header: %w", e.name, srcErr(err, ErrTruncated))
	}
	switch {
	case string(name) != e.nameRaw:
		return 0, fmt.Errorf("%w: entry %q is named %q in its local header", ErrHeaderMismatch, e.name, name)
	case method != e.method:
		return 0, fmt.Errorf("%w: entry %q: method %d in its local header, %d in the directory", ErrHeaderMismatch, e.name, method, e.method)
	case flags&(flagEncrypted|flagStrongEncrypt) != 0:
		return 0, fmt.Errorf("%w: entry %q", ErrEncrypted, e.name)
	}
	if _, err := io.CopyN(io.Discard, r, extraLen); err != nil {
		return 0, fmt.Errorf("entry %q: read local header: %w", e.name, srcErr(err, ErrTruncated))
	}
	hlen := localHeaderLen + nameLen + extraLen
	if e.off+hlen+e.csize > e.end {
		return 0, fmt.Errorf("%w: entry %q: its data (%d bytes at offset %d) runs into the next entry or the directory at %d",
			ErrOverlap, e.name, e.csize, e.off+hlen, e.end)
	}
	return hlen, nil
}

// sourceError marks an error that came from reading the archive itself (the
// network or the disk), so that it keeps its own classification instead of
// being reported as bad data.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// srcErr turns an early end of the archive into sentinel, and keeps other
// read errors (network, cancellation) as they are.
func srcErr(err error, sentinel error) error {
	var se *sourceError
	if errors.As(err, &se) {
		return se.err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %w", sentinel, err)
	}
	return err
}

// limitedReader reads at most n bytes from a bufio.Reader, and can skip
// what is left.
type limitedReader struct {
	br *bufio.Reader
	n  int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.br.Read(p)
	l.n -= int64(n)
	return n, err
}

// rest discards what the decoder did not read.
func (l *limitedReader) rest() error {
	n, err := l.br.Discard(int(l.n))
	l.n -= int64(n)
	return err
}

// rawReader reads the compressed bytes and tags read errors as source errors.
type rawReader struct {
	r io.Reader
}

func (r *rawReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = &sourceError{err: err}
	}
	return n, err
}

// checkReader passes decompressed data through, and at the end checks the
// length and the CRC-32 against the central directory. It never trusts a
// CRC field of zero: the checksum of non-empty data is compared like any
// other (some readers skip the check when the field is 0).
type checkReader struct {
	e       *entry
	r       io.Reader
	n       int64
	crc     hash.Hash32
	counter *atomic.Int64
	done    bool
	empty   int // reads in a row that returned nothing
}

func newCheckReader(e *entry, r io.Reader, counter *atomic.Int64) *checkReader {
	return &checkReader{e: e, r: r, crc: crc32.NewIEEE(), counter: counter}
}

func (c *checkReader) Read(p []byte) (int, error) {
	if c.done {
		return 0, io.EOF
	}
	n, err := c.r.Read(p)
	if c.n+int64(n) > c.e.usize {
		return 0, fmt.Errorf("%w: entry %q holds more than its declared %d bytes", ErrChecksum, c.e.name, c.e.usize)
	}
	c.n += int64(n)
	c.crc.Write(p[:n])
	if c.counter != nil {
		c.counter.Add(int64(n))
	}
	switch {
	case err == nil && n == 0:
		if c.empty++; c.empty >= 100 {
			return 0, fmt.Errorf("%w: entry %q: the decoder makes no progress", ErrChecksum, c.e.name)
		}
		return 0, nil
	case err == nil:
		c.empty = 0
		return n, nil
	case err == io.EOF:
		if c.n < c.e.usize {
			return n, fmt.Errorf("%w: entry %q: %d of %d bytes", ErrTruncated, c.e.name, c.n, c.e.usize)
		}
		if got := c.crc.Sum32(); got != c.e.crc {
			return n, fmt.Errorf("%w: entry %q: CRC-32 %08x, the directory says %08x", ErrChecksum, c.e.name, got, c.e.crc)
		}
		c.done = true
		return n, io.EOF
	}
	var se *sourceError
	var ce flate.CorruptInputError
	switch {
	case errors.As(err, &se):
		return n, fmt.Errorf("entry %q: %w", c.e.name, se.err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return n, fmt.Errorf("%w: entry %q: compressed data ends early after %d bytes", ErrTruncated, c.e.name, c.n)
	case errors.As(err, &ce), errors.Is(err, zstd.ErrMagicMismatch), isZstdDataError(err):
		return n, fmt.Errorf("%w: entry %q: corrupt compressed data: %w", ErrChecksum, c.e.name, err)
	}
	return n, fmt.Errorf("entry %q: %w", c.e.name, err)
}

func isZstdDataError(err error) bool {
	for _, e := range []error{zstd.ErrBlockTooSmall, zstd.ErrReservedBlockType, zstd.ErrCompressedSizeTooBig,
		zstd.ErrWindowSizeExceeded, zstd.ErrWindowSizeTooSmall, zstd.ErrDecoderSizeExceeded, zstd.ErrUnknownDictionary,
		zstd.ErrFrameSizeExceeded, zstd.ErrFrameSizeMismatch, zstd.ErrCRCMismatch} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

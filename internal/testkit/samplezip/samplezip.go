// Package samplezip writes realistic, deterministic sample Benchling export
// archives, streamed in small memory. Design:
// docs/testkit.md#samplezip-realistic-sample-exports.
package samplezip

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zip"
	"github.com/klauspost/compress/zstd"
)

// MethodZstd is the ZIP compression method id for Zstandard used by WinZip
// and by [zstd.ZipMethodWinZip]. Readers must register
// [zstd.ZipDecompressor] for it (on the Reader, not globally) to read
// entries written with Spec.Zstd.
const MethodZstd uint16 = zstd.ZipMethodWinZip

// chunkSize is the size of the buffer each entry is generated in.
const chunkSize = 256 << 10

// ErrInvalidSpec is returned (wrapped) by [Write] and [WriteFile] when the
// Spec cannot be generated.
var ErrInvalidSpec = errors.New("samplezip: invalid spec")

// Spec describes a sample archive. The zero value is a valid, empty archive.
type Spec struct {
	// Files is the number of regular files. If Names has more elements,
	// Files is raised to len(Names).
	Files int

	// TotalBytes is the total uncompressed size of the regular files. It is
	// spread over them with log-normal-ish sizes around the mean
	// TotalBytes/Files; the sizes always add up to TotalBytes exactly.
	// It must be 0 when there are no regular files.
	TotalBytes int64

	// Compressible is the fraction (0..1) of regular files that are
	// compressible text (CSV, JSON Lines, Markdown, HTML); the rest are
	// incompressible image-like PNG/TIFF files. Text and image files are
	// interleaved evenly, and the first file is text whenever Compressible > 0.
	Compressible float64

	// Large adds one extra incompressible TIFF entry of each exact size,
	// on top of TotalBytes. They are spread evenly among the regular files.
	Large []int64

	// Seed selects the names, sizes and content.
	Seed uint64

	// Method selects compression. Because zip.Store is 0 and so cannot be
	// told apart from "unset", 0 means auto, like real zippers: text is
	// written with Deflate and image-like files with Store. zip.Deflate
	// deflates every entry. Use StoreAll to store every entry. Other values
	// are rejected. Deflate uses klauspost flate at level BestSpeed (1)
	// rather than zip's default level 5, for generation speed.
	Method uint16

	// StoreAll writes every entry with zip.Store (Method is ignored).
	// Entries selected by Zstd are still written with Zstandard.
	StoreAll bool

	// Zstd writes every second text file (the 2nd, 4th, ... text file) with
	// Zstandard, method [MethodZstd], at level SpeedFastest. The compressor
	// is registered on this archive's zip.Writer only.
	Zstd bool

	// Names, if set, are used as the names of the first len(Names) regular
	// files, in order; generated names fill in the rest and never collide
	// with them. Names are written as given: duplicates, odd characters and
	// even hostile names are allowed, which is what odd-name tests want.
	Names []string
}

// Manifest lists what [Write] wrote, in archive order.
type Manifest struct {
	// Entries holds one element per entry, in archive order.
	Entries []Entry
	// ArchiveSize is the number of bytes written.
	ArchiveSize int64
	// TotalUncompressed is the sum of Entries[i].Size.
	TotalUncompressed int64
}

// Entry describes one entry of a written archive.
type Entry struct {
	// Name is the entry name as stored in the archive.
	Name string
	// Size is the uncompressed size in bytes.
	Size int64
	// CRC32 is the IEEE CRC-32 of the content, as stored in the archive.
	CRC32 uint32
	// SHA256 is the lower-case hex SHA-256 of the content.
	SHA256 string
}

// Write writes the archive described by spec to w and returns its manifest.
// It does not close w. Write is safe for concurrent use with different
// writers; it keeps no state between calls.
func Write(w io.Writer, spec Spec) (Manifest, error) {
	if err := spec.validate(); err != nil {
		return Manifest{}, err
	}
	items := plan(spec)

	cw := &countingWriter{w: w}
	zw := zip.NewWriter(cw)
	g := newGenerator(spec.Seed)
	zw.RegisterCompressor(zip.Deflate, g.deflateCompressor)
	if spec.Zstd {
		zw.RegisterCompressor(MethodZstd, g.zstdCompressor)
	}

	base := baseTime(spec.Seed)
	m := Manifest{Entries: make([]Entry, 0, len(items))}
	for i, it := range items {
		fh := &zip.FileHeader{
			Name:     it.name,
			Method:   it.method,
			Modified: base.Add(time.Duration(i) * 7 * time.Second),
		}
		fh.SetMode(0o644)
		ew, err := zw.CreateHeader(fh)
		if err != nil {
			return Manifest{}, fmt.Errorf("create entry %q: %w", it.name, err)
		}
		e, err := g.writeEntry(ew, it, uint64(i))
		if err != nil {
			return Manifest{}, fmt.Errorf("write entry %q: %w", it.name, err)
		}
		m.Entries = append(m.Entries, e)
		m.TotalUncompressed += e.Size
	}
	if err := zw.Close(); err != nil {
		return Manifest{}, fmt.Errorf("finish archive: %w", err)
	}
	m.ArchiveSize = cw.n
	return m, nil
}

// WriteFile writes the archive described by spec to a new file at path
// (truncating an existing one) and returns its manifest.
func WriteFile(path string, spec Spec) (m Manifest, err error) {
	f, err := os.Create(path)
	if err != nil {
		return Manifest{}, fmt.Errorf("create %s: %w", path, err)
	}
	defer checkClose(f, &err)
	bw := bufio.NewWriterSize(f, 1<<20)
	m, err = Write(bw, spec)
	if err != nil {
		return Manifest{}, fmt.Errorf("write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return Manifest{}, fmt.Errorf("write %s: %w", path, err)
	}
	return m, nil
}

// checkClose closes c and, if *err is nil, stores the Close error in it.
func checkClose(c io.Closer, err *error) {
	if cerr := c.Close(); cerr != nil && *err == nil {
		*err = fmt.Errorf("close: %w", cerr)
	}
}

func (s Spec) validate() error {
	files := max(s.Files, len(s.Names))
	switch {
	case s.Files < 0:
		return fmt.Errorf("%w: Files %d is negative", ErrInvalidSpec, s.Files)
	case s.TotalBytes < 0:
		return fmt.Errorf("%w: TotalBytes %d is negative", ErrInvalidSpec, s.TotalBytes)
	case files == 0 && s.TotalBytes > 0:
		return fmt.Errorf("%w: TotalBytes %d with no files", ErrInvalidSpec, s.TotalBytes)
	case math.IsNaN(s.Compressible) || s.Compressible < 0 || s.Compressible > 1:
		return fmt.Errorf("%w: Compressible %v outside [0, 1]", ErrInvalidSpec, s.Compressible)
	case s.Method != zip.Store && s.Method != zip.Deflate:
		return fmt.Errorf("%w: Method %d is neither 0 (auto) nor zip.Deflate", ErrInvalidSpec, s.Method)
	}
	for i, n := range s.Large {
		if n < 0 {
			return fmt.Errorf("%w: Large[%d] %d is negative", ErrInvalidSpec, i, n)
		}
	}
	for i, n := range s.Names {
		if len(n) > math.MaxUint16 {
			return fmt.Errorf("%w: Names[%d] is longer than 65535 bytes", ErrInvalidSpec, i)
		}
	}
	return nil
}

// baseTime is the modification time of the first entry.
func baseTime(seed uint64) time.Time {
	return time.Date(2024, time.January, 1, 9, 0, 0, 0, time.UTC).Add(time.Duration(seed%365) * 24 * time.Hour)
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// entrySums hashes entry content as it is generated.
type entrySums struct {
	crc  uint32
	sha  [sha256.Size]byte
	size int64
}

func (s entrySums) entry(name string) Entry {
	return Entry{Name: name, Size: s.size, CRC32: s.crc, SHA256: hex.EncodeToString(s.sha[:])}
}

// generator holds the buffers and compressors reused across the entries of
// one archive. Entries are written one at a time, so a single flate and
// zstd encoder is enough; each is Reset for the next entry.
type generator struct {
	seed uint64
	buf  []byte
	fw   *flate.Writer
	zw   *zstd.Encoder
}

func newGenerator(seed uint64) *generator {
	return &generator{seed: seed, buf: make([]byte, 0, chunkSize+4096)}
}

func (g *generator) deflateCompressor(w io.Writer) (io.WriteCloser, error) {
	if g.fw == nil {
		fw, err := flate.NewWriter(w, flate.BestSpeed)
		if err != nil {
			return nil, fmt.Errorf("new flate writer: %w", err)
		}
		g.fw = fw
		return fw, nil
	}
	g.fw.Reset(w)
	return g.fw, nil
}

func (g *generator) zstdCompressor(w io.Writer) (io.WriteCloser, error) {
	if g.zw == nil {
		zw, err := zstd.NewWriter(w,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(1<<20),
			zstd.WithLowerEncoderMem(true))
		if err != nil {
			return nil, fmt.Errorf("new zstd writer: %w", err)
		}
		g.zw = zw
	} else {
		g.zw.Reset(w)
	}
	// The zip writer closes what it is given after each entry; Encoder.Close
	// ends the frame and leaves the Encoder reusable through Reset.
	return g.zw, nil
}

// writeEntry generates the content of it into w, chunk by chunk.
func (g *generator) writeEntry(w io.Writer, it item, index uint64) (Entry, error) {
	src := newSource(it.kind, g.seed, index, it)
	crc := crc32.NewIEEE()
	sha := sha256.New()
	remaining := it.size
	for remaining > 0 {
		target := int(min(remaining, chunkSize))
		g.buf = src.fill(g.buf[:0], target)
		chunk := g.buf
		if int64(len(chunk)) > remaining {
			chunk = chunk[:remaining]
		}
		_, _ = crc.Write(chunk) // hash.Hash writes never fail
		_, _ = sha.Write(chunk)
		if _, err := w.Write(chunk); err != nil {
			return Entry{}, err
		}
		remaining -= int64(len(chunk))
	}
	var s entrySums
	s.size = it.size
	s.crc = crc.Sum32()
	sha.Sum(s.sha[:0])
	return s.entry(it.name), nil
}

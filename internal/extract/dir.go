package extract

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zip"
)

// ZIP record layout (APPNOTE.TXT, sections 4.3.7, 4.3.12, 4.3.14-16).
const (
	localHeaderSig    = 0x04034b50
	dirHeaderSig      = 0x02014b50
	dirEndSig         = 0x06054b50
	dir64LocSig       = 0x07064b50
	dir64EndSig       = 0x06064b50
	localHeaderLen    = 30
	dirHeaderLen      = 46
	dirEndLen         = 22
	dir64LocLen       = 20
	dir64EndLen       = 56
	zip64ExtraID      = 0x0001
	dataDescriptorLen = 24 // the largest form: signature, CRC, two 64-bit sizes
)

// layout is what zip.Reader does not expose: where each entry's local header
// starts, and where the central directory starts.
type layout struct {
	headerOffsets []int64 // absolute, in central directory order
	dirStart      int64
}

// readLayout finds the central directory exactly as klauspost/compress/zip
// (and the standard library) do, then walks its records to collect the local
// header offsets. The records must agree with files, the result of the
// library's own parse: same count, same names, same sizes.
func readLayout(ra io.ReaderAt, size int64, files []*zip.File) (layout, error) {
	dirSize, dirOffset, endOffset, err := readDirEnd(ra, size)
	if err != nil {
		return layout{}, err
	}
	base := endOffset - dirSize - dirOffset
	if o := base + dirOffset; o < 0 || o >= size {
		return layout{}, fmt.Errorf("%w: central directory outside the file", ErrNotZip)
	}
	if base > 0 {
		// Like the library: trust the recorded offset when a record is there.
		var sig [4]byte
		if _, err := ra.ReadAt(sig[:], dirOffset); err == nil && binary.LittleEndian.Uint32(sig[:]) == dirHeaderSig {
			base = 0
		}
	}
	l := layout{dirStart: base + dirOffset, headerOffsets: make([]int64, len(files))}
	br := bufio.NewReaderSize(io.NewSectionReader(ra, l.dirStart, size-l.dirStart), 64<<10)
	var fixed [dirHeaderLen]byte
	for i, f := range files {
		if _, err := io.ReadFull(br, fixed[:]); err != nil {
			return layout{}, fmt.Errorf("%w: read central directory record %d: %w", ErrNotZip, i, err)
		}
		if binary.LittleEndian.Uint32(fixed[0:]) != dirHeaderSig {
			return layout{}, fmt.Errorf("%w: bad central directory record %d", ErrNotZip, i)
		}
		csize := uint64(binary.LittleEndian.Uint32(fixed[20:]))
		usize := uint64(binary.LittleEndian.Uint32(fixed[24:]))
		nameLen := int(binary.LittleEndian.Uint16(fixed[28:]))
		extraLen := int(binary.LittleEndian.Uint16(fixed[30:]))
		commentLen := int(binary.LittleEndian.Uint16(fixed[32:]))
		off := uint64(binary.LittleEndian.Uint32(fixed[42:]))
		rest := make([]byte, nameLen+extraLen+commentLen)
		if _, err := io.ReadFull(br, rest); err != nil {
			return layout{}, fmt.Errorf("%w: read central directory record %d: %w", ErrNotZip, i, err)
		}
		if string(rest[:nameLen]) != f.Name {
			return layout{}, fmt.Errorf("%w: central directory record %d is %q, the parser saw %q", ErrNotZip, i, rest[:nameLen], f.Name)
		}
		extra := rest[nameLen : nameLen+extraLen]
		for len(extra) >= 4 {
			tag := binary.LittleEndian.Uint16(extra)
			n := int(binary.LittleEndian.Uint16(extra[2:]))
			if len(extra) < 4+n {
				break
			}
			field := extra[4 : 4+n]
			extra = extra[4+n:]
			if tag != zip64ExtraID {
				continue
			}
			for _, v := range []*uint64{&usize, &csize, &off} {
				if *v == 0xffffffff && len(field) >= 8 {
					*v = binary.LittleEndian.Uint64(field)
					field = field[8:]
				}
			}
		}
		if csize != f.CompressedSize64 || usize != f.UncompressedSize64 {
			return layout{}, fmt.Errorf("%w: central directory record %d sizes disagree with the parser", ErrNotZip, i)
		}
		if off >= 1<<62 {
			return layout{}, fmt.Errorf("%w: entry %q has a header offset outside the file", ErrOverlap, f.Name)
		}
		l.headerOffsets[i] = base + int64(off)
	}
	return l, nil
}

// readDirEnd reads the end of central directory record (and its zip64
// form) the way the library does.
func readDirEnd(ra io.ReaderAt, size int64) (dirSize, dirOffset, endOffset int64, err error) {
	var buf []byte
	found := false
	for i, n := range []int64{1024, 65 * 1024} {
		n = min(n, size)
		buf = make([]byte, n)
		if _, err := ra.ReadAt(buf, size-n); err != nil && !errors.Is(err, io.EOF) {
			return 0, 0, 0, err
		}
		if p := findDirEnd(buf); p >= 0 {
			buf, endOffset, found = buf[p:], size-n+int64(p), true
			break
		}
		if i == 1 || n == size {
			break
		}
	}
	if !found {
		return 0, 0, 0, fmt.Errorf("%w: no end of central directory record", ErrNotZip)
	}
	records := uint64(binary.LittleEndian.Uint16(buf[10:]))
	dsize := uint64(binary.LittleEndian.Uint32(buf[12:]))
	doff := uint64(binary.LittleEndian.Uint32(buf[16:]))
	if records == 0xffff || dsize == 0xffffffff || doff == 0xffffffff {
		if locOff := endOffset - dir64LocLen; locOff >= 0 {
			loc := make([]byte, dir64LocLen)
			if _, err := ra.ReadAt(loc, locOff); err != nil {
				return 0, 0, 0, err
			}
			if binary.LittleEndian.Uint32(loc) == dir64LocSig && binary.LittleEndian.Uint32(loc[4:]) == 0 && binary.LittleEndian.Uint32(loc[16:]) == 1 {
				p := binary.LittleEndian.Uint64(loc[8:])
				if p >= uint64(size) {
					return 0, 0, 0, fmt.Errorf("%w: zip64 directory end outside the file", ErrNotZip)
				}
				end := make([]byte, dir64EndLen)
				if _, err := ra.ReadAt(end, int64(p)); err != nil {
					return 0, 0, 0, fmt.Errorf("%w: read zip64 directory end: %w", ErrNotZip, err)
				}
				if binary.LittleEndian.Uint32(end) != dir64EndSig {
					return 0, 0, 0, fmt.Errorf("%w: bad zip64 directory end", ErrNotZip)
				}
				endOffset = int64(p)
				dsize = binary.LittleEndian.Uint64(end[40:])
				doff = binary.LittleEndian.Uint64(end[48:])
			}
		}
	}
	if dsize > 1<<62 || doff > 1<<62 {
		return 0, 0, 0, fmt.Errorf("%w: central directory outside the file", ErrNotZip)
	}
	return int64(dsize), int64(doff), endOffset, nil
}

func findDirEnd(b []byte) int {
	for i := len(b) - dirEndLen; i >= 0; i-- {
		if binary.LittleEndian.Uint32(b[i:]) == dirEndSig {
			n := int(binary.LittleEndian.Uint16(b[i+dirEndLen-2:]))
			if n+dirEndLen+i > len(b) {
				return -1
			}
			return i
		}
	}
	return -1
}

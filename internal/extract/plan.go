package extract

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/klauspost/compress/zip"

	"benchling-webhook/internal/exitcode"
)

// plan parses and checks the central directory: it reads the directory
// ([readDirectory]), checks each entry ([checkEntries]), then the names
// against each other ([checkClashes]), and places every entry in the
// archive ([place]). It returns the files in archive order (by local
// header offset), each with its key and byte range, and the number of
// folder entries.
func plan(src Source, opts Options) ([]*entry, int, error) {
	files, lay, err := readDirectory(src, opts.MaxEntries)
	if err != nil {
		return nil, 0, err
	}
	all, err := checkEntries(files, lay.headerOffsets, src.Size(), opts)
	if err != nil {
		return nil, 0, err
	}
	if err := checkClashes(all); err != nil {
		return nil, 0, err
	}
	if err := place(all, lay.dirStart); err != nil {
		return nil, 0, err
	}
	out := make([]*entry, 0, len(all))
	for _, e := range all {
		if !e.isDir {
			out = append(out, e)
		}
	}
	return out, len(all) - len(out), nil
}

// readDirectory parses the central directory of src, refuses more than
// maxEntries records, and reads where each entry's local header starts.
func readDirectory(src Source, maxEntries int) ([]*zip.File, layout, error) {
	zr, err := zip.NewReader(src, src.Size())
	if err != nil {
		var c exitcode.Coder
		if errors.As(err, &c) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, layout{}, fmt.Errorf("extract: read central directory: %w", err)
		}
		return nil, layout{}, fmt.Errorf("%w (%d bytes): %w", ErrNotZip, src.Size(), err)
	}
	if len(zr.File) > maxEntries {
		return nil, layout{}, fmt.Errorf("%w: %d entries, the limit is %d", ErrTooManyEntries, len(zr.File), maxEntries)
	}
	lay, err := readLayout(src, src.Size(), zr.File)
	if err != nil {
		return nil, layout{}, err
	}
	return zr.File, lay, nil
}

// checkEntries checks every record on its own ([checkEntry]) and the
// total the files declare against opts.MaxTotalBytes, and gives each file
// its key. offsets are the records' local header offsets; size is the
// archive's.
func checkEntries(files []*zip.File, offsets []int64, size int64, opts Options) ([]*entry, error) {
	all := make([]*entry, 0, len(files))
	var total uint64
	for i, f := range files {
		e, err := checkEntry(f, offsets[i], size, opts.Reserved)
		if err != nil {
			return nil, err
		}
		if !e.isDir {
			if total += f.UncompressedSize64; total > uint64(opts.MaxTotalBytes) {
				return nil, fmt.Errorf("%w: the entries declare more than the %d-byte limit", ErrTooLarge, opts.MaxTotalBytes)
			}
			if e.key, err = Key(opts.Prefix, f.Name); err != nil {
				return nil, err
			}
		}
		all = append(all, e)
	}
	return all, nil
}

// checkEntry checks one record: its name ([CheckName]) and the reserved
// names, encryption, sizes that cannot fit in an archive of size bytes,
// an empty folder entry, and a supported compression method.
func checkEntry(f *zip.File, off, size int64, reserved []string) (*entry, error) {
	isDir, err := CheckName(f.Name)
	if err != nil {
		return nil, err
	}
	if err := checkReserved(f.Name, reserved); err != nil {
		return nil, err
	}
	switch {
	case f.Flags&(flagEncrypted|flagStrongEncrypt|flagMaskedHeader) != 0 || f.Method == methodAES:
		return nil, fmt.Errorf("%w: entry %q", ErrEncrypted, f.Name)
	case f.CompressedSize64 > uint64(size) || f.UncompressedSize64 > 1<<62:
		return nil, fmt.Errorf("%w: entry %q declares %d compressed bytes in a %d-byte archive", ErrOverlap, f.Name, f.CompressedSize64, size)
	}
	e := &entry{
		name: f.Name, nameRaw: f.Name, method: f.Method, crc: f.CRC32,
		off: off, isDir: isDir, flagDesc: f.Flags&flagDescriptor != 0,
		csize: int64(f.CompressedSize64), usize: int64(f.UncompressedSize64),
	}
	if isDir {
		if e.usize != 0 {
			return nil, fmt.Errorf("%w: directory entry %q holds %d bytes", ErrInsecurePath, f.Name, e.usize)
		}
		return e, nil
	}
	switch f.Method {
	case methodStore, methodDeflate, methodZstd, methodZstdPKWare:
	default:
		return nil, fmt.Errorf("%w: entry %q uses method %d (supported: 0 store, 8 deflate, 93 zstd)", ErrUnsupportedMethod, f.Name, f.Method)
	}
	return e, nil
}

// checkClashes refuses names that would become the same key, or a key
// and a folder of keys: a file twice, a name that is both a file and a
// folder entry, and a file that is the folder of another.
func checkClashes(all []*entry) error {
	files := make(map[string]bool, len(all))
	dirNames := make(map[string]bool)
	for _, e := range all {
		switch {
		case e.isDir:
			dirNames[strings.TrimSuffix(e.name, "/")] = true
		case files[e.name]:
			return fmt.Errorf("%w: %q appears twice", ErrDuplicateName, e.name)
		default:
			files[e.name] = true
		}
	}
	for name := range files {
		if dirNames[name] {
			return fmt.Errorf("%w: %q is both a file and a folder", ErrDuplicateName, name)
		}
		for i := strings.IndexByte(name, '/'); i >= 0; i = nextSlash(name, i) {
			if files[name[:i]] {
				return fmt.Errorf("%w: %q is both a file and the folder of %q", ErrDuplicateName, name[:i], name)
			}
		}
	}
	return nil
}

// place sorts all by header offset and gives each entry the end of the
// bytes it may be read from: each must end before the next begins (or
// before the central directory, at dirStart).
func place(all []*entry, dirStart int64) error {
	slices.SortStableFunc(all, func(a, b *entry) int { return cmpInt64(a.off, b.off) })
	for i, e := range all {
		limit := dirStart
		if i+1 < len(all) {
			limit = all[i+1].off
		}
		if e.off < 0 || e.off >= dirStart {
			return fmt.Errorf("%w: entry %q: its header offset %d lies outside the archive's data (0 to %d)", ErrTruncated, e.name, e.off, dirStart)
		}
		if e.off+localHeaderLen+int64(len(e.nameRaw))+e.csize > limit {
			other := "the central directory"
			if i+1 < len(all) {
				other = fmt.Sprintf("entry %q", all[i+1].name)
			}
			return fmt.Errorf("%w: entry %q (header at %d, %d bytes of data) overlaps %s at %d", ErrOverlap, e.name, e.off, e.csize, other, limit)
		}
		// The local extra field is at most 64 KiB; a data descriptor follows.
		e.end = min(limit, e.off+localHeaderLen+int64(len(e.nameRaw))+0xffff+e.csize+dataDescriptorLen)
	}
	return nil
}

func nextSlash(s string, i int) int {
	j := strings.IndexByte(s[i+1:], '/')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

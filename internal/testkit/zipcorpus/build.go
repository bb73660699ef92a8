package zipcorpus

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"
)

// Signatures and sizes from APPNOTE.TXT sections 4.3.7 to 4.3.16.
const (
	sigLocal      = 0x04034b50
	sigCentral    = 0x02014b50
	sigEnd        = 0x06054b50
	sigEnd64      = 0x06064b50
	sigEnd64Loc   = 0x07064b50
	sigDescriptor = 0x08074b50

	localLen   = 30
	centralLen = 46
	endLen     = 22
	end64Len   = 56
	end64Loc   = 20

	flagEncrypted  = 0x0001
	flagDescriptor = 0x0008
	flagUTF8       = 0x0800

	methodStore   = 0
	methodDeflate = 8
	methodZstd    = 93 // WinZip's id for Zstandard (zstd.ZipMethodWinZip)
	methodAES     = 99 // WinZip AE-x encryption (APPNOTE 4.4.5, "AE-x encryption marker")

	extraZip64 = 0x0001
	extraAES   = 0x9901

	versionDefault = 20 // 2.0: deflate, directories
	versionZip64   = 45 // 4.5: zip64
	creatorUnix    = 3 << 8

	max16 = 0xffff
	max32 = 0xffffffff
)

// Every entry carries the same MS-DOS time stamp, 2024-03-05 14:22:10,
// so that builds are deterministic (APPNOTE 4.4.6).
const (
	dosDate = (2024-1980)<<9 | 3<<5 | 5
	dosTime = 14<<11 | 22<<5 | 10/2
)

// header holds the fields that a local file header and a central directory
// record share (APPNOTE 4.3.7 and 4.3.12). name is raw bytes: it may hold
// anything, including NUL and invalid UTF-8.
type header struct {
	name     string
	flags    uint16
	method   uint16
	crc      uint32
	csize    uint64
	usize    uint64
	extra    []byte
	external uint32 // external file attributes, central directory only
	zip64    bool   // sizes (and the central offset) go in a zip64 extra field
}

// entry is one file or directory as the builder writes it.
type entry struct {
	h header
	// local, if non-nil, replaces h in the local file header, to make the
	// two headers disagree.
	local *header
	data  []byte // the (compressed) data following the local header
	// descriptor, if set, is written after data (flag bit 3 streaming).
	descriptor []byte
}

// record is a central directory record to be written by finish.
type record struct {
	h      header
	offset uint64
}

// builder writes an archive at the byte level. Offsets written into
// headers are relative to the position where the archive starts, which is
// after any stub written with stub.
type builder struct {
	buf     bytes.Buffer
	base    int // bytes before the archive proper, not counted in offsets
	records []record
}

// stub writes bytes that come before the archive. If adjusted is false the
// offsets stay relative to the end of the stub (as when a zip is appended
// to a self-extractor without `zip -A`); if true they count the stub too.
func (b *builder) stub(p []byte, adjusted bool) {
	b.buf.Write(p)
	if !adjusted {
		b.base += len(p)
	}
}

// offset is the current position relative to the start of the archive.
func (b *builder) offset() uint64 { return uint64(b.buf.Len() - b.base) }

// add writes e's local header, data and descriptor, and queues its central
// directory record. It returns the local header offset.
func (b *builder) add(e entry) uint64 {
	off := b.offset()
	lh := e.h
	if e.local != nil {
		lh = *e.local
	}
	b.localHeader(lh)
	b.buf.Write(e.data)
	b.buf.Write(e.descriptor)
	b.records = append(b.records, record{h: e.h, offset: off})
	return off
}

// localHeader writes a local file header (APPNOTE 4.3.7).
func (b *builder) localHeader(h header) {
	extra := h.extra
	csize, usize := uint32(h.csize), uint32(h.usize)
	version := uint16(versionDefault)
	if h.zip64 {
		var z []byte
		z = le64(le64(z, h.usize), h.csize)
		extra = append(extraField(extraZip64, z), extra...)
		csize, usize, version = max32, max32, versionZip64
	}
	var p []byte
	p = le32(p, sigLocal)
	p = le16(p, version)
	p = le16(p, h.flags)
	p = le16(p, h.method)
	p = le16(p, dosTime)
	p = le16(p, dosDate)
	p = le32(p, h.crc)
	p = le32(p, csize)
	p = le32(p, usize)
	p = le16(p, uint16(len(h.name)))
	p = le16(p, uint16(len(extra)))
	p = append(p, h.name...)
	p = append(p, extra...)
	b.buf.Write(p)
}

// centralRecord encodes a central directory record (APPNOTE 4.3.12).
func centralRecord(r record) []byte {
	h := r.h
	extra := h.extra
	csize, usize, off := uint32(h.csize), uint32(h.usize), uint32(r.offset)
	version := uint16(versionDefault)
	if h.zip64 {
		var z []byte
		z = le64(le64(le64(z, h.usize), h.csize), r.offset)
		extra = append(extraField(extraZip64, z), extra...)
		csize, usize, off, version = max32, max32, max32, versionZip64
	}
	var p []byte
	p = le32(p, sigCentral)
	p = le16(p, creatorUnix|version)
	p = le16(p, version)
	p = le16(p, h.flags)
	p = le16(p, h.method)
	p = le16(p, dosTime)
	p = le16(p, dosDate)
	p = le32(p, h.crc)
	p = le32(p, csize)
	p = le32(p, usize)
	p = le16(p, uint16(len(h.name)))
	p = le16(p, uint16(len(extra)))
	p = le16(p, 0) // comment length
	p = le16(p, 0) // disk number start
	p = le16(p, 0) // internal attributes
	p = le32(p, h.external)
	p = le32(p, off)
	p = append(p, h.name...)
	p = append(p, extra...)
	return p
}

// end describes the end of central directory records to write.
type end struct {
	comment string
	// zip64 forces a zip64 end of central directory record and locator,
	// with the classic record's fields saturated (APPNOTE 4.3.14 to 4.3.16).
	// They are also written whenever a count or offset needs them.
	zip64 bool
	// patch, if set, may change the fields before they are encoded.
	patch func(*endFields)
}

// endFields are the values the end of central directory records carry.
type endFields struct {
	records   uint64
	dirSize   uint64
	dirOffset uint64
}

// finish writes the central directory and the end records, and returns the
// archive bytes.
func (b *builder) finish(e end) []byte {
	f := endFields{records: uint64(len(b.records)), dirOffset: b.offset()}
	for _, r := range b.records {
		b.buf.Write(centralRecord(r))
	}
	f.dirSize = b.offset() - f.dirOffset
	if e.patch != nil {
		e.patch(&f)
	}
	zip64 := e.zip64 || f.records >= max16 || f.dirSize >= max32 || f.dirOffset >= max32
	var p []byte
	if zip64 {
		end64 := b.offset()
		p = le32(p, sigEnd64)
		p = le64(p, end64Len-12) // size of the rest of this record
		p = le16(p, creatorUnix|versionZip64)
		p = le16(p, versionZip64)
		p = le32(p, 0) // this disk
		p = le32(p, 0) // disk with the central directory
		p = le64(p, f.records)
		p = le64(p, f.records)
		p = le64(p, f.dirSize)
		p = le64(p, f.dirOffset)

		p = le32(p, sigEnd64Loc)
		p = le32(p, 0) // disk with the zip64 end record
		p = le64(p, end64)
		p = le32(p, 1) // total disks
	}
	records, dirSize, dirOffset := uint16(f.records), uint32(f.dirSize), uint32(f.dirOffset)
	if zip64 {
		records, dirSize, dirOffset = max16, max32, max32
	}
	p = le32(p, sigEnd)
	p = le16(p, 0) // this disk
	p = le16(p, 0) // disk with the central directory
	p = le16(p, records)
	p = le16(p, records)
	p = le32(p, dirSize)
	p = le32(p, dirOffset)
	p = le16(p, uint16(len(e.comment)))
	p = append(p, e.comment...)
	b.buf.Write(p)
	return bytes.Clone(b.buf.Bytes())
}

func le16(p []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(p, v) }
func le32(p []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(p, v) }
func le64(p []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(p, v) }

// extraField encodes one extra field block (APPNOTE 4.5.1).
func extraField(id uint16, data []byte) []byte {
	return append(le16(le16(nil, id), uint16(len(data))), data...)
}

// descriptor encodes a data descriptor (APPNOTE 4.3.9) with or without
// the de-facto signature.
func descriptor(h header, signed bool) []byte {
	var p []byte
	if signed {
		p = le32(p, sigDescriptor)
	}
	p = le32(p, h.crc)
	p = le32(p, uint32(h.csize))
	return le32(p, uint32(h.usize))
}

// stored returns a Store entry holding content.
func stored(name, content string) entry {
	return entry{h: fileHeader(name, methodStore, content, len(content)), data: []byte(content)}
}

// deflated returns a Deflate entry holding content.
func deflated(name, content string) entry {
	data := deflate([]byte(content))
	return entry{h: fileHeader(name, methodDeflate, content, len(data)), data: data}
}

// zstded returns a Zstandard (method 93) entry holding content.
func zstded(name, content string) entry {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		panic("zipcorpus: new zstd encoder: " + err.Error()) // only fails on bad options
	}
	data := enc.EncodeAll([]byte(content), nil)
	return entry{h: fileHeader(name, methodZstd, content, len(data)), data: data}
}

// dir returns a directory entry; name must end in "/".
func dir(name string) entry {
	return entry{h: header{
		name:     name,
		flags:    utf8Flag(name),
		external: (0o40755 << 16) | 0x10, // Unix drwxr-xr-x, MS-DOS directory
	}}
}

func fileHeader(name string, method uint16, content string, csize int) header {
	return header{
		name:     name,
		flags:    utf8Flag(name),
		method:   method,
		crc:      crc32.ChecksumIEEE([]byte(content)),
		csize:    uint64(csize),
		usize:    uint64(len(content)),
		external: 0o100644 << 16, // Unix -rw-r--r--
	}
}

// utf8Flag sets general purpose bit 11 (APPNOTE appendix D) for names that
// are not plain ASCII, as conforming writers do.
func utf8Flag(name string) uint16 {
	for i := 0; i < len(name); i++ {
		if name[i] >= 0x80 {
			return flagUTF8
		}
	}
	return 0
}

// deflate compresses p as one raw DEFLATE stream.
func deflate(p []byte) []byte {
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		panic("zipcorpus: new flate writer: " + err.Error()) // only fails on a bad level
	}
	_, _ = w.Write(p) // writes to a bytes.Buffer do not fail
	_ = w.Close()
	return buf.Bytes()
}

// archive builds a plain archive of entries.
func archive(entries ...entry) []byte {
	var b builder
	for _, e := range entries {
		b.add(e)
	}
	return b.finish(end{})
}

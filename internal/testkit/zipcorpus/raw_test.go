package zipcorpus

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// This file is an independent, minimal ZIP parser used to show that each
// case has the byte-level property it claims. It trusts nothing: it reads
// what is there, without fixing anything up.

// rawArchive is an archive as its end records describe it.
type rawArchive struct {
	data      []byte
	endOffset int  // offset of the end of central directory record
	endLen    int  // its length including the comment
	zip64     bool // a zip64 end record and locator were found
	records   uint64
	dirSize   uint64
	dirOffset uint64
	base      int64 // where offset 0 is: endStart - dirSize - dirOffset
	central   []rawRecord
}

// rawRecord is a central directory record.
type rawRecord struct {
	at     int // where the record is
	flags  uint16
	method uint16
	crc    uint32
	csize  uint64
	usize  uint64
	offset uint64
	name   string
	extra  []byte
	// raw32 holds the 32-bit compressed size, uncompressed size and offset.
	raw32 [3]uint32
}

// rawLocal is a local file header.
type rawLocal struct {
	at        int64
	flags     uint16
	method    uint16
	crc       uint32
	csize     uint32
	usize     uint32
	name      string
	extra     []byte
	dataStart int64
}

var errNoEnd = errors.New("no end of central directory record")

// findEnd returns the offset of the last end record whose comment fits in
// data, or -1.
func findEnd(data []byte) int {
	for i := len(data) - endLen; i >= 0; i-- {
		if binary.LittleEndian.Uint32(data[i:]) == sigEnd {
			n := int(binary.LittleEndian.Uint16(data[i+20:]))
			if i+endLen+n <= len(data) {
				return i
			}
		}
	}
	return -1
}

func parseRaw(data []byte) (*rawArchive, error) {
	e := findEnd(data)
	if e < 0 {
		return nil, errNoEnd
	}
	a := &rawArchive{data: data, endOffset: e}
	d := data[e:]
	a.endLen = endLen + int(binary.LittleEndian.Uint16(d[20:]))
	a.records = uint64(binary.LittleEndian.Uint16(d[10:]))
	a.dirSize = uint64(binary.LittleEndian.Uint32(d[12:]))
	a.dirOffset = uint64(binary.LittleEndian.Uint32(d[16:]))
	endStart := int64(e)
	if loc := e - end64Loc; loc >= 0 && binary.LittleEndian.Uint32(data[loc:]) == sigEnd64Loc {
		off := int64(binary.LittleEndian.Uint64(data[loc+8:]))
		if off < 0 || off+end64Len > int64(len(data)) || binary.LittleEndian.Uint32(data[off:]) != sigEnd64 {
			return nil, fmt.Errorf("bad zip64 end record at %d", off)
		}
		a.zip64 = true
		d64 := data[off:]
		a.records = binary.LittleEndian.Uint64(d64[32:])
		a.dirSize = binary.LittleEndian.Uint64(d64[40:])
		a.dirOffset = binary.LittleEndian.Uint64(d64[48:])
		endStart = off
	}
	a.base = endStart - int64(a.dirSize) - int64(a.dirOffset)
	p := int(a.base) + int(a.dirOffset)
	if p < 0 || uint64(p) > uint64(len(data)) {
		return a, nil // the directory is not in the file; records stay empty
	}
	for range a.records {
		r, n, err := parseRecord(data, p)
		if err != nil {
			return nil, err
		}
		a.central = append(a.central, r)
		p += n
	}
	return a, nil
}

func parseRecord(data []byte, p int) (rawRecord, int, error) {
	if p+centralLen > len(data) || binary.LittleEndian.Uint32(data[p:]) != sigCentral {
		return rawRecord{}, 0, fmt.Errorf("no central directory record at %d", p)
	}
	d := data[p:]
	r := rawRecord{
		at:     p,
		flags:  binary.LittleEndian.Uint16(d[8:]),
		method: binary.LittleEndian.Uint16(d[10:]),
		crc:    binary.LittleEndian.Uint32(d[16:]),
	}
	r.raw32 = [3]uint32{binary.LittleEndian.Uint32(d[20:]), binary.LittleEndian.Uint32(d[24:]), binary.LittleEndian.Uint32(d[42:])}
	r.csize, r.usize, r.offset = uint64(r.raw32[0]), uint64(r.raw32[1]), uint64(r.raw32[2])
	nameLen := int(binary.LittleEndian.Uint16(d[28:]))
	extraLen := int(binary.LittleEndian.Uint16(d[30:]))
	commentLen := int(binary.LittleEndian.Uint16(d[32:]))
	n := centralLen + nameLen + extraLen + commentLen
	if p+n > len(data) {
		return rawRecord{}, 0, fmt.Errorf("central directory record at %d runs past the end", p)
	}
	r.name = string(d[centralLen : centralLen+nameLen])
	r.extra = d[centralLen+nameLen : centralLen+nameLen+extraLen]
	if z := extraBlock(r.extra, extraZip64); z != nil {
		if r.raw32[1] == max32 {
			r.usize, z = binary.LittleEndian.Uint64(z), z[8:]
		}
		if r.raw32[0] == max32 {
			r.csize, z = binary.LittleEndian.Uint64(z), z[8:]
		}
		if r.raw32[2] == max32 {
			r.offset = binary.LittleEndian.Uint64(z)
		}
	}
	return r, n, nil
}

// extraBlock returns the data of the extra field block id, or nil.
func extraBlock(extra []byte, id uint16) []byte {
	for len(extra) >= 4 {
		tag, size := binary.LittleEndian.Uint16(extra), int(binary.LittleEndian.Uint16(extra[2:]))
		if 4+size > len(extra) {
			return nil
		}
		if tag == id {
			return extra[4 : 4+size]
		}
		extra = extra[4+size:]
	}
	return nil
}

// local reads the local header that r points at.
func (a *rawArchive) local(r rawRecord) (rawLocal, error) {
	at := a.base + int64(r.offset)
	if at < 0 || at+localLen > int64(len(a.data)) {
		return rawLocal{}, fmt.Errorf("local header offset %d outside the file", at)
	}
	d := a.data[at:]
	if binary.LittleEndian.Uint32(d) != sigLocal {
		return rawLocal{}, fmt.Errorf("no local header signature at %d", at)
	}
	l := rawLocal{
		at:     at,
		flags:  binary.LittleEndian.Uint16(d[6:]),
		method: binary.LittleEndian.Uint16(d[8:]),
		crc:    binary.LittleEndian.Uint32(d[14:]),
		csize:  binary.LittleEndian.Uint32(d[18:]),
		usize:  binary.LittleEndian.Uint32(d[22:]),
	}
	nameLen := int(binary.LittleEndian.Uint16(d[26:]))
	extraLen := int(binary.LittleEndian.Uint16(d[28:]))
	l.name = string(d[localLen : localLen+nameLen])
	l.extra = d[localLen+nameLen : localLen+nameLen+extraLen]
	l.dataStart = at + int64(localLen+nameLen+extraLen)
	return l, nil
}

// data returns the compressed data of r, as its sizes describe it.
func (a *rawArchive) entryData(r rawRecord) ([]byte, error) {
	l, err := a.local(r)
	if err != nil {
		return nil, err
	}
	end := l.dataStart + int64(r.csize)
	if end > int64(len(a.data)) {
		return nil, fmt.Errorf("data of %q runs past the end", r.name)
	}
	return a.data[l.dataStart:end], nil
}

// byName returns the first central record named name.
func (a *rawArchive) byName(name string) (rawRecord, bool) {
	for _, r := range a.central {
		if r.name == name {
			return r, true
		}
	}
	return rawRecord{}, false
}

// hasSignature reports whether sig occurs anywhere in data.
func hasSignature(data []byte, sig uint32) bool {
	return bytes.Contains(data, binary.LittleEndian.AppendUint32(nil, sig))
}

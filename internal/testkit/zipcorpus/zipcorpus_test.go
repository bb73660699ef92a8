package zipcorpus

import (
	"bytes"
	"errors"
	"flag"
	"hash/crc32"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zip"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// update rewrites testdata/*.zip from Cases(). A package-level flag is the
// usual idiom for golden files; it is only read by TestTestdata.
var update = flag.Bool("update", false, "rewrite testdata/*.zip from Cases()")

const maxCaseSize = 1 << 20

func TestCasesWellFormed(t *testing.T) {
	kebab := regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	seen := map[string]bool{}
	for _, c := range Cases() {
		t.Run(c.Name, func(t *testing.T) {
			assert.Regexp(t, kebab, c.Name)
			assert.False(t, seen[c.Name], "duplicate case name")
			seen[c.Name] = true
			if c.Want != "" {
				assert.Contains(t, Outcomes(), c.Want)
				assert.Nil(t, c.Files, "invalid cases list no files")
			} else {
				assert.NotNil(t, c.Files, "valid cases list their files, even if none")
			}
			assert.NotEmpty(t, c.Note)
			assert.NotContains(t, c.Note, "\n", "Note is one line")

			a, b := c.Build(), c.Build()
			assert.Equal(t, a, b, "Build is deterministic")
			assert.Less(t, len(a), maxCaseSize)
			if len(a) > 0 {
				a[0] ^= 0xff
				assert.NotEqual(t, a, c.Build(), "Build returns a new slice each time")
			}
		})
	}
}

func TestValidCasesExtract(t *testing.T) {
	for _, c := range Cases() {
		if c.Want != "" {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			data := c.Build()
			zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
			require.NoError(t, err)
			zr.RegisterDecompressor(methodZstd, zstd.ZipDecompressor())
			got := map[string]string{}
			for _, f := range zr.File {
				if strings.HasSuffix(f.Name, "/") {
					continue
				}
				got[f.Name] = readEntry(t, f)
			}
			assert.Equal(t, c.Files, got)
		})
	}
}

func readEntry(t *testing.T, f *zip.File) string {
	t.Helper()
	rc, err := f.Open()
	require.NoError(t, err, f.Name)
	defer func() { require.NoError(t, rc.Close()) }()
	var buf bytes.Buffer
	_, err = io.Copy(&buf, io.LimitReader(rc, maxCaseSize))
	require.NoError(t, err, f.Name)
	return buf.String()
}

// property checks that a case has the byte-level property its Note claims.
type property func(t *testing.T, data []byte)

// properties holds one check per invalid case (required) and per odd valid
// case (optional).
var properties = map[string]property{
	// Valid but odd.
	"empty-archive": func(t *testing.T, data []byte) {
		assert.Len(t, data, endLen)
		a := mustParse(t, data)
		assert.Zero(t, a.records)
	},
	"directories": func(t *testing.T, data []byte) {
		a := mustParse(t, data)
		var dirs int
		for _, r := range a.central {
			if strings.HasSuffix(r.name, "/") {
				dirs++
				assert.Zero(t, r.usize)
			}
		}
		assert.Equal(t, 3, dirs)
	},
	"odd-names": func(t *testing.T, data []byte) {
		a := mustParse(t, data)
		names := map[string]bool{}
		for _, r := range a.central {
			names[r.name] = true
			ascii := !strings.ContainsFunc(r.name, func(c rune) bool { return c >= utf8.RuneSelf })
			assert.Equal(t, !ascii, r.flags&flagUTF8 != 0, "flag bit 11 on non-ASCII names only: %q", r.name)
		}
		assert.True(t, names["plate%2F01.csv"], "a literal %2F, not a slash")
		assert.True(t, names["実験ノート/結果 1.csv"])
	},
	"utf8-name-no-flag": func(t *testing.T, data []byte) {
		r := mustParse(t, data).central[0]
		assert.Equal(t, "r\xc3\xa9sum\xc3\xa9.csv", r.name)
		assert.Zero(t, r.flags&flagUTF8)
	},
	"data-descriptor":              checkDescriptors(true),
	"data-descriptor-no-signature": checkDescriptors(false),
	"zip64": func(t *testing.T, data []byte) {
		a := mustParse(t, data)
		assert.True(t, a.zip64, "zip64 end record and locator")
		assert.Equal(t, []byte{0xff, 0xff, 0xff, 0xff}, data[a.endOffset+16:a.endOffset+20], "classic end record offset saturated")
		for _, r := range a.central {
			assert.Equal(t, [3]uint32{max32, max32, max32}, r.raw32, r.name)
			assert.Len(t, extraBlock(r.extra, extraZip64), 24, r.name)
			l := mustLocal(t, a, r)
			assert.Equal(t, uint32(max32), l.csize)
			assert.Len(t, extraBlock(l.extra, extraZip64), 16, r.name)
		}
	},
	"zstd": func(t *testing.T, data []byte) {
		a := mustParse(t, data)
		assert.Equal(t, uint16(methodZstd), a.central[0].method)
	},
	"trailing-junk": func(t *testing.T, data []byte) {
		a := mustParse(t, data)
		assert.Less(t, a.endOffset+a.endLen, len(data), "bytes follow the end record")
	},
	"prepended-stub": func(t *testing.T, data []byte) {
		a := mustParse(t, data)
		assert.True(t, bytes.HasPrefix(data, []byte("#!/bin/sh")))
		assert.Positive(t, a.base, "offsets are relative to the end of the stub")
		assert.Zero(t, a.central[0].offset)
	},
	"prepended-stub-adjusted": func(t *testing.T, data []byte) {
		a := mustParse(t, data)
		assert.Zero(t, a.base)
		assert.Positive(t, a.central[0].offset, "offsets count the stub")
	},

	// Names.
	"dotdot-escape":     hostileName("../x"),
	"dotdot-nested":     hostileName("a/../../x"),
	"dotdot-inner":      hostileName("a/../x"),
	"dotdot-trailing":   hostileName("a/.."),
	"dotdot-dir":        hostileName("../evil/"),
	"absolute":          hostileName("/etc/passwd"),
	"drive-letter":      hostileName("C:\x5cx"),
	"drive-relative":    hostileName("C:x"),
	"backslash-dotdot":  hostileName("..\x5cx"),
	"backslash-nested":  hostileName("a\x5c..\x5c..\x5cx"),
	"backslash":         hostileName("results\x5cplate_01.csv"),
	"dot-segment":       hostileName("a/./b"),
	"double-slash":      hostileName("a//b"),
	"empty-name":        hostileName(""),
	"nul-in-name":       hostileName("plate.csv\x00../../x"),
	"invalid-utf8-name": hostileName("caf\xe9.csv"),

	// Encryption and methods.
	"encrypted-zipcrypto": func(t *testing.T, data []byte) {
		r, l := lastEntry(t, data)
		assert.Equal(t, uint16(flagEncrypted), r.flags&flagEncrypted)
		assert.Equal(t, uint16(flagEncrypted), l.flags&flagEncrypted)
		assert.Equal(t, uint16(methodDeflate), r.method, "the method itself is supported")
	},
	"encrypted-aes":           checkAES(true),
	"aes-method-without-flag": checkAES(false),
	"unknown-method-77":       checkMethod(77),
	"bzip2-method-12":         checkMethod(12),
	"deflate64-method-9":      checkMethod(9),

	// Integrity.
	"crc-mismatch": func(t *testing.T, data []byte) {
		r, l, content, err := inflateLast(t, data)
		require.NoError(t, err)
		assert.Equal(t, r.usize, uint64(len(content)))
		assert.NotEqual(t, crc32.ChecksumIEEE(content), r.crc)
		assert.Equal(t, r.crc, l.crc)
	},
	"crc-zero": func(t *testing.T, data []byte) {
		r, l, content, err := inflateLast(t, data)
		require.NoError(t, err)
		assert.Zero(t, r.crc, "central CRC")
		assert.Zero(t, l.crc, "local CRC")
		assert.Zero(t, r.flags&flagDescriptor, "no data descriptor carries the real CRC")
		assert.NotEmpty(t, content)
		assert.NotZero(t, crc32.ChecksumIEEE(content))
	},
	"size-declared-smaller": func(t *testing.T, data []byte) {
		r, _, content, err := inflateLast(t, data)
		require.NoError(t, err)
		assert.Greater(t, uint64(len(content)), r.usize, "data longer than declared")
		assert.Equal(t, crc32.ChecksumIEEE(content), r.crc)
	},
	"deflate-stream-short": func(t *testing.T, data []byte) {
		r, _, content, err := inflateLast(t, data)
		require.NoError(t, err, "the stream is complete")
		assert.Less(t, uint64(len(content)), r.usize, "data shorter than declared")
	},
	"deflate-stream-cut": func(t *testing.T, data []byte) {
		r, _, content, err := inflateLast(t, data)
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
		assert.Less(t, uint64(len(content)), r.usize)
	},
	"corrupt-deflate": func(t *testing.T, data []byte) {
		_, _, _, err := inflateLast(t, data)
		var corrupt flate.CorruptInputError
		assert.ErrorAs(t, err, &corrupt)
	},

	// Not a zip.
	"empty-body":   func(t *testing.T, data []byte) { assert.Empty(t, data) },
	"s3-error-xml": notZip(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<Error><Code>AccessDenied</Code><Message>Request has expired</Message>"),
	"html-page":    notZip("<!DOCTYPE html>"),
	"gzip-body":    notZip("\x1f\x8b"),
	"truncated-mid-entry": func(t *testing.T, data []byte) {
		notZip("PK\x03\x04")(t, data)
		assert.False(t, hasSignature(data, sigCentral), "cut before the central directory")
	},
	"truncated-mid-directory": func(t *testing.T, data []byte) {
		notZip("PK\x03\x04")(t, data)
		assert.True(t, hasSignature(data, sigCentral))
		assert.False(t, hasSignature(data, sigEnd))
	},
	"truncated-in-end-record": func(t *testing.T, data []byte) {
		notZip("PK\x03\x04")(t, data)
		i := bytes.LastIndex(data, le32(nil, sigEnd))
		require.GreaterOrEqual(t, i, 0, "the end record signature is there")
		assert.Less(t, len(data)-i, endLen, "but not the whole record")
	},
	"truncated-in-comment": func(t *testing.T, data []byte) {
		notZip("PK\x03\x04")(t, data)
		i := bytes.LastIndex(data, le32(nil, sigEnd))
		require.GreaterOrEqual(t, i, 0)
		require.GreaterOrEqual(t, len(data)-i, endLen, "the fixed part of the end record is there")
		commentLen := int(data[i+20]) | int(data[i+21])<<8
		assert.Greater(t, i+endLen+commentLen, len(data), "the comment runs past the end")
	},

	// Structure.
	"cd-offset-beyond-eof": func(t *testing.T, data []byte) {
		a := mustParse(t, data)
		assert.Greater(t, a.dirOffset, uint64(len(data)))
		assert.Negative(t, a.base)
	},
	"local-offset-beyond-eof": func(t *testing.T, data []byte) {
		a := mustParse(t, data)
		require.Len(t, a.central, 2)
		assert.Greater(t, a.central[1].offset, uint64(len(data)))
	},
	"duplicate-name": func(t *testing.T, data []byte) {
		a := mustParse(t, data)
		assert.Equal(t, a.central[0].name, a.central[2].name)
		assert.Equal(t, "results/plate_01.csv", a.central[0].name)
	},
	"file-and-folder": func(t *testing.T, data []byte) {
		assert.Equal(t, []string{"results", "results/plate_01.csv"}, names(mustParse(t, data)))
	},
	"file-and-dir-entry": func(t *testing.T, data []byte) {
		assert.Equal(t, []string{"results", "results/"}, names(mustParse(t, data)))
	},
	"overlap-shared-header": func(t *testing.T, data []byte) {
		a := mustParse(t, data)
		require.Len(t, a.central, 2)
		assert.Equal(t, a.central[0].offset, a.central[1].offset, "both records point at one local header")
		assert.NotEqual(t, a.central[0].name, a.central[1].name)
	},
	"zip-bomb-overlap": checkBomb,
	"local-name-mismatch": func(t *testing.T, data []byte) {
		r, l := lastEntry(t, data)
		assert.NotEqual(t, r.name, l.name)
		assert.Equal(t, r.method, l.method)
	},
	"local-method-mismatch": func(t *testing.T, data []byte) {
		r, l := lastEntry(t, data)
		assert.Equal(t, r.name, l.name)
		assert.Equal(t, uint16(methodDeflate), r.method)
		assert.Equal(t, uint16(methodStore), l.method)
	},
	"local-header-bad-signature": func(t *testing.T, data []byte) {
		a := mustParse(t, data)
		_, err := a.local(a.central[0])
		assert.ErrorContains(t, err, "no local header signature")
		_, err = a.local(a.central[1])
		assert.NoError(t, err, "the other entry is intact")
	},
	"declared-huge": func(t *testing.T, data []byte) {
		a := mustParse(t, data)
		var total uint64
		for _, r := range a.central {
			total += r.usize
		}
		assert.Equal(t, uint64(1)<<40, total)
		r, ok := a.byName("huge.bin")
		require.True(t, ok)
		assert.NotNil(t, extraBlock(r.extra, extraZip64))
		assert.Less(t, len(data), 1024)
	},
}

func TestCaseProperties(t *testing.T) {
	known := map[string]bool{}
	for _, c := range Cases() {
		known[c.Name] = true
		check, ok := properties[c.Name]
		if !ok {
			if c.Want != "" {
				t.Errorf("invalid case %q has no property check", c.Name)
			}
			continue
		}
		t.Run(c.Name, func(t *testing.T) { check(t, c.Build()) })
	}
	for name := range properties {
		assert.True(t, known[name], "property check for unknown case %q", name)
	}
}

func mustParse(t *testing.T, data []byte) *rawArchive {
	t.Helper()
	a, err := parseRaw(data)
	require.NoError(t, err)
	return a
}

func mustLocal(t *testing.T, a *rawArchive, r rawRecord) rawLocal {
	t.Helper()
	l, err := a.local(r)
	require.NoError(t, err)
	return l
}

func names(a *rawArchive) []string {
	var ns []string
	for _, r := range a.central {
		ns = append(ns, r.name)
	}
	return ns
}

// lastEntry returns the last central record and its local header.
func lastEntry(t *testing.T, data []byte) (rawRecord, rawLocal) {
	t.Helper()
	a := mustParse(t, data)
	require.NotEmpty(t, a.central)
	r := a.central[len(a.central)-1]
	return r, mustLocal(t, a, r)
}

// inflateLast inflates the last entry's data without any size limit
// other than maxCaseSize.
func inflateLast(t *testing.T, data []byte) (rawRecord, rawLocal, []byte, error) {
	t.Helper()
	a := mustParse(t, data)
	r := a.central[len(a.central)-1]
	l := mustLocal(t, a, r)
	require.Equal(t, uint16(methodDeflate), r.method)
	comp, err := a.entryData(r)
	require.NoError(t, err)
	var out bytes.Buffer
	_, err = io.Copy(&out, io.LimitReader(flate.NewReader(bytes.NewReader(comp)), maxCaseSize))
	return r, l, out.Bytes(), err
}

func hostileName(name string) property {
	return func(t *testing.T, data []byte) {
		r, l := lastEntry(t, data)
		assert.Equal(t, name, r.name, "central directory name bytes")
		assert.Equal(t, name, l.name, "local header name bytes")
	}
}

func checkDescriptors(signed bool) property {
	return func(t *testing.T, data []byte) {
		a := mustParse(t, data)
		for _, r := range a.central {
			l := mustLocal(t, a, r)
			assert.NotZero(t, r.flags&flagDescriptor, r.name)
			assert.Equal(t, [3]uint32{0, 0, 0}, [3]uint32{l.crc, l.csize, l.usize}, "local CRC and sizes are zero")
			after := data[l.dataStart+int64(r.csize):]
			if signed {
				assert.Equal(t, le32(nil, sigDescriptor), after[:4])
				after = after[4:]
			}
			assert.Equal(t, le32(le32(le32(nil, r.crc), uint32(r.csize)), uint32(r.usize)), after[:12])
		}
	}
}

func checkAES(flagged bool) property {
	return func(t *testing.T, data []byte) {
		r, l := lastEntry(t, data)
		assert.Equal(t, uint16(methodAES), r.method)
		assert.Equal(t, uint16(methodAES), l.method)
		assert.Equal(t, flagged, r.flags&flagEncrypted != 0)
		aes := extraBlock(r.extra, extraAES)
		require.Len(t, aes, 7)
		assert.Equal(t, "AE", string(aes[2:4]))
	}
}

func checkMethod(method uint16) property {
	return func(t *testing.T, data []byte) {
		r, l := lastEntry(t, data)
		assert.Equal(t, method, r.method)
		assert.Equal(t, method, l.method)
		assert.Zero(t, r.flags&flagEncrypted)
	}
}

func notZip(prefix string) property {
	return func(t *testing.T, data []byte) {
		assert.True(t, bytes.HasPrefix(data, []byte(prefix)), "starts with %q", prefix)
		_, err := parseRaw(data)
		assert.ErrorIs(t, err, errNoEnd)
	}
}

// checkBomb shows the bomb's entries overlap and that a reader without an
// overlap check inflates all of it with valid CRCs.
func checkBomb(t *testing.T, data []byte) {
	a := mustParse(t, data)
	require.Len(t, a.central, 16)
	for i, r := range a.central[:len(a.central)-1] {
		l := mustLocal(t, a, r)
		next := a.central[i+1]
		start, end := uint64(l.dataStart), uint64(l.dataStart)+r.csize
		assert.True(t, start <= next.offset && next.offset < end,
			"entry %d's data [%d, %d) holds entry %d's local header at %d", i, start, end, i+1, next.offset)
	}

	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	var total int64
	for _, f := range zr.File {
		rc, err := f.Open()
		require.NoError(t, err)
		n, err := io.Copy(io.Discard, rc)
		require.NoError(t, err, "CRC and sizes are right, so a naive reader succeeds")
		total += n
		require.NoError(t, rc.Close())
	}
	assert.Greater(t, total, int64(16<<20))
	assert.Greater(t, total/int64(len(data)), int64(1000), "expansion ratio")
}

// TestKlauspostAlone records what klauspost zip does with each case on its
// own (default GODEBUG), to show which checks an extractor must add. A
// change here after a library upgrade is worth a look.
func TestKlauspostAlone(t *testing.T) {
	const (
		accepts      = "accepts"      // every entry reads without error
		rejectsOpen  = "rejects-open" // NewReader rejects the archive
		failsEntries = "fails-entry"  // NewReader accepts, some entry fails to open or read
	)
	want := map[string]string{
		// Only the not-a-zip cases are rejected up front.
		"empty-body": rejectsOpen, "s3-error-xml": rejectsOpen, "html-page": rejectsOpen, "gzip-body": rejectsOpen,
		"truncated-mid-entry": rejectsOpen, "truncated-mid-directory": rejectsOpen,
		"truncated-in-end-record": rejectsOpen, "truncated-in-comment": rejectsOpen,
		// Hostile names are accepted: zipinsecurepath defaults to allowing them.
		"dotdot-escape": accepts, "absolute": accepts, "drive-relative": accepts, "backslash-nested": accepts,
		"empty-name": accepts, "nul-in-name": accepts, "invalid-utf8-name": accepts,
		// Integrity: caught only while reading, and not all of it.
		"crc-mismatch": failsEntries, "crc-zero": accepts, "size-declared-smaller": failsEntries,
		"deflate-stream-short": failsEntries, "deflate-stream-cut": failsEntries, "corrupt-deflate": failsEntries,
		"encrypted-zipcrypto": failsEntries, "encrypted-aes": failsEntries, "unknown-method-77": failsEntries,
		// Structure: klauspost checks none of these.
		"duplicate-name": accepts, "file-and-folder": accepts, "overlap-shared-header": accepts,
		"zip-bomb-overlap": accepts, "local-name-mismatch": accepts, "local-method-mismatch": accepts,
		"cd-offset-beyond-eof": failsEntries, "local-offset-beyond-eof": failsEntries,
		"local-header-bad-signature": failsEntries, "declared-huge": failsEntries,
	}
	for _, c := range Cases() {
		w, ok := want[c.Name]
		if c.Want == "" {
			w, ok = accepts, true
		}
		if !ok {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			data := c.Build()
			zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				assert.ErrorIs(t, err, zip.ErrFormat)
				assert.Equal(t, w, rejectsOpen)
				return
			}
			zr.RegisterDecompressor(methodZstd, zstd.ZipDecompressor())
			got := accepts
			for _, f := range zr.File {
				rc, err := f.Open()
				if err == nil {
					_, err = io.Copy(io.Discard, io.LimitReader(rc, 64<<20))
					_ = rc.Close()
				}
				if err != nil {
					got = failsEntries
				}
			}
			assert.Equal(t, w, got)
		})
	}
}

func TestManyEntries(t *testing.T) {
	for _, n := range []int{0, 1, 3, 65534, 65535, 70000} {
		if n >= 65535 && testing.Short() {
			continue
		}
		data := ManyEntries(n)
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		require.NoError(t, err, "n=%d", n)
		require.Len(t, zr.File, n)
		a := mustParse(t, data)
		assert.Equal(t, uint64(n), a.records, "declared count, n=%d", n)
		assert.Equal(t, n >= 65535, a.zip64, "zip64 end records from 65535 entries, n=%d", n)
		if n > 0 {
			assert.Equal(t, "entries/0000001.txt", zr.File[0].Name)
			assert.Equal(t, "1\n", readEntry(t, zr.File[0]))
			assert.Equal(t, uint16(methodStore), zr.File[n-1].Method)
		}
	}
	assert.Equal(t, ManyEntries(100), ManyEntries(100), "deterministic")
}

func TestCRC32Combine(t *testing.T) {
	a, b := []byte("local header bytes"), bytes.Repeat([]byte("kernel"), 1000)
	want := crc32.ChecksumIEEE(append(slices.Clone(a), b...))
	assert.Equal(t, want, crc32Prepend(a, crc32.ChecksumIEEE(b), uint64(len(b))))
	assert.Equal(t, crc32.ChecksumIEEE(a), crc32Combine(crc32.ChecksumIEEE(a), 0, 0))
}

// TestTestdata keeps testdata/<case>.zip equal to Cases(), so that fuzzers
// elsewhere can seed from it. Run with -update (or `go generate`) after
// changing a case.
func TestTestdata(t *testing.T) {
	const dir = "testdata"
	want := map[string][]byte{}
	for _, c := range Cases() {
		want[c.Name+".zip"] = c.Build()
	}
	if *update {
		require.NoError(t, os.MkdirAll(dir, 0o755))
		old, err := filepath.Glob(filepath.Join(dir, "*.zip"))
		require.NoError(t, err)
		for _, p := range old {
			if _, ok := want[filepath.Base(p)]; !ok {
				require.NoError(t, os.Remove(p))
			}
		}
		for name, data := range want {
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), data, 0o644))
		}
	}
	got, err := filepath.Glob(filepath.Join(dir, "*.zip"))
	require.NoError(t, err)
	for _, p := range got {
		if _, ok := want[filepath.Base(p)]; !ok {
			t.Errorf("%s has no case; run go test ./internal/testkit/zipcorpus -update", p)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		data := want[name]
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is missing; run go test ./internal/testkit/zipcorpus -update", name)
			continue
		}
		require.NoError(t, err)
		assert.True(t, bytes.Equal(data, b), "%s differs from its case; run go test ./internal/testkit/zipcorpus -update", name)
	}
}

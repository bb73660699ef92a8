package zipcorpus

import (
	"bytes"
	"compress/gzip"
	"hash/crc32"
	"strconv"
	"strings"
)

// Shared content, small but realistic enough to compress.
const (
	folder    = "PCR Optimization 3 (etr_7Hq2LmZx)/"
	notesMD   = "# PCR Optimization 3\n\nAnnealing gradient 55-65 °C, 30 cycles.\nBest yield at 61 °C; see results/plate_01.csv.\n"
	indexHTML = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Assay Development</title></head>\n<body><h1>Assay Development</h1><ul><li>PCR Optimization 3</li></ul></body></html>\n"
)

// plateCSV returns a plate-reader CSV with rows data rows.
func plateCSV(rows int) string {
	var b strings.Builder
	b.WriteString("sample_id,well,concentration_ng_ul,status\n")
	for i := range rows {
		b.WriteString("SMP-")
		b.WriteString(pad(i+1, 6))
		b.WriteByte(',')
		b.WriteByte(byte('A' + i/12%8))
		b.WriteString(pad(i%12+1, 2))
		b.WriteByte(',')
		b.WriteString(strconv.Itoa((i * 7919) % 1000))
		b.WriteByte('.')
		b.WriteString(pad((i*104729)%1000, 3))
		if i%9 == 4 {
			b.WriteString(",REVIEW\n")
		} else {
			b.WriteString(",PASS\n")
		}
	}
	return b.String()
}

func pad(v, width int) string {
	s := strconv.Itoa(v)
	if len(s) < width {
		s = strings.Repeat("0", width-len(s)) + s
	}
	return s
}

// noise returns n deterministic pseudo-random bytes (an xorshift stream),
// standing in for ciphertext.
func noise(n int, seed uint32) []byte {
	p := make([]byte, n)
	x := seed | 1
	for i := range p {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		p[i] = byte(x >> 24)
	}
	return p
}

// files builds a Case.Files map from name, content pairs.
func files(kv ...string) map[string]string {
	m := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// streamed turns e into a streamed entry: flag bit 3 set, zero CRC and
// sizes in the local header, and a data descriptor after the data.
func streamed(e entry, signed bool) entry {
	e.h.flags |= flagDescriptor
	local := e.h
	local.crc, local.csize, local.usize = 0, 0, 0
	e.local = &local
	e.descriptor = descriptor(e.h, signed)
	return e
}

func validCases() []Case {
	csv := plateCSV(60)
	oddNames := []string{
		folder + "results/plate 01 (final).csv",
		"notes #1.md",
		"100% yield.csv",
		"what?.txt",
		"a+b=c&d;e.txt",
		"résumé/Ω data.csv",
		"実験ノート/結果 1.csv",
		"plate%2F01.csv",
		"emoji 🧪 assay.txt",
	}
	oddFiles := map[string]string{}
	for i, n := range oddNames {
		oddFiles[n] = "row " + strconv.Itoa(i) + "\n"
	}
	stub := []byte("#!/bin/sh\n# Self-extracting Benchling export.\nexec unzip -o \"$0\" \"$@\"\nexit 0\n")
	withStub := func(adjusted bool) []byte {
		var b builder
		b.stub(stub, adjusted)
		b.add(deflated(folder+"results/plate_01.csv", csv))
		b.add(stored("index.html", indexHTML))
		return b.finish(end{})
	}
	return []Case{
		{
			Name: "deflate",
			Build: func() []byte {
				return archive(deflated("index.html", indexHTML), deflated(folder+"notes.md", notesMD), deflated(folder+"results/plate_01.csv", csv))
			},
			Files: files("index.html", indexHTML, folder+"notes.md", notesMD, folder+"results/plate_01.csv", csv),
			Note:  "plain Deflate entries with sizes and CRC in both headers, as most zippers write",
		},
		{
			Name: "stored",
			Build: func() []byte {
				return archive(stored("index.html", indexHTML), stored(folder+"results/plate_01.csv", csv))
			},
			Files: files("index.html", indexHTML, folder+"results/plate_01.csv", csv),
			Note:  "method 0 (Store): data is the content verbatim",
		},
		{
			Name: "empty-file",
			Build: func() []byte {
				return archive(stored("empty-stored.txt", ""), deflated("empty-deflated.txt", ""), stored("not-empty.txt", "x\n"))
			},
			Files: files("empty-stored.txt", "", "empty-deflated.txt", "", "not-empty.txt", "x\n"),
			Note:  "zero-length entries, stored (no data) and deflated (a 2-byte final empty block): both valid, CRC 0",
		},
		{
			Name:  "empty-archive",
			Build: func() []byte { var b builder; return b.finish(end{}) },
			Files: map[string]string{},
			Note:  "22 bytes, only an end of central directory record: a valid archive with no entries (extract nothing, succeed)",
		},
		{
			Name: "directories",
			Build: func() []byte {
				return archive(dir(folder), dir(folder+"results/"), deflated(folder+"results/plate_01.csv", csv), dir(folder+"attachments/"), stored(folder+"notes.md", notesMD))
			},
			Files: files(folder+"results/plate_01.csv", csv, folder+"notes.md", notesMD),
			Note:  "explicit directory entries (trailing '/', size 0), including an empty directory: not files, nothing to upload",
		},
		{
			Name: "odd-names",
			Build: func() []byte {
				es := make([]entry, len(oddNames))
				for i, n := range oddNames {
					es[i] = stored(n, oddFiles[n])
				}
				return archive(es...)
			},
			Files: oddFiles,
			Note:  "spaces, parentheses, # % ? + & ; =, UTF-8 (flag bit 11 set), emoji and a literal %2F: all local names that must survive S3 key encoding unchanged",
		},
		{
			Name:  "utf8-name-no-flag",
			Build: func() []byte { e := stored("résumé.csv", "a,b\n"); e.h.flags &^= flagUTF8; return archive(e) },
			Files: files("résumé.csv", "a,b\n"),
			Note:  "valid UTF-8 name without flag bit 11, as macOS Archive Utility writes: bytes taken as UTF-8",
		},
		{
			Name: "data-descriptor",
			Build: func() []byte {
				return archive(streamed(deflated(folder+"results/plate_01.csv", csv), true), streamed(deflated(folder+"notes.md", notesMD), true))
			},
			Files: files(folder+"results/plate_01.csv", csv, folder+"notes.md", notesMD),
			Note:  "streamed zip (flag bit 3): local CRC and sizes are 0, real values in a signed data descriptor and the central directory",
		},
		{
			Name: "data-descriptor-no-signature",
			Build: func() []byte {
				return archive(streamed(deflated(folder+"results/plate_01.csv", csv), false), streamed(stored("index.html", indexHTML), false))
			},
			Files: files(folder+"results/plate_01.csv", csv, "index.html", indexHTML),
			Note:  "data descriptors without the optional 0x08074b50 signature (APPNOTE 4.3.9.3), which readers must accept",
		},
		{
			Name: "zip64",
			Build: func() []byte {
				e1, e2 := deflated(folder+"results/plate_01.csv", csv), stored("index.html", indexHTML)
				e1.h.zip64, e2.h.zip64 = true, true
				var b builder
				b.add(e1)
				b.add(e2)
				return b.finish(end{zip64: true})
			},
			Files: files(folder+"results/plate_01.csv", csv, "index.html", indexHTML),
			Note:  "small entries in zip64 form: 0xFFFFFFFF sizes/offsets with zip64 extra fields, zip64 end record and locator, saturated classic end record",
		},
		{
			Name: "zstd",
			Build: func() []byte {
				return archive(zstded(folder+"results/plate_01.csv", csv), deflated("index.html", indexHTML))
			},
			Files: files(folder+"results/plate_01.csv", csv, "index.html", indexHTML),
			Note:  "a Zstandard entry (method 93, WinZip): readable once zstd.ZipDecompressor is registered on the Reader",
		},
		{
			Name: "trailing-junk",
			Build: func() []byte {
				a := archive(deflated("index.html", indexHTML))
				return append(a, "\r\n--boundary_4QK7PZ0V--\r\nContent-Length: 0\r\n\r\n"...)
			},
			Files: files("index.html", indexHTML),
			Note:  "bytes after the end record (a proxy's multipart trailer): the end record is found by scanning back, so it still reads",
		},
		{
			Name: "archive-comment",
			Build: func() []byte {
				var b builder
				b.add(deflated("index.html", indexHTML))
				return b.finish(end{comment: "Exported from Benchling on 2024-03-05 14:22 UTC"})
			},
			Files: files("index.html", indexHTML),
			Note:  "an archive comment after the end record; its length field matches",
		},
		{
			Name:  "prepended-stub",
			Build: func() []byte { return withStub(false) },
			Files: files(folder+"results/plate_01.csv", csv, "index.html", indexHTML),
			Note:  "a self-extractor stub before the archive with offsets not adjusted: readers infer the non-zero base offset from the end record",
		},
		{
			Name:  "prepended-stub-adjusted",
			Build: func() []byte { return withStub(true) },
			Files: files(folder+"results/plate_01.csv", csv, "index.html", indexHTML),
			Note:  "the same stub with offsets counted from the start of the file (zip -A): base offset 0",
		},
		{
			Name:  "case-differs",
			Build: func() []byte { return archive(stored("Results.csv", "A\n"), stored("results.csv", "a\n")) },
			Files: files("Results.csv", "A\n", "results.csv", "a\n"),
			Note:  "names that differ only in case are distinct: S3 keys are case-sensitive, so this is not a duplicate",
		},
	}
}

// nameCase is an archive holding a benign file and then one with a hostile
// name, so that an extractor must check every name, not just the first.
func nameCase(caseName, name, note string) Case {
	return Case{
		Name: caseName,
		Want: errInsecurePath,
		Build: func() []byte {
			e := stored(name, "pwned\n")
			if strings.HasSuffix(name, "/") {
				e = dir(name)
			}
			return archive(stored("index.html", indexHTML), e)
		},
		Note: note,
	}
}

func nameCases() []Case {
	return []Case{
		nameCase("dotdot-escape", "../x", "a leading .. escapes the destination prefix"),
		nameCase("dotdot-nested", "a/../../x", "climbs above the root through a subdirectory"),
		nameCase("dotdot-inner", "a/../x", "does not escape, but is not canonical (cleans to x): keys must equal path.Clean(name)"),
		nameCase("dotdot-trailing", "a/..", "ends in ..: not canonical, names a parent directory"),
		nameCase("dotdot-dir", "../evil/", "a directory entry that escapes: directory names are checked too"),
		nameCase("absolute", "/etc/passwd", "absolute path; APPNOTE 4.4.17 forbids a leading slash"),
		nameCase("drive-letter", `C:\x`, "Windows drive letter with a backslash"),
		nameCase("drive-relative", "C:x", "drive-relative Windows path: contains no slash or backslash, so filepath.IsLocal on Linux accepts it; a colon in the first element is rejected"),
		nameCase("backslash-dotdot", `..\x`, "backslash separators hiding .. (APPNOTE 4.4.17 requires forward slashes)"),
		nameCase("backslash-nested", `a\..\..\x`, "backslash separators hiding a nested .. escape"),
		nameCase("backslash", `results\plate_01.csv`, "any backslash is insecure (as klauspost/archive zip with zipinsecurepath=0): on Windows it is a separator"),
		nameCase("dot-segment", "a/./b", "a . element: not canonical (path.Clean gives a/b), so two names could map to one key"),
		nameCase("double-slash", "a//b", "an empty element: not canonical (path.Clean gives a/b), S3 would keep the double slash"),
		nameCase("empty-name", "", "an empty name has no key (klauspost skips empty names in its own check)"),
		nameCase("nul-in-name", "plate.csv\x00../../x", "NUL truncates names in C-based tools, so what is checked differs from what is used"),
		nameCase("invalid-utf8-name", "caf\xe9.csv", "Latin-1 byte 0xE9, not UTF-8 (and flag bit 11 clear): S3 keys must be valid UTF-8"),
	}
}

// aesExtra is the WinZip AES extra field (APPNOTE 4.5.3 points to
// WinZip's spec): AE-2, vendor "AE", AES-256, actual method Deflate.
var aesExtra = extraField(extraAES, []byte{2, 0, 'A', 'E', 3, methodDeflate, 0})

// aesEntry is a WinZip AES entry: salt, password verifier, ciphertext and
// authentication code, with CRC 0 as AE-2 writes it.
func aesEntry(name string, flags uint16) entry {
	data := noise(16+2+120+10, 99)
	h := fileHeader(name, methodAES, "", len(data))
	h.usize = 200
	h.flags |= flags
	h.extra = aesExtra
	return entry{h: h, data: data}
}

// methodEntry is a file whose method is not one an extractor supports.
func methodEntry(name string, method uint16, data []byte) entry {
	h := fileHeader(name, method, plateCSV(10), len(data))
	return entry{h: h, data: data}
}

func methodCases() []Case {
	return []Case{
		{
			Name: "encrypted-zipcrypto",
			Want: errEncrypted,
			Build: func() []byte {
				content := plateCSV(10)
				data := noise(12+len(content)/2, 7) // 12-byte encryption header + ciphertext
				h := fileHeader(folder+"results/plate_01.csv", methodDeflate, content, len(data))
				h.flags |= flagEncrypted
				return archive(stored("index.html", indexHTML), entry{h: h, data: data})
			},
			Note: "flag bit 0 (traditional PKWARE encryption) on a Deflate entry: the data is ciphertext; reading it would be garbage or a flate error",
		},
		{
			Name:  "encrypted-aes",
			Want:  errEncrypted,
			Build: func() []byte { return archive(aesEntry("secret.csv", flagEncrypted)) },
			Note:  "method 99 with the 0x9901 AES extra field and flag bit 0, as WinZip/7-Zip write AES: encrypted, not an unknown method",
		},
		{
			Name:  "aes-method-without-flag",
			Want:  errEncrypted,
			Build: func() []byte { return archive(aesEntry("secret.csv", 0)) },
			Note:  "method 99 alone (flag bit 0 clear) still means AES encryption: method 99 maps to ErrEncrypted, not ErrUnsupportedMethod",
		},
		{
			Name:  "unknown-method-77",
			Want:  errUnsupportedMethod,
			Build: func() []byte { return archive(methodEntry("data.bin", 77, noise(64, 77))) },
			Note:  "method 77 is not assigned by APPNOTE 4.4.5: no decompressor exists",
		},
		{
			Name: "bzip2-method-12",
			Want: errUnsupportedMethod,
			Build: func() []byte {
				return archive(methodEntry("data.csv", 12, append([]byte("BZh91AY&SY"), noise(54, 12)...)))
			},
			Note: "method 12 (BZIP2) is legitimate but not supported (only Store, Deflate, Zstandard 93); the stream is never decoded",
		},
		{
			Name:  "deflate64-method-9",
			Want:  errUnsupportedMethod,
			Build: func() []byte { return archive(methodEntry("big.tiff", 9, noise(64, 9))) },
			Note:  "method 9 (Deflate64), which Windows Explorer uses for large files: real, but unsupported",
		},
	}
}

func integrityCases() []Case {
	content := plateCSV(80)
	name := folder + "results/plate_01.csv"
	mutate := func(f func(*entry)) func() []byte {
		return func() []byte {
			e := deflated(name, content)
			f(&e)
			return archive(stored("index.html", indexHTML), e)
		}
	}
	return []Case{
		{
			Name:  "crc-mismatch",
			Want:  errChecksum,
			Build: mutate(func(e *entry) { e.h.crc ^= 0x5a5a5a5a }),
			Note:  "CRC-32 in both headers differs from the CRC of the inflated data",
		},
		{
			Name:  "crc-zero",
			Want:  errChecksum,
			Build: mutate(func(e *entry) { e.h.crc = 0 }),
			Note:  "CRC-32 0 in both headers over non-empty data whose CRC is not 0: klauspost zip skips the check when the field is 0, the extractor must not",
		},
		{
			Name:  "size-declared-smaller",
			Want:  errChecksum,
			Build: mutate(func(e *entry) { e.h.usize -= 16 }),
			Note:  "the stream inflates to 16 bytes more than the declared size (data longer than declared): the headers lie, an integrity failure, not truncation",
		},
		{
			Name:  "deflate-stream-short",
			Want:  errTruncated,
			Build: mutate(func(e *entry) { e.h.usize += 100 }),
			Note:  "a complete Deflate stream ends 100 bytes before the declared uncompressed size (data shorter than declared): ErrTruncated",
		},
		{
			Name: "deflate-stream-cut",
			Want: errTruncated,
			Build: mutate(func(e *entry) {
				e.data = e.data[:len(e.data)/2]
				e.h.csize = uint64(len(e.data))
			}),
			Note: "the compressed data is cut in half (sizes and CRC of the whole): the inflater hits the end of the entry mid-stream",
		},
		{
			Name: "corrupt-deflate",
			Want: errChecksum,
			Build: mutate(func(e *entry) {
				e.data = []byte{0xff, 0xff, 0xff, 0xff}
				e.h.csize = uint64(len(e.data))
			}),
			Note: "the compressed data starts with a reserved block type (BTYPE 11): corrupt data is an integrity failure, like a CRC mismatch",
		},
	}
}

func notZipCases() []Case {
	first := folder + "results/plate_01.csv"
	full := func() []byte {
		var b builder
		b.add(deflated(first, plateCSV(200)))
		b.add(stored("index.html", indexHTML))
		return b.finish(end{comment: "Exported from Benchling"})
	}
	return []Case{
		{
			Name:  "empty-body",
			Want:  errNotZip,
			Build: func() []byte { return []byte{} },
			Note:  "zero bytes: no end of central directory record (unlike empty-archive, which has one)",
		},
		{
			Name: "s3-error-xml",
			Want: errNotZip,
			Build: func() []byte {
				return []byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
					`<Error><Code>AccessDenied</Code><Message>Request has expired</Message>` +
					`<X-Amz-Expires>3600</X-Amz-Expires><Expires>2024-03-05T15:22:10Z</Expires>` +
					`<ServerTime>2024-03-05T16:01:44Z</ServerTime><RequestId>4QK7PZ0V3JX9C2MB</RequestId>` +
					`<HostId>q2VQ0b0mZ8Hh9yK3lq1n5wz2Xk0pE7x3c6mYbB9v2Yb4H1p0Qe8Jr5t7Uo3Is1Aa</HostId></Error>`)
			},
			Note: "an S3 error document served instead of the export (expired presigned URL): no end record",
		},
		{
			Name: "html-page",
			Want: errNotZip,
			Build: func() []byte {
				return []byte("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in · Benchling</title></head>\n" +
					"<body><form method=\"post\" action=\"/login\"><input name=\"email\"><button>Continue</button></form></body></html>\n")
			},
			Note: "a login page served with 200 instead of the export: no end record",
		},
		{
			Name: "gzip-body",
			Want: errNotZip,
			Build: func() []byte {
				var buf bytes.Buffer
				zw := gzip.NewWriter(&buf) // zero header: no name, no time, so deterministic
				_, _ = zw.Write([]byte(plateCSV(50)))
				_ = zw.Close()
				return buf.Bytes()
			},
			Note: "a gzip stream (e.g. a .csv.gz or tar.gz export): compressed, but not a zip",
		},
		{
			Name:  "truncated-mid-entry",
			Want:  errNotZip,
			Build: func() []byte { a := full(); return a[:localLen+len(first)+200] },
			Note:  "a download cut inside the first entry's data: the end record is missing, so it cannot be told from any non-zip",
		},
		{
			Name: "truncated-mid-directory",
			Want: errNotZip,
			Build: func() []byte {
				a := full()
				i := bytes.LastIndex(a, le32(nil, sigCentral))
				return a[:i+10]
			},
			Note: "cut inside the central directory: no end record",
		},
		{
			Name:  "truncated-in-end-record",
			Want:  errNotZip,
			Build: func() []byte { a := full(); return a[:len(a)-len("Exported from Benchling")-10] },
			Note:  "cut inside the end of central directory record: the signature is there but the record is incomplete",
		},
		{
			Name:  "truncated-in-comment",
			Want:  errNotZip,
			Build: func() []byte { a := full(); return a[:len(a)-5] },
			Note:  "cut inside the archive comment: the end record's comment length runs past the end, so it is not accepted as an end record",
		},
	}
}

func structureCases() []Case {
	csv := plateCSV(40)
	return []Case{
		{
			Name: "cd-offset-beyond-eof",
			Want: errTruncated,
			Build: func() []byte {
				var b builder
				b.add(deflated(folder+"results/plate_01.csv", csv))
				return b.finish(end{patch: func(f *endFields) { f.dirOffset = 1 << 30 }})
			},
			Note: "the end record puts the central directory 1 GiB in, past the end of the file (a negative base offset): data the directory describes is missing, as when the front of a download is lost; klauspost silently re-bases instead",
		},
		{
			Name: "local-offset-beyond-eof",
			Want: errTruncated,
			Build: func() []byte {
				var b builder
				b.add(stored("index.html", indexHTML))
				b.add(deflated(folder+"results/plate_01.csv", csv))
				b.records[1].offset = 1 << 30
				return b.finish(end{})
			},
			Note: "a central directory record whose local header offset is past the end of the file: the entry's data is missing",
		},
		{
			Name: "duplicate-name",
			Want: errDuplicateName,
			Build: func() []byte {
				return archive(stored("results/plate_01.csv", csv), stored("index.html", indexHTML), stored("results/plate_01.csv", "evil\n"))
			},
			Note: "two entries with the same name: the second would silently overwrite the first object",
		},
		{
			Name:  "file-and-folder",
			Want:  errDuplicateName,
			Build: func() []byte { return archive(stored("results", "i am a file\n"), stored("results/plate_01.csv", csv)) },
			Note:  "\"results\" is a file and also the folder of \"results/plate_01.csv\": a name that is both cannot be extracted to a filesystem, so it counts as a duplicate",
		},
		{
			Name:  "file-and-dir-entry",
			Want:  errDuplicateName,
			Build: func() []byte { return archive(stored("results", "i am a file\n"), dir("results/")) },
			Note:  "a file \"results\" and a directory entry \"results/\": the same name as file and folder",
		},
		{
			Name: "overlap-shared-header",
			Want: errOverlap,
			Build: func() []byte {
				var b builder
				off := b.add(deflated("report.csv", csv))
				other := b.records[0].h
				other.name = "summary.csv"
				b.records = append(b.records, record{h: other, offset: off})
				return b.finish(end{})
			},
			Note: "two central directory records point at one local header: seen from the central directory alone, so ErrOverlap wins over the second record's name mismatch",
		},
		{
			Name:  "zip-bomb-overlap",
			Want:  errOverlap,
			Build: func() []byte { return overlapBomb(16, 1<<20) },
			Note:  "Fifield-style non-recursive bomb: 16 entries share one 1 MiB Deflate kernel through quoted local headers (every CRC is right; klauspost inflates 16 MiB from a few KB); their data ranges overlap",
		},
		{
			Name: "local-name-mismatch",
			Want: errHeaderMismatch,
			Build: func() []byte {
				e := deflated(folder+"results/plate_01.csv", csv)
				local := e.h
				local.name = folder + "results/plate_99.csv"
				e.local = &local
				return archive(stored("index.html", indexHTML), e)
			},
			Note: "the local header names a different file than the central directory: streaming readers see another name (smuggling); klauspost never reads the local name",
		},
		{
			Name: "local-method-mismatch",
			Want: errHeaderMismatch,
			Build: func() []byte {
				e := deflated(folder+"results/plate_01.csv", csv)
				local := e.h
				local.method = methodStore
				e.local = &local
				return archive(stored("index.html", indexHTML), e)
			},
			Note: "the local header says Store, the central directory Deflate: streaming readers would store raw Deflate bytes; klauspost uses the central method only",
		},
		{
			Name: "local-header-bad-signature",
			Want: errHeaderMismatch,
			Build: func() []byte {
				a := archive(stored("index.html", indexHTML), deflated(folder+"results/plate_01.csv", csv))
				copy(a, []byte{0, 0, 0, 0})
				return a
			},
			Note: "the first central record's offset points at bytes that are not a local file header signature",
		},
		{
			Name:  "declared-huge",
			Want:  errTooLarge,
			Build: DeclaredHuge,
			Note:  "a zip64 entry declares 2^40 bytes (1 TiB) uncompressed in a sub-KiB archive: rejected from the declared size under any sane cap, before reading",
		},
	}
}

// overlapBomb builds a Fifield-style non-recursive zip bomb ("A better zip
// bomb", 2019): n entries whose data ranges overlap. Entry i's data is a
// stored (non-final) Deflate block quoting local header i+1, followed by
// entry i+1's data; the last entry's data is the kernel, kernelSize bytes
// of 'a' deflated. Every header carries the right CRC and sizes.
func overlapBomb(n, kernelSize int) []byte {
	kernelOut := bytes.Repeat([]byte{'a'}, kernelSize)
	kernel := deflate(kernelOut)
	hs := make([]header, n)
	locals := make([][]byte, n)
	crcAfter := crc32.ChecksumIEEE(kernelOut) // CRC of entry i+1's content
	var usizeAfter, csizeAfter uint64 = uint64(kernelSize), uint64(len(kernel))
	for i := n - 1; i >= 0; i-- {
		h := header{name: "bomb/" + pad(i, 4) + ".txt", method: methodDeflate, external: 0o100644 << 16}
		if i == n-1 {
			h.crc, h.usize, h.csize = crcAfter, usizeAfter, csizeAfter
		} else {
			// Content: local header i+1, then entry i+1's content.
			next := locals[i+1]
			h.crc = crc32Prepend(next, crcAfter, usizeAfter)
			h.usize = uint64(len(next)) + usizeAfter
			h.csize = 5 + uint64(len(next)) + csizeAfter
		}
		hs[i], locals[i] = h, localHeaderBytes(h)
		crcAfter, usizeAfter, csizeAfter = h.crc, h.usize, h.csize
	}
	var b builder
	for i, h := range hs {
		data := kernel
		if i < n-1 {
			data = storedBlockHeader(len(locals[i+1]))
		}
		b.add(entry{h: h, data: data})
	}
	return b.finish(end{})
}

// storedBlockHeader is a non-final stored Deflate block header (RFC 1951
// 3.2.4) announcing n literal bytes.
func storedBlockHeader(n int) []byte {
	return le16(le16([]byte{0}, uint16(n)), ^uint16(n))
}

// crc32Prepend returns the CRC-32 of prefix followed by a suffix of
// suffixLen bytes whose CRC-32 is suffixCRC, using CRC-32 combination
// (as zlib's crc32_combine) so the suffix need not be reread.
func crc32Prepend(prefix []byte, suffixCRC uint32, suffixLen uint64) uint32 {
	return crc32Combine(crc32.ChecksumIEEE(prefix), suffixCRC, suffixLen)
}

// crc32Combine is zlib's crc32_combine for the IEEE polynomial: given
// crc1 = CRC(A) and crc2 = CRC(B), it returns CRC(A||B) where len2 = len(B).
func crc32Combine(crc1, crc2 uint32, len2 uint64) uint32 {
	if len2 == 0 {
		return crc1
	}
	var even, odd [32]uint32
	odd[0] = crc32.IEEE // reflected polynomial
	row := uint32(1)
	for i := 1; i < 32; i++ {
		odd[i] = row
		row <<= 1
	}
	gf2Square(even[:], odd[:]) // two zero bits
	gf2Square(odd[:], even[:]) // four zero bits
	for {
		gf2Square(even[:], odd[:])
		if len2&1 != 0 {
			crc1 = gf2Times(even[:], crc1)
		}
		len2 >>= 1
		if len2 == 0 {
			break
		}
		gf2Square(odd[:], even[:])
		if len2&1 != 0 {
			crc1 = gf2Times(odd[:], crc1)
		}
		len2 >>= 1
		if len2 == 0 {
			break
		}
	}
	return crc1 ^ crc2
}

func gf2Times(mat []uint32, vec uint32) uint32 {
	var sum uint32
	for i := 0; vec != 0; i, vec = i+1, vec>>1 {
		if vec&1 != 0 {
			sum ^= mat[i]
		}
	}
	return sum
}

func gf2Square(square, mat []uint32) {
	for n := range 32 {
		square[n] = gf2Times(mat, mat[n])
	}
}

// ManyEntries returns a valid archive of n tiny stored files
// ("entries/0000001.txt", ...), for testing an entry-count limit: it must
// be rejected with ErrTooManyEntries when n exceeds the limit and extract
// when it does not. From n = 65535 it uses zip64 end records. Its size is
// about 110 bytes per entry, so it is only small for small n.
func ManyEntries(n int) []byte {
	var b builder
	for i := range n {
		s := strconv.Itoa(i + 1)
		b.add(stored("entries/"+pad(i+1, 7)+".txt", s+"\n"))
	}
	return b.finish(end{})
}

// DeclaredHuge returns a small archive whose entries declare 2^40 bytes
// (1 TiB) uncompressed in all: one zip64 entry "huge.bin" declares 2^40
// bytes but holds a short Deflate stream, after a small README. It must be
// rejected with ErrTooLarge from the declared sizes, before reading data.
func DeclaredHuge() []byte {
	readme := "This export is larger than it looks.\n"
	payload := make([]byte, 4096)
	huge := deflated("huge.bin", string(payload))
	huge.h.usize = 1<<40 - uint64(len(readme))
	huge.h.zip64 = true
	return archive(stored("README.txt", readme), huge)
}

// localHeaderBytes encodes h as a local file header.
func localHeaderBytes(h header) []byte {
	var b builder
	b.localHeader(h)
	return b.buf.Bytes()
}

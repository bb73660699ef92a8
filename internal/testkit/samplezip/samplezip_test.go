package samplezip

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/zip"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteFileRoundTrip(t *testing.T) {
	tests := map[string]struct {
		spec Spec
		// wantMethods, if set, maps an entry index to its expected method.
		wantMethods map[int]uint16
	}{
		"small preset": {
			spec:        Small(),
			wantMethods: map[int]uint16{0: zip.Deflate, 1: zip.Store},
		},
		"empty": {spec: Spec{}},
		"only large": {
			spec:        Spec{Large: []int64{1 << 20, 0, 3}, Seed: 5},
			wantMethods: map[int]uint16{0: zip.Store, 1: zip.Store, 2: zip.Store},
		},
		"deflate everything": {
			spec:        Spec{Files: 30, TotalBytes: 1 << 20, Compressible: 0.3, Method: zip.Deflate, Seed: 6},
			wantMethods: map[int]uint16{0: zip.Deflate, 1: zip.Deflate, 2: zip.Deflate},
		},
		"store everything": {
			spec:        Spec{Files: 30, TotalBytes: 1 << 20, Compressible: 0.7, StoreAll: true, Seed: 7},
			wantMethods: map[int]uint16{0: zip.Store, 1: zip.Store, 2: zip.Store},
		},
		"zstd": {
			spec:        Spec{Files: 40, TotalBytes: 3 << 20, Compressible: 1, Zstd: true, Seed: 8},
			wantMethods: map[int]uint16{0: zip.Deflate, 1: MethodZstd, 2: zip.Deflate, 3: MethodZstd},
		},
		"all text": {spec: Spec{Files: 25, TotalBytes: 2 << 20, Compressible: 1, Seed: 9}},
		"all images with large": {
			spec: Spec{Files: 10, TotalBytes: 1 << 20, Large: []int64{2 << 20, 2 << 20}, Seed: 10},
		},
		"names": {
			spec: Spec{
				Files: 8, TotalBytes: 100_000, Compressible: 0.5, Seed: 11,
				Names: []string{
					"résumé/Ω data.csv", "実験ノート/結果 1.png", "a#b%c?d+e.md", "plate%2F01.csv",
					"dup.csv", "dup.csv", "../escape.csv", "Gel Electrophoresis 37 (etr_08C1oiD8)/x.csv",
					"weird\\name.jsonl", "more names than files.tiff",
				},
			},
		},
		"more files than bytes": {spec: Spec{Files: 50, TotalBytes: 20, Compressible: 0.5, Seed: 12}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "export.zip")
			m, err := WriteFile(path, tc.spec)
			require.NoError(t, err)

			fi, err := os.Stat(path)
			require.NoError(t, err)
			assert.Equal(t, fi.Size(), m.ArchiveSize)

			var total int64
			for _, n := range tc.spec.Large {
				total += n
			}
			assert.Equal(t, tc.spec.TotalBytes+total, m.TotalUncompressed)
			assert.Len(t, m.Entries, max(tc.spec.Files, len(tc.spec.Names))+len(tc.spec.Large))
			for i, n := range tc.spec.Names {
				assert.Equal(t, n, m.Entries[i].Name, "Names[%d] is used first", i)
			}

			zr, err := zip.OpenReader(path)
			if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
				require.NoError(t, err)
			}
			t.Cleanup(func() { _ = zr.Close() })
			zr.RegisterDecompressor(MethodZstd, zstd.ZipDecompressor())
			checkArchive(t, &zr.Reader, m)
			for i, method := range tc.wantMethods {
				assert.Equal(t, method, zr.File[i].Method, "method of entry %d %q", i, zr.File[i].Name)
			}
		})
	}
}

// checkArchive checks every entry of r against m.
func checkArchive(t *testing.T, r *zip.Reader, m Manifest) {
	t.Helper()
	require.Len(t, r.File, len(m.Entries))
	for i, f := range r.File {
		want := m.Entries[i]
		assert.Equal(t, want.Name, f.Name)
		assert.Equal(t, uint64(want.Size), f.UncompressedSize64, want.Name)
		assert.Equal(t, want.CRC32, f.CRC32, want.Name)

		rc, err := f.Open()
		require.NoError(t, err, want.Name)
		h := sha256.New()
		c := crc32.NewIEEE()
		n, err := io.Copy(io.MultiWriter(h, c), rc)
		require.NoError(t, err, want.Name)
		require.NoError(t, rc.Close())
		assert.Equal(t, want.Size, n, want.Name)
		assert.Equal(t, want.SHA256, hex.EncodeToString(h.Sum(nil)), want.Name)
		assert.Equal(t, want.CRC32, c.Sum32(), want.Name)
	}
}

func TestNamesLookLikeExport(t *testing.T) {
	m, err := Write(io.Discard, Small())
	require.NoError(t, err)
	seen := map[string]bool{}
	var html, md, csv, img int
	for i, e := range m.Entries {
		require.False(t, seen[e.Name], "duplicate generated name %q", e.Name)
		seen[e.Name] = true
		switch {
		case i == 0:
			assert.NotContains(t, e.Name, "/", "first entry is the top-level notebook page")
			assert.True(t, strings.HasSuffix(e.Name, ".html"), e.Name)
			html++
			continue
		case strings.HasSuffix(e.Name, ".md"):
			md++
		case strings.Contains(e.Name, "/results/"):
			csv++
		case strings.Contains(e.Name, "/attachments/"):
			img++
		default:
			t.Errorf("unexpected name %q", e.Name)
		}
		assert.Regexp(t, `^[^/]+ \(etr_[0-9A-Za-z]{8}\)/`, e.Name)
	}
	assert.Equal(t, 1, html)
	assert.Positive(t, md)
	assert.Positive(t, csv)
	assert.Equal(t, 20, img, "half of 40 files are image-like")
}

func TestDeterministic(t *testing.T) {
	spec := Spec{Files: 60, TotalBytes: 3 << 20, Compressible: 0.5, Large: []int64{1 << 20}, Zstd: true, Seed: 42}
	var a, b bytes.Buffer
	ma, err := Write(&a, spec)
	require.NoError(t, err)
	mb, err := Write(&b, spec)
	require.NoError(t, err)
	assert.Equal(t, ma, mb)
	assert.True(t, bytes.Equal(a.Bytes(), b.Bytes()), "same seed must give the same bytes")

	spec.Seed++
	var c bytes.Buffer
	_, err = Write(&c, spec)
	require.NoError(t, err)
	assert.False(t, bytes.Equal(a.Bytes(), c.Bytes()), "a different seed must give different bytes")
}

func TestZstdNeedsRegisteredDecompressor(t *testing.T) {
	var buf bytes.Buffer
	_, err := Write(&buf, Spec{Files: 2, TotalBytes: 1000, Compressible: 1, Zstd: true})
	require.NoError(t, err)
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	require.NoError(t, err)
	require.Equal(t, MethodZstd, zr.File[1].Method)
	_, err = zr.File[1].Open()
	assert.ErrorIs(t, err, zip.ErrAlgorithm, "zstd is registered per writer, never globally")
}

func TestSizesSpread(t *testing.T) {
	// plan alone is enough: it fixes every entry's size.
	items := plan(Medium())
	m := Manifest{Entries: make([]Entry, len(items))}
	for i, it := range items {
		m.Entries[i].Size = it.size
		m.TotalUncompressed += it.size
	}
	var lo, hi int64 = 1 << 62, 0
	for _, e := range m.Entries {
		lo, hi = min(lo, e.Size), max(hi, e.Size)
	}
	mean := Medium().TotalBytes / int64(Medium().Files)
	assert.Less(t, lo, mean/3, "sizes vary below the mean")
	assert.Greater(t, hi, 3*mean, "sizes vary above the mean")
	assert.Equal(t, Medium().TotalBytes, m.TotalUncompressed)
}

func TestStreamingMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 128 MiB")
	}
	spec := Spec{Files: 100, TotalBytes: 64 << 20, Compressible: 1, Large: []int64{64 << 20}, Method: zip.Deflate, Seed: 13}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := Write(io.Discard, spec)
	require.NoError(t, err)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d KiB to write 128 MiB", alloc>>10)
	assert.Less(t, alloc, uint64(16<<20), "generation must stream, not buffer entries")
}

func TestPresets(t *testing.T) {
	tests := map[string]struct {
		spec      Spec
		wantFiles int
		wantTotal int64
	}{
		"Small":     {spec: Small(), wantFiles: 40, wantTotal: 2 << 20},
		"Medium":    {spec: Medium(), wantFiles: 2000, wantTotal: 500 << 20},
		"ManySmall": {spec: ManySmall(), wantFiles: 20000, wantTotal: 20000 * 4 << 10},
		"Huge":      {spec: Huge(), wantFiles: 3000 + 4, wantTotal: 2 << 30},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, tc.spec.validate())
			items := plan(tc.spec)
			assert.Len(t, items, tc.wantFiles)
			var total int64
			for _, it := range items {
				total += it.size
			}
			assert.Equal(t, tc.wantTotal, total)
		})
	}
}

func TestManySmall(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 20,000 entries")
	}
	path := filepath.Join(t.TempDir(), "many.zip")
	m, err := WriteFile(path, ManySmall())
	require.NoError(t, err)
	zr, err := zip.OpenReader(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = zr.Close() })
	require.Len(t, zr.File, 20000)
	for i := 0; i < len(m.Entries); i += 997 {
		assert.Equal(t, m.Entries[i].Name, zr.File[i].Name)
		assert.Equal(t, m.Entries[i].CRC32, zr.File[i].CRC32)
	}
}

func TestInvalidSpec(t *testing.T) {
	tests := map[string]Spec{
		"negative files":       {Files: -1},
		"negative bytes":       {Files: 1, TotalBytes: -1},
		"bytes without files":  {TotalBytes: 10},
		"compressible above 1": {Files: 1, Compressible: 1.5},
		"compressible below 0": {Files: 1, Compressible: -0.1},
		"unknown method":       {Files: 1, Method: 12},
		"negative large":       {Large: []int64{-5}},
		"name too long":        {Names: []string{strings.Repeat("a", 1<<16)}},
	}
	for name, spec := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Write(io.Discard, spec)
			assert.ErrorIs(t, err, ErrInvalidSpec)
		})
	}
}

func TestWriteFileError(t *testing.T) {
	_, err := WriteFile(filepath.Join(t.TempDir(), "missing", "x.zip"), Small())
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func BenchmarkWrite(b *testing.B) {
	benchmarks := map[string]Spec{
		"Medium":    Medium(),
		"ManySmall": ManySmall(),
		"MediumZstd": func() Spec {
			s := Medium()
			s.Zstd = true
			return s
		}(),
	}
	for name, spec := range benchmarks {
		b.Run(name, func(b *testing.B) {
			m, err := Write(io.Discard, spec) // warm up, and learn the size
			require.NoError(b, err)
			b.SetBytes(m.TotalUncompressed)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := Write(io.Discard, spec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

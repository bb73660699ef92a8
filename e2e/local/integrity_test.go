package local_test

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"benchling-webhook/internal/quiltpkg"
	"benchling-webhook/internal/testkit/emulate"
	"benchling-webhook/internal/testkit/sandbox"
)

// badCRCZip is buildZip's archive of files with one more file at its end
// whose recorded CRC-32 is wrong: the export fails only after it has
// written every other file over the package's.
func badCRCZip(files map[string][]byte) []byte {
	GinkgoHelper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range sortedKeys(files) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate})
		Expect(err).NotTo(HaveOccurred())
		_, err = w.Write(files[name])
		Expect(err).NotTo(HaveOccurred())
	}
	last := []byte(strings.Repeat("the last file, whose CRC the directory gets wrong\n", 40))
	w, err := zw.CreateRaw(&zip.FileHeader{Name: "zz-last.txt", Method: zip.Store, CRC32: crc32.ChecksumIEEE(last) ^ 1,
		CompressedSize64: uint64(len(last)), UncompressedSize64: uint64(len(last))})
	Expect(err).NotTo(HaveOccurred())
	_, err = w.Write(last)
	Expect(err).NotTo(HaveOccurred())
	Expect(zw.Close()).To(Succeed())
	return buf.Bytes()
}

// readRecord reads and decodes entry's package record.
func readRecord(st *emulate.Stack, entry string) quiltpkg.Record {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key := quiltpkg.ControlKey(packageName(st, entry), quiltpkg.RecordName)
	objs, err := st.S3.Objects(ctx, bucket(st), key)
	Expect(err).NotTo(HaveOccurred())
	Expect(objs).To(HaveKey(key))
	rec, err := quiltpkg.DecodeRecord(objs[key])
	Expect(err).NotTo(HaveOccurred())
	return rec
}

// withMetadata is an export's files as the package holds them: below the
// package, with README.md, entry.json and input.json.
func withMetadata(files map[string][]byte) []string {
	return append(sortedKeys(files), "README.md", "entry.json", "input.json")
}

var _ = Describe("One entry, many runs", Ordered, func() {
	// Nine good runs and one failing run (the seventh; its archive has a
	// CRC error at the end) for one entry, one after the other; between
	// them the entry's attachments change (renamed, removed, added) and a
	// person drops a file into the package.
	const failing = 6
	var (
		entry   string
		exports []map[string][]byte // the files of each run's export
		after   []map[string][]byte // the package after each run
		dropped = "notes/added in the catalog.txt"
	)

	BeforeAll(func() {
		entry = newEntryID()
		base := addEntry(shared, entry, sandbox.EntryOptions{})
		for i := range 10 {
			files := map[string][]byte{}
			for name, data := range base {
				files[name] = append([]byte(fmt.Sprintf("run %d\n", i)), data...)
			}
			// Run 3 renames the CSV, run 5 removes the attachment, run 8
			// adds a new one: files that earlier runs wrote go.
			if i >= 3 {
				for name, data := range files {
					if strings.HasSuffix(name, ".csv") {
						delete(files, name)
						files[strings.Replace(name, "plate_01", "plate_01 (renamed)", 1)] = data
					}
				}
			}
			if i >= 5 {
				for name := range files {
					if strings.HasSuffix(name, ".bin") {
						delete(files, name)
					}
				}
			}
			if i >= 8 {
				files["Attachments/new.txt"] = []byte(fmt.Sprintf("new in run %d\n", i))
			}
			exports = append(exports, files)
		}
		for i, files := range exports {
			if i == failing {
				shared.Benchling.SetExport(entry, sandbox.ExportSpec{Zip: badCRCZip(files)})
				p := failedPackaging(shared, sendEntryEvent(shared, entry), "ExportRejected")
				Expect(exportTasks(shared, p.ARN)).To(HaveLen(1))
			} else {
				shared.Benchling.SetExport(entry, sandbox.ExportSpec{Zip: buildZip(files)})
				packaged(shared, sendEntryEvent(shared, entry))
			}
			after = append(after, packageFiles(shared, entry))
			if i == 1 {
				putObject(shared, packageName(shared, entry)+"/"+dropped, []byte("a person's note"))
			}
		}
	})

	It("leaves the previous export byte for byte after the failing run", func() {
		prev, got := after[failing-1], after[failing]
		Expect(sortedKeys(got)).To(Equal(sortedKeys(prev)), "no file more, no file less")
		for k, v := range prev {
			Expect(bytes.Equal(got[k], v)).To(BeTrue(), "bytes of %s", k)
		}
	})

	It("leaves after each good run exactly that export's files, and the dropped file", func() {
		for i, files := range exports {
			if i == failing {
				continue
			}
			want := withMetadata(files)
			if i >= 2 {
				want = append(want, dropped)
			}
			Expect(sortedKeys(after[i])).To(ConsistOf(want), "after run %d", i)
			for name, data := range files {
				Expect(bytes.Equal(after[i][name], data)).To(BeTrue(), "run %d: bytes of %s", i, name)
			}
		}
	})

	It("ends with a complete record and a README that lists exactly the package's files", func() {
		last := exports[len(exports)-1]
		rec := readRecord(shared, entry)
		Expect(rec.State).To(Equal(quiltpkg.RecordComplete))
		var recorded []string
		for _, f := range rec.Files {
			recorded = append(recorded, strings.TrimPrefix(f.Key, packageName(shared, entry)+"/"))
		}
		Expect(recorded).To(ConsistOf(withMetadata(last)))
		readme := string(after[len(after)-1]["README.md"])
		_, filesPart, _ := strings.Cut(readme, "## Files")
		filesPart, _, _ = strings.Cut(filesPart, "## Metadata")
		rows := strings.Count(filesPart, "\n| [")
		Expect(rows).To(Equal(len(last)+1), "the export's files and the dropped file:\n%s", readme)
		Expect(readme).To(ContainSubstring("new.txt"))
		Expect(readme).To(ContainSubstring("added in the catalog.txt"))
	})

	It("sends one Quilt message per good run and none for the failing one", func() {
		Expect(messagesFor(shared, packageName(shared, entry))).To(HaveLen(9))
	})
})

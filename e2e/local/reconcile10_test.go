package local_test

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"benchling-webhook/internal/quiltpkg"
	"benchling-webhook/internal/store"
	"benchling-webhook/internal/testkit/emulate"
	"benchling-webhook/internal/testkit/sandbox"
)

// recordRun marks the records this file writes in place of job export.
const recordRun = "e2e: in place of job export"

// ensureRecord makes sure entry's package has a record: the one the export
// wrote, or (with a job export that writes none yet) a complete one of
// what is under the package now, with the ETags S3 lists, as the export
// writes it; a record this file wrote before is written again.
func ensureRecord(st *emulate.Stack, entry string) quiltpkg.Record {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := st.S3.Client(ctx)
	Expect(err).NotTo(HaveOccurred())
	s := store.NewS3(c, store.S3Options{Bucket: bucket(st)})
	pkg := packageName(st, entry)
	key := quiltpkg.ControlKey(pkg, quiltpkg.RecordName)
	if b, err := s.Get(ctx, key, 32<<20); err == nil {
		rec, err := quiltpkg.DecodeRecord(b)
		Expect(err).NotTo(HaveOccurred())
		if rec.Run != recordRun {
			Expect(rec.State).To(Equal(quiltpkg.RecordComplete), "the export's record")
			return rec
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		Expect(err).NotTo(HaveOccurred())
	}
	objs, err := s.List(ctx, pkg+"/")
	Expect(err).NotTo(HaveOccurred())
	Expect(objs).NotTo(BeEmpty())
	contents, err := st.S3.Objects(ctx, bucket(st), pkg+"/")
	Expect(err).NotTo(HaveOccurred())
	now := time.Now().UTC()
	rec := quiltpkg.Record{Package: pkg, State: quiltpkg.RecordComplete, Run: recordRun, StartedAt: now, CompletedAt: &now}
	for _, o := range objs {
		rec.Files = append(rec.Files, quiltpkg.RecordFile{Key: o.Key, Size: o.Size, CRC32: crc32.ChecksumIEEE(contents[o.Key]), ETag: o.ETag})
	}
	putRecord(st, rec)
	return rec
}

// putRecord writes rec as its package's record.
func putRecord(st *emulate.Stack, rec quiltpkg.Record) {
	GinkgoHelper()
	b, err := rec.Encode()
	Expect(err).NotTo(HaveOccurred())
	putKey(st, quiltpkg.ControlKey(rec.Package, quiltpkg.RecordName), b)
}

func putKey(st *emulate.Stack, key string, body []byte) {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := st.S3.Client(ctx)
	Expect(err).NotTo(HaveOccurred())
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket(st)), Key: aws.String(key), Body: strings.NewReader(string(body))})
	Expect(err).NotTo(HaveOccurred())
}

func deleteKey(st *emulate.Stack, key string) {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := st.S3.Client(ctx)
	Expect(err).NotTo(HaveOccurred())
	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket(st)), Key: aws.String(key)})
	Expect(err).NotTo(HaveOccurred())
}

// startUpload starts a multipart upload of key and leaves it, as a killed
// export does.
func startUpload(st *emulate.Stack, key string) {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := st.S3.Client(ctx)
	Expect(err).NotTo(HaveOccurred())
	_, err = c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket(st)), Key: aws.String(key)})
	Expect(err).NotTo(HaveOccurred())
}

func pendingUploads(st *emulate.Stack) []string {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ups, err := st.S3.PendingUploads(ctx, bucket(st))
	Expect(err).NotTo(HaveOccurred())
	return ups
}

// waitRuns waits for every execution and expects the packaging runs
// started after the first n to have succeeded.
func waitRuns(st *emulate.Stack, n int) []*emulate.Execution {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	Expect(st.WaitAll(ctx)).To(Succeed())
	runs := packagingRuns(st)[n:]
	for _, ex := range runs {
		Expect(ex.Status).To(Equal("SUCCEEDED"), describeFailure(st, ex.ARN))
	}
	return runs
}

// Issue 10, deliverable 6: reconcile tells a complete package (its record
// complete, every recorded file there with its ETag) from an incomplete
// one, repairs incomplete ones, and aborts old multipart uploads below the
// prefix.
var _ = Describe("job reconcile and incomplete packages", Ordered, func() {
	var st *emulate.Stack
	var gutted, halfway, busy string
	var files map[string]quiltpkg.Record

	BeforeAll(func() {
		st = startStack(emulate.Options{})
		gutted, halfway, busy = newEntryID(), newEntryID(), newEntryID()
		files = map[string]quiltpkg.Record{}
		for _, e := range []string{gutted, halfway, busy} {
			addEntry(st, e, sandbox.EntryOptions{ModifiedAt: time.Now().Add(-48 * time.Hour)})
			packaged(st, sendEntryEvent(st, e))
			files[e] = ensureRecord(st, e)
		}
		// A file a person added through the catalog's drop zone: no export
		// wrote it, and it does not make the package incomplete.
		putKey(st, packageName(st, busy)+"/notes/added by hand.txt", []byte("kept"))
	})

	It("skips complete packages, and leaves young multipart uploads alone", func() {
		startUpload(st, packageName(st, busy)+"/Results/big.bin")
		n := len(packagingRuns(st))
		r := runJob(st, "reconcile", "--since", "720h")
		Expect(r.ExitCode).To(Equal(0), "stderr:\n%s", tail(r.Stderr, 4000))
		Expect(r.count("upToDate")).To(Equal(3), "each record is complete and every recorded file is there:\n%s", tail(r.Stderr, 4000))
		Expect(r.count("started") + r.count("restarted")).To(Equal(0))
		Expect(r.count("oldUploads")).To(Equal(0))
		Expect(packagingRuns(st)).To(HaveLen(n))
		Expect(pendingUploads(st)).To(HaveLen(1))
	})

	It("repairs a package that lost a recorded file", func() {
		var lost string
		for _, f := range files[gutted].Files {
			if strings.HasSuffix(f.Key, ".csv") {
				lost = f.Key
			}
		}
		Expect(lost).NotTo(BeEmpty(), "the export's CSV is recorded: %v", files[gutted].Files)
		deleteKey(st, lost)
		n := len(packagingRuns(st))
		r := runJob(st, "reconcile", "--since", "720h", "--start-interval", "0")
		Expect(r.ExitCode).To(Equal(0), "stderr:\n%s", tail(r.Stderr, 4000))
		Expect(r.count("stale")).To(Equal(1))
		Expect(r.count("started")+r.count("restarted")).To(Equal(1), "a SUCCEEDED execution of the version does not count as already started")
		Expect(r.Stderr).To(ContainSubstring(fmt.Sprintf(`"detail":"missing 1 file (%s)`, lost)))
		runs := waitRuns(st, n)
		Expect(runs).To(HaveLen(1))
		Expect(listKeys(st, lost)).To(Equal([]string{lost}), "the file is back")

		// Complete again: the next run starts nothing.
		ensureRecord(st, gutted)
		again := runJob(st, "reconcile", "--since", "720h")
		Expect(again.ExitCode).To(Equal(0))
		Expect(again.count("upToDate")).To(Equal(3), "stderr:\n%s", tail(again.Stderr, 4000))
	})

	It("repairs a package whose export died in progress, and leaves one in progress now", func() {
		pkg := packageName(st, halfway)
		prev := files[halfway]
		putRecord(st, quiltpkg.Record{Package: pkg, State: quiltpkg.RecordInProgress, Run: "job export (SIGKILLed)",
			StartedAt: time.Now().Add(-5 * time.Hour), Planned: []string{pkg + "/README.md"}, Previous: prev.Files})
		putRecord(st, quiltpkg.Record{Package: packageName(st, busy), State: quiltpkg.RecordInProgress, Run: "job export by hand",
			StartedAt: time.Now().Add(-time.Minute), Previous: files[busy].Files})
		n := len(packagingRuns(st))
		r := runJob(st, "reconcile", "--since", "720h", "--start-interval", "0")
		Expect(r.ExitCode).To(Equal(0), "stderr:\n%s", tail(r.Stderr, 4000))
		Expect(r.count("stale")).To(Equal(2))
		Expect(r.count("started")+r.count("restarted")).To(Equal(1), "only the dead one")
		Expect(r.count("alreadyStarted")).To(Equal(1), "the one being packaged")
		Expect(r.Stderr).To(ContainSubstring("the export died"))
		Expect(r.Stderr).To(ContainSubstring("being packaged: not started again"))
		runs := waitRuns(st, n)
		Expect(runs).To(HaveLen(1))
		Expect(runs[0].Name).To(HavePrefix(halfway + "-"))
		Expect(packageKeys(st, halfway)).To(ContainElements("README.md", "entry.json", "input.json"))
	})

	It("aborts multipart uploads below the prefix older than --abort-uploads-after, and only those", func() {
		outside := "elsewhere/" + busy + "/big.bin"
		startUpload(st, outside)
		Expect(pendingUploads(st)).To(HaveLen(2))
		r := runJob(st, "reconcile", "--abort-uploads-after", "1ms", "--dry-run")
		Expect(r.ExitCode).To(Equal(0), "stderr:\n%s", tail(r.Stderr, 4000))
		Expect(r.count("oldUploads")).To(Equal(1))
		Expect(r.count("uploadsAborted")).To(Equal(0), "a dry run only reports")
		Expect(pendingUploads(st)).To(HaveLen(2))

		r = runJob(st, "reconcile", "--abort-uploads-after", "1ms")
		Expect(r.ExitCode).To(Equal(0), "stderr:\n%s", tail(r.Stderr, 4000))
		Expect(r.count("uploadsAborted")).To(Equal(1))
		doc := expectOneEMFLine(r, "reconcile")
		Expect(fmt.Sprint(doc["UploadsAborted"])).To(Equal("1"))
		left := pendingUploads(st)
		Expect(left).To(HaveLen(1))
		Expect(left[0]).To(ContainSubstring(outside))
	})

	It("job package refuses an id that is not an entry id, with exit 3, before anything", func() {
		n, calls := len(st.Executions()), callCount(st)
		for _, id := range []string{"etr_x/../" + gutted, "etr_x/../../entries/" + gutted, gutted + "?x", gutted + "#y"} {
			r := runJob(st, "package", id)
			Expect(r.ExitCode).To(Equal(3), "%s\nstderr:\n%s", id, tail(r.Stderr, 4000))
			Expect(r.Result["error"]).To(ContainSubstring(fmt.Sprintf("%q is not an entry id", id)))
		}
		Expect(st.Executions()).To(HaveLen(n))
		Expect(callCount(st)).To(Equal(calls), "no Benchling call")
	})
})

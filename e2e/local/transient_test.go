package local_test

import (
	"net/http"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"benchling-webhook/internal/testkit/emulate"
	"benchling-webhook/internal/testkit/sandbox"
)

// verifyExits returns the exit codes of the job verify tasks of arn, in order.
func verifyExits(st *emulate.Stack, arn string) []int { return exitCodes(jobTasks(st, arn, "verify")) }

var _ = Describe("A transient verification failure (the JWKS unreachable, exit 4)", Ordered, func() {
	var st *emulate.Stack
	BeforeAll(func() { st = startStack(emulate.Options{}) })

	It("runs job verify again and then packages the entry", func() {
		entry := newEntryID()
		addEntry(st, entry, sandbox.EntryOptions{})
		// job verify tries the JWKS 4 times before it exits 4: fail exactly those.
		st.Benchling.FailNext(http.MethodGet, "/api/v1/apps/", http.StatusServiceUnavailable, 4)
		arn := sendEntryEvent(st, entry)
		packaged(st, arn)
		Expect(verifyExits(st, arn)).To(Equal([]int{4, 0}), describeFailure(st, arn))
		Expect(stateOrder(wait(st, arn))).To(ContainElements("VerifyFirstRetry", "VerifyRetryWait"))
		Expect(messagesFor(st, packageName(st, entry))).To(HaveLen(1))
	})

	It("gives up after three retries with VerificationUnavailable, having done nothing", func() {
		entry := newEntryID()
		addEntry(st, entry, sandbox.EntryOptions{})
		q := settle(st)
		st.Benchling.FailNext(http.MethodGet, "/api/v1/apps/", http.StatusServiceUnavailable, 16)
		arn := sendEntryEvent(st, entry)
		ex := wait(st, arn)
		Expect(ex.Status).To(Equal("FAILED"), describeFailure(st, arn))
		Expect(ex.Error).To(Equal("VerificationUnavailable"), describeFailure(st, arn))
		Expect(verifyExits(st, arn)).To(Equal([]int{4, 4, 4, 4}), "one run and three retries")
		Expect(ex.Cause).To(ContainSubstring("exit code 4"))
		Expect(stateOrder(ex)).To(ContainElement("VerifyNextRetry"))
		Expect(st.Children(arn)).To(BeEmpty(), "no packaging started")
		Expect(st.TaskRuns()).To(HaveLen(q.runs+4), "only the four verify tasks ran")
		Expect(listKeys(st, "")).To(Equal(q.keys), "objects in the bucket")
		Expect(st.Messages()).To(HaveLen(q.messages), "messages to the packager queue")
		jwks := strings.TrimPrefix(st.Benchling.JWKSURL(), st.Benchling.URL())
		for _, c := range callsSince(st, q.calls) {
			Expect(c.Method+" "+c.Path).To(Equal("GET "+jwks), "Benchling calls besides the JWKS")
		}
	})
})

var _ = Describe("A transient export failure (the download answering 503, exit 4)", Ordered, func() {
	var st *emulate.Stack
	BeforeAll(func() { st = startStack(emulate.Options{}) })

	It("runs job export again, then sends one message", func() {
		entry := newEntryID()
		files := addEntry(st, entry, sandbox.EntryOptions{})
		// job export tries a download request 6 times before it exits 4.
		st.Benchling.FailNext(http.MethodGet, "/download/", http.StatusServiceUnavailable, 6)
		_, p := packaged(st, sendEntryEvent(st, entry))
		Expect(exitCodes(exportTasks(st, p.ARN))).To(Equal([]int{4, 0}), describeFailure(st, p.ARN))
		Expect(stateOrder(p)).To(ContainElements("ExportFirstRetry", "ExportRetryWait"))
		Expect(packageFiles(st, entry)).To(HaveLen(len(files)+3), "the archive's files, README.md, entry.json, input.json")
		Expect(messagesFor(st, packageName(st, entry))).To(HaveLen(1))
	})
})

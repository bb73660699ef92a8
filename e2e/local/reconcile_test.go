package local_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"benchling-webhook/internal/emf/emftest"
	"benchling-webhook/internal/testkit/emulate"
	"benchling-webhook/internal/testkit/sandbox"
)

// jobRun is one run of the job binary as the schedule (or an operator)
// would start it: the worker's task environment, the given arguments.
type jobRun struct {
	ExitCode       int
	Stdout, Stderr string
	Result         map[string]any // the last stdout line
}

func runJob(st *emulate.Stack, args ...string) jobRun {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, jobBinary, args...)
	cmd.Env = st.JobEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := jobRun{Stdout: stdout.String(), Stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.ExitCode = ee.ExitCode()
	} else {
		Expect(err).NotTo(HaveOccurred())
	}
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	Expect(json.Unmarshal([]byte(lines[len(lines)-1]), &r.Result)).To(Succeed(),
		"job %v: last stdout line is not the result\nstdout:\n%s\nstderr:\n%s", args, r.Stdout, tail(r.Stderr, 4000))
	return r
}

// count reads a number from the result line.
func (r jobRun) count(name string) int {
	GinkgoHelper()
	v, ok := r.Result[name].(float64)
	Expect(ok).To(BeTrue(), "result has no %q: %v", name, r.Result)
	return int(v)
}

// deletePackage deletes every object of entry's package, as an operator
// (or a lifecycle rule) might.
func deletePackage(st *emulate.Stack, entry string) {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := st.S3.Client(ctx)
	Expect(err).NotTo(HaveOccurred())
	for _, key := range listKeys(st, packageName(st, entry)+"/") {
		_, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket(st)), Key: aws.String(key)})
		Expect(err).NotTo(HaveOccurred())
	}
	Expect(packageKeys(st, entry)).To(BeEmpty())
}

// packagingRuns returns the packaging executions that no webhook started
// (reconcile's and job package's), by start order.
func packagingRuns(st *emulate.Stack) []*emulate.Execution {
	var out []*emulate.Execution
	for _, ex := range st.Executions() {
		if ex.Machine == emulate.Packaging && ex.Parent == "" {
			out = append(out, ex)
		}
	}
	return out
}

// expectOneEMFLine expects exactly one valid EMF line for command on stderr.
func expectOneEMFLine(r jobRun, command string) map[string]any {
	GinkgoHelper()
	lines := emftest.Lines([]byte(r.Stderr))
	Expect(lines).To(HaveLen(1), "EMF lines on stderr:\n%s", tail(r.Stderr, 4000))
	doc, err := emftest.Check(lines[0])
	Expect(err).NotTo(HaveOccurred(), "%s", lines[0])
	Expect(doc["Command"]).To(Equal(command))
	return doc
}

var _ = Describe("The default command (job reconcile) and job package", Ordered, func() {
	var st *emulate.Stack
	var missed, current, changed string

	BeforeAll(func() {
		// A short rate-limit window, so the 429 spec's x-rate-limit-reset is small.
		st = startStack(emulate.Options{Sandbox: sandbox.Options{RateWindow: 2 * time.Second}})
		missed, current, changed = newEntryID(), newEntryID(), newEntryID()
		past := time.Now().Add(-48 * time.Hour)
		for _, e := range []string{missed, current, changed} {
			addEntry(st, e, sandbox.EntryOptions{ModifiedAt: past})
		}
		// current and changed were packaged by webhooks; missed never was.
		for _, e := range []string{current, changed} {
			packaged(st, sendEntryEvent(st, e))
			ensureRecord(st, e) // reconcile10_test.go: a no-op once job export writes records
		}
		// changed is edited afterwards, and its webhook is lost.
		addEntry(st, changed, sandbox.EntryOptions{ModifiedAt: time.Now().Add(-time.Hour)})
	})

	It("packages what the webhooks missed, skips what is up to date, and writes one EMF line", func() {
		before := len(st.Messages())
		r := runJob(st, "reconcile")
		Expect(r.ExitCode).To(Equal(0), "stderr:\n%s", tail(r.Stderr, 4000))
		Expect(r.count("entriesSeen")).To(Equal(3))
		Expect(r.count("stale")).To(Equal(2), "missed (no package) and changed (older entry.json)")
		Expect(r.count("started")).To(Equal(2))
		Expect(r.count("skipped")).To(Equal(1), "current is up to date")
		Expect(r.count("failed")).To(Equal(0))

		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		Expect(st.WaitAll(ctx)).To(Succeed())
		runs := packagingRuns(st)
		Expect(runs).To(HaveLen(2))
		var entities []string
		for _, ex := range runs {
			Expect(ex.Status).To(Equal("SUCCEEDED"), describeFailure(st, ex.ARN))
			var in struct{ Entity string }
			Expect(json.Unmarshal(ex.Input, &in)).To(Succeed())
			entities = append(entities, in.Entity)
			Expect(ex.Name).To(HavePrefix(in.Entity+"-"), "named from the entry id and its modifiedAt")
		}
		Expect(entities).To(ConsistOf(missed, changed))
		ensureRecord(st, missed)
		ensureRecord(st, changed)
		Expect(packageKeys(st, missed)).To(ContainElements("README.md", "entry.json", "input.json"))
		Expect(st.Messages()).To(HaveLen(before + 2))

		doc := expectOneEMFLine(r, "reconcile")
		Expect(fmt.Sprint(doc["StaleFound"])).To(Equal("2"))
		Expect(fmt.Sprint(doc["Started"])).To(Equal("2"))
		Expect(fmt.Sprint(doc["Failures"])).To(Equal("0"))
	})

	It("starts nothing when run again", func() {
		n := len(st.Executions())
		r := runJob(st, "reconcile")
		Expect(r.ExitCode).To(Equal(0), "stderr:\n%s", tail(r.Stderr, 4000))
		Expect(r.Result["sinceFrom"]).To(Equal("state"), "the window starts at the recorded last success")
		Expect(r.count("entriesSeen")).To(Equal(0), "nothing was modified since")
		Expect(r.count("started")).To(Equal(0))
		Expect(st.Executions()).To(HaveLen(n))
	})

	It("does not start the same version twice, even over a window that sees it again", func() {
		n := len(st.Executions())
		r := runJob(st, "reconcile", "--since", "720h", "--dry-run")
		Expect(r.ExitCode).To(Equal(0))
		Expect(r.count("started")).To(Equal(0), "a dry run starts nothing")
		r = runJob(st, "reconcile", "--since", "720h")
		Expect(r.ExitCode).To(Equal(0), "stderr:\n%s", tail(r.Stderr, 4000))
		Expect(r.count("entriesSeen")).To(Equal(3))
		Expect(r.count("upToDate")).To(Equal(3), "every package is current now")
		Expect(r.count("started")).To(Equal(0))
		Expect(st.Executions()).To(HaveLen(n))
	})

	It("packages a version again when its package, made by reconcile itself, was deleted", func() {
		deletePackage(st, missed)
		r := runJob(st, "reconcile", "--since", "720h", "--start-interval", "0")
		Expect(r.ExitCode).To(Equal(0), "stderr:\n%s", tail(r.Stderr, 4000))
		Expect(r.count("restarted")).To(Equal(1), "the version's name is taken by the earlier, succeeded execution")
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		Expect(st.WaitAll(ctx)).To(Succeed())
		runs := packagingRuns(st)
		last := runs[len(runs)-1]
		Expect(last.Name).To(HaveSuffix("-r1"))
		Expect(last.Status).To(Equal("SUCCEEDED"), describeFailure(st, last.ARN))
		Expect(packageKeys(st, missed)).To(ContainElements("README.md", "entry.json", "input.json"))
		ensureRecord(st, missed)
	})

	It("brings a deleted package back, and honours Benchling's 429 on the way", func() {
		deletePackage(st, current)
		st.Benchling.FailNext(http.MethodGet, "/api/v2/entries", http.StatusTooManyRequests, 1)
		calls := callCount(st)
		r := runJob(st, "reconcile", "--since", "720h", "--page-size", "2")
		Expect(r.ExitCode).To(Equal(0), "stderr:\n%s", tail(r.Stderr, 4000))
		Expect(r.count("started")).To(Equal(1))
		Expect(r.count("entriesSeen")).To(Equal(3), "over two pages of two")

		var lists []int
		for _, c := range callsSince(st, calls) {
			if c.Method == http.MethodGet && c.Path == "/api/v2/entries" {
				lists = append(lists, c.Status)
			}
		}
		Expect(lists).To(Equal([]int{http.StatusTooManyRequests, http.StatusOK, http.StatusOK}),
			"the 429, then the first page again, then the second page")

		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		Expect(st.WaitAll(ctx)).To(Succeed())
		Expect(packageKeys(st, current)).To(ContainElements("README.md", "entry.json", "input.json"))
	})

	It("job package starts packaging for named entries and waits for the outcome", func() {
		other := newEntryID()
		addEntry(st, other, sandbox.EntryOptions{})
		r := runJob(st, "package", "--wait", "--poll-interval", "200ms", other)
		Expect(r.ExitCode).To(Equal(0), "stdout:\n%s\nstderr:\n%s", r.Stdout, tail(r.Stderr, 4000))
		Expect(r.Stdout).To(ContainSubstring("arn:aws:states:"))
		Expect(r.Stdout).To(ContainSubstring("SUCCEEDED"))
		Expect(packageKeys(st, other)).To(ContainElements("README.md", "entry.json", "input.json"))

		again := runJob(st, "package", other)
		Expect(again.ExitCode).To(Equal(0))
		Expect(again.Stdout).To(ContainSubstring("already started"), "the same entry version is not packaged twice")

		unknown := runJob(st, "package", "etr_doesnotexist")
		Expect(unknown.ExitCode).To(Equal(3), "an entry Benchling does not know")
	})
})

// Issue 5's "done when", literally: on the local stack, deleting a package
// and running the default command brings it back, and running it again
// starts nothing.
var _ = Describe("The default command after a package was deleted", Ordered, func() {
	It("brings it back, then starts nothing on the next run", func() {
		st := startStack(emulate.Options{})
		entry := newEntryID()
		addEntry(st, entry, sandbox.EntryOptions{ModifiedAt: time.Now().Add(-2 * time.Hour)})
		packaged(st, sendEntryEvent(st, entry))
		want := packageKeys(st, entry)
		deletePackage(st, entry)

		r := runJob(st, "reconcile")
		Expect(r.ExitCode).To(Equal(0), "stderr:\n%s", tail(r.Stderr, 4000))
		Expect(r.count("started")).To(Equal(1))
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		Expect(st.WaitAll(ctx)).To(Succeed())
		Expect(packageKeys(st, entry)).To(Equal(want), "the same files as the webhook's package")

		n := len(st.Executions())
		again := runJob(st, "reconcile")
		Expect(again.ExitCode).To(Equal(0))
		Expect(again.count("started")).To(Equal(0))
		Expect(st.Executions()).To(HaveLen(n))
	})
})

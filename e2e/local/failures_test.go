package local_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"benchling-webhook/internal/testkit/emulate"
	"benchling-webhook/internal/testkit/sandbox"
	"benchling-webhook/internal/testkit/zipcorpus"
)

// metadataOnly is what a failed first export leaves in the package:
// nothing. The packaging machine stages entry.json and input.json in the
// package's control folder, and job export copies them in only as part of
// a complete export (docs/export.md, "Package integrity").
var metadataOnly = []string{}

// sendEntryEvent sends an entry event for entry and returns the webhook
// execution's ARN.
func sendEntryEvent(st *emulate.Stack, entry string) string {
	GinkgoHelper()
	return send(st, "/event", entryEvent(entry)).Response.ExecutionArn
}

// expectNoMessage expects no packager message for entry's package.
func expectNoMessage(st *emulate.Stack, entry string) {
	GinkgoHelper()
	Expect(messagesFor(st, packageName(st, entry))).To(BeEmpty(), "messages to the packager queue")
}

// exportTasks returns the job export tasks the execution ran.
func exportTasks(st *emulate.Stack, arn string) []emulate.TaskRun { return jobTasks(st, arn, "export") }

// jobTasks returns the tasks of the execution arn that ran job <command>.
func jobTasks(st *emulate.Stack, arn, command string) []emulate.TaskRun {
	var out []emulate.TaskRun
	for _, t := range tasksOf(st, arn) {
		if len(t.Command) > 0 && t.Command[0] == command {
			out = append(out, t)
		}
	}
	return out
}

// exitCodes returns the tasks' exit codes, in order.
func exitCodes(tasks []emulate.TaskRun) []int {
	var out []int
	for _, t := range tasks {
		out = append(out, t.ExitCode)
	}
	return out
}

// stateOutput returns the output of the named state's last exit.
func stateOutput(ex *emulate.Execution, name string) map[string]any {
	GinkgoHelper()
	var out map[string]any
	for _, raw := range ex.Events {
		var e struct {
			Type  string `json:"type"`
			State struct {
				Name   string         `json:"name"`
				Output map[string]any `json:"output"`
			} `json:"state"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Type == "StateExited" && e.State.Name == name {
			out = e.State.Output
		}
	}
	Expect(out).NotTo(BeNil(), "no exit of state %s in %v", name, stateOrder(ex))
	return out
}

// expectExportRejected expects the packaging execution p to have failed
// with ExportRejected after one job export task exited 3, with the task's
// ARN and exit code in the Cause and the history, and no archive file in S3.
func expectExportRejected(st *emulate.Stack, p *emulate.Execution, entry string) {
	GinkgoHelper()
	tasks := exportTasks(st, p.ARN)
	Expect(tasks).To(HaveLen(1), "exit 3 is not retried\n%s", describeFailure(st, p.ARN))
	Expect(tasks[0].ExitCode).To(Equal(3), describeFailure(st, p.ARN))
	Expect(p.Cause).To(ContainSubstring(tasks[0].TaskArn), "the Cause names the task")
	Expect(p.Cause).To(ContainSubstring("exit 3"))
	failure := stateOutput(p, "ExportRejectedMessage")["failure"].(map[string]any)
	task := failure["task"].(map[string]any)
	Expect(task["TaskArn"]).To(Equal(tasks[0].TaskArn))
	Expect(task["Containers"]).To(ContainElement(HaveKeyWithValue("ExitCode", BeNumerically("==", 3))))
	Expect(packageKeys(st, entry)).To(ConsistOf(metadataOnly), "no archive file, no README\n%s", describeFailure(st, p.ARN))
	expectNoMessage(st, entry)
}

var _ = Describe("Packaging failures", func() {
	It("fails with ExportFailed when Benchling's export task fails", func() {
		entry := newEntryID()
		addEntry(shared, entry, sandbox.EntryOptions{Export: sandbox.ExportSpec{Fail: true}})
		p := failedPackaging(shared, sendEntryEvent(shared, entry), "ExportFailed")
		Expect(p.Cause).To(ContainSubstring("FAILED (job export exit 6, not retried)"))
		tasks := exportTasks(shared, p.ARN)
		Expect(tasks).To(HaveLen(1), "exit 6 is not retried")
		Expect(tasks[0].ExitCode).To(Equal(6))
		Expect(p.Cause).To(ContainSubstring(tasks[0].TaskArn))
		Expect(tasks[0].Stderr).To(ContainSubstring("the sandbox was told to fail it"), "Benchling's message in the task log")
		Expect(packageKeys(shared, entry)).To(ConsistOf(metadataOnly))
		expectNoMessage(shared, entry)
	})

	Describe("when the export never finishes", Ordered, func() {
		var st *emulate.Stack
		BeforeAll(func() {
			st = startStack(emulate.Options{ExportTimeoutSeconds: 3, ExportFirstPollSeconds: 1, ExportMaxPollSeconds: 1})
		})

		It("fails with ExportTimeout after ExportTimeoutSeconds of polling", func() {
			entry := newEntryID()
			addEntry(st, entry, sandbox.EntryOptions{Export: sandbox.ExportSpec{Never: true}})
			p := failedPackaging(st, sendEntryEvent(st, entry), "ExportTimeout")
			Expect(p.Cause).To(ContainSubstring("still RUNNING after 3 seconds (job export exit 7, not retried)"))
			tasks := exportTasks(st, p.ARN)
			Expect(tasks).NotTo(BeEmpty())
			Expect(taskPolls(st, tasks[0].Environment["EXPORT_TASK_ID"])).To(Equal(4), "job export polls at once, then once a second (first and longest wait 1 s) until ExportTimeoutSeconds")
			Expect(tasks).To(HaveLen(1), "exit 7 is not retried")
			Expect(tasks[0].ExitCode).To(Equal(7))
			Expect(packageKeys(st, entry)).To(ConsistOf(metadataOnly))
			expectNoMessage(st, entry)
		})
	})

	It("retries Benchling's 429 and succeeds", func() {
		entry := newEntryID()
		addEntry(shared, entry, sandbox.EntryOptions{})
		shared.Benchling.FailNext(http.MethodGet, "/api/v2/entries/"+entry, http.StatusTooManyRequests, 2)
		packaged(shared, sendEntryEvent(shared, entry))
		Expect(statuses(callsTo(shared, http.MethodGet, "/api/v2/entries/"+entry))).To(
			Equal([]int{http.StatusTooManyRequests, http.StatusTooManyRequests, http.StatusOK}))
		Expect(packageKeys(shared, entry)).To(ContainElements("README.md", "entry.json", "input.json"))
		Expect(messagesFor(shared, packageName(shared, entry))).To(HaveLen(1))
	})

	It("fails with BenchlingRequestFailed when 5xx outlasts the retry budget", func() {
		entry := newEntryID()
		addEntry(shared, entry, sandbox.EntryOptions{})
		// Scoped to this entry's path: the faults left over cannot reach other specs.
		shared.Benchling.FailNext(http.MethodGet, "/api/v2/entries/"+entry, http.StatusInternalServerError, 20)
		p := failedPackaging(shared, sendEntryEvent(shared, entry), "BenchlingRequestFailed")
		got := statuses(callsTo(shared, http.MethodGet, "/api/v2/entries/"+entry))
		Expect(got).To(HaveLen(7), "the first try and GetEntry's 6 retries")
		Expect(slices.Compact(got)).To(Equal([]int{http.StatusInternalServerError}))
		Expect(p.Cause).To(ContainSubstring("500"))
		Expect(packageKeys(shared, entry)).To(BeEmpty())
		expectNoMessage(shared, entry)
	})

	It("fetches a new token when Benchling expires the old one mid-run", func() {
		entry := newEntryID()
		addEntry(shared, entry, sandbox.EntryOptions{Export: sandbox.ExportSpec{Delay: 2500 * time.Millisecond}})
		start := callCount(shared)
		arn := sendEntryEvent(shared, entry)
		// Wait until job export has polled the export task (it polls while
		// Benchling exports), then expire every token: its next poll is refused.
		Eventually(func() []sandbox.Call {
			return slices.DeleteFunc(callsSince(shared, start), func(c sandbox.Call) bool {
				return c.Method != http.MethodGet || !strings.HasPrefix(c.Path, "/api/v2/tasks/")
			})
		}, "30s", "10ms").ShouldNot(BeEmpty())
		tokens, before := shared.Benchling.Tokens(), callCount(shared)
		shared.Benchling.ExpireTokens()
		packaged(shared, arn)
		Expect(shared.Benchling.Tokens()).To(BeNumerically(">", tokens), "tokens issued")
		var unauthorized int
		for _, c := range callsSince(shared, before) {
			if c.Status == http.StatusUnauthorized {
				unauthorized++
			}
		}
		Expect(unauthorized).To(BeNumerically(">=", 1), "a call was refused with the expired token")
		Expect(packageKeys(shared, entry)).To(ContainElement("README.md"))
		Expect(messagesFor(shared, packageName(shared, entry))).To(HaveLen(1))
	})

	It("fails with ExportRejected when the download link has expired", func() {
		entry := newEntryID()
		addEntry(shared, entry, sandbox.EntryOptions{})
		shared.Benchling.ExpireDownloads(true)
		DeferCleanup(shared.Benchling.ExpireDownloads, false)
		p := failedPackaging(shared, sendEntryEvent(shared, entry), "ExportRejected")
		expectExportRejected(shared, p, entry)
	})

	DescribeTable("fails with ExportRejected on a hostile archive, leaving no archive file",
		func(name string) {
			i := slices.IndexFunc(zipcorpus.Cases(), func(c zipcorpus.Case) bool { return c.Name == name })
			Expect(i).To(BeNumerically(">=", 0), "zipcorpus case %s", name)
			c := zipcorpus.Cases()[i]
			Expect(c.Want).NotTo(BeEmpty())
			entry := newEntryID()
			shared.Benchling.AddEntry(entry, sandbox.EntryOptions{Export: sandbox.ExportSpec{Zip: c.Build()}})
			p := failedPackaging(shared, sendEntryEvent(shared, entry), "ExportRejected")
			expectExportRejected(shared, p, entry)
			Expect(listKeys(shared, "")).NotTo(ContainElement(HaveSuffix("/x")), "nothing escaped the package prefix")
		},
		Entry("a ../ path (path traversal)", "dotdot-escape"),
		Entry("a CRC mismatch after a good file", "crc-mismatch"),
		Entry("an overlapping zip bomb", "zip-bomb-overlap"),
	)

	It("fails with EntryNotFound for an entry Benchling does not know", func() {
		entry := newEntryID()
		p := failedPackaging(shared, sendEntryEvent(shared, entry), "EntryNotFound")
		Expect(statuses(callsTo(shared, http.MethodGet, "/api/v2/entries/"+entry))).To(Equal([]int{http.StatusNotFound}))
		Expect(callsTo(shared, http.MethodPost, "/api/v2/exports")).NotTo(ContainElement(
			WithTransform(func(c sandbox.Call) string { return string(c.Body) }, ContainSubstring(entry))))
		Expect(packageKeys(shared, entry)).To(BeEmpty())
		expectNoMessage(shared, entry)
		Expect(p.Cause).To(ContainSubstring(fmt.Sprint(http.StatusNotFound)))
	})
})

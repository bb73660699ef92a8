package local_test

import (
	"net/url"
	"strconv"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"benchling-webhook/internal/testkit/emulate"
	"benchling-webhook/internal/testkit/sandbox"
)

// historyRecord is one piece of what a package's executions leave behind,
// named for a failure message.
type historyRecord struct {
	where, text string
}

// packageHistory is everything the executions of arns record, as Step
// Functions' history and logs would hold it: each execution's input,
// output, error and cause; every state's input and output (the engine's
// events); every task's parameters (the ECS overrides among them), raw
// result and error (emulate.TaskEvents); and the job's environment
// overrides, command and logs.
func packageHistory(st *emulate.Stack, arns ...string) []historyRecord {
	var out []historyRecord
	mine := map[string]bool{}
	for _, arn := range arns {
		mine[arn] = true
		ex := st.Execution(arn)
		Expect(ex).NotTo(BeNil(), arn)
		out = append(out, historyRecord{arn + " input", string(ex.Input)}, historyRecord{arn + " output", string(ex.Output)},
			historyRecord{arn + " error", ex.Error + " " + ex.Cause})
		for i, e := range ex.Events {
			out = append(out, historyRecord{arn + " event " + strconv.Itoa(i), string(e)})
		}
	}
	for _, ev := range st.TaskEvents() {
		if !mine[ev.Execution] {
			continue
		}
		out = append(out, historyRecord{ev.State + " parameters", string(ev.Parameters)},
			historyRecord{ev.State + " result", string(ev.Output)}, historyRecord{ev.State + " error", ev.Error + " " + ev.Cause})
	}
	for _, t := range st.TaskRuns() {
		if !mine[t.Execution] {
			continue
		}
		var env []string
		for k, v := range t.Environment {
			env = append(env, k+"="+v)
		}
		out = append(out, historyRecord{t.State + " overrides", strings.Join(env, "\n")},
			historyRecord{t.State + " command", strings.Join(t.Command, " ")},
			historyRecord{t.State + " stdout", t.Stdout}, historyRecord{t.State + " stderr", t.Stderr})
	}
	return out
}

// capabilities are the strings that would give a reader of the history
// the export: each link the sandbox issued, its signature and credential,
// and the names of S3's presigning parameters.
func capabilities(st *emulate.Stack) []string {
	needles := []string{"X-Amz-Signature", "X-Amz-Credential", "downloadURL"}
	for _, raw := range st.Benchling.DownloadURLs() {
		u, err := url.Parse(raw)
		Expect(err).NotTo(HaveOccurred())
		needles = append(needles, raw, u.Query().Get("X-Amz-Signature"), u.Query().Get("X-Amz-Credential"))
	}
	return needles
}

// expectNoCapability fails when a capability is anywhere in the package's
// history: job export polls the export task itself, so no state's input,
// output or task result (Step Functions records a task's raw answer before
// ResultSelector) ever held the link (docs/architecture.md, "No capability
// in the history").
func expectNoCapability(st *emulate.Stack, arns ...string) {
	GinkgoHelper()
	needles := capabilities(st)
	Expect(len(needles)).To(BeNumerically(">", 3), "the sandbox issued no link: nothing was looked for")
	for _, r := range packageHistory(st, arns...) {
		for _, n := range needles {
			if n != "" && strings.Contains(r.text, n) {
				Fail("a download capability (" + n + ") is in " + r.where + ":\n" + tail(r.text, 2000))
			}
		}
	}
}

var _ = Describe("No capability in the history", Ordered, func() {
	var st *emulate.Stack
	BeforeAll(func() {
		st = startStack(emulate.Options{})
	})

	It("keeps the download link out of a packaging execution's history, overrides and logs", func() {
		entry := newEntryID()
		files := addEntry(st, entry, sandbox.EntryOptions{})
		arn := sendEntryEvent(st, entry)
		_, p := packaged(st, arn)
		Expect(packageFiles(st, entry)).To(HaveLen(len(files) + 3))
		runs := tasksOf(st, p.ARN)
		Expect(runs).NotTo(BeEmpty())
		for _, t := range runs {
			if t.State == "RunExport" {
				Expect(t.Environment).To(HaveKey("EXPORT_TASK_ID"))
				Expect(t.Environment).To(HaveKeyWithValue("EXPORT_WAIT", "60s"), "the stack's ExportTimeoutSeconds")
				Expect(t.Environment).NotTo(HaveKey("DOWNLOAD_URL"))
			}
		}
		for _, ev := range st.TaskEvents() {
			if ev.Execution == p.ARN {
				Expect(string(ev.Parameters)).NotTo(ContainSubstring("/api/v2/tasks/"), "the machine does not poll the export: %s does", ev.State)
			}
		}
		expectNoCapability(st, arn, p.ARN)
	})

	It("asks Benchling for a new link when the one it was given has expired", func() {
		entry := newEntryID()
		files := addEntry(st, entry, sandbox.EntryOptions{})
		before := len(st.Benchling.DownloadURLs())
		st.Benchling.ExpireNextDownloads(1)
		arn := sendEntryEvent(st, entry)
		_, p := packaged(st, arn)
		Expect(packageFiles(st, entry)).To(HaveLen(len(files) + 3))
		Expect(len(st.Benchling.DownloadURLs())).To(Equal(before+2), "the expired link, then the one job export asked for")
		Expect(exportTasks(st, p.ARN)).To(HaveLen(1), "renewed within the one task, not by a retry")
		expectNoCapability(st, arn, p.ARN)
	})
})

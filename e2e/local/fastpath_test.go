package local_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"benchling-webhook/internal/testkit/emulate"
	"benchling-webhook/internal/testkit/sandbox"
)

// exportWait is how long job export waited for Benchling's export in the
// task t: the waitedSeconds of its "export finished" log line, 0 if none.
func exportWait(t emulate.TaskRun) time.Duration {
	for _, line := range strings.Split(t.Stderr, "\n") {
		var l struct {
			Msg    string  `json:"msg"`
			Waited float64 `json:"waitedSeconds"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && strings.HasPrefix(l.Msg, "export finished") {
			return time.Duration(l.Waited * float64(time.Second))
		}
	}
	return 0
}

// taskPolls counts Benchling's answers to GET /api/v2/tasks/{id}.
func taskPolls(st *emulate.Stack, id string) int {
	n := 0
	for _, c := range st.Benchling.Calls() {
		if c.Method == "GET" && c.Path == "/api/v2/tasks/"+id {
			n++
		}
	}
	return n
}

// transitions counts what Step Functions bills as state transitions: each
// state entered, and each retry of one.
func transitions(ex *emulate.Execution) int {
	n := 0
	for _, raw := range ex.Events {
		var e struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(raw, &e) == nil && (e.Type == "StateEntered" || e.Type == "StateRetried") {
			n++
		}
	}
	return n
}

// The poll's schedule itself (at once, then the first wait doubling to the
// longest) is unit-tested with the Benchling sandbox (internal/benchling,
// TestWaitExportBackoffAndBound); here the deployed machine and job together.
var _ = Describe("The export poll's backoff", Ordered, func() {
	var st *emulate.Stack
	BeforeAll(func() {
		st = startStack(emulate.Options{ExportFirstPollSeconds: 1, ExportMaxPollSeconds: 2, ExportTimeoutSeconds: 6})
	})

	It("polls in job export at once, then after 1, 2, 2 s, and still stops at ExportTimeoutSeconds", func() {
		entry := newEntryID()
		addEntry(st, entry, sandbox.EntryOptions{Export: sandbox.ExportSpec{Never: true}})
		p := failedPackaging(st, sendEntryEvent(st, entry), "ExportTimeout")
		tasks := exportTasks(st, p.ARN)
		Expect(tasks).To(HaveLen(1))
		Expect(tasks[0].Environment).To(HaveKeyWithValue("EXPORT_POLL_FIRST", "1s"))
		Expect(tasks[0].Environment).To(HaveKeyWithValue("EXPORT_POLL_MAX", "2s"))
		// Polls at 0, 1, 3, 5 and, the last wait cut short, 6 s.
		Expect(taskPolls(st, tasks[0].Environment["EXPORT_TASK_ID"])).To(Equal(5))
		Expect(p.Cause).To(ContainSubstring("after 6 seconds"))
		Expect(tasks[0].Stderr).To(ContainSubstring("still RUNNING after 6s (5 polls)"))
	})

	It("polls no more than it needs once the export is done", func() {
		entry := newEntryID()
		addEntry(st, entry, sandbox.EntryOptions{Export: sandbox.ExportSpec{Delay: -1}})
		_, p := packaged(st, sendEntryEvent(st, entry))
		tasks := exportTasks(st, p.ARN)
		Expect(tasks).To(HaveLen(1))
		Expect(taskPolls(st, tasks[0].Environment["EXPORT_TASK_ID"])).To(Equal(1), "the first poll finds it done")
	})
})

// envSeconds reads a duration in seconds from the environment.
func envSeconds(name string, def float64) time.Duration {
	v, err := strconv.ParseFloat(os.Getenv(name), 64)
	if err != nil {
		v = def
	}
	return time.Duration(v * float64(time.Second))
}

// latencyRun is one webhook's path to its Quilt message.
type latencyRun struct {
	total, verify, export, polls time.Duration // polls: job export's wait for Benchling
	transitions                  [2]int        // webhook, packaging
}

// measureOne posts a webhook for a new entry and times it until the hub
// has the packaging execution's SQS message (SendToQuilt's answer).
func measureOne(st *emulate.Stack) latencyRun {
	GinkgoHelper()
	entry := newEntryID()
	addEntry(st, entry, sandbox.EntryOptions{})
	body := st.Webhook(entryEvent(entry))
	start := time.Now()
	resp, err := st.Send(context.Background(), "/event", body)
	Expect(err).NotTo(HaveOccurred())
	w, p := packagedWithin(st, resp.ExecutionArn, 10*time.Minute)
	var sent time.Time
	for _, ev := range st.TaskEvents() {
		if ev.Execution == p.ARN && ev.State == "SendToQuilt" && ev.Error == "" {
			sent = ev.At
		}
	}
	Expect(sent).NotTo(BeZero(), "no SendToQuilt answer")
	r := latencyRun{total: sent.Sub(start), transitions: [2]int{transitions(w), transitions(p)}}
	for _, t := range append(tasksOf(st, w.ARN), tasksOf(st, p.ARN)...) {
		switch t.State {
		case "Verify":
			r.verify += t.Duration
		case "RunExport":
			r.export += t.Duration
		}
	}
	for _, t := range exportTasks(st, p.ARN) {
		r.polls += exportWait(t)
	}
	return r
}

// packagedWithin waits up to limit for the webhook execution arn and its
// one packaging execution, and expects both to succeed.
func packagedWithin(st *emulate.Stack, arn string, limit time.Duration) (*emulate.Execution, *emulate.Execution) {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	w, err := st.Wait(ctx, arn)
	Expect(err).NotTo(HaveOccurred(), describeFailure(st, arn))
	Expect(w.Status).To(Equal("SUCCEEDED"), describeFailure(st, arn))
	children := st.Children(arn)
	Expect(children).To(HaveLen(1), describeFailure(st, arn))
	p, err := st.Wait(ctx, children[0].ARN)
	Expect(err).NotTo(HaveOccurred(), describeFailure(st, children[0].ARN))
	Expect(p.Status).To(Equal("SUCCEEDED"), describeFailure(st, p.ARN))
	return w, p
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// The latency of the fast path, webhook POST to the Quilt message, on the
// local stack with the deployed poll settings, real waits and a task start
// delay. Run with BW_MEASURE=1 (docs/performance.md, "Webhook to Quilt
// message"); BW_MEASURE_TASK_START (seconds, default 30),
// BW_MEASURE_EXPORT_DELAY (Benchling's export time, default 3) and
// BW_MEASURE_RUNS (default 3) tune it, and BW_MEASURE_FIRST_POLL and
// BW_MEASURE_MAX_POLL (default 2 and 30) the poll (30 and 30: the old fixed
// 30 s wait).
var _ = Describe("Webhook to Quilt message (BW_MEASURE=1)", Ordered, func() {
	BeforeAll(func() {
		if os.Getenv("BW_MEASURE") != "1" {
			Skip("a measurement, minutes long: set BW_MEASURE=1")
		}
	})

	exportDelay := envSeconds("BW_MEASURE_EXPORT_DELAY", 3)
	runs, err := strconv.Atoi(os.Getenv("BW_MEASURE_RUNS"))
	if err != nil || runs < 1 {
		runs = 3
	}
	for _, startDelay := range []time.Duration{0, envSeconds("BW_MEASURE_TASK_START", 30)} {
		It(fmt.Sprintf("measures with a task start delay of %s", startDelay), func(SpecContext) {
			first, longest := int(envSeconds("BW_MEASURE_FIRST_POLL", 2).Seconds()), int(envSeconds("BW_MEASURE_MAX_POLL", 30).Seconds())
			st := startStack(emulate.Options{WaitMs: -1, TaskStartDelay: startDelay,
				ExportFirstPollSeconds: first, ExportMaxPollSeconds: longest, ExportTimeoutSeconds: 1800,
				Sandbox: sandbox.Options{ExportDelay: exportDelay}})
			measureOne(st) // warm-up: the engine validates each definition once
			var totals, overheads, verifies, exports, polls []time.Duration
			var trans [2]int
			for range runs {
				r := measureOne(st)
				totals = append(totals, r.total)
				// Ours: everything but the verify task's start and the longer of
				// the export task's start and Benchling's export, which overlap.
				overheads = append(overheads, r.total-startDelay-max(startDelay, exportDelay))
				verifies, exports, polls = append(verifies, r.verify), append(exports, r.export), append(polls, r.polls)
				trans = r.transitions
			}
			var b strings.Builder
			fmt.Fprintf(&b, "\npolls: first %d s, longest %d s\n", first, longest)
			fmt.Fprintf(&b, "\n| task start | Benchling export | runs | webhook → Quilt message (median) | of which ours | verify task | export task | export wait (in the export task) | transitions (webhook + packaging) |\n")
			fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|\n")
			fmt.Fprintf(&b, "| %s | %s | %d | %.1f s | %.1f s | %.2f s | %.2f s | %.1f s | %d + %d = %d |\n",
				startDelay, exportDelay, runs, median(totals).Seconds(), median(overheads).Seconds(),
				median(verifies).Seconds(), median(exports).Seconds(), median(polls).Seconds(), trans[0], trans[1], trans[0]+trans[1])
			AddReportEntry("latency", b.String())
			GinkgoWriter.Print(b.String())
			fmt.Fprint(os.Stderr, b.String())
			Expect(median(totals)).To(BeNumerically(">=", startDelay+max(startDelay, exportDelay)), "the verify task's start, then the export task's start or the export, at least")
			if first == 2 && longest == 30 { // the deployed defaults: the goal
				Expect(median(overheads)).To(BeNumerically("<", 5*time.Second), "our own steps' overhead")
			}
		}, NodeTimeout(15*time.Minute))
	}
})

package local_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"benchling-webhook/internal/quiltpkg"
	"benchling-webhook/internal/testkit/emulate"
	"benchling-webhook/internal/testkit/sandbox"
)

// One run per entry (docs/architecture.md, "One run per entry"): the
// packaging lease in S3, coalesced bursts, and holders that die.

// leaseKey and pendingKey are the entry's control objects.
func leaseKey(st *emulate.Stack, entry string) string {
	return quiltpkg.ControlKey(packageName(st, entry), quiltpkg.LeaseName)
}

func pendingKey(st *emulate.Stack, entry string) string {
	return quiltpkg.ControlKey(packageName(st, entry), quiltpkg.PendingName)
}

// object reads one object, or returns nil when it does not exist.
func object(st *emulate.Stack, key string) []byte {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	objs, err := st.S3.Objects(ctx, bucket(st), key)
	Expect(err).NotTo(HaveOccurred())
	return objs[key]
}

// leaseHolder is the holder named by the entry's lease, "" without one.
func leaseHolder(st *emulate.Stack, entry string) string {
	GinkgoHelper()
	b := object(st, leaseKey(st, entry))
	if b == nil {
		return ""
	}
	var l struct{ Holder string }
	Expect(json.Unmarshal(b, &l)).To(Succeed(), "lease %s", b)
	return l.Holder
}

// packagingInput is the packaging machine's input for entry, as job
// reconcile and job package build it.
func packagingInput(st *emulate.Stack, entry string) json.RawMessage {
	GinkgoHelper()
	at := time.Now().UTC().Format(time.RFC3339Nano)
	b, err := json.Marshal(map[string]any{
		"entity": entry, "packageName": packageName(st, entry), "registry": bucket(st),
		"baseURL": st.Benchling.URL(), "eventTime": at,
		"message": map[string]any{"type": "v2.entry.updated.fields", "resourceId": entry, "modifiedAt": at},
	})
	Expect(err).NotTo(HaveOccurred())
	return b
}

// startPackaging starts a packaging execution for entry directly.
func startPackaging(st *emulate.Stack, entry string) string {
	GinkgoHelper()
	arn, err := st.StartExecution(context.Background(), emulate.Packaging, "", packagingInput(st, entry))
	Expect(err).NotTo(HaveOccurred())
	return arn
}

// exportRuns returns the RunExport tasks that wrote entry's package, in
// start order.
func exportRuns(st *emulate.Stack, entry string) []emulate.TaskRun {
	var out []emulate.TaskRun
	for _, t := range st.TaskRuns() {
		if t.State == "RunExport" && t.Environment["PACKAGE_NAME"] == packageName(st, entry) {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StartedAt.Before(out[j].StartedAt) })
	return out
}

// exportRequests counts the export requests for entry at the sandbox.
func exportRequests(st *emulate.Stack, entry string) int {
	n := 0
	for _, c := range callsTo(st, "POST", "/api/v2/exports") {
		var body struct{ ID string }
		if json.Unmarshal(c.Body, &body) == nil && body.ID == entry {
			n++
		}
	}
	return n
}

// overlaps returns the pairs of runs whose [start, stop] intervals
// intersect.
func overlaps(runs []emulate.TaskRun) []string {
	var out []string
	for i := range runs {
		for j := i + 1; j < len(runs); j++ {
			a, b := runs[i], runs[j]
			if a.StartedAt.Before(b.StoppedAt) && b.StartedAt.Before(a.StoppedAt) {
				out = append(out, fmt.Sprintf("%s [%s, %s] and %s [%s, %s]", a.TaskArn, a.StartedAt.Format(time.StampMicro),
					a.StoppedAt.Format(time.StampMicro), b.TaskArn, b.StartedAt.Format(time.StampMicro), b.StoppedAt.Format(time.StampMicro)))
			}
		}
	}
	return out
}

// endState is the state an execution ended in: the last one it entered.
func endState(ex *emulate.Execution) string {
	order := stateOrder(ex)
	if len(order) == 0 {
		return ""
	}
	return order[len(order)-1]
}

// burst is what a burst of webhooks for one entry did.
type burst struct {
	entry     string
	webhooks  []string             // webhook executions
	packaging []*emulate.Execution // started by the webhooks
	all       []*emulate.Execution // every packaging execution of the entry, continuations included
	names     []string             // the entry's name in the sandbox before each webhook
	sendTime  time.Duration        // how long the gateway took to accept them all
}

// count returns how many packaging executions ended in state.
func (b burst) count(state string) int {
	n := 0
	for _, p := range b.packaging {
		if endState(p) == state {
			n++
		}
	}
	return n
}

// sendBurst sends n signed webhooks for one new entry, as fast as the
// gateway takes them, renaming the entry in the sandbox before each one
// (so only a run that read the entry after the last webhook packages its
// last name), and waits for every execution they started.
//
// Benchling's export takes exportDelay, so a burst sent within that time
// reaches a holder still in its first round: the burst must then cost two
// runs, the second one reading the last edit.
func sendBurst(st *emulate.Stack, n int, exportDelay time.Duration) burst {
	GinkgoHelper()
	b := burst{entry: newEntryID()}
	export := sandbox.ExportSpec{Delay: exportDelay}
	addEntry(st, b.entry, sandbox.EntryOptions{Export: export})
	start := time.Now()
	b.webhooks = make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		name := fmt.Sprintf("Burst entry %s, edit %d", b.entry, i+1)
		addEntry(st, b.entry, sandbox.EntryOptions{Name: name, Export: export})
		b.names = append(b.names, name)
		body := st.Webhook(entryEvent(b.entry))
		// Delivered without waiting for the previous answer, as Benchling
		// does; each leaves after its edit.
		wg.Go(func() {
			defer GinkgoRecover()
			resp, err := st.Send(context.Background(), "/event", body)
			Expect(err).NotTo(HaveOccurred())
			Expect(resp.StatusCode).To(Equal(http.StatusAccepted), "gateway answer: %+v", resp)
			b.webhooks[i] = resp.ExecutionArn
		})
	}
	wg.Wait()
	b.sendTime = time.Since(start)
	for _, arn := range b.webhooks {
		ex, children := waitTree(st, arn)
		Expect(ex.Status).To(Equal("SUCCEEDED"), describeFailure(st, arn))
		Expect(children).To(HaveLen(1), describeFailure(st, arn))
		b.packaging = append(b.packaging, children...)
	}
	// A holder's last round may start after every webhook's own execution
	// has ended: wait for every packaging execution.
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	Expect(st.WaitAll(ctx)).To(Succeed())
	for i, p := range b.packaging {
		b.packaging[i] = st.Execution(p.ARN)
	}
	b.all = packagingOf(st, b.entry)
	return b
}

// packagingOf returns every packaging execution of entry, continuations
// included.
func packagingOf(st *emulate.Stack, entry string) []*emulate.Execution {
	var out []*emulate.Execution
	for _, ex := range st.Executions() {
		var in struct{ Entity string }
		if ex.Machine == emulate.Packaging && json.Unmarshal(ex.Input, &in) == nil && in.Entity == entry {
			out = append(out, ex)
		}
	}
	return out
}

var _ = Describe("a burst of 10 webhooks for one entry", Ordered, func() {
	var b burst
	BeforeAll(func() { b = sendBurst(shared, 10, 3*time.Second) })

	It("starts one packaging execution per webhook; each succeeds, packaged or coalesced", func() {
		Expect(b.packaging).To(HaveLen(10))
		for _, p := range b.packaging {
			Expect(p.Status).To(Equal("SUCCEEDED"), describeFailure(shared, p.ARN))
			Expect(endState(p)).To(BeElementOf("Packaged", "Coalesced"), "path %v", stateOrder(p))
		}
		Expect(b.count("Packaged")).To(BeNumerically(">=", 1))
	})

	It("runs at most 2 exports and sends at most 2 Quilt messages", func() {
		runs := exportRuns(shared, b.entry)
		msgs := messagesFor(shared, packageName(shared, b.entry))
		AddReportEntry("burst of 10", fmt.Sprintf("packaging executions %d, coalesced %d, export requests %d, export tasks %d, Quilt messages %d",
			len(b.packaging), b.count("Coalesced"), exportRequests(shared, b.entry), len(runs), len(msgs)))
		Expect(runs).To(HaveLen(len(msgs)))
		Expect(len(runs)).To(BeNumerically("<=", 2), "export tasks")
		Expect(exportRequests(shared, b.entry)).To(BeNumerically("<=", 2), "export requests at the sandbox")
		Expect(len(msgs)).To(BeNumerically("<=", 2), "Quilt messages")
	})

	It("never runs two exports of the entry at once", func() {
		Expect(overlaps(exportRuns(shared, b.entry))).To(BeEmpty())
	})

	It("packages the entry as the sandbox had it after the last webhook", func() {
		var entry struct{ ID, Name string }
		Expect(json.Unmarshal(packageFiles(shared, b.entry)["entry.json"], &entry)).To(Succeed())
		Expect(entry.ID).To(Equal(b.entry))
		Expect(entry.Name).To(Equal(b.names[len(b.names)-1]))
	})

	It("runs exactly 2 exports: the burst arrives while the first one runs", func() {
		Expect(exportRuns(shared, b.entry)).To(HaveLen(2))
	})

	It("writes the input.json of a coalesced webhook, not the holder's own, in the last round", func() {
		var got struct{ ID string }
		Expect(json.Unmarshal(packageFiles(shared, b.entry)["input.json"], &got)).To(Succeed())
		ids := map[string]string{} // event id -> how its packaging execution ended
		for _, p := range b.packaging {
			var in struct{ Message struct{ ID string } }
			Expect(json.Unmarshal(p.Input, &in)).To(Succeed())
			ids[in.Message.ID] = endState(p)
		}
		Expect(ids).To(HaveKeyWithValue(got.ID, "Coalesced"), "input.json's event %s among %v", got.ID, ids)
	})

	It("leaves neither a lease nor a pending marker", func() {
		Expect(object(shared, leaseKey(shared, b.entry))).To(BeNil())
		Expect(object(shared, pendingKey(shared, b.entry))).To(BeNil())
	})
})

var _ = Describe("three packaging executions for one entry started at once", Ordered, func() {
	var (
		entry string
		arns  []string
	)
	BeforeAll(func() {
		entry = newEntryID()
		addEntry(shared, entry, sandbox.EntryOptions{})
		input := packagingInput(shared, entry)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				defer GinkgoRecover()
				arn, err := shared.StartExecution(context.Background(), emulate.Packaging, "", input)
				Expect(err).NotTo(HaveOccurred())
				mu.Lock()
				arns = append(arns, arn)
				mu.Unlock()
			})
		}
		wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		Expect(shared.WaitAll(ctx)).To(Succeed())
	})

	It("succeed, and their export tasks' run intervals do not intersect", func() {
		for _, a := range arns {
			Expect(shared.Execution(a).Status).To(Equal("SUCCEEDED"), describeFailure(shared, a))
		}
		runs := exportRuns(shared, entry)
		Expect(runs).NotTo(BeEmpty())
		Expect(len(runs)).To(BeNumerically("<=", 2))
		Expect(overlaps(runs)).To(BeEmpty())
	})
})

var _ = Describe("a holder that dies without releasing the lease", Ordered, func() {
	var (
		entry  string
		dead   *emulate.Execution
		next   *emulate.Execution
		leftBy string
	)
	BeforeAll(func() {
		entry = newEntryID()
		// The first run's export never finishes: it holds the lease when it is
		// stopped, before or while its export task waits for Benchling.
		addEntry(shared, entry, sandbox.EntryOptions{Export: sandbox.ExportSpec{Never: true}})
		arn := startPackaging(shared, entry)
		Eventually(func() string { return leaseHolder(shared, entry) }, "30s", "20ms").Should(Equal(arn))
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		var err error
		dead, err = shared.StopExecution(ctx, arn)
		Expect(err).NotTo(HaveOccurred())
		leftBy = leaseHolder(shared, entry)

		addEntry(shared, entry, sandbox.EntryOptions{})
		_, next = packaged(shared, send(shared, "/event", entryEvent(entry)).Response.ExecutionArn)
	})

	It("is aborted (no Catch runs) and leaves its lease behind", func() {
		Expect(dead.Status).To(Equal("ABORTED"))
		Expect(leftBy).To(Equal(dead.ARN))
		Expect(messagesFrom(shared, dead.ARN)).To(BeEmpty(), "nothing sent to Quilt")
	})

	It("does not block the next webhook: its run takes the lease over and packages the entry", func() {
		Expect(stateOrder(next)).To(ContainElements("DescribeHolder", "TakeOverLease", "RunExport", "SendToQuilt", "ReleaseLease"))
		Expect(endState(next)).To(Equal("Packaged"))
		Expect(messagesFrom(shared, next.ARN)).To(HaveLen(1))
		Expect(leaseHolder(shared, entry)).To(BeEmpty(), "lease after the run")
	})
})

var _ = Describe("the lease protocol", func() {
	// Each case leaves a lease for a new entry, then starts one packaging
	// execution and checks where it went.
	type leaseCase struct {
		lease    func(st *emulate.Stack, entry string) []byte
		path     []string
		endState string
	}
	DescribeTable("with a lease already there",
		func(c leaseCase) {
			entry := newEntryID()
			addEntry(shared, entry, sandbox.EntryOptions{})
			putObject(shared, leaseKey(shared, entry), c.lease(shared, entry))
			p := wait(shared, startPackaging(shared, entry))
			Expect(p.Status).To(Equal("SUCCEEDED"), describeFailure(shared, p.ARN))
			Expect(stateOrder(p)).To(ContainElements(c.path), "path %v", stateOrder(p))
			Expect(endState(p)).To(Equal(c.endState), "path %v", stateOrder(p))
			if c.endState == "Packaged" {
				Expect(leaseHolder(shared, entry)).To(BeEmpty())
				Expect(messagesFrom(shared, p.ARN)).To(HaveLen(1))
			}
		},
		Entry("held by an execution that failed", leaseCase{
			lease: func(st *emulate.Stack, _ string) []byte {
				gone := newEntryID() // not in the sandbox: EntryNotFound
				failed := wait(st, startPackaging(st, gone))
				Expect(failed.Error).To(Equal("EntryNotFound"))
				Expect(leaseHolder(st, gone)).To(BeEmpty(), "a failed run releases its lease")
				return []byte(`{"holder":"` + failed.ARN + `","holderStarted":"2026-01-01T00:00:00Z"}`)
			},
			path: []string{"AcquireLease", "ReadLease", "DescribeHolder", "TakeOverLease", "RunExport", "ReleaseLease"}, endState: "Packaged",
		}),
		Entry("held by an execution Step Functions does not know", leaseCase{
			lease: func(st *emulate.Stack, _ string) []byte {
				return []byte(`{"holder":"arn:aws:states:us-east-1:000000000000:execution:packaging:gone","holderStarted":"2026-01-01T00:00:00Z"}`)
			},
			path: []string{"DescribeHolder", "TakeOverLease", "RunExport"}, endState: "Packaged",
		}),
		Entry("without a holder", leaseCase{
			lease: func(*emulate.Stack, string) []byte { return []byte(`{}`) },
			path:  []string{"ReadLease", "TakeOverLease", "RunExport"}, endState: "Packaged",
		}),
		Entry("held by a running execution", leaseCase{
			lease: func(st *emulate.Stack, _ string) []byte {
				// A packaging run of another entry whose export never ends.
				other := newEntryID()
				addEntry(st, other, sandbox.EntryOptions{Export: sandbox.ExportSpec{Never: true}})
				arn := startPackaging(st, other)
				DeferCleanup(func() {
					ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
					defer cancel()
					_, _ = st.StopExecution(ctx, arn)
				})
				return []byte(`{"holder":"` + arn + `","holderStarted":"2026-01-01T00:00:00Z"}`)
			},
			path: []string{"DescribeHolder", "WritePending", "ReadLease"}, endState: "Coalesced",
		}),
	)

	It("coalesces into a running holder: the pending marker is left for it, nothing exported", func() {
		entry := newEntryID()
		addEntry(shared, entry, sandbox.EntryOptions{Export: sandbox.ExportSpec{Never: true}})
		holder := startPackaging(shared, entry)
		Eventually(func() string { return leaseHolder(shared, entry) }, "30s", "20ms").Should(Equal(holder))
		p := wait(shared, startPackaging(shared, entry))
		Expect(endState(p)).To(Equal("Coalesced"), "path %v", stateOrder(p))
		Expect(object(shared, pendingKey(shared, entry))).NotTo(BeNil())
		Expect(tasksOf(shared, p.ARN)).To(BeEmpty())
		Expect(slices.ContainsFunc(callsTo(shared, "POST", "/api/v2/exports"), func(c sandbox.Call) bool {
			return strings.Contains(string(c.Body), entry)
		})).To(BeTrue(), "the holder's export")
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		_, err := shared.StopExecution(ctx, holder)
		Expect(err).NotTo(HaveOccurred())
	})
})

// The figures of docs/performance.md, "Bursts": BW_E2E_BURSTS=1 go test
// -v -count=1 ./e2e/local/ -args -ginkgo.focus="bursts measured".
var _ = Describe("bursts measured", func() {
	BeforeEach(func() {
		if os.Getenv("BW_E2E_BURSTS") != "1" {
			Skip("set BW_E2E_BURSTS=1 to measure bursts")
		}
	})
	for _, n := range []int{10, 50} {
		for _, delay := range []time.Duration{300 * time.Millisecond, 3 * time.Second} {
			It(fmt.Sprintf("%d webhooks, export %s", n, delay), func() {
				start := time.Now()
				b := sendBurst(shared, n, delay)
				took := time.Since(start)
				runs := exportRuns(shared, b.entry)
				msgs := messagesFor(shared, packageName(shared, b.entry))
				retries := 0
				for _, p := range b.packaging {
					for _, s := range stateOrder(p) {
						if s == "CountLeaseAttempt" {
							retries++
						}
					}
				}
				line := fmt.Sprintf("%d webhooks, export %s: packaging executions %d (packaged %d, coalesced %d, continuations %d), export requests %d, export tasks %d, Quilt messages %d, lease retries %d, overlapping exports %d, webhooks accepted in %s, all done in %s",
					n, delay, len(b.packaging), b.count("Packaged"), b.count("Coalesced"), len(b.all)-len(b.packaging), exportRequests(shared, b.entry), len(runs), len(msgs),
					retries, len(overlaps(runs)), b.sendTime.Round(100*time.Millisecond), took.Round(100*time.Millisecond))
				GinkgoWriter.Println(line)
				AddReportEntry("burst", line)
				Expect(overlaps(runs)).To(BeEmpty())
				var entry struct{ Name string }
				Expect(json.Unmarshal(packageFiles(shared, b.entry)["entry.json"], &entry)).To(Succeed())
				Expect(entry.Name).To(Equal(b.names[len(b.names)-1]))
			})
		}
	}
})

var _ = Describe("an entry edited without pause", Ordered, func() {
	var (
		entry string
		first *emulate.Execution
		all   []*emulate.Execution
	)
	BeforeAll(func() {
		entry = newEntryID()
		addEntry(shared, entry, sandbox.EntryOptions{})
		arn := startPackaging(shared, entry)
		// Requesters keep marking the entry pending until the holder hands
		// over to a new execution.
		continued := func() bool {
			for _, ex := range packagingOf(shared, entry) {
				if ex.ARN != arn {
					return true
				}
			}
			return false
		}
		deadline := time.Now().Add(waitTimeout)
		for !continued() && shared.Execution(arn).Status == "RUNNING" && time.Now().Before(deadline) {
			putObject(shared, pendingKey(shared, entry), []byte(`{"by":"e2e"}`))
			time.Sleep(20 * time.Millisecond) // the pace of the webhooks, not a wait for a condition
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		Expect(shared.WaitAll(ctx)).To(Succeed())
		first = shared.Execution(arn)
		all = packagingOf(shared, entry)
	})

	It("runs 3 rounds in one execution, then continues in a new one", func() {
		Expect(first.Status).To(Equal("SUCCEEDED"), describeFailure(shared, first.ARN))
		Expect(stateOrder(first)).To(ContainElement("ContinueAsNew"))
		Expect(tasksOf(shared, first.ARN)).To(HaveLen(3))
		Expect(len(all)).To(BeNumerically(">=", 2))
		for _, ex := range all {
			Expect(ex.Status).To(Equal("SUCCEEDED"), describeFailure(shared, ex.ARN))
		}
	})

	It("never overlaps two exports, and ends with the lease free", func() {
		Expect(overlaps(exportRuns(shared, entry))).To(BeEmpty())
		Expect(leaseHolder(shared, entry)).To(BeEmpty())
	})
})

var _ = Describe("a holder that releases while a webhook coalesces into it", Ordered, func() {
	// The requester has seen the holder running and is about to write its
	// pending marker; the holder checks for the marker, finds none and
	// releases just then. The requester must notice (it reads the lease
	// again) and package the entry itself, or its change is lost.
	var (
		st        *emulate.Stack
		entry     string
		requester *emulate.Execution
	)
	BeforeAll(func() {
		entry = newEntryID()
		var (
			mu      sync.Mutex
			watched string
			reached = make(chan struct{})
			release = make(chan struct{})
		)
		st = startStack(emulate.Options{BeforeTask: func(arn, state string) {
			mu.Lock()
			hold := arn == watched && state == "WritePending"
			mu.Unlock()
			if hold {
				close(reached)
				<-release
			}
		}})
		addEntry(st, entry, sandbox.EntryOptions{})
		// The "holder": a running execution of another entry, named in the lease.
		other := newEntryID()
		addEntry(st, other, sandbox.EntryOptions{Export: sandbox.ExportSpec{Never: true}})
		holder := startPackaging(st, other)
		putObject(st, leaseKey(st, entry), []byte(`{"holder":"`+holder+`"}`))

		arn, err := st.StartExecution(context.Background(), emulate.Packaging, "requester-"+randomHex(4), packagingInput(st, entry))
		Expect(err).NotTo(HaveOccurred())
		mu.Lock()
		watched = arn
		mu.Unlock()
		Eventually(reached, "30s").Should(BeClosed())
		// The holder releases before the marker is written.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := st.S3.Client(ctx)
		Expect(err).NotTo(HaveOccurred())
		_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket(st)), Key: aws.String(leaseKey(st, entry))})
		Expect(err).NotTo(HaveOccurred())
		close(release)
		requester = wait(st, arn)
		_, err = st.StopExecution(ctx, holder)
		Expect(err).NotTo(HaveOccurred())
	})

	It("reads the lease again after writing its marker, acquires it and packages the entry", func() {
		Expect(requester.Status).To(Equal("SUCCEEDED"), describeFailure(st, requester.ARN))
		Expect(stateOrder(requester)).To(ContainElements("WritePending", "AcquireLease", "RunExport", "SendToQuilt"))
		Expect(endState(requester)).To(Equal("Packaged"), "path %v", stateOrder(requester))
		Expect(messagesFrom(st, requester.ARN)).To(HaveLen(1))
	})
})

var _ = Describe("a webhook that coalesces just before the holder releases", Ordered, func() {
	// The requester writes its marker after the holder's CheckPending and
	// still sees the lease held, so it ends Coalesced; the holder must look
	// for the marker once more after releasing, or the change is lost.
	var (
		st                *emulate.Stack
		entry             string
		holder, requester *emulate.Execution
	)
	BeforeAll(func() {
		entry = newEntryID()
		var (
			mu      sync.Mutex
			watched string
			reached = make(chan struct{})
			release = make(chan struct{})
		)
		st = startStack(emulate.Options{BeforeTask: func(arn, state string) {
			mu.Lock()
			hold := arn == watched && state == "ReleaseLease"
			if hold {
				watched = "" // only its first release
			}
			mu.Unlock()
			if hold {
				close(reached)
				<-release
			}
		}})
		addEntry(st, entry, sandbox.EntryOptions{})
		arn, err := st.StartExecution(context.Background(), emulate.Packaging, "holder-"+randomHex(4), packagingInput(st, entry))
		Expect(err).NotTo(HaveOccurred())
		mu.Lock()
		watched = arn
		mu.Unlock()
		Eventually(reached, "30s").Should(BeClosed())
		requester = wait(st, startPackaging(st, entry))
		close(release)
		holder = wait(st, arn)
	})

	It("the requester coalesces; the holder finds its marker after releasing and packages once more", func() {
		Expect(endState(requester)).To(Equal("Coalesced"), "path %v", stateOrder(requester))
		Expect(holder.Status).To(Equal("SUCCEEDED"), describeFailure(st, holder.ARN))
		Expect(stateOrder(holder)).To(ContainElements("CheckPendingAfterRelease", "ReacquireLease"))
		Expect(exportRuns(st, entry)).To(HaveLen(2))
		Expect(messagesFrom(st, holder.ARN)).To(HaveLen(2))
		Expect(leaseHolder(st, entry)).To(BeEmpty())
	})
})

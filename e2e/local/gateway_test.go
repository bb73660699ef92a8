package local_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"benchling-webhook/internal/testkit/emulate"
	"benchling-webhook/internal/testkit/sandbox"
	"benchling-webhook/internal/webhook"
)

// Helper G: STABLE and SUFFIXED routing, requests the gateway refuses, and
// junk that must cost little and block nothing genuine (issues 11 and 12).

var _ = Describe("STABLE and SUFFIXED routing", func() {
	It("packages an entry event POSTed to the API root as one POSTed to /event", func() {
		entry := newEntryID()
		addEntry(shared, entry, sandbox.EntryOptions{})
		s := send(shared, "/", entryEvent(entry))
		webhookRun, _ := packaged(shared, s.Response.ExecutionArn)
		Expect(webhookRun.Input).To(ContainSubstring(`"resourcePath":"/"`))
	})

	It("routes a canvas payload on the payload, whatever the path: /canvas, /event and / run the same states", func() {
		orders := map[string][]string{}
		for _, path := range []string{"/canvas", "/event", "/"} {
			entry, canvasID := newEntryID(), "cnvs_"+randomHex(6)
			addEntry(shared, entry, sandbox.EntryOptions{})
			shared.Benchling.AddCanvas(canvasID, entry)
			s := send(shared, path, map[string]any{"type": "v2.canvas.created", "canvasId": canvasID, "featureId": sandbox.DefaultFeatureID})
			webhookRun, _ := packaged(shared, s.Response.ExecutionArn)
			orders[path] = stateOrder(webhookRun)
			Expect(orders[path]).To(ContainElement("StartPackaging"), describeFailure(shared, webhookRun.ARN))
		}
		Expect(orders["/event"]).To(Equal(orders["/canvas"]))
		Expect(orders["/"]).To(Equal(orders["/canvas"]))
	})
})

var _ = Describe("Requests the gateway refuses", func() {
	// refusedAt expects a 400 rejection and nothing started since q.
	refusedAt := func(resp emulate.Response, err error, q quiet) {
		GinkgoHelper()
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.StatusCode).To(Equal(http.StatusBadRequest), "gateway answer %+v", resp)
		Expect(resp.Status).To(Equal("rejected"))
		Expect(resp.ExecutionArn).To(BeEmpty())
		Expect(shared.Executions()).To(HaveLen(q.executions), "no execution started")
		Expect(shared.TaskRuns()).To(HaveLen(q.runs), "no task started")
	}
	DescribeTable("answers 400 without the webhook-* headers and starts nothing",
		func(header string) {
			d, _ := signed(shared)
			d.headers.Del(header)
			q := settle(shared)
			resp, err := shared.Post(context.Background(), "/event", d.body, d.headers)
			refusedAt(resp, err, q)
			Expect(resp.Message).To(ContainSubstring("headers required"))
		},
		Entry("no webhook-id", webhook.HeaderID),
		Entry("no webhook-timestamp", webhook.HeaderTimestamp),
		Entry("no webhook-signature", webhook.HeaderSignature),
	)

	It("answers 400 to a correctly signed webhook of another app definition and starts nothing", func() {
		d, _ := signed(shared)
		var doc map[string]any
		Expect(json.Unmarshal(d.body, &doc)).To(Succeed())
		doc["appDefinition"] = map[string]string{"id": "appdef_other", "versionNumber": "1.0.0"}
		var err error
		d.body, err = json.Marshal(doc)
		Expect(err).NotTo(HaveOccurred())
		d.headers = resign(shared, &d, time.Now())
		q := settle(shared)
		resp, err := shared.Post(context.Background(), "/", d.body, d.headers)
		refusedAt(resp, err, q)
	})

	DescribeTable("ends a correctly signed webhook with an implausible timestamp as WebhookJunk, without a task",
		func(at time.Duration) {
			d, entry := signed(shared)
			d.headers = resign(shared, &d, time.Now().Add(at))
			q := settle(shared)
			resp := post(shared, "/event", d.body, d.headers)
			ex := wait(shared, resp.ExecutionArn)
			Expect(ex.Status).To(Equal("FAILED"))
			Expect(ex.Error).To(Equal("WebhookJunk"), describeFailure(shared, ex.ARN))
			Expect(tasksOf(shared, ex.ARN)).To(BeEmpty(), "no verify task")
			Expect(shared.TaskRuns()).To(HaveLen(q.runs))
			Expect(shared.Children(ex.ARN)).To(BeEmpty())
			Expect(callsTo(shared, http.MethodGet, "/api/v2/entries/"+entry)).To(BeEmpty())
		},
		Entry("6 minutes old", -6*time.Minute),
		Entry("6 minutes ahead", 6*time.Minute),
	)
})

// junkKinds are the junk requests of the measurement, with how many of
// each in 1,000 and what the gateway answers.
var junkKinds = []struct {
	name   string
	count  int
	status int
	build  func(st *emulate.Stack, i int) delivery
}{
	{"no webhook-* headers", 250, http.StatusBadRequest, func(st *emulate.Stack, i int) delivery {
		return delivery{st.Webhook(entryEvent(newEntryID())), http.Header{}}
	}},
	{"another app definition", 200, http.StatusBadRequest, func(st *emulate.Stack, i int) delivery {
		var doc map[string]any
		Expect(json.Unmarshal(st.Webhook(entryEvent(newEntryID())), &doc)).To(Succeed())
		doc["appDefinition"] = map[string]string{"id": "appdef_other", "versionNumber": "1.0.0"}
		body, err := json.Marshal(doc)
		Expect(err).NotTo(HaveOccurred())
		return delivery{body, junkHeaders(time.Now())}
	}},
	{"not a webhook (not JSON, an array, no app)", 150, http.StatusBadRequest, func(st *emulate.Stack, i int) delivery {
		bodies := []string{"hello", `[1,2,3]`, `{"message":{"type":"v2.entry.created"}}`}
		return delivery{[]byte(bodies[i%len(bodies)]), junkHeaders(time.Now())}
	}},
	{"an implausible timestamp (replayed or forged)", 300, http.StatusAccepted, func(st *emulate.Stack, i int) delivery {
		return delivery{st.Webhook(entryEvent(newEntryID())), junkHeaders(time.Now().Add(-time.Hour))}
	}},
	{"plausible but forged (right app, fresh timestamp, bad signature)", 100, http.StatusAccepted, func(st *emulate.Stack, i int) delivery {
		return delivery{st.Webhook(entryEvent(newEntryID())), junkHeaders(time.Now())}
	}},
}

// junkHeaders are webhook-* headers with a random id and a signature that
// verifies nothing.
func junkHeaders(at time.Time) http.Header {
	h := http.Header{}
	h.Set(webhook.HeaderID, "msg_junk"+randomHex(8))
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	h.Set(webhook.HeaderSignature, "v1bder,MEUCIQDjunkjunkjunkjunkjunkjunkjunkjunkjunkjunkjunkjunkjunk")
	return h
}

// The measurement of issue 12 ("Junk costs little"): BW_MEASURE=1 only,
// since it takes a minute or two. docs/performance.md, "Junk".
var _ = Describe("1,000 junk requests", Ordered, func() {
	BeforeAll(func() {
		if os.Getenv("BW_MEASURE") != "1" {
			Skip("set BW_MEASURE=1 to measure junk (docs/performance.md, \"Junk\")")
		}
	})

	It("start tasks only for plausible forgeries, and a genuine webhook among them is packaged", func() {
		// Each task's peak memory, through /usr/bin/time around the job.
		rss := filepath.Join(GinkgoT().TempDir(), "rss")
		Expect(os.Mkdir(rss, 0o755)).To(Succeed())
		wrapper := filepath.Join(GinkgoT().TempDir(), "job")
		script := fmt.Sprintf("#!/bin/sh\nexec /usr/bin/time -f %%M -o %s/$$ %s \"$@\"\n", rss, jobBinary)
		if _, err := os.Stat("/usr/bin/time"); err != nil {
			script = fmt.Sprintf("#!/bin/sh\nexec %s \"$@\"\n", jobBinary)
		}
		Expect(os.WriteFile(wrapper, []byte(script), 0o755)).To(Succeed())
		saved := jobBinary
		jobBinary = wrapper
		st := startStack(emulate.Options{})
		jobBinary = saved

		var requests []delivery
		var kinds []int
		for k, kind := range junkKinds {
			for i := range kind.count {
				requests = append(requests, kind.build(st, i))
				kinds = append(kinds, k)
			}
		}
		Expect(requests).To(HaveLen(1000))
		// Shuffle deterministically: kinds interleaved.
		order := make([]int, len(requests))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return (order[a]*7919)%1000 < (order[b]*7919)%1000 })

		genuine, entry := signed(st)
		start := time.Now()
		statuses := make([]int, len(requests))
		var mu sync.Mutex
		var genuineResp emulate.Response
		work := make(chan int)
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer GinkgoRecover()
				for n := range work {
					if n < 0 {
						resp, err := st.Post(context.Background(), "/event", genuine.body, genuine.headers)
						Expect(err).NotTo(HaveOccurred())
						mu.Lock()
						genuineResp = resp
						mu.Unlock()
						continue
					}
					d := requests[n]
					resp, err := st.Post(context.Background(), "/event", d.body, d.headers)
					Expect(err).NotTo(HaveOccurred())
					statuses[n] = resp.StatusCode
				}
			}()
		}
		for i, n := range order {
			if i == len(order)/2 {
				work <- -1 // the genuine webhook, in the middle
			}
			work <- n
		}
		close(work)
		wg.Wait()
		sent := time.Since(start)

		Expect(genuineResp.StatusCode).To(Equal(http.StatusAccepted), "gateway answer %+v", genuineResp)
		_, packaging := packaged(st, genuineResp.ExecutionArn)
		Expect(packageKeys(st, entry)).NotTo(BeEmpty(), "the genuine webhook was packaged")
		Expect(packaging.Status).To(Equal("SUCCEEDED"))

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		Expect(st.WaitAll(ctx)).To(Succeed())
		total := time.Since(start)

		for n, status := range statuses {
			Expect(status).To(Equal(junkKinds[kinds[n]].status), "%s", junkKinds[kinds[n]].name)
		}
		// Tasks started (ECS RunTask in the hub) and state transitions
		// (states entered), by outcome, junk only.
		tasks, transitions, errors := 0, 0, map[string]int{}
		for _, ex := range st.Executions() {
			// Junk starts webhook executions only; the genuine webhook's
			// packaging and canvas status executions are not junk.
			if ex.ARN == genuineResp.ExecutionArn || ex.Machine != emulate.Webhook {
				continue
			}
			errors[ex.Error]++
			transitions += len(stateOrder(ex))
			tasks += len(tasksOf(st, ex.ARN))
		}
		var peak int
		files, _ := os.ReadDir(rss)
		for _, f := range files {
			b, _ := os.ReadFile(filepath.Join(rss, f.Name()))
			lines := strings.Fields(string(b))
			if len(lines) > 0 {
				if kb, err := strconv.Atoi(lines[len(lines)-1]); err == nil && kb > peak {
					peak = kb
				}
			}
		}
		accepted := 0
		for _, k := range junkKinds {
			if k.status == http.StatusAccepted {
				accepted += k.count
			}
		}
		Expect(tasks).To(Equal(junkKinds[len(junkKinds)-1].count), "only plausible forgeries start a verify task")
		Expect(errors).To(Equal(map[string]int{"WebhookJunk": junkKinds[3].count, "WebhookRejected": junkKinds[4].count}))

		GinkgoWriter.Printf("JUNK 1000 requests (+1 genuine) sent in %s, all settled in %s\n", sent.Round(time.Millisecond), total.Round(time.Millisecond))
		for _, k := range junkKinds {
			GinkgoWriter.Printf("JUNK   %4d %-66s -> %d\n", k.count, k.name, k.status)
		}
		GinkgoWriter.Printf("JUNK executions started %d (failed: %v), ECS tasks started %d, state transitions %d\n", accepted, errors, tasks, transitions)
		GinkgoWriter.Printf("JUNK peak RSS of a job process %d KiB over %d tasks (genuine included)\n", peak, len(files))
	})
})

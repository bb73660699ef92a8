package local_test

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"benchling-webhook/internal/testkit/emulate"
	"benchling-webhook/internal/testkit/sandbox"
)

// What one webhook costs in Step Functions state transitions and ECS tasks,
// for docs/deploy.md ("Costs"): Step Functions bills every state entered
// (retries included), which the engine's StateEntered events count.
var _ = Describe("The cost of one webhook (docs/deploy.md, Costs)", Ordered, func() {
	// count is one webhook's bill: transitions and tasks of its execution and
	// of every execution it started, and the bytes of their execution events
	// (what the machines' ALL-level logging with execution data sends to
	// CloudWatch Logs, roughly).
	type count struct {
		transitions, tasks, executions, eventBytes int
		byMachine                                  map[string]int // transitions
	}
	eventBytes := func(ex *emulate.Execution) int {
		n := 0
		for _, e := range ex.Events {
			n += len(e)
		}
		return n
	}
	add := func(c *count, ex *emulate.Execution) {
		Expect(ex.Status).To(Equal("SUCCEEDED"), describeFailure(shared, ex.ARN))
		c.transitions += len(stateOrder(ex))
		if c.byMachine == nil {
			c.byMachine = map[string]int{}
		}
		c.byMachine[ex.Machine] += len(stateOrder(ex))
		c.tasks += len(tasksOf(shared, ex.ARN))
		c.executions++
		c.eventBytes += eventBytes(ex)
	}
	// measure counts the webhook's execution and every execution it started,
	// nested ones too (packaging, the canvas status reports and their waits),
	// and, once the Quilt stand-in has built the package, the canvas
	// execution its package-revision event started (entry: the package's
	// entry, "" for none).
	measure := func(arn, entry string) count {
		GinkgoHelper()
		var c count
		var walk func(arn string)
		walk = func(arn string) {
			add(&c, wait(shared, arn))
			for _, ch := range shared.Children(arn) {
				walk(ch.ARN)
			}
		}
		walk(arn)
		if entry == "" {
			return c
		}
		for _, m := range shared.Messages() {
			if strings.Contains(m.Body, "/"+entry+"/") {
				Expect(packagerResult(shared, m.Body).Err).NotTo(HaveOccurred())
			}
		}
		evs := revisionEvents(shared, packageName(shared, entry))
		Expect(evs).To(HaveLen(1), "one revision")
		for _, d := range evs[0].Deliveries {
			add(&c, wait(shared, d.ExecutionArn))
		}
		return c
	}
	report := func(name string, c count) {
		line := fmt.Sprintf("%d state transitions %v, %d ECS tasks, %d executions, %d KB of execution events",
			c.transitions, c.byMachine, c.tasks, c.executions, (c.eventBytes+512)/1024)
		AddReportEntry("cost: "+name, line)
		GinkgoWriter.Printf("cost: %s: %s\n", name, line)
	}

	It("an entry webhook that becomes a package: two tasks, a bounded number of transitions", func() {
		entry := newEntryID()
		addEntry(shared, entry, sandbox.EntryOptions{})
		s := send(shared, "/event", map[string]any{"type": "v2.entry.updated.fields", "id": "evt_" + randomHex(6),
			"resourceId": entry, "createdAt": pastTime(), "updates": []string{"fields.Sentinel"}})
		c := measure(s.Response.ExecutionArn, entry)
		report("v2.entry.updated.fields", c)
		Expect(c.executions).To(Equal(5), "webhook, packaging, and the canvas machine's updating, sent and revision")
		Expect(c.tasks).To(Equal(2), "verify and export")
		Expect(c.transitions).To(BeNumerically("<=", 200))
	})

	It("a canvas webhook that becomes a package and updates the canvas", func() {
		entry, canvasID := newEntryID(), "cnvs_"+randomHex(6)
		addEntry(shared, entry, sandbox.EntryOptions{ModifiedAt: time.Now().Add(-time.Hour)})
		shared.Benchling.AddCanvas(canvasID, entry)
		s := send(shared, "/canvas", map[string]any{"type": "v2.canvas.created", "canvasId": canvasID, "resourceId": entry,
			"featureId": sandbox.DefaultFeatureID, "userId": "ent_e2e"})
		c := measure(s.Response.ExecutionArn, entry)
		report("v2.canvas.created", c)
		Expect(c.tasks).To(Equal(2), "verify and export")
		Expect(c.transitions).To(BeNumerically("<=", 200))
	})

	It("a lifecycle webhook: one verify task and nothing else", func() {
		s := send(shared, "/lifecycle", map[string]any{"type": "v2.app.installed"})
		c := measure(s.Response.ExecutionArn, "")
		report("v2.app.installed", c)
		Expect(c.tasks).To(Equal(1), "verify only")
		Expect(c.executions).To(Equal(1))
		Expect(c.transitions).To(BeNumerically("<=", 30))
	})
})

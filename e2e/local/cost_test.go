package local_test

import (
	"fmt"
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
	type count struct{ transitions, tasks, executions, eventBytes int }
	eventBytes := func(ex *emulate.Execution) int {
		n := 0
		for _, e := range ex.Events {
			n += len(e)
		}
		return n
	}
	measure := func(arn string) count {
		GinkgoHelper()
		ex, children := waitTree(shared, arn)
		Expect(ex.Status).To(Equal("SUCCEEDED"), describeFailure(shared, arn))
		c := count{transitions: len(stateOrder(ex)), tasks: len(tasksOf(shared, arn)), executions: 1, eventBytes: eventBytes(ex)}
		for _, ch := range children {
			Expect(ch.Status).To(Equal("SUCCEEDED"), describeFailure(shared, ch.ARN))
			c.transitions += len(stateOrder(ch))
			c.tasks += len(tasksOf(shared, ch.ARN))
			c.executions++
			c.eventBytes += eventBytes(ch)
		}
		return c
	}
	report := func(name string, c count) {
		line := fmt.Sprintf("%d state transitions, %d ECS tasks, %d executions, %d KB of execution events",
			c.transitions, c.tasks, c.executions, (c.eventBytes+512)/1024)
		AddReportEntry("cost: "+name, line)
		GinkgoWriter.Printf("cost: %s: %s\n", name, line)
	}

	It("an entry webhook that becomes a package: two tasks, a bounded number of transitions", func() {
		entry := newEntryID()
		addEntry(shared, entry, sandbox.EntryOptions{})
		s := send(shared, "/event", map[string]any{"type": "v2.entry.updated.fields", "id": "evt_" + randomHex(6),
			"resourceId": entry, "createdAt": pastTime(), "updates": []string{"fields.Sentinel"}})
		c := measure(s.Response.ExecutionArn)
		report("v2.entry.updated.fields", c)
		Expect(c.executions).To(Equal(2))
		Expect(c.tasks).To(Equal(2), "verify and export")
		Expect(c.transitions).To(BeNumerically("<=", 150))
	})

	It("a canvas webhook that becomes a package and updates the canvas", func() {
		entry, canvasID := newEntryID(), "cnvs_"+randomHex(6)
		addEntry(shared, entry, sandbox.EntryOptions{ModifiedAt: time.Now().Add(-time.Hour)})
		shared.Benchling.AddCanvas(canvasID, entry)
		s := send(shared, "/canvas", map[string]any{"type": "v2.canvas.created", "canvasId": canvasID, "resourceId": entry,
			"featureId": sandbox.DefaultFeatureID, "userId": "ent_e2e"})
		c := measure(s.Response.ExecutionArn)
		report("v2.canvas.created", c)
		Expect(c.tasks).To(Equal(2), "verify and export")
		Expect(c.transitions).To(BeNumerically("<=", 150))
	})

	It("a lifecycle webhook: one verify task and nothing else", func() {
		s := send(shared, "/lifecycle", map[string]any{"type": "v2.app.installed"})
		c := measure(s.Response.ExecutionArn)
		report("v2.app.installed", c)
		Expect(c.tasks).To(Equal(1), "verify only")
		Expect(c.executions).To(Equal(1))
		Expect(c.transitions).To(BeNumerically("<=", 30))
	})
})

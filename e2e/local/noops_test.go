package local_test

import (
	"context"
	"net/http"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"benchling-webhook/internal/testkit/emulate"
	"benchling-webhook/internal/testkit/sandbox"
)

// quiet is what a stack looked like before a webhook that must have no
// effect: the bucket's keys, the number of queue messages and sandbox calls.
type quiet struct {
	keys             []string
	messages, calls  int
	executions, runs int
}

// settle waits for everything running on st to end, then records its state.
func settle(st *emulate.Stack) quiet {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	Expect(st.WaitAll(ctx)).To(Succeed())
	return quiet{keys: listKeys(st, ""), messages: len(st.Messages()), calls: callCount(st),
		executions: len(st.Executions()), runs: len(st.TaskRuns())}
}

// expectNoEffects expects that the execution arn started nothing, ran no
// task but job verify, wrote nothing to S3, sent no message and made no
// Benchling call but fetching the JWKS, since q was recorded.
func expectNoEffects(st *emulate.Stack, arn string, q quiet) {
	GinkgoHelper()
	Expect(st.Children(arn)).To(BeEmpty(), "executions started by %s\n%s", arn, describeFailure(st, arn))
	Expect(st.Executions()).To(HaveLen(q.executions+1), "executions on the stack")
	tasks := tasksOf(st, arn)
	Expect(tasks).To(HaveLen(1), describeFailure(st, arn))
	Expect(tasks[0].Command).To(HaveExactElements("verify", "--execution-arn", arn))
	Expect(st.TaskRuns()).To(HaveLen(q.runs+1), "ECS tasks on the stack")
	Expect(listKeys(st, "")).To(Equal(q.keys), "objects in the bucket")
	Expect(st.Messages()).To(HaveLen(q.messages), "messages to the packager queue")
	jwks := strings.TrimPrefix(st.Benchling.JWKSURL(), st.Benchling.URL())
	for _, c := range callsSince(st, q.calls) {
		Expect(c.Method+" "+c.Path).To(Equal("GET "+jwks), "Benchling calls besides the JWKS")
	}
}

var _ = Describe("Webhooks that need no action", func() {
	DescribeTable("succeed without packaging anything",
		func(path string, msg map[string]any) {
			// An entry exists and its id is in the message, so a wrong route
			// would have something to package.
			entry := newEntryID()
			addEntry(shared, entry, sandbox.EntryOptions{})
			msg["resourceId"] = entry
			q := settle(shared)

			s := send(shared, path, msg)
			ex := wait(shared, s.Response.ExecutionArn)
			Expect(ex.Status).To(Equal("SUCCEEDED"), describeFailure(shared, ex.ARN))
			Expect(stateOrder(ex)).To(HaveExactElements(noActionStates))
			res, _ := verifyOutcome(shared, ex.ARN)
			Expect(res.Verified).To(BeTrue())
			expectNoEffects(shared, ex.ARN, q)
			Expect(callsTo(shared, http.MethodGet, "/api/v2/entries/"+entry)).To(BeEmpty())
		},
		Entry("v2.app.installed on /lifecycle", "/lifecycle", map[string]any{"type": "v2.app.installed"}),
		Entry("v2.app.activateRequested on /lifecycle", "/lifecycle", map[string]any{"type": "v2.app.activateRequested"}),
		Entry("an unknown type on /event", "/event", map[string]any{"type": "v2.assayRun.created", "createdAt": "2025-03-30T23:37:22.777296+00:00"}),
	)
})

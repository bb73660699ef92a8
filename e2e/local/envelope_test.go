package local_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"benchling-webhook/internal/testkit/emulate"
	"benchling-webhook/internal/testkit/sandbox"
)

var _ = Describe("The request envelope", func() {
	It("routes a large webhook (over what States.Base64Decode can take) on its verified payload", func() {
		entry := newEntryID()
		addEntry(shared, entry, sandbox.EntryOptions{})
		msg := entryEvent(entry)
		updates := make([]string, 600)
		for i := range updates {
			updates[i] = fmt.Sprintf("fields.Measurement %03d (µg/mL)", i)
		}
		msg["updates"] = updates
		s := send(shared, "/event", msg)
		Expect(len(s.Body)).To(BeNumerically(">", 16<<10), "the body is large enough to matter")
		packaged(shared, s.Response.ExecutionArn)
		var input map[string]any
		Expect(json.Unmarshal(packageFiles(shared, entry)["input.json"], &input)).To(Succeed())
		Expect(input["updates"]).To(HaveLen(600))
	})

	It("rejects an execution input whose payload is not the signed body", func() {
		entry, other := newEntryID(), newEntryID()
		addEntry(shared, entry, sandbox.EntryOptions{})
		addEntry(shared, other, sandbox.EntryOptions{})
		q := settle(shared)
		// Someone able to call StartExecution (or a broken mapping template)
		// pairs a genuine signed body with another payload.
		body := shared.Webhook(entryEvent(entry))
		h, err := shared.Benchling.SignWebhook(body)
		Expect(err).NotTo(HaveOccurred())
		env := emulate.BuildEnvelope("/event", h, body, "127.0.0.1", "req-tampered")
		env.Payload = shared.Webhook(entryEvent(other))
		input, err := json.Marshal(env)
		Expect(err).NotTo(HaveOccurred())
		arn, err := shared.StartExecution(context.Background(), emulate.Webhook, "tampered-"+randomHex(6), input)
		Expect(err).NotTo(HaveOccurred())
		resp := emulate.Response{StatusCode: http.StatusAccepted, ExecutionArn: arn}
		expectRejected(shared, resp, entry, "payload", q)
	})
})

package local_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"benchling-webhook/internal/testkit/emulate"
	"benchling-webhook/internal/testkit/sandbox"
	"benchling-webhook/internal/webhook"
)

// entryEvent returns the message of an entry event for entry.
func entryEvent(entry string) map[string]any {
	return map[string]any{"type": "v2.entry.updated.fields", "id": "evt_" + randomHex(6), "resourceId": entry,
		"createdAt": pastTime(), "schema": map[string]string{"id": "ts_sWLj9kNl"}, "updates": []string{"fields.Sentinel"}}
}

// delivery is a webhook as it goes on the wire.
type delivery struct {
	body    []byte
	headers http.Header
}

// signed returns a correctly signed entry event for a new entry that exists
// in st's sandbox, so that a webhook wrongly accepted would be packaged.
func signed(st *emulate.Stack) (delivery, string) {
	GinkgoHelper()
	entry := newEntryID()
	addEntry(st, entry, sandbox.EntryOptions{})
	body := st.Webhook(entryEvent(entry))
	h, err := st.Benchling.SignWebhook(body)
	Expect(err).NotTo(HaveOccurred())
	return delivery{body, h}, entry
}

// expectRejected expects the webhook execution of resp to have failed with
// WebhookRejected because job verify exited 3 with an error containing
// reason, and to have had no effect since q.
func expectRejected(st *emulate.Stack, resp emulate.Response, entry, reason string, q quiet) *emulate.Execution {
	GinkgoHelper()
	Expect(resp.StatusCode).To(Equal(http.StatusAccepted), "gateway answer %+v", resp)
	ex := wait(st, resp.ExecutionArn)
	Expect(ex.Status).To(Equal("FAILED"), describeFailure(st, ex.ARN))
	Expect(ex.Error).To(Equal("WebhookRejected"), describeFailure(st, ex.ARN))
	res, task := verifyOutcome(st, ex.ARN)
	Expect(task.ExitCode).To(Equal(3), describeFailure(st, ex.ARN))
	Expect(res.Verified).To(BeFalse())
	Expect(res.ExitCode).To(Equal(3))
	Expect(res.Error).To(ContainSubstring(reason), describeFailure(st, ex.ARN))
	Expect(ex.Cause).To(ContainSubstring(task.TaskArn), "the Cause names the verify task")
	Expect(ex.Cause).To(ContainSubstring("exit 3"))
	expectNoEffects(st, ex.ARN, q)
	Expect(callsTo(st, http.MethodGet, "/api/v2/entries/"+entry)).To(BeEmpty())
	return ex
}

var _ = Describe("Webhooks that fail verification", func() {
	DescribeTable("are rejected with WebhookRejected and have no effect",
		func(tamper func(st *emulate.Stack, d *delivery), reason string) {
			d, entry := signed(shared)
			tamper(shared, &d)
			q := settle(shared)
			resp, err := shared.Post(context.Background(), "/event", d.body, d.headers)
			Expect(err).NotTo(HaveOccurred())
			ex := expectRejected(shared, resp, entry, reason, q)
			Expect(ex.Name).To(Equal(d.headers.Get(webhook.HeaderID)))
		},
		Entry("forged: the body changed after signing", func(_ *emulate.Stack, d *delivery) {
			d.body = []byte(strings.Replace(string(d.body), `"fields.Sentinel"`, `"fields.Forged"`, 1))
		}, "bad signature"),
		Entry("signed by a key not in the JWKS", func(_ *emulate.Stack, d *delivery) {
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			Expect(err).NotTo(HaveOccurred())
			ts, sig, err := webhook.Sign(key, d.headers.Get(webhook.HeaderID), time.Now(), d.body)
			Expect(err).NotTo(HaveOccurred())
			d.headers.Set(webhook.HeaderTimestamp, ts)
			d.headers.Set(webhook.HeaderSignature, sig)
		}, "bad signature"),
		// Requests without the webhook-* headers or for another app are
		// refused by the gateway, and implausible timestamps by the
		// machine's pre-checks, before any task: gateway_test.go.
	)

	Describe("from a source IP not on the allow list", Ordered, func() {
		var st *emulate.Stack
		BeforeAll(func() { st = startStack(emulate.Options{AllowedIPs: "10.0.0.0/8"}) })

		It("rejects a correctly signed webhook from 127.0.0.1", func() {
			d, entry := signed(st)
			q := settle(st)
			resp := post(st, "/event", d.body, d.headers)
			expectRejected(st, resp, entry, "source IP not allowed", q)
		})
	})

	Describe("with a body over MAX_BODY", Ordered, func() {
		const limit = 4 << 10
		var st *emulate.Stack
		BeforeAll(func() { st = startStack(emulate.Options{MaxBody: "4KiB"}) })

		It("rejects a correctly signed webhook one byte over the limit", func() {
			entry := newEntryID()
			addEntry(st, entry, sandbox.EntryOptions{})
			body := bodyOfSize(st, entryEvent(entry), limit+1)
			q := settle(st)
			resp, err := st.Send(context.Background(), "/event", body)
			Expect(err).NotTo(HaveOccurred())
			expectRejected(st, resp, entry, "body too large", q)
		})

		It("accepts one exactly at the limit", func() {
			body := bodyOfSize(st, map[string]any{"type": "v2.app.installed"}, limit)
			resp, err := st.Send(context.Background(), "/lifecycle", body)
			Expect(err).NotTo(HaveOccurred())
			ex := wait(st, resp.ExecutionArn)
			Expect(ex.Status).To(Equal("SUCCEEDED"), describeFailure(st, ex.ARN))
		})
	})
})

// resign signs d's body again with its webhook-id at time at.
func resign(st *emulate.Stack, d *delivery, at time.Time) http.Header {
	GinkgoHelper()
	h, err := st.Benchling.SignWebhookAs(d.headers.Get(webhook.HeaderID), at, d.body)
	Expect(err).NotTo(HaveOccurred())
	return h
}

// bodyOfSize returns the webhook body of msg padded to exactly n bytes.
func bodyOfSize(st *emulate.Stack, msg map[string]any, n int) []byte {
	GinkgoHelper()
	msg["padding"] = ""
	short := len(st.Webhook(msg))
	Expect(short).To(BeNumerically("<=", n))
	msg["padding"] = strings.Repeat("x", n-short)
	body := st.Webhook(msg)
	Expect(body).To(HaveLen(n))
	return body
}

var _ = Describe("A duplicate delivery", Ordered, func() {
	var first, again emulate.Response
	var entry string
	BeforeAll(func() {
		var d delivery
		d, entry = signed(shared)
		first = post(shared, "/event", d.body, d.headers)
		// Benchling retries with the same webhook-id, a new timestamp and
		// signature, here while the first delivery is still being handled.
		h := resign(shared, &d, time.Now().Add(time.Second))
		var err error
		again, err = shared.Post(context.Background(), "/event", d.body, h)
		Expect(err).NotTo(HaveOccurred())
		packaged(shared, first.ExecutionArn)
	})

	It("answers 200 duplicate, as the deployed API does (no execution ARN)", func() {
		Expect(again.StatusCode).To(Equal(http.StatusOK))
		Expect(again.Status).To(Equal("duplicate"))
		Expect(again.ExecutionArn).To(BeEmpty())
	})

	It("starts nothing new: one webhook run, one packaging run, one message", func() {
		var runs int
		for _, ex := range shared.Executions() {
			if ex.ARN == first.ExecutionArn {
				runs++
			}
		}
		Expect(runs).To(Equal(1))
		children := packagingChildren(shared, first.ExecutionArn)
		Expect(children).To(HaveLen(1))
		Expect(tasksOf(shared, first.ExecutionArn)).To(HaveLen(1), "verify tasks")
		Expect(messagesFor(shared, packageName(shared, entry))).To(HaveLen(1))
		Expect(callsTo(shared, http.MethodGet, "/api/v2/entries/"+entry)).To(HaveLen(1))
	})
})

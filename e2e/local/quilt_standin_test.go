package local_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"benchling-webhook/internal/testkit/emulate"
	"benchling-webhook/internal/testkit/quiltstub"
	"benchling-webhook/internal/testkit/sandbox"
)

// packagerResult waits (on the packager's condition, bounded) for the
// stand-in to have processed a message with this body, and returns the
// last such result.
func packagerResult(st *emulate.Stack, body string) quiltstub.Result {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for n := 1; ; n++ {
		results, err := st.Packager().WaitProcessed(ctx, n)
		Expect(err).NotTo(HaveOccurred(), "the packager never processed %s", body)
		if len(results) < n {
			continue
		}
		if results[n-1].Body == body {
			return results[n-1]
		}
	}
}

// resubmit sends body to the packager directly, as SQS would deliver a
// message sent again, and waits for what became of it.
func resubmit(st *emulate.Stack, body string) quiltstub.Result {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	n := len(st.Packager().Results())
	Expect(st.Packager().Submit(ctx, body)).To(Succeed())
	results, err := st.Packager().WaitProcessed(ctx, n+1)
	Expect(err).NotTo(HaveOccurred())
	for _, r := range results[n:] {
		if r.Body == body {
			return r
		}
	}
	Fail("no result for the message")
	return quiltstub.Result{}
}

// revisionEvents returns the package-revision events for handle on the local bus.
func revisionEvents(st *emulate.Stack, handle string) []emulate.BusEvent {
	var out []emulate.BusEvent
	for _, e := range st.BusEvents() {
		if h, _, ok := e.Revision(); ok && h == handle {
			out = append(out, e)
		}
	}
	return out
}

func s3PutInput(bucket, key, data string) *s3.PutObjectInput {
	return &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(data)}
}

var _ = Describe("The Quilt packager stand-in", Ordered, func() {
	var (
		entry, name string
		dropped     = "notes/dropped by a person.txt"
		msg         emulate.Message
		first       quiltstub.Result
	)

	BeforeAll(func() {
		entry = newEntryID()
		name = packageName(shared, entry)
		addEntry(shared, entry, sandbox.EntryOptions{})
		putObject(shared, name+"/"+dropped, []byte("a person's note, left in the package's folder"))
		_, p := packaged(shared, sendEntryEvent(shared, entry))
		msgs := messagesFrom(shared, p.ARN)
		Expect(msgs).To(HaveLen(1))
		msg = msgs[0]
		first = packagerResult(shared, msg.Body)
	})

	It("builds the package from every object under the message's prefix, the dropped file too", func() {
		Expect(first.Err).NotTo(HaveOccurred())
		Expect(first.Registry).To(Equal(bucket(shared)))
		Expect(first.Name).To(Equal(name))
		var keys []string
		for _, e := range first.Entries {
			keys = append(keys, e.LogicalKey)
		}
		Expect(keys).To(ConsistOf(packageKeys(shared, entry)))
		Expect(keys).To(ContainElements(dropped, "entry.json", "README.md"))
	})

	It("writes the manifest and the named-package pointers where Quilt does", func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		objs, err := shared.S3.Objects(ctx, bucket(shared), ".quilt/named_packages/"+name+"/")
		Expect(err).NotTo(HaveOccurred())
		Expect(objs).To(HaveKeyWithValue(".quilt/named_packages/"+name+"/latest", []byte(first.TopHash)))
		Expect(objs).To(HaveKeyWithValue(".quilt/named_packages/"+name+"/"+first.Revision, []byte(first.TopHash)))
		man, err := shared.S3.Objects(ctx, bucket(shared), ".quilt/packages/"+first.TopHash)
		Expect(err).NotTo(HaveOccurred())
		lines := strings.Split(strings.TrimSpace(string(man[".quilt/packages/"+first.TopHash])), "\n")
		Expect(lines).To(HaveLen(1 + len(first.Entries)))
		var meta struct {
			UserMeta map[string]any `json:"user_meta"`
			Message  string         `json:"message"`
		}
		Expect(json.Unmarshal([]byte(lines[0]), &meta)).To(Succeed())
		Expect(meta.UserMeta).To(HaveKeyWithValue("id", entry), "the metadata is entry.json (metadata_uri, relative to the prefix)")
		Expect(meta.Message).To(Equal(decodeMessage(msg).CommitMessage))
	})

	It("puts the package-revision event on the local bus", func() {
		evs := revisionEvents(shared, name)
		Expect(evs).To(HaveLen(1))
		var ev map[string]any
		Expect(json.Unmarshal(evs[0].Event, &ev)).To(Succeed())
		Expect(ev).To(HaveKey("id"))
		Expect(ev).To(HaveKeyWithValue("account", emulate.AccountID))
		Expect(ev).To(HaveKeyWithValue("region", emulate.Region))
		Expect(ev["detail"]).To(Equal(map[string]any{"version": "0.1", "type": "created", "bucket": bucket(shared),
			"handle": name, "topHash": first.TopHash}))
		for _, d := range evs[0].Deliveries {
			Expect(d.Err).NotTo(HaveOccurred(), "rule %s target %s", d.Rule, d.Target)
		}
	})

	It("gives the same content the same top hash, and any change a new one", func() {
		again := resubmit(shared, msg.Body)
		Expect(again.Err).NotTo(HaveOccurred())
		Expect(again.TopHash).To(Equal(first.TopHash), "the same folder and message")

		putObject(shared, name+"/notes/another.txt", []byte("one more file"))
		changed := resubmit(shared, msg.Body)
		Expect(changed.Err).NotTo(HaveOccurred())
		Expect(changed.TopHash).NotTo(Equal(first.TopHash))

		putObject(shared, name+"/"+dropped, []byte("the note, edited"))
		edited := resubmit(shared, msg.Body)
		Expect(edited.TopHash).NotTo(BeElementOf(first.TopHash, changed.TopHash), "one file's bytes changed")
	})

	It("refuses a message with both metadata and metadata_uri, and makes no package", func() {
		before := len(revisionEvents(shared, name))
		body := strings.Replace(msg.Body, `"metadata_uri"`, `"metadata":{"a":1},"metadata_uri"`, 1)
		r := resubmit(shared, body)
		var ref *quiltstub.Refusal
		Expect(errors.As(r.Err, &ref)).To(BeTrue(), "refused: %v", r.Err)
		Expect(ref.Message).To(ContainSubstring("mutually exclusive"))
		Expect(r.TopHash).To(BeEmpty())
		Expect(revisionEvents(shared, name)).To(HaveLen(before), "and no event")
	})
})

var _ = Describe("A bucket with a Quilt workflow config", Ordered, func() {
	// A bucket of its own on the shared S3 server, so the config affects
	// no other spec; the message is the one our packaging machine sends
	// (no workflow), sent to the packager as the queue delivers it.
	var (
		wfBucket, body string
		result         quiltstub.Result
	)

	BeforeAll(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		wfBucket = "quilt-wf-" + randomHex(4)
		Expect(shared.S3.CreateBucket(ctx, wfBucket)).To(Succeed())
		c, err := shared.S3.Client(ctx)
		Expect(err).NotTo(HaveOccurred())
		put := func(key, data string) {
			_, err := c.PutObject(ctx, s3PutInput(wfBucket, key, data))
			Expect(err).NotTo(HaveOccurred())
		}
		put(quiltstub.WorkflowConfigKey, "version: \"1\"\nworkflows:\n  benchling:\n    name: Benchling entries\n")
		put("benchling/etr_wf1/entry.json", `{"id":"etr_wf1"}`)
		body = `{"source_prefix":"s3://` + wfBucket + `/benchling/etr_wf1/","registry":"` + wfBucket +
			`","package_name":"benchling/etr_wf1","metadata_uri":"entry.json","commit_message":"Benchling webhook payload - t"}`
		result = resubmit(shared, body)
	})

	It("makes no package for a message without a workflow, and records why", func() {
		var ref *quiltstub.Refusal
		Expect(errors.As(result.Err, &ref)).To(BeTrue(), "refused: %v", result.Err)
		Expect(ref.Kind).To(Equal(quiltstub.QuiltException))
		Expect(ref.Message).To(Equal("Workflow required, but none specified."))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		objs, err := shared.S3.Objects(ctx, wfBucket, ".quilt/packages/")
		Expect(err).NotTo(HaveOccurred())
		Expect(objs).To(BeEmpty())
		Expect(revisionEvents(shared, "benchling/etr_wf1")).To(BeEmpty())
	})

	It("packages the same message once it names the workflow", func() {
		r := resubmit(shared, strings.Replace(body, `{`, `{"workflow":"benchling",`, 1))
		Expect(r.Err).NotTo(HaveOccurred())
		Expect(r.TopHash).To(HaveLen(64))
		Expect(revisionEvents(shared, "benchling/etr_wf1")).To(HaveLen(1))
	})
})

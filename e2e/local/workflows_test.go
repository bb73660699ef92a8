package local_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"benchling-webhook/internal/quiltpkg"
	"benchling-webhook/internal/testkit/emulate"
	"benchling-webhook/internal/testkit/sandbox"
	"benchling-webhook/internal/testkit/testenv"
	"benchling-webhook/internal/workflow"
)

// putWorkflowConfig puts internal/workflow's testdata config.yml (a
// required workflow "benchling" whose metadata_schema wants an entry id,
// a displayId such as EXP123 and a webURL, and handle_pattern
// ^benchling/etr_) and its schema into the stack's bucket, where Quilt keeps
// them.
func putWorkflowConfig(st *emulate.Stack) {
	GinkgoHelper()
	root, err := testenv.RepoRoot()
	Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := st.S3.Client(ctx)
	Expect(err).NotTo(HaveOccurred())
	for key, file := range map[string]string{
		workflow.ConfigKey: "config.yml",
		".quilt/workflows/benchling-entry.schema.json": "benchling-entry.schema.json",
	} {
		data, err := os.ReadFile(filepath.Join(root, "internal", "workflow", "testdata", file))
		Expect(err).NotTo(HaveOccurred())
		// The testdata names the local stack's default bucket.
		data = bytes.ReplaceAll(data, []byte("s3://quilt-local/"), []byte("s3://"+bucket(st)+"/"))
		_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket(st)), Key: aws.String(key), Body: bytes.NewReader(data)})
		Expect(err).NotTo(HaveOccurred())
	}
}

// expectWorkflowRejected expects the packaging execution p to have failed
// with QuiltWorkflowRejected after one job export task exited 5 (not
// retried) with why in its result line, the lease released, and nothing
// in the package or the queue.
func expectWorkflowRejected(st *emulate.Stack, p *emulate.Execution, entry, why string) {
	GinkgoHelper()
	tasks := exportTasks(st, p.ARN)
	Expect(exitCodes(tasks)).To(Equal([]int{5}), "exit 5 is not retried\n%s", describeFailure(st, p.ARN))
	Expect(p.Cause).To(ContainSubstring("exit 5"))
	Expect(p.Cause).To(ContainSubstring(tasks[0].TaskArn), "the Cause names the task")
	order := stateOrder(p)
	Expect(order).To(ContainElements("QuiltWorkflowRejectedMessage", "ReleaseQuiltWorkflowRejected", "ReleaseLeaseOnFailure", "QuiltWorkflowRejected"))
	Expect(order).NotTo(ContainElement("SendToQuilt"))
	Expect(tasks[0].Stdout).To(ContainSubstring(`"errorKind":"workflow-rejected"`))
	Expect(tasks[0].Stdout).To(ContainSubstring(why))
	Expect(packageKeys(st, entry)).To(ConsistOf(metadataOnly), "nothing written\n%s", describeFailure(st, p.ARN))
	pkg := packageName(st, entry)
	Expect(listKeys(st, quiltpkg.ControlKey(pkg, quiltpkg.RecordName))).To(BeEmpty(), "no record: job export refused before its journal, its first write")
	Expect(listKeys(st, quiltpkg.ControlKey(pkg, quiltpkg.LeaseName))).To(BeEmpty(), "the lease is released")
	expectNoMessage(st, entry)
}

var _ = Describe("A bucket whose Quilt workflow config requires a workflow", func() {
	Describe("with no workflow configured (quilt-workflow none)", Ordered, func() {
		var st *emulate.Stack
		BeforeAll(func() {
			st = startStack(emulate.Options{})
			putWorkflowConfig(st)
		})

		It("fails as QuiltWorkflowRejected, before anything is written", func() {
			entry := newEntryID()
			addEntry(st, entry, sandbox.EntryOptions{})
			p := failedPackaging(st, sendEntryEvent(st, entry), "QuiltWorkflowRejected")
			expectWorkflowRejected(st, p, entry, "the bucket requires a workflow")
		})
	})

	Describe("with quilt-workflow benchling", Ordered, func() {
		var st *emulate.Stack
		BeforeAll(func() {
			st = startStack(emulate.Options{QuiltWorkflow: "benchling"})
			putWorkflowConfig(st)
		})

		It("packages an entry whose metadata fits the schema, and the message names the workflow", func() {
			entry := newEntryID()
			files := addEntry(st, entry, sandbox.EntryOptions{})
			_, p := packaged(st, sendEntryEvent(st, entry))
			Expect(exitCodes(exportTasks(st, p.ARN))).To(Equal([]int{0}))
			Expect(packageKeys(st, entry)).To(ContainElements(append(sortedKeys(files), "entry.json", "README.md")))
			msgs := messagesFrom(st, p.ARN)
			Expect(msgs).To(HaveLen(1))
			var body map[string]any
			Expect(json.Unmarshal([]byte(msgs[0].Body), &body)).To(Succeed())
			Expect(body).To(HaveKeyWithValue("workflow", "benchling"))
			Expect(body).To(HaveKeyWithValue("package_name", packageName(st, entry)))
			Expect(body).To(HaveKeyWithValue("metadata_uri", "entry.json"))
			Expect(body).To(HaveKey("commit_message"))
		})

		It("fails as QuiltWorkflowRejected, naming the schema, when entry.json fails it", func() {
			entry := newEntryID()
			addEntry(st, entry, sandbox.EntryOptions{DisplayID: "exp-1"})
			p := failedPackaging(st, sendEntryEvent(st, entry), "QuiltWorkflowRejected")
			expectWorkflowRejected(st, p, entry, `the metadata fails schema \"benchling-entry\" (s3://`+bucket(st)+`/.quilt/workflows/benchling-entry.schema.json): at '/displayId'`)
			Expect(strings.Count(exportTasks(st, p.ARN)[0].Stdout, "does not match pattern")).To(BeNumerically(">=", 1))
		})
	})
})

// The shared stack's bucket has no workflow config and its setting is
// "none": the message has no workflow field (decodeMessage refuses one),
// which the other specs check on every packaging.
var _ = Describe("A bucket without a Quilt workflow config", func() {
	It("gets messages without a workflow field", func() {
		entry := newEntryID()
		addEntry(shared, entry, sandbox.EntryOptions{})
		_, p := packaged(shared, sendEntryEvent(shared, entry))
		msgs := messagesFrom(shared, p.ARN)
		Expect(msgs).To(HaveLen(1))
		Expect(msgs[0].Body).NotTo(ContainSubstring(`"workflow"`))
		decodeMessage(msgs[0])
	})
})

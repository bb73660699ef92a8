package local_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"benchling-webhook/internal/emf/emftest"
	"benchling-webhook/internal/testkit/emulate"
	"benchling-webhook/internal/testkit/sandbox"
	"benchling-webhook/internal/testkit/testenv"
)

// fixtureDir holds real Benchling webhooks, byte for byte as captured (a
// copy of the project's shared fixtures, so the suite runs on a clean
// clone; TestFixturesAreTheSharedOnes keeps the copy exact).
const fixtureDir = "testdata/webhooks"

// The app the fixtures were captured from: the stack must be configured
// with it, since job verify accepts only webhooks for its app definition.
const (
	fixtureAppDefinitionID = "appdef_mI4jtZESUi"
	fixtureAppID           = "app_qdSsffBWrLoTVId4"
)

// fixtureCase is what one real webhook must do on the local stack.
type fixtureCase struct {
	// path is where Benchling posts it with Suffixed routing.
	path string
	// setup adds what the webhook names to the sandbox (never to the
	// fixture).
	setup func(st *emulate.Stack)
	// check inspects the finished webhook execution, the packaging
	// executions it started, and the fixture's bytes.
	check func(st *emulate.Stack, ex *emulate.Execution, children []*emulate.Execution, body []byte)
}

// fixtureMessage returns the fixture's message member, as sent.
func fixtureMessage(body []byte) json.RawMessage {
	GinkgoHelper()
	var env struct {
		Message json.RawMessage `json:"message"`
	}
	Expect(json.Unmarshal(body, &env)).To(Succeed())
	return env.Message
}

// expectPackaged expects one successful packaging execution of entry,
// with input.json the fixture's message and one message to Quilt.
func expectPackaged(st *emulate.Stack, ex *emulate.Execution, children []*emulate.Execution, entry string, body []byte) *emulate.Execution {
	GinkgoHelper()
	Expect(ex.Status).To(Equal("SUCCEEDED"), describeFailure(st, ex.ARN))
	Expect(children).To(HaveLen(1), describeFailure(st, ex.ARN))
	p := children[0]
	Expect(p.Status).To(Equal("SUCCEEDED"), describeFailure(st, p.ARN))
	var in struct{ Entity, PackageName string }
	Expect(json.Unmarshal(p.Input, &in)).To(Succeed())
	Expect(in.Entity).To(Equal(entry))
	Expect(in.PackageName).To(Equal(packageName(st, entry)))
	files := packageFiles(st, entry)
	Expect(files).To(HaveKey("entry.json"))
	Expect(string(files["input.json"])).To(MatchJSON(fixtureMessage(body)), "input.json is the webhook's message")
	Expect(messagesFrom(st, p.ARN)).To(HaveLen(1), describeFailure(st, p.ARN))
	return p
}

// expectCanvasLinks expects the canvas to have been read and then written
// with the links to entry's package.
func expectCanvasLinks(st *emulate.Stack, canvasID, entry string) {
	GinkgoHelper()
	Expect(statuses(canvasCalls(st, http.MethodGet, canvasID))).To(ContainElement(http.StatusOK), "GET canvas %s", canvasID)
	patches := canvasCalls(st, http.MethodPatch, canvasID)
	Expect(patches).NotTo(BeEmpty(), "PATCH canvas %s", canvasID)
	Expect(patches[0].Status).To(Equal(http.StatusOK))
	w := decodeCanvasWrite(patches[0].Body)
	Expect(w.Blocks).NotTo(BeEmpty())
	Expect(w.Blocks[0].Value).To(ContainSubstring("/packages/"+packageName(st, entry)), "the canvas links to the package")
}

// The entries the fixtures' canvases belong to: the fixtures do not say
// (a canvas's entry is read from Benchling), so the sandbox gets these.
const (
	createdCanvasEntry     = "etr_FixCreated1"
	initializedCanvasEntry = "etr_FixInit1"
)

// fixtureCases is the table: one case per file in fixtureDir.
var fixtureCases = map[string]fixtureCase{
	// v2.entry.updated.fields on channel "events": package its resourceId,
	// the commit time being the event's createdAt.
	"entry-updated.json": {
		path:  "/event",
		setup: func(st *emulate.Stack) { addEntry(st, "etr_0uKCQZ8f", sandbox.EntryOptions{}) },
		check: func(st *emulate.Stack, ex *emulate.Execution, children []*emulate.Execution, body []byte) {
			Expect(stateOrder(ex)).To(ContainElements("Route", "CheckEventEntryId"))
			p := expectPackaged(st, ex, children, "etr_0uKCQZ8f", body)
			m := decodeMessage(messagesFrom(st, p.ARN)[0])
			Expect(m.CommitMessage).To(Equal("Benchling webhook payload - 2025-03-14T14:15:25.035271+00:00"))
			Expect(callsTo(st, http.MethodGet, "/api/v2/app-canvases")).To(BeEmpty(), "an entry event touches no canvas")
		},
	},
	// The deprecated v2-beta.canvas.created, as an app created before
	// v2.canvas.created still gets it: the canvas's entry is packaged and
	// the canvas gets the links.
	"canvas-created.json": {
		path: "/canvas",
		setup: func(st *emulate.Stack) {
			addEntry(st, createdCanvasEntry, sandbox.EntryOptions{})
			st.Benchling.AddCanvas("cnvs_RkaAQhyb", createdCanvasEntry)
		},
		check: func(st *emulate.Stack, ex *emulate.Execution, children []*emulate.Execution, body []byte) {
			Expect(stateOrder(ex)).To(ContainElements("Route", "CheckCanvasId"))
			expectPackaged(st, ex, children, createdCanvasEntry, body)
			expectCanvasLinks(st, "cnvs_RkaAQhyb", createdCanvasEntry)
		},
	},
	// v2.canvas.initialized with a canvasId (and, in this capture, the
	// canvas id as resourceId): the canvas path, not NewCanvasLinks.
	"canvas-initialized.json": {
		path: "/canvas",
		setup: func(st *emulate.Stack) {
			addEntry(st, initializedCanvasEntry, sandbox.EntryOptions{})
			st.Benchling.AddCanvas("cnvs_ELM2Ecb4", initializedCanvasEntry)
		},
		check: func(st *emulate.Stack, ex *emulate.Execution, children []*emulate.Execution, body []byte) {
			order := stateOrder(ex)
			Expect(order).To(ContainElements("Route", "CheckCanvasId"))
			Expect(order).NotTo(ContainElement("NewCanvasLinks"))
			expectPackaged(st, ex, children, initializedCanvasEntry, body)
			expectCanvasLinks(st, "cnvs_ELM2Ecb4", initializedCanvasEntry)
		},
	},
	// The "Update package" button: the button names the entry its canvas
	// belongs to, which is packaged again.
	"app-interaction.json": {
		path: "/canvas",
		setup: func(st *emulate.Stack) {
			addEntry(st, "etr_OtsAuzfT", sandbox.EntryOptions{})
			st.Benchling.AddCanvas("cnvs_dYQTvmId", "etr_OtsAuzfT")
		},
		check: func(st *emulate.Stack, ex *emulate.Execution, children []*emulate.Execution, body []byte) {
			Expect(stateOrder(ex)).To(ContainElements("Route", "CheckButtonIds"))
			expectPackaged(st, ex, children, "etr_OtsAuzfT", body)
			patches := canvasCalls(st, http.MethodPatch, "cnvs_dYQTvmId")
			Expect(patches).NotTo(BeEmpty())
			Expect(patches[0].Status).To(Equal(http.StatusOK))
		},
	},
	// The app-installed capture is the installed app's record, with no
	// channel and no message: verified, then nothing to do.
	"app-installed.json": {
		path: "/lifecycle",
		check: func(st *emulate.Stack, ex *emulate.Execution, children []*emulate.Execution, _ []byte) {
			Expect(ex.Status).To(Equal("SUCCEEDED"), describeFailure(st, ex.ARN))
			Expect(stateOrder(ex)).To(HaveExactElements(noActionStates))
			Expect(children).To(BeEmpty())
		},
	},
}

// readFixture returns a fixture's bytes.
func readFixture(name string) []byte {
	GinkgoHelper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	Expect(err).NotTo(HaveOccurred())
	return b
}

// fixtureNames lists the fixtures in dir.
func fixtureNames(dir string) ([]string, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	for i, n := range names {
		names[i] = filepath.Base(n)
	}
	slices.Sort(names)
	return names, err
}

// deprecatedLines returns the DeprecatedWebhooks EMF lines of a task's stderr.
func deprecatedLines(stderr string) []map[string]any {
	GinkgoHelper()
	var out []map[string]any
	for _, line := range emftest.Lines([]byte(stderr)) {
		doc, err := emftest.Check(line)
		Expect(err).NotTo(HaveOccurred(), "EMF line %s", line)
		if _, ok := doc["DeprecatedWebhooks"]; ok {
			out = append(out, doc)
		}
	}
	return out
}

var _ = Describe("Real webhooks (testdata/webhooks), verbatim", Ordered, func() {
	var st *emulate.Stack
	BeforeAll(func() {
		st = startStack(emulate.Options{Sandbox: sandbox.Options{AppDefinitionID: fixtureAppDefinitionID, AppID: fixtureAppID}})
	})

	It("has an expected route and effects for every fixture", func() {
		names, err := fixtureNames(fixtureDir)
		Expect(err).NotTo(HaveOccurred())
		Expect(names).NotTo(BeEmpty())
		Expect(names).To(ConsistOf(sortedKeys(fixtureCases)))
	})

	for _, name := range sortedKeys(fixtureCases) {
		c := fixtureCases[name]
		It(name+" on "+c.path, func() {
			body := readFixture(name)
			if c.setup != nil {
				c.setup(st)
			}
			q := settle(st)
			// Signed by the sandbox's key over the file's exact bytes.
			resp, err := st.Send(context.Background(), c.path, body)
			Expect(err).NotTo(HaveOccurred())
			Expect(resp.StatusCode).To(Equal(http.StatusAccepted), "gateway answer: %+v", resp)
			ex, children := waitTree(st, resp.ExecutionArn)
			res, verify := verifyOutcome(st, ex.ARN)
			Expect(res.Verified).To(BeTrue(), describeFailure(st, ex.ARN))
			Expect(deprecatedLines(verify.Stderr)).To(BeEmpty(), "no fixture is marked deprecated")
			c.check(st, ex, children, body)
			if len(children) == 0 {
				expectNoEffects(st, ex.ARN, q)
			}
		})
	}

	It("counts a real payload marked deprecated, and still handles it", func() {
		// The one change: Benchling's own flag, flipped in the bytes.
		body := bytes.Replace(readFixture("canvas-created.json"), []byte(`"deprecated": false`), []byte(`"deprecated": true`), 1)
		Expect(body).To(ContainSubstring(`"deprecated": true`))
		resp, err := st.Send(context.Background(), "/canvas", body)
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.StatusCode).To(Equal(http.StatusAccepted), "gateway answer: %+v", resp)
		ex, children := waitTree(st, resp.ExecutionArn)
		Expect(ex.Status).To(Equal("SUCCEEDED"), describeFailure(st, ex.ARN))
		Expect(stateOrder(ex)).To(ContainElement("CheckCanvasId"))
		Expect(children).To(HaveLen(1))
		_, verify := verifyOutcome(st, ex.ARN)
		lines := deprecatedLines(verify.Stderr)
		Expect(lines).To(HaveLen(1), verify.Stderr)
		Expect(lines[0]["Command"]).To(Equal("verify"))
		Expect(lines[0]["messageType"]).To(Equal("v2-beta.canvas.created"))
		Expect(verify.Stderr).To(ContainSubstring("deprecated webhook"))
	})
})

// TestFixturesAreTheSharedOnes: the copies in testdata/webhooks are the
// project's shared fixtures, byte for byte (BW_SHARED_FIXTURES, default
// ../shared/fixtures/webhooks next to the repository); skipped where that
// directory does not exist, as on a clean clone.
func TestFixturesAreTheSharedOnes(t *testing.T) {
	dir := os.Getenv("BW_SHARED_FIXTURES")
	if dir == "" {
		root, err := testenv.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, "..", "shared", "fixtures", "webhooks")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no shared fixtures at %s: %v", dir, err)
	}
	shared, err := fixtureNames(dir)
	if err != nil {
		t.Fatal(err)
	}
	mine, err := fixtureNames(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(shared, mine) {
		t.Fatalf("fixtures in %s: %v; in %s: %v", dir, shared, fixtureDir, mine)
	}
	for _, name := range shared {
		want, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(fixtureDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s (copy it again: cp %s %s)", filepath.Join(fixtureDir, name),
				filepath.Join(dir, name), filepath.Join(dir, name), fixtureDir)
		}
	}
}

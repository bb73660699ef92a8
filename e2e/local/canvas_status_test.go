package local_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"benchling-webhook/internal/quiltpkg"
	"benchling-webhook/internal/testkit/emulate"
	"benchling-webhook/internal/testkit/sandbox"
)

// The status lines the canvas machine writes (statemachine/canvas.asl.json),
// by their start.
const (
	lineUpdating     = "> **Updating…** The entry is being packaged; the links show the last package until Quilt has built the new one."
	lineSent         = "> **Updating…** Quilt is building the package"
	lineUpToDate     = "> **Up to date:** revision of "
	lineFailed       = "> **Update failed:** "
	lineStillWaiting = "> **Still waiting:** no revision from Quilt "
)

// revisionEvent is Quilt's package-revision event for handle in bucket.
func revisionEvent(bucket, handle, topHash string, at time.Time) []byte {
	GinkgoHelper()
	ev, err := json.Marshal(map[string]any{
		"version": "0", "id": "e2e-" + randomHex(8), "detail-type": "package-revision", "source": "com.quiltdata",
		"account": emulate.AccountID, "time": at.UTC().Format(time.RFC3339), "region": emulate.Region, "resources": []any{},
		"detail": map[string]any{"version": "0.1", "type": "created", "bucket": bucket, "handle": handle, "topHash": topHash},
	})
	Expect(err).NotTo(HaveOccurred())
	return ev
}

// deliverRevision puts Quilt's package-revision event for handle in bucket
// on the local default bus, whose rules are the addon's: PackageRevisionRule
// must start exactly one canvas execution with it; deliverRevision waits
// for that execution.
func deliverRevision(st *emulate.Stack, bucket, handle, topHash string, at time.Time) *emulate.Execution {
	GinkgoHelper()
	ev := revisionEvent(bucket, handle, topHash, at)
	Expect(st.PutEvent(context.Background(), ev)).To(Succeed())
	var d []emulate.Delivery
	for _, be := range st.BusEvents() { // the Quilt stand-in puts events too
		if bytes.Equal(be.Event, ev) {
			d = be.Deliveries
		}
	}
	Expect(d).To(HaveLen(1), "PackageRevisionRule delivers the event once")
	Expect(d[0].Err).NotTo(HaveOccurred())
	Expect(d[0].Machine).To(Equal(emulate.Canvas))
	return wait(st, d[0].ExecutionArn)
}

// quiltNeverAnswers makes the Quilt stand-in drop entry's messages, as a
// Quilt stack that is down would: no package, no revision event.
func quiltNeverAnswers(st *emulate.Stack, entry string) {
	st.Packager().Ignore(func(body string) bool { return strings.Contains(body, "/"+entry+"/") })
}

// startRevision starts the canvas machine directly with the event, as a
// rule with a wider pattern would: the machine's own checks.
func startRevision(st *emulate.Stack, bucket, handle, topHash string, at time.Time) *emulate.Execution {
	GinkgoHelper()
	arn, err := st.StartExecution(context.Background(), emulate.Canvas, "", revisionEvent(bucket, handle, topHash, at))
	Expect(err).NotTo(HaveOccurred())
	return wait(st, arn)
}

// reportStatus starts the canvas machine with a status, as the webhook
// and packaging machines do, and waits for it.
func reportStatus(st *emulate.Stack, entry string, status map[string]any) *emulate.Execution {
	GinkgoHelper()
	in, err := json.Marshal(map[string]any{"entity": entry, "status": status})
	Expect(err).NotTo(HaveOccurred())
	arn, err := st.StartExecution(context.Background(), emulate.Canvas, "", in)
	Expect(err).NotTo(HaveOccurred())
	return wait(st, arn)
}

// canvasExecutions returns the canvas machine's executions for entry.
func canvasExecutions(st *emulate.Stack, entry string) []*emulate.Execution {
	var out []*emulate.Execution
	for _, ex := range st.Executions() {
		if ex.Machine == emulate.Canvas && strings.Contains(string(ex.Input), entry) {
			out = append(out, ex)
		}
	}
	return out
}

// settleCanvas waits until no canvas execution for entry runs.
func settleCanvas(st *emulate.Stack, entry string) {
	GinkgoHelper()
	Eventually(func() []string {
		var running []string
		for _, ex := range canvasExecutions(st, entry) {
			if ex.Status == "RUNNING" {
				running = append(running, ex.Name)
			}
		}
		return running
	}, waitTimeout, 20*time.Millisecond).Should(BeEmpty(), "canvas executions for %s", entry)
	for _, ex := range canvasExecutions(st, entry) {
		Expect(ex.Status).To(Equal("SUCCEEDED"), describeFailure(st, ex.ARN))
	}
}

// canvasNow returns the canvas as Benchling holds it now.
func canvasNow(st *emulate.Stack, id string) canvasWrite {
	GinkgoHelper()
	b, ok := st.Benchling.Canvas(id)
	Expect(ok).To(BeTrue(), "canvas %s", id)
	return decodeCanvasWrite(b)
}

// statusLine is the last line of a canvas write's markdown: its status.
func statusLine(w canvasWrite) string {
	if len(w.Blocks) == 0 {
		return ""
	}
	md := w.Blocks[0].Value
	return md[strings.LastIndex(md, "\n")+1:]
}

// patchLines returns the status lines of the successful PATCHes of canvas
// id, in order.
func patchLines(st *emulate.Stack, id string) []string {
	var out []string
	for _, c := range callsTo(st, http.MethodPatch, "/api/v2/app-canvases/"+id) {
		if c.Status == http.StatusOK {
			out = append(out, statusLine(decodeCanvasWrite(c.Body)))
		}
	}
	return out
}

// callsFor returns the sandbox calls after the first n that concern
// entry (its path or body names it, or one of its canvases): specs on the
// shared stack run one after another, but an earlier spec's canvas
// executions may still be patching their own canvases.
func callsFor(st *emulate.Stack, n int, entry string, canvases ...string) []sandbox.Call {
	var out []sandbox.Call
	for _, c := range callsSince(st, n) {
		mine := strings.Contains(c.Path, entry) || strings.Contains(string(c.Body), entry)
		for _, id := range canvases {
			mine = mine || strings.Contains(c.Path, id)
		}
		if mine {
			out = append(out, c)
		}
	}
	return out
}

// readStatus reads entry's status.json (nil when there is none).
func readStatus(st *emulate.Stack, entry string) *quiltpkg.CanvasStatus {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := st.S3.Client(ctx)
	Expect(err).NotTo(HaveOccurred())
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket(st)),
		Key: aws.String(quiltpkg.ControlKey(packageName(st, entry), quiltpkg.StatusName))})
	if err != nil && strings.Contains(err.Error(), "NoSuchKey") {
		return nil
	}
	Expect(err).NotTo(HaveOccurred())
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	Expect(err).NotTo(HaveOccurred())
	var s quiltpkg.CanvasStatus
	Expect(json.Unmarshal(b, &s)).To(Succeed(), "status.json %s", b)
	return &s
}

// clickButton clicks the Update Package button of canvas (of entry).
func clickButton(st *emulate.Stack, entry, canvas string) sent {
	GinkgoHelper()
	return send(st, "/canvas", map[string]any{"type": "v2.canvas.userInteracted",
		"buttonId": entry, "canvasId": canvas, "featureId": sandbox.DefaultFeatureID, "userId": "ent_e2e"})
}

// expectStatusCanvas checks a canvas as it is now: the links block and
// the button of entry, and a status line starting with line.
func expectStatusCanvas(st *emulate.Stack, id, entry, line string) {
	GinkgoHelper()
	w := canvasNow(st, id)
	Expect(statusLine(w)).To(HavePrefix(line), "canvas %s", id)
	expectLinks(st, w, entry, strings.TrimPrefix(statusLine(w), "> "))
}

var _ = Describe("Canvas status", func() {
	Describe("after a click, and Quilt's revision", Ordered, func() {
		var entry, canvasA, canvasB, topHash string
		var click, created sent
		BeforeAll(func() {
			entry, canvasA, canvasB = newEntryID(), "cnvs_"+randomHex(6), "cnvs_"+randomHex(6)
			quiltNeverAnswers(shared, entry) // the spec delivers its own revisions, after "still waiting"
			addEntry(shared, entry, sandbox.EntryOptions{})
			shared.Benchling.AddCanvas(canvasA, entry)
			shared.Benchling.AddCanvas(canvasB, entry)
			click = clickButton(shared, entry, canvasA)
			packaged(shared, click.Response.ExecutionArn)
			// A second canvas of the entry becomes known by its own webhook.
			created = send(shared, "/canvas", map[string]any{"type": "v2.canvas.created", "canvasId": canvasB,
				"featureId": sandbox.DefaultFeatureID, "resourceId": entry, "userId": "ent_e2e"})
			packaged(shared, created.Response.ExecutionArn)
			settleCanvas(shared, entry)
			topHash = randomHex(32)
		})

		It("shows Updating as soon as the webhook is verified, with the links and the button", func() {
			lines := patchLines(shared, canvasA)
			Expect(lines).NotTo(BeEmpty())
			Expect(lines[0]).To(Equal(lineUpdating), "the first status of the clicked canvas")
			first := callsTo(shared, http.MethodPatch, "/api/v2/app-canvases/"+canvasA)[0]
			expectLinks(shared, decodeCanvasWrite(first.Body), entry, strings.TrimPrefix(lineUpdating, "> "))
			ex := wait(shared, click.Response.ExecutionArn)
			Expect(stateOrder(ex)).To(ContainElements("WriteCanvasMapping", "ReportUpdating"))
			Expect(stateOrder(ex)).NotTo(ContainElement("PatchCanvas"), "the webhook machine patches no canvas itself")
		})

		It("records each canvas of the entry in its own mapping object", func() {
			prefix := quiltpkg.CanvasesPrefix(packageName(shared, entry))
			Expect(listKeys(shared, prefix)).To(ConsistOf(
				quiltpkg.CanvasKey(packageName(shared, entry), canvasA), quiltpkg.CanvasKey(packageName(shared, entry), canvasB)))
		})

		It("says Quilt is building the package once the files are sent, then still waiting without a revision", func() {
			Expect(patchLines(shared, canvasA)).To(ContainElement(HavePrefix(lineSent)))
			// Waits last WaitMs on the local stack: the watch is over.
			expectStatusCanvas(shared, canvasA, entry, lineStillWaiting)
			expectStatusCanvas(shared, canvasB, entry, lineStillWaiting)
			Expect(statusLine(canvasNow(shared, canvasA))).To(ContainSubstring("900 seconds after the files were sent"))
			s := readStatus(shared, entry)
			Expect(s.State).To(Equal(quiltpkg.StatusStillWaiting))
			Expect(s.SentAt).NotTo(BeEmpty())
		})

		It("shows Up to date with the revision's time, top hash and link on every canvas of the entry", func() {
			at := time.Now().Add(time.Second)
			ex := deliverRevision(shared, bucket(shared), packageName(shared, entry), topHash, at)
			Expect(ex.Status).To(Equal("SUCCEEDED"), describeFailure(shared, ex.ARN))
			link := quiltpkg.RevisionLink(shared.Settings()["CatalogHost"], bucket(shared), packageName(shared, entry), topHash)
			want := fmt.Sprintf("%s%s, top hash `%s` ([this revision](%s)).", lineUpToDate, at.UTC().Format(time.RFC3339), topHash, link)
			for _, id := range []string{canvasA, canvasB} {
				Expect(statusLine(canvasNow(shared, id))).To(Equal(want), "canvas %s", id)
				expectStatusCanvas(shared, id, entry, lineUpToDate)
			}
			s := readStatus(shared, entry)
			Expect(s.State).To(Equal(quiltpkg.StatusUpToDate))
			Expect(s.TopHash).To(Equal(topHash))
			Expect(s.Link).To(Equal(link))
			Expect(s.At).To(Equal(at.UTC().Format(time.RFC3339)))
		})

		It("never goes backwards: an older revision delivered late changes nothing", func() {
			before := callCount(shared)
			s := readStatus(shared, entry)
			ex := deliverRevision(shared, bucket(shared), packageName(shared, entry), randomHex(32), time.Now().Add(-time.Hour))
			Expect(ex.Status).To(Equal("SUCCEEDED"), describeFailure(shared, ex.ARN))
			Expect(stateOrder(ex)).To(ContainElement("Outdated"))
			Expect(readStatus(shared, entry)).To(Equal(s), "status.json unchanged")
			Expect(callsFor(shared, before, entry, canvasA, canvasB)).To(BeEmpty(), "no canvas PATCH")
		})

		It("orders a status by its report time: Updating reported now is behind a revision of a later second", func() {
			// The revision above is stamped a second ahead; a report made now
			// (the canvas execution's start) is older, so it is not written.
			ex := reportStatus(shared, entry, map[string]any{"state": "updating", "run": "e2e"})
			Expect(ex.Status).To(Equal("SUCCEEDED"), describeFailure(shared, ex.ARN))
			Expect(stateOrder(ex)).To(ContainElement("Outdated"))
			Expect(readStatus(shared, entry).TopHash).To(Equal(topHash))
		})

		It("ignores a revision of another bucket, another prefix or a handle that is no entry", func() {
			before := callCount(shared)
			s := readStatus(shared, entry)
			later := time.Now().Add(time.Hour)
			for name, ev := range map[string][2]string{
				"another bucket":  {"other-bucket", packageName(shared, entry)},
				"another prefix":  {bucket(shared), "other/" + entry},
				"no entry id":     {bucket(shared), shared.Settings()["PackagePrefix"] + "/etr_a_b"},
				"three parts":     {bucket(shared), packageName(shared, entry) + "/x"},
				"not etr_":        {bucket(shared), shared.Settings()["PackagePrefix"] + "/notes"},
				"empty entry":     {bucket(shared), shared.Settings()["PackagePrefix"] + "/etr_"},
				"dot dot in name": {bucket(shared), shared.Settings()["PackagePrefix"] + "/etr_x/../" + entry},
			} {
				ex := startRevision(shared, ev[0], ev[1], randomHex(32), later)
				Expect(ex.Status).To(Equal("SUCCEEDED"), "%s\n%s", name, describeFailure(shared, ex.ARN))
				Expect(stateOrder(ex)).To(ContainElement("NotOurRevision"), name)
			}
			Expect(readStatus(shared, entry)).To(Equal(s), "status.json unchanged")
			Expect(callsFor(shared, before, entry, canvasA, canvasB)).To(BeEmpty(), "no Benchling call")
		})

		It("forgets a canvas Benchling no longer has, and still updates the others", func() {
			gone := "cnvs_" + randomHex(6)
			putObject(shared, quiltpkg.CanvasKey(packageName(shared, entry), gone),
				[]byte(`{"canvasId":"`+gone+`","entity":"`+entry+`"}`))
			newer := randomHex(32)
			ex := deliverRevision(shared, bucket(shared), packageName(shared, entry), newer, time.Now().Add(3*time.Second))
			Expect(ex.Status).To(Equal("SUCCEEDED"), describeFailure(shared, ex.ARN))
			Expect(callsTo(shared, http.MethodPatch, "/api/v2/app-canvases/"+gone)).To(HaveLen(1))
			Expect(listKeys(shared, quiltpkg.CanvasesPrefix(packageName(shared, entry)))).To(ConsistOf(
				quiltpkg.CanvasKey(packageName(shared, entry), canvasA), quiltpkg.CanvasKey(packageName(shared, entry), canvasB)))
			for _, id := range []string{canvasA, canvasB} {
				expectStatusCanvas(shared, id, entry, lineUpToDate)
				Expect(statusLine(canvasNow(shared, id))).To(ContainSubstring(newer), "canvas %s", id)
			}
		})
	})

	Describe("a revision before the timeout", Ordered, func() {
		// The whole way, on its own stack: the click's packaging run sends
		// the message, the Quilt stand-in builds the package and puts its
		// package-revision event on the local bus, PackageRevisionRule
		// starts the canvas machine. The watch waits 3 s here
		// (StatusWaitMs), time enough for the revision to come first.
		var st *emulate.Stack
		var entry, canvas, topHash string
		var sentRun *emulate.Execution
		BeforeAll(func() {
			st = startStack(emulate.Options{StatusWaitMs: 3000})
			entry, canvas = newEntryID(), "cnvs_"+randomHex(6)
			addEntry(st, entry, sandbox.EntryOptions{})
			st.Benchling.AddCanvas(canvas, entry)
			_, p := packaged(st, clickButton(st, entry, canvas).Response.ExecutionArn)
			for _, c := range st.Children(p.ARN) {
				if c.Machine == emulate.Canvas {
					sentRun = c
				}
			}
			Expect(sentRun).NotTo(BeNil(), "the packaging run reported sent")
			var body string
			for _, m := range st.Messages() {
				if m.Execution == p.ARN {
					body = m.Body
				}
			}
			Expect(body).NotTo(BeEmpty(), "the packaging run sent a Quilt message")
			r := packagerResult(st, body)
			Expect(r.Err).NotTo(HaveOccurred())
			topHash = r.TopHash
			evs := revisionEvents(st, packageName(st, entry))
			Expect(evs).To(HaveLen(1))
			Expect(evs[0].Deliveries).To(HaveLen(1))
			ex := wait(st, evs[0].Deliveries[0].ExecutionArn)
			Expect(ex.Status).To(Equal("SUCCEEDED"), describeFailure(st, ex.ARN))
			settleCanvas(st, entry)
		})

		It("shows Up to date with the package's top hash, and the watch that ends later leaves it", func() {
			expectStatusCanvas(st, canvas, entry, lineUpToDate)
			Expect(statusLine(canvasNow(st, canvas))).To(ContainSubstring(topHash))
			Expect(patchLines(st, canvas)).NotTo(ContainElement(HavePrefix(lineStillWaiting)))
			Expect(stateOrder(wait(st, sentRun.ARN))).To(ContainElements("WaitForRevision", "NoLongerWaiting"))
			Expect(readStatus(st, entry).TopHash).To(Equal(topHash))
		})
	})

	Describe("a new canvas (v2.canvas.initialized without a canvasId)", Ordered, func() {
		var entry, canvas string
		BeforeAll(func() {
			entry = newEntryID()
			quiltNeverAnswers(shared, entry)
			addEntry(shared, entry, sandbox.EntryOptions{})
			r := send(shared, "/canvas", map[string]any{"type": "v2.canvas.initialized",
				"featureId": sandbox.DefaultFeatureID, "resourceId": entry, "userId": "ent_e2e"})
			ex, _ := packaged(shared, r.Response.ExecutionArn)
			var out struct {
				Canvas struct{ CanvasID string } `json:"canvas"`
			}
			Expect(json.Unmarshal(ex.Output, &out)).To(Succeed())
			canvas = out.Canvas.CanvasID
			settleCanvas(shared, entry)
		})

		It("is created showing Updating, and recorded, so later statuses reach it", func() {
			creates := callsTo(shared, http.MethodPost, "/api/v2/app-canvases")
			var mine []canvasWrite
			for _, c := range creates {
				if w := decodeCanvasWrite(c.Body); w.ResourceID == entry {
					mine = append(mine, w)
				}
			}
			Expect(mine).To(HaveLen(1))
			Expect(statusLine(mine[0])).To(Equal(lineUpdating))
			Expect(listKeys(shared, quiltpkg.CanvasesPrefix(packageName(shared, entry)))).To(ConsistOf(
				quiltpkg.CanvasKey(packageName(shared, entry), canvas)))
			expectStatusCanvas(shared, canvas, entry, lineStillWaiting)
		})
	})

	// failedWithCanvas clicks the button of a new canvas of entry (added
	// with opt), expects the packaging execution to fail with wantError,
	// waits for the canvas machine and returns the canvas and the failed
	// packaging execution.
	failedWithCanvas := func(entry string, opt sandbox.EntryOptions, fault func(), wantError string) (string, *emulate.Execution) {
		GinkgoHelper()
		canvas := "cnvs_" + randomHex(6)
		addEntry(shared, entry, opt)
		shared.Benchling.AddCanvas(canvas, entry)
		if fault != nil {
			fault()
		}
		p := failedPackaging(shared, clickButton(shared, entry, canvas).Response.ExecutionArn, wantError)
		settleCanvas(shared, entry)
		return canvas, p
	}

	It("says the export failed when Benchling's export fails, and the run still fails as ExportFailed", func() {
		entry := newEntryID()
		canvas, p := failedWithCanvas(entry, sandbox.EntryOptions{Export: sandbox.ExportSpec{Fail: true}}, nil, "ExportFailed")
		Expect(p.Cause).To(ContainSubstring("FAILED"), "the original Cause")
		Expect(stateOrder(p)).To(ContainElements("ReleaseLeaseOnFailure", "ReportFailure", "FailAs", "ExportFailed"))
		line := statusLine(canvasNow(shared, canvas))
		Expect(line).To(HavePrefix(lineFailed + "export failed: Benchling's export task failed ("))
		Expect(line).To(ContainSubstring("packaging run " + p.Name))
		expectStatusCanvas(shared, canvas, entry, lineFailed)
		s := readStatus(shared, entry)
		Expect(s.State).To(Equal(quiltpkg.StatusFailed))
		Expect(s.Failure).To(Equal("ExportFailed"))
		Expect(s.Run).To(Equal(p.Name))
	})

	It("says Benchling failed when a Benchling call fails, and the run still fails as BenchlingRequestFailed", func() {
		entry := newEntryID()
		canvas, p := failedWithCanvas(entry, sandbox.EntryOptions{}, func() {
			shared.Benchling.FailNext(http.MethodGet, "/api/v2/entries/"+entry, http.StatusBadRequest, 1)
		}, "BenchlingRequestFailed")
		Expect(stateOrder(p)).To(ContainElements("ReportFailure", "FailAs"))
		Expect(statusLine(canvasNow(shared, canvas))).To(HavePrefix(lineFailed + "Benchling error: a Benchling API call kept failing ("))
		Expect(readStatus(shared, entry).Failure).To(Equal("BenchlingRequestFailed"))
	})

	It("says the archive was refused when job export refuses it", func() {
		entry := newEntryID()
		canvas := "cnvs_" + randomHex(6)
		shared.Benchling.AddEntry(entry, sandbox.EntryOptions{Export: sandbox.ExportSpec{Zip: []byte("not a zip at all")}})
		shared.Benchling.AddCanvas(canvas, entry)
		failedPackaging(shared, clickButton(shared, entry, canvas).Response.ExecutionArn, "ExportRejected")
		settleCanvas(shared, entry)
		Expect(statusLine(canvasNow(shared, canvas))).To(HavePrefix(lineFailed + "archive refused: "))
	})
})

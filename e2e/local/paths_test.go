package local_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"benchling-webhook/internal/testkit/emulate"
	"benchling-webhook/internal/testkit/sandbox"
)

// The status line under the Quilt links when a webhook starts packaging
// (the canvas machine's "updating"; see canvas_status_test.go for the rest).
const (
	notePackaging = "**Updating…** The entry is being packaged; the links show the last package until Quilt has built the new one."
	noteButton    = notePackaging
)

// pathRun is one webhook that packages an entry, as BeforeAll ran it.
type pathRun struct {
	st      *emulate.Stack
	entry   string
	files   map[string][]byte // the export's files, as zipped
	sent    sent
	webhook *emulate.Execution
	pack    *emulate.Execution
	// keysAtMessage lists the package's keys the moment the packager
	// message appeared on the queue.
	keysAtMessage []string
}

// deliver adds nothing to the sandbox: it sends msg to path for entry (whose
// export serves files), waits for both executions to succeed, and records
// the package's keys when the queue message appeared.
func deliver(st *emulate.Stack, path, entry string, files map[string][]byte, msg map[string]any) *pathRun {
	GinkgoHelper()
	r := &pathRun{st: st, entry: entry, files: files}
	atMessage := watchQueue(st, entry)
	r.sent = send(st, path, msg)
	r.webhook, r.pack = packaged(st, r.sent.Response.ExecutionArn)
	r.keysAtMessage = atMessage()
	return r
}

// itPackagesTheEntry declares the specs every packaging path shares: the
// package in S3 and the message to Quilt. eventTime checks the time in the
// commit message.
func itPackagesTheEntry(get func() *pathRun, eventTime func(r *pathRun, t string)) {
	It("packages exactly the entry's export files, byte for byte, plus entry.json, input.json and README.md", func() {
		r := get()
		got := packageFiles(r.st, r.entry)
		want := append(sortedKeys(r.files), "README.md", "entry.json", "input.json")
		Expect(sortedKeys(got)).To(ConsistOf(want), describeFailure(r.st, r.webhook.ARN))
		for name, data := range r.files {
			Expect(got[name]).To(Equal(data), "content of %s", name)
		}
	})

	It("writes entry.json equal to the entry the Benchling API serves", func() {
		r := get()
		Expect(string(packageFiles(r.st, r.entry)["entry.json"])).To(MatchJSON(fetchEntry(r.st, r.entry)))
	})

	It("writes input.json equal to the webhook's message", func() {
		r := get()
		var body struct {
			Message json.RawMessage `json:"message"`
		}
		Expect(json.Unmarshal(r.sent.Body, &body)).To(Succeed())
		Expect(string(packageFiles(r.st, r.entry)["input.json"])).To(MatchJSON(body.Message))
	})

	It("renders README.md with the display id, every author and a row per exported file", func() {
		r := get()
		files := packageFiles(r.st, r.entry)
		readme := string(files["README.md"])
		var e struct {
			DisplayID string `json:"displayId"`
			Authors   []struct {
				Name, Handle, ID string
			} `json:"authors"`
		}
		Expect(json.Unmarshal(files["entry.json"], &e)).To(Succeed())
		Expect(e.DisplayID).NotTo(BeEmpty())
		Expect(e.Authors).NotTo(BeEmpty())
		Expect(readme).To(ContainSubstring(e.DisplayID))
		for _, a := range e.Authors {
			Expect(readme).To(ContainSubstring(a.Name), "author %s", a.Name)
			Expect(readme).To(ContainSubstring(a.Handle+"@"+a.ID), "author %s", a.Name)
		}
		for name := range r.files {
			Expect(readme).To(ContainSubstring("| ["+name+"]("), "README row for %s", name)
		}
		Expect(strings.Count(readme, "\n| [")).To(Equal(len(r.files)), "one row per file:\n%s", readme)
	})

	It("sends one message to the Quilt packager, only after every file is in S3", func() {
		r := get()
		msgs := messagesFrom(r.st, r.pack.ARN)
		Expect(msgs).To(HaveLen(1), describeFailure(r.st, r.webhook.ARN))
		m := decodeMessage(msgs[0])
		pkg := packageName(r.st, r.entry)
		Expect(m.SourcePrefix).To(Equal("s3://" + bucket(r.st) + "/" + pkg + "/"))
		Expect(m.Registry).To(Equal(bucket(r.st)))
		Expect(m.PackageName).To(Equal(pkg))
		Expect(m.MetadataURI).To(Equal("entry.json"))
		Expect(m.CommitMessage).To(HavePrefix("Benchling webhook payload - "))
		eventTime(r, strings.TrimPrefix(m.CommitMessage, "Benchling webhook payload - "))

		Expect(r.keysAtMessage).To(ContainElement("README.md"))
		Expect(r.keysAtMessage).To(ConsistOf(packageKeys(r.st, r.entry)), "keys when the message was sent vs. now")
		order := stateOrder(r.pack)
		Expect(order).To(ContainElements("RunExport", "SendToQuilt"))
		Expect(indexOf(order, "RunExport")).To(BeNumerically("<", indexOf(order, "SendToQuilt")), "state order %v", order)
		Expect(messagesFor(r.st, pkg)).To(HaveLen(1), "messages for %s on the whole queue", pkg)
	})
}

// eventTimeIs expects the commit message to carry exactly want.
func eventTimeIs(want string) func(*pathRun, string) {
	return func(_ *pathRun, got string) {
		GinkgoHelper()
		Expect(got).To(Equal(want), "commit message time: the event's createdAt, not the time of the run")
	}
}

// eventTimeIsStart expects the commit message to carry the webhook
// execution's start time (canvas and button events have no createdAt).
func eventTimeIsStart(r *pathRun, got string) {
	GinkgoHelper()
	t, err := time.Parse(time.RFC3339Nano, got)
	Expect(err).NotTo(HaveOccurred(), "commit message time %q", got)
	Expect(t).To(BeTemporally(">=", r.webhook.StartDate.Add(-2*time.Second)))
	Expect(t).To(BeTemporally("<=", r.webhook.StopDate.Add(2*time.Second)))
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// messagesFor returns every queue message for package pkg.
func messagesFor(st *emulate.Stack, pkg string) []emulate.Message {
	var out []emulate.Message
	for _, m := range st.Messages() {
		if strings.Contains(m.Body, `"package_name":"`+pkg+`"`) {
			out = append(out, m)
		}
	}
	return out
}

// canvasCalls returns the calls with method on canvas id.
func canvasCalls(st *emulate.Stack, method, id string) []sandbox.Call {
	return callsTo(st, method, "/api/v2/app-canvases/"+id)
}

var _ = Describe("Entry events on /event", func() {
	for _, typ := range []string{"v2.entry.updated.fields", "v2.entry.created"} {
		Describe(typ, Ordered, func() {
			var r *pathRun
			var createdAt string
			BeforeAll(func() {
				entry := newEntryID()
				files := addEntry(shared, entry, sandbox.EntryOptions{DisplayID: "EXP" + randomHex(4)})
				createdAt = pastTime()
				msg := map[string]any{"type": typ, "id": "evt_" + randomHex(6), "resourceId": entry, "createdAt": createdAt,
					"schema": map[string]string{"id": "ts_sWLj9kNl"}}
				if typ == "v2.entry.updated.fields" {
					msg["updates"] = []string{"fields.Sentinel"}
				}
				r = deliver(shared, "/event", entry, files, msg)
			})

			itPackagesTheEntry(func() *pathRun { return r }, func(r *pathRun, t string) { eventTimeIs(createdAt)(r, t) })

			It("touches no canvas", func() {
				for _, c := range shared.Benchling.Calls() {
					if strings.HasPrefix(c.Path, "/api/v2/app-canvases") {
						Expect(string(c.Body)).NotTo(ContainSubstring(r.entry), "%s %s", c.Method, c.Path)
					}
				}
				for _, state := range []string{"GetCanvas", "CreateCanvas", "WriteCanvasMapping"} {
					Expect(stateOrder(r.webhook)).NotTo(ContainElement(state))
				}
			})
		})
	}
})

var _ = Describe("Canvas events on /canvas", func() {
	// Each canvas type: the canvas exists in the sandbox, attached to the
	// entry, while another entry was modified more recently.
	type canvasCase struct {
		typ            string
		withResourceID bool
	}
	for _, tc := range []canvasCase{
		{"v2.canvas.created", true},
		{"v2-beta.canvas.created", true},
		{"v2.canvas.initialized", false},
	} {
		Describe(tc.typ+" with a canvasId", Ordered, func() {
			var r *pathRun
			var canvasID, other string
			BeforeAll(func() {
				var entry string
				entry, other = newEntryID(), newEntryID()
				canvasID = "cnvs_" + randomHex(6)
				files := addEntry(shared, entry, sandbox.EntryOptions{ModifiedAt: time.Now().Add(-time.Hour)})
				addEntry(shared, other, sandbox.EntryOptions{ModifiedAt: time.Now().Add(time.Hour)})
				shared.Benchling.AddCanvas(canvasID, entry)
				msg := map[string]any{"type": tc.typ, "canvasId": canvasID, "featureId": sandbox.DefaultFeatureID, "userId": "ent_e2e"}
				if tc.withResourceID {
					msg["resourceId"] = entry
				}
				r = deliver(shared, "/canvas", entry, files, msg)
			})

			itPackagesTheEntry(func() *pathRun { return r }, eventTimeIsStart)

			It("packages the canvas's entry, not the most recently modified one", func() {
				Expect(statuses(canvasCalls(shared, http.MethodGet, canvasID))).To(Equal([]int{http.StatusOK}))
				var in struct{ Entity, PackageName string }
				Expect(json.Unmarshal(r.pack.Input, &in)).To(Succeed())
				Expect(in.Entity).To(Equal(r.entry))
				Expect(in.PackageName).To(Equal(packageName(shared, r.entry)))
				Expect(packageKeys(shared, other)).To(BeEmpty())
				Expect(callsTo(shared, http.MethodGet, "/api/v2/entries/"+other)).To(BeEmpty())
			})

			It("writes the Quilt links, Updating and the Update Package button into the canvas", func() {
				// The canvas machine writes every status (updating, sent,
				// still waiting: canvas_status_test.go); the first is updating.
				patches := canvasCalls(shared, http.MethodPatch, canvasID)
				Expect(patches).NotTo(BeEmpty())
				Expect(patches[0].Status).To(Equal(http.StatusOK))
				w := decodeCanvasWrite(patches[0].Body)
				expectLinks(shared, w, r.entry, notePackaging)

				state, ok := shared.Benchling.Canvas(canvasID)
				Expect(ok).To(BeTrue())
				c := decodeCanvasWrite(state)
				Expect(c.ResourceID).To(Equal(r.entry))
				Expect(c.FeatureID).To(Equal(sandbox.DefaultFeatureID))
			})
		})
	}

	Describe("v2.canvas.initialized without a canvasId", Ordered, func() {
		var r *pathRun
		var before int
		BeforeAll(func() {
			entry := newEntryID()
			files := addEntry(shared, entry, sandbox.EntryOptions{})
			before = callCount(shared)
			r = deliver(shared, "/canvas", entry, files, map[string]any{"type": "v2.canvas.initialized",
				"featureId": sandbox.DefaultFeatureID, "resourceId": entry, "userId": "ent_e2e"})
		})

		itPackagesTheEntry(func() *pathRun { return r }, eventTimeIsStart)

		It("creates the canvas on the entry with the links and the button", func() {
			var creates, patches []sandbox.Call
			for _, c := range callsSince(shared, before) {
				if c.Method == http.MethodPost && c.Path == "/api/v2/app-canvases" {
					creates = append(creates, c)
				}
				if c.Method == http.MethodPatch && strings.Contains(string(c.Body), r.entry) {
					patches = append(patches, c)
				}
			}
			Expect(creates).To(HaveLen(1))
			Expect(creates[0].Status).To(Equal(http.StatusCreated))
			w := decodeCanvasWrite(creates[0].Body)
			Expect(w.ResourceID).To(Equal(r.entry))
			Expect(w.AppID).To(Equal("app_local"))
			Expect(w.FeatureID).To(Equal(sandbox.DefaultFeatureID))
			expectLinks(shared, w, r.entry, notePackaging)

			var out struct {
				Canvas struct{ CanvasID string } `json:"canvas"`
			}
			Expect(json.Unmarshal(r.webhook.Output, &out)).To(Succeed())
			state, ok := shared.Benchling.Canvas(out.Canvas.CanvasID)
			Expect(ok).To(BeTrue(), "canvas %q in the sandbox", out.Canvas.CanvasID)
			Expect(decodeCanvasWrite(state).ResourceID).To(Equal(r.entry))
			for _, p := range patches {
				Expect(p.Path).To(Equal("/api/v2/app-canvases/"+out.Canvas.CanvasID), "only the new canvas shows the entry's statuses")
			}
		})
	})
})

var _ = Describe("The Update Package button (v2.canvas.userInteracted)", Ordered, func() {
	var r *pathRun
	var canvasID string
	BeforeAll(func() {
		entry := newEntryID()
		canvasID = "cnvs_" + randomHex(6)
		files := addEntry(shared, entry, sandbox.EntryOptions{})
		addEntry(shared, newEntryID(), sandbox.EntryOptions{ModifiedAt: time.Now().Add(time.Hour)})
		shared.Benchling.AddCanvas(canvasID, entry)
		r = deliver(shared, "/canvas", entry, files, map[string]any{"type": "v2.canvas.userInteracted",
			"buttonId": entry, "canvasId": canvasID, "featureId": sandbox.DefaultFeatureID, "userId": "ent_e2e"})
	})

	itPackagesTheEntry(func() *pathRun { return r }, eventTimeIsStart)

	It("repackages the entry the button names and updates its canvas", func() {
		var in struct{ Entity string }
		Expect(json.Unmarshal(r.pack.Input, &in)).To(Succeed())
		Expect(in.Entity).To(Equal(r.entry))
		patches := canvasCalls(shared, http.MethodPatch, canvasID)
		Expect(patches).NotTo(BeEmpty(), fmt.Sprintf("PATCH calls on %s", canvasID))
		Expect(patches[0].Status).To(Equal(http.StatusOK))
		expectLinks(shared, decodeCanvasWrite(patches[0].Body), r.entry, noteButton)
	})
})

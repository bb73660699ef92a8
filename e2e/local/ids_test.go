package local_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"benchling-webhook/internal/quiltpkg"
	"benchling-webhook/internal/testkit/emulate"
	"benchling-webhook/internal/testkit/sandbox"
)

// Ids that are not Benchling's grammar (issue 10): each webhook carrying one
// ends in a named state with nothing written anywhere in the bucket and no
// entry read or export requested. The specs run on a stack of their own, so
// "anywhere" is the whole bucket and every call the sandbox saw.
var _ = Describe("Ids that are not Benchling's", Ordered, func() {
	var st *emulate.Stack
	var victim, mine string
	var mineFiles map[string][]byte

	// noEffects expects the bucket to be empty and the sandbox to have
	// served nothing but tokens, the JWKS (job verify) and canvas reads: no
	// entry read, no export, no canvas written.
	noEffects := func(what string) {
		GinkgoHelper()
		Expect(listKeys(st, "")).To(BeEmpty(), "%s: the whole bucket", what)
		for _, c := range st.Benchling.Calls() {
			ok := c.Path == "/api/v2/token" || (c.Method == http.MethodGet &&
				(strings.HasPrefix(c.Path, "/api/v2/app-canvases/") || strings.HasSuffix(c.Path, "/jwks")))
			Expect(ok).To(BeTrue(), "%s: the sandbox served %s %s", what, c.Method, c.Path)
		}
		Expect(st.Messages()).To(BeEmpty(), "%s: no message to Quilt", what)
	}
	// ended waits for the webhook execution and expects it to end in state
	// (its last state) with status, having started no packaging.
	ended := func(resp emulate.Response, status, errName, state string) *emulate.Execution {
		GinkgoHelper()
		ex, children := waitTree(st, resp.ExecutionArn)
		Expect(ex.Status).To(Equal(status), describeFailure(st, ex.ARN))
		Expect(ex.Error).To(Equal(errName), describeFailure(st, ex.ARN))
		states := stateOrder(ex)
		Expect(states[len(states)-1]).To(Equal(state))
		Expect(children).To(BeEmpty(), "no packaging run")
		return ex
	}

	BeforeAll(func() {
		st = startStack(emulate.Options{})
		victim, mine = newEntryID(), newEntryID()
		addEntry(st, victim, sandbox.EntryOptions{})
		mineFiles = addEntry(st, mine, sandbox.EntryOptions{})
	})

	for _, id := range []string{
		"etr_x/../" + "etr_victim", "etr_x/../../entries/etr_victim", "etr_a?b", "etr_a#b", "etr_a%2Fb", "etr_",
		"etr_été", "etr_" + strings.Repeat("x/", 498),
	} {
		It("refuses an entry event for "+specID(id)+" (InvalidEntryId)", func() {
			id := strings.ReplaceAll(id, "etr_victim", victim)
			resp := send(st, "/event", map[string]any{"type": "v2.entry.updated.fields", "id": "evt_" + randomHex(6),
				"resourceId": id, "createdAt": pastTime()}).Response
			ex := ended(resp, "FAILED", "InvalidEntryId", "InvalidEntryId")
			Expect(ex.Cause).To(ContainSubstring(id), "the cause names the id")
			noEffects(id)
		})
	}

	It("refuses a canvas whose resourceId, as Benchling gives it, is path-like (InvalidEntryId)", func() {
		canvasID := "cnvs_" + randomHex(6)
		bad := "etr_x/../" + victim
		st.Benchling.AddCanvas(canvasID, bad)
		resp := send(st, "/canvas", map[string]any{"type": "v2.canvas.created", "canvasId": canvasID, "featureId": sandbox.DefaultFeatureID}).Response
		ex := ended(resp, "FAILED", "InvalidEntryId", "InvalidEntryId")
		Expect(ex.Cause).To(ContainSubstring(bad))
		Expect(canvasCalls(st, http.MethodGet, canvasID)).To(HaveLen(1), "the canvas was read")
		Expect(canvasCalls(st, http.MethodPatch, canvasID)).To(BeEmpty(), "and not written")
		noEffects("canvas of " + bad)
	})

	for _, canvasID := range []string{"cnvs_x/../cnvs_y", "cnvs_a?b", "cnvs_a#b", "cnvs_"} {
		It("refuses a canvasId "+canvasID+" before any Benchling call (InvalidCanvasId)", func() {
			n := callCount(st)
			resp := send(st, "/canvas", map[string]any{"type": "v2.canvas.created", "canvasId": canvasID, "featureId": sandbox.DefaultFeatureID}).Response
			ex := ended(resp, "FAILED", "InvalidCanvasId", "InvalidCanvasId")
			Expect(ex.Cause).To(ContainSubstring(canvasID))
			Expect(apiCalls(callsSince(st, n))).To(BeEmpty(), "no Benchling API call")
			noEffects(canvasID)

			n = callCount(st)
			resp = send(st, "/canvas", map[string]any{"type": "v2.canvas.userInteracted", "buttonId": mine, "canvasId": canvasID,
				"featureId": sandbox.DefaultFeatureID, "userId": "ent_e2e"}).Response
			ended(resp, "FAILED", "InvalidCanvasId", "InvalidCanvasId")
			Expect(apiCalls(callsSince(st, n))).To(BeEmpty(), "no Benchling API call")
		})
	}

	It("refuses a button whose id is not an entry id before any Benchling call (InvalidEntryId)", func() {
		canvasID := "cnvs_" + randomHex(6)
		st.Benchling.AddCanvas(canvasID, mine)
		n := callCount(st)
		resp := send(st, "/canvas", map[string]any{"type": "v2.canvas.userInteracted", "buttonId": "etr_x/../" + victim, "canvasId": canvasID,
			"featureId": sandbox.DefaultFeatureID, "userId": "ent_e2e"}).Response
		ended(resp, "FAILED", "InvalidEntryId", "InvalidEntryId")
		Expect(apiCalls(callsSince(st, n))).To(BeEmpty(), "no Benchling API call")
		noEffects("button")
	})

	It("does nothing but log a button that names another entry than its canvas's (ButtonForAnotherEntry)", func() {
		canvasID := "cnvs_" + randomHex(6)
		st.Benchling.AddCanvas(canvasID, mine)
		resp := send(st, "/canvas", map[string]any{"type": "v2.canvas.userInteracted", "buttonId": victim, "canvasId": canvasID,
			"featureId": sandbox.DefaultFeatureID, "userId": "ent_e2e"}).Response
		ex := ended(resp, "SUCCEEDED", "", "ButtonForAnotherEntry")
		var out struct{ Ignored map[string]string }
		Expect(json.Unmarshal(ex.Output, &out)).To(Succeed())
		Expect(out.Ignored).To(Equal(map[string]string{"buttonId": victim, "canvasId": canvasID, "canvasEntity": mine}))
		Expect(canvasCalls(st, http.MethodPatch, canvasID)).To(BeEmpty(), "the clicked canvas is not written")
		noEffects("button for another entry")
	})

	It("refuses a packaging run started directly with a bad entity or package name", func() {
		for name, in := range map[string]struct {
			input   map[string]any
			errName string
		}{
			"path-like entity": {map[string]any{"entity": "etr_x/../" + victim, "packageName": packageName(st, "etr_x/../"+victim)}, "InvalidEntryId"},
			"entity with ?":    {map[string]any{"entity": "etr_a?b", "packageName": packageName(st, "etr_a?b")}, "InvalidEntryId"},
			"no entity":        {map[string]any{"packageName": packageName(st, mine)}, "InvalidEntryId"},
			"escaping name":    {map[string]any{"entity": mine, "packageName": packageName(st, "../entries/"+mine)}, "InvalidPackageName"},
			"another entry":    {map[string]any{"entity": mine, "packageName": packageName(st, victim)}, "InvalidPackageName"},
		} {
			in.input["registry"] = bucket(st)
			in.input["message"] = map[string]any{"type": "manual"}
			in.input["eventTime"] = pastTime()
			tasks := len(st.TaskRuns())
			raw, err := json.Marshal(in.input)
			Expect(err).NotTo(HaveOccurred())
			arn, err := st.StartExecution(context.Background(), emulate.Packaging, "ids-"+randomHex(6), raw)
			Expect(err).NotTo(HaveOccurred())
			ex := wait(st, arn)
			Expect(ex.Status).To(Equal("FAILED"), name)
			Expect(ex.Error).To(Equal(in.errName), "%s: %s", name, describeFailure(st, arn))
			Expect(st.TaskRuns()).To(HaveLen(tasks), "%s: no ECS task", name)
			noEffects(name)
		}
	})

	// Last: a valid id still packages (and so the listing above would have
	// seen what a run writes).
	It("still packages a valid entry id", func() {
		r := deliver(st, "/event", mine, mineFiles, map[string]any{"type": "v2.entry.updated.fields", "id": "evt_" + randomHex(6),
			"resourceId": mine, "createdAt": pastTime()})
		Expect(r.pack.Status).To(Equal("SUCCEEDED"))
		pkg := packageName(st, mine)
		for _, k := range listKeys(st, "") {
			// .quilt/: what the Quilt stand-in builds from the message.
			Expect(k).To(Or(HavePrefix(pkg+"/"), HavePrefix(quiltpkg.ControlPrefix(pkg)+"/"),
				HavePrefix(".quilt/packages/"), HavePrefix(".quilt/named_packages/"+pkg+"/")),
				"nothing outside the package, its control objects and Quilt's manifest and pointers")
		}
		Expect(packageKeys(st, mine)).To(ContainElements("README.md", "entry.json", "input.json"))
	})
})

// specID shortens an id for a spec name.
func specID(id string) string {
	if len(id) > 40 {
		return id[:20] + "…(" + "1,000 characters)"
	}
	return id
}

// apiCalls drops the JWKS requests (job verify) from calls: what is left is
// what the state machine asked of Benchling's API.
func apiCalls(calls []sandbox.Call) []string {
	var out []string
	for _, c := range calls {
		if !strings.HasSuffix(c.Path, "/jwks") {
			out = append(out, c.Method+" "+c.Path)
		}
	}
	return out
}

package emulate

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"benchling-webhook/internal/quiltpkg"

	"github.com/stretchr/testify/require"
)

// Ids the state machines must refuse (issue 10), and ids they must accept.
var (
	refusedIDs = []string{
		"etr_", "etr_x/../etr_victim", "etr_x/../../entries/etr_victim", "etr_../x", "etr_a/b", "etr_ab/",
		"etr_a?b", "etr_a#b", "etr_a%2Fb", "etr_a.b", "etr_a-b", "etr_a_b", "etr__ab", "etr_ab_", "etr_a b",
		"etr_a\nb", "etr_a\u0000b", "etr_été", "etr_аbc", "etr_a\u00a0", "etr_ab\u200b", "etr_" + strings.Repeat("x/", 498),
	}
	acceptedIDs = []string{"etr_0uKCQZ8f", "etr_OtsAuzfT", "etr_1", "etr_Z", "etr_" + quiltpkg.EntryIDAlphabet[:60]}
)

// asciiCorpus is every printable ASCII character between two letters: the machines' verdict must be quiltpkg.ValidEntryID's.
func asciiCorpus() []string {
	var ids []string
	for c := byte(0x20); c < 0x7f; c++ {
		ids = append(ids, "etr_a"+string(c)+"b")
	}
	return ids
}

func substituted(t *testing.T, name string) []byte {
	t.Helper()
	def, err := Substitute(readMachine(t, name), sampleValues)
	require.NoError(t, err)
	return def
}

func enteredStates(t *testing.T, d engineDone) []string {
	t.Helper()
	var names []string
	for _, e := range d.Events {
		var ev struct {
			Type  string
			State struct{ Name string }
		}
		require.NoError(t, json.Unmarshal(e, &ev))
		if ev.Type == "StateEntered" {
			names = append(names, ev.State.Name)
		}
	}
	return names
}

// TestPackagingChecksInput runs the packaging machine's first states: a bad
// entity or packageName ends in a named Fail state before any Task (no
// Benchling call, no S3 write), and the Cause names what was wrong.
func TestPackagingChecksInput(t *testing.T) {
	b := startBareEngine(t, nil)
	def := substituted(t, Packaging)
	input := func(entity any, pkg any) map[string]any {
		in := map[string]any{"registry": "quilt-bucket", "message": map[string]any{}, "eventTime": "t"}
		if entity != nil {
			in["entity"] = entity
		}
		if pkg != nil {
			in["packageName"] = pkg
		}
		return in
	}
	for _, id := range refusedIDs {
		d, tasks := b.run(def, input(id, "benchling/"+id))
		require.Equal(t, "InvalidEntryId", d.Error, "%q", id)
		require.Empty(t, tasks, "%q", id)
		if q, _ := json.Marshal(id); !strings.Contains(string(q), "\\") {
			require.Contains(t, d.Cause, "entity "+string(q), "the cause names the id")
		}
	}
	for _, id := range asciiCorpus() {
		d, tasks := b.run(def, input(id, "benchling/"+id))
		if quiltpkg.ValidEntryID(id) {
			require.NotEmpty(t, tasks, "%q: accepted, so the run reaches its first Task", id)
		} else {
			require.Equal(t, "InvalidEntryId", d.Error, "%q", id)
			require.Empty(t, tasks, "%q", id)
		}
	}
	for _, id := range acceptedIDs {
		d, tasks := b.run(def, input(id, "benchling/"+id))
		require.NotEmpty(t, tasks, "%q: %s %s", id, d.Error, d.Cause)
		require.NotContains(t, []string{"InvalidEntryId", "InvalidPackageName"}, d.Error)
	}
	for name, in := range map[string]map[string]any{
		"no entity":       input(nil, "benchling/etr_1"),
		"number":          input(12, "benchling/12"),
		"object":          input(map[string]any{"id": "etr_1"}, "benchling/etr_1"),
		"not an entry id": input("../etr_1", "benchling/../etr_1"),
	} {
		d, tasks := b.run(def, in)
		require.Equal(t, "InvalidEntryId", d.Error, name)
		require.Empty(t, tasks, name)
	}
	for name, pkg := range map[string]any{
		"no package name": nil, "another prefix": "other/etr_1", "another entry": "benchling/etr_2",
		"three parts": "benchling/x/etr_1", "dot dot": "benchling/etr_1/../etr_2", "trailing slash": "benchling/etr_1/",
		"a number": 7,
	} {
		d, tasks := b.run(def, input("etr_1", pkg))
		require.Equal(t, "InvalidPackageName", d.Error, name)
		require.Empty(t, tasks, name)
		if s, ok := pkg.(string); ok {
			require.Contains(t, d.Cause, s)
		}
	}
}

// webhookAnswers plays job verify (exit 0) and GET app-canvases (a canvas of
// entry canvasEntity); every other Task is stopped by the test.
func webhookAnswers(canvasEntity *string) func(string, json.RawMessage) (any, string) {
	return func(state string, _ json.RawMessage) (any, string) {
		switch state {
		case "Verify":
			return map[string]any{"TaskArn": "arn:aws:ecs:task/1", "Containers": []any{map[string]any{"ExitCode": 0}}}, ""
		case "GetCanvas":
			return map[string]any{"StatusCode": 200, "ResponseBody": map[string]any{"id": "cnvs_1", "resourceId": *canvasEntity}}, ""
		}
		return nil, "Test.Stop"
	}
}

func webhookInput(message map[string]any) map[string]any {
	message["featureId"] = "quilt_integration"
	now := time.Now()
	return map[string]any{"payload": map[string]any{"channel": "app_signals", "app": map[string]any{"id": "app_1"}, "message": message},
		"headers":        map[string]any{"webhook-timestamp": strconv.FormatInt(now.Unix(), 10)},
		"requestContext": map[string]any{"requestTimeEpoch": now.UnixMilli()}}
}

// TestWebhookChecksIds runs the webhook machine with job verify and
// Benchling played by the test: every id is checked before the Task that
// would use it (a Benchling call, or starting a packaging run).
func TestWebhookChecksIds(t *testing.T) {
	canvasEntity := new(string)
	b := startBareEngine(t, webhookAnswers(canvasEntity))
	def := substituted(t, Webhook)
	entryEvent := func(id any) map[string]any {
		in := webhookInput(map[string]any{"type": "v2.entry.updated.fields", "resourceId": id, "createdAt": "2026-12-04T10:00:00Z"})
		in["payload"].(map[string]any)["channel"] = "events"
		return in
	}
	canvasCreated := func(canvasID string) map[string]any {
		return webhookInput(map[string]any{"type": "v2.canvas.created", "canvasId": canvasID})
	}
	button := func(buttonID, canvasID string) map[string]any {
		return webhookInput(map[string]any{"type": "v2.canvas.userInteracted", "buttonId": buttonID, "canvasId": canvasID})
	}
	initialized := func(id string) map[string]any {
		return webhookInput(map[string]any{"type": "v2.canvas.initialized", "resourceId": id})
	}
	*canvasEntity = "etr_1"
	// Each run of this machine costs the engine about 0.4 s (it validates
	// the definition), so it gets the ids and a few more; the
	// packaging test runs every refused id and the ASCII corpus through
	// the same rule.
	ids := []string{"etr_", "etr_x/../etr_victim", "etr_x/../../entries/etr_victim", "etr_a?b", "etr_a#b", "etr_a%2Fb",
		"etr_été", "etr_a_b", "etr__ab", "etr_a\\b", "etr_a\nb", "etr_" + strings.Repeat("x/", 498)}
	for _, id := range ids {
		if strings.Contains(id, "\n") {
			// The engine's * does not match a line break (AWS's may): the
			// event is then not an entry event at all. Nothing is done
			// either way.
			d, tasks := b.run(def, entryEvent(id))
			require.Contains(t, []string{"", "InvalidEntryId"}, d.Error)
			require.Equal(t, []string{"Verify"}, tasks)
			continue
		}
		if strings.HasPrefix(id, "etr_") {
			d, tasks := b.run(def, entryEvent(id))
			require.Equal(t, "InvalidEntryId", d.Error, "entry event %q", id)
			require.Equal(t, []string{"Verify"}, tasks, "entry event %q", id)
			// The engine drops every backslash from an intrinsic's result.
			require.Contains(t, d.Cause, strings.ReplaceAll(id, "\\", ""))

			d, tasks = b.run(def, button(id, "cnvs_1"))
			require.Equal(t, "InvalidEntryId", d.Error, "button %q", id)
			require.Equal(t, []string{"Verify"}, tasks, "button %q", id)

			d, tasks = b.run(def, initialized(id))
			require.Equal(t, "InvalidEntryId", d.Error, "initialized %q", id)
			require.Equal(t, []string{"Verify"}, tasks, "initialized %q", id)
		}
		cid := "cnvs_" + strings.TrimPrefix(id, "etr_")
		d, tasks := b.run(def, canvasCreated(cid))
		require.Equal(t, "InvalidCanvasId", d.Error, "canvas %q", cid)
		require.Equal(t, []string{"Verify"}, tasks, "canvas %q", cid)
		d, tasks = b.run(def, button("etr_1", cid))
		require.Equal(t, "InvalidCanvasId", d.Error, "button on canvas %q", cid)
		require.Equal(t, []string{"Verify"}, tasks, "button on canvas %q", cid)
	}
	// The canvas's resourceId, as Benchling gives it, is checked before it
	// is packaged.
	for _, id := range ids {
		*canvasEntity = id
		for name, in := range map[string]map[string]any{"canvas": canvasCreated("cnvs_1"), "button": button("etr_1", "cnvs_1")} {
			d, tasks := b.run(def, in)
			if strings.Contains(id, "\n") { // not an entry for the engine's *; nothing done either way
				require.Contains(t, []string{"", "InvalidEntryId"}, d.Error)
				require.Equal(t, []string{"Verify", "GetCanvas"}, tasks)
				continue
			}
			require.Equal(t, "InvalidEntryId", d.Error, "%s: canvas of %q", name, id)
			require.Equal(t, []string{"Verify", "GetCanvas"}, tasks, "%s: canvas of %q", name, id)
		}
	}
	// Accepted ids reach the Task that uses them.
	for _, id := range acceptedIDs {
		*canvasEntity = id
		_, tasks := b.run(def, entryEvent(id))
		require.Equal(t, []string{"Verify", "StartPackaging"}, tasks[:2], "entry event %q", id)
		_, tasks = b.run(def, initialized(id))
		require.Equal(t, []string{"Verify", "CreateCanvas"}, tasks, "initialized %q", id)
		_, tasks = b.run(def, canvasCreated("cnvs_"+strings.TrimPrefix(id, "etr_")))
		require.Equal(t, []string{"Verify", "GetCanvas", "StartPackaging"}, tasks[:3], "canvas of %q", id)
		_, tasks = b.run(def, button(id, "cnvs_1"))
		require.Equal(t, []string{"Verify", "GetCanvas", "StartPackaging"}, tasks[:3], "button of %q", id)
	}
	// Not an entry at all: nothing to do, as before.
	d, tasks := b.run(def, entryEvent("ts_abc"))
	require.Equal(t, "SUCCEEDED", d.Status)
	require.Equal(t, []string{"Verify"}, tasks)
	*canvasEntity = "cnvs_other"
	d, tasks = b.run(def, canvasCreated("cnvs_1"))
	require.Equal(t, "SUCCEEDED", d.Status)
	require.Contains(t, enteredStates(t, d), "NotAnEntry")
	require.Equal(t, []string{"Verify", "GetCanvas"}, tasks)
}

// TestButtonForAnotherEntry: a click on a button that names another entry
// than its canvas's reads the canvas and does nothing else; the history
// holds both ids.
func TestButtonForAnotherEntry(t *testing.T) {
	canvasEntity := new(string)
	*canvasEntity = "etr_mine"
	b := startBareEngine(t, webhookAnswers(canvasEntity))
	d, tasks := b.run(substituted(t, Webhook), webhookInput(map[string]any{"type": "v2.canvas.userInteracted", "buttonId": "etr_victim", "canvasId": "cnvs_1"}))
	require.Equal(t, "SUCCEEDED", d.Status, "%s %s", d.Error, d.Cause)
	require.Equal(t, []string{"Verify", "GetCanvas"}, tasks, "no packaging, no PATCH")
	states := enteredStates(t, d)
	require.Equal(t, []string{"ButtonEntryMismatch", "ButtonForAnotherEntry"}, states[len(states)-2:])
	var out struct{ Ignored map[string]string }
	require.NoError(t, json.Unmarshal(d.Output, &out))
	require.Equal(t, map[string]string{"buttonId": "etr_victim", "canvasId": "cnvs_1", "canvasEntity": "etr_mine"}, out.Ignored)
}

// TestIdAlphabet keeps the machines' id checks on quiltpkg's alphabet:
// every States.StringSplit splits on ',' (the subnets) or on the entry-id
// alphabet, with '_' or without; the canvas machine also splits a
// package handle on '/' and a time on '.Z' (its whole seconds), the
// webhook machine webhook-timestamp on the digits.
func TestIdAlphabet(t *testing.T) {
	split := regexp.MustCompile(`States\.StringSplit\([^,]+, '([^']*)'\)`)
	for _, name := range []string{Webhook, Packaging, Canvas} {
		n := 0
		for _, m := range split.FindAllStringSubmatch(string(readMachine(t, name)), -1) {
			switch {
			case m[1] == ",":
			case name == Canvas && (m[1] == "/" || m[1] == ".Z"):
			case name == Webhook && m[1] == "0123456789": // webhook-timestamp's digits (CheckTimestampDigits)
			case m[1] == quiltpkg.EntryIDAlphabet, m[1] == quiltpkg.EntryIDAlphabet+"_":
				n++
			default:
				t.Errorf("%s: States.StringSplit on %q", name, m[1])
			}
		}
		require.NotZero(t, n, "%s checks ids", name)
	}
}

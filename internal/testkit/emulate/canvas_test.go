package emulate

import (
	"encoding/json"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMapTasksReachTheHub: a Task inside a Map (or Parallel) state is
// run by the hub like any other, as AWS runs it. The library looks its
// task handlers up by state name in the inner machines too; engine.mjs
// registered only the top-level states' before, and the inner Task then
// called AWS itself ("Region is missing").
func TestMapTasksReachTheHub(t *testing.T) {
	b := startBareEngine(t, func(state string, _ json.RawMessage) (any, string) {
		return map[string]any{"StatusCode": 200}, ""
	})
	d, tasks := b.run([]byte(`{"StartAt":"Each","States":{
		"Each":{"Type":"Map","ItemsPath":"$.items","ItemProcessor":{"ProcessorConfig":{"Mode":"INLINE"},"StartAt":"Inner","States":{
			"Inner":{"Type":"Task","Resource":"arn:aws:states:::http:invoke","Parameters":{"ApiEndpoint":"https://x.example/a","Method":"GET"},"End":true}}},
			"Next":"Both"},
		"Both":{"Type":"Parallel","Branches":[{"StartAt":"Branch","States":{"Branch":{"Type":"Task","Resource":"arn:aws:states:::http:invoke","Parameters":{"ApiEndpoint":"https://x.example/b","Method":"GET"},"End":true}}}],"End":true}}}`),
		map[string]any{"items": []int{1, 2}})
	require.Equal(t, "SUCCEEDED", d.Status, "%s %s", d.Error, d.Cause)
	require.ElementsMatch(t, []string{"Inner", "Inner", "Branch"}, tasks)
}

// canvasS3 plays status.json for the canvas machine on the bare engine:
// reads answer the stored status (or NoSuchKey), writes store theirs, and
// the entry has a canvas when the machine asks whether it has any
// (noCanvas: none), though none is listed for patching. onRead, when set, may replace the stored status
// before the n-th read (1-based) is answered.
type canvasS3 struct {
	mu     sync.Mutex
	status map[string]any
	etag   int
	reads  int
	writes []map[string]any
	onRead func(n int, c *canvasS3)
	// noCanvas: the entry has no canvas at all.
	noCanvas bool
}

func (c *canvasS3) answer(state string, input json.RawMessage) (any, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tag := func() string { return `"` + string(rune('a'+c.etag)) + `"` }
	switch state {
	case "ReadStatus", "RecheckStatus":
		if state == "ReadStatus" {
			c.reads++
			if c.onRead != nil {
				c.onRead(c.reads, c)
			}
		}
		if c.status == nil {
			return nil, "S3.NoSuchKeyException"
		}
		b, _ := json.Marshal(c.status)
		return map[string]any{"Body": string(b), "ETag": tag()}, ""
	case "WriteFirstStatus", "WriteStatus":
		var p struct {
			Body    map[string]any
			IfMatch string
		}
		_ = json.Unmarshal(input, &p)
		if state == "WriteStatus" && p.IfMatch != tag() {
			return nil, "S3.S3Exception" // 412 PreconditionFailed
		}
		c.status, c.etag = p.Body, c.etag+1
		c.writes = append(c.writes, p.Body)
		return map[string]any{"ETag": tag()}, ""
	case "FindStatus":
		if c.status == nil {
			return map[string]any{"KeyCount": 0}, ""
		}
		return map[string]any{"KeyCount": 1}, ""
	case "AnyCanvasToTell":
		if c.noCanvas {
			return map[string]any{"KeyCount": 0}, ""
		}
		return map[string]any{"KeyCount": 1}, ""
	case "ListCanvases":
		return map[string]any{"KeyCount": 0}, ""
	}
	return nil, "Test.Stop"
}

// TestCanvasNoCanvasNoStatus: an entry that no canvas shows gets no
// status.json; the machine stops after one listing, whatever it reports,
// a "sent" included (no watch).
func TestCanvasNoCanvasNoStatus(t *testing.T) {
	def := substituted(t, Canvas)
	for _, state := range []string{"updating", "sent", "failed"} {
		c := &canvasS3{noCanvas: true}
		b := startBareEngine(t, c.answer)
		in := canvasInput(state)
		if state == "failed" {
			in["status"].(map[string]any)["failure"] = "ExportFailed"
		}
		d, tasks := b.run(def, in)
		require.Equal(t, "SUCCEEDED", d.Status, "%s: %s %s", state, d.Error, d.Cause)
		require.Equal(t, []string{"AnyCanvasToTell"}, tasks, state)
		require.Empty(t, c.writes, state)
	}
}

func canvasInput(state string) map[string]any {
	return map[string]any{"entity": "etr_1", "status": map[string]any{"state": state, "run": "packaging-run"}}
}

// TestCanvasStillWaitingOnlyForItsSent: after its wait, the watch of a
// "sent" writes "still waiting" only while status.json is that very
// "sent" (its sentAt, the token). A revision that arrived in between is
// not overwritten; without the token check it would be, as "still
// waiting" is stamped in the sent's place, at or after the revision.
func TestCanvasStillWaitingOnlyForItsSent(t *testing.T) {
	def := substituted(t, Canvas)

	quiet := &canvasS3{}
	b := startBareEngine(t, quiet.answer)
	d, _ := b.run(def, canvasInput("sent"))
	require.Equal(t, "SUCCEEDED", d.Status, "%s %s", d.Error, d.Cause)
	require.Len(t, quiet.writes, 2, "sent, then still waiting")
	require.Equal(t, "sent", quiet.writes[0]["state"])
	require.Equal(t, "still waiting", quiet.writes[1]["state"])
	require.Equal(t, quiet.writes[0]["sentAt"], quiet.writes[1]["sentAt"])
	require.EqualValues(t, 900, quiet.writes[1]["waitedSeconds"])

	answered := &canvasS3{onRead: func(n int, c *canvasS3) {
		if n == 1 { // the watch's read, after the wait (the first read found nothing): Quilt answered meanwhile
			c.status = map[string]any{"state": "up to date", "entity": "etr_1", "at": "2026-12-04T10:00:00Z", "topHash": "abc"}
			c.etag++
		}
	}}
	b = startBareEngine(t, answered.answer)
	d, _ = b.run(def, canvasInput("sent"))
	require.Equal(t, "SUCCEEDED", d.Status, "%s %s", d.Error, d.Cause)
	require.Contains(t, enteredStates(t, d), "NoLongerWaiting")
	require.Len(t, answered.writes, 1, "only sent")
	require.Equal(t, "up to date", answered.status["state"])
}

// TestCanvasStatusConditionalWrite: a status written by another execution
// between this one's read and write (the If-Match write fails) is read
// again and compared: a newer one stays, and this one is not written.
func TestCanvasStatusConditionalWrite(t *testing.T) {
	def := substituted(t, Canvas)
	s3 := &canvasS3{status: map[string]any{"state": "updating", "entity": "etr_1", "at": "2000-01-01T00:00:00Z"}}
	s3.onRead = func(n int, c *canvasS3) {
		if n == 2 { // after the refused write: a revision of a later second
			c.status = map[string]any{"state": "up to date", "entity": "etr_1", "at": "2999-01-01T00:00:00Z"}
		}
	}
	first := true
	b := startBareEngine(t, func(state string, in json.RawMessage) (any, string) {
		if state == "WriteStatus" && first {
			first = false
			s3.mu.Lock()
			s3.etag++ // someone else wrote: If-Match fails
			s3.mu.Unlock()
		}
		return s3.answer(state, in)
	})
	d, tasks := b.run(def, map[string]any{"entity": "etr_1", "status": map[string]any{"state": "failed", "failure": "ExportFailed", "run": "r"}})
	require.Equal(t, "SUCCEEDED", d.Status, "%s %s", d.Error, d.Cause)
	require.Equal(t, []string{"AnyCanvasToTell", "FindStatus", "ReadStatus", "WriteStatus", "FindStatus", "ReadStatus"}, tasks)
	require.Contains(t, enteredStates(t, d), "Outdated")
	require.Empty(t, s3.writes)
}

// TestWebhookRecordsOnlyCanvasIds: the canvas id Benchling returns for a
// created canvas goes into the mapping's key and, in the canvas machine,
// a URL path; one that is not cnvs_ and letters or digits is not recorded.
func TestWebhookRecordsOnlyCanvasIds(t *testing.T) {
	created := new(string)
	b := startBareEngine(t, func(state string, _ json.RawMessage) (any, string) {
		switch state {
		case "Verify":
			return map[string]any{"TaskArn": "arn:aws:ecs:task/1", "Containers": []any{map[string]any{"ExitCode": 0}}}, ""
		case "CreateCanvas":
			return map[string]any{"StatusCode": 201, "ResponseBody": map[string]any{"id": *created}}, ""
		case "StartPackaging", "ReportUpdating":
			return map[string]any{"ExecutionArn": "arn:aws:states:us-east-1:123456789012:execution:x:1"}, ""
		case "WriteCanvasMapping":
			return map[string]any{"ETag": `"e"`}, ""
		}
		return nil, "Test.Stop"
	})
	def := substituted(t, Webhook)
	for id, recorded := range map[string]bool{
		"cnvs_abc123": true, "cnvs_a/../b": false, "cnvs_": false, "cnvs__a": false, "cnvs_a_b": false, "etr_abc": false, "cnvs_a?b": false,
	} {
		*created = id
		d, tasks := b.run(def, webhookInput(map[string]any{"type": "v2.canvas.initialized", "resourceId": "etr_1"}))
		require.Equal(t, "SUCCEEDED", d.Status, "%s: %s %s", id, d.Error, d.Cause)
		want := []string{"Verify", "CreateCanvas", "StartPackaging", "ReportUpdating"}
		if recorded {
			want = []string{"Verify", "CreateCanvas", "StartPackaging", "WriteCanvasMapping", "ReportUpdating"}
		}
		require.Equal(t, want, tasks, "canvas id %q", id)
	}
}

// TestStatusWaitState: Options.StatusWaitMs applies to the canvas
// machine's Wait state by its name; a renamed state would silently take
// WaitMs instead.
func TestStatusWaitState(t *testing.T) {
	var d struct {
		States map[string]struct{ Type, SecondsPath string }
	}
	require.NoError(t, json.Unmarshal(substituted(t, Canvas), &d))
	s := &Stack{opts: Options{StatusWaitMs: 1234}}
	for name, ms := range s.waitStates(Canvas) {
		require.Equal(t, "Wait", d.States[name].Type, "state %s", name)
		require.Equal(t, 1234, ms)
	}
	require.Len(t, s.waitStates(Canvas), 1)
	require.Empty(t, s.waitStates(Packaging))
}

// TestCanvasSameSecondRank: of two statuses stamped with the same second,
// the one earlier in a round does not replace the later one: an
// "updating" (whose time is its webhook's start) landing after a quick
// "failed" of the same second leaves "failed". An "updating" is ordered
// by the time its starter gives (status.at), in whole seconds.
func TestCanvasSameSecondRank(t *testing.T) {
	def := substituted(t, Canvas)
	failed := &canvasS3{status: map[string]any{"state": "failed", "entity": "etr_1", "at": "2026-12-04T10:00:00Z", "rank": 2}}
	b := startBareEngine(t, failed.answer)
	d, _ := b.run(def, map[string]any{"entity": "etr_1", "status": map[string]any{"state": "updating", "at": "2026-12-04T10:00:00.900Z"}})
	require.Equal(t, "SUCCEEDED", d.Status, "%s %s", d.Error, d.Cause)
	require.Contains(t, enteredStates(t, d), "Outdated")
	require.Empty(t, failed.writes)

	updating := &canvasS3{}
	b = startBareEngine(t, updating.answer)
	d, _ = b.run(def, map[string]any{"entity": "etr_1", "status": map[string]any{"state": "updating", "at": "2026-12-04T10:00:00.100Z"}})
	require.Equal(t, "SUCCEEDED", d.Status, "%s %s", d.Error, d.Cause)
	require.Len(t, updating.writes, 1)
	require.EqualValues(t, 0, updating.writes[0]["rank"])
	require.Equal(t, "2026-12-04T10:00:00Z", updating.writes[0]["at"], "ordered by the webhook's start, in whole seconds")
}

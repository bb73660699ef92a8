package emf_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/emf"
	"benchling-webhook/internal/emf/emftest"
)

var at = time.UnixMilli(1_700_000_000_123)

func exportMetrics() []emf.Metric {
	return []emf.Metric{
		{Name: "Files", Unit: emf.UnitCount, Value: 12},
		{Name: "Bytes", Unit: emf.UnitBytes, Value: 3 << 20},
		{Name: "DurationSeconds", Unit: emf.UnitSeconds, Value: 1.5},
		{Name: "Succeeded", Unit: emf.UnitCount, Value: 1},
		{Name: "Failed", Unit: emf.UnitCount, Value: 0},
	}
}

// countingWriter counts Write calls.
type countingWriter struct {
	bytes.Buffer
	calls int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.calls++
	return w.Buffer.Write(p)
}

func TestWrite(t *testing.T) {
	var w countingWriter
	props := map[string]any{"outcome": "ok", "exitCode": 0, "packageName": "benchling/etr_1", "registry": "b<&>"}
	require.NoError(t, emf.Write(&w, "app/prod/worker", "export", at, exportMetrics(), props))
	require.Equal(t, 1, w.calls, "one Write per line")
	want := `{"_aws":{"Timestamp":1700000000123,"CloudWatchMetrics":[{"Namespace":"app/prod/worker","Dimensions":[["Command"]],` +
		`"Metrics":[{"Name":"Files","Unit":"Count"},{"Name":"Bytes","Unit":"Bytes"},{"Name":"DurationSeconds","Unit":"Seconds"},` +
		`{"Name":"Succeeded","Unit":"Count"},{"Name":"Failed","Unit":"Count"}]}]},` +
		`"Command":"export","Files":12,"Bytes":3145728,"DurationSeconds":1.5,"Succeeded":1,"Failed":0,` +
		`"exitCode":0,"outcome":"ok","packageName":"benchling/etr_1","registry":"b<&>"}` + "\n"
	require.Equal(t, want, w.String())

	lines := emftest.Lines(w.Bytes())
	require.Len(t, lines, 1)
	doc, err := emftest.Check(lines[0])
	require.NoError(t, err)
	require.Equal(t, "export", doc["Command"])
}

func TestWriteLimits(t *testing.T) {
	metrics := make([]emf.Metric, emf.MaxMetrics)
	for i := range metrics {
		metrics[i] = emf.Metric{Name: fmt.Sprintf("M%03d", i), Value: float64(i)} // no unit: None
	}
	metrics[0].Name = strings.Repeat("n", emf.MaxNameLen)
	metrics[1].Value = -1e300
	var b bytes.Buffer
	require.NoError(t, emf.Write(&b, strings.Repeat("s", emf.MaxNamespaceLen), "c", at, metrics, nil))
	_, err := emftest.Check(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
	require.NoError(t, err)
}

func TestWriteInvalid(t *testing.T) {
	type args struct {
		namespace, command string
		at                 time.Time
		metrics            []emf.Metric
		props              map[string]any
	}
	metric := func(i int, edit func(*emf.Metric)) func(*args) {
		return func(a *args) { edit(&a.metrics[i]) }
	}
	props := func(p map[string]any) func(*args) { return func(a *args) { a.props = p } }
	tests := map[string]struct {
		edit func(*args)
		want string
	}{
		"empty namespace":    {func(a *args) { a.namespace = "" }, `namespace ""`},
		"long namespace":     {func(a *args) { a.namespace = strings.Repeat("s", 256) }, "must have 1 to 255 characters"},
		"empty command":      {func(a *args) { a.command = "" }, `command ""`},
		"zero time":          {func(a *args) { a.at = time.Time{} }, "no timestamp"},
		"no metrics":         {func(a *args) { a.metrics = nil }, "no metrics"},
		"too many metrics":   {func(a *args) { a.metrics = make101() }, "101 metrics: at most 100"},
		"empty name":         {metric(0, func(m *emf.Metric) { m.Name = "" }), `metric "": name must have 1 to 255`},
		"long name":          {metric(0, func(m *emf.Metric) { m.Name = strings.Repeat("n", 256) }), "name must have 1 to 255"},
		"name _aws":          {metric(0, func(m *emf.Metric) { m.Name = "_aws" }), `metric "_aws": name is reserved`},
		"name Command":       {metric(0, func(m *emf.Metric) { m.Name = "Command" }), `metric "Command": name is reserved`},
		"duplicate name":     {metric(1, func(m *emf.Metric) { m.Name = "Files" }), `metric "Files": given twice`},
		"unknown unit":       {metric(0, func(m *emf.Metric) { m.Unit = "Files" }), `unit "Files" is not a CloudWatch unit`},
		"unit case":          {metric(0, func(m *emf.Metric) { m.Unit = "count" }), `unit "count"`},
		"NaN":                {metric(0, func(m *emf.Metric) { m.Value = math.NaN() }), "value NaN is not finite"},
		"+Inf":               {metric(0, func(m *emf.Metric) { m.Value = math.Inf(1) }), "value +Inf is not finite"},
		"-Inf":               {metric(0, func(m *emf.Metric) { m.Value = math.Inf(-1) }), "value -Inf is not finite"},
		"property _aws":      {props(map[string]any{"_aws": 1}), `property "_aws": name is reserved`},
		"property Command":   {props(map[string]any{"Command": "x"}), `property "Command": name is reserved`},
		"property is metric": {props(map[string]any{"Files": 3}), `property "Files": name is also a metric`},
		"property no name":   {props(map[string]any{"": 3}), "property with an empty name"},
		"property not JSON":  {props(map[string]any{"f": func() {}}), `property "f": json: unsupported type`},
		"property NaN":       {props(map[string]any{"f": math.NaN()}), `property "f": json: unsupported value: NaN`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := args{namespace: "app/env/worker", command: "export", at: at, metrics: exportMetrics()}
			tc.edit(&a)
			var b bytes.Buffer
			err := emf.Write(&b, a.namespace, a.command, a.at, a.metrics, a.props)
			require.ErrorIs(t, err, emf.ErrInvalid)
			require.ErrorContains(t, err, tc.want)
			require.True(t, strings.HasPrefix(err.Error(), "emf: invalid metric line: "), err.Error())
			require.Zero(t, b.Len(), "nothing written")
		})
	}
}

func make101() []emf.Metric {
	m := make([]emf.Metric, 101)
	for i := range m {
		m[i] = emf.Metric{Name: fmt.Sprint("m", i), Unit: emf.UnitCount}
	}
	return m
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteError(t *testing.T) {
	err := emf.Write(failWriter{}, "a/b/c", "export", at, exportMetrics(), nil)
	require.EqualError(t, err, "emf: write line: disk full")
	require.NotErrorIs(t, err, emf.ErrInvalid)
}

func TestNamespace(t *testing.T) {
	tests := map[string]struct {
		env  map[string]string
		want string
	}{
		"outside Copilot": {nil, "benchling-webhook/local/worker"},
		"Copilot task": {map[string]string{"COPILOT_APPLICATION_NAME": "bw", "COPILOT_ENVIRONMENT_NAME": "prod", "COPILOT_SERVICE_NAME": "worker"},
			"bw/prod/worker"},
		"empty values default": {map[string]string{"COPILOT_APPLICATION_NAME": "bw", "COPILOT_ENVIRONMENT_NAME": "", "COPILOT_SERVICE_NAME": "job"},
			"bw/local/job"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, emf.Namespace(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }))
		})
	}
}

// TestUnitsMatchSchema keeps the units Write accepts and the schema's enum
// the same list.
func TestUnitsMatchSchema(t *testing.T) {
	b, err := os.ReadFile(emftest.SchemaPath())
	require.NoError(t, err)
	var s struct {
		Defs struct {
			Unit struct {
				Enum []string `json:"enum"`
			} `json:"unit"`
		} `json:"$defs"`
	}
	require.NoError(t, json.Unmarshal(b, &s))
	require.ElementsMatch(t, s.Defs.Unit.Enum, emf.Units)
	for _, u := range emf.Units {
		require.NoError(t, emf.Write(&bytes.Buffer{}, "a/b/c", "export", at, []emf.Metric{{Name: "X", Unit: u, Value: 1}}, nil), u)
	}
}

// TestCheckRejects makes sure the schema and the reference check catch
// documents CloudWatch would not turn into metrics.
func TestCheckRejects(t *testing.T) {
	const dir = `"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[["Command"]],"Metrics":[{"Name":"X","Unit":"Count"}]}]`
	tests := map[string]struct{ line, want string }{
		"valid":              {`{"_aws":{"Timestamp":1,` + dir + `},"Command":"c","X":1}`, ""},
		"array value":        {`{"_aws":{"Timestamp":1,` + dir + `},"Command":"c","X":[1,2.5]}`, ""},
		"no _aws":            {`{"Command":"c","X":1}`, "schema"},
		"float timestamp":    {`{"_aws":{"Timestamp":1.5,` + dir + `},"Command":"c","X":1}`, "schema"},
		"no timestamp":       {`{"_aws":{` + dir + `},"Command":"c","X":1}`, "schema"},
		"bad unit":           {`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[[]],"Metrics":[{"Name":"X","Unit":"Files"}]}]},"X":1}`, "schema"},
		"empty namespace":    {`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"","Dimensions":[[]],"Metrics":[]}]}}`, "schema"},
		"no dimension sets":  {`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[],"Metrics":[]}]}}`, "schema"},
		"31 dimensions":      {`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[[` + strings.Repeat(`"d",`, 30) + `"d"]],"Metrics":[]}]},"d":"v"}`, "schema"},
		"extra member":       {`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[[]],"Metrics":[],"Unit":"Count"}]}}`, "schema"},
		"dimension missing":  {`{"_aws":{"Timestamp":1,` + dir + `},"X":1}`, `dimension "Command" is not a string member`},
		"dimension a number": {`{"_aws":{"Timestamp":1,` + dir + `},"Command":3,"X":1}`, `dimension "Command" is not a string member`},
		"metric missing":     {`{"_aws":{"Timestamp":1,` + dir + `},"Command":"c"}`, `metric "X" is not a number`},
		"metric a string":    {`{"_aws":{"Timestamp":1,` + dir + `},"Command":"c","X":"1"}`, `metric "X" is not a number`},
		"metric nested":      {`{"_aws":{"Timestamp":1,` + dir + `},"Command":"c","X":{"v":1}}`, `metric "X" is not a number`},
		"two lines":          {`{"_aws":{"Timestamp":1,` + dir + `},` + "\n" + `"Command":"c","X":1}`, "not one line"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := emftest.Check([]byte(tc.line))
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestLines(t *testing.T) {
	out := "{\"time\":\"x\",\"level\":\"INFO\",\"msg\":\"export done\"}\n\r[====] 50%\n{\"_aws\":{}}\nnot json\n{\"_aws\":1}\r\n"
	require.Equal(t, [][]byte{[]byte(`{"_aws":{}}`), []byte(`{"_aws":1}`)}, emftest.Lines([]byte(out)))
}

func ExampleWrite() {
	lookup := func(k string) (string, bool) {
		v, ok := map[string]string{"COPILOT_APPLICATION_NAME": "bw", "COPILOT_ENVIRONMENT_NAME": "prod", "COPILOT_SERVICE_NAME": "worker"}[k]
		return v, ok
	}
	_ = emf.Write(os.Stdout, emf.Namespace(lookup), "reconcile", time.UnixMilli(1_700_000_000_000),
		[]emf.Metric{{Name: "StaleFound", Unit: emf.UnitCount, Value: 2}}, map[string]any{"outcome": "ok"})
	// Output:
	// {"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"bw/prod/worker","Dimensions":[["Command"]],"Metrics":[{"Name":"StaleFound","Unit":"Count"}]}]},"Command":"reconcile","StaleFound":2,"outcome":"ok"}
}

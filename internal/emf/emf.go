// Package emf writes CloudWatch embedded metric format (EMF) lines, so a task
// publishes metrics through its logs, without an agent; the line format is on
// [Write]. See docs/operations.md, "Metrics".
package emf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"time"
)

// ErrInvalid is wrapped by the errors [Write] returns for a line it refuses
// to write: a bad name, unit or value.
var ErrInvalid = errors.New("emf: invalid metric line")

// DimensionCommand is the dimension every line carries: the job's
// subcommand ("export", "reconcile").
const DimensionCommand = "Command"

// DefaultNamespace is the namespace outside a Copilot task.
const DefaultNamespace = "benchling-webhook/local/worker"

// Limits from the specification and CloudWatch's PutMetricData.
const (
	MaxMetrics      = 100  // metric definitions in one directive
	MaxNameLen      = 255  // a metric name (CloudWatch's MetricName limit)
	MaxNamespaceLen = 255  // a namespace (CloudWatch's limit; EMF allows 1024)
	maxDimValueLen  = 1024 // a dimension value
)

// Units used in this repository; any CloudWatch standard unit is accepted.
const (
	UnitCount        = "Count"
	UnitBytes        = "Bytes"
	UnitSeconds      = "Seconds"
	UnitMilliseconds = "Milliseconds"
	UnitNone         = "None"
)

// units are CloudWatch's standard units (MetricDatum.Unit).
var units = []string{
	"Seconds", "Microseconds", "Milliseconds",
	"Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
	"Bits", "Kilobits", "Megabits", "Gigabits", "Terabits",
	"Percent", "Count",
	"Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second",
	"Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second",
	"Count/Second", "None",
}

// Metric is one value of a line. Unit is a CloudWatch standard unit
// ("Count", "Bytes", "Seconds", …); empty means "None".
type Metric struct {
	Name  string
	Unit  string
	Value float64
}

// Namespace returns "<app>/<env>/<workload>" from COPILOT_APPLICATION_NAME,
// COPILOT_ENVIRONMENT_NAME and COPILOT_SERVICE_NAME, which Copilot sets in
// every task; each missing part comes from [DefaultNamespace]. lookup is
// os.LookupEnv in production (nil means os.LookupEnv).
func Namespace(lookup func(string) (string, bool)) string {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	parts := strings.Split(DefaultNamespace, "/")
	for i, k := range []string{"COPILOT_APPLICATION_NAME", "COPILOT_ENVIRONMENT_NAME", "COPILOT_SERVICE_NAME"} {
		if v, ok := lookup(k); ok && v != "" {
			parts[i] = v
		}
	}
	return strings.Join(parts, "/")
}

// Write writes one EMF line to w for command (the "Command" dimension)
// with the metrics, timestamped at, and props as extra top-level members
// that are not metrics (outcome, errorKind, packageName…). Members appear
// in a fixed order: _aws, Command, the metrics in order, props by key.
//
// It checks everything before writing and returns an error wrapping
// [ErrInvalid] for an empty or over-long namespace or name, a name that
// collides with _aws, Command, another metric or a property, an unknown
// unit, a value that is not finite, more than [MaxMetrics] metrics, or a
// property that cannot be encoded as JSON.
//
// Write calls w.Write once, with the whole line and its newline, and keeps
// nothing: it is safe for concurrent use as far as w is, and lines do not
// interleave when w's writes are serialised (a mutex, or one goroutine).
//
// A line carries one metric directive with the single dimension "Command"
// (the job's subcommand), the metric values as top-level members, and extra
// properties that are not metrics (an outcome, a package name) for Logs
// Insights:
//
//	{"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"app/env/worker",
//	"Dimensions":[["Command"]],"Metrics":[{"Name":"Files","Unit":"Count"}]}]},
//	"Command":"export","Files":12,"outcome":"ok"}
//
// Specification:
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
func Write(w io.Writer, namespace, command string, at time.Time, metrics []Metric, props map[string]any) error {
	line, err := encode(namespace, command, at, metrics, props)
	if err != nil {
		return err
	}
	if _, err := w.Write(line); err != nil {
		return fmt.Errorf("emf: write line: %w", err)
	}
	return nil
}

type directive struct {
	Namespace  string       `json:"Namespace"`
	Dimensions [][]string   `json:"Dimensions"`
	Metrics    []definition `json:"Metrics"`
}

type definition struct {
	Name string `json:"Name"`
	Unit string `json:"Unit,omitempty"`
}

type metadata struct {
	Timestamp         int64       `json:"Timestamp"`
	CloudWatchMetrics []directive `json:"CloudWatchMetrics"`
}

// encode checks the line and returns it, newline included.
func encode(namespace, command string, at time.Time, metrics []Metric, props map[string]any) ([]byte, error) {
	if err := check(namespace, command, at, metrics, props); err != nil {
		return nil, err
	}
	defs := make([]definition, len(metrics))
	for i, m := range metrics {
		defs[i] = definition{Name: m.Name, Unit: m.Unit}
	}
	var b bytes.Buffer
	b.WriteString(`{"_aws":`)
	if err := appendJSON(&b, metadata{
		Timestamp:         at.UnixMilli(),
		CloudWatchMetrics: []directive{{Namespace: namespace, Dimensions: [][]string{{DimensionCommand}}, Metrics: defs}},
	}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	member := func(k string, v any) error {
		b.WriteByte(',')
		_ = appendJSON(&b, k) // a string always encodes
		b.WriteByte(':')
		return appendJSON(&b, v)
	}
	_ = member(DimensionCommand, command)
	for _, m := range metrics {
		_ = member(m.Name, m.Value) // finite: checked
	}
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := member(k, props[k]); err != nil {
			return nil, fmt.Errorf("%w: property %q: %w", ErrInvalid, k, err)
		}
	}
	b.WriteString("}\n")
	return b.Bytes(), nil
}

// check validates the line's names, units and values.
func check(namespace, command string, at time.Time, metrics []Metric, props map[string]any) error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...))
	}
	if namespace == "" || len(namespace) > MaxNamespaceLen {
		bad("namespace %q: must have 1 to %d characters", namespace, MaxNamespaceLen)
	}
	if command == "" || len(command) > maxDimValueLen {
		bad("command %q: must have 1 to %d characters", command, maxDimValueLen)
	}
	if at.IsZero() {
		bad("no timestamp")
	}
	switch {
	case len(metrics) == 0:
		bad("no metrics")
	case len(metrics) > MaxMetrics:
		bad("%d metrics: at most %d", len(metrics), MaxMetrics)
	}
	seen := make(map[string]bool, len(metrics))
	for _, m := range metrics {
		switch {
		case m.Name == "" || len(m.Name) > MaxNameLen:
			bad("metric %q: name must have 1 to %d characters", m.Name, MaxNameLen)
		case reserved(m.Name):
			bad("metric %q: name is reserved", m.Name)
		case seen[m.Name]:
			bad("metric %q: given twice", m.Name)
		}
		seen[m.Name] = true
		if m.Unit != "" && !slices.Contains(units, m.Unit) {
			bad("metric %q: unit %q is not a CloudWatch unit", m.Name, m.Unit)
		}
		if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
			bad("metric %q: value %v is not finite", m.Name, m.Value)
		}
	}
	for k := range props {
		switch {
		case k == "":
			bad("property with an empty name")
		case reserved(k):
			bad("property %q: name is reserved", k)
		case seen[k]:
			bad("property %q: name is also a metric", k)
		}
	}
	return errors.Join(errs...)
}

// reserved reports whether name is a member the line itself uses.
func reserved(name string) bool {
	return name == "_aws" || name == DimensionCommand
}

// appendJSON appends v's JSON encoding to b, without escaping HTML
// characters (the line is for logs, not a web page).
func appendJSON(b *bytes.Buffer, v any) error {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err // Encode writes nothing on error
	}
	b.Truncate(b.Len() - 1) // Encode's newline
	return nil
}

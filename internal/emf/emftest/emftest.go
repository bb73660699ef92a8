// Package emftest checks embedded metric format lines in tests, against the
// format's JSON Schema and for what a schema cannot say. See docs/operations.md.
package emftest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var (
	schemaOnce sync.Once
	schema     *jsonschema.Schema
	schemaErr  error
)

// SchemaPath is the schema's file, found from this source file's path:
// tests run with the sources at hand (not with -trimpath).
func SchemaPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "emf.schema.json")
}

func loadSchema() (*jsonschema.Schema, error) {
	schemaOnce.Do(func() {
		f, err := os.Open(SchemaPath())
		if err != nil {
			schemaErr = err
			return
		}
		defer f.Close()
		doc, err := jsonschema.UnmarshalJSON(f)
		if err != nil {
			schemaErr = fmt.Errorf("emf.schema.json: %w", err)
			return
		}
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		if err := c.AddResource("emf.schema.json", doc); err != nil {
			schemaErr = err
			return
		}
		schema, schemaErr = c.Compile("emf.schema.json")
	})
	return schema, schemaErr
}

// Lines returns the lines of out that are EMF documents: JSON objects with
// an "_aws" member. Other lines (log lines, a progress bar) are skipped.
func Lines(out []byte) [][]byte {
	var lines [][]byte
	for line := range bytes.Lines(out) {
		line = bytes.TrimRight(line, "\r\n")
		var doc map[string]json.RawMessage
		if json.Unmarshal(line, &doc) != nil {
			continue
		}
		if _, ok := doc["_aws"]; ok {
			lines = append(lines, line)
		}
	}
	return lines
}

// Check validates one EMF line (without its newline) and returns the
// decoded document, numbers as json.Number.
func Check(line []byte) (map[string]any, error) {
	if bytes.ContainsAny(line, "\r\n") {
		return nil, errors.New("emftest: not one line")
	}
	s, err := loadSchema()
	if err != nil {
		return nil, err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(line))
	if err != nil {
		return nil, fmt.Errorf("emftest: not JSON: %w", err)
	}
	if err := s.Validate(inst); err != nil {
		return nil, fmt.Errorf("emftest: schema: %w", err)
	}
	doc := inst.(map[string]any) // the schema requires an object
	return doc, References(doc)
}

// References checks that the targets of every directive in doc are members
// of the root node: each dimension a string of 1 to 1024 characters, each
// metric a number or an array of at most 100 numbers. doc must have passed
// the schema.
func References(doc map[string]any) error {
	var errs []error
	aws := doc["_aws"].(map[string]any)
	for i, d := range aws["CloudWatchMetrics"].([]any) {
		d := d.(map[string]any)
		for _, set := range d["Dimensions"].([]any) {
			for _, k := range set.([]any) {
				k := k.(string)
				v, ok := doc[k].(string)
				switch {
				case !ok:
					errs = append(errs, fmt.Errorf("emftest: directive %d: dimension %q is not a string member of the root", i, k))
				case v == "" || len(v) > 1024:
					errs = append(errs, fmt.Errorf("emftest: directive %d: dimension %q: value must have 1 to 1024 characters", i, k))
				}
			}
		}
		for _, m := range d["Metrics"].([]any) {
			name := m.(map[string]any)["Name"].(string)
			if !isMetricValue(doc[name]) {
				errs = append(errs, fmt.Errorf("emftest: directive %d: metric %q is not a number or an array of at most 100 numbers at the root", i, name))
			}
		}
	}
	return errors.Join(errs...)
}

func isMetricValue(v any) bool {
	switch v := v.(type) {
	case json.Number, float64:
		return true
	case []any:
		if len(v) > 100 {
			return false
		}
		for _, e := range v {
			switch e.(type) {
			case json.Number, float64:
			default:
				return false
			}
		}
		return true
	}
	return false
}

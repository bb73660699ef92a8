package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/store"
)

const bucket = "quilt-local"

// objects is a fake bucket set: "bucket/key" → body.
type objects map[string][]byte

func (o objects) get(_ context.Context, b, key string, max int64) ([]byte, error) {
	data, ok := o[b+"/"+key]
	if !ok {
		return nil, fmt.Errorf("get s3://%s/%s: %w", b, key, store.ErrNotFound)
	}
	if int64(len(data)) > max {
		return nil, store.ErrTooLarge
	}
	return data, nil
}

// fixtureEntry is internal/benchling's entry as the state machine stores
// entry.json: without the API's {"entry": …} wrapper.
func fixtureEntry(t *testing.T) []byte {
	t.Helper()
	var whole struct{ Entry json.RawMessage }
	require.NoError(t, json.Unmarshal(read(t, "../benchling/testdata/entry.json"), &whole))
	return whole.Entry
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return data
}

// bucketWith is the testdata config and schema in the bucket, with edit
// applied to the config's text.
func bucketWith(t *testing.T, edit func(string) string) objects {
	cfg := string(read(t, "testdata/config.yml"))
	if edit != nil {
		cfg = edit(cfg)
	}
	return objects{
		bucket + "/" + ConfigKey:                                 []byte(cfg),
		bucket + "/.quilt/workflows/benchling-entry.schema.json": read(t, "testdata/benchling-entry.schema.json"),
	}
}

func TestCheck(t *testing.T) {
	entry := fixtureEntry(t)
	pkg := Package{Name: "benchling/etr_0uKCQZ8f", Message: "Benchling webhook payload", Metadata: entry}
	noID := []byte(`{"displayId": "EXP1", "webURL": "https://x.benchling.com/e"}`)
	tests := map[string]struct {
		objs     objects
		workflow string
		pkg      Package
		reason   string // "" = accepted
		detail   string // in the error
		want     Result
	}{
		"no config, none configured": {objs: objects{}, workflow: "", pkg: pkg, want: Result{}},
		"no config, none (setting)":  {objs: objects{}, workflow: None, pkg: pkg, want: Result{}},
		"no config, one configured":  {objs: objects{}, workflow: "benchling", pkg: pkg, reason: ReasonUnknown, detail: "does not exist"},
		"required, none configured":  {objs: bucketWith(t, nil), workflow: None, pkg: pkg, reason: ReasonRequired, detail: "set quilt-workflow to one of anything, benchling"},
		"not required, none configured": {objs: bucketWith(t, func(s string) string { return s + "is_workflow_required: false\n" }),
			workflow: "", pkg: pkg, want: Result{Config: true}},
		"default workflow used": {objs: bucketWith(t, func(s string) string { return s + "default_workflow: benchling\n" }),
			workflow: "", pkg: Package{Name: pkg.Name, Message: "m", Metadata: noID}, reason: ReasonMetadata, detail: "missing property 'id'"},
		"unknown workflow": {objs: bucketWith(t, nil), workflow: "alpha", pkg: pkg, reason: ReasonUnknown, detail: "it has anything, benchling"},
		"valid":            {objs: bucketWith(t, nil), workflow: "benchling", pkg: pkg, want: Result{Config: true, Workflow: "benchling"}},
		"no schema":        {objs: bucketWith(t, nil), workflow: "anything", pkg: Package{Name: "x/y", Metadata: []byte(`[]`)}, want: Result{Config: true, Workflow: "anything"}},
		"metadata fails":   {objs: bucketWith(t, nil), workflow: "benchling", pkg: Package{Name: pkg.Name, Message: "m", Metadata: noID}, reason: ReasonMetadata, detail: `schema "benchling-entry" (s3://quilt-local/.quilt/workflows/benchling-entry.schema.json): at '': missing property 'id'`},
		"wrong id pattern": {objs: bucketWith(t, nil), workflow: "benchling", pkg: Package{Name: pkg.Name, Message: "m", Metadata: []byte(`{"id": "bfi_1", "displayId": "a", "webURL": "u"}`)}, reason: ReasonMetadata, detail: "at '/id'"},
		"handle pattern":   {objs: bucketWith(t, nil), workflow: "benchling", pkg: Package{Name: "lab/etr_0uKCQZ8f", Message: "m", Metadata: entry}, reason: ReasonHandle, detail: "lab/etr_0uKCQZ8f does not match"},
		"message required": {objs: bucketWith(t, func(s string) string {
			return strings.Replace(s, "    name: No checks", "    name: No checks\n    is_message_required: true", 1)
		}), workflow: "anything", pkg: Package{Name: "x/y", Metadata: entry}, reason: ReasonMessage},
		"broken yaml":     {objs: bucketWith(t, func(string) string { return "workflows: [" }), workflow: "benchling", pkg: pkg, reason: ReasonConfig},
		"no version":      {objs: bucketWith(t, func(s string) string { return strings.Replace(s, "version:", "old:", 1) }), workflow: "benchling", pkg: pkg, reason: ReasonConfig, detail: "missing property 'version'"},
		"version too new": {objs: bucketWith(t, func(s string) string { return strings.Replace(s, `base: "1"`, `base: "2"`, 1) }), workflow: "benchling", pkg: pkg, reason: ReasonConfig, detail: "newer than"},
		"missing schema":  {objs: bucketWith(t, func(s string) string { return strings.Replace(s, "benchling-entry.schema.json", "gone.json", 1) }), workflow: "benchling", pkg: pkg, reason: ReasonConfig, detail: "does not exist"},
		"schema not listed": {objs: bucketWith(t, func(s string) string {
			return strings.Replace(s, "  benchling-entry:\n    url", "  other:\n    url", 1)
		}), workflow: "benchling", pkg: pkg, reason: ReasonConfig, detail: "not in the config's schemas"},
		"schema with $ref": {objs: func() objects {
			o := bucketWith(t, nil)
			o[bucket+"/.quilt/workflows/benchling-entry.schema.json"] = []byte(`{"properties": {"entry": {"$ref": "#/definitions/e"}}, "definitions": {"e": {}}}`)
			return o
		}(), workflow: "benchling", pkg: pkg, reason: ReasonConfig, detail: "$ref"},
		"schema of another draft": {objs: func() objects {
			o := bucketWith(t, nil)
			o[bucket+"/.quilt/workflows/benchling-entry.schema.json"] = []byte(`{"$schema": "https://json-schema.org/draft/2020-12/schema"}`)
			return o
		}(), workflow: "benchling", pkg: pkg, reason: ReasonConfig, detail: "unsupported $schema"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := &Checker{Bucket: bucket, Workflow: tc.workflow, Get: tc.objs.get}
			res, err := c.Check(context.Background(), tc.pkg)
			if tc.reason == "" {
				require.NoError(t, err)
				require.Equal(t, tc.want, res)
				return
			}
			var rej *RejectedError
			require.ErrorAs(t, err, &rej)
			require.Equal(t, tc.reason, rej.Reason, "%v", err)
			require.Contains(t, err.Error(), tc.detail)
			require.ErrorIs(t, err, ErrRejected)
			require.Equal(t, exitcode.WorkflowRejected, exitcode.Resolve(err))
		})
	}
}

// TestCheckReadErrors: an error reading the config other than "not found"
// is not a refusal: it keeps its code (access denied stays exit 2).
func TestCheckReadErrors(t *testing.T) {
	denied := exitcode.Wrap(errors.New("AccessDenied"), exitcode.Usage)
	c := &Checker{Bucket: bucket, Workflow: "benchling", Get: func(context.Context, string, string, int64) ([]byte, error) { return nil, denied }}
	_, err := c.Check(context.Background(), Package{Name: "benchling/etr_1", Metadata: []byte(`{}`)})
	require.ErrorIs(t, err, denied)
	require.NotErrorIs(t, err, ErrRejected)
	require.Equal(t, exitcode.Usage, exitcode.Resolve(err))
}

// TestFormatsAreAnnotations: as in quilt3 (Draft7Validator without a
// format checker), "format" does not refuse a value: entry.json's
// createdAt is a date-time, which the testdata schema calls a "date".
func TestFormatsAreAnnotations(t *testing.T) {
	c := &Checker{Bucket: bucket, Workflow: "benchling", Get: bucketWith(t, nil).get}
	_, err := c.Check(context.Background(), Package{Name: "benchling/etr_1", Metadata: []byte(`{"id": "etr_1", "displayId": "EXP1", "webURL": "not a uri", "createdAt": "2025-03-24T21:34:16Z"}`)})
	require.NoError(t, err)
}

func TestParse(t *testing.T) {
	cfg, err := Parse(read(t, "testdata/config.yml"))
	require.NoError(t, err)
	require.True(t, cfg.IsWorkflowRequired)
	require.Equal(t, "1", cfg.Version)
	require.Equal(t, []string{"anything", "benchling"}, cfg.Names())
	require.Equal(t, "s3://quilt-local/.quilt/workflows/benchling-entry.schema.json", cfg.Schemas["benchling-entry"])
	for text, want := range map[string]string{
		"version: \"1\"\nworkflows: {a: {name: A}}":   "",
		"version: 1.1\nworkflows: {a: {name: A}}":     "at '/version': 'oneOf' failed", // a number, not a string
		"version: \"1.2\"\nworkflows: {a: {name: A}}": "newer than",
		"version: \"1\"\nworkflows: {}":               "at '/workflows': minProperties",
		"version: \"1\"\nworkflows: {a: {}}":          "at '/workflows/a': missing property 'name'",
		// jsonschema/v6 names the location of a propertyNames error
		// inconsistently (sometimes another property's): only the name.
		"version: \"1\"\nworkflows: {\"a b\": {name: A}}": "invalid propertyName 'a b'",
	} {
		_, err := Parse([]byte(text))
		if want == "" {
			require.NoError(t, err, text)
		} else {
			require.ErrorContains(t, err, want, text)
		}
	}
}

func TestValidName(t *testing.T) {
	require.True(t, ValidName("benchling"))
	require.True(t, ValidName("_a-1"))
	require.False(t, ValidName("1a"))
	require.False(t, ValidName(""))
	require.False(t, ValidName(strings.Repeat("a", 65)))
}

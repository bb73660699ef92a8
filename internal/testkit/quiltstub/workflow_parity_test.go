package quiltstub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/store"
	"benchling-webhook/internal/testkit/testenv"
	"benchling-webhook/internal/workflow"
)

// The parity of job export's workflow pre-check (internal/workflow) and
// this stand-in (what Quilt does with our message): for each bucket,
// setting and package, the pre-check refuses exactly when Quilt would,
// for the same class of reason. The two verdicts are independent code:
// they share only quilt3's config schema (data, verbatim) and the YAML
// decoding (DecodeYAML). Design: docs/testkit.md, "quiltstub", Workflows.

const parityBucket = "quilt-b"

// entriesReason is the class of a refusal only Quilt makes: the files
// fail the entries_schema, which the pre-check cannot see.
const entriesReason = "entries-schema"

// parityConfig has three workflows, requires one (is_workflow_required
// absent), and keeps its schema in the bucket, as Quilt's docs show it.
const parityConfig = `version:
  base: "1"
  catalog: "1"
workflows:
  benchling:
    name: Benchling entries
    metadata_schema: benchling-entry
    handle_pattern: ^benchling/etr_
  anything:
    name: No checks
  strict:
    name: Needs a message
    is_message_required: true
schemas:
  benchling-entry:
    url: s3://quilt-b/.quilt/workflows/benchling-entry.schema.json
`

const paritySchemaKey = ".quilt/workflows/benchling-entry.schema.json"

type parityCase struct {
	config  *string           // .quilt/workflows/config.yml; nil: none
	objects map[string]string // more objects, "bucket/key" (a schema); "" deletes
	setting string            // quilt-workflow: "", "none" or a name
	pkg     string            // the package name (default benchling/etr_0uKCQZ8f)
	meta    string            // entry.json (default the fixture entry)
	message *string           // the commit message (default ours)
	want    string            // both sides' reason class; "" accepted
	// differs, when set, documents why Quilt decides otherwise: quilt is
	// then the stand-in's (Quilt's) class, want the pre-check's.
	differs, quilt string
}

func cfg(s string) *string { return &s }

// edit is parityConfig with old replaced by new (old must be there).
func edit(t *testing.T, old, new string) *string {
	t.Helper()
	require.Contains(t, parityConfig, old)
	s := strings.Replace(parityConfig, old, new, 1)
	return &s
}

func TestWorkflowParity(t *testing.T) {
	schema, err := os.ReadFile("../../workflow/testdata/benchling-entry.schema.json")
	require.NoError(t, err)
	var whole struct{ Entry json.RawMessage }
	data, err := os.ReadFile("../../benchling/testdata/entry.json")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &whole))
	entry := string(whole.Entry)
	noID := `{"displayId": "EXP1", "webURL": "https://x.benchling.com/e"}`
	empty := ""
	schemaIs := func(s string) map[string]string { return map[string]string{parityBucket + "/" + paritySchemaKey: s} }
	entriesKey := parityBucket + "/.quilt/workflows/entries.schema.json"
	withEntries := func() *string { // "anything" with an entries_schema
		s := *edit(t, "    name: No checks\n", "    name: No checks\n    entries_schema: entries\n")
		s = strings.Replace(s, "schemas:\n", "schemas:\n  entries:\n    url: s3://quilt-b/.quilt/workflows/entries.schema.json\n", 1)
		return &s
	}()
	const entriesSchema = `{"type": "array", "contains": {"properties": {"logical_key": {"const": "data.csv"}}}}`

	cases := map[string]parityCase{
		// No config: only a named workflow is refused.
		"no config, setting empty":   {setting: ""},
		"no config, setting none":    {setting: "none"},
		"no config, a workflow set":  {setting: "benchling", want: workflow.ReasonUnknown},
		"no config, none, no schema": {setting: "none", meta: `[]`},
		// Required (the default) or not.
		"required, none set":   {config: cfg(parityConfig), setting: "none", want: workflow.ReasonRequired},
		"required, empty set":  {config: cfg(parityConfig), setting: "", want: workflow.ReasonRequired},
		"required, valid":      {config: cfg(parityConfig), setting: "benchling"},
		"required, unknown":    {config: cfg(parityConfig), setting: "gamma", want: workflow.ReasonUnknown},
		"required: true":       {config: edit(t, "workflows:", "is_workflow_required: true\nworkflows:"), setting: "none", want: workflow.ReasonRequired},
		"not required, none":   {config: edit(t, "workflows:", "is_workflow_required: false\nworkflows:"), setting: "none"},
		"not required: no":     {config: edit(t, "workflows:", "is_workflow_required: no\nworkflows:"), setting: "none"}, // PyYAML: False
		"not required, a name": {config: edit(t, "workflows:", "is_workflow_required: false\nworkflows:"), setting: "benchling", meta: noID, want: workflow.ReasonMetadata},
		// default_workflow: for a message without a workflow only.
		"default, none set, fails":    {config: edit(t, "workflows:", "default_workflow: benchling\nworkflows:"), setting: "none", meta: noID, want: workflow.ReasonMetadata},
		"default, none set, passes":   {config: edit(t, "workflows:", "default_workflow: benchling\nworkflows:"), setting: "none"},
		"default, a setting wins":     {config: edit(t, "workflows:", "default_workflow: benchling\nworkflows:"), setting: "anything", meta: noID},
		"default not in workflows":    {config: edit(t, "workflows:", "default_workflow: gamma\nworkflows:"), setting: "none", want: workflow.ReasonUnknown},
		"default, not required, none": {config: edit(t, "workflows:", "is_workflow_required: false\ndefault_workflow: benchling\nworkflows:"), setting: "none", meta: noID, want: workflow.ReasonMetadata},
		// Several workflows: only the chosen one's rules apply.
		"another workflow, no checks": {config: cfg(parityConfig), setting: "anything", pkg: "lab/x", meta: noID},
		// handle_pattern: searched, not anchored.
		"handle refused":         {config: cfg(parityConfig), setting: "benchling", pkg: "lab/etr_0uKCQZ8f", want: workflow.ReasonHandle},
		"handle unanchored":      {config: edit(t, "^benchling/etr_", "etr_"), setting: "benchling"},
		"handle anchored at end": {config: edit(t, "^benchling/etr_", "etr_$"), setting: "benchling", want: workflow.ReasonHandle},
		"handle not a regex":     {config: edit(t, "^benchling/etr_", `"(("`), setting: "benchling", want: workflow.ReasonConfig},
		// Python's re takes a lookahead, Go's RE2 does not: both Go sides
		// refuse what Quilt would accept (docs/deploy.md, "Quilt workflows").
		"handle with lookahead (RE2)": {config: edit(t, "^benchling/etr_", `"^(?=benchling/)"`), setting: "benchling", want: workflow.ReasonConfig},
		// is_message_required: our message always has one.
		"message required, ours":  {config: cfg(parityConfig), setting: "strict"},
		"message required, empty": {config: cfg(parityConfig), setting: "strict", message: &empty, want: workflow.ReasonMessage},
		// metadata_schema: required fields, patterns, format, $ref, $schema.
		"metadata lacks a field":   {config: cfg(parityConfig), setting: "benchling", meta: noID, want: workflow.ReasonMetadata},
		"metadata fails a pattern": {config: cfg(parityConfig), setting: "benchling", meta: `{"id": "bfi_1", "displayId": "EXP1", "webURL": "u"}`, want: workflow.ReasonMetadata},
		"metadata not an object":   {config: cfg(parityConfig), setting: "benchling", meta: `[]`, want: workflow.ReasonMetadata},
		"format is an annotation":  {config: cfg(parityConfig), setting: "benchling", meta: `{"id": "etr_1", "displayId": "EXP1", "webURL": "not a uri", "createdAt": "not a date"}`},
		// Go's library always asserts format "regex" and compiles
		// patterns as RE2: both Go sides are stricter than Quilt here
		// (docs/deploy.md, "Quilt workflows").
		"format regex (Go only)":       {config: cfg(parityConfig), objects: schemaIs(`{"properties": {"id": {"format": "regex"}}}`), setting: "benchling", meta: `{"id": "(("}`, want: workflow.ReasonMetadata},
		"pattern with lookahead (RE2)": {config: cfg(parityConfig), objects: schemaIs(`{"properties": {"id": {"pattern": "^(?=etr_)"}}}`), setting: "benchling", want: workflow.ReasonConfig},
		"schema with $ref":             {config: cfg(parityConfig), objects: schemaIs(`{"properties": {"id": {"$ref": "#/definitions/id"}}, "definitions": {"id": {}}}`), setting: "benchling", want: workflow.ReasonConfig},
		"schema of draft 2020-12":      {config: cfg(parityConfig), objects: schemaIs(`{"$schema": "https://json-schema.org/draft/2020-12/schema"}`), setting: "benchling", want: workflow.ReasonConfig},
		"schema with $schema 7":        {config: cfg(parityConfig), objects: schemaIs(`{"$schema": 7}`), setting: "benchling", want: workflow.ReasonConfig},
		"schema not JSON":              {config: cfg(parityConfig), objects: schemaIs(`{"type": `), setting: "benchling", want: workflow.ReasonConfig},
		"schema not a schema":          {config: cfg(parityConfig), objects: schemaIs(`{"type": 5}`), setting: "benchling", want: workflow.ReasonConfig},
		"schema missing":               {config: cfg(parityConfig), objects: schemaIs(""), setting: "benchling", want: workflow.ReasonConfig},
		"schema not in schemas":        {config: edit(t, "  benchling-entry:\n    url", "  other:\n    url"), setting: "benchling", want: workflow.ReasonConfig},
		"schema url not s3":            {config: edit(t, "s3://quilt-b/", "https://example.com/"), setting: "benchling", want: workflow.ReasonConfig},
		"schema unused and missing":    {config: cfg(parityConfig), objects: schemaIs(""), setting: "anything"},
		"schema in another bucket":     {config: edit(t, "s3://quilt-b/", "s3://other-b/"), objects: map[string]string{"other-b/" + paritySchemaKey: string(schema), parityBucket + "/" + paritySchemaKey: ""}, setting: "benchling", meta: noID, want: workflow.ReasonMetadata},
		"broken YAML":                  {config: cfg("workflows: ["), setting: "benchling", want: workflow.ReasonConfig},
		"empty config":                 {config: cfg(""), setting: "none", want: workflow.ReasonConfig},
		"config is a list":             {config: cfg("- version: \"1\"\n"), setting: "none", want: workflow.ReasonConfig},
		"config: no version":           {config: edit(t, "version:", "old:"), setting: "benchling", want: workflow.ReasonConfig},
		"config: version a number":     {config: edit(t, "version:\n  base: \"1\"\n  catalog: \"1\"", "version: 1"), setting: "benchling", want: workflow.ReasonConfig},
		"config: version 01":           {config: edit(t, `base: "1"`, `base: "01"`), setting: "benchling", want: workflow.ReasonConfig},
		"config: version 1.1.0":        {config: edit(t, `base: "1"`, `base: "1.1.0"`), setting: "benchling"},
		"config: version too new":      {config: edit(t, `base: "1"`, `base: "1.2"`), setting: "benchling", want: workflow.ReasonConfig},
		"config: major too new":        {config: edit(t, `base: "1"`, `base: "2"`), setting: "none", want: workflow.ReasonConfig},
		"config: unknown key":          {config: edit(t, "workflows:", "is_workflow_requried: false\nworkflows:"), setting: "benchling", want: workflow.ReasonConfig},
		"config: workflow typo":        {config: edit(t, "    metadata_schema:", "    metadata-schema:"), setting: "benchling", want: workflow.ReasonConfig},
		"config: workflow no name":     {config: edit(t, "    name: No checks\n", ""), setting: "benchling", want: workflow.ReasonConfig},
		"config: bad workflow name":    {config: edit(t, "  anything:", "  1st:"), setting: "benchling", want: workflow.ReasonConfig},
		"config: no workflows":         {config: cfg("version: \"1\"\nworkflows: {}\n"), setting: "none", want: workflow.ReasonConfig},
		"config: empty schemas":        {config: cfg("version: \"1\"\nis_workflow_required: false\nworkflows: {a: {name: A}}\nschemas: {}\n"), setting: "none", want: workflow.ReasonConfig},
		"config: required not bool":    {config: edit(t, "workflows:", "is_workflow_required: 0\nworkflows:"), setting: "benchling", want: workflow.ReasonConfig},
		"config: catalog and extras":   {config: edit(t, "workflows:", "catalog: {anything: true}\nsuccessors:\n  s3://other-b:\n    title: Other\nworkflows:"), setting: "benchling"},
		// entries_schema: Quilt checks the files, which the pre-check
		// sees only after the download; it loads the schema, so an
		// unusable one is refused, and reports it (Result.EntriesSchema).
		"entries schema unusable": {config: withEntries, objects: map[string]string{entriesKey: `{"$ref": "#"}`}, setting: "anything", want: workflow.ReasonConfig},
		"entries schema missing":  {config: withEntries, setting: "anything", want: workflow.ReasonConfig},
		"entries schema passes":   {config: withEntries, objects: map[string]string{entriesKey: `{"type": "array", "minItems": 1}`}, setting: "anything"},
		"entries schema fails": {config: withEntries, objects: map[string]string{entriesKey: entriesSchema}, setting: "anything",
			differs: "entries_schema is checked against the package's files, which job export knows only after the download; it logs a warning instead", quilt: entriesReason},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			objs := map[string]string{parityBucket + "/" + paritySchemaKey: string(schema)}
			if tc.config != nil {
				objs[parityBucket+"/"+workflow.ConfigKey] = *tc.config
			}
			for k, v := range tc.objects {
				if v == "" {
					delete(objs, k)
				} else {
					objs[k] = v
				}
			}
			if tc.pkg == "" {
				tc.pkg = "benchling/etr_0uKCQZ8f"
			}
			if tc.meta == "" {
				tc.meta = entry
			}
			message := "Benchling webhook payload - 2025-03-24T21:34:16Z"
			if tc.message != nil {
				message = *tc.message
			}

			ours := precheck(t, objs, tc.setting, tc.pkg, message, tc.meta)
			quilt := quiltVerdict(t, objs, tc.setting, tc.pkg, message, tc.meta)
			if tc.differs == "" {
				assert.Equal(t, tc.want, ours, "the pre-check's verdict")
				assert.Equal(t, tc.want, quilt, "Quilt's verdict (the stand-in)")
				return
			}
			// A documented difference: exactly this one.
			assert.Equal(t, tc.want, ours, "the pre-check's verdict (%s)", tc.differs)
			assert.Equal(t, tc.quilt, quilt, "Quilt's verdict (%s)", tc.differs)
			assert.NotEqual(t, ours, quilt, "a documented difference that is none: drop it from the table")
		})
	}
}

// precheck is job export's verdict: its reason class, "" accepted. The
// message does not matter to it but through is_message_required.
func precheck(t *testing.T, objs map[string]string, setting, pkg, message, meta string) string {
	t.Helper()
	c := &workflow.Checker{Bucket: parityBucket, Workflow: setting, Get: func(_ context.Context, bucket, key string, _ int64) ([]byte, error) {
		if v, ok := objs[bucket+"/"+key]; ok {
			return []byte(v), nil
		}
		return nil, store.ErrNotFound
	}}
	res, err := c.Check(t.Context(), workflow.Package{Name: pkg, Message: message, Metadata: []byte(meta)})
	if err == nil {
		if strings.Contains(objs[parityBucket+"/"+workflow.ConfigKey], "entries_schema") {
			assert.NotEmpty(t, res.EntriesSchema, "an entries_schema the pre-check did not check is reported")
		}
		return ""
	}
	var rej *workflow.RejectedError
	require.ErrorAs(t, err, &rej)
	return rej.Reason
}

// quiltVerdict is Quilt's verdict on the message our state machine sends
// for the setting (sentMessage), as the stand-in decides it, mapped to
// the pre-check's reason classes.
func quiltVerdict(t *testing.T, objs map[string]string, setting, pkg, message, meta string) string {
	t.Helper()
	m, err := parseMessage(sentMessage(t, setting, pkg, message))
	require.NoError(t, err)
	p := &Packager{opts: Options{Client: mapS3(objs)}}
	md, err := decodeJSON([]byte(meta))
	require.NoError(t, err)
	entries := []Entry{{LogicalKey: "README.md", Size: 120}, {LogicalKey: "entry.json", Size: int64(len(meta))}}
	_, err = p.validateWorkflow(t.Context(), *m.registry, m.workflow, *m.packageName, md, m.commit, entries)
	if err == nil {
		return ""
	}
	var ref *Refusal
	require.ErrorAs(t, err, &ref, "Quilt refuses with an exception, not with a stand-in error")
	switch {
	case ref.Kind == ConfigurationError, ref.Kind == RegexError,
		ref.Kind == QuiltException && strings.Contains(ref.Message, "$ref"):
		return workflow.ReasonConfig
	case ref.Kind == QuiltException && ref.Message == "Workflow required, but none specified.":
		return workflow.ReasonRequired
	case ref.Kind == QuiltException && (strings.HasPrefix(ref.Message, "There is no ") || strings.Contains(ref.Message, "but no workflows config exist")):
		return workflow.ReasonUnknown
	case ref.Kind == WorkflowValidationError && strings.HasPrefix(ref.Message, "Package name"):
		return workflow.ReasonHandle
	case ref.Kind == WorkflowValidationError && strings.HasPrefix(ref.Message, "Commit message"):
		return workflow.ReasonMessage
	case ref.Kind == WorkflowValidationError && strings.HasPrefix(ref.Message, "Metadata"):
		return workflow.ReasonMetadata
	case ref.Kind == WorkflowValidationError && strings.HasPrefix(ref.Message, "Package entries"):
		return entriesReason
	}
	t.Fatalf("a refusal the table has no class for: %v", ref)
	return ""
}

// sentMessage is the SQS message the packaging machine sends for the
// quilt-workflow setting: SendToQuilt, then QuiltWorkflowNamed drops the
// workflow field for "none" or "" (TestSentMessageIsTheMachines).
func sentMessage(t *testing.T, setting, pkg, message string) string {
	t.Helper()
	msg := map[string]string{"source_prefix": "s3://" + parityBucket + "/" + pkg + "/", "registry": parityBucket,
		"package_name": pkg, "metadata_uri": "entry.json", "commit_message": message}
	if setting != "none" && setting != "" {
		msg["workflow"] = setting
	}
	b, err := json.Marshal(msg)
	require.NoError(t, err)
	return string(b)
}

// TestSentMessageIsTheMachines: sentMessage drops the workflow where
// statemachine/packaging.asl.json does, so Quilt never sees "workflow":
// "" (which it refuses when the bucket has no config) from us.
func TestSentMessageIsTheMachines(t *testing.T) {
	root, err := testenv.RepoRoot()
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join(root, "statemachine", "packaging.asl.json"))
	require.NoError(t, err)
	var asl struct {
		States map[string]struct {
			Next       string
			Parameters map[string]any
			Choices    []struct {
				Or []struct {
					Variable, StringEquals string
				}
				Next string
			}
		}
	}
	require.NoError(t, json.Unmarshal(data, &asl))
	send := asl.States["SendToQuilt"]
	assert.Equal(t, "${QuiltWorkflow}", send.Parameters["workflow"], "SendToQuilt names the setting")
	named := asl.States[send.Next]
	require.Len(t, named.Choices, 1, send.Next)
	var dropped []string
	for _, c := range named.Choices[0].Or {
		assert.Equal(t, "$.quiltMessage.workflow", c.Variable)
		dropped = append(dropped, c.StringEquals)
	}
	assert.ElementsMatch(t, []string{"none", ""}, dropped, "the settings sent without a workflow")
	without := asl.States[named.Choices[0].Next].Parameters
	require.NotEmpty(t, without)
	for k := range without {
		assert.NotContains(t, k, "workflow", "the message without a workflow has none")
	}
	for _, s := range []string{"none", ""} {
		assert.NotContains(t, sentMessage(t, s, "benchling/etr_1", "m"), `"workflow"`)
	}
	assert.Contains(t, sentMessage(t, "benchling", "benchling/etr_1", "m"), `"workflow":"benchling"`)
}

// mapS3 serves GetObject from "bucket/key" → body; a missing key is
// S3's NoSuchKey.
type mapS3 map[string]string

func (m mapS3) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	v, ok := m[aws.ToString(in.Bucket)+"/"+aws.ToString(in.Key)]
	if !ok {
		return nil, &smithy.GenericAPIError{Code: "NoSuchKey", Message: "The specified key does not exist."}
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader([]byte(v))), VersionId: aws.String("v1")}, nil
}

func (mapS3) PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	return nil, errors.New("mapS3: read only")
}

func (mapS3) ListObjectVersions(context.Context, *s3.ListObjectVersionsInput, ...func(*s3.Options)) (*s3.ListObjectVersionsOutput, error) {
	return nil, errors.New("mapS3: no listing")
}

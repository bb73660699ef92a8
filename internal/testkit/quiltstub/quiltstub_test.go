package quiltstub

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/testkit/s3local"
)

func TestParseMessage(t *testing.T) {
	for name, tc := range map[string]struct {
		body, kind string
		check      func(*testing.T, message)
	}{
		"ours": {body: `{"source_prefix":"s3://b/p/etr_1/","registry":"b","package_name":"p/etr_1","metadata_uri":"entry.json","commit_message":"m"}`,
			check: func(t *testing.T, m message) {
				assert.Equal(t, "s3://b/p/etr_1/", m.sourcePrefix)
				assert.Equal(t, "p/etr_1", *m.packageName)
				assert.False(t, m.workflow.set, "no workflow: the default")
			}},
		"only the prefix": {body: `{"source_prefix":"s3://b/x/y.json","extra":1}`},
		"no prefix":       {body: `{"registry":"b"}`, kind: ValidationError},
		"not an object":   {body: `["s3://b/"]`, kind: ValidationError},
		"not JSON":        {body: `source_prefix=s3://b/`, kind: ValidationError},
		"both metadata":   {body: `{"source_prefix":"s3://b/p/","metadata":{"a":1},"metadata_uri":"entry.json"}`, kind: ValidationError},
		"null metadata and a uri": {body: `{"source_prefix":"s3://b/p/","metadata":null,"metadata_uri":"entry.json"}`,
			check: func(t *testing.T, m message) { assert.Nil(t, m.metadata) }},
		"metadata not an object": {body: `{"source_prefix":"s3://b/p/","metadata":[1]}`, kind: ValidationError},
		"empty workflow": {body: `{"source_prefix":"s3://b/p/","workflow":""}`,
			check: func(t *testing.T, m message) { assert.True(t, m.workflow.set); assert.Nil(t, m.workflow.name) }},
		"null workflow": {body: `{"source_prefix":"s3://b/p/","workflow":null}`,
			check: func(t *testing.T, m message) { assert.False(t, m.workflow.set) }},
		"named workflow": {body: `{"source_prefix":"s3://b/p/","workflow":"alpha"}`,
			check: func(t *testing.T, m message) { assert.Equal(t, "alpha", *m.workflow.name) }},
	} {
		t.Run(name, func(t *testing.T) {
			m, err := parseMessage(tc.body)
			if tc.kind != "" {
				var r *Refusal
				require.ErrorAs(t, err, &r)
				assert.Equal(t, tc.kind, r.Kind)
				return
			}
			require.NoError(t, err)
			if tc.check != nil {
				tc.check(t, m)
			}
		})
	}
}

func TestSourceFolderAndName(t *testing.T) {
	for in, want := range map[string][3]string{
		"s3://b/p/etr_1/":               {"b", "p/etr_1/", "p/etr_1"},
		"s3://b/my/s3/folder/meta.json": {"b", "my/s3/folder/", "my_s3/folder"},
		"s3://b/":                       {"b", "", "package/null"},
		"s3://b/top.json":               {"b", "top.json/", "package/top-json"},
		"s3://b/a%20b/c/":               {"b", "a b/c/", "a-b/c"},
	} {
		b, f, err := sourceFolder(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, [3]string{b, f, inferName(f)}, in)
	}
	_, _, err := sourceFolder("file:///tmp/x/")
	assert.Error(t, err)
}

// stack is a versitygw bucket and a packager whose events are collected.
type stack struct {
	client *s3.Client
	p      *Packager
	mu     sync.Mutex
	events []map[string]any
}

func newStack(t *testing.T, opts Options) *stack {
	t.Helper()
	srv := s3local.StartT(t)
	ctx := context.Background()
	require.NoError(t, srv.CreateBucket(ctx, "quilt-b"))
	c, err := srv.Client(ctx)
	require.NoError(t, err)
	st := &stack{client: c}
	opts.Client, opts.Region, opts.Account = c, "us-east-1", "000000000000"
	opts.Publish = func(_ context.Context, e []byte) error {
		var m map[string]any
		if err := json.Unmarshal(e, &m); err != nil {
			return err
		}
		st.mu.Lock()
		st.events = append(st.events, m)
		st.mu.Unlock()
		return nil
	}
	st.p, err = New(opts)
	require.NoError(t, err)
	t.Cleanup(st.p.Close)
	return st
}

func (st *stack) put(t *testing.T, key, body string) {
	t.Helper()
	_, err := st.client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("quilt-b"), Key: aws.String(key), Body: strings.NewReader(body)})
	require.NoError(t, err)
}

func (st *stack) get(t *testing.T, key string) string {
	t.Helper()
	b, found, err := st.p.get(context.Background(), "quilt-b", key)
	require.NoError(t, err)
	require.True(t, found, key)
	return string(b)
}

// send submits body and waits for its result.
func (st *stack) send(t *testing.T, body string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := len(st.p.Results())
	require.NoError(t, st.p.Submit(ctx, body))
	res, err := st.p.WaitProcessed(ctx, n+1)
	require.NoError(t, err)
	return res[n]
}

const ourMessage = `{"source_prefix":"s3://quilt-b/benchling/etr_1/","registry":"quilt-b","package_name":"benchling/etr_1","metadata_uri":"entry.json","commit_message":"Benchling webhook payload - t1"}`

func TestPackageFromPrefix(t *testing.T) {
	st := newStack(t, Options{})
	st.put(t, "benchling/etr_1/entry.json", `{"id":"etr_1","name":"Entry"}`)
	st.put(t, "benchling/etr_1/README.md", "# Entry\n")
	st.put(t, "benchling/etr_1/files/a.csv", "x\n")
	st.put(t, "benchling/etr_10/other.txt", "not in the package: a sibling prefix")
	st.put(t, "benchling/etr_1/dir/", "") // a folder marker: skipped

	r := st.send(t, ourMessage)
	require.NoError(t, r.Err)
	var keys []string
	for _, e := range r.Entries {
		keys = append(keys, e.LogicalKey)
		assert.Contains(t, e.PhysicalKey, "s3://quilt-b/benchling/etr_1/"+e.LogicalKey+"?versionId=", "a versioned physical key")
	}
	assert.Equal(t, []string{"README.md", "entry.json", "files/a.csv"}, keys)
	assert.Len(t, r.TopHash, 64)
	assert.Equal(t, r.TopHash, st.get(t, ".quilt/named_packages/benchling/etr_1/latest"))
	assert.Equal(t, r.TopHash, st.get(t, ".quilt/named_packages/benchling/etr_1/"+r.Revision))
	manifest := strings.Split(strings.TrimSpace(st.get(t, ".quilt/packages/"+r.TopHash)), "\n")
	require.Len(t, manifest, 4)
	assert.JSONEq(t, `{"version":"v0","user_meta":{"id":"etr_1","name":"Entry"},"message":"Benchling webhook payload - t1"}`, manifest[0])
	var rec map[string]any
	require.NoError(t, json.Unmarshal([]byte(manifest[1]), &rec))
	assert.Equal(t, "README.md", rec["logical_key"])
	assert.Equal(t, map[string]any{"type": HashType, "value": r.Entries[0].Hash}, rec["hash"])

	require.Len(t, st.events, 1)
	ev := st.events[0]
	assert.Equal(t, "com.quiltdata", ev["source"])
	assert.Equal(t, "package-revision", ev["detail-type"])
	assert.Equal(t, map[string]any{"version": "0.1", "type": "created", "bucket": "quilt-b", "handle": "benchling/etr_1", "topHash": r.TopHash}, ev["detail"])
	for _, k := range []string{"id", "time", "account", "region", "resources", "version"} {
		assert.Contains(t, ev, k)
	}

	again := st.send(t, ourMessage)
	require.NoError(t, again.Err)
	assert.Equal(t, r.TopHash, again.TopHash, "the same content and message: the same top hash")
	assert.Len(t, st.events, 2, "Quilt's engine writes a new pointer, and so an event, every time")

	st.put(t, "benchling/etr_1/dropped.txt", "a file a person dropped here")
	changed := st.send(t, ourMessage)
	require.NoError(t, changed.Err)
	assert.NotEqual(t, r.TopHash, changed.TopHash)
	assert.Len(t, changed.Entries, 4, "every object under the prefix is in the package")

	other := st.send(t, strings.Replace(ourMessage, " - t1", " - t2", 1))
	assert.NotEqual(t, changed.TopHash, other.TopHash, "the commit message is part of the top hash")
}

func TestSkipUnchanged(t *testing.T) {
	st := newStack(t, Options{SkipUnchanged: true})
	st.put(t, "benchling/etr_1/entry.json", `{}`)
	first := st.send(t, ourMessage)
	require.NoError(t, first.Err)
	second := st.send(t, ourMessage)
	require.NoError(t, second.Err)
	assert.Equal(t, first.TopHash, second.TopHash)
	assert.Empty(t, second.Revision)
	assert.Nil(t, second.Event)
	assert.Len(t, st.events, 1)
}

func TestIgnore(t *testing.T) {
	st := newStack(t, Options{})
	st.put(t, "benchling/etr_1/entry.json", `{}`)
	st.p.Ignore(func(body string) bool { return strings.Contains(body, "etr_1") })
	r := st.send(t, ourMessage)
	assert.ErrorIs(t, r.Err, ErrIgnored)
	assert.Empty(t, r.TopHash)
	assert.Empty(t, st.events)
}

func TestRefusedMessages(t *testing.T) {
	st := newStack(t, Options{})
	st.put(t, "benchling/etr_1/entry.json", `{"id":"etr_1"}`)
	st.put(t, "benchling/etr_1/list.json", `[1]`)
	for name, tc := range map[string]struct{ body, kind, text string }{
		"metadata and metadata_uri":      {strings.Replace(ourMessage, `"metadata_uri"`, `"metadata":{"a":1},"metadata_uri"`, 1), ValidationError, "mutually exclusive"},
		"metadata not an object":         {strings.Replace(ourMessage, "entry.json", "list.json", 1), PkgpushException, "Metadata must be a JSON object"},
		"a name Quilt refuses":           {strings.Replace(ourMessage, `"benchling/etr_1"`, `"lab/benchling/etr_1"`, 1), QuiltException, "Invalid package name"},
		"a workflow but no config":       {strings.Replace(ourMessage, `{`, `{"workflow":"alpha",`, 1), QuiltException, "'alpha' workflow is specified, but no workflows config exist."},
		"no workflow ('') and no config": {strings.Replace(ourMessage, `{`, `{"workflow":"",`, 1), QuiltException, "None workflow is specified"},
	} {
		t.Run(name, func(t *testing.T) {
			r := st.send(t, tc.body)
			var ref *Refusal
			require.ErrorAs(t, r.Err, &ref)
			assert.Equal(t, tc.kind, ref.Kind)
			assert.Contains(t, ref.Message, tc.text)
			assert.Empty(t, r.TopHash)
		})
	}
	assert.Empty(t, st.events, "a refused message makes no event")
	objs, err := st.client.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("quilt-b"), Prefix: aws.String(".quilt/")})
	require.NoError(t, err)
	assert.Empty(t, objs.Contents, "and no package")
}

// testConfigYAML requires a workflow by default: is_workflow_required
// is absent.
const testConfigYAML = `version: "1"
workflows:
  benchling:
    name: Benchling entries
    metadata_schema: entry
    handle_pattern: ^benchling/etr_
  strict:
    name: Needs a message
    is_message_required: true
schemas:
  entry:
    url: s3://quilt-b/.quilt/workflows/entry.schema.json
`

const entrySchema = `{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","required":["id"],"properties":{"id":{"type":"string","pattern":"^etr_"},"created":{"type":"string","format":"date-time"}}}`

func TestWorkflows(t *testing.T) {
	st := newStack(t, Options{})
	st.put(t, "benchling/etr_1/entry.json", `{"id":"etr_1","created":"not a date: format is not asserted"}`)
	st.put(t, "benchling/etr_2/entry.json", `{"name":"no id"}`)
	st.put(t, WorkflowConfigKey, testConfigYAML)
	st.put(t, ".quilt/workflows/entry.schema.json", entrySchema)
	withWorkflow := func(body, wf string) string { return strings.Replace(body, `{`, `{"workflow":"`+wf+`",`, 1) }
	msg2 := strings.ReplaceAll(ourMessage, "etr_1", "etr_2")

	for name, tc := range map[string]struct{ body, kind, text string }{
		"no workflow where one is required": {ourMessage, QuiltException, "Workflow required, but none specified."},
		"an unknown workflow":               {withWorkflow(ourMessage, "gamma"), QuiltException, "There is no 'gamma' workflow in config."},
		"metadata the schema refuses":       {withWorkflow(msg2, "benchling"), WorkflowValidationError, "Metadata failed validation"},
		"a name the pattern refuses": {withWorkflow(strings.ReplaceAll(ourMessage, `"package_name":"benchling/etr_1"`, `"package_name":"other/etr_1"`), "benchling"),
			WorkflowValidationError, "Package name doesn't match required pattern."},
		"no message where one is required": {withWorkflow(strings.Replace(ourMessage, `"commit_message":"Benchling webhook payload - t1"`, `"commit_message":""`, 1), "strict"),
			WorkflowValidationError, "Commit message is required by workflow"},
	} {
		t.Run(name, func(t *testing.T) {
			r := st.send(t, tc.body)
			var ref *Refusal
			require.ErrorAs(t, r.Err, &ref)
			assert.Equal(t, tc.kind, ref.Kind)
			assert.Contains(t, ref.Message, tc.text)
		})
	}
	assert.Empty(t, st.events)

	ok := st.send(t, withWorkflow(ourMessage, "benchling"))
	require.NoError(t, ok.Err)
	manifest := strings.SplitN(st.get(t, ".quilt/packages/"+ok.TopHash), "\n", 2)[0]
	var meta struct {
		Workflow struct {
			ID      string            `json:"id"`
			Config  string            `json:"config"`
			Schemas map[string]string `json:"schemas"`
		} `json:"workflow"`
	}
	require.NoError(t, json.Unmarshal([]byte(manifest), &meta))
	assert.Equal(t, "benchling", meta.Workflow.ID)
	assert.True(t, strings.HasPrefix(meta.Workflow.Config, "s3://quilt-b/.quilt/workflows/config.yml"), meta.Workflow.Config)
	assert.Contains(t, meta.Workflow.Schemas["entry"], "s3://quilt-b/.quilt/workflows/entry.schema.json")
	assert.Len(t, st.events, 1)

	// Not required: a message without a workflow is packaged, with the
	// default workflow if the config names one.
	st.put(t, WorkflowConfigKey, strings.Replace(testConfigYAML, "workflows:", "is_workflow_required: false\ndefault_workflow: benchling\nworkflows:", 1))
	def := st.send(t, ourMessage)
	require.NoError(t, def.Err)
	none := st.send(t, withWorkflow(ourMessage, ""))
	require.NoError(t, none.Err, "'' is no workflow, allowed when none is required")
	assert.NotEqual(t, def.TopHash, none.TopHash, "the workflow record is part of the metadata")

	st.put(t, WorkflowConfigKey, "version: \"2\"\nworkflows: {a: {name: A}}\n")
	r := st.send(t, ourMessage)
	var ref *Refusal
	require.ErrorAs(t, r.Err, &ref)
	assert.Equal(t, ConfigurationError, ref.Kind)
	st.put(t, WorkflowConfigKey, "workflows: {a: {name: A}}\n")
	r = st.send(t, ourMessage)
	require.ErrorAs(t, r.Err, &ref)
	assert.Contains(t, ref.Message, "Workflows config failed validation")
}

func TestSubmitWaitsForRoom(t *testing.T) {
	p := &Packager{queue: make(chan string, 1), changed: make(chan struct{})}
	p.ctx, p.stop = context.WithCancel(context.Background())
	defer p.stop()
	require.NoError(t, p.Submit(context.Background(), "a"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := p.Submit(ctx, "b")
	assert.True(t, errors.Is(err, context.Canceled), "a full queue blocks until the caller gives up: %v", err)
}

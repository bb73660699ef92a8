package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/emf/emftest"
	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/quiltpkg"
	"benchling-webhook/internal/testkit/samplezip"
	"benchling-webhook/internal/workflow"
)

// TestExportQuiltWorkflowS3 runs job export against a bucket (versitygw)
// that holds a real workflow config and schema (internal/workflow's
// testdata): a package the workflow would refuse exits 5 and leaves the
// package as it was (nothing written, not even the record's journal); a
// valid one is exported.
func TestExportQuiltWorkflowS3(t *testing.T) {
	srv := startS3(t)
	ctx := context.Background()
	require.NoError(t, srv.CreateBucket(ctx, "registry"))
	client, err := srv.Client(ctx)
	require.NoError(t, err)
	put := func(key string, body []byte) {
		t.Helper()
		_, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("registry"), Key: aws.String(key), Body: bytes.NewReader(body)})
		require.NoError(t, err)
	}
	testdata := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "workflow", "testdata", name))
		require.NoError(t, err)
		return b
	}
	put(workflow.ConfigKey, bytes.ReplaceAll(testdata("config.yml"), []byte("s3://quilt-local/"), []byte("s3://registry/")))
	put(".quilt/workflows/benchling-entry.schema.json", testdata("benchling-entry.schema.json"))

	zipPath := filepath.Join(t.TempDir(), "e.zip")
	m, err := samplezip.WriteFile(zipPath, samplezip.Small())
	require.NoError(t, err)

	const pkg = "benchling/etr_0uKCQZ8f"
	// A previous export's files, which a refusal must leave alone.
	put(pkg+"/old.csv", []byte("a,b\n"))
	put(quiltpkg.ControlKey(pkg, quiltpkg.EntryName), fixtureEntry(t))
	before, err := srv.Objects(ctx, "registry", "benchling/")
	require.NoError(t, err)

	export := func(env map[string]string) (int, exportResult, string) {
		return runExportT(t, env, "--download-url", zipPath, "--registry", "registry", "--package-name", pkg, "--readme")
	}
	unchanged := func() {
		t.Helper()
		after, err := srv.Objects(ctx, "registry", "benchling/")
		require.NoError(t, err)
		require.Equal(t, before, after, "a refused package is left as it was")
	}

	t.Run("required, none configured", func(t *testing.T) {
		for _, env := range []map[string]string{nil, {"QUILT_WORKFLOW": "none"}} {
			code, res, stderr := export(env)
			require.Equal(t, exitcode.WorkflowRejected, code, stderr)
			require.Equal(t, "workflow-rejected", res.Body.ErrorKind)
			require.Contains(t, res.Body.Error, "the bucket requires a workflow (is_workflow_required, true by default) and none is configured; set quilt-workflow to one of anything, benchling")
			unchanged()
		}
	})
	t.Run("unknown workflow", func(t *testing.T) {
		code, res, stderr := export(map[string]string{"QUILT_WORKFLOW": "alpha"})
		require.Equal(t, exitcode.WorkflowRejected, code, stderr)
		require.Contains(t, res.Body.Error, `(workflow "alpha"): the config has no such workflow (it has anything, benchling)`)
		unchanged()
	})
	t.Run("metadata fails the schema", func(t *testing.T) {
		var e map[string]any
		require.NoError(t, json.Unmarshal(fixtureEntry(t), &e))
		delete(e, "displayId")
		bad, err := json.Marshal(e)
		require.NoError(t, err)
		put(quiltpkg.ControlKey(pkg, quiltpkg.EntryName), bad)
		defer put(quiltpkg.ControlKey(pkg, quiltpkg.EntryName), fixtureEntry(t))
		staged := before[quiltpkg.ControlKey(pkg, quiltpkg.EntryName)]
		before[quiltpkg.ControlKey(pkg, quiltpkg.EntryName)] = bad
		defer func() { before[quiltpkg.ControlKey(pkg, quiltpkg.EntryName)] = staged }()

		code, res, stderr := export(map[string]string{"QUILT_WORKFLOW": "benchling"})
		require.Equal(t, exitcode.WorkflowRejected, code, stderr)
		require.Contains(t, res.Body.Error, `the metadata fails schema "benchling-entry" (s3://registry/.quilt/workflows/benchling-entry.schema.json): at '': missing property 'displayId'`)
		unchanged()
	})
	t.Run("metric", func(t *testing.T) {
		var out, errb bytes.Buffer
		code := Run(ctx, []string{"export", "--log-format", "json", "--download-url", zipPath, "--registry", "registry", "--package-name", pkg, "--readme"},
			Env{Stdout: &out, Stderr: &errb, Lookup: func(k string) (string, bool) {
				if k == "QUILT_WORKFLOW" {
					return "alpha", true
				}
				return os.LookupEnv(k)
			}})
		require.Equal(t, exitcode.WorkflowRejected, code, errb.String())
		lines := emftest.Lines(errb.Bytes())
		require.Len(t, lines, 1)
		doc, err := emftest.Check(lines[0])
		require.NoError(t, err, string(lines[0]))
		require.Equal(t, json.Number("1"), doc["QuiltWorkflowRejected"])
		require.Equal(t, workflow.ReasonUnknown, doc["workflowReason"])
		require.Equal(t, "alpha", doc["workflow"])
		require.Equal(t, "workflow-rejected", doc["outcome"])
	})
	t.Run("valid", func(t *testing.T) {
		code, res, stderr := export(map[string]string{"QUILT_WORKFLOW": "benchling"})
		require.Equal(t, exitcode.OK, code, stderr)
		require.Equal(t, len(m.Entries), res.Body.NumFiles)
		require.Contains(t, stderr, "quilt workflow check passed")
		objs, err := srv.Objects(ctx, "registry", pkg+"/")
		require.NoError(t, err)
		require.Equal(t, fixtureEntry(t), objs[pkg+"/entry.json"])
		require.Contains(t, objs, pkg+"/README.md")
	})
	t.Run("bad setting", func(t *testing.T) {
		code, res, _ := export(map[string]string{"QUILT_WORKFLOW": "1 bad"})
		require.Equal(t, exitcode.Usage, code)
		require.Contains(t, res.Body.Error, "--quilt-workflow")
	})
}

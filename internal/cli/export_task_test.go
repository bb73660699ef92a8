package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/testkit/sandbox"
)

// finishedExport starts an export of entry on a sandbox and waits for it
// to succeed; it returns the sandbox and the task id.
func finishedExport(t *testing.T, entry string, spec sandbox.ExportSpec) (*sandbox.Server, string) {
	t.Helper()
	s, err := sandbox.Start(sandbox.Options{ClientID: "cid", ClientSecret: "csecret-value", AppDefinitionID: "appdef_x", ExportDelay: -1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	s.AddEntry(entry, sandbox.EntryOptions{})
	s.SetExport(entry, spec)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"cid"}, "client_secret": {"csecret-value"}}
	resp, err := http.PostForm(s.URL()+"/api/v2/token", form)
	require.NoError(t, err)
	tok := decodeBody(t, resp)["access_token"].(string)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/api/v2/exports", strings.NewReader(`{"id":"`+entry+`"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	return s, decodeBody(t, resp)["taskId"].(string)
}

func taskEnv(s *sandbox.Server, id string) map[string]string {
	return map[string]string{"EXPORT_TASK_ID": id, "BENCHLING_BASE_URL": s.URL(), "BENCHLING_CLIENT_ID": "cid",
		"BENCHLING_CLIENT_SECRET": "csecret-value"}
}

// job export --export-task-id reads the link from Benchling; once that
// link has expired, a run asks again and gets a new one. Neither link is
// in its output.
func TestExportByTaskID(t *testing.T) {
	s, id := finishedExport(t, "etr_cli00001", sandbox.ExportSpec{})
	env := taskEnv(s, id)
	code, res, stderr := runExportT(t, env, "--local-dir", t.TempDir(), "--package-name", "benchling/etr_cli00001")
	require.Equal(t, exitcode.OK, code, stderr)
	assert.Equal(t, 5, res.Body.NumFiles)

	s.ExpireIssuedDownloads() // a retried task, a day later
	code, _, stderr2 := runExportT(t, env, "--local-dir", t.TempDir(), "--package-name", "benchling/etr_cli00001")
	require.Equal(t, exitcode.OK, code, stderr2)

	urls := s.DownloadURLs()
	require.Len(t, urls, 2, "the second run got a new link")
	for _, u := range urls {
		sig := mustParse(t, u).Query().Get("X-Amz-Signature")
		assert.NotContains(t, stderr+stderr2, sig)
	}
	assert.NotContains(t, stderr+stderr2, "X-Amz-Signature")
	assert.NotContains(t, stderr+stderr2, "csecret-value")
}

// A task that failed, or a task id that is not one, is bad input; a
// missing secret or tenant is configuration.
func TestExportByTaskIDRefused(t *testing.T) {
	s, failed := finishedExport(t, "etr_cli00002", sandbox.ExportSpec{Fail: true})
	code, res, _ := runExportT(t, taskEnv(s, failed), "--local-dir", t.TempDir())
	assert.Equal(t, exitcode.ExportFailed, code, res.Body.Error)
	assert.Contains(t, res.Body.Error, "FAILED: Export of etr_cli00002 failed", "Benchling's message")
	assert.Equal(t, "export-failed", res.Body.ErrorKind)

	code, res, _ = runExportT(t, taskEnv(s, "00000000-0000-4000-8000-000000000000"), "--local-dir", t.TempDir())
	assert.Equal(t, exitcode.BadInput, code, res.Body.Error)
	assert.Contains(t, res.Body.Error, "404")

	code, res, _ = runExportT(t, taskEnv(s, "../entries"), "--local-dir", t.TempDir())
	assert.Equal(t, exitcode.BadInput, code, res.Body.Error)

	env := taskEnv(s, "00000000-0000-4000-8000-000000000000")
	delete(env, "BENCHLING_CLIENT_SECRET")
	code, res, _ = runExportT(t, env, "--local-dir", t.TempDir())
	assert.Equal(t, exitcode.Usage, code)
	assert.Contains(t, res.Body.Error, "BENCHLING_CLIENT_SECRET")

	env = taskEnv(s, "00000000-0000-4000-8000-000000000000")
	env["EXPORT_POLL_FIRST"], env["EXPORT_POLL_MAX"] = "2s", "1s"
	code, res, _ = runExportT(t, env, "--local-dir", t.TempDir())
	assert.Equal(t, exitcode.Usage, code)
	assert.Contains(t, res.Body.Error, "--export-poll-max must be at least --export-poll-first")

	env = taskEnv(s, "00000000-0000-4000-8000-000000000000")
	env["DOWNLOAD_URL"] = "x.zip"
	code, res, _ = runExportT(t, env, "--local-dir", t.TempDir())
	assert.Equal(t, exitcode.Usage, code)
	assert.Contains(t, res.Body.Error, "not both")
}

func decodeBody(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	defer resp.Body.Close()
	var m map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
	return m
}

func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u
}

// The export is still running when job export starts (the packaging
// machine starts it right after StartExport): it polls, from the first
// wait doubling, until the export is done, then exports it.
func TestExportByTaskIDWaits(t *testing.T) {
	s, id := finishedExport(t, "etr_cli00003", sandbox.ExportSpec{Delay: 300 * time.Millisecond})
	env := taskEnv(s, id)
	env["EXPORT_POLL_FIRST"], env["EXPORT_POLL_MAX"], env["EXPORT_WAIT"] = "20ms", "80ms", "30s"
	code, res, stderr := runExportT(t, env, "--local-dir", t.TempDir(), "--package-name", "benchling/etr_cli00003")
	require.Equal(t, exitcode.OK, code, stderr)
	assert.Equal(t, 5, res.Body.NumFiles)
	polls := 0
	for _, c := range s.Calls() {
		if c.Path == "/api/v2/tasks/"+id {
			polls++
		}
	}
	assert.Greater(t, polls, 2, "polled until it SUCCEEDED")
	assert.Less(t, polls, 15, "with a backoff, not a busy loop")
	for _, u := range s.DownloadURLs() {
		assert.NotContains(t, stderr, mustParse(t, u).Query().Get("X-Amz-Signature"))
	}
}

// Still RUNNING at --export-wait: exit 7, nothing written.
func TestExportByTaskIDTimeout(t *testing.T) {
	s, id := finishedExport(t, "etr_cli00004", sandbox.ExportSpec{Never: true})
	env := taskEnv(s, id)
	env["EXPORT_POLL_FIRST"], env["EXPORT_POLL_MAX"], env["EXPORT_WAIT"] = "20ms", "40ms", "300ms"
	dir := t.TempDir()
	code, res, _ := runExportT(t, env, "--local-dir", dir, "--package-name", "benchling/etr_cli00004")
	assert.Equal(t, exitcode.ExportTimeout, code, res.Body.Error)
	assert.Contains(t, res.Body.Error, "still RUNNING after")
	assert.Equal(t, "export-timeout", res.Body.ErrorKind)
	assert.Empty(t, treeFiles(t, dir))
}

// SIGTERM while it waits for Benchling (ECS stopping the task): 143.
func TestExportByTaskIDSIGTERM(t *testing.T) {
	s, id := finishedExport(t, "etr_cli00005", sandbox.ExportSpec{Never: true})
	env := taskEnv(s, id)
	env["EXPORT_POLL_FIRST"], env["EXPORT_POLL_MAX"], env["EXPORT_WAIT"] = "1h", "1h", "2h"
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	time.AfterFunc(100*time.Millisecond, func() { cancel(exitcode.Interrupted{Signal: syscall.SIGTERM}) })
	var out, errb bytes.Buffer
	start := time.Now()
	code := Run(ctx, []string{"export", "--log-format", "text", "--local-dir", t.TempDir()},
		Env{Stdout: &out, Stderr: &errb, Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	assert.Equal(t, 143, code, errb.String())
	assert.Less(t, time.Since(start), 10*time.Second)
}

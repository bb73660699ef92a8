package benchling

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/testkit/sandbox"
)

// startExport starts an export of entry through the sandbox's API and
// returns its task id.
func startExport(t *testing.T, s *sandbox.Server, entry string, spec sandbox.ExportSpec) string {
	t.Helper()
	s.AddEntry(entry, sandbox.EntryOptions{})
	s.SetExport(entry, spec)
	c, _ := newTestClient(t, s, nil)
	tok, err := c.accessToken(t.Context(), &tries{})
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/api/v2/exports", stringsReader(`{"id":"`+entry+`"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out struct{ TaskID string }
	require.NoError(t, decodeJSON(resp.Body, &out))
	require.NotEmpty(t, out.TaskID)
	return out.TaskID
}

func TestExportDownloadURL(t *testing.T) {
	s := startSandbox(t, sandbox.Options{ExportDelay: 300 * time.Millisecond})
	c, logs := newTestClient(t, s, nil)
	id := startExport(t, s, "etr_task0001", sandbox.ExportSpec{})

	_, err := c.ExportDownloadURL(t.Context(), id)
	require.ErrorIs(t, err, ErrTaskNotDone, "still RUNNING")
	assert.Equal(t, exitcode.BadInput, exitcode.Resolve(err))

	var link string
	require.Eventually(t, func() bool {
		link, err = c.ExportDownloadURL(t.Context(), id)
		return err == nil
	}, 5*time.Second, 20*time.Millisecond)
	u, err := url.Parse(link)
	require.NoError(t, err)
	assert.NotEmpty(t, u.Query().Get("X-Amz-Signature"))

	s.ExpireIssuedDownloads()
	again, err := c.ExportDownloadURL(t.Context(), id)
	require.NoError(t, err)
	assert.NotEqual(t, link, again, "asked again after the link expired, Benchling presigns a new one")
	assert.NotContains(t, logs.String(), u.Query().Get("X-Amz-Signature"))
}

func TestExportTaskFailedAndUnknown(t *testing.T) {
	s := startSandbox(t, sandbox.Options{ExportDelay: -1})
	c, _ := newTestClient(t, s, nil)
	id := startExport(t, s, "etr_task0002", sandbox.ExportSpec{Fail: true})
	task, err := c.GetExportTask(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, TaskFailed, task.Status)
	assert.NotEmpty(t, task.Message)
	_, err = c.ExportDownloadURL(t.Context(), id)
	require.ErrorIs(t, err, ErrTaskNotDone)
	assert.Contains(t, err.Error(), task.Message)

	_, err = c.ExportDownloadURL(t.Context(), "00000000-0000-4000-8000-000000000000")
	require.ErrorIs(t, err, ErrNotFound)

	for _, bad := range []string{"", "../entries/etr_1", "a/b", "x?y=1", "%2e%2e"} {
		_, err := c.ExportDownloadURL(t.Context(), bad)
		require.Error(t, err, bad)
		assert.Equal(t, exitcode.Usage, exitcode.Resolve(err), bad)
	}
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

func decodeJSON(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

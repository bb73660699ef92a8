package httprange

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/testkit/sandbox"
	"benchling-webhook/internal/testkit/syncbuf"
)

// exportLink starts an export of entry on s and returns a function that
// reads the finished task's download URL, as job export asks Benchling.
func exportLink(t *testing.T, s *sandbox.Server, entry string) func(context.Context) (string, error) {
	t.Helper()
	s.AddEntry(entry, sandbox.EntryOptions{})
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"id"}, "client_secret": {"secret"}}
	resp, err := http.PostForm(s.URL()+"/api/v2/token", form)
	require.NoError(t, err)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tok))
	resp.Body.Close()
	call := func(ctx context.Context, method, path string, body []byte) (map[string]any, error) {
		req, err := http.NewRequestWithContext(ctx, method, s.URL()+path, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var m map[string]any
		return m, json.NewDecoder(resp.Body).Decode(&m)
	}
	m, err := call(t.Context(), "POST", "/api/v2/exports", []byte(`{"id":"`+entry+`"}`))
	require.NoError(t, err)
	task := m["taskId"].(string)
	return func(ctx context.Context) (string, error) {
		m, err := call(ctx, "GET", "/api/v2/tasks/"+task, nil)
		if err != nil {
			return "", err
		}
		if m["status"] != "SUCCEEDED" {
			return "", errors.New("not done")
		}
		return m["response"].(map[string]any)["downloadURL"].(string), nil
	}
}

func startSandbox(t *testing.T) *sandbox.Server {
	t.Helper()
	s, err := sandbox.Start(sandbox.Options{ClientID: "id", ClientSecret: "secret", AppDefinitionID: "appdef_x", ExportDelay: -1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// A link that expires between the directory read and an entry's stream
// is replaced by a new one from Refresh, and the download completes.
func TestRefreshExpiredLink(t *testing.T) {
	s := startSandbox(t)
	link := exportLink(t, s, "etr_refresh01")
	first, err := link(t.Context())
	require.NoError(t, err)
	var asked atomic.Int32
	logs := &syncbuf.Buffer{}
	opts := Options{TailSize: 1024, Logger: slog.New(slog.NewTextHandler(logs, nil)), Refresh: func(ctx context.Context) (string, error) {
		asked.Add(1)
		return link(ctx)
	}}
	src, err := Open(t.Context(), first, fast(opts))
	require.NoError(t, err)
	defer src.Close()

	s.ExpireIssuedDownloads()
	rc := src.Stream(t.Context(), 0, src.Size())
	got, err := io.ReadAll(rc)
	rc.Close()
	require.NoError(t, err)
	assert.Len(t, got, int(src.Size()))
	assert.EqualValues(t, 1, asked.Load(), "one new link")
	for _, u := range s.DownloadURLs() {
		sig := mustQuery(t, u).Get("X-Amz-Signature")
		assert.NotContains(t, logs.String(), sig, "no link in the logs")
	}
	assert.Contains(t, logs.String(), "asking for a new one")
}

// When every new link is refused too, the download fails after
// MaxRefreshes new links, as an expired link (exit 3).
func TestRefreshBounded(t *testing.T) {
	s := startSandbox(t)
	link := exportLink(t, s, "etr_refresh02")
	first, err := link(t.Context())
	require.NoError(t, err)
	s.ExpireDownloads(true)
	var asked atomic.Int32
	_, err = Open(t.Context(), first, fast(Options{MaxRefreshes: 2, Refresh: func(ctx context.Context) (string, error) {
		asked.Add(1)
		return link(ctx)
	}}))
	require.ErrorIs(t, err, ErrLinkExpired)
	assert.Equal(t, exitcode.BadInput, exitcode.Resolve(err))
	assert.EqualValues(t, 2, asked.Load())
	assert.NotContains(t, err.Error(), "X-Amz-Signature")

	// Without Refresh, the first 403 ends it.
	_, err = Open(t.Context(), first, fast(Options{}))
	require.ErrorIs(t, err, ErrLinkExpired)
}

// A failure to get a new link carries its own exit code.
func TestRefreshFails(t *testing.T) {
	s := startSandbox(t)
	link := exportLink(t, s, "etr_refresh03")
	first, err := link(t.Context())
	require.NoError(t, err)
	s.ExpireDownloads(true)
	_, err = Open(t.Context(), first, fast(Options{Refresh: func(context.Context) (string, error) {
		return "", exitcode.Wrap(errors.New("benchling down"), exitcode.Transient)
	}}))
	require.Error(t, err)
	assert.Equal(t, exitcode.Transient, exitcode.Resolve(err))
	assert.True(t, strings.Contains(err.Error(), "benchling down"), err.Error())
}

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u.Query()
}

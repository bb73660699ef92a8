package sandbox_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/testkit/sandbox"
)

// An expired link is replaced by a new one when the task is read again;
// a link that has not expired is answered again as it is.
func TestExpiredDownloadRenewed(t *testing.T) {
	s := start(t, sandbox.Options{ExportDelay: -1})
	s.AddEntry("etr_renew001", sandbox.EntryOptions{})
	tok := token(t, s)
	resp, body := call(t, s, "POST", "/api/v2/exports", tok, map[string]string{"id": "etr_renew001"})
	require.Equal(t, http.StatusAccepted, resp.StatusCode, string(body))
	task := decode(t, body)["taskId"].(string)
	read := func() string {
		resp, body := call(t, s, "GET", "/api/v2/tasks/"+task, tok, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		return downloadURL(t, decode(t, body))
	}
	first := read()
	assert.Equal(t, first, read(), "an unexpired link is answered again")

	s.ExpireIssuedDownloads()
	resp, body = get(t, first, nil)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Equal(t, s3Err{"AccessDenied", "Request has expired"}, parseS3(t, resp, body))

	second := read()
	require.NotEqual(t, first, second, "the expired link is replaced")
	resp, _ = get(t, second, nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp, _ = get(t, first, nil)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "the old link stays expired")

	urls := s.DownloadURLs()
	assert.Len(t, urls, 2)
	for _, u := range urls {
		assert.True(t, strings.Contains(u, "X-Amz-Signature="), u)
	}
}

// ExpireNextDownloads: the first link is refused as expired from the
// start; the task read again answers with a new link, which works.
func TestExpireNextDownloads(t *testing.T) {
	s := start(t, sandbox.Options{ExportDelay: -1})
	s.AddEntry("etr_renew002", sandbox.EntryOptions{})
	s.ExpireNextDownloads(1)
	tok := token(t, s)
	_, body := call(t, s, "POST", "/api/v2/exports", tok, map[string]string{"id": "etr_renew002"})
	task := decode(t, body)["taskId"].(string)
	read := func() string {
		_, body := call(t, s, "GET", "/api/v2/tasks/"+task, tok, nil)
		return downloadURL(t, decode(t, body))
	}
	first := read()
	resp, body := get(t, first, nil)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Equal(t, s3Err{"AccessDenied", "Request has expired"}, parseS3(t, resp, body))
	second := read()
	require.NotEqual(t, first, second)
	resp, _ = get(t, second, nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "only the next link was expired")
}

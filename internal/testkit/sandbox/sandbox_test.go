package sandbox_test

import (
	"archive/zip"
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/testkit/sandbox"
	"benchling-webhook/internal/webhook"
)

func TestStartValidatesOptions(t *testing.T) {
	tests := map[string]sandbox.Options{
		"no client id":         {ClientSecret: "s", AppDefinitionID: "a"},
		"no client secret":     {ClientID: "c", AppDefinitionID: "a"},
		"no app definition id": {ClientID: "c", ClientSecret: "s"},
		"negative rate limit":  {ClientID: "c", ClientSecret: "s", AppDefinitionID: "a", RateLimit: -1},
		"negative token ttl":   {ClientID: "c", ClientSecret: "s", AppDefinitionID: "a", TokenTTL: -time.Second},
	}
	for name, opts := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := sandbox.Start(opts)
			require.ErrorIs(t, err, sandbox.ErrInvalidOptions)
			require.Nil(t, s)
		})
	}
}

func TestToken(t *testing.T) {
	s := start(t, sandbox.Options{TokenTTL: 1500 * time.Millisecond})
	form := func(v url.Values, contentType string) *http.Request {
		req := formTokenRequest(t, s, v)
		req.Header.Set("Content-Type", contentType)
		return req
	}
	const formType = "application/x-www-form-urlencoded"
	good := url.Values{"grant_type": {"client_credentials"}, "client_id": {testClientID}, "client_secret": {testClientSecret}}
	tests := map[string]struct {
		req        *http.Request
		wantStatus int
		wantType   string // error.type
	}{
		"basic auth":         {req: tokenRequest(t, s, testClientID, testClientSecret), wantStatus: 200},
		"form body":          {req: form(good, formType), wantStatus: 200},
		"charset parameter":  {req: form(good, formType+"; charset=utf-8"), wantStatus: 200},
		"wrong secret":       {req: tokenRequest(t, s, testClientID, "nope"), wantStatus: 401, wantType: "invalid_client"},
		"wrong id":           {req: tokenRequest(t, s, "someone", testClientSecret), wantStatus: 401, wantType: "invalid_client"},
		"no credentials":     {req: form(url.Values{"grant_type": {"client_credentials"}}, formType), wantStatus: 401, wantType: "invalid_client"},
		"no grant type":      {req: form(url.Values{"client_id": {testClientID}, "client_secret": {testClientSecret}}, formType), wantStatus: 400, wantType: "invalid_request"},
		"unsupported grant":  {req: form(url.Values{"grant_type": {"password"}, "client_id": {testClientID}, "client_secret": {testClientSecret}}, formType), wantStatus: 400, wantType: "unsupported_grant_type"},
		"json content type":  {req: form(good, "application/json"), wantStatus: 400, wantType: "invalid_request"},
		"missing media type": {req: form(good, ""), wantStatus: 400, wantType: "invalid_request"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			resp, body := send(t, tc.req)
			require.Equal(t, tc.wantStatus, resp.StatusCode, string(body))
			m := decode(t, body)
			if tc.wantType != "" {
				assert.Equal(t, tc.wantType, m["error"].(map[string]any)["type"])
				return
			}
			assert.Equal(t, "Bearer", m["token_type"])
			assert.EqualValues(t, 2, m["expires_in"], "1.5 s rounds up")
			assert.NotEmpty(t, m["access_token"])
		})
	}
	assert.Equal(t, 3, s.Tokens())

	for _, c := range s.Calls() {
		assert.NotContains(t, string(c.Body), testClientSecret, "recorded bodies hide the secret")
	}
}

func TestTokenExpiry(t *testing.T) {
	s := start(t, sandbox.Options{TokenTTL: 200 * time.Millisecond})
	s.AddEntry("etr_expiry01", sandbox.EntryOptions{})
	get := func(tok string) int {
		resp, _ := call(t, s, "GET", "/api/v2/entries/etr_expiry01", tok, nil)
		return resp.StatusCode
	}

	tok := token(t, s)
	require.Equal(t, http.StatusOK, get(tok))
	require.Eventually(t, func() bool { return get(tok) == http.StatusUnauthorized }, 5*time.Second, 20*time.Millisecond)
	require.Equal(t, http.StatusOK, get(token(t, s)), "a new token works")
}

func TestExpireTokens(t *testing.T) {
	s := start(t, sandbox.Options{})
	s.AddEntry("etr_expiry02", sandbox.EntryOptions{})
	tok := token(t, s)
	resp, _ := call(t, s, "GET", "/api/v2/entries/etr_expiry02", tok, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	s.ExpireTokens()
	resp, body := call(t, s, "GET", "/api/v2/entries/etr_expiry02", tok, nil)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, "invalid_request_error", decode(t, body)["error"].(map[string]any)["type"])

	resp, _ = call(t, s, "GET", "/api/v2/entries/etr_expiry02", token(t, s), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, 2, s.Tokens())
}

func TestAuthRequired(t *testing.T) {
	s := start(t, sandbox.Options{})
	s.AddEntry("etr_auth0001", sandbox.EntryOptions{})
	tests := map[string]string{
		"none":          "",
		"unknown token": "Bearer sbx_unknown",
		"basic":         "Basic " + base64.StdEncoding.EncodeToString([]byte(testClientID+":"+testClientSecret)),
		"bare token":    token(t, s),
	}
	for name, auth := range tests {
		t.Run(name, func(t *testing.T) {
			req := apiRequest(t, s, "GET", "/api/v2/entries/etr_auth0001", "", nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, body := send(t, req)
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			assert.NotEmpty(t, decode(t, body)["error"].(map[string]any)["message"])
		})
	}
}

func TestFailNext(t *testing.T) {
	s := start(t, sandbox.Options{})
	s.AddEntry("etr_fault001", sandbox.EntryOptions{})
	tok := token(t, s)
	get := func() (*http.Response, []byte) { return call(t, s, "GET", "/api/v2/entries/etr_fault001", tok, nil) }

	s.FailNext("GET", "/api/v2/entries/", http.StatusServiceUnavailable, 2)
	s.FailNext("", "/api/v2/", http.StatusInternalServerError, 1)
	resp, _ := call(t, s, "POST", "/api/v2/exports", tok, map[string]string{"id": "etr_fault001"})
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode, "the method-less fault matches first for POST")
	for range 2 {
		resp, body := get()
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		assert.Equal(t, "text/html", resp.Header.Get("Content-Type"))
		assert.Contains(t, string(body), "503 Service Unavailable")
		assert.NotEmpty(t, resp.Header.Get("x-rate-limit-limit"))
	}
	resp, _ = get()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	s.FailNext("GET", "/api/v2/entries/", http.StatusTooManyRequests, 1)
	resp, body := get()
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.JSONEq(t, `{"error":{"message":"Rate limit exceeded.","type":"invalid_request_error","userMessage":"Rate limit exceeded."}}`, string(body))
	assert.Equal(t, "0", resp.Header.Get("x-rate-limit-remaining"))

	s.FailNext("GET", "/api/v2/entries/", http.StatusUnauthorized, 1)
	resp, _ = get()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, _ = get()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "an injected 401 leaves the token valid")

	s.FailNext("", "/api/v2/entries/", http.StatusTeapot, 0)
	resp, _ = get()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "times 0 injects nothing")
}

func TestRateLimit(t *testing.T) {
	s := start(t, sandbox.Options{RateLimit: 3, RateWindow: time.Hour})
	tok := token(t, s) // counts as the first request
	for want := 1; want >= 0; want-- {
		resp, _ := call(t, s, "GET", "/api/v2/entries", tok, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "3", resp.Header.Get("x-rate-limit-limit"))
		assert.Equal(t, strconv.Itoa(want), resp.Header.Get("x-rate-limit-remaining"))
	}
	resp, body := call(t, s, "GET", "/api/v2/entries", tok, nil)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.JSONEq(t, `{"error":{"message":"Rate limit exceeded.","type":"invalid_request_error","userMessage":"Rate limit exceeded."}}`, string(body))
	assert.Equal(t, "0", resp.Header.Get("x-rate-limit-remaining"))
	reset, err := strconv.Atoi(resp.Header.Get("x-rate-limit-reset"))
	require.NoError(t, err)
	assert.True(t, reset > 3500 && reset <= 3600, "reset %d", reset)

	// The JWKS and downloads are other hosts in real life: not limited.
	resp, _ = send(t, apiRequest(t, s, "GET", "/api/v1/apps/"+testAppDefID+"/jwks", "", nil))
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Empty(t, resp.Header.Get("x-rate-limit-limit"))
}

func TestRateLimitWindowResets(t *testing.T) {
	s := start(t, sandbox.Options{RateLimit: 1, RateWindow: 200 * time.Millisecond})
	tok := token(t, s)
	resp, _ := call(t, s, "GET", "/api/v2/entries", tok, nil)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Eventually(t, func() bool {
		resp, _ := call(t, s, "GET", "/api/v2/entries", tok, nil)
		return resp.StatusCode == http.StatusOK
	}, 5*time.Second, 50*time.Millisecond)
}

func TestUnlimitedRateHeaders(t *testing.T) {
	s := start(t, sandbox.Options{})
	resp, _ := call(t, s, "GET", "/api/v2/entries", token(t, s), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, h := range []string{"x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"} {
		_, err := strconv.Atoi(resp.Header.Get(h))
		assert.NoError(t, err, h)
	}
}

// exportTask starts an export of id and polls until the task leaves RUNNING.
func exportTask(t *testing.T, s *sandbox.Server, tok, id string) map[string]any {
	t.Helper()
	resp, body := call(t, s, "POST", "/api/v2/exports", tok, map[string]string{"id": id})
	require.Equal(t, http.StatusAccepted, resp.StatusCode, string(body))
	task := decode(t, body)["taskId"].(string)
	var m map[string]any
	require.Eventually(t, func() bool {
		resp, body := call(t, s, "GET", "/api/v2/tasks/"+task, tok, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		m = decode(t, body)
		return m["status"] != "RUNNING"
	}, 5*time.Second, 10*time.Millisecond)
	return m
}

func downloadURL(t *testing.T, task map[string]any) string {
	t.Helper()
	require.Equal(t, "SUCCEEDED", task["status"], task)
	return task["response"].(map[string]any)["downloadURL"].(string)
}

func get(t *testing.T, u string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	return send(t, req)
}

func TestExportDownload(t *testing.T) {
	s := start(t, sandbox.Options{ExportDelay: 100 * time.Millisecond})
	s.AddEntry("etr_export01", sandbox.EntryOptions{})
	tok := token(t, s)

	resp, body := call(t, s, "POST", "/api/v2/exports", tok, map[string]string{"id": "etr_export01"})
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	task := decode(t, body)["taskId"].(string)
	_, body = call(t, s, "GET", "/api/v2/tasks/"+task, tok, nil)
	assert.JSONEq(t, `{"status":"RUNNING"}`, string(body))

	u := downloadURL(t, exportTask(t, s, tok, "etr_export01"))
	assert.True(t, strings.HasPrefix(u, s.URL()+"/download/"), u)
	assert.Contains(t, u, "X-Amz-Expires=86400")

	resp, full := get(t, u, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/zip", resp.Header.Get("Content-Type"))
	assert.Equal(t, "bytes", resp.Header.Get("Accept-Ranges"))
	etag, lastMod := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	require.NotEmpty(t, etag)
	require.NotEmpty(t, lastMod)
	want, err := sandbox.SampleArchive("etr_export01")
	require.NoError(t, err)
	require.Equal(t, want, full, "deterministic per entry id")

	zr, err := zip.NewReader(bytes.NewReader(full), int64(len(full)))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(zr.File), 3)
	var inFolder bool
	for _, f := range zr.File {
		inFolder = inFolder || strings.Contains(f.Name, "/")
		rc, err := f.Open()
		require.NoError(t, err)
		_, err = io.Copy(io.Discard, rc) // checks the CRC
		require.NoError(t, err, f.Name)
		require.NoError(t, rc.Close())
	}
	assert.True(t, inFolder, "some file is in a folder")

	resp, part := get(t, u, http.Header{"Range": {"bytes=10-99"}})
	require.Equal(t, http.StatusPartialContent, resp.StatusCode)
	assert.Equal(t, full[10:100], part)
	assert.Equal(t, fmt.Sprintf("bytes 10-99/%d", len(full)), resp.Header.Get("Content-Range"))

	resp, part = get(t, u, http.Header{"Range": {"bytes=-22"}, "If-Range": {etag}})
	require.Equal(t, http.StatusPartialContent, resp.StatusCode)
	assert.Equal(t, full[len(full)-22:], part, "suffix range with a matching If-Range")

	resp, part = get(t, u, http.Header{"Range": {"bytes=0-9"}, "If-Range": {`"stale"`}})
	require.Equal(t, http.StatusOK, resp.StatusCode, "a stale If-Range gets the whole object")
	assert.Len(t, part, len(full))

	resp, _ = get(t, u, http.Header{"If-None-Match": {etag}})
	assert.Equal(t, http.StatusNotModified, resp.StatusCode)

	again := downloadURL(t, exportTask(t, s, tok, "etr_export01"))
	assert.NotEqual(t, u, again, "each task has its own URL")

	// Recorded calls keep the query but not what grants access.
	parsed, err := url.Parse(u)
	require.NoError(t, err)
	sent := parsed.Query()
	require.NotEmpty(t, sent.Get("X-Amz-Signature"))
	require.NotEmpty(t, sent.Get("X-Amz-Credential"))
	var downloads int
	for _, c := range s.Calls() {
		if c.Path != parsed.Path {
			continue
		}
		downloads++
		assert.Equal(t, "REDACTED", c.Query.Get("X-Amz-Signature"))
		assert.Equal(t, "REDACTED", c.Query.Get("X-Amz-Credential"))
		assert.Equal(t, sent.Get("X-Amz-Expires"), c.Query.Get("X-Amz-Expires"), "other parameters are kept")
		assert.NotContains(t, fmt.Sprint(c.Query), sent.Get("X-Amz-Signature"))
	}
	assert.Equal(t, 5, downloads)
}

func TestExportSpecs(t *testing.T) {
	s := start(t, sandbox.Options{ExportDelay: -1})
	tok := token(t, s)
	custom := []byte("PK\x05\x06" + strings.Repeat("\x00", 18))
	s.AddEntry("etr_custom01", sandbox.EntryOptions{Export: sandbox.ExportSpec{Zip: custom}})
	s.AddEntry("etr_failed01", sandbox.EntryOptions{Export: sandbox.ExportSpec{Fail: true}})
	s.AddEntry("etr_never001", sandbox.EntryOptions{Export: sandbox.ExportSpec{Never: true}})
	s.AddEntry("etr_slow0001", sandbox.EntryOptions{})

	_, body := get(t, downloadURL(t, exportTask(t, s, tok, "etr_custom01")), nil)
	assert.Equal(t, custom, body)

	failed := exportTask(t, s, tok, "etr_failed01")
	assert.Equal(t, "FAILED", failed["status"])
	assert.Contains(t, failed["message"], "etr_failed01")
	assert.NotContains(t, failed, "response")

	resp, body := call(t, s, "POST", "/api/v2/exports", tok, map[string]string{"id": "etr_never001"})
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	task := decode(t, body)["taskId"].(string)
	for range 3 {
		_, body := call(t, s, "GET", "/api/v2/tasks/"+task, tok, nil)
		assert.JSONEq(t, `{"status":"RUNNING"}`, string(body))
	}

	// SetExport changes later exports only; Delay overrides ExportDelay.
	s.SetExport("etr_slow0001", sandbox.ExportSpec{Delay: time.Hour})
	_, body = call(t, s, "POST", "/api/v2/exports", tok, map[string]string{"id": "etr_slow0001"})
	_, body = call(t, s, "GET", "/api/v2/tasks/"+decode(t, body)["taskId"].(string), tok, nil)
	assert.JSONEq(t, `{"status":"RUNNING"}`, string(body))
	s.SetExport("etr_slow0001", sandbox.ExportSpec{})
	assert.Equal(t, "SUCCEEDED", exportTask(t, s, tok, "etr_slow0001")["status"])
}

func TestExportRequestErrors(t *testing.T) {
	s := start(t, sandbox.Options{})
	s.AddEntry("etr_export02", sandbox.EntryOptions{})
	tok := token(t, s)
	tests := map[string]struct {
		body       any
		wantStatus int
	}{
		"unknown entry":    {map[string]string{"id": "etr_nothere"}, 400},
		"extra property":   {map[string]string{"id": "etr_export02", "format": "pdf"}, 400},
		"missing id":       {map[string]string{}, 400},
		"not json":         {[]byte("id=etr_export02"), 400},
		"id of wrong type": {map[string]int{"id": 1}, 400},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			resp, body := call(t, s, "POST", "/api/v2/exports", tok, tc.body)
			require.Equal(t, tc.wantStatus, resp.StatusCode)
			assert.Equal(t, "invalid_request_error", decode(t, body)["error"].(map[string]any)["type"])
		})
	}
	resp, _ := call(t, s, "GET", "/api/v2/tasks/nope", tok, nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// s3Err is the XML error body of S3.
type s3Err struct {
	Code, Message string
}

func parseS3(t *testing.T, resp *http.Response, body []byte) s3Err {
	t.Helper()
	assert.Equal(t, "application/xml", resp.Header.Get("Content-Type"))
	var e s3Err
	require.NoError(t, xml.Unmarshal(body, &e), string(body))
	return e
}

func TestDownloadErrors(t *testing.T) {
	s := start(t, sandbox.Options{ExportDelay: -1, DownloadTTL: 300 * time.Millisecond})
	s.AddEntry("etr_dlerr001", sandbox.EntryOptions{})
	tok := token(t, s)
	u := downloadURL(t, exportTask(t, s, tok, "etr_dlerr001"))
	parsed, err := url.Parse(u)
	require.NoError(t, err)

	s.ExpireDownloads(true)
	resp, body := get(t, u, nil)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Equal(t, s3Err{"AccessDenied", "Request has expired"}, parseS3(t, resp, body))
	s.ExpireDownloads(false)

	resp, _ = get(t, u, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	noSig := *parsed
	q := noSig.Query()
	q.Del("X-Amz-Signature")
	noSig.RawQuery = q.Encode()
	resp, body = get(t, noSig.String(), nil)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Equal(t, "AccessDenied", parseS3(t, resp, body).Code)

	q.Set("X-Amz-Signature", strings.Repeat("0", 64))
	noSig.RawQuery = q.Encode()
	resp, body = get(t, noSig.String(), nil)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Equal(t, "SignatureDoesNotMatch", parseS3(t, resp, body).Code)

	resp, body = get(t, s.URL()+"/download/nosuchtoken/x.zip?X-Amz-Signature=00", nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "NoSuchKey", parseS3(t, resp, body).Code)

	s.FailNext("GET", "/download/", http.StatusServiceUnavailable, 1)
	resp, body = get(t, u, nil)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "SlowDown", parseS3(t, resp, body).Code)

	require.Eventually(t, func() bool {
		resp, _ := get(t, u, nil)
		return resp.StatusCode == http.StatusForbidden
	}, 5*time.Second, 20*time.Millisecond, "the URL expires after DownloadTTL")
}

func TestEntries(t *testing.T) {
	s := start(t, sandbox.Options{AppID: "app_custom"})
	at := time.Date(2025, 5, 6, 7, 8, 9, 123456789, time.UTC)
	s.AddEntry("etr_entry001", sandbox.EntryOptions{DisplayID: "EXP25000042", Name: "My entry", ModifiedAt: at})
	s.AddEntry("etr_entry002", sandbox.EntryOptions{})
	tok := token(t, s)

	_, body := call(t, s, "GET", "/api/v2/entries/etr_entry001", tok, nil)
	e := decode(t, body)["entry"].(map[string]any)
	assert.Equal(t, "etr_entry001", e["id"])
	assert.Equal(t, "EXP25000042", e["displayId"])
	assert.Equal(t, "My entry", e["name"])
	assert.Equal(t, "2025-05-06T07:08:09.123456+00:00", e["modifiedAt"])
	assert.Equal(t, s.URL()+"/api/v2/entries/etr_entry001", e["apiURL"])
	assert.True(t, strings.HasPrefix(e["webURL"].(string), s.URL()+"/"))
	assert.Contains(t, string(body), `"appId":"app_custom"`, "the app_canvas note names the app")

	_, body = call(t, s, "GET", "/api/v2/entries/etr_entry002", tok, nil)
	e = decode(t, body)["entry"].(map[string]any)
	assert.Regexp(t, `^EXP\d{8}$`, e["displayId"])
	assert.Equal(t, "Sandbox entry etr_entry002", e["name"])
	mod, err := time.Parse(time.RFC3339Nano, e["modifiedAt"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), mod, time.Minute)

	resp, body := call(t, s, "GET", "/api/v2/entries/etr_nothere", tok, nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "etr_nothere", decode(t, body)["error"].(map[string]any)["invalidId"])
}

// listAll pages through GET /entries with q and returns the ids in order.
func listAll(t *testing.T, s *sandbox.Server, tok string, q url.Values, between func()) []string {
	t.Helper()
	var ids []string
	for page := 0; ; page++ {
		require.Less(t, page, 50, "pagination does not end")
		resp, body := call(t, s, "GET", "/api/v2/entries?"+q.Encode(), tok, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		m := decode(t, body)
		for _, e := range m["entries"].([]any) {
			ids = append(ids, e.(map[string]any)["id"].(string))
		}
		next := m["nextToken"].(string)
		if next == "" {
			return ids
		}
		q.Set("nextToken", next)
		if between != nil {
			between()
		}
	}
}

func TestListEntries(t *testing.T) {
	s := start(t, sandbox.Options{})
	base := time.Date(2025, 1, 10, 0, 0, 0, 0, time.UTC)
	names := []string{"delta", "alpha", "echo", "charlie", "bravo"}
	for i, n := range names {
		s.AddEntry(fmt.Sprintf("etr_list%04d", i), sandbox.EntryOptions{Name: n, ModifiedAt: base.AddDate(0, 0, i)})
	}
	tok := token(t, s)
	tests := map[string]struct {
		q    url.Values
		want []string
	}{
		"default: modifiedAt desc, one page": {url.Values{}, []string{"etr_list0004", "etr_list0003", "etr_list0002", "etr_list0001", "etr_list0000"}},
		"pages of 2":                         {url.Values{"pageSize": {"2"}}, []string{"etr_list0004", "etr_list0003", "etr_list0002", "etr_list0001", "etr_list0000"}},
		"modifiedAt asc pages of 3":          {url.Values{"pageSize": {"3"}, "sort": {"modifiedAt:asc"}}, []string{"etr_list0000", "etr_list0001", "etr_list0002", "etr_list0003", "etr_list0004"}},
		"name":                               {url.Values{"sort": {"name"}, "pageSize": {"1"}}, []string{"etr_list0001", "etr_list0004", "etr_list0003", "etr_list0000", "etr_list0002"}},
		"after a date":                       {url.Values{"modifiedAt": {"> 2025-01-12"}}, []string{"etr_list0004", "etr_list0003"}},
		"range":                              {url.Values{"modifiedAt": {"> 2025-01-10T12:00:00Z AND < 2025-01-13"}}, []string{"etr_list0002", "etr_list0001"}},
		"by name":                            {url.Values{"name": {"echo"}}, []string{"etr_list0002"}},
		"by ids":                             {url.Values{"ids": {"etr_list0000,etr_list0003"}}, []string{"etr_list0003", "etr_list0000"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, listAll(t, s, tok, tc.q, nil))
		})
	}

	t.Run("page size 0 returns a token", func(t *testing.T) {
		_, body := call(t, s, "GET", "/api/v2/entries?pageSize=0", tok, nil)
		m := decode(t, body)
		assert.Empty(t, m["entries"])
		require.NotEmpty(t, m["nextToken"])
		_, body = call(t, s, "GET", "/api/v2/entries?pageSize=1&nextToken="+m["nextToken"].(string), tok, nil)
		assert.Equal(t, "etr_list0004", decode(t, body)["entries"].([]any)[0].(map[string]any)["id"])
	})

	t.Run("stable while entries change", func(t *testing.T) {
		added := false
		ids := listAll(t, s, tok, url.Values{"pageSize": {"2"}}, func() {
			if !added {
				// A new most-recent entry must not shift the pages still to come.
				s.AddEntry("etr_listnew1", sandbox.EntryOptions{ModifiedAt: base.AddDate(1, 0, 0)})
				added = true
			}
		})
		assert.Equal(t, []string{"etr_list0004", "etr_list0003", "etr_list0002", "etr_list0001", "etr_list0000"}, ids)
	})

	for name, q := range map[string]string{
		"page size too big": "pageSize=101",
		"negative page":     "pageSize=-1",
		"bad sort":          "sort=id",
		"bad filter":        "modifiedAt=yesterday",
		"bad operator":      "modifiedAt=%3D2025-01-01",
		"bad token":         "nextToken=garbage",
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := call(t, s, "GET", "/api/v2/entries?"+q, tok, nil)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, string(body))
		})
	}

	t.Run("token from another sort", func(t *testing.T) {
		_, body := call(t, s, "GET", "/api/v2/entries?pageSize=1", tok, nil)
		next := decode(t, body)["nextToken"].(string)
		resp, _ := call(t, s, "GET", "/api/v2/entries?sort=name&nextToken="+next, tok, nil)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	})
}

func TestCanvas(t *testing.T) {
	s := start(t, sandbox.Options{})
	s.AddEntry("etr_canvas01", sandbox.EntryOptions{})
	s.AddCanvas("cnvs_existing", "etr_canvas01")
	tok := token(t, s)

	_, body := call(t, s, "GET", "/api/v2/app-canvases/cnvs_existing", tok, nil)
	assert.JSONEq(t, `{"id":"cnvs_existing","app":{"id":"app_sandbox"},"resourceId":"etr_canvas01",
		"featureId":"quilt_integration","blocks":[],"enabled":true,"archiveRecord":null,"data":null,"sessionId":null}`, string(body))

	patch := map[string]any{
		"blocks": []map[string]any{
			{"id": "md1", "type": "MARKDOWN", "value": "# Quilt Links"},
			{"id": "etr_canvas01", "type": "BUTTON", "text": "Update Package", "enabled": true},
		},
		"enabled":   true,
		"featureId": "quilt_integration",
	}
	resp, body := call(t, s, "PATCH", "/api/v2/app-canvases/cnvs_existing", tok, patch)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	state, ok := s.Canvas("cnvs_existing")
	require.True(t, ok)
	assert.JSONEq(t, string(body), string(state))
	assert.Contains(t, string(state), `"text":"Update Package"`)

	var patched []byte
	for _, c := range s.Calls() {
		if c.Method == "PATCH" && c.Path == "/api/v2/app-canvases/cnvs_existing" {
			patched = c.Body
			assert.Equal(t, http.StatusOK, c.Status)
		}
	}
	want, err := json.Marshal(patch)
	require.NoError(t, err)
	assert.JSONEq(t, string(want), string(patched), "the PATCH body is recorded as sent")

	resp, body = call(t, s, "POST", "/api/v2/app-canvases", tok, map[string]any{
		"appId": "app_sandbox", "featureId": "quilt_integration", "resourceId": "etr_canvas01",
		"blocks": []any{map[string]any{"type": "MARKDOWN", "value": "hi"}}, "data": `{"entry":"etr_canvas01"}`,
	})
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(body))
	created := decode(t, body)
	id := created["id"].(string)
	assert.Regexp(t, `^cnvs_\w+$`, id)
	assert.Equal(t, map[string]any{"id": "app_sandbox"}, created["app"])
	assert.NotContains(t, created, "appId", "responses carry app, not appId")
	_, ok = s.Canvas(id)
	assert.True(t, ok)
	_, ok = s.Canvas("cnvs_nothere")
	assert.False(t, ok)
}

func TestCanvasValidation(t *testing.T) {
	s := start(t, sandbox.Options{})
	s.AddEntry("etr_canvas02", sandbox.EntryOptions{})
	s.AddCanvas("cnvs_valid", "etr_canvas02")
	tok := token(t, s)
	md := map[string]any{"type": "MARKDOWN", "value": "x"}
	create := func(mod func(m map[string]any)) map[string]any {
		m := map[string]any{"appId": "app_sandbox", "featureId": "quilt_integration", "resourceId": "etr_canvas02", "blocks": []any{md}}
		mod(m)
		return m
	}
	tests := map[string]struct {
		method string
		body   any
		status int
	}{
		"valid create":          {"POST", create(func(map[string]any) {}), 201},
		"missing blocks":        {"POST", create(func(m map[string]any) { delete(m, "blocks") }), 400},
		"missing appId":         {"POST", create(func(m map[string]any) { delete(m, "appId") }), 400},
		"other app":             {"POST", create(func(m map[string]any) { m["appId"] = "app_other" }), 403},
		"unknown feature":       {"POST", create(func(m map[string]any) { m["featureId"] = "other" }), 400},
		"unknown resource":      {"POST", create(func(m map[string]any) { m["resourceId"] = "etr_nothere" }), 400},
		"unknown property":      {"POST", create(func(m map[string]any) { m["title"] = "x" }), 400},
		"empty body":            {"POST", []byte(""), 400},
		"array body":            {"POST", []byte("[]"), 400},
		"valid patch":           {"PATCH", map[string]any{"enabled": false, "data": nil, "sessionId": "sesn_1"}, 200},
		"appId in patch":        {"PATCH", map[string]any{"appId": "app_sandbox"}, 400},
		"null enabled":          {"PATCH", map[string]any{"enabled": nil}, 400},
		"null blocks":           {"PATCH", map[string]any{"blocks": nil}, 400},
		"data not json":         {"PATCH", map[string]any{"data": "not json"}, 400},
		"data too big":          {"PATCH", map[string]any{"data": `"` + strings.Repeat("x", 5000) + `"`}, 400},
		"data not a string":     {"PATCH", map[string]any{"data": map[string]any{"k": 1}}, 400},
		"block without type":    {"PATCH", map[string]any{"blocks": []any{map[string]any{"value": "x"}}}, 400},
		"unknown block type":    {"PATCH", map[string]any{"blocks": []any{map[string]any{"type": "IMAGE"}}}, 400},
		"button without text":   {"PATCH", map[string]any{"blocks": []any{map[string]any{"type": "BUTTON", "id": "b"}}}, 400},
		"button without id":     {"PATCH", map[string]any{"blocks": []any{map[string]any{"type": "BUTTON", "text": "b"}}}, 400},
		"markdown extra field":  {"PATCH", map[string]any{"blocks": []any{map[string]any{"type": "MARKDOWN", "value": "v", "enabled": true}}}, 400},
		"markdown value number": {"PATCH", map[string]any{"blocks": []any{map[string]any{"type": "MARKDOWN", "value": 1}}}, 400},
		"section in section": {"PATCH", map[string]any{"blocks": []any{map[string]any{"type": "SECTION", "children": []any{
			map[string]any{"type": "SECTION", "children": []any{}}}}}}, 400},
		"section ok": {"PATCH", map[string]any{"blocks": []any{map[string]any{"type": "SECTION", "children": []any{
			map[string]any{"type": "BUTTON", "id": "b", "text": "t"}}}}}, 200},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := "/api/v2/app-canvases"
			if tc.method == "PATCH" {
				path += "/cnvs_valid"
			}
			resp, body := call(t, s, tc.method, path, tok, tc.body)
			require.Equal(t, tc.status, resp.StatusCode, string(body))
			if tc.status >= 400 {
				assert.NotEmpty(t, decode(t, body)["error"].(map[string]any)["message"])
			}
		})
	}
}

// verify checks a signed webhook against the JWKS the sandbox serves, as a
// receiver would, and returns the id of the key that verified it.
func verify(t *testing.T, s *sandbox.Server, h http.Header, body []byte) string {
	t.Helper()
	resp, jwks := get(t, s.JWKSURL(), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var set jose.JSONWebKeySet
	require.NoError(t, json.Unmarshal(jwks, &set))
	ver, sig, ok := strings.Cut(h.Get(webhook.HeaderSignature), ",")
	require.True(t, ok)
	require.Equal(t, webhook.SignatureVersion, ver)
	der, err := base64.StdEncoding.DecodeString(sig)
	require.NoError(t, err)
	digest := sha256.Sum256(webhook.SignedContent(h.Get(webhook.HeaderID), h.Get(webhook.HeaderTimestamp), body))
	for _, k := range set.Keys {
		pub, ok := k.Key.(*ecdsa.PublicKey)
		require.True(t, ok, "EC key")
		if ecdsa.VerifyASN1(pub, digest[:], der) {
			return k.KeyID
		}
	}
	return ""
}

func TestSignWebhook(t *testing.T) {
	s := start(t, sandbox.Options{})
	body := []byte(`{"version":"0","channel":"events","message":{"type":"v2.entry.updated.fields"}}`)

	h, err := s.SignWebhook(body)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(h.Get(webhook.HeaderID), "msg_"))
	ts, err := strconv.ParseInt(h.Get(webhook.HeaderTimestamp), 10, 64)
	require.NoError(t, err)
	assert.InDelta(t, time.Now().Unix(), ts, 5)
	first := verify(t, s, h, body)
	require.NotEmpty(t, first)
	assert.Empty(t, verify(t, s, h, append(body, ' ')), "the signature covers the raw body")

	h2, err := s.SignWebhook(body)
	require.NoError(t, err)
	assert.NotEqual(t, h.Get(webhook.HeaderID), h2.Get(webhook.HeaderID))

	at := time.Unix(1_700_000_000, 0)
	h, err = s.SignWebhookAs("msg_retry", at, body)
	require.NoError(t, err)
	assert.Equal(t, "msg_retry", h.Get(webhook.HeaderID))
	assert.Equal(t, "1700000000", h.Get(webhook.HeaderTimestamp))
	assert.Equal(t, first, verify(t, s, h, body))

	s.RotateKey()
	_, jwks := get(t, s.JWKSURL(), nil)
	var set jose.JSONWebKeySet
	require.NoError(t, json.Unmarshal(jwks, &set))
	assert.Len(t, set.Keys, 2, "old and new key during rotation")
	h, err = s.SignWebhook(body)
	require.NoError(t, err)
	second := verify(t, s, h, body)
	assert.NotEmpty(t, second)
	assert.NotEqual(t, first, second, "new signatures use the new key")

	resp, _ := get(t, s.URL()+"/api/v1/apps/appdef_other/jwks", nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestConcurrentUse(t *testing.T) {
	s := start(t, sandbox.Options{ExportDelay: 20 * time.Millisecond})
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("etr_conc%04d", i)
			s.AddEntry(id, sandbox.EntryOptions{})
			if i%4 == 0 {
				s.RotateKey()
			}
			if i%5 == 0 {
				s.ExpireTokens()
			}
			h, err := s.SignWebhook([]byte(id))
			assert.NoError(t, err)
			assert.NotEmpty(t, h.Get(webhook.HeaderSignature))

			tok := token(t, s)
			resp, _ := call(t, s, "GET", "/api/v2/entries/"+id, tok, nil)
			assert.Contains(t, []int{200, 401}, resp.StatusCode) // another goroutine may expire the token
			resp, body := call(t, s, "POST", "/api/v2/app-canvases", token(t, s), map[string]any{
				"appId": "app_sandbox", "featureId": "quilt_integration", "resourceId": id, "blocks": []any{},
			})
			if resp.StatusCode == http.StatusCreated {
				_, ok := s.Canvas(decode(t, body)["id"].(string))
				assert.True(t, ok)
			}
			call(t, s, "GET", "/api/v2/entries?pageSize=3", tok, nil)
			_ = s.Calls()
			_ = s.Tokens()
		})
	}
	wg.Wait()
	tok := token(t, s)
	u := downloadURL(t, exportTask(t, s, tok, "etr_conc0007"))
	var dl sync.WaitGroup
	for range 8 {
		dl.Go(func() {
			resp, _ := get(t, u, http.Header{"Range": {"bytes=0-99"}})
			assert.Equal(t, http.StatusPartialContent, resp.StatusCode)
		})
	}
	dl.Wait()
	assert.GreaterOrEqual(t, len(s.Calls()), 3*n)
}

package sandbox_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/testkit/sandbox"
)

const (
	testClientID     = "client-id"
	testClientSecret = "client-secret"
	testAppDefID     = "appdef_sandbox"
)

// start runs a sandbox with test credentials; opts may override anything.
func start(t *testing.T, opts sandbox.Options) *sandbox.Server {
	t.Helper()
	if opts.ClientID == "" {
		opts.ClientID, opts.ClientSecret = testClientID, testClientSecret
	}
	if opts.AppDefinitionID == "" {
		opts.AppDefinitionID = testAppDefID
	}
	opts.Logf = t.Logf
	s, err := sandbox.Start(opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// tokenRequest builds a token request with the credentials in Basic auth.
func tokenRequest(t *testing.T, s *sandbox.Server, id, secret string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/api/v2/token",
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	return req
}

// token fetches an access token.
func token(t *testing.T, s *sandbox.Server) string {
	t.Helper()
	resp, body := send(t, tokenRequest(t, s, testClientID, testClientSecret))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.Unmarshal(body, &tr))
	require.NotEmpty(t, tr.AccessToken)
	return tr.AccessToken
}

// apiRequest builds a request to path (under the tenant URL) with a bearer
// token ("" for none) and an optional JSON body.
func apiRequest(t *testing.T, s *sandbox.Server, method, path, tok string, body any) *http.Request {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, ok := body.([]byte)
		if !ok {
			var err error
			b, err = json.Marshal(body)
			require.NoError(t, err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL()+path, r)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return req
}

// send sends req and returns the response with its body read.
func send(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

// call is apiRequest + send.
func call(t *testing.T, s *sandbox.Server, method, path, tok string, body any) (*http.Response, []byte) {
	t.Helper()
	return send(t, apiRequest(t, s, method, path, tok, body))
}

// decode unmarshals b into a map.
func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), string(b))
	return m
}

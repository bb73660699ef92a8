package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/testkit/sandbox"
)

// specPath is a copy of Benchling's published OpenAPI document for API v2
// (kept in testdata so CI needs nothing outside the repository).
const specPath = "testdata/benchling-openapi.yaml"

// strictRequired tightens the spec: Benchling marks almost nothing
// required in responses, so a sandbox that dropped a field would still
// conform. These are the properties real responses carry and clients read.
var strictRequired = map[string][]string{
	"TokenResponse":        {"access_token", "token_type", "expires_in"},
	"AsyncTaskLink":        {"taskId"},
	"EntryById":            {"entry"},
	"EntriesPaginatedList": {"entries", "nextToken"},
	"Entry": {"id", "displayId", "name", "webURL", "apiURL", "createdAt", "modifiedAt", "creator", "authors",
		"days", "fields", "customFields", "folderId", "schema", "archiveRecord", "reviewRecord",
		"assignedReviewers", "entryTemplateId"},
	"AppCanvas": {"id", "app", "resourceId", "featureId", "blocks", "enabled", "archiveRecord", "data", "sessionId"},
	"BaseError": {"message", "type"},
}

// strictClosed are response schemas whose properties are all declared
// directly, so additionalProperties: false catches misspelt fields.
var strictClosed = []string{"TokenResponse", "AsyncTaskLink", "AsyncTask", "EntryById", "EntriesPaginatedList", "Entry"}

// loadSpec loads and tightens the spec once per test binary and builds a
// router whose server matches any sandbox (http://127.0.0.1:{port}/api/v2).
var loadSpec = sync.OnceValues(func() (*openapi3.T, error) {
	b, err := os.ReadFile(specPath)
	if err != nil {
		return nil, err
	}
	// The document says "openapi: 3.1.1" but is written in 3.0 dialect: it
	// marks null with "nullable: true" (294 times) and never with a type
	// list. kin-openapi ignores nullable in 3.1 documents, so every null in
	// a real Benchling response would fail; load it as the 3.0 it is.
	b31 := []byte("\nopenapi: 3.1.1\n")
	if !bytes.Contains(b, b31) {
		return nil, errors.New("spec is no longer labelled 3.1.1: revisit the nullable workaround")
	}
	b = bytes.Replace(b, b31, []byte("\nopenapi: 3.0.3\n"), 1)
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		return nil, err
	}
	for name, req := range strictRequired {
		s := doc.Components.Schemas[name].Value
		s.Required = append(s.Required, req...)
	}
	for _, name := range strictClosed {
		doc.Components.Schemas[name].Value.AdditionalProperties = openapi3.AdditionalProperties{Has: new(bool)}
	}
	// AppCanvasCreate and AppCanvasUpdate declare additionalProperties:
	// false next to an allOf and no properties, which in JSON Schema
	// forbids every property, so no request could pass. Benchling means "no
	// properties beyond the allOf's"; the sandbox enforces that itself
	// (TestCanvasValidation), so drop the keyword here.
	for _, name := range []string{"AppCanvasCreate", "AppCanvasUpdate"} {
		doc.Components.Schemas[name].Value.AdditionalProperties = openapi3.AdditionalProperties{}
	}
	doc.Servers = openapi3.Servers{{
		URL:       "http://127.0.0.1:{port}/api/v2",
		Variables: map[string]*openapi3.ServerVariable{"port": {Default: "80"}},
	}}
	return doc, nil
})

var loadRouter = sync.OnceValues(func() (routers.Router, error) {
	doc, err := loadSpec()
	if err != nil {
		return nil, err
	}
	// The spec's own examples do not all validate; that is not ours to check.
	return legacy.NewRouter(doc, openapi3.DisableExamplesValidation())
})

// checker sends requests to a sandbox and validates both the request and
// the response against the spec, recording which operation/status pairs
// it has seen.
type checker struct {
	t      *testing.T
	s      *sandbox.Server
	doc    *openapi3.T
	router routers.Router
	seen   map[string]bool // "operationId status"
}

func newChecker(t *testing.T, s *sandbox.Server) *checker {
	t.Helper()
	doc, err := loadSpec()
	require.NoError(t, err)
	router, err := loadRouter()
	require.NoError(t, err)
	return &checker{t: t, s: s, doc: doc, router: router, seen: map[string]bool{}}
}

// authenticate accepts the spec's security schemes: a bearer token for
// oAuth, Basic for the http schemes; for the token endpoint the client
// credentials may also be in the form body.
func authenticate(body []byte) openapi3filter.AuthenticationFunc {
	return func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
		h := in.RequestValidationInput.Request.Header.Get("Authorization")
		switch {
		case in.SecurityScheme.Type == "oauth2" && strings.HasPrefix(h, "Bearer "):
			return nil
		case in.SecurityScheme.Type == "http" && in.SecurityScheme.Scheme == "basic" && strings.HasPrefix(h, "Basic "):
			return nil
		case in.SecuritySchemeName == "basicClientIdSecretAuth" && bytes.Contains(body, []byte("client_id=")):
			return nil
		}
		return errors.New("no credentials for " + in.SecuritySchemeName)
	}
}

// exchange validates req (which must be valid unless badRequest), sends
// it, checks the status and validates the response. Statuses the spec does
// not list for the operation (401, 429) must carry a BadRequestError-shaped
// body. Every /api/v2 response must carry the rate-limit headers.
func (c *checker) exchange(req *http.Request, badRequest bool, wantStatus int) (*http.Response, []byte) {
	t := c.t
	t.Helper()
	var reqBody []byte
	if req.Body != nil {
		var err error
		reqBody, err = io.ReadAll(req.Body)
		require.NoError(t, err)
	}
	reset := func() { req.Body = io.NopCloser(bytes.NewReader(reqBody)) }
	reset()

	route, params, err := c.router.FindRoute(req)
	require.NoError(t, err, "route %s %s", req.Method, req.URL)
	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: authenticate(reqBody), MultiError: true},
	}
	err = openapi3filter.ValidateRequest(t.Context(), in)
	if badRequest {
		require.Error(t, err, "request should not conform")
	} else {
		require.NoError(t, err, "request does not conform")
	}

	reset()
	resp, body := send(t, req)
	require.Equal(t, wantStatus, resp.StatusCode, string(body))
	c.seen[route.Operation.OperationID+" "+strconv.Itoa(resp.StatusCode)] = true

	reset()
	in.Options = &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                in.Options,
	}
	if route.Operation.Responses.Status(resp.StatusCode) != nil {
		require.NoError(t, openapi3filter.ValidateResponse(t.Context(), out), "response does not conform: %s", body)
	} else {
		c.validateUndocumented(resp, body)
	}
	c.validateRateHeaders(resp)
	return resp, body
}

// validateUndocumented checks an error the spec does not list for the
// operation against BadRequestError, Benchling's generic error shape.
func (c *checker) validateUndocumented(resp *http.Response, body []byte) {
	t := c.t
	t.Helper()
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var v any
	require.NoError(t, json.Unmarshal(body, &v))
	schema := c.doc.Components.Schemas["BadRequestError"].Value
	require.NoError(t, schema.VisitJSON(v), "%d body does not conform: %s", resp.StatusCode, body)
	require.Contains(t, v, "error")
}

// validateRateHeaders checks the x-rate-limit-* headers against their
// definitions in the spec. The spec declares them on some operations only
// (e.g. listAASequences), but Benchling sends them on every response.
func (c *checker) validateRateHeaders(resp *http.Response) {
	t := c.t
	t.Helper()
	headers := c.doc.Paths.Find("/aa-sequences").Get.Responses.Status(200).Value.Headers
	for _, name := range []string{"x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"} {
		h, ok := headers[name]
		require.True(t, ok, "spec defines %s", name)
		v := resp.Header.Get(name)
		require.NotEmpty(t, v, "header %s", name)
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "header %s", name)
		require.NoError(t, h.Value.Schema.Value.VisitJSON(float64(n)), "header %s", name)
	}
}

// form builds a token request with the credentials in the form body.
func formTokenRequest(t *testing.T, s *sandbox.Server, v url.Values) *http.Request {
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/api/v2/token", strings.NewReader(v.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func TestConformance(t *testing.T) {
	s := start(t, sandbox.Options{ExportDelay: 50 * time.Millisecond})
	c := newChecker(t, s)
	base := time.Date(2025, 4, 1, 12, 0, 0, 0, time.UTC)
	for i := range 5 {
		s.AddEntry("etr_conf000"+strconv.Itoa(i), sandbox.EntryOptions{ModifiedAt: base.Add(time.Duration(i) * time.Hour)})
	}
	s.SetExport("etr_conf0001", sandbox.ExportSpec{Fail: true, Delay: -1})
	s.SetExport("etr_conf0002", sandbox.ExportSpec{Never: true})

	var tok string
	t.Run("token", func(t *testing.T) {
		_, body := c.exchange(tokenRequest(t, s, testClientID, testClientSecret), false, http.StatusOK)
		tok = decode(t, body)["access_token"].(string)
		c.exchange(formTokenRequest(t, s, url.Values{"grant_type": {"client_credentials"},
			"client_id": {testClientID}, "client_secret": {testClientSecret}}), false, http.StatusOK)
		c.exchange(tokenRequest(t, s, testClientID, "wrong"), false, http.StatusUnauthorized)
		c.exchange(formTokenRequest(t, s, url.Values{"grant_type": {"password"},
			"client_id": {testClientID}, "client_secret": {testClientSecret}}), true, http.StatusBadRequest)
	})
	require.NotEmpty(t, tok)

	t.Run("entries", func(t *testing.T) {
		_, body := c.exchange(apiRequest(t, s, "GET", "/api/v2/entries/etr_conf0003", tok, nil), false, http.StatusOK)
		assert.Equal(t, "etr_conf0003", decode(t, body)["entry"].(map[string]any)["id"])
		c.exchange(apiRequest(t, s, "GET", "/api/v2/entries/etr_missing", tok, nil), false, http.StatusNotFound)

		var ids []string
		next := ""
		for page := 0; ; page++ {
			q := url.Values{"pageSize": {"2"}, "modifiedAt": {"> 2025-04-01T12:30:00Z"}}
			if next != "" {
				q.Set("nextToken", next)
			}
			_, body := c.exchange(apiRequest(t, s, "GET", "/api/v2/entries?"+q.Encode(), tok, nil), false, http.StatusOK)
			m := decode(t, body)
			for _, e := range m["entries"].([]any) {
				ids = append(ids, e.(map[string]any)["id"].(string))
			}
			next = m["nextToken"].(string)
			if next == "" {
				break
			}
			require.Less(t, page, 5)
		}
		assert.Equal(t, []string{"etr_conf0004", "etr_conf0003", "etr_conf0002", "etr_conf0001"}, ids)
		c.exchange(apiRequest(t, s, "GET", "/api/v2/entries?pageSize=101", tok, nil), true, http.StatusBadRequest)
	})

	t.Run("exports", func(t *testing.T) {
		taskFor := func(id string) string {
			_, body := c.exchange(apiRequest(t, s, "POST", "/api/v2/exports", tok, map[string]string{"id": id}), false, http.StatusAccepted)
			return decode(t, body)["taskId"].(string)
		}
		poll := func(task string) map[string]any {
			_, body := c.exchange(apiRequest(t, s, "GET", "/api/v2/tasks/"+task, tok, nil), false, http.StatusOK)
			return decode(t, body)
		}
		ok := taskFor("etr_conf0000")
		assert.Equal(t, "RUNNING", poll(ok)["status"])
		require.Eventually(t, func() bool { return poll(ok)["status"] == "SUCCEEDED" }, 5*time.Second, 20*time.Millisecond)
		dl := poll(ok)["response"].(map[string]any)["downloadURL"].(string)
		assert.Contains(t, dl, "X-Amz-Expires=86400")

		failed := poll(taskFor("etr_conf0001"))
		assert.Equal(t, "FAILED", failed["status"])
		assert.NotEmpty(t, failed["message"])
		assert.Equal(t, "RUNNING", poll(taskFor("etr_conf0002"))["status"])

		c.exchange(apiRequest(t, s, "GET", "/api/v2/tasks/00000000-0000-4000-8000-000000000000", tok, nil), false, http.StatusNotFound)
		c.exchange(apiRequest(t, s, "POST", "/api/v2/exports", tok, map[string]string{"id": "etr_missing"}), false, http.StatusBadRequest)
		c.exchange(apiRequest(t, s, "POST", "/api/v2/exports", tok, map[string]string{"id": "etr_conf0000", "format": "pdf"}), true, http.StatusBadRequest)
	})

	t.Run("canvases", func(t *testing.T) {
		blocks := []map[string]any{
			{"id": "md1", "type": "MARKDOWN", "value": "# Quilt Links"},
			{"id": "etr_conf0000", "type": "BUTTON", "text": "Update Package", "enabled": true},
		}
		_, body := c.exchange(apiRequest(t, s, "POST", "/api/v2/app-canvases", tok, map[string]any{
			"appId": sandbox.DefaultAppID, "featureId": sandbox.DefaultFeatureID, "resourceId": "etr_conf0000", "blocks": blocks,
		}), false, http.StatusCreated)
		id := decode(t, body)["id"].(string)
		c.exchange(apiRequest(t, s, "GET", "/api/v2/app-canvases/"+id, tok, nil), false, http.StatusOK)
		c.exchange(apiRequest(t, s, "PATCH", "/api/v2/app-canvases/"+id, tok, map[string]any{
			"blocks": blocks[:1], "enabled": false, "featureId": sandbox.DefaultFeatureID, "data": `{"k":1}`, "sessionId": nil,
		}), false, http.StatusOK)
		c.exchange(apiRequest(t, s, "GET", "/api/v2/app-canvases/cnvs_missing", tok, nil), false, http.StatusNotFound)
		c.exchange(apiRequest(t, s, "PATCH", "/api/v2/app-canvases/cnvs_missing", tok, map[string]any{"blocks": blocks}), false, http.StatusNotFound)
		c.exchange(apiRequest(t, s, "POST", "/api/v2/app-canvases", tok, map[string]any{
			"appId": sandbox.DefaultAppID, "resourceId": "etr_conf0000", "blocks": blocks,
		}), true, http.StatusBadRequest)
		c.exchange(apiRequest(t, s, "POST", "/api/v2/app-canvases", tok, map[string]any{
			"appId": "app_other", "featureId": sandbox.DefaultFeatureID, "resourceId": "etr_conf0000", "blocks": blocks,
		}), false, http.StatusForbidden)
	})

	t.Run("errors", func(t *testing.T) {
		c.exchange(apiRequest(t, s, "GET", "/api/v2/entries/etr_conf0000", "not-a-token", nil), false, http.StatusUnauthorized)
		s.FailNext("GET", "/api/v2/entries", http.StatusTooManyRequests, 1)
		resp, _ := c.exchange(apiRequest(t, s, "GET", "/api/v2/entries/etr_conf0000", tok, nil), false, http.StatusTooManyRequests)
		assert.Equal(t, "0", resp.Header.Get("x-rate-limit-remaining"))
	})

	for _, want := range []string{
		"generateToken 200", "generateToken 400", "generateToken 401",
		"getEntry 200", "getEntry 404", "getEntry 401", "getEntry 429",
		"listEntries 200", "listEntries 400",
		"exportItem 202", "exportItem 400",
		"getTask 200", "getTask 404",
		"createAppCanvas 201", "createAppCanvas 400", "createAppCanvas 403",
		"getAppCanvas 200", "getAppCanvas 404",
		"updateAppCanvas 200", "updateAppCanvas 404",
	} {
		assert.True(t, c.seen[want], "not exercised: %s", want)
	}
}

// TestConformanceCatchesDrift checks that the conformance test would fail
// if the sandbox dropped a field clients rely on or misspelt one.
func TestConformanceCatchesDrift(t *testing.T) {
	s := start(t, sandbox.Options{})
	s.AddEntry("etr_drift001", sandbox.EntryOptions{})
	c := newChecker(t, s)
	tok := token(t, s)

	validate := func(req *http.Request, status int, body []byte) error {
		route, params, err := c.router.FindRoute(req)
		require.NoError(t, err)
		opts := &openapi3filter.Options{IncludeResponseStatus: true, ExcludeRequestBody: true}
		return openapi3filter.ValidateResponse(t.Context(), &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts},
			Status:                 status,
			Header:                 http.Header{"Content-Type": {"application/json"}},
			Body:                   io.NopCloser(bytes.NewReader(body)),
			Options:                opts,
		})
	}
	mutate := func(body []byte, f func(m map[string]any)) []byte {
		m := decode(t, body)
		f(m)
		b, err := json.Marshal(m)
		require.NoError(t, err)
		return b
	}

	req := tokenRequest(t, s, testClientID, testClientSecret)
	_, body := send(t, tokenRequest(t, s, testClientID, testClientSecret))
	require.NoError(t, validate(req, 200, body))
	assert.Error(t, validate(req, 200, mutate(body, func(m map[string]any) { delete(m, "access_token") })))
	assert.Error(t, validate(req, 200, mutate(body, func(m map[string]any) { m["token_type"] = "bearer" })))

	req = apiRequest(t, s, "GET", "/api/v2/entries/etr_drift001", tok, nil)
	_, body = call(t, s, "GET", "/api/v2/entries/etr_drift001", tok, nil)
	require.NoError(t, validate(req, 200, body))
	for _, field := range []string{"modifiedAt", "webURL", "displayId"} {
		assert.Error(t, validate(req, 200, mutate(body, func(m map[string]any) {
			delete(m["entry"].(map[string]any), field)
		})), "dropping entry.%s", field)
	}
	assert.Error(t, validate(req, 200, mutate(body, func(m map[string]any) {
		m["entry"].(map[string]any)["modifiedAT"] = "2025-01-01"
	})), "misspelt field")

	req = apiRequest(t, s, "POST", "/api/v2/exports", tok, map[string]string{"id": "etr_drift001"})
	assert.Error(t, validate(req, 202, []byte(`{"taskID":"x"}`)))
	req = apiRequest(t, s, "GET", "/api/v2/tasks/x", tok, nil)
	assert.Error(t, validate(req, 200, []byte(`{"status":"DONE"}`)))
	assert.NoError(t, validate(req, 200, []byte(`{"status":"RUNNING"}`)))

	s.AddCanvas("cnvs_drift001", "etr_drift001")
	req = apiRequest(t, s, "GET", "/api/v2/app-canvases/cnvs_drift001", tok, nil)
	_, body = call(t, s, "GET", "/api/v2/app-canvases/cnvs_drift001", tok, nil)
	require.NoError(t, validate(req, 200, body))
	for _, field := range []string{"resourceId", "app", "blocks"} {
		assert.Error(t, validate(req, 200, mutate(body, func(m map[string]any) { delete(m, field) })), "dropping %s", field)
	}
	assert.Error(t, validate(req, 200, mutate(body, func(m map[string]any) {
		m["blocks"] = []any{map[string]any{"type": "BUTTON", "id": "b"}}
	})), "BUTTON without text")
}

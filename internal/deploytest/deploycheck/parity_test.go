package deploycheck

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/deploytest/cfncheck"
	"benchling-webhook/internal/testkit/emulate"
	"benchling-webhook/internal/webhook"
)

// The parity table (issue 11, "Parity"): the same requests go to the local
// gateway (emulate.NewGateway) and to the deployed API as addons/
// workflows.yml defines it (its resources, request validator, model,
// gateway responses, and the mapping and response templates rendered with
// the VTL stand-in), and must get the same status code and body.

// parityRequest is one request to the webhook API.
type parityRequest struct {
	method, path string
	body         []byte
	headers      [][2]string // in order; a name may repeat
}

// parityCase is a sequence of requests (a repeated delivery is two).
type parityCase struct {
	name     string
	requests []parityRequest
	want     []int // the status codes, per request
}

// parityAnswer is the API's answer to one request.
type parityAnswer struct {
	status int
	body   string
}

func (a parityAnswer) String() string { return fmt.Sprintf("%d %s", a.status, a.body) }

// parityArn is the execution ARN the Step Functions stand-ins answer, on
// both sides.
func parityArn(name string) string {
	return "arn:aws:states:us-east-1:123456789012:execution:webhook:" + name
}

func parityCases(t *testing.T) []parityCase {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	signedAt := func(id string, body []byte, drop string, extra ...[2]string) [][2]string {
		ts, sig, err := webhook.Sign(key, id, testNow, body)
		require.NoError(t, err)
		var h [][2]string
		for _, kv := range [][2]string{{"webhook-id", id}, {"webhook-timestamp", ts}, {"webhook-signature", sig}, {"Content-Type", "application/json"}} {
			if kv[0] != drop {
				h = append(h, kv)
			}
		}
		return append(h, extra...)
	}
	webhookBody := []byte(envelopeBody(""))
	post := func(path, id string, body []byte) parityRequest {
		return parityRequest{method: http.MethodPost, path: path, body: body, headers: signedAt(id, body, "")}
	}
	one := func(name string, want int, r parityRequest) parityCase {
		return parityCase{name: name, requests: []parityRequest{r}, want: []int{want}}
	}
	withBody := func(name, id, body string) parityCase {
		return one(name, http.StatusBadRequest, post("/event", id, []byte(body)))
	}
	charset := post("/event", "msg_charset", webhookBody)
	charset.headers[3][1] = `application/json; charset="utf-8"`
	var cases []parityCase
	for _, path := range []string{"/", "/event", "/canvas", "/lifecycle"} {
		cases = append(cases, one("POST "+path, http.StatusAccepted, post(path, "msg_path"+strings.ReplaceAll(path, "/", "_"), webhookBody)))
	}
	for _, h := range lowerNames {
		cases = append(cases, one("no "+h+" header", http.StatusBadRequest,
			parityRequest{method: http.MethodPost, path: "/event", body: webhookBody, headers: signedAt("msg_no"+h, webhookBody, h)}))
	}
	noHeaders := parityRequest{method: http.MethodPost, path: "/canvas", body: webhookBody, headers: [][2]string{{"Content-Type", "application/json"}}}
	cases = append(cases,
		one("no webhook headers at all", http.StatusBadRequest, noHeaders),
		one("header names in another case", http.StatusAccepted, parityRequest{method: http.MethodPost, path: "/event", body: webhookBody,
			headers: [][2]string{{"WEBHOOK-ID", "msg_case"}, {"Webhook-Timestamp", "1700000000"}, {"webhook-SIGNATURE", "v1bder,AAAA"}}}),
		one("webhook-id twice: the last one names the execution", http.StatusAccepted, parityRequest{method: http.MethodPost, path: "/event", body: webhookBody,
			headers: signedAt("msg_first", webhookBody, "", [2]string{"webhook-id", "msg_second"})}),
		one("webhook-signature twice", http.StatusAccepted, parityRequest{method: http.MethodPost, path: "/event", body: webhookBody,
			headers: signedAt("msg_twosig", webhookBody, "", [2]string{"webhook-signature", "v1bder,AAAA"})}),
		parityCase{name: "a repeated delivery", requests: []parityRequest{post("/event", "msg_again", webhookBody), post("/", "msg_again", webhookBody)},
			want: []int{http.StatusAccepted, http.StatusOK}},
		one("a webhook-id Step Functions refuses as a name", http.StatusBadRequest, post("/event", "msg/../x", webhookBody)),
		one("a body over API Gateway's 10 MB", http.StatusRequestEntityTooLarge,
			post("/event", "msg_huge", []byte(envelopeBody(`,"pad":"`+strings.Repeat("x", 10<<20)+`"`)))),
		one("an envelope over Step Functions' 256 KiB", http.StatusRequestEntityTooLarge,
			post("/event", "msg_large", []byte(envelopeBody(`,"pad":"`+strings.Repeat("x", 120<<10)+`"`)))),
		one("a body just under the envelope limit", http.StatusAccepted,
			post("/event", "msg_fits", []byte(envelopeBody(`,"pad":"`+strings.Repeat("x", 50<<10)+`"`)))),
		withBody("another app definition", "msg_otherapp", strings.Replace(envelopeBody(""), testApp, "appdef_other", 1)),
		withBody("no app definition", "msg_noapp", `{"channel":"events","message":{"type":"v2.entry.created"}}`),
		withBody("app definition id a number", "msg_appnum", `{"appDefinition":{"id":7},"message":{"type":"v2.entry.created"}}`),
		withBody("app definition a string", "msg_appstr", `{"appDefinition":"`+testApp+`"}`),
		withBody("not JSON", "msg_notjson", `appDefinition=`+testApp),
		withBody("an empty body", "msg_empty", ``),
		withBody("a JSON array", "msg_array", `[{"appDefinition":{"id":"`+testApp+`"}}]`),
		withBody("a message type over 128 characters", "msg_longtype", strings.Replace(envelopeBody(""), "v2.entry.created", strings.Repeat("t", 129), 1)),
		withBody("a tenant id over 64 characters", "msg_longtenant", strings.Replace(envelopeBody(""), "ten_1", strings.Repeat("t", 65), 1)),
		one("the smallest body the model admits", http.StatusAccepted, post("/lifecycle", "msg_small", []byte(`{"appDefinition":{"id":"`+testApp+`"}}`))),
		one("an implausible timestamp (the machine refuses it: WebhookJunk)", http.StatusAccepted, parityRequest{method: http.MethodPost, path: "/event",
			body: webhookBody, headers: [][2]string{{"webhook-id", "msg_oldts"}, {"webhook-timestamp", "1000000000"}, {"webhook-signature", "v1,AAAA"}}}),
		one("text/plain", http.StatusUnsupportedMediaType, parityRequest{method: http.MethodPost, path: "/event", body: webhookBody,
			headers: [][2]string{{"webhook-id", "msg_text"}, {"webhook-timestamp", "1700000000"}, {"webhook-signature", "v1,AAAA"}, {"Content-Type", "text/plain"}}}),
		one("JSON with a charset", http.StatusAccepted, charset),
		one("no content type (taken as JSON)", http.StatusAccepted, parityRequest{method: http.MethodPost, path: "/event", body: webhookBody,
			headers: [][2]string{{"webhook-id", "msg_noct"}, {"webhook-timestamp", "1700000000"}, {"webhook-signature", "v1,AAAA"}}}),
		one("a path the API does not have", http.StatusForbidden, post("/events", "msg_nopath", webhookBody)),
		one("GET on the root", http.StatusForbidden, parityRequest{method: http.MethodGet, path: "/"}),
		one("GET /health", http.StatusOK, parityRequest{method: http.MethodGet, path: "/health"}),
	)
	return cases
}

// TestGatewayParity runs the parity table against both.
func TestGatewayParity(t *testing.T) {
	tmpl := loadTemplate(t, workflowsPath(t))
	cases := parityCases(t)
	deployed := deployedAnswers(t, tmpl, cases)
	local := localAnswers(t, cases)
	for i, c := range cases {
		for j := range c.requests {
			require.Equal(t, c.want[j], deployed[i][j].status, "%s, request %d: the deployed API answers %s", c.name, j+1, deployed[i][j])
			require.Equal(t, deployed[i][j].status, local[i][j].status, "%s, request %d: deployed %s, local %s", c.name, j+1, deployed[i][j], local[i][j])
			require.NoError(t, jsonEqual([]byte(deployed[i][j].body), []byte(local[i][j].body)), "%s, request %d: deployed %s, local %s", c.name, j+1, deployed[i][j], local[i][j])
		}
	}
}

// TestGatewayParityCatches breaks the deployed API in ways the table must
// see.
func TestGatewayParityCatches(t *testing.T) {
	cases := parityCases(t)
	local := localAnswers(t, cases)
	for name, edit := range map[string]func(tmpl *cfncheck.Template){
		"no root method": func(tmpl *cfncheck.Template) { delete(tmpl.Resources, "RootMethod") },
		"headers not validated": func(tmpl *cfncheck.Template) {
			tmpl.Resources["RequireWebhookHeaders"].Properties["ValidateRequestParameters"] = false
		},
		"body not validated": func(tmpl *cfncheck.Template) {
			tmpl.Resources["RequireWebhookHeaders"].Properties["ValidateRequestBody"] = false
		},
		"no model on /event": func(tmpl *cfncheck.Template) { delete(methodProps(t, tmpl, "EventMethod"), "RequestModels") },
		"API Gateway's own body refusal": func(tmpl *cfncheck.Template) {
			delete(tmpl.Resources, "BadRequestBodyResponse")
		},
		"duplicate answered 400": func(tmpl *cfncheck.Template) {
			for _, r := range asList(asMap(methodProps(t, tmpl, "RootMethod")["Integration"])["IntegrationResponses"]) {
				rt := asMap(asMap(r)["ResponseTemplates"])
				if s, ok := rt["application/json"].(string); ok {
					rt["application/json"] = strings.Replace(s, "#set($context.responseOverride.status = 200)\n", "", 1)
				}
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			tmpl := loadTemplate(t, workflowsPath(t))
			edit(tmpl)
			deployed := deployedAnswers(t, tmpl, cases)
			var differ []string
			for i, c := range cases {
				for j := range c.requests {
					if deployed[i][j].status != local[i][j].status || jsonEqual([]byte(deployed[i][j].body), []byte(local[i][j].body)) != nil {
						differ = append(differ, c.name)
					}
				}
			}
			require.NotEmpty(t, differ)
			t.Logf("caught by: %s", strings.Join(differ, "; "))
		})
	}
}

// TestRequestModelSame: the local gateway's request model is the
// template's, with the app definition id substituted.
func TestRequestModelSame(t *testing.T) {
	schema, err := fnSubModel(loadTemplate(t, workflowsPath(t)), "WebhookModel")
	require.NoError(t, err)
	require.NoError(t, jsonEqual([]byte(schema), []byte(emulate.RequestModel(testApp))))
}

// localAnswers sends each case's requests to a local gateway of its own.
func localAnswers(t *testing.T, cases []parityCase) [][]parityAnswer {
	out := make([][]parityAnswer, len(cases))
	for i, c := range cases {
		var mu sync.Mutex
		seen := map[string]bool{}
		h, err := emulate.NewGateway(emulate.GatewayOptions{AppDefinitionID: testApp,
			Start: func(_ context.Context, name string, input json.RawMessage) (string, error) {
				mu.Lock()
				defer mu.Unlock()
				if seen[name] {
					return parityArn(name), emulate.ErrExecutionExists
				}
				seen[name] = true
				return parityArn(name), nil
			}})
		require.NoError(t, err)
		srv := httptest.NewServer(h)
		for _, r := range c.requests {
			req, err := http.NewRequest(r.method, srv.URL+r.path, bytes.NewReader(r.body))
			require.NoError(t, err)
			for _, kv := range r.headers {
				req.Header.Add(kv[0], kv[1])
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			resp.Body.Close()
			out[i] = append(out[i], parityAnswer{resp.StatusCode, string(b)})
		}
		srv.Close()
	}
	return out
}

// deployedAnswers plays the deployed API for each case, from the template
// alone: the resource and method (none: 403), API Gateway's 10 MB limit,
// the request validator (required headers, then the model for the content
// type), the content types the integration maps (passthrough NEVER: 415),
// the request template rendered into a StartExecution request, Step
// Functions' answer (name rules, 256 KiB input, a name used before), and
// the integration response selected for it, rendered. Gateway responses
// are the template's GatewayResponse resources.
func deployedAnswers(t *testing.T, tmpl *cfncheck.Template, cases []parityCase) [][]parityAnswer {
	t.Helper()
	// The pending renderings, in order: requests that reach the mapping
	// template are rendered in one batch, their responses in a second.
	type pending struct {
		i, j  int
		props map[string]any
	}
	out := make([][]parityAnswer, len(cases))
	var jobs []vtlJob
	var waiting []pending
	gatewayResponse := func(kind string, fallback int) parityAnswer {
		for _, r := range tmpl.Resources {
			if r.Type == "AWS::ApiGateway::GatewayResponse" && r.Properties["ResponseType"] == kind {
				var status int
				fmt.Sscan(fmt.Sprint(r.Properties["StatusCode"]), &status)
				body, _ := asMap(r.Properties["ResponseTemplates"])["application/json"].(string)
				return parityAnswer{status, body}
			}
		}
		// API Gateway's default responses.
		return parityAnswer{fallback, `{"message":"` + map[string]string{
			"BAD_REQUEST_PARAMETERS": "Missing required request parameters", "BAD_REQUEST_BODY": "Invalid request body",
			"REQUEST_TOO_LARGE": "Request Too Long", "UNSUPPORTED_MEDIA_TYPE": "Unsupported Media Type",
			"MISSING_AUTHENTICATION_TOKEN": "Missing Authentication Token"}[kind] + `"}`}
	}
	for i, c := range cases {
		out[i] = make([]parityAnswer, len(c.requests))
		for j, r := range c.requests {
			id, props := findMethod(tmpl, r.method, r.path)
			switch {
			case id == "":
				// MISSING_AUTHENTICATION_TOKEN has no customisation here.
				out[i][j] = gatewayResponse("MISSING_AUTHENTICATION_TOKEN", http.StatusForbidden)
				continue
			case len(r.body) > 10<<20:
				out[i][j] = gatewayResponse("REQUEST_TOO_LARGE", http.StatusRequestEntityTooLarge)
				continue
			}
			integ := asMap(props["Integration"])
			if integ["Type"] == "MOCK" {
				rt := asMap(asList(integ["IntegrationResponses"])[0])
				body, _ := asMap(rt["ResponseTemplates"])["application/json"].(string)
				var status int
				fmt.Sscan(fmt.Sprint(rt["StatusCode"]), &status)
				out[i][j] = parityAnswer{status, body}
				continue
			}
			header := func(name string) (string, bool) {
				v, ok := "", false
				for _, kv := range r.headers {
					if strings.EqualFold(kv[0], name) {
						v, ok = kv[1], true
					}
				}
				return v, ok
			}
			validator := asMap(nil)
			if ref, ok := asMap(props["RequestValidatorId"])["Ref"].(string); ok {
				validator = tmpl.Resources[ref].Properties
			}
			if validator["ValidateRequestParameters"] == true {
				missing := false
				for k, required := range asMap(props["RequestParameters"]) {
					if name, ok := strings.CutPrefix(k, "method.request.header."); ok && required == true {
						if _, ok := header(name); !ok {
							missing = true
						}
					}
				}
				if missing {
					out[i][j] = gatewayResponse("BAD_REQUEST_PARAMETERS", http.StatusBadRequest)
					continue
				}
			}
			ct := "application/json"
			if v, ok := header("Content-Type"); ok {
				ct, _, _ = mime.ParseMediaType(v)
			}
			if validator["ValidateRequestBody"] == true {
				if ref, ok := asMap(asMap(props["RequestModels"])[ct])["Ref"].(string); ok {
					schema, err := fnSubModel(tmpl, ref)
					require.NoError(t, err)
					if !validates(t, schema, r.body) {
						out[i][j] = gatewayResponse("BAD_REQUEST_BODY", http.StatusBadRequest)
						continue
					}
				}
			}
			if _, ok := asMap(integ["RequestTemplates"])[ct]; !ok && integ["PassthroughBehavior"] == "NEVER" {
				out[i][j] = gatewayResponse("UNSUPPORTED_MEDIA_TYPE", http.StatusUnsupportedMediaType)
				continue
			}
			jobs = append(jobs, vtlJob{Template: requestTemplate(t, props), Body: string(r.body), Headers: r.headers,
				Context: vtlContext{ResourcePath: r.path, RequestID: fmt.Sprintf("req-%d-%d", i, j), Stage: "v1",
					SourceIP: "192.0.2.10", RequestTimeEpoch: testNow.UnixMilli()}})
			waiting = append(waiting, pending{i, j, props})
		}
	}
	if len(jobs) == 0 {
		return out
	}
	rendered := renderVTL(t, jobs)

	// Step Functions' answers, then the integration responses.
	seen := map[int]map[string]bool{}
	var respJobs []vtlJob
	var classes []map[string]any
	for k, p := range waiting {
		res := rendered[k]
		require.Nil(t, res.Error, "render %s", cases[p.i].name)
		var start startExecution
		require.NoError(t, json.Unmarshal([]byte(*res.Output), &start), "%s: %s", cases[p.i].name, *res.Output)
		if seen[p.i] == nil {
			seen[p.i] = map[string]bool{}
		}
		class, paths := "200", map[string]string{"$.executionArn": parityArn(start.Name)}
		switch {
		case !emulate.ValidExecutionName(start.Name):
			class, paths = "400", map[string]string{"$.__type": "com.amazonaws.swf.service.v2.model#InvalidName"}
		case len(start.Input) > 256<<10:
			class, paths = "400", map[string]string{"$.__type": "com.amazonaws.swf.service.v2.model#InvalidExecutionInput"}
		case seen[p.i][start.Name]:
			class, paths = "400", map[string]string{"$.__type": "com.amazonaws.swf.service.v2.model#ExecutionAlreadyExists"}
		}
		seen[p.i][start.Name] = true
		r := selectResponse(t, asMap(p.props["Integration"]), class)
		body, _ := asMap(r["ResponseTemplates"])["application/json"].(string)
		respJobs = append(respJobs, vtlJob{Template: body, Context: vtlContext{ResourcePath: cases[p.i].requests[p.j].path}, Paths: paths})
		classes = append(classes, r)
	}
	responses := renderVTL(t, respJobs)
	for k, p := range waiting {
		res := responses[k]
		require.Nil(t, res.Error, "render the response to %s", cases[p.i].name)
		var status int
		fmt.Sscan(fmt.Sprint(classes[k]["StatusCode"]), &status)
		if res.Status != nil {
			status = *res.Status
		}
		out[p.i][p.j] = parityAnswer{status, strings.TrimSpace(*res.Output)}
	}
	return out
}

// findMethod returns the API's method for an HTTP method and path (one
// path segment at most, as this API has), or "".
func findMethod(tmpl *cfncheck.Template, method, path string) (string, map[string]any) {
	for id, r := range tmpl.Resources {
		if r.Type != "AWS::ApiGateway::Method" || r.Properties["HttpMethod"] != method {
			continue
		}
		var p string
		res := asMap(r.Properties["ResourceId"])
		if ref, ok := res["Ref"].(string); ok {
			p = "/" + fmt.Sprint(tmpl.Resources[ref].Properties["PathPart"])
		} else if ga, ok := res["Fn::GetAtt"]; ok && (fmt.Sprint(ga) == "Api.RootResourceId" || fmt.Sprint(ga) == "[Api RootResourceId]") {
			p = "/"
		}
		if p == path {
			return id, r.Properties
		}
	}
	return "", nil
}

// selectResponse is the integration response whose SelectionPattern
// matches the integration's status class.
func selectResponse(t *testing.T, integ map[string]any, status string) map[string]any {
	t.Helper()
	for _, r := range asList(integ["IntegrationResponses"]) {
		pattern, _ := asMap(r)["SelectionPattern"].(string)
		if regexp.MustCompile(`^(?:` + pattern + `)$`).MatchString(status) {
			return asMap(r)
		}
	}
	t.Fatalf("no integration response selects %s", status)
	return nil
}

// fnSubModel returns a model's schema with the app definition id
// substituted.
func fnSubModel(tmpl *cfncheck.Template, id string) (string, error) {
	r, ok := tmpl.Resources[id]
	if !ok || r.Type != "AWS::ApiGateway::Model" {
		return "", fmt.Errorf("no model %s", id)
	}
	s, _, err := fnSub(r.Properties["Schema"], map[string]string{"AppDefinitionId": testApp})
	return s, err
}

// validates reports whether body is JSON the draft-4 schema admits, as
// API Gateway's validator decides.
func validates(t *testing.T, schema string, body []byte) bool {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	require.NoError(t, c.AddResource("model.json", doc))
	s, err := c.Compile("model.json")
	require.NoError(t, err)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return false
	}
	return s.Validate(inst) == nil
}

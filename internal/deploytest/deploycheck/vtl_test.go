package deploycheck

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"benchling-webhook/internal/testkit/testenv"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/deploytest/cfncheck"
	"benchling-webhook/internal/testkit/emulate"
	"benchling-webhook/internal/webhook"
)

// renderScript renders mapping templates with velocityjs; see its header.
//
//go:embed render.mjs
var renderScript []byte

// The four webhook methods: identical but for their resource.
var webhookMethods = []string{"EventMethod", "RootMethod", "CanvasMethod", "LifecycleMethod"}

const (
	testMachineARN = "arn:aws:states:us-east-1:123456789012:stateMachine:benchling-webhook-dev-worker-webhook"
	testApp        = "appdef_deploycheck1"
)

// testNow is when the test requests arrive (API Gateway's
// requestTimeEpoch) and are signed.
var testNow = time.Unix(1_700_000_000, 0)

// vtlContext is what the template reads from $context.
type vtlContext struct {
	ResourcePath     string `json:"resourcePath"`
	RequestID        string `json:"requestId"`
	Stage            string `json:"stage"`
	SourceIP         string `json:"sourceIp"`
	RequestTimeEpoch int64  `json:"requestTimeEpoch"`
}

// vtlJob is one rendering: the template and the request it sees.
type vtlJob struct {
	Template string            `json:"template"`
	Body     string            `json:"body"`
	Headers  [][2]string       `json:"headers"`
	Query    [][2]string       `json:"query"`
	Path     [][2]string       `json:"path"`
	Context  vtlContext        `json:"context"`
	Paths    map[string]string `json:"paths,omitempty"`
}

// vtlResult is a rendering's output, the status the template set in
// $context.responseOverride.status (nil if none) and its error.
type vtlResult struct {
	Output *string `json:"output"`
	Status *int    `json:"status"`
	Error  *string `json:"error"`
}

// velocityTools returns tools/node's node binary and velocityjs's ESM
// entry, skipping the test with a hint if they are missing (unless the
// environment requires them).
func velocityTools(t *testing.T) (node, module string) {
	t.Helper()
	n, err := testenv.NodeTools(repoRoot(t))
	testenv.Need(t, testenv.EnvRequireS3, err)
	module, err = n.Module("velocityjs/dist/esm/index.mjs")
	testenv.Need(t, testenv.EnvRequireS3, err)
	return n.Bin, module
}

// renderVTL renders the jobs in one Node process.
func renderVTL(t *testing.T, jobs []vtlJob) []vtlResult {
	t.Helper()
	node, module := velocityTools(t)
	script := filepath.Join(t.TempDir(), "render.mjs")
	require.NoError(t, os.WriteFile(script, renderScript, 0o644))
	in, err := json.Marshal(map[string]any{"module": module, "jobs": jobs})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Env = append(os.Environ(), "NODE_OPTIONS=")
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "render.mjs: %s", stderr.String())
	var out []vtlResult
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &out), "render.mjs output: %s", stdout.String())
	require.Len(t, out, len(jobs))
	return out
}

// methodProps returns the properties of an AWS::ApiGateway::Method.
func methodProps(t testing.TB, tmpl *cfncheck.Template, id string) map[string]any {
	t.Helper()
	r, ok := tmpl.Resources[id]
	require.True(t, ok, "no resource %s", id)
	require.Equal(t, "AWS::ApiGateway::Method", r.Type)
	return r.Properties
}

// fnSub resolves an Fn::Sub (string or [string, vars]) as CloudFormation
// would, with values for the variables (those in vars must be given
// too); ${!X} is a literal ${X}. Any other ${...} is an error: it would be
// a reference CloudFormation resolves, or fails on.
func fnSub(v any, values map[string]string) (string, map[string]any, error) {
	arg, ok := asMap(v)["Fn::Sub"]
	if !ok {
		return "", nil, errors.New("not an Fn::Sub")
	}
	var s string
	var vars map[string]any
	switch a := arg.(type) {
	case string:
		s = a
	case []any:
		if len(a) != 2 {
			return "", nil, errors.New("Fn::Sub list is not [template, variables]")
		}
		s, _ = a[0].(string)
		vars = asMap(a[1])
	default:
		return "", nil, errors.New("Fn::Sub is not a string or list")
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			b.WriteString(s[i:])
			break
		}
		name := s[i+2 : i+end]
		switch val, ok := values[name]; {
		case strings.HasPrefix(name, "!"):
			b.WriteString("${" + name[1:] + "}")
		case ok:
			b.WriteString(val)
		default:
			return "", nil, fmt.Errorf("Fn::Sub: ${%s} is neither a variable with a test value nor escaped as ${!%s}", name, name)
		}
		s = s[i+end+1:]
	}
	return b.String(), vars, nil
}

// requestTemplate returns the method's application/json request template
// with ${MachineArn} substituted by testMachineARN.
func requestTemplate(t testing.TB, props map[string]any) string {
	t.Helper()
	integ := asMap(props["Integration"])
	raw := asMap(integ["RequestTemplates"])["application/json"]
	s, vars, err := fnSub(raw, map[string]string{"MachineArn": testMachineARN})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"Ref": "WebhookStateMachine"}, vars["MachineArn"], "the webhook API starts the webhook state machine")
	return s
}

// webhookCase is a request to the webhook API.
type webhookCase struct {
	name     string
	resource string // /event, /canvas or /lifecycle
	body     string
	id       string    // webhook-id, signed with the body
	names    [3]string // how the client spells webhook-id, -timestamp, -signature
	extra    [][2]string
	query    [][2]string
	sourceIP string
}

// envelopeBody is a Benchling webhook for the test app with message
// fields added.
func envelopeBody(extra string) string {
	return `{"version":"0","baseURL":"https://t.benchling.com","tenantId":"ten_1","app":{"id":"app_1"},` +
		`"appDefinition":{"id":"` + testApp + `","versionNumber":"1"},"channel":"events",` +
		`"message":{"type":"v2.entry.created","id":"evt_1","resourceId":"etr_1"` + extra + `}}`
}

var lowerNames = [3]string{"webhook-id", "webhook-timestamp", "webhook-signature"}

func webhookCases() []webhookCase {
	return []webhookCase{
		{name: "plain", resource: "/event", body: envelopeBody(""), id: "msg_plain", names: lowerNames},
		{name: "quotes and backslashes", resource: "/event", id: "msg_quotes", names: lowerNames,
			body: envelopeBody(`,"note":"say \"hi\" to C:\\temp\\x and \\\\server\\share \\\" end"`)},
		{name: "apostrophes and slashes", resource: "/canvas", id: "msg_apos", names: lowerNames,
			body: envelopeBody(`,"note":"it's 'quoted' <\/script> a/b // \\'"`)},
		{name: "non-ASCII", resource: "/lifecycle", id: "msg_utf8", names: lowerNames,
			body: envelopeBody(`,"note":"Ångström ✓ 日本語 😀🧪 \u00e9\ud83d\ude00 ` + "\u2028\u2029\u007f" + `"`)},
		{name: "newlines and tabs", resource: "/event", id: "msg_ws", names: lowerNames,
			body: "{\n\t\"version\": \"0\",\r\n\t\"appDefinition\": {\"id\": \"" + testApp + "\"},\n\t\"channel\": \"events\",\n" +
				"\t\"message\": {\"type\": \"v2.entry.created\", \"note\": \"line1\\nline2\\ttab\\r\\u0000\\u001f\"}\n}\n"},
		{name: "query parameters named like the headers", resource: "/event", body: envelopeBody(""), id: "msg_header",
			names: [3]string{"Webhook-Id", "Webhook-Timestamp", "WEBHOOK-SIGNATURE"},
			query: [][2]string{{"webhook-id", "msg_query"}, {"webhook-timestamp", "1"}, {"Webhook-Id", "msg_query2"}, {"webhook-signature", "v1bder,AAAA"}}},
		{name: "header values with quotes and backslashes", resource: "/canvas", body: envelopeBody(""),
			id: `msg_"q"\x'/y`, names: lowerNames,
			extra: [][2]string{{"X-Other", `a"b\c`}}},
		{name: "IPv6 client and other headers", resource: "/lifecycle", body: envelopeBody(""), id: "msg_v6",
			names: lowerNames, sourceIP: "2001:db8::7",
			extra: [][2]string{{"User-Agent", "Benchling"}, {"X-Forwarded-For", "198.51.100.1"}}},
	}
}

// request returns the case's headers, signed with key.
func (c webhookCase) request(t testing.TB, key *ecdsa.PrivateKey) (headers [][2]string) {
	t.Helper()
	ts, sig, err := webhook.Sign(key, c.id, testNow, []byte(c.body))
	require.NoError(t, err)
	headers = [][2]string{{c.names[0], c.id}, {c.names[1], ts}, {c.names[2], sig}, {"Content-Type", `application/json; charset="utf-8"`}}
	return append(headers, c.extra...)
}

func (c webhookCase) ip() string {
	if c.sourceIP != "" {
		return c.sourceIP
	}
	return "192.0.2.10"
}

// verifyFixture is a key, its JWKS server and a verifier trusting it.
type verifyFixture struct {
	key      *ecdsa.PrivateKey
	verifier *webhook.Verifier
}

func newVerifyFixture(t *testing.T) verifyFixture {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	jwks, err := webhook.MarshalJWKS(map[string]*ecdsa.PublicKey{"k1": &key.PublicKey})
	require.NoError(t, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks)
	}))
	t.Cleanup(srv.Close)
	v, err := webhook.NewVerifier(webhook.Config{
		AppDefinitionID: testApp,
		JWKSURL:         srv.URL + "/api/v1/apps/{appDefinitionId}/jwks",
		AllowedIPs:      []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")},
		Now:             func() time.Time { return testNow },
		JWKSAttempts:    1,
	})
	require.NoError(t, err)
	return verifyFixture{key: key, verifier: v}
}

// jobs returns a rendering of tmpl for each case.
func (f verifyFixture) jobs(t testing.TB, tmpl string, cases []webhookCase) []vtlJob {
	var jobs []vtlJob
	for i, c := range cases {
		jobs = append(jobs, vtlJob{
			Template: tmpl,
			Body:     c.body,
			Headers:  c.request(t, f.key),
			Query:    c.query,
			Context: vtlContext{
				ResourcePath:     c.resource,
				RequestID:        fmt.Sprintf("req-%d", i),
				Stage:            "v1",
				SourceIP:         c.ip(),
				RequestTimeEpoch: testNow.UnixMilli(),
			},
		})
	}
	return jobs
}

// startExecution is the StartExecution request the template renders.
type startExecution struct {
	StateMachineArn string `json:"stateMachineArn"`
	Name            string `json:"name"`
	Input           string `json:"input"`
}

// check checks one rendering the way Step Functions and job verify see
// it: a StartExecution request for the test machine, named after the
// webhook-id header, whose input decodes as job verify decodes it, equals
// on every field job verify reads what emulate.BuildEnvelope builds for
// the same request, and verifies.
func (f verifyFixture) check(c webhookCase, job vtlJob, res vtlResult) error {
	if res.Error != nil {
		return fmt.Errorf("render: %s", *res.Error)
	}
	var start startExecution
	dec := json.NewDecoder(strings.NewReader(*res.Output))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&start); err != nil {
		return fmt.Errorf("the StartExecution request is not JSON: %w\n%s", err, *res.Output)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("trailing data after the StartExecution request: %s", *res.Output)
	}
	if start.StateMachineArn != testMachineARN {
		return fmt.Errorf("stateMachineArn %q, want %q", start.StateMachineArn, testMachineARN)
	}
	if start.Name != c.id {
		return fmt.Errorf("execution name %q, want the webhook-id header %q", start.Name, c.id)
	}
	env, err := webhook.DecodeEnvelope([]byte(start.Input))
	if err != nil {
		return fmt.Errorf("decode the input: %w\n%s", err, start.Input)
	}

	h := http.Header{}
	for _, kv := range job.Headers {
		h.Add(kv[0], kv[1])
	}
	want := emulate.BuildEnvelope(c.resource, h, []byte(c.body), c.ip(), job.Context.RequestID)
	nonEmpty := func(m map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			if v != "" {
				out[k] = v
			}
		}
		return out
	}
	for _, d := range []struct {
		field     string
		got, want any
	}{
		{"resource", env.Resource, want.Resource},
		{"path", env.Path, want.Path},
		{"httpMethod", env.HTTPMethod, want.HTTPMethod},
		{"headers", nonEmpty(env.Headers), nonEmpty(want.Headers)},
		{"multiValueHeaders", len(env.MultiValueHeaders), 0},
		{"requestContext.requestId", env.RequestContext.RequestID, want.RequestContext.RequestID},
		{"requestContext.resourcePath", env.RequestContext.ResourcePath, want.RequestContext.ResourcePath},
		{"requestContext.httpMethod", env.RequestContext.HTTPMethod, want.RequestContext.HTTPMethod},
		{"requestContext.identity.sourceIp", env.RequestContext.Identity.SourceIP, want.RequestContext.Identity.SourceIP},
		{"requestContext.requestTimeEpoch", env.RequestContext.RequestTimeEpoch, testNow.UnixMilli()},
		{"body", env.Body, want.Body},
		{"isBase64Encoded", env.IsBase64Encoded, want.IsBase64Encoded},
	} {
		if !reflect.DeepEqual(d.got, d.want) {
			return fmt.Errorf("envelope %s: got %#v, emulate.BuildEnvelope has %#v", d.field, d.got, d.want)
		}
	}
	// Both in milliseconds (BuildEnvelope stamps time.Now()).
	if age := time.Since(time.UnixMilli(want.RequestContext.RequestTimeEpoch)); age < 0 || age > time.Minute {
		return fmt.Errorf("emulate.BuildEnvelope's requestTimeEpoch %d is not now in milliseconds", want.RequestContext.RequestTimeEpoch)
	}
	if err := jsonEqual(env.Payload, want.Payload); err != nil {
		return fmt.Errorf("envelope payload: %w", err)
	}
	if got := env.Headers["webhook-id"]; got != c.id {
		return fmt.Errorf("envelope webhook-id %q, want %q", got, c.id)
	}
	r, err := f.verifier.VerifyEnvelope(context.Background(), env)
	if err != nil {
		return fmt.Errorf("job verify rejects the envelope: %w", err)
	}
	if r.WebhookID != c.id {
		return fmt.Errorf("verified webhook-id %q, want %q", r.WebhookID, c.id)
	}
	return nil
}

func jsonEqual(a, b []byte) error {
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		return fmt.Errorf("%w: %s", err, a)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		return fmt.Errorf("%w: %s", err, b)
	}
	if !reflect.DeepEqual(x, y) {
		return fmt.Errorf("%s is not JSON-equal to %s", a, b)
	}
	return nil
}

// checkRequestTemplates renders each template for every case and returns
// the failures, per template.
func checkRequestTemplates(t *testing.T, f verifyFixture, templates []string) [][]error {
	t.Helper()
	cases := webhookCases()
	var jobs []vtlJob
	for _, tmpl := range templates {
		jobs = append(jobs, f.jobs(t, tmpl, cases)...)
	}
	results := renderVTL(t, jobs)
	out := make([][]error, len(templates))
	for i := range templates {
		for j, c := range cases {
			k := i*len(cases) + j
			if err := f.check(c, jobs[k], results[k]); err != nil {
				out[i] = append(out[i], fmt.Errorf("%s: %w", c.name, err))
			}
		}
	}
	return out
}

// TestMappingTemplate renders the webhook methods' request template for
// requests with awkward bodies and headers, and requires that job verify
// decodes and accepts what it builds.
func TestMappingTemplate(t *testing.T) {
	tmpl := loadTemplate(t, workflowsPath(t))
	f := newVerifyFixture(t)
	errs := checkRequestTemplates(t, f, []string{requestTemplate(t, methodProps(t, tmpl, "EventMethod"))})
	require.Empty(t, errs[0])
}

// TestMappingTemplateCatches breaks the template in ways that matter and
// requires the check to notice each.
func TestMappingTemplateCatches(t *testing.T) {
	tmpl := requestTemplate(t, methodProps(t, loadTemplate(t, workflowsPath(t)), "EventMethod"))
	mutations := []struct{ name, old, new string }{
		{"input keeps \\'", `"input":"$util.escapeJavaScript("$envelope").replaceAll("\\'","'")"`, `"input":"$util.escapeJavaScript("$envelope")"`},
		{"webhook-id from $input.params", `#set($wid = $headers.get($key))`, `#set($wid = $input.params('webhook-id'))`},
		{"header names compared case-sensitively", `#set($lower = $key.toLowerCase())`, `#set($lower = $key)`},
		{"header value not escaped", `"webhook-id":"$util.escapeJavaScript($wid).replaceAll("\\'","'")"`, `"webhook-id":"$wid"`},
		{"name not escaped", `"name":"$util.escapeJavaScript($wid).replaceAll("\\'","'")"`, `"name":"$wid"`},
		{"body not base64", `"body":"$util.base64Encode($input.body)","isBase64Encoded":true`, `"body":"$util.escapeJavaScript($input.body)","isBase64Encoded":true`},
		{"no source IP", `"identity":{"sourceIp":"$context.identity.sourceIp"}`, `"identity":{}`},
		{"receipt time in seconds", `"requestTimeEpoch":$context.requestTimeEpoch}`, `"requestTimeEpoch":1700000000}`},
	}
	var broken []string
	for _, m := range mutations {
		b := strings.Replace(tmpl, m.old, m.new, 1)
		require.NotEqual(t, tmpl, b, "mutation %q does not apply: the template changed", m.name)
		broken = append(broken, b)
	}
	errs := checkRequestTemplates(t, newVerifyFixture(t), broken)
	for i, m := range mutations {
		require.NotEmpty(t, errs[i], "the check missed: %s", m.name)
		msg, _, _ := strings.Cut(errs[i][0].Error(), "\n")
		t.Logf("%s: caught: %.200s", m.name, msg)
	}
}

// TestWebhookMethodsIdentical: CloudFormation has no YAML aliases, so the
// three webhook methods are copies; they must stay identical but for
// their resource.
func TestWebhookMethodsIdentical(t *testing.T) {
	require.Empty(t, methodDifferences(t, loadTemplate(t, workflowsPath(t))))

	tmpl := loadTemplate(t, workflowsPath(t))
	integ := asMap(methodProps(t, tmpl, "CanvasMethod")["Integration"])
	asList(integ["IntegrationResponses"])[1].(map[string]any)["StatusCode"] = "409"
	require.Contains(t, methodDifferences(t, tmpl), "CanvasMethod's Integration differs from EventMethod's")

	tmpl = loadTemplate(t, workflowsPath(t))
	methodProps(t, tmpl, "LifecycleMethod")["MethodResponses"] = []any{map[string]any{"StatusCode": "202"}}
	require.Contains(t, methodDifferences(t, tmpl), "LifecycleMethod's MethodResponses differs from EventMethod's")
}

func methodDifferences(t testing.TB, tmpl *cfncheck.Template) []string {
	var out []string
	first := methodProps(t, tmpl, webhookMethods[0])
	for _, id := range webhookMethods[1:] {
		p := methodProps(t, tmpl, id)
		for _, k := range sortedKeys(first) {
			if k != "ResourceId" && !reflect.DeepEqual(first[k], p[k]) {
				out = append(out, fmt.Sprintf("%s's %s differs from %s's", id, k, webhookMethods[0]))
			}
		}
		for _, k := range sortedKeys(p) {
			if _, ok := first[k]; !ok {
				out = append(out, fmt.Sprintf("%s has %s, %s does not", id, k, webhookMethods[0]))
			}
		}
	}
	return out
}

// errorTypes are the StartExecution error types (__type) and what the
// webhook API must answer: Benchling retries a delivery until it gets a
// 2xx, so a retried delivery (the execution exists) must get one.
var errorTypes = []struct {
	errType string
	status  int
	body    string // the response's status field
}{
	{"com.amazonaws.swf.service.v2.model#ExecutionAlreadyExists", 200, "duplicate"},
	{"com.amazonaws.swf.service.v2.model#InvalidExecutionInput", 413, "rejected"},
	{"com.amazonaws.swf.service.v2.model#InvalidName", 400, "rejected"},
	{"com.amazonaws.swf.service.v2.model#StateMachineDoesNotExist", 400, "rejected"},
	{"", 400, "rejected"},
}

// checkResponses renders the method's integration responses: 2xx answers
// 202 with the execution ARN, 4xx per errorTypes, and every status the
// API may answer is a method response.
func checkResponses(t *testing.T, props map[string]any) []error {
	t.Helper()
	integ := asMap(props["Integration"])
	methodStatus := map[string]bool{}
	for _, r := range asList(props["MethodResponses"]) {
		s, _ := asMap(r)["StatusCode"].(string)
		methodStatus[s] = true
	}
	var errs []error
	byClass := map[string]map[string]any{}
	for _, r := range asList(integ["IntegrationResponses"]) {
		m := asMap(r)
		pattern, _ := m["SelectionPattern"].(string)
		re, err := regexp.Compile(`^(?:` + pattern + `)$`)
		if err != nil {
			errs = append(errs, fmt.Errorf("SelectionPattern %q: %w", pattern, err))
			continue
		}
		for _, class := range []string{"200", "400", "500"} {
			if re.MatchString(class) {
				byClass[class] = m
			}
		}
		if s, _ := m["StatusCode"].(string); !methodStatus[s] {
			errs = append(errs, fmt.Errorf("integration response %s has no method response", s))
		}
	}
	for _, class := range []string{"200", "400", "500"} {
		if byClass[class] == nil {
			errs = append(errs, fmt.Errorf("no integration response selects %s", class))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	template := func(class string) string {
		s, _ := asMap(byClass[class]["ResponseTemplates"])["application/json"].(string)
		return s
	}
	jobs := []vtlJob{{Template: template("200"), Context: vtlContext{ResourcePath: "/event"},
		Paths: map[string]string{"$.executionArn": "arn:aws:states:us-east-1:123456789012:execution:m:msg_1"}}}
	for _, e := range errorTypes {
		jobs = append(jobs, vtlJob{Template: template("400"), Context: vtlContext{ResourcePath: "/event"},
			Paths: map[string]string{"$.__type": e.errType}})
	}
	jobs = append(jobs, vtlJob{Template: template("500"), Context: vtlContext{ResourcePath: "/event"}})
	results := renderVTL(t, jobs)

	type answer struct {
		Status, Message, ExecutionArn string
	}
	decode := func(name string, res vtlResult, class string, want int, status string) *answer {
		if res.Error != nil {
			errs = append(errs, fmt.Errorf("%s: render: %s", name, *res.Error))
			return nil
		}
		got, _ := byClass[class]["StatusCode"].(string)
		if res.Status != nil {
			got = fmt.Sprint(*res.Status)
		}
		if got != fmt.Sprint(want) {
			errs = append(errs, fmt.Errorf("%s: answers %s, want %d", name, got, want))
		}
		if !methodStatus[got] {
			errs = append(errs, fmt.Errorf("%s: answers %s, which is not a method response", name, got))
		}
		var a answer
		if err := json.Unmarshal([]byte(*res.Output), &a); err != nil {
			errs = append(errs, fmt.Errorf("%s: the body is not JSON: %w: %s", name, err, *res.Output))
			return nil
		}
		if a.Status != status {
			errs = append(errs, fmt.Errorf("%s: status %q, want %q", name, a.Status, status))
		}
		return &a
	}
	if a := decode("2xx", results[0], "200", 202, "accepted"); a != nil && a.ExecutionArn != jobs[0].Paths["$.executionArn"] {
		errs = append(errs, fmt.Errorf("2xx: executionArn %q", a.ExecutionArn))
	}
	for i, e := range errorTypes {
		decode(fmt.Sprintf("4xx %q", e.errType), results[1+i], "400", e.status, e.body)
	}
	decode("5xx", results[len(results)-1], "500", 500, "error")
	return errs
}

func TestIntegrationResponses(t *testing.T) {
	props := methodProps(t, loadTemplate(t, workflowsPath(t)), "EventMethod")
	require.Empty(t, checkResponses(t, props))
}

func TestIntegrationResponsesCatch(t *testing.T) {
	for name, m := range map[string]struct{ old, new string }{
		"duplicate answered 400":  {"#set($context.responseOverride.status = 200)\n", ""},
		"too large answered 400":  {"#set($context.responseOverride.status = 413)\n", ""},
		"duplicate answered 409":  {"#set($context.responseOverride.status = 200)", "#set($context.responseOverride.status = 409)"},
		"exact type compared":     {`$type.contains("ExecutionAlreadyExists")`, `$type == "ExecutionAlreadyExists"`},
		"duplicate body not JSON": {`{"status":"duplicate","message":"webhook already received"}`, `duplicate`},
	} {
		t.Run(name, func(t *testing.T) {
			props := methodProps(t, loadTemplate(t, workflowsPath(t)), "EventMethod")
			for _, r := range asList(asMap(props["Integration"])["IntegrationResponses"]) {
				rt := asMap(asMap(r)["ResponseTemplates"])
				if s, ok := rt["application/json"].(string); ok && strings.Contains(s, m.old) {
					rt["application/json"] = strings.Replace(s, m.old, m.new, 1)
					errs := checkResponses(t, props)
					require.NotEmpty(t, errs)
					t.Log(errs)
					return
				}
			}
			t.Fatalf("mutation does not apply: no response template contains %q", m.old)
		})
	}
}

// TestStandIns pins the stand-ins to API Gateway's documented behaviour,
// so that the template checks above rest on the real semantics.
func TestStandIns(t *testing.T) {
	body := "'\"\\/\b\f\n\r\t\x01~\x7fé😀"
	jobs := []vtlJob{
		// Commons Lang escapeJavaScript: UTF-16 units, upper-case hex.
		{Template: `$util.escapeJavaScript($input.body)`, Body: body},
		// The replaceAll the docs suggest, with Java regex semantics.
		{Template: `$util.escapeJavaScript($input.body).replaceAll("\\'","'")`, Body: body},
		// $input.params(name) looks in path, query string, then headers;
		// the header map keeps the client's case.
		{Template: `$input.params('webhook-id')|$input.params().header.get('webhook-id')|$!input.params().header.get('webhook-id')|$input.params().header.get('Webhook-Id')`,
			Headers: [][2]string{{"Webhook-Id", "h"}}, Query: [][2]string{{"webhook-id", "q"}}},
		{Template: `$util.base64Encode($input.body)`, Body: "é😀"},
		{Template: `#set($s = "a.b")$s.replaceAll(".", "-")|$s.contains("b")|$s.replaceAll("(a)", "\$1\$1")`},
	}
	res := renderVTL(t, jobs)
	for i, want := range []string{
		`\'\"\\\/\b\f\n\r\t\u0001~\u007F\u00E9\uD83D\uDE00`,
		`'\"\\\/\b\f\n\r\t\u0001~\u007F\u00E9\uD83D\uDE00`,
		`q|$input.params().header.get('webhook-id')||h`,
		"w6nwn5iA",
		`---|true|aa.b`,
	} {
		require.Nil(t, res[i].Error, "job %d", i)
		require.Equal(t, want, *res[i].Output, "job %d", i)
	}
	// The escaped text is a JSON string once \' is fixed.
	var s string
	require.NoError(t, json.Unmarshal([]byte(`"`+*res[1].Output+`"`), &s))
	require.Equal(t, body, s)
}

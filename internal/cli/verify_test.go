package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/sfn"
	"benchling-webhook/internal/testkit/sfnfake"
	"benchling-webhook/internal/webhook"
)

const verifyApp = "appdef_cli1"

// verifyFixture is a signing key, a JWKS server publishing it and a
// folder for request files.
type verifyFixture struct {
	key        *ecdsa.PrivateKey
	jwks       *httptest.Server
	jwksStatus atomic.Int32
	jwksHits   atomic.Int32
	dir        string
}

func newVerifyFixture(t *testing.T) *verifyFixture {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	set, err := webhook.MarshalJWKS(map[string]*ecdsa.PublicKey{"k1": &k.PublicKey})
	require.NoError(t, err)
	f := &verifyFixture{key: k, dir: t.TempDir()}
	f.jwksStatus.Store(http.StatusOK)
	f.jwks = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.jwksHits.Add(1)
		if r.URL.Path != "/api/v1/apps/"+verifyApp+"/jwks" {
			http.NotFound(w, r)
			return
		}
		code := int(f.jwksStatus.Load())
		w.WriteHeader(code)
		if code == http.StatusOK {
			_, _ = w.Write(set)
		}
	}))
	t.Cleanup(f.jwks.Close)
	return f
}

// request returns the JSON of an execution input as the mapping template
// builds it: a signed API Gateway request sent at at, with the body parsed
// as payload and no requestTimeEpoch. edit, if given, changes it first.
func (f *verifyFixture) request(t *testing.T, at time.Time, edit ...func(*webhook.Envelope)) []byte {
	t.Helper()
	body := []byte(`{"version":"0","appDefinition":{"id":"` + verifyApp + `"},"channel":"events","message":{"type":"v2.entry.created","resourceId":"etr_1"}}`)
	ts, sig, err := webhook.Sign(f.key, "wh_cli", at, body)
	require.NoError(t, err)
	env := webhook.Envelope{
		APIGatewayProxyRequest: events.APIGatewayProxyRequest{
			Resource: "/event", Path: "/event", HTTPMethod: http.MethodPost,
			Headers: map[string]string{"Webhook-Id": "wh_cli", "Webhook-Timestamp": ts, "Webhook-Signature": sig},
			RequestContext: events.APIGatewayProxyRequestContext{
				RequestID: "r1", Identity: events.APIGatewayRequestIdentity{SourceIP: "1.2.3.4"},
			},
			Body:            base64.StdEncoding.EncodeToString(body),
			IsBase64Encoded: true,
		},
		Payload: body,
	}
	for _, e := range edit {
		e(&env)
	}
	b, err := json.Marshal(env)
	require.NoError(t, err)
	return b
}

// withReceipt sets requestContext.requestTimeEpoch.
func withReceipt(at time.Time) func(*webhook.Envelope) {
	return func(e *webhook.Envelope) { e.RequestContext.RequestTimeEpoch = at.UnixMilli() }
}

func (f *verifyFixture) file(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(f.dir, name)
	require.NoError(t, os.WriteFile(p, data, 0o600))
	return p
}

// env is the environment of a test run: the JWKS URL and the app id.
func (f *verifyFixture) env(extra map[string]string) map[string]string {
	m := map[string]string{
		"JWKS_URL":          f.jwks.URL + "/api/v1/apps/{appDefinitionId}/jwks",
		"APP_DEFINITION_ID": verifyApp,
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

type verifyRun struct {
	code   int
	res    verifyResult
	stdout string
	stderr string
}

func runVerifyTest(t *testing.T, env map[string]string, args ...string) verifyRun {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), append([]string{"verify", "--log-format", "json"}, args...),
		Env{Stdout: &out, Stderr: &errb, Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	r := verifyRun{code: code, stdout: out.String(), stderr: errb.String()}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 1, "stdout is one JSON line: %q", out.String())
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &r.res), out.String())
	require.Equal(t, code, r.res.ExitCode)
	return r
}

func TestVerifyRequestFile(t *testing.T) {
	f := newVerifyFixture(t)
	valid := f.file(t, "valid.json", f.request(t, time.Now()))
	hourAgo := time.Now().Add(-time.Hour)
	otherPayload := func(e *webhook.Envelope) {
		e.Payload = []byte(strings.Replace(string(e.Payload), "etr_1", "etr_2", 1))
	}
	tests := map[string]struct {
		args   []string
		env    map[string]string
		status int // JWKS answer; default 200
		code   int
		errMsg string // in the result's error and the stderr log
	}{
		"valid":             {args: []string{"--request", valid}, code: exitcode.OK},
		"stale":             {args: []string{"--request", f.file(t, "stale.json", f.request(t, time.Now().Add(-6*time.Minute)))}, code: exitcode.BadInput, errMsg: "in the past"},
		"future":            {args: []string{"--request", f.file(t, "future.json", f.request(t, time.Now().Add(6*time.Minute)))}, code: exitcode.BadInput, errMsg: "in the future"},
		"tolerance flag":    {args: []string{"--request", f.file(t, "2m.json", f.request(t, time.Now().Add(-2*time.Minute))), "--tolerance", "1m"}, code: exitcode.BadInput, errMsg: "more than the 1m0s allowed"},
		"ip not allowed":    {args: []string{"--request", valid, "--allowed-ips", "10.0.0.0/8"}, code: exitcode.BadInput, errMsg: "1.2.3.4 is not on the allow list"},
		"ip allowed by env": {args: []string{"--request", valid}, env: map[string]string{"ALLOWED_IPS": "9.9.9.9,1.2.3.0/24"}, code: exitcode.OK},
		"body over cap":     {args: []string{"--request", valid, "--max-body", "64"}, code: exitcode.BadInput, errMsg: "body too large"},
		"wrong app":         {args: []string{"--request", valid, "--app-definition-id", "appdef_other"}, code: exitcode.BadInput, errMsg: "wrong app definition"},
		"not a request":     {args: []string{"--request", f.file(t, "bad.json", []byte(`["x"]`))}, code: exitcode.BadInput, errMsg: "malformed request"},
		"jwks 404":          {args: []string{"--request", valid}, status: http.StatusNotFound, code: exitcode.Usage, errMsg: "404"},
		"missing file":      {args: []string{"--request", filepath.Join(f.dir, "nope.json")}, code: exitcode.Usage, errMsg: "read request"},
		"no app id":         {args: []string{"--request", valid}, env: map[string]string{"APP_DEFINITION_ID": ""}, code: exitcode.Usage, errMsg: "--app-definition-id"},
		"no source":         {code: exitcode.Usage, errMsg: "--execution-arn (or EXECUTION_ARN) or --request"},
		"both sources":      {args: []string{"--request", valid, "--execution-arn", "arn:x"}, code: exitcode.Usage, errMsg: "not both"},
		"bad allow list":    {args: []string{"--request", valid, "--allowed-ips", "1.2.3.4,example.com"}, code: exitcode.Usage, errMsg: "--allowed-ips"},
		"bad tolerance":     {args: []string{"--request", valid, "--tolerance", "-1s"}, code: exitcode.Usage, errMsg: "--tolerance"},
		"bad jwks url":      {args: []string{"--request", valid, "--jwks-url", "ftp://x"}, code: exitcode.Usage, errMsg: "JWKS URL"},
		"old, fresh at receipt": {args: []string{"--request", f.file(t, "rerun.json", f.request(t, hourAgo, withReceipt(hourAgo.Add(time.Second))))},
			code: exitcode.OK},
		"stale at receipt": {args: []string{"--request", f.file(t, "late.json", f.request(t, hourAgo, withReceipt(hourAgo.Add(6*time.Minute))))},
			code: exitcode.BadInput, errMsg: "measured from when API Gateway received the request"},
		"receipt too old": {args: []string{"--request", f.file(t, "old.json", f.request(t, hourAgo, withReceipt(time.Now().Add(-25*time.Hour))))},
			code: exitcode.BadInput, errMsg: "requestTimeEpoch"},
		"payload differs": {args: []string{"--request", f.file(t, "tampered.json", f.request(t, time.Now(), otherPayload))},
			code: exitcode.BadInput, errMsg: "payload differs from the signed body"},
		"payload missing": {args: []string{"--request", f.file(t, "nopayload.json", f.request(t, time.Now(), func(e *webhook.Envelope) { e.Payload = nil }))},
			code: exitcode.BadInput, errMsg: "payload is missing"},
		"ambiguous keys": {args: []string{"--request", f.file(t, "ambiguous.json", append(bytes.TrimSuffix(f.request(t, time.Now()), []byte("}")), `,"Payload":{}}`...))},
			code: exitcode.BadInput, errMsg: "differ only in case"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f.jwksStatus.Store(http.StatusOK)
			if tc.status != 0 {
				f.jwksStatus.Store(int32(tc.status))
			}
			r := runVerifyTest(t, f.env(tc.env), tc.args...)
			require.Equal(t, tc.code, r.code, r.stderr)
			require.Equal(t, tc.code == exitcode.OK, r.res.Verified)
			if tc.code == exitcode.OK {
				require.Equal(t, "wh_cli", r.res.WebhookID)
				require.Equal(t, "v2.entry.created", r.res.Type)
				require.Equal(t, "events", r.res.Channel)
				require.Equal(t, "1.2.3.4", r.res.SourceIP)
				require.Equal(t, "k1", r.res.KeyID)
				require.Empty(t, r.res.Error)
				require.Contains(t, r.stderr, "webhook verified")
				return
			}
			require.Contains(t, r.res.Error, tc.errMsg)
			require.Equal(t, exitcode.Name(tc.code), r.res.ErrorKind)
			require.Contains(t, r.stderr, tc.errMsg)
			if tc.code == exitcode.BadInput {
				require.Contains(t, r.stderr, `"msg":"webhook rejected"`)
				require.Equal(t, 1, strings.Count(r.stderr, "\n"), "one log line: %s", r.stderr)
				require.NotContains(t, r.stderr, "v1bder,", "signatures are never logged")
			}
		})
	}
}

func TestVerifyStdinAndTransientJWKS(t *testing.T) {
	f := newVerifyFixture(t)
	env := f.env(nil)
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	var out, errb bytes.Buffer

	// --request - reads Env.Stdin.
	code := Run(context.Background(), []string{"verify", "--request", "-"},
		Env{Stdout: &out, Stderr: &errb, Lookup: lookup, Stdin: strings.NewReader(string(f.request(t, time.Now())))})
	require.Equal(t, exitcode.OK, code, errb.String())
	require.Contains(t, out.String(), `"verified":true`)

	// The key set failing with 5xx is transient: the state machine retries exit 4.
	f.jwksStatus.Store(http.StatusServiceUnavailable)
	out.Reset()
	e := Env{Stdout: &out, Stderr: &errb, Lookup: lookup, Stdin: bytes.NewReader(f.request(t, time.Now()))}
	o, s, _ := parseVerify([]string{"--request", "-"}, e)
	require.NotNil(t, o)
	o.jwksAttempts = 2
	hits := f.jwksHits.Load()
	require.Equal(t, exitcode.Transient, o.run(context.Background(), s))
	require.Equal(t, hits+2, f.jwksHits.Load())
	var res verifyResult
	require.NoError(t, json.Unmarshal(bytes.TrimSpace(out.Bytes()), &res))
	require.Equal(t, "transient", res.ErrorKind)
	require.Contains(t, res.Error, "JWKS unavailable")
}

func TestVerifyFlagBeatsEnv(t *testing.T) {
	var v verifyVars
	fs := newVerifyFlags(&v)
	require.NoError(t, fs.Parse([]string{"--app-definition-id", "appdef_flag"}))
	env := map[string]string{"APP_DEFINITION_ID": "appdef_env", "ALLOWED_IPS": "1.2.3.4", "MAX_BODY": "1KiB", "TOLERANCE": "30s", "EXECUTION_ARN": "arn:e"}
	require.NoError(t, applyEnv(fs, func(k string) (string, bool) { s, ok := env[k]; return s, ok }))
	require.Equal(t, "appdef_flag", v.appDefinitionID)
	require.Equal(t, "1.2.3.4", v.allowedIPs)
	require.Equal(t, byteSize(1024), v.maxBody)
	require.Equal(t, 30*time.Second, v.tolerance)
	require.Equal(t, "arn:e", v.executionARN)
	require.Equal(t, webhook.DefaultJWKSURL, v.jwksURL)
	for flag, want := range map[string]string{
		flagExecutionARN: "EXECUTION_ARN", flagRequest: "REQUEST", flagAppDefinitionID: "APP_DEFINITION_ID",
		flagJWKSURL: "JWKS_URL", flagAllowedIPs: "ALLOWED_IPS", flagMaxBody: "MAX_BODY", flagTolerance: "TOLERANCE",
	} {
		require.Equal(t, want, envName(flag))
	}
}

func TestVerifyHelp(t *testing.T) {
	var out, errb bytes.Buffer
	code := Run(context.Background(), []string{"verify", "--help"}, Env{Stdout: &out, Stderr: &errb, Lookup: func(string) (string, bool) { return "", false }})
	require.Equal(t, exitcode.OK, code)
	require.Contains(t, errb.String(), "--execution-arn")
	require.Contains(t, errb.String(), "APP_DEFINITION_ID")
}

// webhookMachineARN is the state machine of the executions verify describes.
const webhookMachineARN = "arn:aws:states:us-east-1:123456789012:stateMachine:webhook"

// newFakeSFN starts the fake Step Functions endpoint for verify, closed
// when t ends.
func newFakeSFN(t *testing.T) *sfnfake.Server {
	s := sfnfake.NewServer()
	t.Cleanup(s.Close)
	return s
}

// addExecution records a RUNNING execution of the webhook machine named
// name with input, and returns its ARN.
func addExecution(t *testing.T, s *sfnfake.Server, name, input string) string {
	e := s.Add(webhookMachineARN, name, "RUNNING")
	require.True(t, s.SetInput(e.ARN, input))
	return e.ARN
}

// badRequests lists the requests the fake got that verify should not send:
// anything but a signed DescribeExecution asking for ALL_DATA.
func badRequests(s *sfnfake.Server) []string {
	var bad []string
	for _, r := range s.Requests() {
		switch {
		case r.Action != "DescribeExecution":
			bad = append(bad, "target: "+r.Action)
		case !r.Signed:
			bad = append(bad, "unsigned request")
		case r.IncludedData != "ALL_DATA":
			bad = append(bad, "body: includedData "+r.IncludedData)
		}
	}
	return bad
}

// sfnProcessEnv points the SDK at the fake, away from the developer's own
// AWS configuration; the SDK reads the process environment.
func sfnProcessEnv(t *testing.T, endpoint string) {
	missing := filepath.Join(t.TempDir(), "notfound")
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_SFN": endpoint, "AWS_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "",
		"AWS_CONFIG_FILE": missing, "AWS_SHARED_CREDENTIALS_FILE": missing, "AWS_PROFILE": "",
		"AWS_MAX_ATTEMPTS": "1", "AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
}

func TestVerifyExecutionARN(t *testing.T) {
	f := newVerifyFixture(t)
	sfnSrv := newFakeSFN(t)
	sfnProcessEnv(t, sfnSrv.URL)
	arn := addExecution(t, sfnSrv, "wh_cli", string(f.request(t, time.Now())))
	staleARN := addExecution(t, sfnSrv, "wh_cli-stale", string(f.request(t, time.Now().Add(-time.Hour))))
	badInputARN := addExecution(t, sfnSrv, "wh_cli-bad", `"just a string"`)
	require.Equal(t, "arn:aws:states:us-east-1:123456789012:execution:webhook:wh_cli", arn)

	tests := map[string]struct {
		arn    string
		status int
		errTyp string
		code   int
		errMsg string
	}{
		"valid":           {arn: arn, code: exitcode.OK},
		"stale":           {arn: staleARN, code: exitcode.BadInput, errMsg: "in the past"},
		"input malformed": {arn: badInputARN, code: exitcode.BadInput, errMsg: "malformed request"},
		"unknown":         {arn: arn + "-nope", code: exitcode.Usage, errMsg: "ExecutionDoesNotExist"},
		"invalid arn":     {arn: "arn:nope", status: 400, errTyp: "InvalidArn", code: exitcode.Usage, errMsg: "InvalidArn"},
		"access denied":   {arn: arn, status: 400, errTyp: "AccessDeniedException", code: exitcode.Usage, errMsg: "AccessDenied"},
		"throttled":       {arn: arn, status: 400, errTyp: "ThrottlingException", code: exitcode.Transient, errMsg: "Throttling"},
		"server error":    {arn: arn, status: 500, errTyp: "InternalServerError", code: exitcode.Transient, errMsg: "500"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			sfnSrv.DescribeFault = func(string) (sfnfake.Fault, bool) {
				return sfnfake.Fault{Status: tc.status, Type: tc.errTyp}, tc.status != 0
			}
			r := runVerifyTest(t, f.env(map[string]string{"AWS_MAX_ATTEMPTS": "1"}), "--execution-arn", tc.arn)
			require.Empty(t, badRequests(sfnSrv), "the fake got a request it does not understand")
			require.Equal(t, tc.code, r.code, r.stderr)
			require.Equal(t, tc.arn, r.res.ExecutionARN)
			if tc.code == exitcode.OK {
				require.True(t, r.res.Verified)
				require.Equal(t, "wh_cli", r.res.WebhookID)
				require.Equal(t, "v2.entry.created", r.res.Type)
				return
			}
			require.False(t, r.res.Verified)
			require.Contains(t, r.res.Error, tc.errMsg)
			require.Contains(t, r.stderr, tc.errMsg)
		})
	}
}

func TestDescribeErrorCodeNetwork(t *testing.T) {
	f := newVerifyFixture(t)
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	sfnProcessEnv(t, dead.URL)
	r := runVerifyTest(t, f.env(map[string]string{"AWS_MAX_ATTEMPTS": "1"}), "--execution-arn", "arn:aws:states:us-east-1:123456789012:execution:webhook:x")
	require.Equal(t, exitcode.Transient, r.code, r.stderr)
	require.Contains(t, r.res.Error, "describe execution")
}

// TestDescribeCredentialsFailure: credentials that cannot be had are
// configuration (exit 2), not a network fault to retry (exit 4).
func TestDescribeCredentialsFailure(t *testing.T) {
	f := newVerifyFixture(t)
	sfnSrv := newFakeSFN(t)
	arn := addExecution(t, sfnSrv, "wh_cli", string(f.request(t, time.Now())))
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	tests := map[string]struct {
		creds    aws.CredentialsProvider
		endpoint string
		code     int
		errMsg   string
	}{
		"provider fails": {creds: aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{}, errors.New("no credentials in this test")
		})), code: exitcode.Usage, errMsg: "no credentials in this test"},
		"provider works": {creds: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret", Source: "test"}, nil
		}), code: exitcode.OK},
		"provider works, network fails": {creds: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"}, nil
		}), endpoint: dead.URL, code: exitcode.Transient, errMsg: "describe execution"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			endpoint := sfnSrv.URL
			if tc.endpoint != "" {
				endpoint = tc.endpoint
			}
			cfg := aws.Config{Region: "us-east-1", Credentials: tc.creds, RetryMaxAttempts: 1, BaseEndpoint: aws.String(endpoint)}
			env := f.env(nil)
			var out, errb bytes.Buffer
			e := Env{Stdout: &out, Stderr: &errb, Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
			o, s, _ := parseVerify([]string{"--execution-arn", arn}, e)
			require.NotNil(t, o)
			o.newDescriber = func(context.Context) (sfn.API, error) { return sfn.NewAPI(cfg), nil }
			hits := len(sfnSrv.Requests())
			code := o.run(context.Background(), s)
			require.Equal(t, tc.code, code, errb.String())
			require.Contains(t, out.String(), tc.errMsg)
			if tc.code == exitcode.Usage {
				require.Equal(t, hits, len(sfnSrv.Requests()), "nothing is sent without credentials")
			}
		})
	}
}

// TestDescribeNoCredentials runs the SDK's real credential chain with
// nothing configured.
func TestDescribeNoCredentials(t *testing.T) {
	f := newVerifyFixture(t)
	sfnSrv := newFakeSFN(t)
	sfnProcessEnv(t, sfnSrv.URL)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"} {
		t.Setenv(k, "")
	}
	r := runVerifyTest(t, f.env(map[string]string{"AWS_MAX_ATTEMPTS": "1"}), "--execution-arn", "arn:aws:states:us-east-1:123456789012:execution:webhook:x")
	require.Equal(t, exitcode.Usage, r.code, r.stderr)
	require.Contains(t, r.res.Error, "describe execution")
	require.Empty(t, sfnSrv.Requests())
}

func TestLoadAWSConfig(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "notfound")
	t.Setenv("AWS_CONFIG_FILE", missing)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", missing)
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_MAX_ATTEMPTS", "3")
	set := Env{Lookup: func(k string) (string, bool) { return "3", k == "AWS_MAX_ATTEMPTS" }}
	unset := Env{Lookup: func(string) (string, bool) { return "", false }}

	cfg, err := loadAWSConfig(context.Background(), unset, 8)
	require.NoError(t, err)
	require.Equal(t, 8, cfg.RetryMaxAttempts, "the default when AWS_MAX_ATTEMPTS is unset")
	require.Equal(t, "eu-west-1", cfg.Region)

	cfg, err = loadAWSConfig(context.Background(), set, 8)
	require.NoError(t, err)
	require.Equal(t, 3, cfg.RetryMaxAttempts, "AWS_MAX_ATTEMPTS wins")

	cfg, err = loadAWSConfig(context.Background(), unset, 5, config.WithAppID("verify-test"))
	require.NoError(t, err)
	require.Equal(t, "verify-test", cfg.AppID, "the caller's options apply")
	require.Equal(t, 5, cfg.RetryMaxAttempts)

	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	_, err = loadAWSConfig(context.Background(), unset, 5)
	require.ErrorContains(t, err, "no AWS region")
	require.Equal(t, exitcode.Usage, exitcode.Resolve(err))

	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_MAX_ATTEMPTS", "many")
	_, err = loadAWSConfig(context.Background(), set, 5)
	require.ErrorContains(t, err, "load AWS configuration")
	require.Equal(t, exitcode.Usage, exitcode.Resolve(err))
}

package webhook

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/exitcode"
)

const testApp = "appdef_test123"

var testNow = time.Unix(1_700_000_000, 0)

func envelopeBody(app string) []byte {
	return []byte(`{"version":"0","baseURL":"https://t.benchling.com","tenantId":"ten_1","app":{"id":"app_1"},` +
		`"appDefinition":{"id":"` + app + `","versionNumber":"1"},"channel":"events",` +
		`"message":{"type":"v2.entry.created","id":"evt_1","resourceId":"etr_1"}}`)
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

// jwksServer serves the key set body with status code, counting requests.
// statuses, if given, are answered in turn before code.
type jwksServer struct {
	*httptest.Server
	hits     atomic.Int32
	paths    chan string
	body     []byte
	code     int
	statuses []int
}

func newJWKSServer(t testing.TB, code int, body []byte, statuses ...int) *jwksServer {
	s := &jwksServer{body: body, code: code, statuses: statuses, paths: make(chan string, 100)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(s.hits.Add(1))
		s.paths <- r.URL.Path
		code := s.code
		if n <= len(s.statuses) {
			code = s.statuses[n-1]
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		if code == http.StatusOK {
			_, _ = w.Write(s.body)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) url() string { return s.URL + "/api/v1/apps/{appDefinitionId}/jwks" }

func jwks(t testing.TB, keys map[string]*ecdsa.PrivateKey) []byte {
	t.Helper()
	pubs := map[string]*ecdsa.PublicKey{}
	for kid, k := range keys {
		pubs[kid] = &k.PublicKey
	}
	b, err := MarshalJWKS(pubs)
	require.NoError(t, err)
	return b
}

// signed returns a request as the API's mapping template builds it.
func signed(t testing.TB, key *ecdsa.PrivateKey, id string, at time.Time, body []byte) events.APIGatewayProxyRequest {
	t.Helper()
	ts, sig, err := Sign(key, id, at, body)
	require.NoError(t, err)
	return events.APIGatewayProxyRequest{
		Resource: "/event", Path: "/event", HTTPMethod: http.MethodPost,
		Headers: map[string]string{HeaderID: id, HeaderTimestamp: ts, HeaderSignature: sig, "content-type": "application/json"},
		RequestContext: events.APIGatewayProxyRequestContext{
			RequestID: "req-1", Identity: events.APIGatewayRequestIdentity{SourceIP: "1.2.3.4"},
		},
		Body:            base64.StdEncoding.EncodeToString(body),
		IsBase64Encoded: true,
	}
}

func newTestVerifier(t testing.TB, cfg Config) *Verifier {
	t.Helper()
	if cfg.AppDefinitionID == "" {
		cfg.AppDefinitionID = testApp
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testNow }
	}
	v, err := NewVerifier(cfg)
	require.NoError(t, err)
	v.retryWait = time.Millisecond
	return v
}

func TestVerify(t *testing.T) {
	k1, k2, other := newKey(t), newKey(t), newKey(t)
	body := envelopeBody(testApp)
	set := jwks(t, map[string]*ecdsa.PrivateKey{"k1": k1, "k2": k2})
	sigOf := func(k *ecdsa.PrivateKey, at time.Time, b []byte) string {
		_, s, err := Sign(k, "wh_1", at, b)
		require.NoError(t, err)
		return s
	}
	tests := map[string]struct {
		key     *ecdsa.PrivateKey // signs the request; default k1
		skew    time.Duration     // the request's timestamp minus now
		body    []byte            // default body
		edit    func(r *events.APIGatewayProxyRequest)
		cfg     func(c *Config)
		want    error  // nil: accepted
		msg     string // in the error
		kid     string // the key that verified
		noFetch bool   // rejected before the key set is fetched
	}{
		"valid":                 {kid: "k1"},
		"rotated key verifies":  {key: k2, kid: "k2"},
		"signed by another key": {key: other, want: ErrBadSignature},
		"forged signature": {edit: func(r *events.APIGatewayProxyRequest) {
			r.Headers[HeaderSignature] = sigOf(k1, testNow, []byte(`{"forged":true}`))
		}, want: ErrBadSignature},
		"body changed after signing": {edit: func(r *events.APIGatewayProxyRequest) {
			r.Body = base64.StdEncoding.EncodeToString(append(envelopeBody(testApp), ' '))
		}, want: ErrBadSignature},
		"id changed after signing": {edit: func(r *events.APIGatewayProxyRequest) { r.Headers[HeaderID] = "wh_2" }, want: ErrBadSignature},
		"stale just past":          {skew: -DefaultTolerance - time.Second, want: ErrStaleTimestamp, msg: "5m1s in the past", noFetch: true},
		"stale just inside":        {skew: -DefaultTolerance, kid: "k1"},
		"future just past":         {skew: DefaultTolerance + time.Second, want: ErrStaleTimestamp, msg: "5m1s in the future", noFetch: true},
		"future just inside":       {skew: DefaultTolerance, kid: "k1"},
		"far future": {edit: func(r *events.APIGatewayProxyRequest) { r.Headers[HeaderTimestamp] = "9223372036854775807" },
			want: ErrStaleTimestamp, msg: "in the future", noFetch: true},
		"far past": {edit: func(r *events.APIGatewayProxyRequest) { r.Headers[HeaderTimestamp] = "-9223372036854775808" },
			want: ErrStaleTimestamp, msg: "in the past", noFetch: true},
		"custom tolerance": {skew: -2 * time.Minute, cfg: func(c *Config) { c.Tolerance = time.Minute }, want: ErrStaleTimestamp, noFetch: true},
		"unparsable timestamp": {edit: func(r *events.APIGatewayProxyRequest) { r.Headers[HeaderTimestamp] = "2023-11-14T22:13:20Z" },
			want: ErrBadTimestamp, noFetch: true},
		"milliseconds timestamp": {edit: func(r *events.APIGatewayProxyRequest) { r.Headers[HeaderTimestamp] += "000" },
			want: ErrStaleTimestamp, noFetch: true},
		"missing webhook-id": {edit: func(r *events.APIGatewayProxyRequest) { delete(r.Headers, HeaderID) },
			want: ErrMissingHeader, msg: HeaderID, noFetch: true},
		"missing webhook-timestamp": {edit: func(r *events.APIGatewayProxyRequest) { delete(r.Headers, HeaderTimestamp) },
			want: ErrMissingHeader, msg: HeaderTimestamp, noFetch: true},
		"missing webhook-signature": {edit: func(r *events.APIGatewayProxyRequest) { delete(r.Headers, HeaderSignature) },
			want: ErrMissingHeader, msg: HeaderSignature, noFetch: true},
		"empty webhook-id": {edit: func(r *events.APIGatewayProxyRequest) { r.Headers[HeaderID] = " " },
			want: ErrMissingHeader, msg: HeaderID, noFetch: true},
		"no headers at all": {edit: func(r *events.APIGatewayProxyRequest) { r.Headers = nil },
			want: ErrMissingHeader, msg: "webhook-id, webhook-timestamp, webhook-signature", noFetch: true},
		"header names in odd case": {edit: func(r *events.APIGatewayProxyRequest) {
			r.Headers = map[string]string{"Webhook-Id": r.Headers[HeaderID], "WEBHOOK-TIMESTAMP": r.Headers[HeaderTimestamp], "webHook-Signature": r.Headers[HeaderSignature]}
		}, kid: "k1"},
		"headers only in multiValueHeaders": {edit: func(r *events.APIGatewayProxyRequest) {
			r.MultiValueHeaders = map[string][]string{}
			for k, v := range r.Headers {
				r.MultiValueHeaders[strings.ToUpper(k)] = []string{v}
			}
			r.Headers = nil
		}, kid: "k1"},
		"same value in both maps": {edit: func(r *events.APIGatewayProxyRequest) {
			r.MultiValueHeaders = map[string][]string{"Webhook-Id": {r.Headers[HeaderID]}}
		}, kid: "k1"},
		"conflicting values": {edit: func(r *events.APIGatewayProxyRequest) {
			r.Headers["Webhook-Id"] = "wh_other"
		}, want: ErrDuplicateHeader, msg: HeaderID, noFetch: true},
		"Kelvin sign is not k": {edit: func(r *events.APIGatewayProxyRequest) {
			r.Headers["webhoo\u212a-id"] = r.Headers[HeaderID]
			delete(r.Headers, HeaderID)
		}, want: ErrMissingHeader, noFetch: true},
		"no der version": {edit: func(r *events.APIGatewayProxyRequest) {
			_, sig, _ := strings.Cut(r.Headers[HeaderSignature], ",")
			r.Headers[HeaderSignature] = "v1," + sig
		}, want: ErrNoDERSignature, noFetch: true},
		"no comma": {edit: func(r *events.APIGatewayProxyRequest) { r.Headers[HeaderSignature] = "v1bder" },
			want: ErrNoDERSignature, noFetch: true},
		"several versions one valid": {edit: func(r *events.APIGatewayProxyRequest) {
			r.Headers[HeaderSignature] = "v1,c2lnbmF0dXJl v1bder,AAAA " + sigOf(other, testNow, body) + "  " + r.Headers[HeaderSignature] + " v2bder,!!"
		}, kid: "k1"},
		"malformed signature base64": {edit: func(r *events.APIGatewayProxyRequest) { r.Headers[HeaderSignature] = "v1bder,not*base64" },
			want: ErrBadSignature, msg: "valid base64", noFetch: true},
		"too many signatures": {edit: func(r *events.APIGatewayProxyRequest) {
			r.Headers[HeaderSignature] = strings.Repeat(r.Headers[HeaderSignature]+" ", 17)
		}, want: ErrBadSignature, noFetch: true},
		"ip allowed exactly": {cfg: func(c *Config) { c.AllowedIPs = mustAllow(t, "9.9.9.9, 1.2.3.4") }, kid: "k1"},
		"ip allowed by CIDR": {cfg: func(c *Config) { c.AllowedIPs = mustAllow(t, "1.2.0.0/16") }, kid: "k1"},
		"ip mapped IPv6 allowed": {edit: func(r *events.APIGatewayProxyRequest) { r.RequestContext.Identity.SourceIP = "::ffff:1.2.3.4" },
			cfg: func(c *Config) { c.AllowedIPs = mustAllow(t, "1.2.3.0/24") }, kid: "k1"},
		"ip not allowed": {cfg: func(c *Config) { c.AllowedIPs = mustAllow(t, "1.2.4.0/24,1.2.3.5") },
			want: ErrIPNotAllowed, msg: "1.2.3.4", noFetch: true},
		"ip missing with allow list": {edit: func(r *events.APIGatewayProxyRequest) { r.RequestContext.Identity.SourceIP = "" },
			cfg: func(c *Config) { c.AllowedIPs = mustAllow(t, "0.0.0.0/0") }, want: ErrIPNotAllowed, noFetch: true},
		"ip missing without allow list": {edit: func(r *events.APIGatewayProxyRequest) { r.RequestContext.Identity.SourceIP = "" }, kid: "k1"},
		"body at cap":                   {cfg: func(c *Config) { c.MaxBody = int64(len(body)) }, kid: "k1"},
		"body at cap+1": {cfg: func(c *Config) { c.MaxBody = int64(len(body)) - 1 },
			want: ErrBodyTooLarge, msg: fmt.Sprintf("%d bytes", len(body)), noFetch: true},
		"raw body at cap+1": {edit: func(r *events.APIGatewayProxyRequest) { r.Body, r.IsBase64Encoded = string(body), false },
			cfg: func(c *Config) { c.MaxBody = int64(len(body)) - 1 }, want: ErrBodyTooLarge, noFetch: true},
		"raw body": {edit: func(r *events.APIGatewayProxyRequest) { r.Body, r.IsBase64Encoded = string(body), false }, kid: "k1"},
		"body not base64": {edit: func(r *events.APIGatewayProxyRequest) { r.Body = string(body) },
			want: ErrBodyEncoding, noFetch: true},
		"no body":           {edit: func(r *events.APIGatewayProxyRequest) { r.Body = "" }, want: ErrNoBody, noFetch: true},
		"non-JSON body":     {body: []byte("hello=world"), want: ErrNotJSON, noFetch: true},
		"truncated JSON":    {body: body[:len(body)-1], want: ErrNotJSON, msg: "syntax error", noFetch: true},
		"JSON array body":   {body: []byte(`[{"appDefinition":{"id":"` + testApp + `"}}]`), want: ErrNotJSON, noFetch: true},
		"wrong field type":  {body: []byte(`{"appDefinition":{"id":7}}`), want: ErrNotJSON, msg: "appDefinition.id", noFetch: true},
		"wrong app id":      {body: envelopeBody("appdef_evil"), want: ErrWrongApp, msg: "appdef_evil", noFetch: true},
		"no app id":         {body: []byte(`{"channel":"events","message":{"type":"v2.entry.created"}}`), want: ErrWrongApp, noFetch: true},
		"valid app unicode": {body: []byte(`{"appDefinition":{"id":"` + testApp + `"},"message":{"type":"v2.app.installed"},"note":"ü"}`), kid: "k1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := newJWKSServer(t, http.StatusOK, set)
			cfg := Config{JWKSURL: srv.url()}
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			v := newTestVerifier(t, cfg)
			key, b := k1, body
			if tc.key != nil {
				key = tc.key
			}
			if tc.body != nil {
				b = tc.body
			}
			req := signed(t, key, "wh_1", testNow.Add(tc.skew), b)
			sig := req.Headers[HeaderSignature]
			if tc.edit != nil {
				tc.edit(&req)
			}
			res, err := v.Verify(context.Background(), req)
			require.NotNil(t, res)
			if tc.noFetch {
				require.Zero(t, srv.hits.Load(), "the key set must not be fetched before the cheap checks pass")
			}
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				require.Equal(t, exitcode.BadInput, exitcode.Resolve(err))
				require.ErrorContains(t, err, tc.msg)
				require.NotContains(t, err.Error(), sig[len(SignatureVersion)+1:], "errors must not carry signatures")
				require.NotContains(t, err.Error(), `"message"`, "errors must not carry the body")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.kid, res.KeyID)
			require.Equal(t, "wh_1", res.WebhookID)
			require.Equal(t, testApp, res.AppDefinitionID)
			require.Equal(t, testNow.Add(tc.skew).Unix(), res.Timestamp.Unix())
			require.Equal(t, len(b), res.BodyBytes)
			require.Equal(t, int32(1), srv.hits.Load())
			require.Equal(t, "/api/v1/apps/"+testApp+"/jwks", <-srv.paths)
		})
	}
}

func TestVerifyResultFields(t *testing.T) {
	k := newKey(t)
	srv := newJWKSServer(t, http.StatusOK, jwks(t, map[string]*ecdsa.PrivateKey{"kid-1": k}))
	v := newTestVerifier(t, Config{JWKSURL: srv.url()})
	res, err := v.Verify(context.Background(), signed(t, k, "wh_9", testNow, envelopeBody(testApp)))
	require.NoError(t, err)
	require.Equal(t, &Result{
		WebhookID: "wh_9", Timestamp: testNow, SourceIP: "1.2.3.4", Channel: "events", MessageType: "v2.entry.created",
		AppDefinitionID: testApp, BodyBytes: len(envelopeBody(testApp)), KeyID: "kid-1",
	}, res)

	// A rejection still says which delivery it was.
	res, err = v.Verify(context.Background(), signed(t, k, "wh_9", testNow.Add(-time.Hour), envelopeBody(testApp)))
	require.ErrorIs(t, err, ErrStaleTimestamp)
	require.Equal(t, "wh_9", res.WebhookID)
	require.Equal(t, "1.2.3.4", res.SourceIP)
}

func TestJWKS(t *testing.T) {
	k1 := newKey(t)
	good := jwks(t, map[string]*ecdsa.PrivateKey{"k1": k1})
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	marshal := func(keys ...jose.JSONWebKey) []byte {
		b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
		require.NoError(t, err)
		return b
	}
	onlyRSA := marshal(jose.JSONWebKey{Key: &rsaKey.PublicKey, KeyID: "r1", Algorithm: "RS256", Use: "sig"})
	mixed := marshal(
		jose.JSONWebKey{Key: &rsaKey.PublicKey, KeyID: "r1", Use: "sig"},
		jose.JSONWebKey{Key: &p384.PublicKey, KeyID: "p384", Use: "sig"},
		jose.JSONWebKey{Key: &k1.PublicKey, KeyID: "enc", Use: "enc"},
		jose.JSONWebKey{Key: &k1.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"},
	)
	// One key of an unknown kind must not hide the others.
	mixed = []byte(strings.Replace(string(mixed), `"keys":[`, `"keys":[{"kty":"XYZ","kid":"x"},{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"},`, 1))
	private := marshal(jose.JSONWebKey{Key: k1, KeyID: "k1"})

	tests := map[string]struct {
		code     int
		body     []byte
		statuses []int
		want     error
		exit     int
		hits     int32
	}{
		"200":                 {code: 200, body: good, hits: 1},
		"mixed set":           {code: 200, body: mixed, hits: 1},
		"404":                 {code: 404, want: ErrJWKSInvalid, exit: exitcode.Usage, hits: 1},
		"400":                 {code: 400, want: ErrJWKSInvalid, exit: exitcode.Usage, hits: 1},
		"500 then 200":        {code: 200, body: good, statuses: []int{500}, hits: 2},
		"503 429 then 200":    {code: 200, body: good, statuses: []int{503, 429}, hits: 3},
		"500 always":          {code: 500, want: ErrJWKSUnavailable, exit: exitcode.Transient, hits: DefaultJWKSAttempts},
		"429 always":          {code: 429, want: ErrJWKSUnavailable, exit: exitcode.Transient, hits: DefaultJWKSAttempts},
		"garbage":             {code: 200, body: []byte("<html>hello</html>"), want: ErrJWKSInvalid, exit: exitcode.Usage, hits: 1},
		"empty set":           {code: 200, body: []byte(`{"keys":[]}`), want: ErrJWKSInvalid, exit: exitcode.Usage, hits: 1},
		"only RSA keys":       {code: 200, body: onlyRSA, want: ErrJWKSInvalid, exit: exitcode.Usage, hits: 1},
		"private key ignored": {code: 200, body: private, want: ErrJWKSInvalid, exit: exitcode.Usage, hits: 1},
		"too large": {code: 200, body: []byte(`{"keys":[],"pad":"` + strings.Repeat("x", maxJWKSBytes) + `"}`),
			want: ErrJWKSInvalid, exit: exitcode.Usage, hits: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := newJWKSServer(t, tc.code, tc.body, tc.statuses...)
			v := newTestVerifier(t, Config{JWKSURL: srv.url()})
			res, err := v.Verify(context.Background(), signed(t, k1, "wh_1", testNow, envelopeBody(testApp)))
			require.Equal(t, tc.hits, srv.hits.Load())
			if tc.want == nil {
				require.NoError(t, err)
				require.Equal(t, "k1", res.KeyID)
				return
			}
			require.ErrorIs(t, err, tc.want)
			require.Equal(t, tc.exit, exitcode.Resolve(err))
		})
	}
}

func TestJWKSUnreachable(t *testing.T) {
	k := newKey(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/jwks"
	srv.Close()
	v := newTestVerifier(t, Config{JWKSURL: url, JWKSAttempts: 2})
	_, err := v.Verify(context.Background(), signed(t, k, "wh_1", testNow, envelopeBody(testApp)))
	require.ErrorIs(t, err, ErrJWKSUnavailable)
	require.ErrorContains(t, err, "2 attempts")
	require.Equal(t, exitcode.Transient, exitcode.Resolve(err))
}

func TestJWKSCancelled(t *testing.T) {
	k := newKey(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	stop := errors.New("stop")
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		cancel(stop) // the job is told to stop while the key set is failing
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	v := newTestVerifier(t, Config{JWKSURL: srv.URL, JWKSAttempts: 100})
	v.retryWait = time.Hour
	_, err := v.Verify(ctx, signed(t, k, "wh_1", testNow, envelopeBody(testApp)))
	require.ErrorIs(t, err, stop)
	require.NotErrorIs(t, err, ErrJWKSUnavailable)
	require.Equal(t, int32(1), hits.Load())
}

func TestNewVerifier(t *testing.T) {
	v, err := NewVerifier(Config{AppDefinitionID: testApp})
	require.NoError(t, err)
	require.Equal(t, "https://apps.benchling.com/api/v1/apps/"+testApp+"/jwks", v.jwksURL)
	require.Equal(t, DefaultTolerance, v.cfg.Tolerance)
	require.Equal(t, int64(DefaultMaxBody), v.cfg.MaxBody)
	require.Equal(t, DefaultJWKSAttempts, v.cfg.JWKSAttempts)

	tests := map[string]struct {
		cfg  Config
		want string
	}{
		"no app id":         {Config{}, "app definition id"},
		"path in app id":    {Config{AppDefinitionID: "../admin"}, "app definition id"},
		"relative url":      {Config{AppDefinitionID: testApp, JWKSURL: "/jwks"}, "JWKS URL"},
		"ftp url":           {Config{AppDefinitionID: testApp, JWKSURL: "ftp://x/jwks"}, "JWKS URL"},
		"negative tol":      {Config{AppDefinitionID: testApp, Tolerance: -time.Second}, "tolerance"},
		"negative max body": {Config{AppDefinitionID: testApp, MaxBody: -1}, "max body"},
		"negative attempts": {Config{AppDefinitionID: testApp, JWKSAttempts: -1}, "attempts"},
		"invalid prefix":    {Config{AppDefinitionID: testApp, AllowedIPs: []netip.Prefix{{}}}, "prefix"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := NewVerifier(tc.cfg)
			require.ErrorIs(t, err, ErrConfig)
			require.ErrorContains(t, err, tc.want)
			require.Equal(t, exitcode.Usage, exitcode.Resolve(err))
		})
	}
}

func mustAllow(t testing.TB, s string) []netip.Prefix {
	t.Helper()
	p, err := ParseAllowList(s)
	require.NoError(t, err)
	return p
}

func TestParseAllowList(t *testing.T) {
	got := mustAllow(t, " 1.2.3.4 ,10.1.2.3/8,, 2001:db8::/32, ::ffff:5.6.7.8")
	require.Equal(t, []netip.Prefix{
		netip.MustParsePrefix("1.2.3.4/32"), netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("5.6.7.8/32"),
	}, got)
	require.Empty(t, mustAllow(t, ""))
	for _, bad := range []string{"1.2.3", "1.2.3.4/33", "example.com", "1.2.3.4,nope"} {
		_, err := ParseAllowList(bad)
		require.Error(t, err, bad)
	}
}

func TestDecodeRequest(t *testing.T) {
	in := `{"resource":"/event","path":"/event","httpMethod":"POST",
	  "headers":{"webhook-id":"wh_1","webhook-timestamp":"1700000000","webhook-signature":"v1bder,AAAA","content-type":"application/json"},
	  "multiValueHeaders":{"webhook-id":["wh_1"]},"queryStringParameters":null,
	  "requestContext":{"requestId":"r1","extendedRequestId":"e1","identity":{"sourceIp":"1.2.3.4"}},
	  "body":"e30=","isBase64Encoded":true,"extra":"ignored"}`
	req, err := DecodeRequest([]byte(in))
	require.NoError(t, err)
	require.Equal(t, "/event", req.Path)
	require.Equal(t, "wh_1", req.Headers[HeaderID])
	require.Equal(t, []string{"wh_1"}, req.MultiValueHeaders[HeaderID])
	require.Equal(t, "1.2.3.4", req.RequestContext.Identity.SourceIP)
	require.Equal(t, "e30=", req.Body)
	require.True(t, req.IsBase64Encoded)

	for name, bad := range map[string]string{
		"trailing object": in + `{}`,
		"trailing junk":   in + ` x`,
		"array":           `[` + in + `]`,
		"null":            `null`,
		"empty":           ``,
		"string":          `"x"`,
		"truncated":       in[:40],
		"wrong type":      `{"headers":["a"]}`,
	} {
		_, err := DecodeRequest([]byte(bad))
		require.ErrorIs(t, err, ErrBadRequest, name)
		require.Equal(t, exitcode.BadInput, exitcode.Resolve(err), name)
	}
	_, err = DecodeRequest([]byte(" \n" + in + "\n\n"))
	require.NoError(t, err, "surrounding white space is fine")
}

func TestSignedContentRoundTrip(t *testing.T) {
	// A request built and signed here passes through JSON and DecodeRequest unchanged.
	k := newKey(t)
	srv := newJWKSServer(t, http.StatusOK, jwks(t, map[string]*ecdsa.PrivateKey{"k": k}))
	v := newTestVerifier(t, Config{JWKSURL: srv.url()})
	b, err := json.Marshal(signed(t, k, "wh_1", testNow, envelopeBody(testApp)))
	require.NoError(t, err)
	req, err := DecodeRequest(b)
	require.NoError(t, err)
	_, err = v.Verify(context.Background(), req)
	require.NoError(t, err)
}

func FuzzDERSignatures(f *testing.F) {
	f.Add("v1bder,AAAA")
	f.Add("v1,abc v1bder,MEUCIQ== v2bder,!!")
	f.Add(strings.Repeat("der,QQ== ", 20))
	f.Fuzz(func(t *testing.T, h string) {
		sigs, err := derSignatures(h)
		if err == nil {
			require.NotEmpty(t, sigs)
			require.LessOrEqual(t, len(sigs), maxDERSignatures)
		}
	})
}

// TestVerifyDeprecated: message.deprecated is reported only when it is the
// literal true, and no other value rejects the webhook.
func TestVerifyDeprecated(t *testing.T) {
	k := newKey(t)
	srv := newJWKSServer(t, http.StatusOK, jwks(t, map[string]*ecdsa.PrivateKey{"kid-1": k}))
	v := newTestVerifier(t, Config{JWKSURL: srv.url()})
	for value, want := range map[string]bool{`true`: true, ` true `: true, `false`: false, `"true"`: false, `1`: false, `null`: false, ``: false} {
		field := ""
		if value != "" {
			field = `,"deprecated":` + value
		}
		body := []byte(`{"appDefinition":{"id":"` + testApp + `"},"channel":"app_signals",` +
			`"message":{"type":"v2-beta.canvas.created","canvasId":"cnvs_1"` + field + `}}`)
		res, err := v.Verify(context.Background(), signed(t, k, "wh_d", testNow, body))
		require.NoError(t, err, "deprecated %q", value)
		require.Equal(t, want, res.Deprecated, "deprecated %q", value)
	}
}

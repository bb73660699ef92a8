package webhook

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/exitcode"
)

// signedEnvelope returns an execution input as the mapping template builds
// it: the signed request and the body, parsed, as payload.
func signedEnvelope(t testing.TB, key *ecdsa.PrivateKey, at time.Time, body []byte) Envelope {
	t.Helper()
	return Envelope{APIGatewayProxyRequest: signed(t, key, "wh_1", at, body), Payload: body}
}

func TestEnvelopeJSONIsFlat(t *testing.T) {
	env := signedEnvelope(t, newKey(t), testNow, envelopeBody(testApp))
	env.RequestContext.RequestTimeEpoch = testNow.UnixMilli()
	b, err := json.Marshal(env)
	require.NoError(t, err)
	var top map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &top))
	for _, k := range []string{"body", "headers", "requestContext", "isBase64Encoded", "payload"} {
		require.Contains(t, top, k)
	}
	require.NotContains(t, top, "APIGatewayProxyRequest", "the embedded request's fields are at the top level")
	require.JSONEq(t, string(envelopeBody(testApp)), string(top["payload"]))

	got, err := DecodeEnvelope(b)
	require.NoError(t, err)
	require.Equal(t, env.APIGatewayProxyRequest, got.APIGatewayProxyRequest)
	require.JSONEq(t, string(env.Payload), string(got.Payload))

	// No payload: the key is left out, and DecodeRequest still reads the request.
	env.Payload = nil
	b, err = json.Marshal(env)
	require.NoError(t, err)
	require.NotContains(t, string(b), `"payload"`)
	req, err := DecodeRequest(b)
	require.NoError(t, err)
	require.Equal(t, env.APIGatewayProxyRequest, req)
}

func TestDecodeEnvelopeAmbiguousKeys(t *testing.T) {
	const rc = `"requestContext":{"requestId":"r1","requestTimeEpoch":1700000000000,"identity":{"sourceIp":"1.2.3.4"}}`
	const hs = `"headers":{"webhook-id":"wh_1","content-type":"application/json"}`
	ok := `{"body":"e30=","isBase64Encoded":true,` + hs + `,` + rc + `,"payload":{"a":1}}`
	env, err := DecodeEnvelope([]byte(ok))
	require.NoError(t, err)
	require.Equal(t, int64(1700000000000), env.RequestContext.RequestTimeEpoch)
	require.JSONEq(t, `{"a":1}`, string(env.Payload))

	tests := map[string]struct {
		in  string
		msg string
	}{
		"body and Body":            {`{"body":"e30=","Body":"eA==",` + rc + `}`, `"body" and "Body"`},
		"two payloads":             {`{"body":"e30=","payload":{"a":1},"payload":{"a":2}}`, `"payload" twice`},
		"payload and PAYLOAD":      {`{"body":"e30=","PAYLOAD":{"a":2},"payload":{"a":1}}`, "differ only in case"},
		"escaped duplicate":        {`{"body":"e30=","\u0062ody":"eA=="}`, `"body" twice`},
		"Unicode folding as Go":    {`{"isBase64Encoded":true,"i\u017fBase64Encoded":false}`, "differ only in case"},
		"Kelvin sign":              {`{"headers":{},"requestContext":{},"\u212aey":1,"key":2}`, "differ only in case"},
		"headers differ in case":   {`{"headers":{"webhook-id":"a","Webhook-Id":"b"}}`, "headers has the keys"},
		"headers twice the same":   {`{"headers":{"webhook-id":"a","webhook-id":"b"}}`, `headers has the key "webhook-id" twice`},
		"Headers spelled oddly":    {`{"Headers":{"webhook-id":"a","webhook-id":"b"}}`, `Headers has the key`},
		"multiValueHeaders":        {`{"multiValueHeaders":{"webhook-id":["a"],"WEBHOOK-ID":["b"]}}`, "multiValueHeaders has the keys"},
		"requestContext":           {`{"requestContext":{"requestTimeEpoch":1,"RequestTimeEpoch":2}}`, "requestContext has the keys"},
		"requestContext.identity":  {`{"requestContext":{"identity":{"sourceIp":"1.2.3.4","sourceIP":"6.6.6.6"}}}`, "requestContext.identity has the keys"},
		"requestContext twice":     {`{"requestContext":{},"requestContext":{}}`, "twice"},
		"top level beats headers":  {`{"headers":{"a":"1","A":"2"},"headers":{}}`, "headers has the keys"},
		"trailing data still bad":  {ok + `{}`, "trailing data"},
		"not an object still bad":  {`[]`, "not a JSON object"},
		"wrong field type (array)": {`{"headers":["a"]}`, "malformed request"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for _, decode := range []func([]byte) error{
				func(b []byte) error { _, err := DecodeEnvelope(b); return err },
				func(b []byte) error { _, err := DecodeRequest(b); return err },
			} {
				err := decode([]byte(tc.in))
				require.ErrorIs(t, err, ErrBadRequest)
				require.ErrorContains(t, err, tc.msg)
				require.Equal(t, exitcode.BadInput, exitcode.Resolve(err))
			}
		})
	}

	// Keys that differ in more than case, and objects the state machine
	// does not read (queryStringParameters, the payload itself), are fine.
	for _, in := range []string{
		`{"headers":{"webhook-id":"a","webhook-ids":"b"},"headers2":{}}`,
		`{"queryStringParameters":{"a":"1","A":"2"},"headers":null,"requestContext":null}`,
		`{"payload":{"a":1,"A":2}}`,
	} {
		_, err := DecodeEnvelope([]byte(in))
		require.NoError(t, err, in)
	}
}

func TestVerifyEnvelope(t *testing.T) {
	k, other := newKey(t), newKey(t)
	set := jwks(t, map[string]*ecdsa.PrivateKey{"k1": k})
	body := []byte(`{"appDefinition":{"id":"` + testApp + `"},"channel":"events",` +
		`"message":{"type":"v2.entry.created","resourceId":"etr_1","n":1.50,"big":12345678901234567890123,"list":[1,"2",null,true]}}`)
	tests := map[string]struct {
		payload string // "" leaves it out
		key     *ecdsa.PrivateKey
		want    error
		msg     string
	}{
		"same bytes": {payload: string(body)},
		"reordered, spaced and escaped": {payload: ` { "message" : {"list":[1,"\u0032",null,true],"big":1.2345678901234567890123e22, "n":15e-1,
			"resourceId":"etr_1","type":"v2.entry.created"}, "channel":"events","appDefinition":{"id":"` + testApp + `"} } `},
		"missing":              {want: ErrPayloadMismatch, msg: "missing"},
		"null":                 {payload: "null", want: ErrPayloadMismatch, msg: "missing"},
		"other type":           {payload: strings.Replace(string(body), "v2.entry.created", "v2.canvas.created", 1), want: ErrPayloadMismatch},
		"other entry":          {payload: strings.Replace(string(body), "etr_1", "etr_2", 1), want: ErrPayloadMismatch},
		"extra key":            {payload: strings.Replace(string(body), `"channel"`, `"extra":1,"channel"`, 1), want: ErrPayloadMismatch},
		"key dropped":          {payload: strings.Replace(string(body), `"channel":"events",`, "", 1), want: ErrPayloadMismatch},
		"number differs":       {payload: strings.Replace(string(body), "1.50", "1.51", 1), want: ErrPayloadMismatch},
		"big number rounded":   {payload: strings.Replace(string(body), "12345678901234567890123", "12345678901234567890000", 1), want: ErrPayloadMismatch},
		"number as string":     {payload: strings.Replace(string(body), "1.50", `"1.50"`, 1), want: ErrPayloadMismatch},
		"array order":          {payload: strings.Replace(string(body), `[1,"2",null,true]`, `["2",1,null,true]`, 1), want: ErrPayloadMismatch},
		"key case":             {payload: strings.Replace(string(body), `"channel"`, `"Channel"`, 1), want: ErrPayloadMismatch},
		"duplicate key":        {payload: strings.Replace(string(body), `"channel":"events"`, `"channel":"app_signals","channel":"events"`, 1), want: ErrPayloadMismatch, msg: "same key twice"},
		"a string":             {payload: strconv.Quote(string(body)), want: ErrPayloadMismatch},
		"not JSON":             {payload: `{"a":`, want: ErrPayloadMismatch, msg: "not JSON"},
		"trailing data":        {payload: string(body) + `{}`, want: ErrPayloadMismatch, msg: "trailing data"},
		"forged, same payload": {payload: string(body), key: other, want: ErrBadSignature},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := newJWKSServer(t, http.StatusOK, set)
			v := newTestVerifier(t, Config{JWKSURL: srv.url()})
			key := k
			if tc.key != nil {
				key = tc.key
			}
			env := signedEnvelope(t, key, testNow, body)
			env.Payload = json.RawMessage(tc.payload)
			res, err := v.VerifyEnvelope(context.Background(), env)
			require.NotNil(t, res)
			if tc.want == nil {
				require.NoError(t, err)
				require.Equal(t, "k1", res.KeyID)
				return
			}
			require.ErrorIs(t, err, tc.want)
			require.ErrorContains(t, err, tc.msg)
			require.Equal(t, exitcode.BadInput, exitcode.Resolve(err))
			require.NotContains(t, err.Error(), "etr_", "errors must not carry the body or payload")
			if tc.want == ErrPayloadMismatch {
				require.Zero(t, srv.hits.Load(), "the payload is checked before the key set is fetched")
			}
		})
	}

	// Verify alone does not look at a payload.
	srv := newJWKSServer(t, http.StatusOK, set)
	v := newTestVerifier(t, Config{JWKSURL: srv.url()})
	_, err := v.Verify(context.Background(), signed(t, k, "wh_1", testNow, body))
	require.NoError(t, err)
}

func TestCanonicalNumber(t *testing.T) {
	same := [][]string{
		{"150", "150.0", "1.5e2", "1.50E+2", "15e1", "0.15e3", "1500e-1"},
		{"0", "-0", "0.000", "0e5", "-0.0E-3"},
		{"-1.5", "-15e-1", "-0.15E1"},
		{"1e-7", "0.0000001", "100e-9"},
	}
	for _, group := range same {
		for _, n := range group {
			require.Equal(t, canonicalNumber(group[0]), canonicalNumber(n), "%s vs %s", group[0], n)
		}
	}
	distinct := []string{"1", "-1", "10", "1.0000000000000000001", "12345678901234567890123", "12345678901234567890124", "1e9999999999999", "1e9999999999998"}
	seen := map[number]string{}
	for _, n := range distinct {
		c := canonicalNumber(n)
		require.NotContains(t, seen, c, "%s and %s", n, seen[c])
		seen[c] = n
	}
}

func TestReceiptTime(t *testing.T) {
	k := newKey(t)
	set := jwks(t, map[string]*ecdsa.PrivateKey{"k1": k})
	tests := map[string]struct {
		signed   time.Duration // webhook-timestamp minus now
		received time.Duration // requestTimeEpoch minus now
		epoch    int64         // overrides received when not 0
		want     error
		msg      string
	}{
		"old but fresh at receipt":       {signed: -50 * time.Minute, received: -49 * time.Minute},
		"retried after a day, almost":    {signed: -MaxRequestAge + time.Minute, received: -MaxRequestAge + 2*time.Minute},
		"receipt exactly a day ago":      {signed: -MaxRequestAge, received: -MaxRequestAge},
		"stale at receipt":               {signed: -36 * time.Minute, received: -30 * time.Minute, want: ErrStaleTimestamp, msg: "6m0s in the past (measured from when API Gateway received the request)"},
		"fresh now, not at receipt":      {signed: 0, received: -10 * time.Minute, want: ErrStaleTimestamp, msg: "10m0s in the future (measured from when API Gateway"},
		"receipt in the future":          {signed: 0, received: DefaultTolerance + time.Second, want: ErrBadRequest, msg: "requestTimeEpoch is 5m1s in the future"},
		"receipt a little in the future": {signed: 0, received: DefaultTolerance},
		"receipt over a day ago":         {signed: -MaxRequestAge - time.Second, received: -MaxRequestAge - time.Second, want: ErrBadRequest, msg: "requestTimeEpoch is 24h0m1s in the past"},
		"receipt negative":               {epoch: -1, want: ErrBadRequest, msg: "negative"},
		"receipt far future":             {epoch: 1 << 62, want: ErrBadRequest, msg: "in the future"},
		"zero uses now":                  {signed: -DefaultTolerance},
		"zero uses now, stale":           {signed: -DefaultTolerance - time.Second, want: ErrStaleTimestamp, msg: "5m1s in the past (measured from now)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := newJWKSServer(t, http.StatusOK, set)
			v := newTestVerifier(t, Config{JWKSURL: srv.url()})
			env := signedEnvelope(t, k, testNow.Add(tc.signed), envelopeBody(testApp))
			switch {
			case tc.epoch != 0:
				env.RequestContext.RequestTimeEpoch = tc.epoch
			case tc.received != 0:
				env.RequestContext.RequestTimeEpoch = testNow.Add(tc.received).UnixMilli()
			}
			res, err := v.VerifyEnvelope(context.Background(), env)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				require.ErrorContains(t, err, tc.msg)
				require.Equal(t, exitcode.BadInput, exitcode.Resolve(err))
				require.Zero(t, srv.hits.Load())
				return
			}
			require.NoError(t, err)
			require.Equal(t, testNow.Add(tc.signed).Unix(), res.Timestamp.Unix())
			if env.RequestContext.RequestTimeEpoch == 0 {
				require.True(t, res.ReceivedAt.IsZero())
			} else {
				require.Equal(t, env.RequestContext.RequestTimeEpoch, res.ReceivedAt.UnixMilli())
			}
		})
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	f.Add(`{"body":"e30=","payload":{"a":1},"headers":{"webhook-id":"x"},"requestContext":{"identity":{"sourceIp":"1.2.3.4"}}}`)
	f.Add(`{"body":"e30=","Body":"x"}`)
	f.Add(`{"payload":[1,2,{"a":1.5e3}]}`)
	f.Fuzz(func(t *testing.T, in string) {
		env, err := DecodeEnvelope([]byte(in))
		req, rerr := DecodeRequest([]byte(in))
		require.Equal(t, err == nil, rerr == nil)
		if err != nil {
			require.ErrorIs(t, err, ErrBadRequest)
			return
		}
		require.Equal(t, env.APIGatewayProxyRequest, req)
		if len(env.Payload) > 0 {
			_, _ = decodeJSON(env.Payload) // must not panic
		}
	})
}

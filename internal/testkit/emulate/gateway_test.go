package emulate

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/webhook"
)

// TestEnvelopeVerifies checks that the request envelope the local gateway
// builds is what job verify decodes and accepts, byte for byte, for
// bodies that are awkward to carry (quotes, backslashes, non-ASCII,
// newlines), and that only the webhook headers are carried over.
func TestEnvelopeVerifies(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	jwks, err := webhook.MarshalJWKS(map[string]*ecdsa.PublicKey{"k1": &key.PublicKey})
	require.NoError(t, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(jwks) }))
	defer srv.Close()
	v, err := webhook.NewVerifier(webhook.Config{AppDefinitionID: "appdef_x", JWKSURL: srv.URL})
	require.NoError(t, err)

	bodies := map[string]string{
		"plain":     `{"appDefinition":{"id":"appdef_x"},"channel":"events","message":{"type":"v2.entry.created"}}`,
		"quotes":    `{"appDefinition":{"id":"appdef_x"},"message":{"type":"x","note":"say \"hi\" and 'bye'"}}`,
		"backslash": `{"appDefinition":{"id":"appdef_x"},"message":{"type":"x","path":"C:\\data\\n1"}}`,
		"unicode":   `{"appDefinition":{"id":"appdef_x"},"message":{"type":"x","name":"Ångström – µg/mL 🧪"}}`,
		"newlines":  "{\"appDefinition\":{\"id\":\"appdef_x\"},\n\"message\":{\"type\":\"x\"}}\n",
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			ts, sig, err := webhook.Sign(key, "msg_"+name, time.Now(), []byte(body))
			require.NoError(t, err)
			h := http.Header{}
			h.Set("Webhook-Id", "msg_"+name)
			h.Set("Webhook-Timestamp", ts)
			h.Set("Webhook-Signature", sig)
			h.Set("Authorization", "Bearer must-not-travel")
			env := BuildEnvelope("/event", h, []byte(body), "203.0.113.7", "req-1")
			raw, err := json.Marshal(env)
			require.NoError(t, err)
			require.NotContains(t, string(raw), "must-not-travel")
			decoded, err := webhook.DecodeEnvelope(raw)
			require.NoError(t, err)
			res, err := v.VerifyEnvelope(context.Background(), decoded)
			require.NoError(t, err)
			require.Equal(t, "msg_"+name, res.WebhookID)
			require.Equal(t, "203.0.113.7", res.SourceIP)
			require.Equal(t, len(body), res.BodyBytes)
		})
	}
}

func TestExecutionName(t *testing.T) {
	for _, bad := range []string{"", "a b", "a{b", "a#b", "a$b", "a/b", string(rune(0x85)), string(make([]byte, 81))} {
		require.False(t, ValidExecutionName(bad), "%q", bad)
	}
	require.True(t, ValidExecutionName("msg_2Qm9-x.y"))
}

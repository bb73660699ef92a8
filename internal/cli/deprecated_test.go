package cli

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/emf/emftest"
	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/webhook"
)

// signedRequest is f.request with body as the signed webhook body.
func (f *verifyFixture) signedRequest(t *testing.T, id string, body []byte) []byte {
	t.Helper()
	ts, sig, err := webhook.Sign(f.key, id, time.Now(), body)
	require.NoError(t, err)
	env := webhook.Envelope{
		APIGatewayProxyRequest: events.APIGatewayProxyRequest{
			Resource: "/canvas", Path: "/canvas", HTTPMethod: http.MethodPost,
			Headers: map[string]string{"Webhook-Id": id, "Webhook-Timestamp": ts, "Webhook-Signature": sig},
			RequestContext: events.APIGatewayProxyRequestContext{
				RequestID: "r1", Identity: events.APIGatewayRequestIdentity{SourceIP: "1.2.3.4"},
			},
			Body:            base64.StdEncoding.EncodeToString(body),
			IsBase64Encoded: true,
		},
		Payload: body,
	}
	b, err := json.Marshal(env)
	require.NoError(t, err)
	return b
}

// TestVerifyDeprecatedMetric: a verified webhook marked "deprecated": true
// is logged as a warning (its id and type, no headers or signature) and
// counted in one DeprecatedWebhooks EMF line; a normal one, a rejected one
// and a run with --metrics=false or text logs write no metric line.
func TestVerifyDeprecatedMetric(t *testing.T) {
	f := newVerifyFixture(t)
	body := func(deprecated string) []byte {
		return []byte(`{"version":"0","appDefinition":{"id":"` + verifyApp + `"},"channel":"app_signals",` +
			`"message":{"type":"v2-beta.canvas.created","canvasId":"cnvs_1","featureId":"f","deprecated":` + deprecated + `}}`)
	}
	deprecated := f.file(t, "deprecated.json", f.signedRequest(t, "wh_dep", body("true")))
	normal := f.file(t, "normal.json", f.signedRequest(t, "wh_ok", body("false")))
	env := f.env(map[string]string{"COPILOT_APPLICATION_NAME": "app", "COPILOT_ENVIRONMENT_NAME": "dev", "COPILOT_SERVICE_NAME": "worker"})

	r := runVerifyTest(t, env, "--request", deprecated)
	require.Equal(t, exitcode.OK, r.code, r.stderr)
	lines := emftest.Lines([]byte(r.stderr))
	require.Len(t, lines, 1, r.stderr)
	doc, err := emftest.Check(lines[0])
	require.NoError(t, err)
	require.Equal(t, "verify", doc["Command"])
	require.Equal(t, json.Number("1"), doc["DeprecatedWebhooks"])
	require.Equal(t, "v2-beta.canvas.created", doc["messageType"])
	require.Equal(t, "wh_dep", doc["webhookId"])
	aws := doc["_aws"].(map[string]any)
	directive := aws["CloudWatchMetrics"].([]any)[0].(map[string]any)
	require.Equal(t, "app/dev/worker", directive["Namespace"])
	var warned bool
	for line := range strings.Lines(r.stderr) {
		if strings.Contains(line, `"level":"WARN"`) && strings.Contains(line, "deprecated webhook") {
			warned = true
			require.Contains(t, line, `"webhookId":"wh_dep"`)
			require.Contains(t, line, `"type":"v2-beta.canvas.created"`)
			require.NotContains(t, line, "v1bder", "no signature in the log")
		}
	}
	require.True(t, warned, "a warning for the deprecated webhook: %s", r.stderr)

	for name, args := range map[string][]string{
		"normal":     {"--request", normal},
		"no metrics": {"--request", deprecated, "--metrics=false"},
		"rejected":   {"--request", deprecated, "--app-definition-id", "appdef_other"},
	} {
		t.Run(name, func(t *testing.T) {
			r := runVerifyTest(t, env, args...)
			require.Empty(t, emftest.Lines([]byte(r.stderr)), r.stderr)
			if name == "normal" {
				require.Equal(t, exitcode.OK, r.code, r.stderr)
				require.NotContains(t, r.stderr, "deprecated webhook")
			}
		})
	}
}

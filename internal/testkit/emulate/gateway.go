package emulate

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"benchling-webhook/internal/webhook"
)

// maxInput is Step Functions' limit on an execution's input (the body is
// in it twice: base64 and parsed).
const maxInput = 256 << 10

// gatewayHandler plays the webhook REST API: POST /event, /canvas and
// /lifecycle start the webhook machine with the request envelope the
// deployed mapping template builds (see BuildEnvelope), named after the
// webhook-id header, and answer 202; a repeated webhook-id answers 200
// without starting anything. GET /health answers 200.
func (s *Stack) gatewayHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	for _, path := range []string{"/event", "/canvas", "/lifecycle"} {
		mux.HandleFunc("POST "+path, s.serveWebhook)
	}
	return mux
}

func (s *Stack) serveWebhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20+1))
	if err != nil || len(body) > 10<<20 {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"status": "rejected", "message": "request body over API Gateway's 10 MB limit"})
		return
	}
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	env := BuildEnvelope(r.URL.Path, r.Header, body, ip, randomID(8)+"-"+randomID(4)+"-"+randomID(12))
	input, err := json.Marshal(env)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"status": "error", "message": err.Error()})
		return
	}
	if len(input) > maxInput {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"status": "rejected",
			"message": "webhook too large: its request envelope exceeds Step Functions' 256 KiB execution input limit"})
		return
	}
	name := ExecutionName(r.Header.Get("webhook-id"), env.RequestContext.RequestID)
	arn, err := s.StartExecution(r.Context(), Webhook, name, input)
	switch {
	case errors.Is(err, ErrExecutionExists):
		writeJSON(w, http.StatusOK, map[string]string{"status": "duplicate", "message": "webhook already received", "executionArn": arn})
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, map[string]string{"status": "error", "message": err.Error()})
	default:
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "accepted", "message": "Webhook received", "executionArn": arn})
	}
}

// BuildEnvelope builds the execution input of the webhook machine the way
// the deployed API Gateway mapping template does: an
// events.APIGatewayProxyRequest with the raw body base64-encoded, the three
// webhook-* headers and the content type (nothing else from the client),
// the caller's source IP, the request id and the time of receipt in
// requestContext; and the body again as parsed JSON in payload (the
// template's $input.json('$')), which the machine routes on once job
// verify has checked it is the signed body. A body that is not JSON gets
// no payload (job verify rejects it).
func BuildEnvelope(path string, h http.Header, body []byte, sourceIP, requestID string) webhook.Envelope {
	headers := map[string]string{}
	for _, k := range []string{"webhook-id", "webhook-timestamp", "webhook-signature", "content-type"} {
		if v := h.Get(k); v != "" {
			headers[k] = v
		}
	}
	env := webhook.Envelope{APIGatewayProxyRequest: events.APIGatewayProxyRequest{
		Resource:   path,
		Path:       path,
		HTTPMethod: http.MethodPost,
		Headers:    headers,
		RequestContext: events.APIGatewayProxyRequestContext{
			RequestID:        requestID,
			ResourcePath:     path,
			HTTPMethod:       http.MethodPost,
			Stage:            "local",
			Identity:         events.APIGatewayRequestIdentity{SourceIP: sourceIP},
			RequestTimeEpoch: time.Now().UnixMilli(),
		},
		Body:            base64.StdEncoding.EncodeToString(body),
		IsBase64Encoded: true,
	}}
	if json.Valid(body) {
		env.Payload = json.RawMessage(body)
	}
	return env
}

// ExecutionName is the webhook machine's execution name: the webhook-id,
// so Benchling's retried deliveries (same id, new timestamp and signature)
// start nothing new, or the request id when the header is missing or not a
// valid execution name (verification then rejects the request).
func ExecutionName(webhookID, requestID string) string {
	if validExecutionName(webhookID) {
		return webhookID
	}
	return "req-" + strings.ReplaceAll(requestID, ":", "-")
}

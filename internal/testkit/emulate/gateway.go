package emulate

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"benchling-webhook/internal/webhook"
)

// maxInput is Step Functions' limit on an execution's input (the body is
// in it twice: base64 and parsed).
const maxInput = 256 << 10

// maxBody is API Gateway's limit on a REST API request's body.
const maxBody = 10 << 20

// RequestModel is the webhook API's request model for an app (addons/
// workflows.yml, WebhookModel, with ${AppDefinitionId} substituted; a
// deploycheck test keeps the two equal): JSON Schema draft 4, as API
// Gateway validates it.
func RequestModel(appDefinitionID string) string {
	return `{"$schema":"http://json-schema.org/draft-04/schema#","title":"BenchlingWebhook","type":"object",
"required":["appDefinition"],
"properties":{
"version":{"type":"string","maxLength":16},
"baseURL":{"type":"string","maxLength":256},
"tenantId":{"type":"string","maxLength":64},
"channel":{"type":"string","maxLength":64},
"app":{"type":"object","properties":{"id":{"type":"string","maxLength":64}}},
"appDefinition":{"type":"object","required":["id"],"properties":{"id":{"enum":["` + appDefinitionID + `"]},"versionNumber":{"type":"string","maxLength":64}}},
"message":{"type":"object","properties":{"type":{"type":"string","maxLength":128}}}}}`
}

// The webhook API's answers, as its gateway responses and integration
// responses render them (addons/workflows.yml).
var (
	answerMissingHeaders = map[string]string{"status": "rejected", "message": "webhook-id, webhook-timestamp and webhook-signature headers required"}
	answerBadBody        = map[string]string{"status": "rejected", "message": "not a Benchling webhook for this app"}
	answerTooLarge       = map[string]string{"status": "rejected", "message": "request body over API Gateway's 10 MB limit"}
	answerMediaType      = map[string]string{"status": "rejected", "message": "content type must be application/json"}
	answerInputTooLarge  = map[string]string{"status": "rejected", "message": "webhook too large: its request envelope exceeds the workflow's 256 KiB input limit"}
	answerRefused        = map[string]string{"status": "rejected", "message": "request refused"}
	answerDuplicate      = map[string]string{"status": "duplicate", "message": "webhook already received"}
	answerUnavailable    = map[string]string{"status": "error", "message": "workflow unavailable, retry later"}
	// API Gateway's own answer for a path or method the API does not have.
	answerNoRoute = map[string]string{"message": "Missing Authentication Token"}
)

// webhookPaths are the webhook API's POST resources: the root (Benchling's
// STABLE routing) and the SUFFIXED paths.
var webhookPaths = []string{"/", "/event", "/canvas", "/lifecycle"}

// GatewayOptions configures [NewGateway].
type GatewayOptions struct {
	// AppDefinitionID is the app whose webhooks the request model admits.
	AppDefinitionID string
	// Start starts the webhook machine's execution; [ErrExecutionExists]
	// for a name already used.
	Start func(ctx context.Context, name string, input json.RawMessage) (arn string, err error)
}

// NewGateway returns the local webhook REST API. It answers as the
// deployed API does (addons/workflows.yml; the parity table in
// internal/deploytest/deploycheck runs the same requests against both):
// POST /, /event, /canvas and /lifecycle; 413 for a body over 10 MB; 400
// without the three webhook-* headers (the request validator) or for a
// body the request model refuses; 415 for a content type other than
// application/json; then it starts the webhook machine with the request
// envelope the mapping template builds (see BuildEnvelope), named after
// the webhook-id header, and answers 202; a repeated webhook-id answers
// 200 duplicate without starting anything; a webhook-id that is no valid
// execution name 400, an envelope over 256 KiB 413 (Step Functions'
// refusals). GET /health answers 200; anything else 403, as API Gateway
// does for a resource it does not have.
func NewGateway(opts GatewayOptions) (http.Handler, error) {
	c := jsonschema.NewCompiler()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(RequestModel(opts.AppDefinitionID)))
	if err != nil {
		return nil, fmt.Errorf("emulate: request model: %w", err)
	}
	if err := c.AddResource("model.json", doc); err != nil {
		return nil, fmt.Errorf("emulate: request model: %w", err)
	}
	model, err := c.Compile("model.json")
	if err != nil {
		return nil, fmt.Errorf("emulate: request model: %w", err)
	}
	g := &gateway{model: model, start: opts.Start}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	for _, path := range webhookPaths {
		if path == "/" {
			path = "/{$}"
		}
		mux.HandleFunc("POST "+path, g.serveWebhook)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusForbidden, answerNoRoute)
	})
	return mux, nil
}

type gateway struct {
	model *jsonschema.Schema
	start func(ctx context.Context, name string, input json.RawMessage) (string, error)
}

// gatewayHandler is the stack's gateway: NewGateway starting the stack's
// webhook machine.
func (s *Stack) gatewayHandler() (http.Handler, error) {
	return NewGateway(GatewayOptions{
		AppDefinitionID: s.opts.Sandbox.AppDefinitionID,
		Start: func(ctx context.Context, name string, input json.RawMessage) (string, error) {
			return s.StartExecution(ctx, Webhook, name, input)
		},
	})
}

func (g *gateway) serveWebhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		writeJSON(w, http.StatusRequestEntityTooLarge, answerTooLarge)
		return
	}
	// The request validator: the three headers are required parameters.
	for _, k := range []string{webhook.HeaderID, webhook.HeaderTimestamp, webhook.HeaderSignature} {
		if len(r.Header.Values(k)) == 0 {
			writeJSON(w, http.StatusBadRequest, answerMissingHeaders)
			return
		}
	}
	// The one mapping template is application/json's, with passthrough
	// NEVER; API Gateway takes a request without a content type as JSON.
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeJSON(w, http.StatusUnsupportedMediaType, answerMediaType)
			return
		}
	}
	// The request model.
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil || g.model.Validate(doc) != nil {
		writeJSON(w, http.StatusBadRequest, answerBadBody)
		return
	}
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	env := BuildEnvelope(r.URL.Path, r.Header, body, ip, randomID(8)+"-"+randomID(4)+"-"+randomID(12))
	input, err := json.Marshal(env)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, answerUnavailable)
		return
	}
	// The mapping template names the execution after the header as sent;
	// Step Functions refuses a name it does not allow, and a large input.
	name := lastValue(r.Header, webhook.HeaderID)
	switch {
	case !ValidExecutionName(name):
		writeJSON(w, http.StatusBadRequest, answerRefused)
		return
	case len(input) > maxInput:
		writeJSON(w, http.StatusRequestEntityTooLarge, answerInputTooLarge)
		return
	}
	arn, err := g.start(r.Context(), name, input)
	switch {
	case errors.Is(err, ErrExecutionExists):
		writeJSON(w, http.StatusOK, answerDuplicate)
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, answerUnavailable)
	default:
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "accepted", "message": "Webhook received", "executionArn": arn})
	}
}

// lastValue is a header's value as API Gateway hands it to a mapping
// template: the last of repeated headers.
func lastValue(h http.Header, k string) string {
	v := h.Values(k)
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
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
		if v := lastValue(h, k); v != "" {
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

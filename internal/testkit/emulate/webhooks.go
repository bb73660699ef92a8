package emulate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// Webhook builds a webhook body as Benchling sends it, for this stack's
// tenant and app: {version, baseURL, tenantId, app, appDefinition, channel,
// message}. channel is "events" for message types starting with "v2.entry"
// and "app_signals" otherwise.
func (s *Stack) Webhook(message map[string]any) []byte {
	channel := "app_signals"
	if t, _ := message["type"].(string); len(t) >= 8 && t[:8] == "v2.entry" {
		channel = "events"
	}
	if _, ok := message["deprecated"]; !ok {
		message["deprecated"] = false
	}
	b, err := json.Marshal(map[string]any{
		"version":       "0",
		"baseURL":       s.Benchling.URL(),
		"tenantId":      "ten_local",
		"app":           map[string]string{"id": s.opts.Sandbox.AppID},
		"appDefinition": map[string]string{"id": s.opts.Sandbox.AppDefinitionID, "versionNumber": "1.0.0"},
		"channel":       channel,
		"message":       message,
	})
	if err != nil {
		panic(err) // a map of plain values always marshals
	}
	return b
}

// Response is the gateway's answer to a webhook.
type Response struct {
	StatusCode   int
	Status       string `json:"status"`
	Message      string `json:"message"`
	ExecutionArn string `json:"executionArn"`
}

// Post sends body with headers to the gateway path (/event, /canvas, /lifecycle).
func (s *Stack) Post(ctx context.Context, path string, body []byte, h http.Header) (Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.GatewayURL+path, bytes.NewReader(body))
	if err != nil {
		return Response{}, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Response{}, fmt.Errorf("emulate: post webhook: %w", err)
	}
	defer resp.Body.Close()
	var r Response
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &r); err != nil {
		return Response{}, fmt.Errorf("emulate: gateway answered %d: %s", resp.StatusCode, b)
	}
	r.StatusCode = resp.StatusCode
	return r, nil
}

// Send signs body with the sandbox's app key, posts it to the gateway path
// and returns the gateway's answer.
func (s *Stack) Send(ctx context.Context, path string, body []byte) (Response, error) {
	h, err := s.Benchling.SignWebhook(body)
	if err != nil {
		return Response{}, err
	}
	return s.Post(ctx, path, body, h)
}

package sandbox

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"benchling-webhook/internal/webhook"
)

// addKey generates a P-256 signing key and makes it the current one.
func (s *Server) addKey() error {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("sandbox: generate signing key: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, signingKey{kid: "sandbox-" + strconv.Itoa(len(s.keys)+1), key: k})
	return nil
}

// RotateKey adds a new signing key, as Benchling does when it rotates keys:
// the JWKS lists the old and the new key, and new signatures use the new
// one. It panics if the system's random source fails.
func (s *Server) RotateKey() {
	if err := s.addKey(); err != nil {
		panic(err)
	}
}

// SignWebhook signs body as Benchling signs a webhook delivery, with a new
// webhook-id ("msg_" and random characters), the current time and the
// current key. See [Server.SignWebhookAs] for the headers returned.
func (s *Server) SignWebhook(body []byte) (http.Header, error) {
	return s.SignWebhookAs("msg_"+randomText(), time.Now(), body)
}

// SignWebhookAs signs body with the given webhook-id and timestamp (for
// retried deliveries, which keep their id, and for stale timestamps). It
// returns the webhook-id, webhook-timestamp and webhook-signature headers
// of [webhook.Sign], plus Content-Type: application/json.
func (s *Server) SignWebhookAs(id string, at time.Time, body []byte) (http.Header, error) {
	s.mu.Lock()
	k := s.keys[len(s.keys)-1].key
	s.mu.Unlock()
	ts, sig, err := webhook.Sign(k, id, at, body)
	if err != nil {
		return nil, fmt.Errorf("sandbox: sign webhook: %w", err)
	}
	h := http.Header{}
	h.Set(webhook.HeaderID, id)
	h.Set(webhook.HeaderTimestamp, ts)
	h.Set(webhook.HeaderSignature, sig)
	h.Set("Content-Type", "application/json")
	return h, nil
}

// handleJWKS serves GET /api/v1/apps/{app_definition_id}/jwks without
// authentication, like https://apps.benchling.com.
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("app_definition_id")
	if id != s.opts.AppDefinitionID {
		writeNotFound(w, "App definition", id)
		return
	}
	s.mu.Lock()
	keys := make(map[string]*ecdsa.PublicKey, len(s.keys))
	for _, k := range s.keys {
		keys[k.kid] = &k.key.PublicKey
	}
	s.mu.Unlock()
	b, err := webhook.MarshalJWKS(keys)
	if err != nil {
		writeError(w, http.StatusInternalServerError, apiError{Message: err.Error(), Type: typeServer})
		return
	}
	writeRawJSON(w, http.StatusOK, b)
}

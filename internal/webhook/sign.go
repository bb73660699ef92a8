package webhook

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Header names of Benchling's webhook scheme (the Standard Webhooks names).
// Compare them case-insensitively: HTTP header names are.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SignatureVersion is the version tag Benchling puts before a DER-encoded
// ECDSA signature in the webhook-signature header.
const SignatureVersion = "v1bder"

// SignedContent is what Benchling signs: "{webhook-id}.{webhook-timestamp}.{raw body}".
func SignedContent(id, timestamp string, body []byte) []byte {
	b := make([]byte, 0, len(id)+len(timestamp)+2+len(body))
	b = append(b, id...)
	b = append(b, '.')
	b = append(b, timestamp...)
	b = append(b, '.')
	return append(b, body...)
}

// Sign signs a webhook as Benchling does and returns the three header
// values: the id, the timestamp in Unix seconds and the signature header
// ("v1bder,<base64 DER signature>"). It is the counterpart of [Verifier]
// for tests and for the local Benchling sandbox.
func Sign(key *ecdsa.PrivateKey, id string, at time.Time, body []byte) (timestamp, signature string, err error) {
	timestamp = strconv.FormatInt(at.Unix(), 10)
	digest := sha256.Sum256(SignedContent(id, timestamp, body))
	der, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		return "", "", fmt.Errorf("webhook: sign %s: %w", id, err)
	}
	return timestamp, SignatureVersion + "," + base64.StdEncoding.EncodeToString(der), nil
}

// MarshalJWKS returns a JSON Web Key Set holding the public halves of keys,
// shaped like the set Benchling serves at
// https://apps.benchling.com/api/v1/apps/{appDefinitionId}/jwks.
func MarshalJWKS(keys map[string]*ecdsa.PublicKey) ([]byte, error) {
	set := jose.JSONWebKeySet{}
	for kid, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: "ES256", Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("webhook: marshal JWKS: %w", err)
	}
	return b, nil
}

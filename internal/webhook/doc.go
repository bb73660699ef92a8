// Package webhook verifies Benchling webhooks: ECDSA P-256/SHA-256 DER
// signatures over "{webhook-id}.{webhook-timestamp}.{raw body}", checked
// against the app definition's JSON Web Key Set, within a time window, from
// an allowed source address, with a capped body. [Verifier.VerifyEnvelope]
// also proves that the payload the state machine routes on is that body.
// It also signs webhooks the same way, for tests and the local Benchling
// sandbox.
package webhook

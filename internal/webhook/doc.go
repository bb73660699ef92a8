// Package webhook verifies (and, for tests and the sandbox, signs) Benchling
// webhooks: ECDSA P-256 signatures against the app's JWKS, a time window, the
// source address and the body size. See docs/verify.md.
package webhook

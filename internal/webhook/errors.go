package webhook

import "benchling-webhook/internal/exitcode"

// Rejections: the request is not a genuine, fresh Benchling webhook for the
// configured app, and a retry cannot change that (exit code 3,
// [exitcode.BadInput]). [Verifier.Verify] wraps them with %w and a detail
// that never contains the body or a signature; compare with errors.Is.
var (
	// ErrBadRequest: the execution input is not an API Gateway proxy request,
	// is ambiguous (two keys that differ only in case), or its
	// requestContext.requestTimeEpoch is implausible.
	ErrBadRequest = exitcode.NewSentinel("webhook: malformed request", exitcode.BadInput)
	// ErrNoBody: the request has an empty body.
	ErrNoBody = exitcode.NewSentinel("webhook: no body", exitcode.BadInput)
	// ErrBodyEncoding: isBase64Encoded is true but the body is not valid base64.
	ErrBodyEncoding = exitcode.NewSentinel("webhook: body is not valid base64", exitcode.BadInput)
	// ErrBodyTooLarge: the decoded body is larger than [Config.MaxBody].
	ErrBodyTooLarge = exitcode.NewSentinel("webhook: body too large", exitcode.BadInput)
	// ErrIPNotAllowed: the source IP is not on [Config.AllowedIPs], or is not an IP.
	ErrIPNotAllowed = exitcode.NewSentinel("webhook: source IP not allowed", exitcode.BadInput)
	// ErrMissingHeader: webhook-id, webhook-timestamp or webhook-signature is absent or empty.
	ErrMissingHeader = exitcode.NewSentinel("webhook: missing header", exitcode.BadInput)
	// ErrDuplicateHeader: a webhook header is given several times with different values.
	ErrDuplicateHeader = exitcode.NewSentinel("webhook: conflicting header values", exitcode.BadInput)
	// ErrBadTimestamp: webhook-timestamp is not a number of Unix seconds.
	ErrBadTimestamp = exitcode.NewSentinel("webhook: bad timestamp", exitcode.BadInput)
	// ErrStaleTimestamp: webhook-timestamp is further than [Config.Tolerance]
	// from when API Gateway received the request (or from now, when the
	// request does not say), in the past or in the future; the message says
	// which and by how much.
	ErrStaleTimestamp = exitcode.NewSentinel("webhook: timestamp outside the allowed window", exitcode.BadInput)
	// ErrNoDERSignature: webhook-signature has no pair whose version contains "der".
	ErrNoDERSignature = exitcode.NewSentinel("webhook: no DER signature", exitcode.BadInput)
	// ErrBadSignature: no DER signature verifies against any key of the set,
	// or none of them is valid base64.
	ErrBadSignature = exitcode.NewSentinel("webhook: bad signature", exitcode.BadInput)
	// ErrNotJSON: the body is not a JSON object.
	ErrNotJSON = exitcode.NewSentinel("webhook: body is not a JSON object", exitcode.BadInput)
	// ErrWrongApp: the body's appDefinition.id is missing or is not [Config.AppDefinitionID].
	ErrWrongApp = exitcode.NewSentinel("webhook: wrong app definition", exitcode.BadInput)
	// ErrPayloadMismatch: the execution input's payload, which the state
	// machine routes on, is missing or is not JSON-equal to the signed body
	// ([Verifier.VerifyEnvelope]).
	ErrPayloadMismatch = exitcode.NewSentinel("webhook: payload differs from the signed body", exitcode.BadInput)
)

// Failures that are not the request's fault.
var (
	// ErrJWKSUnavailable: the key set could not be fetched after retries
	// (network error, 5xx, 429). A later retry may succeed: exit code 4,
	// [exitcode.Transient].
	ErrJWKSUnavailable = exitcode.NewSentinel("webhook: JWKS unavailable", exitcode.Transient)
	// ErrJWKSInvalid: the key set URL answered 4xx (other than 429), or its
	// answer is not a key set with at least one EC P-256 public key. This
	// almost always means a wrong app definition id or JWKS URL: exit code 2,
	// [exitcode.Usage].
	ErrJWKSInvalid = exitcode.NewSentinel("webhook: JWKS invalid", exitcode.Usage)
	// ErrConfig: [NewVerifier] was given an invalid [Config]: exit code 2, [exitcode.Usage].
	ErrConfig = exitcode.NewSentinel("webhook: invalid configuration", exitcode.Usage)
)

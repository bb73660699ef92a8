package webhook

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/cenkalti/backoff/v5"
	"github.com/go-jose/go-jose/v4"
)

// DefaultJWKSURL is where Benchling serves an app definition's signing keys;
// "{appDefinitionId}" is replaced by [Config.AppDefinitionID].
const DefaultJWKSURL = "https://apps.benchling.com/api/v1/apps/{appDefinitionId}/jwks"

// Defaults for the zero values of [Config].
const (
	// DefaultTolerance is how far webhook-timestamp may be from now, either
	// way, as in Benchling's SDK.
	DefaultTolerance = 5 * time.Minute
	// DefaultMaxBody caps the decoded body. Step Functions caps an execution
	// input at 256 KiB, so no larger body can reach the task through it;
	// Benchling's envelopes are a few KiB.
	DefaultMaxBody = 256 << 10
	// DefaultJWKSAttempts is how many times the key set GET is tried.
	DefaultJWKSAttempts = 4
)

// MaxRequestAge is how long before now requestContext.requestTimeEpoch may
// lie. The webhook machine times out after 1 hour, so a normal run (with
// its retries of exit 4) sees a receipt less than an hour old; a day leaves
// an operator time to re-run a failed execution with the same input after
// an outage, while a captured input cannot be replayed for ever by someone
// allowed to start executions. An older request is [ErrBadRequest].
const MaxRequestAge = 24 * time.Hour

const (
	maxJWKSBytes       = 1 << 20          // a key set larger than this is refused
	maxDERSignatures   = 16               // more DER signatures than this in one header is refused
	jwksAttemptTimeout = 10 * time.Second // per GET of the key set
	defaultRetryWait   = 250 * time.Millisecond
	maxRetryWait       = 2 * time.Second
)

// appDefinitionIDPattern keeps the configured id safe to put in a URL path.
var appDefinitionIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// Config configures a [Verifier]. The zero value of each optional field
// means its default.
type Config struct {
	// AppDefinitionID is the Benchling app definition whose keys sign the
	// webhooks, e.g. "appdef_…". Required. It comes from configuration, never
	// from the request; a body naming another app is rejected ([ErrWrongApp]).
	AppDefinitionID string
	// JWKSURL is the key set's URL; "{appDefinitionId}" in it is replaced by
	// AppDefinitionID. Default [DefaultJWKSURL]. http is allowed for tests and
	// the local sandbox.
	JWKSURL string
	// Tolerance is how far webhook-timestamp may lie, in the past or in the
	// future, from when API Gateway received the request
	// (requestContext.requestTimeEpoch), or from Now when the request does
	// not say. Default [DefaultTolerance].
	Tolerance time.Duration
	// AllowedIPs lists the source addresses (single addresses as /32 or /128
	// prefixes) that may send webhooks. Empty allows every address.
	AllowedIPs []netip.Prefix
	// MaxBody caps the decoded body in bytes. Default [DefaultMaxBody].
	MaxBody int64
	// HTTPClient fetches the key set. Default: a client with a 10 s timeout.
	HTTPClient *http.Client
	// JWKSAttempts is how many times the key set GET is tried on network
	// errors, 429 and 5xx. Default [DefaultJWKSAttempts].
	JWKSAttempts int
	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// Logger receives a warning for each retried key set GET. Default: discard.
	Logger *slog.Logger
}

// Verifier checks Benchling webhooks. It is safe for concurrent use and
// holds nothing that needs closing. It fetches the key set on every
// [Verifier.Verify] call: each verify task is a fresh process that checks
// one webhook, so a cache would never be hit.
type Verifier struct {
	cfg       Config
	jwksURL   string
	retryWait time.Duration // first backoff delay; tests shorten it
}

// NewVerifier checks cfg as a whole, fills in defaults and returns a
// Verifier. Errors wrap [ErrConfig].
func NewVerifier(cfg Config) (*Verifier, error) {
	var errs []error
	if !appDefinitionIDPattern.MatchString(cfg.AppDefinitionID) {
		errs = append(errs, fmt.Errorf("app definition id %q must be 1 to 128 letters, digits, '_' or '-'", cfg.AppDefinitionID))
	}
	if cfg.JWKSURL == "" {
		cfg.JWKSURL = DefaultJWKSURL
	}
	jwksURL := strings.ReplaceAll(cfg.JWKSURL, "{appDefinitionId}", url.PathEscape(cfg.AppDefinitionID))
	if u, err := url.Parse(jwksURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("JWKS URL %q must be an absolute http(s) URL", cfg.JWKSURL))
	}
	switch {
	case cfg.Tolerance == 0:
		cfg.Tolerance = DefaultTolerance
	case cfg.Tolerance < 0:
		errs = append(errs, fmt.Errorf("tolerance %s must not be negative", cfg.Tolerance))
	}
	switch {
	case cfg.MaxBody == 0:
		cfg.MaxBody = DefaultMaxBody
	case cfg.MaxBody < 0:
		errs = append(errs, fmt.Errorf("max body %d must not be negative", cfg.MaxBody))
	}
	switch {
	case cfg.JWKSAttempts == 0:
		cfg.JWKSAttempts = DefaultJWKSAttempts
	case cfg.JWKSAttempts < 0:
		errs = append(errs, fmt.Errorf("JWKS attempts %d must not be negative", cfg.JWKSAttempts))
	}
	allowed := make([]netip.Prefix, 0, len(cfg.AllowedIPs))
	for _, p := range cfg.AllowedIPs {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("allowed IP prefix %v is not valid", p))
			continue
		}
		allowed = append(allowed, p.Masked())
	}
	cfg.AllowedIPs = allowed
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: jwksAttemptTimeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Verifier{cfg: cfg, jwksURL: jwksURL, retryWait: defaultRetryWait}, nil
}

// ParseAllowList parses a comma-separated list of IP addresses and CIDR
// prefixes ("1.2.3.4, 10.0.0.0/8, 2001:db8::/32"). Blank items are skipped;
// an empty list allows every address.
func ParseAllowList(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if strings.Contains(item, "/") {
			p, err := netip.ParsePrefix(item)
			if err != nil {
				return nil, fmt.Errorf("webhook: allow list item %q is not an IP or CIDR prefix: %w", item, err)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil {
			return nil, fmt.Errorf("webhook: allow list item %q is not an IP or CIDR prefix: %w", item, err)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// DecodeRequest decodes an API Gateway proxy request from one JSON object,
// as [DecodeEnvelope] does (with the same checks), and drops the payload.
func DecodeRequest(data []byte) (events.APIGatewayProxyRequest, error) {
	env, err := DecodeEnvelope(data)
	return env.APIGatewayProxyRequest, err
}

// Result describes a verified webhook. On a rejection [Verifier.Verify]
// returns it too, filled as far as the checks got, so the caller can say
// which delivery it rejected.
type Result struct {
	// WebhookID is the webhook-id header, the same on each retried delivery.
	WebhookID string
	// Timestamp is the webhook-timestamp header.
	Timestamp time.Time
	// ReceivedAt is requestContext.requestTimeEpoch, when API Gateway
	// received the request; zero if the request does not say.
	ReceivedAt time.Time
	// SourceIP is requestContext.identity.sourceIp, as given.
	SourceIP string
	// Channel is the envelope's channel ("events", "app_signals").
	Channel string
	// MessageType is the envelope's message.type, e.g. "v2.entry.created".
	MessageType string
	// AppDefinitionID is the envelope's appDefinition.id.
	AppDefinitionID string
	// Deprecated is message.deprecated: Benchling marks a message type it
	// will stop sending with "deprecated": true (contracts.md, Benchling).
	Deprecated bool
	// BodyBytes is the length of the decoded body.
	BodyBytes int
	// KeyID is the kid of the key whose signature verified.
	KeyID string
}

// envelope is the part of Benchling's webhook envelope the verifier reads.
type envelope struct {
	Channel       string `json:"channel"`
	AppDefinition *struct {
		ID string `json:"id"`
	} `json:"appDefinition"`
	Message struct {
		Type string `json:"type"`
		// Deprecated is kept raw: only the literal true counts, and a
		// value of another type is not a reason to reject the webhook.
		Deprecated json.RawMessage `json:"deprecated"`
	} `json:"message"`
}

// Verify checks req, cheapest checks first, and fetches the key set only
// when all the others have passed:
//
//  1. the body is present, decodes (base64 if isBase64Encoded) and is at
//     most MaxBody bytes;
//  2. the source IP is allowed;
//  3. webhook-id, webhook-timestamp and webhook-signature are present
//     (names compared case-insensitively, in headers and multiValueHeaders);
//  4. the timestamp is within Tolerance of requestContext.requestTimeEpoch
//     (when API Gateway received the request), or of now if that is 0. A
//     receipt time more than Tolerance in the future or more than
//     [MaxRequestAge] in the past is [ErrBadRequest]. Measuring at receipt
//     keeps a genuine webhook valid when the state machine re-runs the task
//     after an exit 4, and lets an operator re-run a failed execution with
//     the same input; it gives no replay to anyone else, because only
//     StartExecution callers (API Gateway, operators) build the input;
//  5. webhook-signature holds at least one "der" signature;
//  6. the body is a JSON object whose appDefinition.id is the configured one;
//  7. one of the DER signatures over "{id}.{timestamp}.{body}" verifies with
//     one of the key set's EC P-256 keys.
//
// A rejection wraps one of the BadInput sentinels ([ErrBadRequest] …
// [ErrWrongApp]); a key set that cannot be fetched wraps
// [ErrJWKSUnavailable], one that is unusable [ErrJWKSInvalid]. Errors never
// contain the body or a signature.
func (v *Verifier) Verify(ctx context.Context, req events.APIGatewayProxyRequest) (*Result, error) {
	return v.verify(ctx, req, nil)
}

// verify is [Verifier.Verify]; checkBody, if not nil, is one more cheap
// check of the decoded body, run before the key set is fetched.
func (v *Verifier) verify(ctx context.Context, req events.APIGatewayProxyRequest, checkBody func(body []byte) error) (*Result, error) {
	res := &Result{SourceIP: req.RequestContext.Identity.SourceIP}
	body, err := v.body(req)
	if err != nil {
		return res, err
	}
	res.BodyBytes = len(body)
	if err := v.checkIP(res.SourceIP); err != nil {
		return res, err
	}
	var vals [3]string
	var missing []string
	for i, name := range []string{HeaderID, HeaderTimestamp, HeaderSignature} {
		if vals[i], err = header(req, name); err != nil {
			return res, err
		}
		if vals[i] == "" {
			missing = append(missing, name)
		}
	}
	id, ts, sig := vals[0], vals[1], vals[2]
	res.WebhookID = id
	if len(missing) > 0 {
		return res, fmt.Errorf("%w: %s", ErrMissingHeader, strings.Join(missing, ", "))
	}
	ref, received, err := v.receipt(req.RequestContext.RequestTimeEpoch)
	if err != nil {
		return res, err
	}
	if received {
		res.ReceivedAt = ref
	}
	if res.Timestamp, err = v.checkTimestamp(ts, ref, received); err != nil {
		return res, err
	}
	sigs, err := derSignatures(sig)
	if err != nil {
		return res, err
	}
	env, err := parseEnvelope(body)
	if err != nil {
		return res, err
	}
	res.Channel, res.MessageType = env.Channel, env.Message.Type
	res.Deprecated = string(bytes.TrimSpace(env.Message.Deprecated)) == "true"
	if env.AppDefinition == nil || env.AppDefinition.ID == "" {
		return res, fmt.Errorf("%w: the body has no appDefinition.id (want %s)", ErrWrongApp, v.cfg.AppDefinitionID)
	}
	res.AppDefinitionID = env.AppDefinition.ID
	if env.AppDefinition.ID != v.cfg.AppDefinitionID {
		return res, fmt.Errorf("%w: the body is for app definition %.64q, not %s", ErrWrongApp, env.AppDefinition.ID, v.cfg.AppDefinitionID)
	}
	if checkBody != nil {
		if err := checkBody(body); err != nil {
			return res, err
		}
	}
	keys, err := v.fetchKeys(ctx)
	if err != nil {
		return res, err
	}
	res.KeyID, err = verifySignatures(keys, SignedContent(id, ts, body), sigs)
	return res, err
}

// body returns the raw body as Benchling sent it.
func (v *Verifier) body(req events.APIGatewayProxyRequest) ([]byte, error) {
	if req.Body == "" {
		return nil, ErrNoBody
	}
	if !req.IsBase64Encoded {
		if int64(len(req.Body)) > v.cfg.MaxBody {
			return nil, fmt.Errorf("%w: %d bytes, more than the %d allowed", ErrBodyTooLarge, len(req.Body), v.cfg.MaxBody)
		}
		return []byte(req.Body), nil
	}
	b, err := base64.StdEncoding.DecodeString(req.Body)
	if err != nil {
		var ce base64.CorruptInputError
		if errors.As(err, &ce) {
			return nil, fmt.Errorf("%w: bad input at byte %d", ErrBodyEncoding, int64(ce))
		}
		return nil, ErrBodyEncoding
	}
	if len(b) == 0 {
		return nil, ErrNoBody
	}
	if int64(len(b)) > v.cfg.MaxBody {
		return nil, fmt.Errorf("%w: %d bytes, more than the %d allowed", ErrBodyTooLarge, len(b), v.cfg.MaxBody)
	}
	return b, nil
}

func (v *Verifier) checkIP(ip string) error {
	if len(v.cfg.AllowedIPs) == 0 {
		return nil
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return fmt.Errorf("%w: source IP %.64q is not an IP address", ErrIPNotAllowed, ip)
	}
	a = a.Unmap().WithZone("")
	for _, p := range v.cfg.AllowedIPs {
		if p.Contains(a) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s is not on the allow list", ErrIPNotAllowed, a)
}

// header returns the value of the header name, looked up
// case-insensitively in both header maps, or "" if it is absent or empty.
// Several different values for one name are refused rather than guessed
// between.
func header(req events.APIGatewayProxyRequest, name string) (string, error) {
	var vals []string
	for k, v := range req.Headers {
		if asciiEqualFold(k, name) {
			vals = append(vals, v)
		}
	}
	for k, vs := range req.MultiValueHeaders {
		if asciiEqualFold(k, name) {
			vals = append(vals, vs...)
		}
	}
	var out string
	for _, v := range vals {
		v = strings.TrimSpace(v)
		switch {
		case v == "":
		case out == "":
			out = v
		case out != v:
			return "", fmt.Errorf("%w: %s", ErrDuplicateHeader, name)
		}
	}
	return out, nil
}

// asciiEqualFold is strings.EqualFold for ASCII only, as HTTP header names
// compare; it does not match "K" (the Kelvin sign) with "k".
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// receipt returns the time the timestamp window is measured from: when API
// Gateway received the request (requestTimeEpoch, in milliseconds), with
// received true, or now when requestTimeEpoch is 0. A receipt time after
// now (beyond Tolerance, for clock skew), more than [MaxRequestAge] before
// now, or negative is [ErrBadRequest]: API Gateway cannot have sent it.
func (v *Verifier) receipt(epochMillis int64) (ref time.Time, received bool, err error) {
	now := v.cfg.Now()
	switch {
	case epochMillis == 0:
		return now, false, nil
	case epochMillis < 0:
		return time.Time{}, false, fmt.Errorf("%w: requestContext.requestTimeEpoch %d is negative", ErrBadRequest, epochMillis)
	}
	at := time.UnixMilli(epochMillis)
	if ahead := at.Sub(now); ahead > v.cfg.Tolerance {
		return time.Time{}, false, fmt.Errorf("%w: requestContext.requestTimeEpoch is %s in the future, more than the %s allowed", ErrBadRequest, ahead.Round(time.Millisecond), v.cfg.Tolerance)
	}
	if age := now.Sub(at); age > MaxRequestAge {
		return time.Time{}, false, fmt.Errorf("%w: requestContext.requestTimeEpoch is %s in the past, more than the %s allowed", ErrBadRequest, age.Round(time.Second), MaxRequestAge)
	}
	return at, true, nil
}

// checkTimestamp parses webhook-timestamp and checks it against ref, the
// receipt time if received, else now.
func (v *Verifier) checkTimestamp(ts string, ref time.Time, received bool) (time.Time, error) {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s %.32q is not Unix seconds", ErrBadTimestamp, HeaderTimestamp, ts)
	}
	// Far-off values would overflow time.Time arithmetic; they are outside
	// any window anyway.
	const century = 100 * 365 * 24 * 60 * 60
	switch n := ref.Unix(); {
	case sec > n+century:
		return time.Time{}, fmt.Errorf("%w: %s is more than a century in the future", ErrStaleTimestamp, HeaderTimestamp)
	case sec < n-century:
		return time.Time{}, fmt.Errorf("%w: %s is more than a century in the past", ErrStaleTimestamp, HeaderTimestamp)
	}
	from := "now"
	if received {
		from = "when API Gateway received the request"
	}
	t := time.Unix(sec, 0)
	if age := ref.Sub(t); age > v.cfg.Tolerance {
		return t, fmt.Errorf("%w: %s is %s in the past (measured from %s), more than the %s allowed", ErrStaleTimestamp, HeaderTimestamp, age.Round(time.Millisecond), from, v.cfg.Tolerance)
	}
	if ahead := t.Sub(ref); ahead > v.cfg.Tolerance {
		return t, fmt.Errorf("%w: %s is %s in the future (measured from %s), more than the %s allowed", ErrStaleTimestamp, HeaderTimestamp, ahead.Round(time.Millisecond), from, v.cfg.Tolerance)
	}
	return t, nil
}

// derSignatures returns the decoded signatures of every "version,base64"
// pair whose version contains "der"; other versions are ignored.
func derSignatures(h string) ([][]byte, error) {
	var sigs [][]byte
	der := 0
	for _, pair := range strings.Fields(h) {
		version, sig, ok := strings.Cut(pair, ",")
		if !ok || !strings.Contains(version, "der") {
			continue
		}
		der++
		if der > maxDERSignatures {
			return nil, fmt.Errorf("%w: more than %d DER signatures in %s", ErrBadSignature, maxDERSignatures, HeaderSignature)
		}
		if b, err := base64.StdEncoding.DecodeString(sig); err == nil && len(b) > 0 {
			sigs = append(sigs, b)
		}
	}
	if der == 0 {
		return nil, fmt.Errorf("%w: no version containing \"der\" in %s", ErrNoDERSignature, HeaderSignature)
	}
	if len(sigs) == 0 {
		return nil, fmt.Errorf("%w: none of the %d DER signatures is valid base64", ErrBadSignature, der)
	}
	return sigs, nil
}

func parseEnvelope(body []byte) (envelope, error) {
	var env envelope
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return env, ErrNotJSON
	}
	if err := json.Unmarshal(body, &env); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return env, fmt.Errorf("%w: syntax error at byte %d", ErrNotJSON, se.Offset)
		case errors.As(err, &te):
			return env, fmt.Errorf("%w: field %s is a JSON %s, not a %s", ErrNotJSON, te.Field, te.Value, te.Type)
		}
		return env, fmt.Errorf("%w: cannot be decoded", ErrNotJSON)
	}
	return env, nil
}

// key is one usable verification key from the key set.
type key struct {
	id  string
	pub *ecdsa.PublicKey
}

// fetchKeys GETs the key set, retrying network errors, 429 and 5xx with
// backoff, and returns its EC P-256 public keys.
func (v *Verifier) fetchKeys(ctx context.Context) ([]key, error) {
	op := func() ([]byte, error) {
		actx, cancel := context.WithTimeout(ctx, jwksAttemptTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(actx, http.MethodGet, v.jwksURL, nil)
		if err != nil {
			return nil, backoff.Permanent(fmt.Errorf("%w: build request: %w", ErrJWKSInvalid, err))
		}
		req.Header.Set("Accept", "application/json")
		resp, err := v.cfg.HTTPClient.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, backoff.Permanent(err)
			}
			return nil, err
		}
		defer resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK:
			b, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
			if err != nil {
				return nil, fmt.Errorf("GET %s: read body: %w", v.jwksURL, err)
			}
			if len(b) > maxJWKSBytes {
				return nil, backoff.Permanent(fmt.Errorf("%w: GET %s: larger than %d bytes", ErrJWKSInvalid, v.jwksURL, maxJWKSBytes))
			}
			return b, nil
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
			return nil, fmt.Errorf("GET %s: %s", v.jwksURL, resp.Status)
		default:
			return nil, backoff.Permanent(fmt.Errorf("%w: GET %s: %s (is the app definition id right?)", ErrJWKSInvalid, v.jwksURL, resp.Status))
		}
	}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = v.retryWait
	bo.MaxInterval = maxRetryWait
	bo.RandomizationFactor = 0.5
	var tries int
	b, err := backoff.Retry(ctx, op,
		backoff.WithBackOff(bo),
		backoff.WithMaxTries(uint(v.cfg.JWKSAttempts)),
		backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, d time.Duration) {
			tries++
			v.cfg.Logger.Warn("JWKS request failed; retrying", "attempt", tries, "delay", d.String(), "error", err.Error())
		}))
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return nil, fmt.Errorf("webhook: fetch JWKS: %w", context.Cause(ctx))
	case errors.Is(err, ErrJWKSInvalid):
		return nil, err
	default:
		return nil, fmt.Errorf("%w (%d attempts): %w", ErrJWKSUnavailable, tries+1, err)
	}
	return parseJWKS(b)
}

// parseJWKS returns the EC P-256 public keys of a JSON Web Key Set. Each key
// is parsed on its own with go-jose, rather than the set as a whole
// (jose.JSONWebKeySet), so that one key of an unknown or malformed kind
// does not hide the others. RSA, other curves, private and "enc" keys are
// ignored; no usable key at all is [ErrJWKSInvalid].
func parseJWKS(b []byte) ([]key, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("%w: not a JSON Web Key Set: %w", ErrJWKSInvalid, err)
	}
	var keys []key
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil || !k.IsPublic() || k.Use == "enc" {
			continue
		}
		pub, ok := k.Key.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			continue
		}
		keys = append(keys, key{id: k.KeyID, pub: pub})
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: none of its %d keys is an EC P-256 public signing key", ErrJWKSInvalid, len(set.Keys))
	}
	return keys, nil
}

// verifySignatures returns the id of the first key that verifies one of
// sigs over content.
func verifySignatures(keys []key, content []byte, sigs [][]byte) (string, error) {
	digest := sha256.Sum256(content)
	for _, sig := range sigs {
		for _, k := range keys {
			if ecdsa.VerifyASN1(k.pub, digest[:], sig) {
				return k.id, nil
			}
		}
	}
	return "", fmt.Errorf("%w: none of %d DER signatures verifies with any of the %d keys", ErrBadSignature, len(sigs), len(keys))
}

package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode"

	"github.com/aws/aws-lambda-go/events"
)

// Envelope is the webhook machine's execution input: the API Gateway request
// (events.APIGatewayProxyRequest's fields, at the top level) and Payload, the
// body as parsed JSON, which the state machine routes on.
//
// The mapping template writes the body twice: base64 in body, the exact
// bytes the signature covers, and parsed in payload ($input.json('$')),
// because the state machine cannot decode body itself (States.Base64Decode
// takes at most 10,000 characters). [Verifier.VerifyEnvelope] proves that
// the two agree.
type Envelope struct {
	events.APIGatewayProxyRequest
	Payload json.RawMessage `json:"payload,omitempty"`
}

// DecodeEnvelope decodes the webhook machine's execution input from one
// JSON object. It rejects with [ErrBadRequest] anything else, trailing
// data, and an ambiguous input: two keys that differ only in case (or are
// equal) at the top level or inside headers, multiValueHeaders,
// requestContext or requestContext.identity. encoding/json matches keys
// to fields case-insensitively and keeps the last of two duplicates, while
// the state machine's paths ($.payload, $.body) are exact, so such an input
// could mean one thing to the verifier and another to the state machine.
// Unknown fields are ignored.
func DecodeEnvelope(data []byte) (Envelope, error) {
	var env Envelope
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return env, fmt.Errorf("%w: not a JSON object", ErrBadRequest)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&env); err != nil {
		return Envelope{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Envelope{}, fmt.Errorf("%w: trailing data after the JSON object", ErrBadRequest)
	}
	if err := checkKeys(data, "", envelopeKeys); err != nil {
		return Envelope{}, err
	}
	return env, nil
}

// keySpec names, by folded key, the members of a JSON object whose own
// keys are checked too, and what to check inside them.
type keySpec map[string]keySpec

// envelopeKeys are the objects of an execution input whose keys must be
// unambiguous: the input itself and the parts of it the verifier reads.
// The body and payload are checked by [samePayload].
var envelopeKeys = keySpec{
	"HEADERS":           nil,
	"MULTIVALUEHEADERS": nil,
	"REQUESTCONTEXT":    {"IDENTITY": nil},
}

// checkKeys rejects an object (data) with two keys that encoding/json
// cannot tell apart, and recurses into the members spec names. A value
// that is not an object is left alone: decoding has judged its type.
func checkKeys(data []byte, path string, spec keySpec) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	where := path
	if where == "" {
		where = "the top-level object"
	}
	seen := make(map[string]string)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		name, _ := tok.(string)
		folded := foldKey(name)
		if prev, ok := seen[folded]; ok {
			if prev == name {
				return fmt.Errorf("%w: %s has the key %.64q twice", ErrBadRequest, where, name)
			}
			return fmt.Errorf("%w: %s has the keys %.64q and %.64q, which differ only in case", ErrBadRequest, where, prev, name)
		}
		seen[folded] = name
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		if sub, ok := spec[folded]; ok {
			p := name
			if path != "" {
				p = path + "." + name
			}
			if err := checkKeys(v, p, sub); err != nil {
				return err
			}
		}
	}
	return nil
}

// foldKey folds a key as encoding/json does when it matches keys to struct
// fields (its foldName: bytes.EqualFold, Unicode simple folding, so the
// Kelvin sign matches "k" and "ſ" matches "s"). Two keys with the same
// foldKey are one field to Go and two to Step Functions.
func foldKey(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

// foldRune returns the smallest rune of r's fold orbit, as encoding/json's does.
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

// VerifyEnvelope verifies env's request as [Verifier.Verify] does and also
// proves that env.Payload, which the state machine routes on, is the body
// it verified: present and JSON-equal to it. Key order, white space, string
// escapes and the spelling of numbers (1.50, 1.5e0) do not matter; every
// key and value does, and a duplicate key in either is a mismatch. A
// missing or different payload is [ErrPayloadMismatch]. The payload is
// checked before the key set is fetched, like the other cheap checks.
func (v *Verifier) VerifyEnvelope(ctx context.Context, env Envelope) (*Result, error) {
	return v.verify(ctx, env.APIGatewayProxyRequest, func(body []byte) error {
		return samePayload(body, env.Payload)
	})
}

// samePayload checks that payload is JSON-equal to body.
func samePayload(body, payload []byte) error {
	if p := bytes.TrimSpace(payload); len(p) == 0 || string(p) == "null" {
		return fmt.Errorf("%w: the execution input's payload is missing", ErrPayloadMismatch)
	}
	want, err := decodeJSON(body)
	if err != nil {
		return fmt.Errorf("%w: the body: %w", ErrPayloadMismatch, err)
	}
	got, err := decodeJSON(payload)
	if err != nil {
		return fmt.Errorf("%w: the payload: %w", ErrPayloadMismatch, err)
	}
	if !reflect.DeepEqual(want, got) {
		return ErrPayloadMismatch
	}
	return nil
}

// maxJSONDepth is encoding/json's nesting limit.
const maxJSONDepth = 10000

// number is a JSON number in the canonical form of [canonicalNumber]; its
// own type keeps it from comparing equal to a string.
type number string

// decodeJSON decodes one JSON value into maps, slices, strings, bools, nil
// and numbers. Unlike json.Unmarshal into any, it refuses an object with a
// duplicate key (which keeps the last) and keeps numbers exact.
// Its errors never contain the data.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := walkJSON(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

func walkJSON(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, invalidJSON(err)
	}
	switch t := tok.(type) {
	case json.Number:
		return canonicalNumber(string(t)), nil
	case json.Delim:
		if depth >= maxJSONDepth {
			return nil, fmt.Errorf("nested more than %d deep", maxJSONDepth)
		}
		switch t {
		case '{':
			m := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, invalidJSON(err)
				}
				k, _ := kt.(string)
				if _, dup := m[k]; dup {
					return nil, errors.New("an object has the same key twice")
				}
				if m[k], err = walkJSON(dec, depth+1); err != nil {
					return nil, err
				}
			}
			if _, err := dec.Token(); err != nil {
				return nil, invalidJSON(err)
			}
			return m, nil
		case '[':
			s := []any{}
			for dec.More() {
				v, err := walkJSON(dec, depth+1)
				if err != nil {
					return nil, err
				}
				s = append(s, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, invalidJSON(err)
			}
			return s, nil
		}
		return nil, fmt.Errorf("not JSON: unexpected %v", t)
	}
	return tok, nil // string, bool or nil
}

// invalidJSON keeps a decoder error's offset but not its text, which can
// quote the data.
func invalidJSON(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("not JSON: syntax error at byte %d", se.Offset)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("not JSON: unexpected end")
	}
	return errors.New("not JSON")
}

// canonicalNumber rewrites a JSON number (as the decoder validated it) as
// digits without leading or trailing zeros and a decimal exponent, so that
// 150, 150.0, 1.5e2 and 1.50E+2 are all "15e1", and -0 is "0". It is exact:
// no rounding through float64, and no big arithmetic, so a huge exponent
// costs nothing. An exponent beyond ±2^40 is kept as written.
func canonicalNumber(s string) number {
	lit := s
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	mant, expText, hasExp := strings.Cut(strings.ToLower(s), "e")
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := strings.TrimLeft(intPart+frac, "0")
	if digits == "" {
		return "0"
	}
	var exp int64
	if hasExp {
		e, err := strconv.ParseInt(expText, 10, 64)
		if err != nil || e > 1<<40 || e < -(1<<40) {
			return number(lit)
		}
		exp = e
	}
	trimmed := strings.TrimRight(digits, "0")
	exp += int64(len(digits)-len(trimmed)) - int64(len(frac))
	out := trimmed + "e" + strconv.FormatInt(exp, 10)
	if neg {
		out = "-" + out
	}
	return number(out)
}

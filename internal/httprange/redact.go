package httprange

import (
	"errors"
	"fmt"
	"net/url"
)

// stripURL removes the URL (with its presigned credentials) from a
// transport error.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// redact drops the query string (a presigned signature) from a URL for logs.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return raw
	}
	u.RawQuery, u.User, u.Fragment = "", nil, ""
	return u.String()
}

// Redact returns raw without its query string and user info, for logs:
// a presigned URL's query holds its credentials.
func Redact(raw string) string { return redact(raw) }

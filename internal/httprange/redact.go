package httprange

import (
	"context"
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

// errNoMoreRefreshes ends a download whose link was refused more often
// than Options.MaxRefreshes allows.
var errNoMoreRefreshes = errors.New("httprange: no more new links")

// currentURL is the URL requests go to now.
func (s *Source) currentURL() string {
	s.urlMu.Lock()
	defer s.urlMu.Unlock()
	return s.url
}

// refresh replaces the refused URL old with a new one from Options.Refresh,
// once: when another request has replaced it meanwhile, that URL is used.
// The URL is never logged nor put in an error.
func (s *Source) refresh(ctx context.Context, old string) (string, error) {
	s.urlMu.Lock()
	defer s.urlMu.Unlock()
	if s.url != old {
		return s.url, nil
	}
	if s.refreshes >= s.opts.MaxRefreshes {
		return "", errNoMoreRefreshes
	}
	s.refreshes++
	s.opts.Logger.Warn("download link refused; asking for a new one", "refresh", s.refreshes, "max", s.opts.MaxRefreshes)
	u, err := s.opts.Refresh(ctx)
	if err != nil {
		return "", err
	}
	s.url = u
	return u, nil
}

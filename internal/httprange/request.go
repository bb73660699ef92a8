package httprange

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"

	"benchling-webhook/internal/exitcode"
)

// get sends one GET with a Range header, retrying 5xx, 429 and network
// errors with backoff. The caller closes the body of a 200 or 206 answer.
func (s *Source) get(ctx context.Context, rangeHeader string) (*http.Response, error) {
	op := func() (*http.Response, error) {
		u := s.currentURL()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, backoff.Permanent(exitcode.Wrap(fmt.Errorf("httprange: build request: %w", err), exitcode.Usage))
		}
		req.Header.Set("Range", rangeHeader)
		s.requests.Add(1)
		resp, err := s.opts.Client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, backoff.Permanent(ctx.Err())
			}
			return nil, fmt.Errorf("httprange: GET: %w", stripURL(err))
		}
		switch {
		case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusPartialContent:
			return resp, nil
		case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
			drain(resp)
			return nil, backoff.Permanent(errUnsatisfiable)
		case resp.StatusCode == http.StatusForbidden && s.opts.Refresh != nil:
			detail := errorDetail(resp)
			refused := fmt.Errorf("%w: %s%s", ErrLinkExpired, resp.Status, detail)
			if _, err := s.refresh(ctx, u); err != nil {
				if errors.Is(err, errNoMoreRefreshes) {
					return nil, backoff.Permanent(fmt.Errorf("%w (after %d new links)", refused, s.opts.MaxRefreshes))
				}
				return nil, backoff.Permanent(fmt.Errorf("httprange: ask for a new download link after %s%s: %w", resp.Status, detail, err))
			}
			return nil, backoff.RetryAfter(0) // at once, to the new link
		case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
			detail := errorDetail(resp)
			return nil, backoff.Permanent(fmt.Errorf("%w: %s%s", ErrLinkExpired, resp.Status, detail))
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
			detail := errorDetail(resp)
			err := fmt.Errorf("httprange: GET: %s%s", resp.Status, detail)
			if d := retryAfter(resp); d > 0 {
				return nil, backoff.RetryAfter(int(d / time.Second))
			}
			return nil, err
		default:
			detail := errorDetail(resp)
			return nil, backoff.Permanent(fmt.Errorf("%w: %s%s", ErrRefused, resp.Status, detail))
		}
	}
	var tries uint
	resp, err := backoff.Retry(ctx, op,
		backoff.WithBackOff(s.newBackoff()),
		backoff.WithMaxTries(s.opts.MaxTries),
		backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, d time.Duration) {
			tries++
			s.retries.Add(1)
			s.opts.Logger.Warn("download request failed; retrying", "attempt", tries, "delay", d.String(), "error", err.Error())
		}))
	if err == nil {
		return resp, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var c exitcode.Coder
	if errors.As(err, &c) || errors.Is(err, errUnsatisfiable) {
		return nil, err
	}
	return nil, fmt.Errorf("%w (%d attempts): %w", ErrUnavailable, s.opts.MaxTries, err)
}

func (s *Source) newBackoff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = s.opts.InitialBackoff
	b.MaxInterval = s.opts.MaxBackoff
	b.RandomizationFactor = 0.5
	b.Reset()
	return b
}

func retryAfter(resp *http.Response) time.Duration {
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs > 0 && secs <= 60 {
		return time.Duration(secs) * time.Second
	}
	return 0
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
}

// parseContentRange parses "bytes START-END/TOTAL".
func parseContentRange(v string) (start, end, total int64, err error) {
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, 0, 0, fmt.Errorf("bad Content-Range %q", v)
	}
	rng, tot, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, 0, fmt.Errorf("bad Content-Range %q", v)
	}
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, 0, fmt.Errorf("bad Content-Range %q", v)
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	total, err3 := strconv.ParseInt(tot, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || start < 0 || end < start || end >= total {
		return 0, 0, 0, fmt.Errorf("bad Content-Range %q", v)
	}
	return start, end, total, nil
}

// Package benchling is a small client of Benchling's REST API v2 (OAuth client
// credentials, entries) for job reconcile and job package; its retry rules are
// on [Client]. See docs/operations.md and https://benchling.com/api/reference.
package benchling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"benchling-webhook/internal/exitcode"
)

// Defaults for the zero values of [Config].
const (
	// DefaultMaxAttempts is how many times a request is tried when it
	// fails with a network error or a 5xx answer.
	DefaultMaxAttempts = 4
	// DefaultRateLimitRetries is how many 429 answers one request may get
	// (each followed by a wait) before it fails.
	DefaultRateLimitRetries = 10
	// DefaultMaxRateWait caps the wait after a 429, whatever
	// x-rate-limit-reset says.
	DefaultMaxRateWait = 60 * time.Second
	// DefaultAttemptTimeout bounds one HTTP request, body included.
	DefaultAttemptTimeout = 60 * time.Second
	// DefaultRetryWait is the first backoff delay.
	DefaultRetryWait = 500 * time.Millisecond
	// DefaultPageSize is the entries list's page size: Benchling's maximum,
	// so a window takes as few requests as possible.
	DefaultPageSize = 100
	// MaxPageSize is Benchling's limit on pageSize.
	MaxPageSize = 100
)

const (
	tokenPath       = "/api/v2/token"
	entriesPath     = "/api/v2/entries"
	maxResponseSize = 64 << 20 // a page of 100 entries is far smaller
	maxErrorSize    = 64 << 10
	maxRetryWait    = 10 * time.Second
	// tokenMargin is how long before its expiry a token is replaced, at
	// most; short-lived tokens are replaced after 90% of their lifetime.
	tokenMargin = time.Minute
)

var (
	// ErrConfig is wrapped by the errors of [New] (exit code 2).
	ErrConfig = exitcode.NewSentinel("benchling: invalid configuration", exitcode.Usage)
	// ErrUnavailable is wrapped by the error of a request that still fails
	// after its retries: network errors, 5xx or 429 answers (exit code 4).
	ErrUnavailable = exitcode.NewSentinel("benchling: unavailable", exitcode.Transient)
	// ErrNotFound matches (with errors.Is) an [*APIError] for a 404 answer.
	ErrNotFound = errors.New("benchling: not found")
)

// Config configures a [Client]. BaseURL, ClientID and ClientSecret are
// required; the zero value of every other field means its default.
type Config struct {
	// BaseURL is the tenant's URL, https://{tenant}.benchling.com. Plain
	// http is accepted for loopback hosts only (the local sandbox).
	BaseURL string
	// ClientID and ClientSecret are the app's OAuth client credentials.
	ClientID, ClientSecret string
	// HTTPClient sends the requests; nil means a client with Go's default
	// transport. Its Timeout should be zero: AttemptTimeout bounds each try.
	HTTPClient *http.Client
	// Logger gets a warning for each retry (path, status, delay); nil
	// discards them.
	Logger *slog.Logger
	// MaxAttempts bounds the tries of a request failing with network
	// errors or 5xx answers. Default [DefaultMaxAttempts].
	MaxAttempts int
	// RateLimitRetries bounds the 429 answers one request may get.
	// Default [DefaultRateLimitRetries].
	RateLimitRetries int
	// MaxRateWait caps the wait after a 429. Default [DefaultMaxRateWait].
	MaxRateWait time.Duration
	// AttemptTimeout bounds one HTTP request. Default [DefaultAttemptTimeout].
	AttemptTimeout time.Duration
	// RetryWait is the first backoff delay after a 5xx or network error;
	// later ones grow, up to 10 s. Default [DefaultRetryWait].
	RetryWait time.Duration
}

// Client calls one Benchling tenant. It caches its access token until
// shortly before it expires. It is safe for concurrent use and holds
// nothing that needs closing.
//
// Every request is retried the same way, in one place ([Client.getJSON]):
//
//   - 429: wait what x-rate-limit-reset says (whole seconds until the
//     tenant's rate-limit window resets), capped at [Config.MaxRateWait],
//     then try again, up to [Config.RateLimitRetries] times;
//   - 5xx and network errors: exponential backoff with jitter, up to
//     [Config.MaxAttempts] attempts in all;
//   - 401: fetch a new token once and try again (the token may have been
//     revoked or expired early);
//   - any other 4xx: an [*APIError] with Benchling's message, no retry.
//
// Neither the client secret nor a token is ever logged or put in an error.
type Client struct {
	cfg   Config
	base  string // scheme://host[/path], no trailing slash
	now   func() time.Time
	sleep func(context.Context, time.Duration) error // between export polls ([Client.WaitExport])

	mu     sync.Mutex // guards the token; held while a new one is fetched
	token  string
	expiry time.Time
}

// New checks cfg as a whole and returns a client. Errors wrap [ErrConfig].
func New(cfg Config) (*Client, error) {
	var errs []error
	base, err := checkBaseURL(cfg.BaseURL)
	if err != nil {
		errs = append(errs, err)
	}
	if cfg.ClientID == "" {
		errs = append(errs, errors.New("no client id"))
	}
	if cfg.ClientSecret == "" {
		errs = append(errs, errors.New("no client secret"))
	}
	if cfg.MaxAttempts < 0 || cfg.RateLimitRetries < 0 || cfg.MaxRateWait < 0 || cfg.AttemptTimeout < 0 || cfg.RetryWait < 0 {
		errs = append(errs, errors.New("attempts, retries and durations must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.RateLimitRetries == 0 {
		cfg.RateLimitRetries = DefaultRateLimitRetries
	}
	if cfg.MaxRateWait == 0 {
		cfg.MaxRateWait = DefaultMaxRateWait
	}
	if cfg.AttemptTimeout == 0 {
		cfg.AttemptTimeout = DefaultAttemptTimeout
	}
	if cfg.RetryWait == 0 {
		cfg.RetryWait = DefaultRetryWait
	}
	return &Client{cfg: cfg, base: base, now: time.Now, sleep: sleepCtx}, nil
}

// checkBaseURL returns the tenant URL without a trailing slash.
func checkBaseURL(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("no base URL")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("base URL %q must be a URL such as https://tenant.benchling.com", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return "", fmt.Errorf("base URL %q must use https (http only for a loopback address)", raw)
		}
	default:
		return "", fmt.Errorf("base URL %q must use https", raw)
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.Path, "/"), nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// APIError is an answer of Benchling's that no retry fixes, or the last
// one after the retries: its status and Benchling's error body. Its exit
// code is 2 for 401 and 403 (the app's credentials or access), 3 for 404
// and other 4xx answers, 4 for 429 and 5xx.
type APIError struct {
	// Method and Path name the request ("GET /api/v2/entries/etr_1").
	Method, Path string
	// StatusCode is the HTTP status.
	StatusCode int
	// Type and Message come from Benchling's body ({"error":{"type",
	// "message"}}); Message is the status text when the body has none.
	Type, Message string
}

var _ exitcode.Coder = (*APIError)(nil)

func (e *APIError) Error() string {
	msg := e.Message
	if e.Type != "" {
		msg += " (" + e.Type + ")"
	}
	return fmt.Sprintf("benchling: %s %s: %d %s", e.Method, e.Path, e.StatusCode, msg)
}

// ExitCode classifies the answer; see [APIError].
func (e *APIError) ExitCode() int {
	switch {
	case e.StatusCode == http.StatusUnauthorized, e.StatusCode == http.StatusForbidden:
		return exitcode.Usage
	case e.StatusCode == http.StatusTooManyRequests, e.StatusCode >= 500:
		return exitcode.Transient
	}
	return exitcode.BadInput
}

// Is reports whether target is [ErrNotFound] and the answer a 404.
func (e *APIError) Is(target error) bool {
	return target == ErrNotFound && e.StatusCode == http.StatusNotFound
}

// newAPIError reads Benchling's error body (at most maxErrorSize bytes).
func newAPIError(method, path string, resp *http.Response) *APIError {
	e := &APIError{Method: method, Path: path, StatusCode: resp.StatusCode}
	var body struct {
		Error struct {
			Type        string `json:"type"`
			Message     string `json:"message"`
			UserMessage string `json:"userMessage"`
		} `json:"error"`
		// OAuth errors (RFC 6749) may come flat.
		OAuthError string `json:"error_description"`
	}
	if json.NewDecoder(io.LimitReader(resp.Body, maxErrorSize)).Decode(&body) == nil {
		e.Type = body.Error.Type
		e.Message = cmpOr(body.Error.Message, body.Error.UserMessage, body.OAuthError)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorSize))
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

func cmpOr(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// tries counts one request's failures, across its retries.
type tries struct {
	failures  int  // network errors and 5xx
	limited   int  // 429 answers
	refreshed bool // a 401 already made it fetch a new token
}

// getJSON GETs path (with query) and decodes the JSON answer into out,
// retrying as the package documentation describes.
func (c *Client) getJSON(ctx context.Context, path string, query url.Values, out any) error {
	var t tries
	op := func() (struct{}, error) {
		return struct{}{}, c.try(ctx, &t, path, query, out)
	}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = c.cfg.RetryWait
	bo.MaxInterval = maxRetryWait
	bo.RandomizationFactor = 0.5
	_, err := backoff.Retry(ctx, op,
		backoff.WithBackOff(bo),
		backoff.WithMaxTries(0), // try counts by kind, below
		backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, d time.Duration) {
			c.cfg.Logger.Warn("benchling request failed; retrying", "path", path, "delay", d.String(), "error", err.Error())
		}))
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("benchling: GET %s: %w", path, context.Cause(ctx))
		}
		return err
	}
	return nil
}

// try makes one attempt. A nil error is success; a [backoff.PermanentError]
// ends the retries; anything else is retried after a backoff delay, or
// after the delay of a [backoff.RetryAfterError] in the chain.
func (c *Client) try(ctx context.Context, t *tries, path string, query url.Values, out any) error {
	tok, err := c.accessToken(ctx, t)
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout)
	defer cancel()
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(actx, http.MethodGet, u, nil)
	if err != nil {
		return backoff.Permanent(fmt.Errorf("benchling: GET %s: %w", path, err))
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return c.failed(ctx, t, fmt.Errorf("benchling: GET %s: %w", path, err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseSize)).Decode(out); err != nil {
			var syn *json.SyntaxError
			var typ *json.UnmarshalTypeError
			if errors.As(err, &syn) || errors.As(err, &typ) {
				return backoff.Permanent(fmt.Errorf("benchling: GET %s: decode answer: %w", path, err))
			}
			return c.failed(ctx, t, fmt.Errorf("benchling: GET %s: read answer: %w", path, err))
		}
		return nil
	case resp.StatusCode == http.StatusUnauthorized && !t.refreshed:
		// The token expired early or was revoked: fetch a new one, once.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorSize))
		t.refreshed = true
		c.dropToken(tok)
		return fmt.Errorf("benchling: GET %s: 401, fetching a new token: %w", path, &backoff.RetryAfterError{})
	}
	return c.answerError(resp, t, http.MethodGet, path)
}

// answerError turns a failed answer into the error try returns.
func (c *Client) answerError(resp *http.Response, t *tries, method, path string) error {
	apiErr := newAPIError(method, path, resp)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		t.limited++
		if t.limited > c.cfg.RateLimitRetries {
			return backoff.Permanent(fmt.Errorf("%w: rate limited %d times: %w", ErrUnavailable, t.limited, apiErr))
		}
		if wait, ok := rateLimitWait(resp.Header, c.cfg.MaxRateWait); ok {
			wait += jitter(wait)
			return fmt.Errorf("%w: %w", apiErr, &backoff.RetryAfterError{Duration: wait})
		}
		return apiErr // no usable reset header: the exponential backoff
	case resp.StatusCode >= 500:
		t.failures++
		if t.failures >= c.cfg.MaxAttempts {
			return backoff.Permanent(fmt.Errorf("%w (%d attempts): %w", ErrUnavailable, t.failures, apiErr))
		}
		return apiErr
	}
	return backoff.Permanent(apiErr)
}

// failed counts a network failure and says whether to retry it.
func (c *Client) failed(ctx context.Context, t *tries, err error) error {
	if ctx.Err() != nil {
		return backoff.Permanent(err)
	}
	t.failures++
	if t.failures >= c.cfg.MaxAttempts {
		return backoff.Permanent(fmt.Errorf("%w (%d attempts): %w", ErrUnavailable, t.failures, err))
	}
	return err
}

// rateLimitWait is how long to wait after a 429: x-rate-limit-reset
// seconds, at least one second (a reset of 0 means "about now") and at most
// limit. ok is false when the header is missing or not a number.
func rateLimitWait(h http.Header, limit time.Duration) (d time.Duration, ok bool) {
	v := strings.TrimSpace(h.Get("x-rate-limit-reset"))
	n, err := strconv.ParseFloat(v, 64)
	if v == "" || err != nil || n < 0 || n != n { // n != n: NaN
		return 0, false
	}
	if n >= limit.Seconds() { // also +Inf
		return limit, true
	}
	return min(max(time.Duration(n*float64(time.Second)), time.Second), limit), true
}

// jitter is a random extra wait of up to a tenth of d (at most 250 ms), so
// clients that were limited together do not all come back at once.
func jitter(d time.Duration) time.Duration {
	j := min(d/10, 250*time.Millisecond)
	if j <= 0 {
		return 0
	}
	return rand.N(j)
}

// accessToken returns the cached token, or fetches a new one (a single
// attempt: its failures are retried by the request's own loop).
func (c *Client) accessToken(ctx context.Context, t *tries) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.now().Before(c.expiry) {
		return c.token, nil
	}
	c.token = ""
	actx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout)
	defer cancel()
	form := url.Values{"grant_type": {"client_credentials"}}.Encode()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, c.base+tokenPath, strings.NewReader(form))
	if err != nil {
		return "", backoff.Permanent(fmt.Errorf("benchling: POST %s: %w", tokenPath, err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(c.cfg.ClientID, c.cfg.ClientSecret)
	issued := c.now()
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return "", c.failed(ctx, t, fmt.Errorf("benchling: POST %s: %w", tokenPath, err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return "", c.answerError(resp, t, http.MethodPost, tokenPath)
	default:
		// Wrong client id or secret, or a grant the tenant refuses: the
		// deployment's configuration, whatever the status.
		apiErr := newAPIError(http.MethodPost, tokenPath, resp)
		return "", backoff.Permanent(exitcode.Wrap(fmt.Errorf("get an access token (check the client id and secret): %w", apiErr), exitcode.Usage))
	}
	var tr struct {
		AccessToken string  `json:"access_token"`
		ExpiresIn   float64 `json:"expires_in"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxErrorSize)).Decode(&tr); err != nil || tr.AccessToken == "" {
		return "", backoff.Permanent(fmt.Errorf("benchling: POST %s: the answer has no access token", tokenPath))
	}
	c.token = tr.AccessToken
	c.expiry = issued.Add(tokenLifetime(tr.ExpiresIn))
	return c.token, nil
}

// tokenLifetime is how long a token that expires in expiresIn seconds is
// used: until a minute before it expires, or until 90% of its lifetime has
// passed if that is sooner.
func tokenLifetime(expiresIn float64) time.Duration {
	if expiresIn <= 0 {
		return 0
	}
	life := time.Duration(expiresIn * float64(time.Second))
	return life - min(tokenMargin, life/10)
}

// dropToken forgets tok if it is still the cached token.
func (c *Client) dropToken(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == tok {
		c.token = ""
	}
}

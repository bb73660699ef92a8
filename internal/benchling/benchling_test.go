package benchling

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/testkit/sandbox"
	"benchling-webhook/internal/testkit/syncbuf"
)

const (
	testClientID     = "client-id"
	testClientSecret = "s3cr3t-client-value"
)

// startSandbox starts a Benchling sandbox with the test credentials.
func startSandbox(t *testing.T, opts sandbox.Options) *sandbox.Server {
	t.Helper()
	opts.ClientID, opts.ClientSecret, opts.AppDefinitionID = testClientID, testClientSecret, "appdef_test"
	s, err := sandbox.Start(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer = syncbuf.Buffer

// newTestClient returns a client of s with a short backoff and a logger
// writing to the returned buffer.
func newTestClient(t *testing.T, s *sandbox.Server, edit func(*Config)) (*Client, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	cfg := Config{BaseURL: s.URL(), ClientID: testClientID, ClientSecret: testClientSecret,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), RetryWait: time.Millisecond}
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NotContains(t, logs.String(), testClientSecret, "the secret must never be logged")
		require.NotContains(t, logs.String(), "sbx_", "tokens must never be logged")
	})
	return c, logs
}

// countCalls counts the sandbox calls to path (exactly) with status, or
// any status when status is 0.
func countCalls(s *sandbox.Server, method, path string, status int) int {
	n := 0
	for _, c := range s.Calls() {
		if c.Method == method && c.Path == path && (status == 0 || c.Status == status) {
			n++
		}
	}
	return n
}

func collect(t *testing.T, seq func(func(Entry, error) bool)) ([]Entry, error) {
	t.Helper()
	var out []Entry
	for e, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

func TestListEntriesPages(t *testing.T) {
	s := startSandbox(t, sandbox.Options{})
	base := time.Date(2025, 3, 6, 12, 0, 0, 0, time.UTC)
	// Added newest first, so the sandbox's map order cannot give the answer.
	for i := 7; i >= 0; i-- {
		s.AddEntry("etr_"+string(rune('a'+i)), sandbox.EntryOptions{ModifiedAt: base.Add(time.Duration(i) * time.Hour).Add(123456 * time.Microsecond)})
	}
	c, _ := newTestClient(t, s, nil)

	got, err := collect(t, c.ListEntries(t.Context(), ListOptions{ModifiedAfter: base.Add(90 * time.Minute), PageSize: 2}))
	require.NoError(t, err)
	var ids []string
	for _, e := range got {
		ids = append(ids, e.ID)
	}
	require.Equal(t, []string{"etr_c", "etr_d", "etr_e", "etr_f", "etr_g", "etr_h"}, ids, "oldest first, after the filter")
	require.Equal(t, base.Add(2*time.Hour+123456*time.Microsecond), got[0].ModifiedAt)
	require.Equal(t, 3, countCalls(s, http.MethodGet, entriesPath, http.StatusOK), "three pages of two")
	require.Equal(t, 1, s.Tokens(), "one token for the whole listing")
	for _, call := range s.Calls() {
		if call.Path == entriesPath {
			require.Equal(t, "modifiedAt:asc", call.Query.Get("sort"))
			require.Equal(t, "> 2025-03-06T13:30:00Z", call.Query.Get("modifiedAt"))
			require.Equal(t, "2", call.Query.Get("pageSize"))
		}
	}

	// Breaking out of the loop stops the requests.
	before := countCalls(s, http.MethodGet, entriesPath, 0)
	for range c.ListEntries(t.Context(), ListOptions{PageSize: 2}) {
		break
	}
	require.Equal(t, before+1, countCalls(s, http.MethodGet, entriesPath, 0))

	_, err = collect(t, c.ListEntries(t.Context(), ListOptions{PageSize: 101}))
	require.ErrorIs(t, err, ErrConfig)
}

func TestFilterRoundsDown(t *testing.T) {
	o := ListOptions{ModifiedAfter: time.Date(2025, 3, 6, 23, 25, 38, 693042000, time.FixedZone("x", 3600))}
	require.Equal(t, "> 2025-03-06T22:25:38Z", o.filter())
	require.Empty(t, ListOptions{}.filter())
}

// TestRateLimitHonoured: a real 429 from the sandbox's rate limiter makes
// the client wait about x-rate-limit-reset seconds, then go on.
func TestRateLimitHonoured(t *testing.T) {
	const window = 2 * time.Second
	s := startSandbox(t, sandbox.Options{RateLimit: 3, RateWindow: window})
	for i := range 4 {
		s.AddEntry("etr_rate"+string(rune('a'+i)), sandbox.EntryOptions{ModifiedAt: time.Now().Add(-time.Duration(4-i) * time.Minute)})
	}
	c, logs := newTestClient(t, s, nil)
	start := time.Now()
	// The token and two pages use the window's three requests; the third
	// page gets a 429 with x-rate-limit-reset 2 (the window's rest, rounded up).
	got, err := collect(t, c.ListEntries(t.Context(), ListOptions{PageSize: 1}))
	elapsed := time.Since(start)
	require.NoError(t, err)
	require.Len(t, got, 4)
	require.Equal(t, 1, countCalls(s, http.MethodGet, entriesPath, http.StatusTooManyRequests))
	require.GreaterOrEqual(t, elapsed, window-100*time.Millisecond, "it waited for the window to reset")
	require.Less(t, elapsed, window+1500*time.Millisecond, "and not much longer")
	require.Contains(t, logs.String(), "Rate limit exceeded")
}

// TestRateLimitCapped: the wait is capped, and a request limited too often
// fails as transient.
func TestRateLimitCapped(t *testing.T) {
	s := startSandbox(t, sandbox.Options{}) // a 30 s window: x-rate-limit-reset is about 30
	s.AddEntry("etr_capped", sandbox.EntryOptions{})
	c, _ := newTestClient(t, s, func(c *Config) { c.MaxRateWait = 50 * time.Millisecond; c.RateLimitRetries = 2 })

	s.FailNext(http.MethodGet, entriesPath, http.StatusTooManyRequests, 2)
	start := time.Now()
	_, err := c.GetEntry(t.Context(), "etr_capped")
	require.NoError(t, err)
	require.Less(t, time.Since(start), 2*time.Second, "the 30 s reset was capped")

	s.FailNext(http.MethodGet, entriesPath, http.StatusTooManyRequests, 3)
	_, err = c.GetEntry(t.Context(), "etr_capped")
	require.ErrorIs(t, err, ErrUnavailable)
	require.ErrorContains(t, err, "rate limited 3 times")
	require.Equal(t, exitcode.Transient, exitcode.Resolve(err))
}

func TestRateLimitWait(t *testing.T) {
	tests := map[string]struct {
		reset string
		want  time.Duration
		ok    bool
	}{
		"seconds":  {"3", 3 * time.Second, true},
		"zero":     {"0", time.Second, true},
		"fraction": {"1.5", 1500 * time.Millisecond, true},
		"capped":   {"3600", time.Minute, true},
		"infinite": {"+Inf", time.Minute, true},
		"missing":  {"", 0, false},
		"garbage":  {"soon", 0, false},
		"negative": {"-1", 0, false},
		"nan":      {"NaN", 0, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := http.Header{}
			if tc.reset != "" {
				h.Set("x-rate-limit-reset", tc.reset)
			}
			got, ok := rateLimitWait(h, time.Minute)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
	require.Zero(t, jitter(0))
	for range 100 {
		j := jitter(10 * time.Second)
		require.True(t, j >= 0 && j < 250*time.Millisecond, j)
	}
}

func TestTokenCachedAndRefreshed(t *testing.T) {
	s := startSandbox(t, sandbox.Options{TokenTTL: time.Hour})
	s.AddEntry("etr_tok", sandbox.EntryOptions{})
	c, _ := newTestClient(t, s, nil)
	now := time.Now()
	c.now = func() time.Time { return now }

	for range 3 {
		_, err := c.GetEntry(t.Context(), "etr_tok")
		require.NoError(t, err)
	}
	require.Equal(t, 1, s.Tokens(), "cached")

	// Shortly before it expires (the last minute of an hour), a new one.
	now = now.Add(time.Hour - 30*time.Second)
	_, err := c.GetEntry(t.Context(), "etr_tok")
	require.NoError(t, err)
	require.Equal(t, 2, s.Tokens(), "replaced before it expires")

	// Revoked early: the 401 makes it fetch a new one, once.
	s.ExpireTokens()
	_, err = c.GetEntry(t.Context(), "etr_tok")
	require.NoError(t, err)
	require.Equal(t, 3, s.Tokens())
	require.Equal(t, 1, countCalls(s, http.MethodGet, entriesPath+"/etr_tok", http.StatusUnauthorized))

	// A second 401 is the answer: configuration (exit 2).
	s.FailNext(http.MethodGet, entriesPath, http.StatusUnauthorized, 2)
	_, err = c.GetEntry(t.Context(), "etr_tok")
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)
	require.Equal(t, exitcode.Usage, exitcode.Resolve(err))
	require.Equal(t, 4, s.Tokens())
}

func TestTokenLifetime(t *testing.T) {
	require.Equal(t, 14*time.Minute, tokenLifetime(900), "a minute before")
	require.Equal(t, 900*time.Millisecond, tokenLifetime(1), "90% of a short life")
	require.Zero(t, tokenLifetime(0))
	require.Zero(t, tokenLifetime(-5))
}

func TestServerErrorsRetried(t *testing.T) {
	s := startSandbox(t, sandbox.Options{})
	s.AddEntry("etr_5xx", sandbox.EntryOptions{Name: "Five"})
	c, logs := newTestClient(t, s, nil)

	s.FailNext(http.MethodGet, entriesPath, http.StatusServiceUnavailable, 2)
	s.FailNext(http.MethodPost, tokenPath, http.StatusBadGateway, 1)
	e, err := c.GetEntry(t.Context(), "etr_5xx")
	require.NoError(t, err)
	require.Equal(t, "Five", e.Name)
	require.Equal(t, 3, countCalls(s, http.MethodGet, entriesPath+"/etr_5xx", 0))
	require.Contains(t, logs.String(), "retrying")

	s.FailNext(http.MethodGet, entriesPath, http.StatusInternalServerError, 10)
	_, err = c.GetEntry(t.Context(), "etr_5xx")
	require.ErrorIs(t, err, ErrUnavailable)
	require.ErrorContains(t, err, "4 attempts")
	require.Equal(t, exitcode.Transient, exitcode.Resolve(err))
}

func TestNetworkErrorTransient(t *testing.T) {
	s := startSandbox(t, sandbox.Options{})
	c, _ := newTestClient(t, s, func(c *Config) { c.MaxAttempts = 2 })
	require.NoError(t, s.Close())
	_, err := c.GetEntry(t.Context(), "etr_gone")
	require.ErrorIs(t, err, ErrUnavailable)
	require.Equal(t, exitcode.Transient, exitcode.Resolve(err))
}

func TestNotFound(t *testing.T) {
	s := startSandbox(t, sandbox.Options{})
	c, _ := newTestClient(t, s, nil)
	_, err := c.GetEntry(t.Context(), "etr_nope")
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorContains(t, err, "Entry etr_nope not found.")
	require.Equal(t, exitcode.BadInput, exitcode.Resolve(err))
	require.Equal(t, 1, countCalls(s, http.MethodGet, entriesPath+"/etr_nope", 0), "no retry")
}

func TestBadCredentials(t *testing.T) {
	s := startSandbox(t, sandbox.Options{})
	logs := &syncBuffer{}
	c, err := New(Config{BaseURL: s.URL(), ClientID: testClientID, ClientSecret: "wrong-secret-value",
		Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	require.NoError(t, err)
	_, err = c.GetEntry(t.Context(), "etr_x")
	require.Equal(t, exitcode.Usage, exitcode.Resolve(err))
	require.ErrorContains(t, err, "Invalid client credentials")
	require.NotContains(t, err.Error(), "wrong-secret-value")
	require.NotContains(t, logs.String(), "wrong-secret-value")
	require.Zero(t, countCalls(s, http.MethodGet, entriesPath+"/etr_x", 0))
}

func TestInterrupted(t *testing.T) {
	s := startSandbox(t, sandbox.Options{})
	s.AddEntry("etr_int", sandbox.EntryOptions{})
	c, _ := newTestClient(t, s, nil)
	c.cfg.RetryWait = time.Hour
	s.FailNext(http.MethodGet, entriesPath, http.StatusServiceUnavailable, 1)
	stop := errors.New("stop now")
	ctx, cancel := context.WithCancelCause(t.Context())
	time.AfterFunc(100*time.Millisecond, func() { cancel(stop) })
	_, err := c.GetEntry(ctx, "etr_int")
	require.ErrorIs(t, err, stop, "the backoff wait ends with the context")
}

func TestNewChecksConfig(t *testing.T) {
	tests := map[string]struct {
		cfg  Config
		want string
	}{
		"ok":            {Config{BaseURL: "https://t.benchling.com/", ClientID: "i", ClientSecret: "s"}, ""},
		"loopback http": {Config{BaseURL: "http://127.0.0.1:8080", ClientID: "i", ClientSecret: "s"}, ""},
		"localhost":     {Config{BaseURL: "http://localhost:8080", ClientID: "i", ClientSecret: "s"}, ""},
		"plain http":    {Config{BaseURL: "http://t.benchling.com", ClientID: "i", ClientSecret: "s"}, "must use https"},
		"no scheme":     {Config{BaseURL: "t.benchling.com", ClientID: "i", ClientSecret: "s"}, "must be a URL"},
		"query":         {Config{BaseURL: "https://t.benchling.com?x=1", ClientID: "i", ClientSecret: "s"}, "must be a URL"},
		"missing":       {Config{}, "no base URL"},
		"no id":         {Config{BaseURL: "https://t.benchling.com", ClientSecret: "s"}, "no client id"},
		"no secret":     {Config{BaseURL: "https://t.benchling.com", ClientID: "i"}, "no client secret"},
		"negative":      {Config{BaseURL: "https://t.benchling.com", ClientID: "i", ClientSecret: "s", MaxAttempts: -1}, "negative"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := New(tc.cfg)
			if tc.want == "" {
				require.NoError(t, err)
				require.False(t, strings.HasSuffix(c.base, "/"))
				return
			}
			require.ErrorContains(t, err, tc.want)
			require.ErrorIs(t, err, ErrConfig)
			require.Equal(t, exitcode.Usage, exitcode.Resolve(err))
		})
	}
}

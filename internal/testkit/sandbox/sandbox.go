// Package sandbox runs a local Benchling tenant (the API v2 parts this
// project calls, the app's JWKS, export downloads, faults), checked against
// Benchling's OpenAPI spec. Design: docs/testkit.md#sandbox-a-local-benchling-tenant.
package sandbox

import (
	"bytes"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Defaults for the zero values of [Options].
const (
	DefaultAppID       = "app_sandbox"
	DefaultFeatureID   = "quilt_integration"
	DefaultTokenTTL    = 15 * time.Minute
	DefaultExportDelay = time.Second
	DefaultDownloadTTL = 24 * time.Hour
	DefaultRateWindow  = 30 * time.Second
)

// maxBodyBytes caps request bodies; larger ones get 413.
const maxBodyBytes = 1 << 20

// ErrInvalidOptions is returned (wrapped) by [Start] when a required option
// is missing or a value is out of range.
var ErrInvalidOptions = errors.New("sandbox: invalid options")

// Options configures a [Server]. ClientID, ClientSecret and AppDefinitionID
// are required; every other zero value means the documented default.
type Options struct {
	// ClientID and ClientSecret are the OAuth client credentials accepted at
	// POST /api/v2/token (in HTTP Basic auth or in the form body).
	ClientID, ClientSecret string
	// AppDefinitionID selects the JWKS URL, /api/v1/apps/{AppDefinitionID}/jwks.
	AppDefinitionID string
	// AppID is the installed app's id; canvases belong to it and POST
	// /app-canvases must name it. Default [DefaultAppID].
	AppID string
	// FeatureID is the only canvas feature the app manifest defines; canvas
	// writes naming another feature get 400. Default [DefaultFeatureID].
	FeatureID string
	// TokenTTL is the access-token lifetime (expires_in, rounded up to whole
	// seconds). Default [DefaultTokenTTL].
	TokenTTL time.Duration
	// ExportDelay is how long a new export task reports RUNNING. Default
	// [DefaultExportDelay]; a negative value means it succeeds at once.
	ExportDelay time.Duration
	// DownloadTTL is how long a download URL stays valid after the export
	// finished (X-Amz-Expires). Default [DefaultDownloadTTL].
	DownloadTTL time.Duration
	// RateLimit is the number of /api/v2 requests allowed per RateWindow
	// before 429; 0 means unlimited (the headers are still sent).
	RateLimit int
	// RateWindow is the fixed rate-limit window. Default [DefaultRateWindow].
	RateWindow time.Duration
	// Logf, if set, gets one line per request: method, path, status and
	// duration. Bodies, tokens and secrets are never logged.
	Logf func(format string, args ...any)
}

func (o Options) withDefaults() (Options, error) {
	switch {
	case o.ClientID == "":
		return o, fmt.Errorf("%w: ClientID is required", ErrInvalidOptions)
	case o.ClientSecret == "":
		return o, fmt.Errorf("%w: ClientSecret is required", ErrInvalidOptions)
	case o.AppDefinitionID == "":
		return o, fmt.Errorf("%w: AppDefinitionID is required", ErrInvalidOptions)
	case o.TokenTTL < 0, o.DownloadTTL < 0, o.RateWindow < 0:
		return o, fmt.Errorf("%w: TokenTTL, DownloadTTL and RateWindow must not be negative", ErrInvalidOptions)
	case o.RateLimit < 0:
		return o, fmt.Errorf("%w: RateLimit %d is negative", ErrInvalidOptions, o.RateLimit)
	}
	if o.AppID == "" {
		o.AppID = DefaultAppID
	}
	if o.FeatureID == "" {
		o.FeatureID = DefaultFeatureID
	}
	if o.TokenTTL == 0 {
		o.TokenTTL = DefaultTokenTTL
	}
	switch {
	case o.ExportDelay == 0:
		o.ExportDelay = DefaultExportDelay
	case o.ExportDelay < 0:
		o.ExportDelay = 0
	}
	if o.DownloadTTL == 0 {
		o.DownloadTTL = DefaultDownloadTTL
	}
	if o.RateWindow == 0 {
		o.RateWindow = DefaultRateWindow
	}
	return o, nil
}

// Call is one request the [Server] answered, as recorded by [Server.Calls].
type Call struct {
	Method string
	Path   string
	// Query is the request's query, except that the values of a download
	// URL's X-Amz-Signature, X-Amz-Credential and X-Amz-Security-Token are
	// replaced by "REDACTED".
	Query url.Values
	// Status is the HTTP status the sandbox answered with.
	Status int
	// Body is the request body as received, except that a client_secret in
	// a token request's form body is replaced by "REDACTED".
	Body []byte
}

// Server is a running sandbox tenant. Its methods are safe for concurrent
// use, also while requests are being served. Close it when done.
type Server struct {
	opts Options
	url  string
	hs   *http.Server
	mux  *http.ServeMux
	done chan struct{} // closed when Serve returns

	logMu  sync.Mutex // serialises Logf with Close: no Logf after Close returns
	closed bool

	mu          sync.Mutex
	entries     map[string]*entry
	exportSpecs map[string]ExportSpec // by entry id
	tasks       map[string]*task
	downloads   map[string]*download // by URL token
	zips        map[string][]byte    // generated archives by entry id
	canvases    map[string]*canvas
	canvasSeq   int
	tokens      map[string]time.Time // access token -> expiry
	issued      int
	keys        []signingKey // oldest first; the last one signs
	faults      []*fault
	rate        rateWindow
	noDownloads bool // ExpireDownloads(true)
	expireNext  int  // ExpireNextDownloads: links still to issue already expired
	calls       []Call
}

// Start validates opts, then starts a sandbox on a free port of 127.0.0.1.
func Start(opts Options) (*Server, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:        opts,
		done:        make(chan struct{}),
		entries:     make(map[string]*entry),
		exportSpecs: make(map[string]ExportSpec),
		tasks:       make(map[string]*task),
		downloads:   make(map[string]*download),
		zips:        make(map[string][]byte),
		canvases:    make(map[string]*canvas),
		tokens:      make(map[string]time.Time),
	}
	if err := s.addKey(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sandbox: listen on 127.0.0.1: %w", err)
	}
	s.url = "http://" + ln.Addr().String()
	s.mux = s.routes()
	// No deadline, not even ReadHeaderTimeout: net/http arms it as it
	// accepts, so a connection a client dialed and has not used yet (Go's
	// transport keeps one when another connection served the request it
	// dialed for) would be closed under it (docs/architecture.md, "Local
	// stack: connection lifetimes").
	s.hs = &http.Server{Handler: http.HandlerFunc(s.serve)}
	go func() {
		defer close(s.done)
		_ = s.hs.Serve(ln) // always http.ErrServerClosed after Close
	}()
	return s, nil
}

// URL returns the tenant base URL, "http://127.0.0.1:PORT", the value
// webhooks carry as baseURL. The API is under URL()+"/api/v2".
func (s *Server) URL() string { return s.url }

// JWKSURL returns the URL of the app definition's JSON Web Key Set.
func (s *Server) JWKSURL() string {
	return s.url + "/api/v1/apps/" + url.PathEscape(s.opts.AppDefinitionID) + "/jwks"
}

// Close stops the server at once, closing open connections.
func (s *Server) Close() error {
	err := s.hs.Close()
	<-s.done
	s.logMu.Lock()
	s.closed = true
	s.logMu.Unlock()
	if err != nil {
		return fmt.Errorf("sandbox: close: %w", err)
	}
	return nil
}

// Calls returns a copy of the calls answered so far, in order of completion.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	copy(out, s.calls)
	return out
}

func (s *Server) routes() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("POST /api/v2/token", s.handleToken)
	m.HandleFunc("GET /api/v2/entries", s.authed(s.handleListEntries))
	m.HandleFunc("GET /api/v2/entries/{entry_id}", s.authed(s.handleGetEntry))
	m.HandleFunc("POST /api/v2/exports", s.authed(s.handleExport))
	m.HandleFunc("GET /api/v2/tasks/{task_id}", s.authed(s.handleGetTask))
	m.HandleFunc("POST /api/v2/app-canvases", s.authed(s.handleCreateCanvas))
	m.HandleFunc("GET /api/v2/app-canvases/{canvas_id}", s.authed(s.handleGetCanvas))
	m.HandleFunc("PATCH /api/v2/app-canvases/{canvas_id}", s.authed(s.handleUpdateCanvas))
	m.HandleFunc("/api/v2/", s.authed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, apiError{Message: "Not found: " + r.Method + " " + r.URL.Path, Type: typeInvalidRequest})
	}))
	m.HandleFunc("GET /api/v1/apps/{app_definition_id}/jwks", s.handleJWKS)
	m.HandleFunc("GET /download/{token}", s.handleDownload)
	m.HandleFunc("GET /download/{token}/{name}", s.handleDownload)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, apiError{Message: "Not found: " + r.Method + " " + r.URL.Path, Type: typeInvalidRequest})
	})
	return m
}

// serve reads and records the request, applies rate limiting and injected
// faults, then routes it.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusWriter{ResponseWriter: w}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	switch {
	case err != nil:
		writeError(rec, http.StatusBadRequest, apiError{Message: "Could not read the request body.", Type: typeInvalidRequest})
	case len(body) > maxBodyBytes:
		writeError(rec, http.StatusRequestEntityTooLarge, apiError{Message: "Request body too large.", Type: typeInvalidRequest})
	default:
		r.Body = io.NopCloser(bytes.NewReader(body))
		s.dispatch(rec, r)
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	s.mu.Lock()
	s.calls = append(s.calls, Call{
		Method: r.Method,
		Path:   r.URL.Path,
		Query:  redactQuery(r.URL.Query()),
		Status: rec.status,
		Body:   redactBody(r, body),
	})
	s.mu.Unlock()
	s.logf("sandbox: %s %s -> %d (%s)", r.Method, r.URL.Path, rec.status, time.Since(start).Round(time.Microsecond))
}

// logf calls Options.Logf unless the server is closed, so a test's t.Logf
// is never called after the test ended.
func (s *Server) logf(format string, args ...any) {
	if s.opts.Logf == nil {
		return
	}
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if !s.closed {
		s.opts.Logf(format, args...)
	}
}

func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	api := isAPI(r.URL.Path)
	var over bool
	if api {
		over = s.takeRate(w.Header(), time.Now())
	}
	if status, ok := s.takeFault(r); ok {
		s.writeFault(w, r, status)
		return
	}
	if over {
		writeRateLimited(w)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// statusWriter remembers the status written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// redactBody returns body with the client_secret of a token request hidden.
func redactBody(r *http.Request, body []byte) []byte {
	if len(body) == 0 || r.URL.Path != tokenPath || !bytes.Contains(body, []byte("client_secret")) {
		return body
	}
	v, err := url.ParseQuery(string(body))
	if err != nil || !v.Has("client_secret") {
		return []byte("REDACTED")
	}
	v.Set("client_secret", "REDACTED")
	return []byte(v.Encode())
}

// secretParams are the query parameters of a presigned URL that grant
// access, hidden in recorded calls.
var secretParams = []string{"X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token"}

// redactQuery returns q with the values of secretParams hidden.
func redactQuery(q url.Values) url.Values {
	for _, k := range secretParams {
		for i := range q[k] {
			q[k][i] = "REDACTED"
		}
	}
	return q
}

// signingKey is one webhook signing key of the app.
type signingKey struct {
	kid string
	key *ecdsa.PrivateKey
}

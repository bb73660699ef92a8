package sandbox

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"benchling-webhook/internal/testkit/faultserver"
)

// Error types of Benchling's error bodies (BaseError.type in the spec).
const (
	typeInvalidRequest = "invalid_request_error" // BadRequestError, NotFoundError, 401, 429
	typeInvalidClient  = "invalid_client"        // OAuthUnauthorizedError
	typeOAuthRequest   = "invalid_request"       // OAuthBadRequestError
	typeGrantType      = "unsupported_grant_type"
	typeServer         = "server_error"
)

// apiError is the "error" member of Benchling's error bodies (BaseError,
// NotFoundError, ForbiddenError, the OAuth errors).
type apiError struct {
	InvalidID   string `json:"invalidId,omitempty"`
	Message     string `json:"message"`
	Type        string `json:"type"`
	UserMessage string `json:"userMessage,omitempty"`
}

// writeJSON writes v as a JSON response with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("sandbox: marshal response: %v", err)) // our own types: cannot happen
	}
	writeRawJSON(w, status, b)
}

func writeRawJSON(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b) // the client went away: nothing to do
}

// writeError writes {"error": e}. userMessage defaults to message, as
// Benchling fills both.
func writeError(w http.ResponseWriter, status int, e apiError) {
	if e.UserMessage == "" {
		e.UserMessage = e.Message
	}
	writeJSON(w, status, struct {
		Error apiError `json:"error"`
	}{e})
}

func writeBadRequest(w http.ResponseWriter, format string, args ...any) {
	writeError(w, http.StatusBadRequest, apiError{Message: fmt.Sprintf(format, args...), Type: typeInvalidRequest})
}

func writeNotFound(w http.ResponseWriter, what, id string) {
	writeError(w, http.StatusNotFound, apiError{
		InvalidID: id,
		Message:   fmt.Sprintf("%s %s not found.", what, id),
		Type:      typeInvalidRequest,
	})
}

func writeUnauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="benchling", error="invalid_token"`)
	writeError(w, http.StatusUnauthorized, apiError{
		Message: "Authentication failed: the access token is missing, invalid or expired.",
		Type:    typeInvalidRequest,
	})
}

// writeRateLimited writes Benchling's 429 body. The rate-limit headers are
// set by takeRate.
func writeRateLimited(w http.ResponseWriter) {
	writeError(w, http.StatusTooManyRequests, apiError{Message: "Rate limit exceeded.", Type: typeInvalidRequest})
}

// isAPI reports whether path is under the rate-limited REST API.
func isAPI(path string) bool { return strings.HasPrefix(path, "/api/v2/") }

// unlimitedRate is the x-rate-limit-limit reported when Options.RateLimit is 0.
const unlimitedRate = math.MaxInt32

// rateWindow is a fixed rate-limit window.
type rateWindow struct {
	start time.Time
	used  int
}

// takeRate counts one API request, sets the x-rate-limit-* headers on h and
// reports whether the request is over the limit.
func (s *Server) takeRate(h http.Header, now time.Time) (over bool) {
	s.mu.Lock()
	if s.rate.start.IsZero() || now.Sub(s.rate.start) >= s.opts.RateWindow {
		s.rate = rateWindow{start: now}
	}
	s.rate.used++
	used, end := s.rate.used, s.rate.start.Add(s.opts.RateWindow)
	s.mu.Unlock()

	limit := s.opts.RateLimit
	if limit == 0 {
		limit = unlimitedRate
	}
	setRateHeaders(h, limit, max(limit-used, 0), end.Sub(now))
	return s.opts.RateLimit > 0 && used > limit
}

func setRateHeaders(h http.Header, limit, remaining int, reset time.Duration) {
	h.Set("x-rate-limit-limit", strconv.Itoa(limit))
	h.Set("x-rate-limit-remaining", strconv.Itoa(remaining))
	h.Set("x-rate-limit-reset", strconv.Itoa(int(math.Ceil(reset.Seconds()))))
}

// fault is a pending injected failure.
type fault struct {
	method, prefix string
	status, left   int
}

// FailNext makes the next times requests whose method is method ("" for
// any) and whose path starts with pathPrefix fail with status, before any
// authentication. Faults queue in order. Bodies are what the real service
// sends: 429 carries Benchling's rate-limit body with x-rate-limit-remaining
// 0; 401 the invalid-token body; 500 a JSON error; 502, 503 and 504 an HTML
// page like a load balancer's; any status on /download/ an S3 XML error.
func (s *Server) FailNext(method, pathPrefix string, status, times int) {
	if times <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{method: method, prefix: pathPrefix, status: status, left: times})
}

// takeFault returns the status of the first pending fault matching r, and
// uses it up.
func (s *Server) takeFault(r *http.Request) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if (f.method == "" || strings.EqualFold(f.method, r.Method)) && strings.HasPrefix(r.URL.Path, f.prefix) {
			f.left--
			if f.left == 0 {
				s.faults = append(s.faults[:i], s.faults[i+1:]...)
			}
			return f.status, true
		}
	}
	return 0, false
}

func (s *Server) writeFault(w http.ResponseWriter, r *http.Request, status int) {
	switch {
	case strings.HasPrefix(r.URL.Path, downloadPrefix):
		writeS3Error(w, r, status, faultserver.S3Error{})
	case status == http.StatusTooManyRequests:
		if isAPI(r.URL.Path) {
			w.Header().Set("x-rate-limit-remaining", "0")
		}
		writeRateLimited(w)
	case status == http.StatusUnauthorized:
		writeUnauthorized(w)
	case status == http.StatusBadGateway, status == http.StatusServiceUnavailable, status == http.StatusGatewayTimeout:
		text := strconv.Itoa(status) + " " + http.StatusText(status)
		b := "<html>\r\n<head><title>" + text + "</title></head>\r\n<body>\r\n<center><h1>" + text + "</h1></center>\r\n</body>\r\n</html>\r\n"
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(status)
		_, _ = w.Write([]byte(b))
	default:
		writeError(w, status, apiError{Message: http.StatusText(status), Type: typeServer})
	}
}

// writeS3Error writes e (S3's error body, [faultserver.WriteS3Error]) with
// the code and message for status filled in where e leaves them empty.
func writeS3Error(w http.ResponseWriter, r *http.Request, status int, e faultserver.S3Error) {
	if e.Code == "" {
		e.Code, e.Message = s3Code(status)
	}
	id := randomText()[:16]
	e.RequestID, e.HostID = id, "sandbox/"+id
	faultserver.WriteS3Error(w, r, status, e)
}

// s3Code is the sandbox's code and message for status: the fault
// server's ([faultserver.S3Code]), but a 403 is a refused download, not an
// expired one.
func s3Code(status int) (code, msg string) {
	if status == http.StatusForbidden {
		return "AccessDenied", "Access Denied"
	}
	return faultserver.S3Code(status)
}

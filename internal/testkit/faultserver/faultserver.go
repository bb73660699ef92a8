// Package faultserver serves one file over HTTP with switchable faults (no
// Range, 5xx, cut connections, slow transfers) and writes S3-style XML
// errors. Design: docs/testkit.md#faultserver-a-download-with-faults.
package faultserver

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// FileName is the path, under [Server.URL], at which [Server] serves the file.
const FileName = "/export.zip"

// Options selects the faults. The zero value serves the file faithfully.
// When several switches are set, Status wins over FailFirst, which wins over
// CutAfter; BytesPerSecond applies to every body that is sent.
type Options struct {
	// NoRange ignores Range and If-Range headers: every GET gets 200 with
	// the whole body and no Accept-Ranges header.
	NoRange bool
	// FailFirst answers the first FailFirst requests (of any method) with
	// 503 SlowDown and an S3-style XML error body.
	FailFirst int
	// Status, if non-zero, answers every request with this status and an
	// S3-style XML error body: 403 gives AccessDenied "Request has
	// expired", 404 NoSuchKey, 500 InternalError, 503 SlowDown, others a
	// code made from the status text.
	Status int
	// CutAfter, if > 0, makes the first CutTimes GETs send only CutAfter
	// body bytes and then close the connection, leaving the promised
	// Content-Length unfulfilled. A GET whose body is not longer than
	// CutAfter is sent whole but still uses up one of the CutTimes.
	CutAfter int64
	// CutTimes is how many GETs CutAfter applies to; 0 means 1.
	CutTimes int
	// BytesPerSecond, if > 0, paces body writes to about this rate. The
	// pacing stops when the client goes away or the server is closed.
	BytesPerSecond int64
	// ETag is sent as the ETag header (quoted if it is not already);
	// "" means a quoted value derived from the size and modification time.
	ETag string
}

// FileHandler serves one file with the faults in its [Options] and counts
// what it does. Its methods are safe for concurrent use. It serves the file
// at every path and answers methods other than GET and HEAD with 405.
type FileHandler struct {
	content io.ReaderAt
	size    int64
	modTime time.Time
	etag    string
	opts    Options

	requests      atomic.Int64 // every request
	gets          atomic.Int64 // GETs that reached the file (not faulted)
	bytesSent     atomic.Int64 // file body bytes written
	rangeRequests atomic.Int64 // requests carrying a Range header
	cuts          atomic.Int64 // connections cut by CutAfter
}

var _ http.Handler = (*FileHandler)(nil)

// Handler returns a handler serving size bytes of content with the faults in
// opts, for a benchmark or test that runs its own server. It panics if size
// is negative.
func Handler(content io.ReaderAt, size int64, opts Options) *FileHandler {
	return newHandler(content, size, time.Now().UTC().Truncate(time.Second), opts)
}

// newHandler is Handler with an explicit modification time.
func newHandler(content io.ReaderAt, size int64, modTime time.Time, opts Options) *FileHandler {
	if size < 0 {
		panic(fmt.Sprintf("faultserver: negative size %d", size))
	}
	if opts.CutAfter > 0 && opts.CutTimes <= 0 {
		opts.CutTimes = 1
	}
	etag := opts.ETag
	switch {
	case etag == "":
		etag = fmt.Sprintf(`"%x-%x"`, modTime.Unix(), size)
	case !strings.HasPrefix(etag, `"`) && !strings.HasPrefix(etag, `W/"`):
		etag = strconv.Quote(etag)
	}
	return &FileHandler{content: content, size: size, modTime: modTime, etag: etag, opts: opts}
}

// Requests returns how many requests the handler has received, of any
// method, including those answered with a fault.
func (h *FileHandler) Requests() int64 { return h.requests.Load() }

// BytesSent returns how many bytes of the file's content the handler has
// written to clients (error bodies are not counted).
func (h *FileHandler) BytesSent() int64 { return h.bytesSent.Load() }

// RangeRequests returns how many requests carried a Range header, whether
// or not it was honoured.
func (h *FileHandler) RangeRequests() int64 { return h.rangeRequests.Load() }

// Cuts returns how many connections CutAfter has cut.
func (h *FileHandler) Cuts() int64 { return h.cuts.Load() }

// ETag returns the entity tag the handler sends, with its quotes.
func (h *FileHandler) ETag() string { return h.etag }

// ServeHTTP serves the file or a fault.
func (h *FileHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := h.requests.Add(1)
	if r.Header.Get("Range") != "" {
		h.rangeRequests.Add(1)
	}
	switch {
	case h.opts.Status != 0:
		writeError(w, r, h.opts.Status, n)
		return
	case n <= int64(h.opts.FailFirst):
		writeError(w, r, http.StatusServiceUnavailable, n)
		return
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, r, http.StatusMethodNotAllowed, n)
		return
	}

	bw := &bodyWriter{ResponseWriter: w, ctx: r.Context(), sent: &h.bytesSent, cuts: &h.cuts, cutAt: -1, rate: h.opts.BytesPerSecond}
	if r.Method == http.MethodGet {
		if g := h.gets.Add(1); h.opts.CutAfter > 0 && g <= int64(h.opts.CutTimes) {
			bw.cutAt = h.opts.CutAfter
		}
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/zip")
	hdr.Set("ETag", h.etag)
	hdr.Set("X-Amz-Request-Id", requestID(n))
	body := io.NewSectionReader(h.content, 0, h.size)
	if h.opts.NoRange {
		hdr.Set("Last-Modified", h.modTime.Format(http.TimeFormat))
		hdr.Set("Content-Length", strconv.FormatInt(h.size, 10))
		bw.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = io.Copy(bw, body) // a failed write means the client or the cut ended it
		}
		return
	}
	http.ServeContent(bw, r, FileName, h.modTime, body)
}

// S3Error is the XML body of an S3 error response, see
// https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html.
// [WriteS3Error] writes it; the test kit's other S3-like servers (the
// Benchling sandbox's export downloads) use it too.
type S3Error struct {
	XMLName    xml.Name `xml:"Error"`
	Code       string   `xml:"Code"`
	Message    string   `xml:"Message"`
	Key        string   `xml:"Key,omitempty"`
	Resource   string   `xml:"Resource,omitempty"`
	XAmzExpire string   `xml:"X-Amz-Expires,omitempty"`
	Expires    string   `xml:"Expires,omitempty"`
	ServerTime string   `xml:"ServerTime,omitempty"`
	RequestID  string   `xml:"RequestId"`
	HostID     string   `xml:"HostId,omitempty"`
}

// WriteS3Error answers r with status and e as S3 does: an XML body (none
// for HEAD), application/xml, and e.RequestID also as x-amz-request-id.
// An empty e.Code is filled in, with the message, from [S3Code].
func WriteS3Error(w http.ResponseWriter, r *http.Request, status int, e S3Error) {
	if e.Code == "" {
		e.Code, e.Message = S3Code(status)
	}
	body, err := xml.Marshal(e)
	if err != nil {
		panic(fmt.Sprintf("faultserver: marshal S3 error: %v", err)) // fixed struct: cannot happen
	}
	body = append([]byte(xml.Header), body...)
	hdr := w.Header()
	hdr.Set("Content-Type", "application/xml")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	hdr.Set("X-Amz-Request-Id", e.RequestID)
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body) // nothing to do if the client has gone
	}
}

// S3Code returns the S3 error code and message the fault server uses for
// status (403 is an expired presigned URL's).
func S3Code(status int) (code, message string) {
	switch status {
	case http.StatusBadRequest:
		return "InvalidRequest", "Invalid Request"
	case http.StatusForbidden:
		return "AccessDenied", "Request has expired"
	case http.StatusNotFound:
		return "NoSuchKey", "The specified key does not exist."
	case http.StatusMethodNotAllowed:
		return "MethodNotAllowed", "The specified method is not allowed against this resource."
	case http.StatusInternalServerError:
		return "InternalError", "We encountered an internal error. Please try again."
	case http.StatusServiceUnavailable:
		return "SlowDown", "Please reduce your request rate."
	}
	text := http.StatusText(status)
	if text == "" {
		return "Status" + strconv.Itoa(status), "Injected fault."
	}
	return strings.ReplaceAll(text, " ", ""), text + "."
}

// writeError answers with status and an S3-style XML error body.
func writeError(w http.ResponseWriter, r *http.Request, status int, n int64) {
	WriteS3Error(w, r, status, S3Error{Resource: r.URL.Path, RequestID: requestID(n)})
}

// requestID returns the request ID for the nth request.
func requestID(n int64) string { return fmt.Sprintf("FAULT%011d", n) }

// errCut is returned by bodyWriter.Write once it has cut the connection.
var errCut = errors.New("faultserver: connection cut")

// bodyWriter wraps the ResponseWriter to count, pace and cut the body of
// successful responses. Other responses (ServeContent's 304, 412, 416 ...)
// pass through untouched.
type bodyWriter struct {
	http.ResponseWriter
	ctx   context.Context
	sent  *atomic.Int64
	cuts  *atomic.Int64
	cutAt int64 // body bytes to send before cutting; < 0 means never
	rate  int64 // bytes per second; <= 0 means unpaced

	status  int       // status written, 0 until WriteHeader
	written int64     // body bytes written
	start   time.Time // when the first paced byte was due
}

// WriteHeader records the status before passing it on.
func (b *bodyWriter) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
	b.ResponseWriter.WriteHeader(status)
}

// Flush passes a flush on if the underlying writer supports it.
func (b *bodyWriter) Flush() {
	if f, ok := b.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController access to the underlying writer.
func (b *bodyWriter) Unwrap() http.ResponseWriter { return b.ResponseWriter }

// Write writes p, pacing it and cutting the connection as configured.
func (b *bodyWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.WriteHeader(http.StatusOK)
	}
	if b.status < 200 || b.status > 299 {
		return b.ResponseWriter.Write(p)
	}
	if b.rate > 0 && b.start.IsZero() {
		b.start = time.Now()
	}
	chunk := paceChunk(b.rate)
	done := 0
	for len(p) > 0 {
		n := len(p)
		if b.rate > 0 && n > chunk {
			n = chunk
		}
		cut := b.cutAt >= 0 && b.written+int64(n) > b.cutAt
		if cut {
			n = int(b.cutAt - b.written)
		}
		if n > 0 {
			if err := b.pace(); err != nil {
				return done, err
			}
			m, err := b.ResponseWriter.Write(p[:n])
			done += m
			b.written += int64(m)
			b.sent.Add(int64(m))
			if err != nil {
				return done, err
			}
			if b.rate > 0 {
				b.Flush()
			}
		}
		if cut {
			b.cut()
			return done, errCut
		}
		p = p[n:]
	}
	return done, nil
}

// pace waits until the bytes written so far are due at the configured rate.
func (b *bodyWriter) pace() error {
	if b.rate <= 0 {
		return nil
	}
	d := paceDelay(b.written, b.rate, time.Since(b.start))
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-b.ctx.Done():
		return fmt.Errorf("pace body: %w", b.ctx.Err())
	}
}

// cut flushes what has been written and closes the connection, so the
// client sees the body end early. Where hijacking is not supported
// (HTTP/2) it aborts the handler instead, which resets the stream.
func (b *bodyWriter) cut() {
	b.cuts.Add(1)
	b.Flush()
	if hj, ok := b.ResponseWriter.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close() // the point is to break the connection
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// paceChunk returns how many bytes to write at a time at rate bytes per
// second: about 1/50 s worth, between 1 byte and 32 KiB.
func paceChunk(rate int64) int {
	const maxChunk = 32 << 10
	switch {
	case rate <= 0:
		return maxChunk
	case rate/50 < 1:
		return 1
	case rate/50 > maxChunk:
		return maxChunk
	}
	return int(rate / 50)
}

// paceDelay returns how long to wait before writing more, after sent bytes
// in elapsed time, to keep to rate bytes per second. It is never negative.
func paceDelay(sent, rate int64, elapsed time.Duration) time.Duration {
	if rate <= 0 || sent <= 0 {
		return 0
	}
	due := time.Duration(float64(sent) / float64(rate) * float64(time.Second))
	if d := due - elapsed; d > 0 {
		return d
	}
	return 0
}

// Server is an httptest server on 127.0.0.1 that serves one file at
// URL+"/export.zip" through a [FileHandler]. It is safe for concurrent use;
// call [Server.Close] when done.
type Server struct {
	// URL is the server's base URL, "http://127.0.0.1:PORT".
	URL string

	h    *FileHandler
	srv  *httptest.Server
	file *os.File // set by NewFile, closed by Close
}

// New starts a server for size bytes of content with the faults in opts.
func New(content io.ReaderAt, size int64, opts Options) *Server {
	return newServer(Handler(content, size, opts), nil)
}

// NewFile starts a server for the file at path, using its size and
// modification time. The file is held open until [Server.Close].
func NewFile(path string, opts Options) (*Server, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("serve file %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close() // already failing
		return nil, fmt.Errorf("serve file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close() // already failing
		return nil, fmt.Errorf("serve file %s: not a regular file", path)
	}
	return newServer(newHandler(f, fi.Size(), fi.ModTime().UTC().Truncate(time.Second), opts), f), nil
}

// newServer starts an httptest server for h.
func newServer(h *FileHandler, f *os.File) *Server {
	mux := http.NewServeMux()
	mux.Handle(FileName, h)
	srv := httptest.NewServer(mux)
	return &Server{URL: srv.URL, h: h, srv: srv, file: f}
}

// FileURL returns the URL of the file, URL+"/export.zip".
func (s *Server) FileURL() string { return s.URL + FileName }

// Handler returns the server's handler, for its counters and ETag.
func (s *Server) Handler() *FileHandler { return s.h }

// Requests returns how many requests for the file the server has received,
// of any method, including those answered with a fault.
func (s *Server) Requests() int64 { return s.h.Requests() }

// BytesSent returns how many bytes of the file the server has written.
func (s *Server) BytesSent() int64 { return s.h.BytesSent() }

// RangeRequests returns how many requests carried a Range header.
func (s *Server) RangeRequests() int64 { return s.h.RangeRequests() }

// Close cuts open connections, waits for handlers to return and closes the
// file opened by [NewFile].
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
	if s.file != nil {
		_ = s.file.Close() // read-only: nothing to flush
	}
}

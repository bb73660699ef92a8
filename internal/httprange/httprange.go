// Package httprange reads a remote file through HTTP Range requests.
//
// A [Source] is an [io.ReaderAt] over a URL (for parsing a ZIP's central
// directory at the end of the file) plus [Source.Stream], a sequential reader
// over one byte range that resumes with a new Range request when the
// connection is cut. Presigned S3 links honour Range; for a server that
// does not, Open spools the body once to a temporary file, capped in size,
// and serves everything from there. Local paths and file:// URLs are read
// from disk.
//
// Errors carry exit codes (see package exitcode): 403, 404 and 410 answers
// are [ErrLinkExpired] (not retried: a presigned link that has expired stays
// expired), other 4xx are bad input, and 5xx, 429 and network failures are
// retried with exponential backoff and jitter, then reported as transient.
package httprange

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"

	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/readers"
)

// Sentinel errors. Each carries its exit code.
var (
	// ErrLinkExpired is returned for 403, 404 and 410 answers.
	ErrLinkExpired = exitcode.NewSentinel("httprange: download link refused (it may have expired; ask Benchling for a new export)", exitcode.BadInput)
	// ErrTooLarge is returned when a spooled body exceeds Options.MaxSpool.
	ErrTooLarge = exitcode.NewSentinel("httprange: download larger than the size limit", exitcode.BadInput)
	// ErrChanged is returned when the file changes between requests (its ETag or size differs).
	ErrChanged = exitcode.NewSentinel("httprange: the file changed during the download", exitcode.Transient)
	// ErrUnavailable is returned when the retries for a request are used up.
	ErrUnavailable = exitcode.NewSentinel("httprange: download failed after retries", exitcode.Transient)
	// ErrRefused is returned for other 4xx answers.
	ErrRefused = exitcode.NewSentinel("httprange: download refused", exitcode.BadInput)
	// ErrEmpty is returned when the file is empty.
	ErrEmpty = exitcode.NewSentinel("httprange: the download is empty", exitcode.BadInput)
)

// Options tune a Source. The zero value means the defaults.
type Options struct {
	// Client sends the requests. Default: a client with sensible timeouts
	// that does not follow redirects to another host with headers.
	Client *http.Client
	// TailSize is how many bytes Open fetches from the end of the file with
	// its first request, where a ZIP keeps its central directory. Default 1 MiB.
	TailSize int64
	// BlockSize is the smallest read ReadAt issues on a cache miss; the last
	// two blocks are kept. Default 1 MiB.
	BlockSize int64
	// MaxSpool caps the temporary file used when the server ignores Range.
	// Zero means no spooling: such a server is an error.
	MaxSpool int64
	// TempDir holds the spool file. Default os.TempDir().
	TempDir string
	// MaxTries is the number of attempts for one request (default 6), and the
	// number of resumes a stream may make without progress.
	MaxTries uint
	// IdleTimeout cancels a request whose answer or body stalls this long
	// without a byte arriving; the stream then resumes with a new request
	// (default 60 s).
	IdleTimeout time.Duration
	// InitialBackoff and MaxBackoff bound the delay between attempts
	// (defaults 200 ms and 10 s). Delays are randomised (±50%).
	InitialBackoff, MaxBackoff time.Duration
	// Logger receives one line per retry. Default: discard.
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 60 * time.Second
	}
	if o.Client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 32
		t.ResponseHeaderTimeout = o.IdleTimeout
		o.Client = &http.Client{Transport: t}
	}
	if o.TailSize <= 0 {
		o.TailSize = 1 << 20
	}
	if o.BlockSize <= 0 {
		o.BlockSize = 1 << 20
	}
	if o.MaxTries == 0 {
		o.MaxTries = 6
	}
	if o.InitialBackoff <= 0 {
		o.InitialBackoff = 200 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Stats counts the traffic of a Source. Safe for concurrent use.
type Stats struct {
	Requests     int64 // HTTP requests sent, retries included
	BytesFetched int64 // body bytes received
	Retries      int64 // requests or streams retried
	Spooled      bool  // the server ignored Range and the body was spooled
}

// Source reads one remote file. ReadAt and Stream are safe for concurrent
// use. Close it to remove the spool file, if any.
type Source struct {
	ctx  context.Context
	url  string
	opts Options
	size int64
	etag string

	file *os.File // local file or spool; nil when reading over HTTP
	temp bool     // file is a spool to remove on Close

	mu     sync.Mutex
	blocks []block // most recent last; the tail block stays first

	requests, fetched, retries atomic.Int64
}

type block struct {
	off  int64
	data []byte
}

// Open prepares to read the file at rawURL: an http(s) URL, a file:// URL or
// a local path. For http(s) it sends one request for the last TailSize bytes
// to learn the size and whether Range works. ctx bounds every later request
// made through ReadAt; Stream takes its own context.
func Open(ctx context.Context, rawURL string, opts Options) (*Source, error) {
	opts.setDefaults()
	s := &Source{ctx: ctx, url: rawURL, opts: opts}
	u, err := url.Parse(rawURL)
	switch {
	case err == nil && (u.Scheme == "http" || u.Scheme == "https"):
		if err := s.openHTTP(ctx); err != nil {
			s.Close()
			return nil, err
		}
		return s, nil
	case err == nil && u.Scheme == "file":
		return openFile(ctx, u.Path, opts)
	case err == nil && u.Scheme != "" && len(u.Scheme) > 1:
		return nil, exitcode.Wrap(fmt.Errorf("httprange: unsupported URL scheme %q (want https, http, file or a path)", u.Scheme), exitcode.Usage)
	default:
		return openFile(ctx, rawURL, opts)
	}
}

func openFile(ctx context.Context, path string, opts Options) (*Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, exitcode.Wrap(fmt.Errorf("httprange: open %s: %w", path, err), exitcode.Usage)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("httprange: stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, exitcode.Wrap(fmt.Errorf("httprange: %s is not a regular file", path), exitcode.Usage)
	}
	return &Source{ctx: ctx, url: path, opts: opts, size: fi.Size(), file: f}, nil
}

// Size is the file's length in bytes.
func (s *Source) Size() int64 { return s.size }

// Stats returns the traffic counters so far.
func (s *Source) Stats() Stats {
	return Stats{
		Requests:     s.requests.Load(),
		BytesFetched: s.fetched.Load(),
		Retries:      s.retries.Load(),
		Spooled:      s.temp,
	}
}

// Close releases the spool file. It is safe to call more than once.
func (s *Source) Close() error {
	s.mu.Lock()
	f, temp := s.file, s.temp
	s.file, s.blocks = nil, nil
	s.mu.Unlock()
	if f == nil {
		return nil
	}
	err := f.Close()
	if temp {
		if rerr := os.Remove(f.Name()); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

// openHTTP fetches the tail and learns the size.
func (s *Source) openHTTP(ctx context.Context) error {
	// The idle watchdog ends this request if its body stalls (the spool
	// path reads a whole archive through it).
	reqCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	watchdog := time.AfterFunc(s.opts.IdleTimeout, cancel)
	defer watchdog.Stop()
	err := s.openTail(reqCtx, watchdog)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: %w", ErrUnavailable, errStalled)
	}
	return err
}

func (s *Source) openTail(ctx context.Context, watchdog *time.Timer) error {
	resp, err := s.get(ctx, fmt.Sprintf("bytes=-%d", s.opts.TailSize))
	if err != nil {
		if errors.Is(err, errUnsatisfiable) {
			return ErrEmpty
		}
		return err
	}
	defer resp.Body.Close()
	resp.Body = &idleReader{ReadCloser: resp.Body, watchdog: watchdog, idle: s.opts.IdleTimeout}
	s.etag = resp.Header.Get("ETag")
	if resp.StatusCode == http.StatusOK {
		if resp.ContentLength == 0 {
			return ErrEmpty
		}
		return s.spool(resp)
	}
	cr := resp.Header.Get("Content-Range")
	if strings.HasSuffix(cr, "/0") {
		return ErrEmpty
	}
	start, end, total, err := parseContentRange(cr)
	if err != nil {
		return fmt.Errorf("httprange: %w", err)
	}
	if total == 0 {
		return ErrEmpty
	}
	s.size = total
	data := make([]byte, end-start+1)
	n, err := io.ReadFull(resp.Body, data)
	s.fetched.Add(int64(n))
	if err != nil {
		// A cut tail read is rare and small: let ReadAt fetch it again.
		return nil
	}
	s.blocks = []block{{off: start, data: data}}
	return nil
}

// spool copies a 200 response body to a temporary file.
func (s *Source) spool(resp *http.Response) error {
	if s.opts.MaxSpool <= 0 {
		return exitcode.Wrap(errors.New("httprange: the server ignores Range requests and spooling is off"), exitcode.Usage)
	}
	if resp.ContentLength > s.opts.MaxSpool {
		return fmt.Errorf("%w: the server announces %d bytes, the limit is %d", ErrTooLarge, resp.ContentLength, s.opts.MaxSpool)
	}
	s.opts.Logger.Info("server ignores Range requests; spooling the download to a temporary file", "url", redact(s.url))
	f, err := os.CreateTemp(s.opts.TempDir, "export-*.zip")
	if err != nil {
		return exitcode.Wrap(fmt.Errorf("httprange: create spool file: %w", err), exitcode.Internal)
	}
	s.file, s.temp = f, true
	n, err := io.Copy(f, io.LimitReader(resp.Body, s.opts.MaxSpool+1))
	s.fetched.Add(n)
	if err != nil {
		return exitcode.Wrap(fmt.Errorf("httprange: spool download after %d bytes: %w", n, err), exitcode.Transient)
	}
	if n > s.opts.MaxSpool {
		return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, s.opts.MaxSpool)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return exitcode.Wrap(fmt.Errorf("httprange: spool download: got %d of %d bytes: %w", n, resp.ContentLength, io.ErrUnexpectedEOF), exitcode.Transient)
	}
	if n == 0 {
		return ErrEmpty
	}
	s.size = n
	return nil
}

// ReadAt implements io.ReaderAt. Misses fetch at least BlockSize bytes.
func (s *Source) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("httprange: negative offset")
	}
	if off >= s.size {
		return 0, io.EOF
	}
	want := p
	if rest := s.size - off; int64(len(want)) > rest {
		want = want[:rest]
	}
	if s.file != nil {
		n, err := s.file.ReadAt(want, off)
		if err == nil && len(want) < len(p) {
			err = io.EOF
		}
		return n, err
	}
	n := 0
	for n < len(want) {
		m, err := s.readCached(want[n:], off+int64(n))
		n += m
		if err != nil {
			return n, err
		}
	}
	if len(want) < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readCached copies from a cached block holding off, fetching one if needed.
func (s *Source) readCached(p []byte, off int64) (int, error) {
	s.mu.Lock()
	for _, b := range s.blocks {
		if off >= b.off && off < b.off+int64(len(b.data)) {
			n := copy(p, b.data[off-b.off:])
			s.mu.Unlock()
			return n, nil
		}
	}
	s.mu.Unlock()
	n := max(int64(len(p)), s.opts.BlockSize)
	n = min(n, s.size-off)
	data := make([]byte, n)
	r := s.Stream(s.ctx, off, n)
	_, err := io.ReadFull(r, data)
	r.Close()
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	if len(s.blocks) >= 3 { // keep the tail (first) and the two newest
		s.blocks = append(s.blocks[:1], s.blocks[2:]...)
	}
	s.blocks = append(s.blocks, block{off: off, data: data})
	s.mu.Unlock()
	return copy(p, data), nil
}

// Stream returns a reader of the n bytes at off. It resumes with a new
// Range request after a cut connection or a 5xx, as long as each attempt
// makes progress or the retry budget lasts. Close it when done.
func (s *Source) Stream(ctx context.Context, off, n int64) io.ReadCloser {
	if off < 0 || n < 0 || off+n > s.size {
		return &errReader{err: fmt.Errorf("httprange: range %d+%d outside the file's %d bytes", off, n, s.size)}
	}
	if s.file != nil {
		return io.NopCloser(readers.WithContext(ctx, io.NewSectionReader(s.file, off, n)))
	}
	s.mu.Lock()
	for _, b := range s.blocks {
		if off >= b.off && off+n <= b.off+int64(len(b.data)) {
			data := b.data[off-b.off : off-b.off+n]
			s.mu.Unlock()
			return io.NopCloser(readers.WithContext(ctx, bytes.NewReader(data)))
		}
	}
	s.mu.Unlock()
	return &stream{src: s, ctx: ctx, off: off, end: off + n}
}

// stream is a resumable reader of [off, end).
type stream struct {
	src      *Source
	ctx      context.Context
	off, end int64
	body     io.ReadCloser
	cancel   context.CancelFunc // cancels the current request
	watchdog *time.Timer        // fires cancel after IdleTimeout without data
	stalls   uint               // resumes since the last progress
	resumes  uint               // resumes in all
	bo       *backoff.ExponentialBackOff
}

func (r *stream) Read(p []byte) (int, error) {
	if r.off >= r.end {
		return 0, io.EOF
	}
	if int64(len(p)) > r.end-r.off {
		p = p[:r.end-r.off]
	}
	for {
		if err := r.ctx.Err(); err != nil {
			return 0, err
		}
		if r.body == nil {
			if err := r.open(); err != nil {
				if !errors.Is(err, errStalled) {
					return 0, err
				}
				if err := r.stall(err); err != nil {
					return 0, err
				}
				continue
			}
		}
		n, err := r.body.Read(p)
		r.off += int64(n)
		r.src.fetched.Add(int64(n))
		if n > 0 {
			r.watchdog.Reset(r.src.opts.IdleTimeout)
			r.stalls = 0
			if err == io.EOF && r.off < r.end {
				err = nil
				r.closeBody()
			}
			if err == io.EOF {
				err = nil
			}
			if err != nil {
				// Keep the bytes; the next Read resumes after them.
				r.dropBody(err)
				r.resumes++
				err = nil
			}
			return n, err
		}
		if err == nil {
			continue
		}
		if r.ctx.Err() != nil {
			return 0, r.ctx.Err()
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if errors.Is(err, context.Canceled) {
			err = errStalled
		}
		r.dropBody(err)
		if err := r.stall(err); err != nil {
			return 0, err
		}
	}
}

// idleReader restarts the idle watchdog whenever bytes arrive.
type idleReader struct {
	io.ReadCloser
	watchdog *time.Timer
	idle     time.Duration
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if n > 0 {
		r.watchdog.Reset(r.idle)
	}
	return n, err
}

// errStalled is the cause recorded when the idle watchdog ends a request.
var errStalled = errors.New("httprange: no data within the idle timeout")

// stall counts a failed attempt and waits before the next one, or gives up
// when the budget is spent.
func (r *stream) stall(cause error) error {
	r.stalls++
	r.resumes++
	if r.stalls >= r.src.opts.MaxTries || r.resumes >= 10*r.src.opts.MaxTries {
		return fmt.Errorf("%w: read bytes %d-%d: %w", ErrUnavailable, r.off, r.end-1, cause)
	}
	return r.wait()
}

func (r *stream) dropBody(err error) {
	r.closeBody()
	r.src.retries.Add(1)
	r.src.opts.Logger.Warn("download interrupted; resuming with a Range request", "offset", r.off, "error", err.Error())
}

func (r *stream) wait() error {
	if r.bo == nil {
		r.bo = r.src.newBackoff()
	}
	t := time.NewTimer(r.bo.NextBackOff())
	defer t.Stop()
	select {
	case <-r.ctx.Done():
		return r.ctx.Err()
	case <-t.C:
		return nil
	}
}

func (r *stream) open() error {
	ctx, cancel := context.WithCancel(r.ctx)
	r.cancel = cancel
	r.watchdog = time.AfterFunc(r.src.opts.IdleTimeout, cancel)
	resp, err := r.src.get(ctx, fmt.Sprintf("bytes=%d-%d", r.off, r.end-1))
	if err != nil {
		r.closeBody()
		if r.ctx.Err() == nil && errors.Is(err, context.Canceled) {
			return errStalled
		}
		return err
	}
	if resp.StatusCode != http.StatusPartialContent {
		resp.Body.Close()
		r.closeBody()
		return exitcode.Wrap(fmt.Errorf("httprange: the server answered %s to a Range request it honoured before", resp.Status), exitcode.Transient)
	}
	start, end, total, err := parseContentRange(resp.Header.Get("Content-Range"))
	if err != nil || start != r.off || end > r.end-1 {
		resp.Body.Close()
		r.closeBody()
		return exitcode.Wrap(fmt.Errorf("httprange: unexpected Content-Range %q for bytes %d-%d", resp.Header.Get("Content-Range"), r.off, r.end-1), exitcode.Transient)
	}
	if total != r.src.size || (r.src.etag != "" && resp.Header.Get("ETag") != "" && resp.Header.Get("ETag") != r.src.etag) {
		resp.Body.Close()
		r.closeBody()
		return fmt.Errorf("%w: size %d, ETag %s (was %d, %s)", ErrChanged, total, resp.Header.Get("ETag"), r.src.size, r.src.etag)
	}
	r.body = resp.Body
	return nil
}

func (r *stream) Close() error {
	r.closeBody()
	return nil
}

// closeBody ends the current request, if any.
func (r *stream) closeBody() {
	if r.watchdog != nil {
		r.watchdog.Stop()
		r.watchdog = nil
	}
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
	if r.cancel != nil {
		r.cancel()
		r.cancel = nil
	}
}

var errUnsatisfiable = errors.New("httprange: range not satisfiable")

// get sends one GET with a Range header, retrying 5xx, 429 and network
// errors with backoff. The caller closes the body of a 200 or 206 answer.
func (s *Source) get(ctx context.Context, rangeHeader string) (*http.Response, error) {
	op := func() (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
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

// errorDetail reads a short, single-line description from an error body:
// the Code and Message of an S3 XML error, or the start of the text.
func errorDetail(resp *http.Response) string {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	text := string(b)
	code, msg := xmlField(text, "Code"), xmlField(text, "Message")
	switch {
	case code != "" || msg != "":
		return fmt.Sprintf(" (%s: %s)", code, msg)
	case strings.TrimSpace(text) != "":
		t := strings.Join(strings.Fields(text), " ")
		if len(t) > 200 {
			t = t[:200] + "…"
		}
		return " (" + t + ")"
	}
	return ""
}

func xmlField(text, name string) string {
	i := strings.Index(text, "<"+name+">")
	if i < 0 {
		return ""
	}
	rest := text[i+len(name)+2:]
	j := strings.Index(rest, "</"+name+">")
	if j < 0 {
		return ""
	}
	return strings.TrimSpace(rest[:j])
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

type errReader struct{ err error }

func (r *errReader) Read([]byte) (int, error) { return 0, r.err }
func (r *errReader) Close() error             { return nil }

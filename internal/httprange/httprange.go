// Package httprange reads a remote file through HTTP Range requests: an
// [io.ReaderAt] for a ZIP's central directory, and resuming streams for
// its entries. See docs/export.md ("Pipeline", "Retries").
package httprange

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"benchling-webhook/internal/exitcode"
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
	// Refresh, if set, is asked for a new URL when the server refuses the
	// current one with 403 (an expired presigned link), at most
	// MaxRefreshes times in the Source's life (default 3); the request is
	// then sent again to the new URL. The file must stay the same: its
	// ETag and size are checked as on every request.
	Refresh func(ctx context.Context) (string, error)
	// MaxRefreshes bounds the calls to Refresh. Default 3.
	MaxRefreshes int
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
	if o.MaxRefreshes <= 0 {
		o.MaxRefreshes = 3
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
	opts Options

	size int64
	etag string

	urlMu     sync.Mutex // guards url and refreshes
	url       string     // read with currentURL: Refresh may replace it
	refreshes int

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

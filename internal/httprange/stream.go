package httprange

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v5"

	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/readers"
)

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

type errReader struct{ err error }

func (r *errReader) Read([]byte) (int, error) { return 0, r.err }
func (r *errReader) Close() error             { return nil }

package httprange

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"benchling-webhook/internal/exitcode"
)

// spool copies a 200 response body to a temporary file.
func (s *Source) spool(resp *http.Response) error {
	if s.opts.MaxSpool <= 0 {
		return exitcode.Wrap(errors.New("httprange: the server ignores Range requests and spooling is off"), exitcode.Usage)
	}
	if resp.ContentLength > s.opts.MaxSpool {
		return fmt.Errorf("%w: the server announces %d bytes, the limit is %d", ErrTooLarge, resp.ContentLength, s.opts.MaxSpool)
	}
	s.opts.Logger.Info("server ignores Range requests; spooling the download to a temporary file", "url", redact(s.currentURL()))
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

package httprange

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"benchling-webhook/internal/exitcode"
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

// errStalled is the cause recorded when the idle watchdog ends a request.
var errStalled = errors.New("httprange: no data within the idle timeout")

var errUnsatisfiable = errors.New("httprange: range not satisfiable")

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

package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"golang.org/x/term"

	"benchling-webhook/internal/extract"
)

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newLogger returns the diagnostic logger: JSON lines for CloudWatch, or
// readable text on a terminal ("auto"), or as format says.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid log level %q (debug, info, warn, error)", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "auto", "":
		if isTerminal(w) {
			return slog.New(slog.NewTextHandler(w, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("invalid log format %q (auto, json, text)", format)
}

// reporter prints progress: a log line every interval, and on a terminal a
// progress bar redrawn in place.
type reporter struct {
	p        *extract.Progress
	log      *slog.Logger
	w        io.Writer
	bar      bool
	interval time.Duration
	start    time.Time

	mu      sync.Mutex
	drawn   bool
	stopped chan struct{}
	done    chan struct{}
}

func startReporter(ctx context.Context, p *extract.Progress, log *slog.Logger, w io.Writer, interval time.Duration) *reporter {
	r := &reporter{p: p, log: log, w: w, bar: isTerminal(w), interval: interval, start: time.Now(),
		stopped: make(chan struct{}), done: make(chan struct{})}
	go r.loop(ctx)
	return r
}

func (r *reporter) loop(ctx context.Context) {
	defer close(r.done)
	tick := r.interval
	if r.bar {
		tick = 200 * time.Millisecond
	}
	if tick <= 0 {
		<-r.stopped
		return
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	lastLog := time.Now()
	for {
		select {
		case <-r.stopped:
			return
		case <-ctx.Done():
			return
		case now := <-t.C:
			if r.bar {
				r.draw()
			}
			if r.interval > 0 && now.Sub(lastLog) >= r.interval {
				lastLog = now
				if !r.bar {
					r.logLine()
				}
			}
		}
	}
}

func (r *reporter) logLine() {
	files, bytes := r.p.FilesDone.Load(), r.p.BytesDone.Load()
	el := time.Since(r.start).Seconds()
	r.log.Info("progress",
		"files", files, "filesTotal", r.p.FilesTotal.Load(),
		"bytes", bytes, "bytesTotal", r.p.BytesTotal.Load(),
		"mbPerSec", fmt.Sprintf("%.1f", float64(bytes)/1e6/max(el, 1e-3)))
}

func (r *reporter) draw() {
	r.mu.Lock()
	defer r.mu.Unlock()
	files, total := r.p.FilesDone.Load(), r.p.FilesTotal.Load()
	bytes, btotal := r.p.BytesDone.Load(), r.p.BytesTotal.Load()
	if btotal == 0 && total == 0 {
		return
	}
	frac := 0.0
	if btotal > 0 {
		frac = min(float64(bytes)/float64(btotal), 1)
	}
	const width = 30
	n := int(frac * width)
	bar := strings.Repeat("=", n) + strings.Repeat(" ", width-n)
	rate := float64(bytes) / max(time.Since(r.start).Seconds(), 1e-3)
	fmt.Fprintf(r.w, "\r[%s] %3.0f%% %d/%d files %s/%s %s/s ", bar, frac*100, files, total,
		humanize.IBytes(uint64(bytes)), humanize.IBytes(uint64(btotal)), humanize.IBytes(uint64(rate)))
	r.drawn = true
}

// stop ends the reporter, finishing the bar's line.
func (r *reporter) stop() {
	close(r.stopped)
	<-r.done
	if r.bar {
		r.draw()
		r.mu.Lock()
		if r.drawn {
			fmt.Fprintln(r.w)
		}
		r.mu.Unlock()
	}
}

// jsonLogs reports whether newLogger writes JSON for format on w: the
// metric line is for CloudWatch, never for a person at a terminal.
func jsonLogs(format string, w io.Writer) bool {
	switch format {
	case "json":
		return true
	case "auto", "":
		return !isTerminal(w)
	}
	return false
}

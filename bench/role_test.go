package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// envRole names the environment variable that turns the test binary into
// a baseline or ceiling process (see TestMain). Its arguments follow on
// the command line.
const envRole = "BW_BENCH_ROLE"

// Role names: the values of envRole.
const (
	roleBaseline = "baseline"
	roleCeiling  = "ceiling"
)

// roleResult is the last stdout line of a baseline or ceiling process.
type roleResult struct {
	// Files and Bytes are what was uploaded (the last trial for ceiling).
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
	// DurationMs is the timed part: for baseline download plus uploads;
	// for ceiling the fastest trial's uploads, without the loading.
	DurationMs float64 `json:"durationMs"`
	// DownloadMs is the baseline's download of the whole ZIP.
	DownloadMs float64 `json:"downloadMs,omitempty"`
	// LoadMs is the ceiling's untimed loading and decompression.
	LoadMs float64 `json:"loadMs,omitempty"`
	// Trials are the ceiling's upload runs, one per setting.
	Trials []trial `json:"trials,omitempty"`
	// Best is the fastest trial's setting.
	Best string `json:"best,omitempty"`
	// Failed counts entries whose upload failed (baseline).
	Failed int `json:"failed,omitempty"`
	// Error is set when the process failed.
	Error string `json:"error,omitempty"`
}

// trial is one timed ceiling upload of every entry.
type trial struct {
	Setting    string  `json:"setting"` // "<files>x<parts>"
	DurationMs float64 `json:"durationMs"`
}

// runRole runs the baseline or ceiling process and returns its exit code.
// It prints a roleResult as its last stdout line, also on failure, and the
// error on stderr.
func runRole(role string, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var (
		res roleResult
		err error
	)
	switch role {
	case roleBaseline:
		res, err = runBaseline(ctx, args)
	case roleCeiling:
		res, err = runCeiling(ctx, args)
	default:
		err = fmt.Errorf("unknown %s %q (want %s or %s)", envRole, role, roleBaseline, roleCeiling)
	}
	code := 0
	if err != nil {
		res.Error = err.Error()
		fmt.Fprintf(os.Stderr, "bench %s: %v\n", role, err)
		code = 1
	}
	line, merr := json.Marshal(res)
	if merr != nil {
		fmt.Fprintf(os.Stderr, "bench %s: encode result: %v\n", role, merr)
		return 1
	}
	fmt.Println(string(line))
	return code
}

// ms converts a duration to fractional milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

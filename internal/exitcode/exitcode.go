// Package exitcode defines the process exit codes and resolves an error
// to its code; internal/awserr classifies the errors of AWS calls
// (docs/architecture.md). The table, also in the README:
//
//	0   OK          the job did what it was asked
//	1   Internal    an unexpected error: a bug, or a case nobody classified
//	2   Usage       bad flags, missing or invalid configuration (S3 bucket missing, access denied)
//	3   BadInput    the input is wrong and a retry cannot help: not a ZIP, unsafe entry
//	                names, checksum mismatch, limits exceeded, an expired download link
//	4   Transient   a retry may help: network errors, 5xx and throttling after the
//	                built-in retries, a download cut too often
//	5   WorkflowRejected  the bucket's Quilt workflow would refuse the package: a workflow
//	                required but none configured, an unknown workflow, metadata that
//	                fails the workflow's schema (internal/workflow)
//	6   ExportFailed   Benchling's export task ended FAILED (job export --export-task-id)
//	7   ExportTimeout  Benchling's export did not finish within the wait's bound
//	130 / 143       interrupted by SIGINT / SIGTERM (128 + signal number)
//
// An error carries its code through a [Coder] in its chain ([Wrap],
// [NewSentinel]); [Resolve] maps any error to its code.
package exitcode

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// Exit codes. See the package documentation for their meaning.
const (
	OK        = 0
	Internal  = 1
	Usage     = 2
	BadInput  = 3
	Transient = 4
	// WorkflowRejected: the bucket's Quilt workflow would refuse the
	// package (docs/deploy.md, "Quilt workflows"); never retried.
	WorkflowRejected = 5
	// ExportFailed: Benchling reported the export task FAILED; running the
	// job again reads the same task and fails the same way.
	ExportFailed = 6
	// ExportTimeout: the export task was still running when job export's
	// wait for it ran out (--export-wait).
	ExportTimeout = 7
)

// Coder is implemented by errors that know which exit code they mean.
type Coder interface {
	error
	ExitCode() int
}

// Interrupted is the cancellation cause recorded when a signal stops the job.
// Its exit code is 128 plus the signal number, as shells report it.
type Interrupted struct {
	Signal os.Signal
}

func (e Interrupted) Error() string { return fmt.Sprintf("interrupted by %v", e.Signal) }

// ExitCode returns 128 + the signal number (130 for SIGINT, 143 for SIGTERM).
func (e Interrupted) ExitCode() int {
	if s, ok := e.Signal.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 128 + int(syscall.SIGTERM)
}

var _ Coder = Interrupted{}

// codedError wraps an error with an explicit exit code.
type codedError struct {
	err  error
	code int
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }
func (e *codedError) ExitCode() int { return e.code }

var _ Coder = (*codedError)(nil)

// Wrap attaches code to err. It returns nil when err is nil. The outermost
// code wins when several are attached, so a caller can reclassify.
func Wrap(err error, code int) error {
	if err == nil {
		return nil
	}
	return &codedError{err: err, code: code}
}

// Sentinel is an error value with a fixed exit code, for package-level
// sentinel errors such as extract.ErrChecksum. Compare with errors.Is.
type Sentinel struct {
	msg  string
	code int
}

// NewSentinel returns a sentinel error with message msg and exit code code.
func NewSentinel(msg string, code int) *Sentinel { return &Sentinel{msg: msg, code: code} }

func (s *Sentinel) Error() string { return s.msg }

// ExitCode returns the sentinel's code.
func (s *Sentinel) ExitCode() int { return s.code }

var _ Coder = (*Sentinel)(nil)

// Resolve maps err to an exit code: 0 for nil, the code of the outermost
// [Coder] in the chain, and [Internal] for anything unclassified.
func Resolve(err error) int {
	if err == nil {
		return OK
	}
	var c Coder
	if errors.As(err, &c) {
		return c.ExitCode()
	}
	if diskFull(err) {
		return Usage
	}
	return Internal
}

// diskFull reports a full, over-quota or read-only file system (a local
// folder, the download's spool file): the environment's fault, which a
// retry on the same disk cannot mend, so [Usage] rather than [Internal].
func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EROFS)
}

// Name returns a short name for code, as used in logs and in the result JSON.
func Name(code int) string {
	switch code {
	case OK:
		return "ok"
	case Usage:
		return "usage"
	case BadInput:
		return "bad-input"
	case Transient:
		return "transient"
	case Internal:
		return "internal"
	case WorkflowRejected:
		return "workflow-rejected"
	case ExportFailed:
		return "export-failed"
	case ExportTimeout:
		return "export-timeout"
	}
	if code > 128 {
		return "interrupted"
	}
	return "unknown"
}

//go:build linux

package s3local

import "syscall"

// procAttr asks the kernel to send SIGTERM to versitygw if the process that
// started it dies (for example a test binary killed by -timeout), so no
// server outlives its tests.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

// ChildProcAttr is the same for any helper process a local stack starts
// (the Step Functions engine, job subprocesses).
func ChildProcAttr() *syscall.SysProcAttr { return procAttr() }

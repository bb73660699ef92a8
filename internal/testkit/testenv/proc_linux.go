//go:build linux

package testenv

import "syscall"

// ChildProcAttr asks the kernel to send SIGTERM to a helper process
// (versitygw, node, the job) when the process that started it dies, for
// example a test binary killed by -timeout, so none outlives its tests.
func ChildProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

//go:build !linux

package testenv

import "syscall"

// ChildProcAttr returns nil: only Linux has a parent-death signal.
func ChildProcAttr() *syscall.SysProcAttr { return nil }

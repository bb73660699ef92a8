//go:build !linux

package s3local

import "syscall"

// procAttr returns nil: only Linux has a parent-death signal.
func procAttr() *syscall.SysProcAttr { return nil }

// ChildProcAttr returns nil: only Linux has a parent-death signal.
func ChildProcAttr() *syscall.SysProcAttr { return nil }

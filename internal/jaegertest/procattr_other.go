//go:build !linux

package jaegertest

import "syscall"

// sysProcAttr is nil: only Linux can tie Jaeger's life to the test binary's.
func sysProcAttr() *syscall.SysProcAttr { return nil }

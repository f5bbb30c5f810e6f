package jaegertest

import "syscall"

// sysProcAttr makes the kernel kill Jaeger if the test binary dies without
// running its cleanups (a panic, go test's -timeout, a SIGKILL).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

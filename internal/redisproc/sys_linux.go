package redisproc

import "syscall"

// sysProcAttr asks the kernel to kill redis-server when the process that started it
// dies, so a crashed or timed-out test binary leaves no redis-server behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

package main

import "syscall"

// childAttr makes the kernel kill a child process when the driver dies, so
// that an interrupted benchmark leaves no fake upstream or proxy behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

//go:build !linux

package main

import "syscall"

// childAttr returns nil: the benchmark needs Linux (/proc), and main says so.
func childAttr() *syscall.SysProcAttr { return nil }

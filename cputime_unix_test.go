//go:build unix

package gateway

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time the process has used so far (all
// threads, user and system), or 0 where it cannot be read.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

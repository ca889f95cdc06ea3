//go:build !unix

package sqlite

import "time"

// cpuTime returns 0: the process's CPU time is only read on unix.
func cpuTime() time.Duration { return 0 }

// Package benchcpu measures the CPU time of benchmarks: the process's time
// on a CPU (all threads, user and system, the garbage collector included),
// a number that other processes competing for the CPU disturb less than
// wall time.
package benchcpu

import (
	"testing"
	"time"
)

// Report starts measuring the process's CPU time and returns the function
// that reports it per op as "cpu-ns/op"; call it when the timed loop ends.
// In-process upstreams and clients count too. Where the CPU time cannot be
// read it reports nothing.
func Report(b *testing.B) func() {
	start := Process()
	return func() {
		if used := Process() - start; used > 0 && b.N > 0 {
			b.ReportMetric(float64(used.Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
}

// Process returns the CPU time the process has used so far, or 0 where it
// cannot be read.
func Process() time.Duration { return processCPU() }

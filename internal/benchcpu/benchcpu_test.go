package benchcpu

import (
	"runtime"
	"testing"
)

func TestProcessAdvances(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("CPU time is read on Unix only")
	}
	start := Process()
	x := 0
	for i := range 50_000_000 {
		x += i % 7
	}
	if Process() <= start {
		t.Fatalf("CPU time did not advance (%d)", x)
	}
}

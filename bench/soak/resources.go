package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"time"
)

// resources is a snapshot of the process's resources.
type resources struct {
	goroutines int
	fds        map[string]string // descriptor -> what it refers to; nil where /proc is missing
	rss, hwm   int64             // resident set size and its peak (VmHWM), bytes; 0 where /proc is missing
}

// measure takes a snapshot after a garbage collection.
func measure() resources {
	runtime.GC()
	r := resources{goroutines: runtime.NumGoroutine()}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		r.fds = make(map[string]string, len(ents))
		for _, e := range ents {
			target, err := os.Readlink("/proc/self/fd/" + e.Name())
			if err != nil {
				continue // the descriptor ReadDir itself used, now closed
			}
			r.fds[e.Name()] = target
		}
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if !ok {
				continue
			}
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				continue
			}
			switch k {
			case "VmRSS":
				r.rss = kb << 10
			case "VmHWM":
				r.hwm = kb << 10
			}
		}
	}
	return r
}

// warmUp creates the process-lifetime resources the run would create
// anyway, so that the starting snapshot includes them: the network
// poller's descriptors.
func warmUp() {
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		_ = ln.Close()
	}
	debug.FreeOSMemory()
}

// settle waits up to d for goroutines and descriptors to come back to the
// start level, then returns memory to the OS and takes the final snapshot.
func settle(start resources, goroutineSlack int, d time.Duration) resources {
	deadline := time.Now().Add(d)
	for {
		now := measure()
		if now.goroutines <= start.goroutines+goroutineSlack && len(now.fds) <= len(start.fds) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	debug.FreeOSMemory()
	return measure()
}

// checkResources records a violation for every resource not back to its
// start level.
func checkResources(t *tally, start, end resources, goroutineSlack, rssSlackMiB int) {
	if end.goroutines > start.goroutines+goroutineSlack {
		var b bytes.Buffer
		_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
		t.violation("goroutines not back to the start level",
			fmt.Sprintf("%d goroutines at the start, %d after the run (allowed %d); goroutine dump:\n%s",
				start.goroutines, end.goroutines, start.goroutines+goroutineSlack, excerpt(b.Bytes(), 20000)))
	}
	if start.fds != nil && len(end.fds) > len(start.fds) {
		var extra []string
		for fd, target := range end.fds {
			if start.fds[fd] != target {
				extra = append(extra, fd+" -> "+target)
			}
		}
		sort.Strings(extra)
		t.violation("file descriptors not back to the start level",
			fmt.Sprintf("%d open at the start, %d after the run; new: %s", len(start.fds), len(end.fds), strings.Join(extra, ", ")))
	}
	if start.rss > 0 && end.rss > start.rss+int64(rssSlackMiB)<<20 {
		t.violation("RSS not back to the start level",
			fmt.Sprintf("RSS %s at the start, %s after the run and debug.FreeOSMemory (allowed +%d MiB; peak %s)",
				mib(start.rss), mib(end.rss), rssSlackMiB, mib(end.hwm)))
	}
}

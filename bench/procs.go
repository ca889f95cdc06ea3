package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// userHZ is the unit of utime and stime in /proc/<pid>/stat (USER_HZ, the
// clock ticks per second that sysconf(_SC_CLK_TCK) reports; 100 on every
// Linux architecture Go supports).
const userHZ = 100

// child is a process started by the driver: the fake upstream or a proxy.
type child struct {
	name    string
	cmd     *exec.Cmd
	url     string        // base URL it printed on stdout
	logPath string        // its stderr
	exited  chan struct{} // closed when it has exited
	waitErr error         // valid once exited is closed
}

// startChild starts bin with args (under taskset -c cpus when taskset is
// not ""), waits for its "LISTEN <url>" line on stdout and returns it. The
// child's stderr goes to dir/<name>.log.
func startChild(ctx context.Context, dir, name, taskset, cpus, bin string, args ...string) (*child, error) {
	argv := append([]string{bin}, args...)
	if taskset != "" {
		argv = append([]string{taskset, "-c", cpus}, argv...)
	}
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = w, logf
	cmd.SysProcAttr = childAttr()
	err = cmd.Start()
	w.Close()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()

	lines := make(chan string, 1)
	go func() {
		// Read the first line only; the children print nothing else on
		// stdout, and closing r (deferred above) is harmless to them.
		line, _ := bufio.NewReader(r).ReadString('\n')
		lines <- strings.TrimSpace(line)
	}()
	timer := time.NewTimer(20 * time.Second)
	defer timer.Stop()
	select {
	case line := <-lines:
		u, ok := strings.CutPrefix(line, "LISTEN ")
		if !ok {
			c.stop()
			return nil, fmt.Errorf("%s did not start (stdout %q): %s", name, line, c.logTail(10))
		}
		c.url = u
		return c, nil
	case <-timer.C:
		c.stop()
		return nil, fmt.Errorf("%s did not print its address within 20s: %s", name, c.logTail(10))
	case <-ctx.Done():
		c.stop()
		return nil, ctx.Err()
	}
}

// pid returns the child's process ID. Under taskset it is still the
// child's: taskset execs the program in place.
func (c *child) pid() int { return c.cmd.Process.Pid }

// stop sends SIGTERM, waits up to 5 s, then kills the process.
func (c *child) stop() {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// alive reports whether the child is still running.
func (c *child) alive() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// logTail returns the last n lines of the child's stderr, or a note that it
// is empty.
func (c *child) logTail(n int) string {
	data, err := os.ReadFile(c.logPath)
	if err != nil || len(bytes.TrimSpace(data)) == 0 {
		return c.name + " wrote nothing on stderr"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return c.name + " stderr:\n  " + strings.Join(lines, "\n  ")
}

// logLines returns the number of lines the child wrote on stderr.
func (c *child) logLines() int {
	data, err := os.ReadFile(c.logPath)
	if err != nil {
		return 0
	}
	return bytes.Count(data, []byte("\n"))
}

// goTool returns the go command to build with.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// moduleRoot returns the directory of the llmgate module that contains the
// working directory.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, goTool(), "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run the benchmark from inside the llmgate module (go run ./bench)")
	}
	root := filepath.Dir(gomod)
	if _, err := os.Stat(filepath.Join(root, "bench", "cmd", "proxy")); err != nil {
		return "", fmt.Errorf("%s has no bench/cmd/proxy: run the benchmark from inside the llmgate module", root)
	}
	return root, nil
}

// buildBinaries builds the fake upstream and the proxy into dir.
func buildBinaries(ctx context.Context, root, dir string) (upstream, proxy string, err error) {
	cmd := exec.CommandContext(ctx, goTool(), "build", "-o", dir+string(os.PathSeparator), "./bench/cmd/upstream", "./bench/cmd/proxy")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return filepath.Join(dir, "upstream"), filepath.Join(dir, "proxy"), nil
}

// gitDescribe returns the short commit of root, with "+dirty" when the work
// tree has changes, or "" when git cannot tell.
func gitDescribe(ctx context.Context, root string) string {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	rev := strings.TrimSpace(string(out))
	if st, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		rev += "+dirty"
	}
	return rev
}

// cpuTime returns the CPU time a process has used: the sum over its
// threads of their time on a CPU in nanoseconds, from
// /proc/<pid>/task/<tid>/schedstat, or, where the kernel has no schedstat,
// utime + stime in 10 ms ticks from /proc/<pid>/stat. (A thread that exits
// takes its schedstat time with it; Go programs keep their threads.)
func cpuTime(pid int) (time.Duration, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	tasks, err := os.ReadDir(dir + "/task")
	if err == nil {
		var sum time.Duration
		for _, t := range tasks {
			data, err := os.ReadFile(dir + "/task/" + t.Name() + "/schedstat")
			if errors.Is(err, os.ErrNotExist) {
				continue // the thread exited meanwhile
			}
			if err != nil {
				sum = -1
				break
			}
			d, err := parseSchedstat(data)
			if err != nil {
				return 0, err
			}
			sum += d
		}
		if sum >= 0 {
			return sum, nil
		}
	}
	data, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStatCPU(data)
}

// parseSchedstat reads the time on a CPU (the first field, nanoseconds) of
// a /proc/<pid>/task/<tid>/schedstat line.
func parseSchedstat(data []byte) (time.Duration, error) {
	f := strings.Fields(string(data))
	if len(f) < 1 {
		return 0, errors.New("/proc schedstat: empty")
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc schedstat: %w", err)
	}
	return time.Duration(ns), nil
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a
// /proc/<pid>/stat line. The command name (field 2) may contain spaces and
// parentheses, so fields are counted from the last ')'.
func parseStatCPU(data []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no command name")
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("/proc stat: too few fields")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc stat: %w", err)
	}
	return time.Duration(utime+stime) * time.Second / userHZ, nil
}

// machineBusy returns the CPU time all CPUs of the machine have spent
// busy (everything but idle and iowait; steal included, as it is time our
// processes could not run), from the first line of /proc/stat.
func machineBusy() (time.Duration, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseMachineBusy(data)
}

// parseMachineBusy reads the "cpu" line of /proc/stat.
func parseMachineBusy(data []byte) (time.Duration, error) {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0, errors.New("/proc/stat: no cpu line")
	}
	var busy int64
	for i, v := range f[1:] {
		if i >= 8 { // guest and guest_nice are already counted in user and nice
			break
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return time.Duration(busy) * time.Second / userHZ, nil
}

// memory returns the resident set size (VmRSS) and its peak (VmHWM) of a
// process, in bytes, from /proc/<pid>/status.
func memory(pid int) (rss, peak int64, err error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	return parseStatusMemory(data)
}

// parseStatusMemory reads VmRSS and VmHWM from /proc/<pid>/status.
func parseStatusMemory(data []byte) (rss, peak int64, err error) {
	var haveRSS, havePeak bool
	for line := range strings.Lines(string(data)) {
		name, value, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(value)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("/proc status: bad %s line %q", name, strings.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc status: %s: %w", name, err)
		}
		if name == "VmRSS" {
			rss, haveRSS = kb<<10, true
		} else {
			peak, havePeak = kb<<10, true
		}
	}
	if !haveRSS || !havePeak {
		return 0, 0, errors.New("/proc status: no VmRSS or VmHWM")
	}
	return rss, peak, nil
}

// resetPeakRSS resets a process's VmHWM to its current RSS (Linux ≥ 4.0),
// so that the next reading reports the peak since now.
func resetPeakRSS(pid int) error {
	return os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0)
}

// cpuModel returns the processor model name from /proc/cpuinfo, or "".
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(data)) {
		if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return ""
}

// loadAverage returns the 1-minute load average from /proc/loadavg, or "".
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	if f := strings.Fields(string(data)); len(f) > 0 {
		return f[0]
	}
	return ""
}

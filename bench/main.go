// Command bench is the load benchmark of llmgate. It measures, in one run,
// three paths to a fake OpenAI upstream:
//
//  1. calling the upstream directly,
//  2. through a plain httputil.ReverseProxy (the floor of any Go proxy),
//  3. through llmgate (gateway.New with one "openai" provider),
//
// for JSON chat completions and streamed ones at a fixed number of
// concurrent clients (latency percentiles, throughput, time to the first
// stream event, proxy CPU time per request), and the peak RSS of each proxy
// while it holds many long streams open. It prints a Markdown report with
// the ratios llmgate ÷ ReverseProxy and the latency each proxy adds over the
// direct path.
//
// Usage, from the module root:
//
//	go run ./bench [-duration 5s] [-rounds 5] [-concurrency 32] [-streams 256] [-quick] [-out FILE]
//
// The driver builds bench/cmd/upstream and bench/cmd/proxy into a temporary
// directory and runs the fake upstream and each proxy as its own process,
// so that CPU time (/proc/<pid>/stat) and peak RSS (/proc/<pid>/status) are
// attributable. With taskset available it pins the proxies to -proxy-cpus
// and the upstream and itself to -load-cpus. Every response is checked; a
// run with failed requests says so at the top and bottom of the report and
// exits with status 1. See bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// pinnedEnv marks a driver that has re-executed itself under taskset.
const pinnedEnv = "LLMGATE_BENCH_PINNED"

// config is the benchmark's configuration, from the command line.
type config struct {
	duration    time.Duration // measured window per path, scenario and round
	slice       time.Duration // the window is measured in slices of about this length
	warmup      time.Duration // unmeasured load before each window
	rounds      int
	concurrency int           // clients in the JSON and streaming scenarios
	streams     int           // streams held open in the RSS scenario
	events      int           // content chunks per stream
	delay       time.Duration // between content chunks
	hold        time.Duration // length of a long stream
	holdEvents  int           // content chunks per long stream
	quick       bool
	out         string
	pin         bool
	liveBody    bool   // the plain proxy forwards request bodies live
	proxyCPUs   string // taskset CPU list of the proxies
	loadCPUs    string // taskset CPU list of the upstream and the driver
}

// singleDuration returns the measured window of the single-client
// scenario: half the others, as it only serves to show unloaded latency.
func (c config) singleDuration() time.Duration { return max(c.duration/2, 500*time.Millisecond) }

// holdDelay returns the pause between the chunks of a long stream.
func (c config) holdDelay() time.Duration {
	return c.hold / time.Duration(c.holdEvents-1)
}

// wantEvents returns the number of data events of a stream with n content
// chunks: the role chunk, n content chunks, the finish chunk, the usage
// chunk and [DONE].
func wantEvents(n int) int { return n + 4 }

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.DurationVar(&c.duration, "duration", 4*time.Second, "measured time per path, scenario and round (half of it for the single-client scenario)")
	fs.DurationVar(&c.slice, "slice", time.Second, "measure each window in slices of about this length, alternating between the paths")
	fs.DurationVar(&c.warmup, "warmup", 500*time.Millisecond, "unmeasured load before each measured window")
	fs.IntVar(&c.rounds, "rounds", 5, "rounds: each measures every path once per scenario; tables show medians")
	fs.IntVar(&c.concurrency, "concurrency", 32, "concurrent clients in the JSON and streaming scenarios")
	fs.IntVar(&c.streams, "streams", 256, "concurrent long streams for the peak RSS scenario")
	fs.IntVar(&c.events, "events", 20, "content chunks per stream")
	fs.DurationVar(&c.delay, "delay", 5*time.Millisecond, "pause between content chunks")
	fs.DurationVar(&c.hold, "hold", 2*time.Second, "length of each long stream")
	fs.IntVar(&c.holdEvents, "hold-events", 40, "content chunks per long stream")
	fs.BoolVar(&c.quick, "quick", false, "smoke test for CI: 1 round of ~1 s per scenario, low counts (explicit flags still win)")
	fs.StringVar(&c.out, "out", "", "also write the Markdown report to this file")
	fs.BoolVar(&c.liveBody, "plain-live-body", false, "let httputil.ReverseProxy forward request bodies as live streams (truncates some streams: golang/go#40747)")
	fs.BoolVar(&c.pin, "pin", true, "pin the processes to CPUs with taskset when it is available")
	fs.StringVar(&c.proxyCPUs, "proxy-cpus", "1", "taskset CPU list for the proxy under test")
	fs.StringVar(&c.loadCPUs, "load-cpus", "0", "taskset CPU list for the load generator and the fake upstream")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if c.quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		quick := map[string]func(){
			"duration":    func() { c.duration = time.Second },
			"warmup":      func() { c.warmup = 200 * time.Millisecond },
			"rounds":      func() { c.rounds = 1 },
			"concurrency": func() { c.concurrency = 8 },
			"streams":     func() { c.streams = 32 },
			"hold":        func() { c.hold = 500 * time.Millisecond },
			"hold-events": func() { c.holdEvents = 10 },
		}
		for name, apply := range quick {
			if !set[name] {
				apply()
			}
		}
	}
	var errs []error
	if c.duration <= 0 || c.slice <= 0 || c.warmup < 0 || c.hold <= 0 || c.delay < 0 {
		errs = append(errs, errors.New("-duration, -slice and -hold must be positive, -warmup and -delay not negative"))
	}
	if c.rounds < 1 || c.concurrency < 1 || c.streams < 1 || c.events < 1 {
		errs = append(errs, errors.New("-rounds, -concurrency, -streams and -events must be at least 1"))
	}
	if c.holdEvents < 2 {
		errs = append(errs, errors.New("-hold-events must be at least 2"))
	}
	return c, errors.Join(errs...)
}

func main() { os.Exit(realMain()) }

// realMain runs the benchmark and returns the exit status: 0, 1 when
// requests failed, 2 when the benchmark itself could not run.
func realMain() int {
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	if runtime.GOOS != "linux" {
		fmt.Fprintln(os.Stderr, "bench: needs Linux (/proc, taskset)")
		return 2
	}
	taskset, pinNote := pin(cfg)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, cfg, taskset, pinNote)
	if rep != nil {
		var out io.Writer = os.Stdout
		if cfg.out != "" {
			f, ferr := os.Create(cfg.out)
			if ferr != nil {
				fmt.Fprintln(os.Stderr, "bench:", ferr)
			} else {
				defer f.Close()
				out = io.MultiWriter(os.Stdout, f)
			}
		}
		fmt.Fprintln(os.Stderr)
		rep.render(out)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	if failed, total := rep.failures(); failed > 0 {
		fmt.Fprintf(os.Stderr, "bench: FAILED: %d of %d requests failed\n", failed, total)
		return 1
	}
	return 0
}

// pin decides how processes are pinned to CPUs. When taskset is usable and
// the driver is not pinned yet, it re-executes the driver under taskset
// -c cfg.loadCPUs (so that the Go runtime sizes GOMAXPROCS for those CPUs)
// and does not return. Otherwise it returns the taskset path to start the
// children with ("" for unpinned) and a sentence for the report.
func pin(cfg config) (taskset, note string) {
	if !cfg.pin {
		return "", "**Processes not pinned** (-pin=false): all share every CPU."
	}
	path, err := exec.LookPath("taskset")
	if err != nil {
		return "", "**Processes not pinned: taskset not found** (apt-get install util-linux): " +
			"all share every CPU, so throughput and latency mix the load generator's work with the proxy's; CPU per request is still attributable."
	}
	note = fmt.Sprintf("Proxy under test pinned to CPU %s, fake upstream and load generator to CPU %s (taskset).", cfg.proxyCPUs, cfg.loadCPUs)
	if os.Getenv(pinnedEnv) == "1" {
		return path, note
	}
	if runtime.NumCPU() < 2 {
		return "", "**Processes not pinned: fewer than 2 CPUs available**: all share one CPU."
	}
	for _, cpus := range []string{cfg.loadCPUs, cfg.proxyCPUs} {
		if out, err := exec.Command(path, "-c", cpus, "true").CombinedOutput(); err != nil {
			return "", fmt.Sprintf("**Processes not pinned: taskset -c %s fails** (%s): all share every CPU.", cpus, strings.TrimSpace(string(out)))
		}
	}
	exe, err := os.Executable()
	if err == nil {
		argv := append([]string{"taskset", "-c", cfg.loadCPUs, exe}, os.Args[1:]...)
		err = syscall.Exec(path, argv, append(os.Environ(), pinnedEnv+"=1"))
	}
	return "", fmt.Sprintf("**Processes not pinned: re-running under taskset failed** (%v).", err)
}

// target is one path under test.
type target struct {
	name string
	host string // host:port
	pid  int    // the proxy's process, 0 for the direct path
}

// hostOf returns the host:port of a child's base URL.
func hostOf(baseURL string) string { return strings.TrimPrefix(baseURL, "http://") }

// run builds and starts the processes, measures every scenario and returns
// the report. On error the report, when not nil, holds what was measured.
func run(ctx context.Context, cfg config, taskset, pinNote string) (*report, error) {
	rep := &report{
		cfg:     cfg,
		command: strings.Join(append([]string{"go run ./bench"}, os.Args[1:]...), " "),
		started: time.Now(),
		pinned:  taskset != "",
		pinNote: pinNote,
		load:    loadAverage(),
		cpus:    runtime.NumCPU(),
		model:   cpuModel(),
		paths:   []string{pathDirect, pathPlain, pathLLMGate},
		json:    map[string][]*window{},
		single:  map[string][]*window{},
		stream:  map[string][]*window{},
		hold:    map[string][]*holdWindow{},
	}
	if n, err := onlineCPUs(); err == nil {
		rep.cpus = n
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return nil, err
	}
	rep.commit = gitDescribe(ctx, root)
	dir, err := os.MkdirTemp("", "llmgate-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	progress("building bench/cmd/upstream and bench/cmd/proxy")
	upBin, proxyBin, err := buildBinaries(ctx, root, dir)
	if err != nil {
		return nil, err
	}

	up, err := startChild(ctx, dir, "upstream", taskset, cfg.loadCPUs, upBin,
		"-events", strconv.Itoa(cfg.events), "-delay", cfg.delay.String())
	if err != nil {
		return nil, err
	}
	defer up.stop()
	var children []*child
	defer func() {
		for _, c := range children {
			c.stop()
		}
	}()
	if cfg.liveBody {
		rep.notes = append(rep.notes, "httputil.ReverseProxy forwards request bodies as live streams (-plain-live-body): "+
			"expect truncated streams under load (golang/go#40747).")
	} else {
		rep.notes = append(rep.notes, "httputil.ReverseProxy reads each request body before forwarding it, as llmgate does: "+
			"forwarded as a live stream, the body races with the flushed response and some streams are truncated "+
			"(golang/go#40747; run with -plain-live-body to see it).")
	}
	targets := []target{{name: pathDirect, host: hostOf(up.url)}}
	for _, mode := range []string{pathPlain, pathLLMGate} {
		c, err := startChild(ctx, dir, mode, taskset, cfg.proxyCPUs, proxyBin, proxyArgs(cfg, mode, up.url)...)
		if err != nil {
			return nil, err
		}
		children = append(children, c)
		targets = append(targets, target{name: mode, host: hostOf(c.url), pid: c.pid()})
	}

	gen := newLoadGen()
	defer gen.close()
	self := os.Getpid()
	want := wantEvents(cfg.events)
	for _, t := range targets {
		if err := sanityCheck(ctx, gen, t.host, want); err != nil {
			return nil, fmt.Errorf("%s does not answer correctly: %w%s", pathLabel(t.name), err, childLog(children, t.name))
		}
	}

	scenarios := []struct {
		name   string
		stream bool
		conc   int
		window time.Duration
		dst    map[string][]*window
	}{
		{"json", false, cfg.concurrency, cfg.duration, rep.json},
		{"json-1", false, 1, cfg.singleDuration(), rep.single},
		{"stream", true, cfg.concurrency, cfg.duration, rep.stream},
	}
	for round := range cfg.rounds {
		for _, sc := range scenarios {
			order := make([]target, len(targets))
			for i := range targets {
				order[i] = targets[(i+round)%len(targets)]
			}
			if cfg.warmup > 0 {
				for _, t := range order {
					warm, err := gen.measure(ctx, t.host, sc.stream, want, sc.conc, cfg.warmup, pids{})
					if err != nil {
						return rep, err
					}
					rep.warmup.merge(warm.errs)
				}
			}
			// The window is cut into slices that alternate between the
			// paths, so that a burst of load from other processes hits
			// every path of the round alike.
			n := max(1, int((sc.window+cfg.slice/2)/cfg.slice))
			slices := make([][]*window, len(order))
			for range n {
				for i, t := range order {
					w, err := gen.measure(ctx, t.host, sc.stream, want, sc.conc, sc.window/time.Duration(n),
						pids{proxy: t.pid, upstream: up.pid(), self: self})
					if err != nil {
						return rep, err
					}
					slices[i] = append(slices[i], w)
				}
			}
			for i, t := range order {
				w := mergeWindows(slices[i])
				sc.dst[t.name] = append(sc.dst[t.name], w)
				cpu := "—"
				if t.pid != 0 {
					cpu = fmtMicros(float64(w.cpuPerRequest()) / 1e3)
				}
				progress("round %d/%d  %-6s  %-21s  %7.0f req/s  p50 %-9s  p99 %-9s  proxy cpu/req %-9s  others %-4s  errors %d",
					round+1, cfg.rounds, sc.name, pathLabel(t.name), w.rps(),
					fmtMs(ms(percentile(w.latency, 0.5))), fmtMs(ms(percentile(w.latency, 0.99))), cpu,
					fmtPct(busy(w.cpu.others(), w.elapsed)), w.errs.total())
			}
		}
	}

	// Long streams: a fresh proxy process per round, so that its peak RSS
	// is that of holding the streams, not of the load before.
	q := url.Values{"events": {strconv.Itoa(cfg.holdEvents)}, "delay": {cfg.holdDelay().String()}}
	holdURL := up.url + "?" + q.Encode()
	holdWant := wantEvents(cfg.holdEvents)
	modes := []string{pathPlain, pathLLMGate}
	hwmNoted := false
	for round := range cfg.rounds {
		for i := range modes {
			mode := modes[(i+round)%len(modes)]
			h, err := holdRound(ctx, cfg, gen, dir, taskset, proxyBin, mode, round, holdURL, holdWant, &rep.warmup)
			if err != nil {
				return rep, err
			}
			rep.hold[mode] = append(rep.hold[mode], h)
			if !h.resetHWM && !hwmNoted {
				hwmNoted = true
				rep.notes = append(rep.notes, "VmHWM could not be reset through /proc/<pid>/clear_refs: "+
					"the peak RSS of the held streams may include the proxy's warm-up.")
			}
			progress("round %d/%d  hold    %-21s  %d streams, max %d open, RSS %s → peak %s, errors %d",
				round+1, cfg.rounds, pathLabel(mode), h.streams, h.maxOpen,
				fmtMiB(float64(h.idleRSS)), fmtMiB(float64(h.peakRSS)), h.errs.total())
		}
	}

	for _, c := range append([]*child{up}, children...) {
		if !c.alive() {
			rep.notes = append(rep.notes, fmt.Sprintf("**%s exited during the run** (%v). %s", c.name, c.waitErr, c.logTail(5)))
		} else if n := c.logLines(); n > 0 {
			rep.notes = append(rep.notes, fmt.Sprintf("%s wrote %d lines on stderr. %s", c.name, n, c.logTail(3)))
		}
	}
	return rep, nil
}

// holdRound starts a fresh proxy in mode, warms it up with JSON requests,
// holds cfg.streams long streams open through it and stops it. Failures
// during the warm-up are added to warmupErrs.
func holdRound(ctx context.Context, cfg config, gen *loadGen, dir, taskset, proxyBin, mode string, round int,
	holdURL string, want int, warmupErrs *tally) (*holdWindow, error) {
	name := fmt.Sprintf("%s-hold-%d", mode, round+1)
	c, err := startChild(ctx, dir, name, taskset, cfg.proxyCPUs, proxyBin, proxyArgs(cfg, mode, holdURL)...)
	if err != nil {
		return nil, err
	}
	defer c.stop()
	defer gen.forget(hostOf(c.url))
	if cfg.warmup > 0 {
		warm, err := gen.measure(ctx, hostOf(c.url), false, 0, cfg.concurrency, cfg.warmup, pids{})
		if err != nil {
			return nil, err
		}
		warmupErrs.merge(warm.errs)
	}
	h, err := gen.hold(ctx, hostOf(c.url), want, cfg.streams, c.pid())
	if n := c.logLines(); n > 0 && h != nil && h.errs.total() > 0 {
		progress("%s", c.logTail(5))
	}
	return h, err
}

// proxyArgs returns the command line of a proxy process.
func proxyArgs(cfg config, mode, upstream string) []string {
	args := []string{"-mode", mode, "-upstream", upstream}
	if mode == pathPlain && cfg.liveBody {
		args = append(args, "-live-body")
	}
	return args
}

// sanityCheck sends one JSON and one streaming request.
func sanityCheck(ctx context.Context, gen *loadGen, host string, want int) error {
	w := gen.newWorker(host)
	defer w.drop()
	if err := w.json(ctx); err != nil {
		return fmt.Errorf("JSON request: %w", err)
	}
	if _, err := w.stream(ctx, want, time.Now(), nil); err != nil {
		return fmt.Errorf("streaming request: %w", err)
	}
	return nil
}

// childLog returns the stderr tail of the named child, for an error.
func childLog(children []*child, name string) string {
	for _, c := range children {
		if c.name == name {
			return "\n" + c.logTail(10)
		}
	}
	return ""
}

// progress prints a progress line on stderr.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// goVersion returns the Go version and platform the driver was built with.
func goVersion() string {
	return runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}

// onlineCPUs returns the number of CPUs online, from
// /sys/devices/system/cpu/online (runtime.NumCPU counts only the CPUs the
// process may use, which pinning reduces).
func onlineCPUs() (int, error) {
	data, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return 0, err
	}
	n := 0
	for part := range strings.SplitSeq(strings.TrimSpace(string(data)), ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return 0, err
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return 0, err
			}
		}
		n += b - a + 1
	}
	return n, nil
}

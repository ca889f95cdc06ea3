// Command bench is the load benchmark of llmgate. It measures, in one run,
// the paths to a fake upstream that speaks the OpenAI and Anthropic APIs:
//
//  1. calling the upstream directly,
//  2. through a plain httputil.ReverseProxy (the floor of any Go proxy),
//  3. through llmgate (gateway.New with an "openai" and an "anthropic"
//     provider, both pointed at the fake upstream),
//  4. with -strategies, through llmgate with three CEL model selection
//     strategies configured (in the JSON, 1-client and streaming scenarios),
//  5. with -keys, through llmgate requiring gateway API keys (a key store
//     holding the one key whose token every request carries; in the JSON,
//     1-client and streaming scenarios),
//  6. with -credits, through llmgate requiring the gateway API key and
//     making every request pay with prepaid credits from the key's account
//     (gateway.WithMetering with Credits on) in each ledger of
//     -credits-ledgers: the in-process credits.Memory and a SQLite file
//     (store/sqlite, the standalone server's embedded default); in the
//     JSON, 1-client and streaming scenarios and the same-format large
//     requests,
//  7. with -baseline REV, through llmgate as it was at git revision REV,
//
// for JSON chat completions and streamed ones at a fixed number of
// concurrent clients (latency percentiles, throughput, time to the first
// stream event, proxy CPU time per request), the peak RSS of each proxy
// while it holds many streams open, large (~400 KB) requests served in the
// client's format and translated to the other one, and thousands of slow
// streams held open at once. It prints a Markdown report with the ratios of
// every llmgate path to the ReverseProxy, the latency each proxy adds over
// the direct path and, with -strategies and -keys, the CPU per request with
// the strategies or with keys required ÷ without; with -credits, the CPU
// per request of the credits paths ÷ the ReverseProxy's and ÷ llmgate with
// keys, the time to the first byte they add to a ~100k-token request ÷ the
// ReverseProxy's, and what each ledger charged (which must account for
// every request, or the run fails).
//
// Usage, from the module root:
//
//	go run ./bench [-quick] [-strategies] [-keys] [-credits] [-baseline REV] [-rounds 5] [-scale-streams 2000] [-out FILE]
//
// The driver builds bench/cmd/upstream and bench/cmd/proxy into a temporary
// directory and runs the fake upstream and each proxy as its own process,
// so that CPU time (/proc/<pid>/task/*/schedstat) and peak RSS
// (/proc/<pid>/status) are attributable. With taskset available it pins the
// proxies to -proxy-cpus and the upstream and itself to -load-cpus. Every
// response is checked; a run with failed requests says so at the top and
// bottom of the report and exits with status 1. See bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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

	largeBytes    int           // text in a large request
	largeDuration time.Duration // measured window per path and request of the large-body scenario
	largeConc     int           // clients in the large-body scenario

	scaleStreams int           // streams held open at once in the scale scenario; 0 skips it
	scaleEvents  int           // content chunks per scale stream
	scaleDelay   time.Duration // between them
	scaleRounds  int

	baseline   string   // git revision of the baseline llmgate, "" for none
	strategies bool     // also measure llmgate with model selection strategies
	keys       bool     // also measure llmgate with gateway API keys required
	credits    bool     // also measure llmgate with keys and credits (implies keys)
	ledgers    []string // credits ledgers of the credits paths: "memory", "sqlite", "sqlite-lease"
	quick      bool
	out        string
	pin        bool
	liveBody   bool   // the plain proxy forwards request bodies live
	proxyCPUs  string // taskset CPU list of the proxies
	loadCPUs   string // taskset CPU list of the upstream and the driver
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
	fs.IntVar(&c.largeBytes, "large-bytes", 380_000, "bytes of conversation text in a large request (380,000 make a request body of ~400 KB, ~95k tokens)")
	fs.DurationVar(&c.largeDuration, "large-duration", time.Second, "measured time per path, request and round of the large-body scenario")
	fs.IntVar(&c.largeConc, "large-concurrency", 1, "clients in the large-body scenario")
	fs.IntVar(&c.scaleStreams, "scale-streams", 2000, "slow streams held open at once in the scale scenario (0 skips it)")
	fs.IntVar(&c.scaleEvents, "scale-events", 20, "content chunks per scale stream")
	fs.DurationVar(&c.scaleDelay, "scale-delay", 200*time.Millisecond, "pause between the chunks of a scale stream")
	fs.IntVar(&c.scaleRounds, "scale-rounds", 1, "rounds of the scale scenario")
	fs.StringVar(&c.baseline, "baseline", "", "also measure llmgate as built at this git revision (a temporary git worktree)")
	fs.BoolVar(&c.strategies, "strategies", false, "also measure llmgate with three CEL model selection strategies (path llmgate+cel) in the JSON, 1-client and streaming scenarios")
	fs.BoolVar(&c.keys, "keys", false, "also measure llmgate with gateway API keys required (path llmgate+keys) in the JSON, 1-client and streaming scenarios")
	fs.BoolVar(&c.credits, "credits", false, "also measure llmgate with gateway API keys required and credits paid by every request "+
		"(paths llmgate+credits, llmgate+credits/sqlite) in the JSON, 1-client and streaming scenarios and the same-format large requests; implies -keys")
	ledgers := fs.String("credits-ledgers", "memory,sqlite,sqlite-lease", "with -credits: comma-separated ledgers, one credits path each: "+
		"memory (credits.NewMemory, path llmgate+credits), sqlite (store/sqlite on a temporary file, path llmgate+credits/sqlite) "+
		"and sqlite-lease (the same, leased with credits.Leasing as llmgate does by default, path llmgate+credits/sqlite-lease)")
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
			"duration":       func() { c.duration = time.Second },
			"warmup":         func() { c.warmup = 200 * time.Millisecond },
			"rounds":         func() { c.rounds = 1 },
			"concurrency":    func() { c.concurrency = 8 },
			"streams":        func() { c.streams = 32 },
			"hold":           func() { c.hold = 500 * time.Millisecond },
			"hold-events":    func() { c.holdEvents = 10 },
			"large-duration": func() { c.largeDuration = 500 * time.Millisecond },
			"scale-streams":  func() { c.scaleStreams = 200 },
			"scale-delay":    func() { c.scaleDelay = 50 * time.Millisecond },
		}
		for name, apply := range quick {
			if !set[name] {
				apply()
			}
		}
	}
	var errs []error
	if c.credits {
		c.keys = true // the credits paths are compared with llmgate+keys
		seen := map[string]bool{}
		for l := range strings.SplitSeq(*ledgers, ",") {
			l = strings.TrimSpace(l)
			switch {
			case l != ledgerMemory && l != ledgerSQLite && l != ledgerSQLiteLease:
				errs = append(errs, fmt.Errorf("-credits-ledgers: unknown ledger %q (want memory, sqlite or sqlite-lease)", l))
			case !seen[l]:
				seen[l] = true
				c.ledgers = append(c.ledgers, l)
			}
		}
	}
	if c.duration <= 0 || c.slice <= 0 || c.warmup < 0 || c.hold <= 0 || c.delay < 0 || c.largeDuration <= 0 || c.scaleDelay < 0 {
		errs = append(errs, errors.New("-duration, -slice, -hold and -large-duration must be positive, -warmup, -delay and -scale-delay not negative"))
	}
	if c.rounds < 1 || c.concurrency < 1 || c.streams < 1 || c.events < 1 || c.largeConc < 1 || c.scaleEvents < 1 || c.scaleRounds < 1 {
		errs = append(errs, errors.New("-rounds, -concurrency, -streams, -events, -large-concurrency, -scale-events and -scale-rounds must be at least 1"))
	}
	if c.holdEvents < 2 {
		errs = append(errs, errors.New("-hold-events must be at least 2"))
	}
	if c.largeBytes < 1000 || c.scaleStreams < 0 {
		errs = append(errs, errors.New("-large-bytes must be at least 1000 and -scale-streams not negative"))
	}
	if strings.HasPrefix(c.baseline, "-") {
		errs = append(errs, fmt.Errorf("-baseline %q: want a git revision", c.baseline))
	}
	return c, errors.Join(errs...)
}

func main() { os.Exit(realMain()) }

// realMain runs the benchmark and returns the exit status: 0, 1 when
// requests failed or a credits path's ledger does not account for its
// requests, 2 when the benchmark itself could not run.
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
	status := 0
	if failed, total := rep.failures(); failed > 0 {
		fmt.Fprintf(os.Stderr, "bench: FAILED: %d of %d requests failed\n", failed, total)
		status = 1
	}
	for _, p := range rep.ledgerProblems() {
		fmt.Fprintf(os.Stderr, "bench: FAILED: credits not verified: %s\n", p)
		status = 1
	}
	return status
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

package main

import (
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/llmgate/gateway/bench/internal/gatewaykey"
	"github.com/llmgate/gateway/bench/internal/strategies"
)

// Names of the paths under test, in table order.
const (
	pathDirect  = "direct"
	pathPlain   = "plain"
	pathLLMGate = "llmgate"
	pathCEL     = "llmgate+cel"  // llmgate with model selection strategies (-strategies)
	pathKeys    = "llmgate+keys" // llmgate with gateway API keys required (-keys)
	// pathCredits is llmgate with keys required and credits paid from a
	// credits.Memory (-credits); creditsPath names the other ledgers'.
	pathCredits  = "llmgate+credits"
	pathBaseline = "baseline" // llmgate built at -baseline
)

// Ledgers of the credits paths (-credits-ledgers).
const (
	ledgerMemory = "memory" // credits.NewMemory, in the proxy process
	ledgerSQLite = "sqlite" // store/sqlite on a file in the run's temporary directory
	// ledgerSQLiteLease is the same file leased (credits.Leasing, as the
	// standalone server does by default).
	ledgerSQLiteLease = "sqlite-lease"
)

// creditsPath returns the name of the credits path over ledger:
// "llmgate+credits" for the memory ledger, "llmgate+credits/sqlite" for
// SQLite.
func creditsPath(ledger string) string {
	if ledger == ledgerMemory {
		return pathCredits
	}
	return pathCredits + "/" + ledger
}

// isCredits reports whether path is a credits path.
func isCredits(path string) bool {
	return path == pathCredits || strings.HasPrefix(path, pathCredits+"/")
}

// Targets the large-body scenario checks: a cross-format request costs at
// most this many times the CPU of the same-format one, and its first byte
// arrives within this many times.
const (
	crossCPUTarget   = 2.0
	crossFirstTarget = 1.2
)

// Targets of the -strategies and -keys paths: with three model selection
// strategies, and with gateway API keys required, llmgate costs at most
// this many times the CPU per request it costs without.
const (
	celCPUTarget  = 1.1
	keysCPUTarget = 1.1
)

// Targets of the -credits paths: with gateway keys required and credits
// paid, llmgate costs at most this many times the CPU per request of
// httputil.ReverseProxy, and adds at most this many times the time the
// ReverseProxy adds to the first byte of a ~100k-token request (no input
// token limit).
const (
	creditsCPUTarget   = 1.25
	creditsFirstTarget = 2.0
)

// report holds every measurement of a run and renders them.
type report struct {
	cfg         config
	command     string
	started     time.Time
	commit      string
	baselineRev string // short hash of -baseline, "" for none
	pinned      bool
	pinNote     string
	load        string // load average at start
	cpus        int    // online CPUs
	model       string // CPU model
	fdLimit     int    // hard limit on open files, for the scale scenario
	hwmNoted    bool   // the VmHWM note was added

	paths  []string             // every path, in table order
	json   map[string][]*window // by path, one per round
	single map[string][]*window // JSON with one client
	stream map[string][]*window
	hold   map[string][]*holdWindow        // proxies only
	large  map[string]map[string][]*window // by spec name, then path
	scale  map[string][]*holdWindow        // proxies only
	warmup tally                           // failures during warm-ups
	notes  []string                        // things the reader must know

	ledgers []ledgerCheck // what each credits path's ledger charged
}

func newReport(cfg config, pinNote string, pinned bool) *report {
	r := &report{
		cfg:     cfg,
		command: strings.Join(append([]string{"go run ./bench"}, os.Args[1:]...), " "),
		started: time.Now(),
		pinned:  pinned,
		pinNote: pinNote,
		load:    loadAverage(),
		cpus:    runtime.NumCPU(),
		model:   cpuModel(),
		paths:   []string{pathDirect, pathPlain, pathLLMGate},
		json:    map[string][]*window{},
		single:  map[string][]*window{},
		stream:  map[string][]*window{},
		hold:    map[string][]*holdWindow{},
		large:   map[string]map[string][]*window{},
		scale:   map[string][]*holdWindow{},
	}
	if cfg.strategies {
		r.paths = append(r.paths, pathCEL)
	}
	if cfg.keys {
		r.paths = append(r.paths, pathKeys)
	}
	if cfg.credits {
		for _, l := range cfg.ledgers {
			r.paths = append(r.paths, creditsPath(l))
		}
	}
	if n, err := onlineCPUs(); err == nil {
		r.cpus = n
	}
	return r
}

// label returns the name of a path in the tables.
func (r *report) label(path string) string {
	switch path {
	case pathDirect:
		return "direct (no proxy)"
	case pathPlain:
		return "httputil.ReverseProxy"
	case pathCEL:
		return "llmgate + 3 CEL strategies"
	case pathKeys:
		return "llmgate + gateway keys"
	case pathBaseline:
		return "llmgate @ " + r.baselineRev
	case pathCredits:
		return "llmgate + keys + credits (memory)"
	case creditsPath(ledgerSQLite):
		return "llmgate + keys + credits (SQLite)"
	case creditsPath(ledgerSQLiteLease):
		return "llmgate + keys + credits (SQLite, leased)"
	}
	return path
}

// llmgates returns the llmgate paths: current, with strategies, with keys,
// with credits, then the baseline.
func (r *report) llmgates() []string {
	var ps []string
	for _, p := range r.paths {
		if p == pathLLMGate || p == pathCEL || p == pathKeys || isCredits(p) || p == pathBaseline {
			ps = append(ps, p)
		}
	}
	return ps
}

// windowSets returns every map of windows with its name, for totals.
func (r *report) windowSets() map[string]map[string][]*window {
	sets := map[string]map[string][]*window{"JSON": r.json, "JSON, 1 client": r.single, "streaming": r.stream}
	for name, m := range r.large {
		sets["large "+name] = m
	}
	return sets
}

// failures returns the number of failed requests of the whole run and the
// number of requests.
func (r *report) failures() (failed, total int) {
	failed = r.warmup.total()
	for _, m := range r.windowSets() {
		for _, ws := range m {
			for _, w := range ws {
				failed += w.errs.total()
				total += w.requests
			}
		}
	}
	for _, m := range []map[string][]*holdWindow{r.hold, r.scale} {
		for _, hs := range m {
			for _, h := range hs {
				failed += h.errs.total()
				total += h.streams
			}
		}
	}
	return failed, total
}

// errorSummary describes the failures by scenario and path, or returns "".
func (r *report) errorSummary() string {
	var lines []string
	add := func(what string, t tally) {
		if t.total() > 0 {
			lines = append(lines, fmt.Sprintf("- %s: %s", what, t.String()))
		}
	}
	add("warm-up", r.warmup)
	sets := r.windowSets()
	for _, name := range slices.Sorted(maps.Keys(sets)) {
		for _, p := range r.paths {
			var t tally
			for _, w := range sets[name][p] {
				t.merge(w.errs)
			}
			add(name+" via "+r.label(p), t)
		}
	}
	for _, p := range r.paths {
		for name, m := range map[string]map[string][]*holdWindow{"held streams": r.hold, "scale streams": r.scale} {
			var t tally
			for _, h := range m[p] {
				t.merge(h.errs)
			}
			add(name+" via "+r.label(p), t)
		}
	}
	return strings.Join(lines, "\n")
}

// Metrics of a window or a held-streams run.
var (
	p50      = func(w *window) float64 { return ms(percentile(w.latency, 0.50)) }
	p99      = func(w *window) float64 { return ms(percentile(w.latency, 0.99)) }
	first50  = func(w *window) float64 { return ms(percentile(w.first, 0.50)) }
	first99  = func(w *window) float64 { return ms(percentile(w.first, 0.99)) }
	cpuPerRq = func(w *window) float64 { return float64(w.cpuPerRequest()) / 1e3 } // µs
	rps      = (*window).rps
	peakRSS  = func(h *holdWindow) float64 { return float64(h.peakRSS) }
	idleRSS  = func(h *holdWindow) float64 { return float64(h.idleRSS) }
	perOpen  = (*holdWindow).perStream
)

// render writes the Markdown report.
func (r *report) render(w io.Writer) {
	cfg := r.cfg
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	failed, total := r.failures()

	p("## llmgate load benchmark\n\n")
	p("`%s` · %s · llmgate %s · %s · %d CPUs (%s) · load average %s at start\n\n",
		r.command, r.started.UTC().Format("2006-01-02 15:04 UTC"), orDash(r.commit), goVersion(), r.cpus, orDash(r.model), orDash(r.load))
	rounds := "1 round"
	if cfg.rounds > 1 {
		rounds = strconv.Itoa(cfg.rounds) + " rounds"
	}
	p("%s %s; in each, every path is warmed up for %v, then measured for %v per scenario (%v with 1 client, %v per large request) "+
		"in slices of about %v that alternate between the paths. Tables show medians over rounds; "+
		"ratios (\"÷ plain\": to httputil.ReverseProxy) and added latencies are medians of per-round values. "+
		"Proxy CPU is the time the proxy process's threads spent on a CPU (schedstat). Fake upstream and clients on loopback.\n\n",
		r.pinNote, rounds, cfg.warmup, cfg.duration, cfg.singleDuration(), cfg.largeDuration, min(cfg.slice, cfg.duration))
	if r.baselineRev != "" {
		p("**llmgate @ %s** is the library at that revision, built with the current `bench/cmd/proxy`; **llmgate** is %s.\n\n",
			r.baselineRev, orDash(r.commit))
	}
	if ps := r.ledgerProblems(); len(ps) > 0 {
		p("> **⚠ CREDITS NOT VERIFIED: a credits path's ledger does not account for its requests. Its numbers may measure a path that does not charge.**\n>\n")
		for _, l := range ps {
			p("> - %s\n", l)
		}
		p("\n")
	}
	if failed > 0 {
		p("> **⚠ ERRORS: %d of %d requests failed. These numbers are not trustworthy.**\n>\n", failed, total)
		for line := range strings.Lines(r.errorSummary()) {
			p("> %s", line)
		}
		p("\n\n")
	} else {
		p("No errors: all %s responses had status 200 and were complete (JSON valid with usage; streams with every event, usage and their end).\n\n", commas(float64(total)))
	}

	p("### JSON chat completions, %d concurrent clients\n\n", cfg.concurrency)
	t := &table{head: []string{"Path", "p50", "p99", "Throughput", "Proxy CPU / request", "CPU ÷ plain", "Throughput ÷ plain"}}
	for _, path := range r.paths {
		ws := r.json[path]
		t.add(r.label(path), fmtMs(medianOf(ws, p50)), fmtMs(medianOf(ws, p99)), fmtRate(medianOf(ws, rps), "req/s"),
			r.cpuCell(path, ws), r.ratioCell(r.json, path, cpuPerRq), r.ratioCell(r.json, path, rps))
	}
	t.write(w)

	p("\n### JSON chat completions, 1 client (latency without queueing)\n\n")
	t = &table{head: []string{"Path", "p50", "p99", "Throughput", "Proxy CPU / request", "p50 ÷ plain", "CPU ÷ plain"}}
	for _, path := range r.paths {
		ws := r.single[path]
		t.add(r.label(path), fmtMs(medianOf(ws, p50)), fmtMs(medianOf(ws, p99)), fmtRate(medianOf(ws, rps), "req/s"),
			r.cpuCell(path, ws), r.ratioCell(r.single, path, p50), r.ratioCell(r.single, path, cpuPerRq))
	}
	t.write(w)

	p("\n### Streaming chat completions, %d concurrent clients, %d content chunks %v apart\n\n", cfg.concurrency, cfg.events, cfg.delay)
	t = &table{head: []string{"Path", "First event p50", "First event p99", "Stream p50", "Stream p99", "Throughput", "Proxy CPU / request", "CPU ÷ plain", "First event ÷ plain"}}
	for _, path := range r.paths {
		ws := r.stream[path]
		t.add(r.label(path), fmtMs(medianOf(ws, first50)), fmtMs(medianOf(ws, first99)), fmtMs(medianOf(ws, p50)), fmtMs(medianOf(ws, p99)),
			fmtRate(medianOf(ws, rps), "streams/s"), r.cpuCell(path, ws), r.ratioCell(r.stream, path, cpuPerRq), r.ratioCell(r.stream, path, first50))
	}
	t.write(w)

	p("\n### %d concurrent streams held open, %v each (%d chunks %v apart)\n\n", cfg.streams, cfg.hold, cfg.holdEvents, cfg.holdDelay().Round(100*time.Microsecond))
	r.holdTable(w, r.hold)

	r.renderLarge(w)

	if len(r.scale) > 0 {
		p("\n### Scale: %s slow streams held open at once, %d chunks %v apart\n\n", commas(float64(cfg.scaleStreams)), cfg.scaleEvents, cfg.scaleDelay)
		p("A fresh proxy per path and round (%d round(s)); the load generator holds one goroutine and one connection per stream. "+
			"Open-file limit: %s.\n\n", cfg.scaleRounds, orDash(strings.TrimPrefix(commas(float64(r.fdLimit)), "0")))
		r.holdTable(w, r.scale)
	}

	for _, gw := range r.llmgates() {
		p("\n### %s ÷ httputil.ReverseProxy\n\n", r.label(gw))
		if cfg.rounds > 1 {
			p("Median of the per-round ratios, with their range over rounds in parentheses.\n\n")
		}
		t = &table{head: []string{"Ratio", "JSON", "Streaming"}}
		t.add("Proxy CPU per request", fmtRatios(r.ratio(r.json, gw, cpuPerRq)), fmtRatios(r.ratio(r.stream, gw, cpuPerRq)))
		t.add("Throughput", fmtRatios(r.ratio(r.json, gw, rps)), fmtRatios(r.ratio(r.stream, gw, rps)))
		t.add("Latency p50 (JSON: response; streaming: first event)", fmtRatios(r.ratio(r.json, gw, p50)), fmtRatios(r.ratio(r.stream, gw, first50)))
		t.add("Latency p99 (JSON: response; streaming: first event)", fmtRatios(r.ratio(r.json, gw, p99)), fmtRatios(r.ratio(r.stream, gw, first99)))
		t.write(w)
		if rss := holdRatio(r.hold, gw, peakRSS); len(rss) > 0 {
			p("\nPeak RSS with %d open streams: %s.", cfg.streams, fmtRatios(rss))
		}
		if rss := holdRatio(r.scale, gw, perOpen); len(rss) > 0 {
			p(" Memory per open stream with %s streams: %s.", commas(float64(cfg.scaleStreams)), fmtRatios(rss))
		}
		p("\n")
		if v, ok := r.versusOf(gw); ok {
			r.renderVersus(w, v)
		}
	}
	r.renderCredits(w)

	p("\n### Added p50 latency over calling the upstream directly\n\n")
	t = &table{head: []string{"Path", "JSON response", "JSON response, 1 client", "Stream first event", "Whole stream"}}
	for _, path := range r.paths[1:] {
		t.add(r.label(path),
			fmtAdded(r.added(r.json, path, p50)), fmtAdded(r.added(r.single, path, p50)),
			fmtAdded(r.added(r.stream, path, first50)), fmtAdded(r.added(r.stream, path, p50)))
	}
	t.write(w)

	p("\n### Load check (share of one CPU, medians)\n\n")
	t = &table{head: []string{"Scenario", "Path", "Requests", "Errors", "Proxy busy", "Load generator + upstream busy", "Other processes busy"}, left: 2}
	for _, sc := range []struct {
		name string
		m    map[string][]*window
	}{{"JSON", r.json}, {"JSON, 1 client", r.single}, {"streaming", r.stream}} {
		for _, path := range r.paths {
			ws := sc.m[path]
			requests, errs := 0, 0
			for _, w := range ws {
				requests += w.requests
				errs += w.errs.total()
			}
			proxy := "—"
			if path != pathDirect {
				proxy = fmtPct(medianOf(ws, func(w *window) float64 { return busy(w.cpu.proxy, w.elapsed) }))
			}
			t.add(sc.name, r.label(path), commas(float64(requests)), strconv.Itoa(errs), proxy,
				fmtPct(medianOf(ws, func(w *window) float64 { return busy(w.cpu.self+w.cpu.upstream, w.elapsed) })),
				fmtPct(medianOf(ws, func(w *window) float64 { return busy(w.cpu.others(), w.elapsed) })))
		}
	}
	t.write(w)
	notes := append(append(r.noiseNote(), r.saturationNotes()...), r.notes...)
	for _, n := range notes {
		p("\n- %s", n)
	}
	if len(notes) > 0 {
		p("\n")
	}
	if failed > 0 {
		p("\n> **⚠ ERRORS: %d of %d requests failed (see the top of this report).**\n", failed, total)
	}
	if len(r.ledgerProblems()) > 0 {
		p("\n> **⚠ CREDITS NOT VERIFIED (see the top of this report).**\n")
	}
}

// holdTable writes the table of a held-streams scenario.
func (r *report) holdTable(w io.Writer, m map[string][]*holdWindow) {
	t := &table{head: []string{"Path", "RSS before", "Peak RSS (VmHWM)", "Peak − before, per stream", "Max streams open at once", "Per stream ÷ plain", "Peak ÷ plain"}}
	for _, path := range r.paths {
		hs := m[path]
		if len(hs) == 0 {
			continue
		}
		t.add(r.label(path), fmtMiB(medianOf(hs, idleRSS)), fmtMiB(medianOf(hs, peakRSS)), fmtKiB(medianOf(hs, perOpen)),
			strconv.Itoa(int(medianOf(hs, func(h *holdWindow) float64 { return float64(h.maxOpen) }))),
			r.holdRatioCell(m, path, perOpen), r.holdRatioCell(m, path, peakRSS))
	}
	t.write(w)
	for _, path := range r.paths {
		for _, h := range m[path] {
			if h.maxOpen < h.streams {
				fmt.Fprintf(w, "\n**Not all streams were open at once** via %s (at most %d of %d): the streams ended before the last "+
					"ones started, so the peak understates what %d open streams cost. Make them longer (-scale-delay, -hold).\n",
					r.label(path), h.maxOpen, h.streams, h.streams)
				return
			}
		}
	}
}

// Names of the large-body requests (spec names) and how the report calls
// them.
var largeRequests = []struct{ name, label string }{
	{"same JSON", "OpenAI client → GPT, JSON"},
	{"same stream", "OpenAI client → GPT, stream"},
	{"cross JSON", "OpenAI client → Claude, JSON (translated)"},
	{"cross stream", "Anthropic client → GPT, stream (translated)"},
}

// renderLarge writes the large-body tables.
func (r *report) renderLarge(w io.Writer) {
	if len(r.large) == 0 {
		return
	}
	cfg := r.cfg
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	size := 0
	if s, _, _, _ := largeSpecs(cfg.largeBytes, cfg.events); s != nil {
		size = len(s.body)
	}
	clients := "1 client"
	if cfg.largeConc > 1 {
		clients = strconv.Itoa(cfg.largeConc) + " concurrent clients"
	}
	p("\n### Large requests: %s KB of conversation (~%sk tokens), %s\n\n", commas(float64(size)/1000), commas(float64(cfg.largeBytes)/4000), clients)
	p("First byte: the response header of a JSON response, the first event of a stream. Streams have %d content chunks sent back to back "+
		"(proxies of their own), so that CPU per request is the proxy's work, not its wake-ups between chunks. "+
		"The ReverseProxy cannot translate, so it only serves the same-format requests, as do the direct path and the credits paths. "+
		"Added first byte: the path's first byte p50 − the direct path's, per round, then the median.\n\n", cfg.events)
	t := &table{head: []string{"Request", "Path", "First byte p50", "First byte p99", "Added first byte", "Complete p50", "Proxy CPU / request",
		"CPU ÷ plain", "First byte ÷ plain"}, left: 2}
	for _, req := range largeRequests {
		m := r.large[req.name]
		for _, path := range r.paths {
			ws := m[path]
			if len(ws) == 0 {
				continue
			}
			added := "—"
			if path != pathDirect && len(m[pathDirect]) > 0 {
				added = fmtAdded(r.added(m, path, first50))
			}
			t.add(req.label, r.label(path), fmtMs(medianOf(ws, first50)), fmtMs(medianOf(ws, first99)), added, fmtMs(medianOf(ws, p50)),
				r.cpuCell(path, ws), r.ratioCell(m, path, cpuPerRq), r.ratioCell(m, path, first50))
		}
	}
	t.write(w)
	r.renderCreditsFirstByte(w)

	p("\n#### Cross-format ÷ same-format (targets: CPU ≤ %.0f×, first byte ≤ %.1f×)\n\n", crossCPUTarget, crossFirstTarget)
	p("Per path and round: translated JSON ÷ same-format JSON, and translated stream ÷ same-format stream; medians over rounds, range in parentheses.\n\n")
	t = &table{head: []string{"Path", "CPU, JSON", "First byte, JSON", "CPU, stream", "First event, stream", "Targets"}}
	for _, gw := range r.llmgates() {
		cross := func(c, s string, f func(*window) float64) []float64 {
			return perRound(r.large[c][gw], r.large[s][gw], f)
		}
		if len(r.large["cross JSON"][gw]) == 0 {
			continue // a baseline without cross-format serving
		}
		cpuJ, firstJ := cross("cross JSON", "same JSON", cpuPerRq), cross("cross JSON", "same JSON", first50)
		cpuS, firstS := cross("cross stream", "same stream", cpuPerRq), cross("cross stream", "same stream", first50)
		met := median(cpuJ) <= crossCPUTarget && median(cpuS) <= crossCPUTarget &&
			median(firstJ) <= crossFirstTarget && median(firstS) <= crossFirstTarget
		verdict := "**not met**"
		if met {
			verdict = "met"
		}
		t.add(r.label(gw), fmtRatios(cpuJ), fmtRatios(firstJ), fmtRatios(cpuS), fmtRatios(firstS), verdict)
	}
	t.write(w)
}

// versus is a section of the report that compares the proxy CPU per
// request of an llmgate path with one option set to that of plain llmgate.
type versus struct {
	path   string  // the path with the option
	title  string  // what the option is, in the heading: "<title> ÷ none"
	about  string  // Markdown describing the path, before the table
	why    string  // why CPU per request is where the option shows
	target float64 // the target: at most this many times llmgate's CPU per request
}

// versusOf returns the section of an llmgate path that has one, the
// -strategies and -keys paths.
func (r *report) versusOf(path string) (versus, bool) {
	switch path {
	case pathCEL:
		var about strings.Builder
		fmt.Fprintf(&about, "%s is llmgate with `gateway.WithModelSelection` and these strategies, tried in order for every request "+
			"over the whole built-in catalog (the first two yield nothing for the benchmark's requests, the third keeps their model):\n\n",
			r.label(pathCEL))
		for _, e := range strategies.Exprs() {
			fmt.Fprintf(&about, "- `%s`\n", e)
		}
		return versus{path: pathCEL, title: "Model selection strategies", about: about.String(), target: celCPUTarget,
			why: "strategies run once per request, when the gateway plans its candidates"}, true
	case pathKeys:
		about := fmt.Sprintf("%s is llmgate with `gateway.WithKeyStore` over a `keys.MemoryStore` holding one gateway API key "+
			"(endpoint %q, default cache and last-used options). Every request of every path carries that key's token as "+
			"`Authorization: Bearer`; this path requires it: it hashes the token, looks the hash up in its cache, checks the key "+
			"and records its use. Before the run, the path refused a request with an unknown token and one without a token (401).\n",
			r.label(pathKeys), gatewaykey.Endpoint)
		return versus{path: pathKeys, title: "Gateway keys required", about: about, target: keysCPUTarget,
			why: "each request authenticates once, when it arrives"}, true
	}
	return versus{}, false
}

// renderVersus writes section v: the CPU per request of v.path ÷ llmgate's
// per round, against v.target.
func (r *report) renderVersus(w io.Writer, v versus) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("\n#### %s ÷ none (target: CPU ≤ %.1f×)\n\n", v.title, v.target)
	p("%s", v.about)
	p("\nProxy CPU per request; the ratio is taken per round (%s ÷ llmgate), then its median, range in parentheses.\n\n", r.label(v.path))
	t := &table{head: []string{"Proxy CPU / request", "JSON", "JSON, 1 client", "Streaming"}}
	for _, path := range []string{pathLLMGate, v.path} {
		t.add(r.label(path), r.cpuCell(path, r.json[path]), r.cpuCell(path, r.single[path]), r.cpuCell(path, r.stream[path]))
	}
	ratio := func(m map[string][]*window) []float64 { return perRound(m[v.path], m[pathLLMGate], cpuPerRq) }
	json, single, stream := ratio(r.json), ratio(r.single), ratio(r.stream)
	t.add("Ratio", fmtRatios(json), fmtRatios(single), fmtRatios(stream))
	t.write(w)
	verdict := "**not met**"
	switch {
	case len(json) == 0 || len(stream) == 0:
		verdict = "— (no measurements)"
	case median(json) <= v.target && median(stream) <= v.target:
		verdict = "met"
	}
	p("\nTarget (JSON and streaming, %d clients): %s.", r.cfg.concurrency, verdict)
	p(" The 1-client column is for reference: at 1 client, CPU per request includes idle wake-ups. "+
		"%s sits out the held-streams, large-request and scale scenarios: %s, so CPU per request is where it shows.\n",
		r.label(v.path), v.why)
}

// cpuCell formats the median proxy CPU per request of a path.
func (r *report) cpuCell(path string, ws []*window) string {
	if path == pathDirect {
		return "—"
	}
	return fmtMicros(medianOf(ws, cpuPerRq))
}

// perRound returns f(a[i]) / f(b[i]) for each round i both have, skipping
// rounds where f(b[i]) is not positive.
func perRound[T any](a, b []T, f func(T) float64) []float64 {
	var rs []float64
	for i := range min(len(a), len(b)) {
		if d := f(b[i]); d > 0 {
			rs = append(rs, f(a[i])/d)
		}
	}
	return rs
}

// ratio returns f(path) / f(plain) for each round.
func (r *report) ratio(m map[string][]*window, path string, f func(*window) float64) []float64 {
	return perRound(m[path], m[pathPlain], f)
}

// ratioCell formats the median of ratio for an llmgate path, "—" for the
// others.
func (r *report) ratioCell(m map[string][]*window, path string, f func(*window) float64) string {
	if path == pathDirect || path == pathPlain {
		return "—"
	}
	return fmtRatio(median(r.ratio(m, path, f)))
}

// holdRatio returns f(path) / f(plain) for each round of a held-streams
// scenario.
func holdRatio(m map[string][]*holdWindow, path string, f func(*holdWindow) float64) []float64 {
	return perRound(m[path], m[pathPlain], f)
}

// holdRatioCell formats the median of holdRatio for a path, "—" for the
// plain proxy.
func (r *report) holdRatioCell(m map[string][]*holdWindow, path string, f func(*holdWindow) float64) string {
	if path == pathPlain {
		return "—"
	}
	return fmtRatio(median(holdRatio(m, path, f)))
}

// fmtRatios formats the median of per-round ratios, with their range when
// there are several rounds.
func fmtRatios(rs []float64) string {
	if len(rs) == 0 {
		return "—"
	}
	s := fmtRatio(median(rs))
	if len(rs) > 1 {
		s += " (" + strconv.FormatFloat(slices.Min(rs), 'f', 2, 64) + "–" + strconv.FormatFloat(slices.Max(rs), 'f', 2, 64) + ")"
	}
	return s
}

// added returns the median over rounds of f(path) − f(direct).
func (r *report) added(m map[string][]*window, path string, f func(*window) float64) float64 {
	ws, ds := m[path], m[pathDirect]
	var rs []float64
	for i := range min(len(ws), len(ds)) {
		rs = append(rs, f(ws[i])-f(ds[i]))
	}
	return median(rs)
}

// saturationNotes warns when the load generator's CPU, rather than the
// proxy's, bounded a scenario's throughput.
func (r *report) saturationNotes() []string {
	if !r.pinned {
		return nil
	}
	var notes []string
	for _, sc := range []struct {
		name string
		m    map[string][]*window
	}{{"JSON", r.json}, {"streaming", r.stream}} {
		for _, path := range r.paths[1:] {
			ws := sc.m[path]
			gen := medianOf(ws, func(w *window) float64 { return busy(w.cpu.self+w.cpu.upstream, w.elapsed) })
			proxy := medianOf(ws, func(w *window) float64 { return busy(w.cpu.proxy, w.elapsed) })
			if gen >= 0.9 && proxy < 0.85 {
				notes = append(notes, fmt.Sprintf("%s via %s: the load generator's CPU was %s busy and the proxy's %s, "+
					"so throughput there is bounded by the load generator and understates the proxy's capacity; "+
					"compare CPU per request instead.", sc.name, r.label(path), fmtPct(gen), fmtPct(proxy)))
			}
		}
	}
	return notes
}

// noiseNote warns when other processes used much CPU during the windows.
func (r *report) noiseNote() []string {
	var all []*window
	for _, m := range []map[string][]*window{r.json, r.single, r.stream} {
		for _, ws := range m {
			all = append(all, ws...)
		}
	}
	others := medianOf(all, func(w *window) float64 { return busy(w.cpu.others(), w.elapsed) })
	if math.IsNaN(others) || others < 0.25 {
		return nil
	}
	return []string{fmt.Sprintf("**Noisy run**: other processes used a median %s of a CPU while the paths were measured. "+
		"Absolute numbers are lower than on a quiet machine; the per-round ratios are more robust, and their range shows the noise.", fmtPct(others))}
}

// busy returns cpu as a share of one CPU over elapsed.
func busy(cpu, elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return math.NaN()
	}
	return cpu.Seconds() / elapsed.Seconds()
}

// percentile returns the p-quantile (nearest rank) of sorted, or 0 when it
// is empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// median returns the median of xs (the mean of the middle two when even),
// or NaN when xs is empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// medianOf returns the median of f over items.
func medianOf[T any](items []T, f func(T) float64) float64 {
	xs := make([]float64, 0, len(items))
	for _, it := range items {
		xs = append(xs, f(it))
	}
	return median(xs)
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// fmtMs formats milliseconds with three significant digits.
func fmtMs(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return sig3(v) + " ms"
}

// fmtMicros formats microseconds.
func fmtMicros(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return sig3(v) + " µs"
}

// fmtAdded formats a latency difference in milliseconds with its sign.
func fmtAdded(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	if v >= 0 {
		return "+" + sig3(v) + " ms"
	}
	return "−" + sig3(-v) + " ms"
}

// sig3 formats v with three significant digits (at least one decimal
// below 100).
func sig3(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// fmtRate formats a throughput.
func fmtRate(v float64, unit string) string {
	if math.IsNaN(v) {
		return "—"
	}
	return commas(v) + " " + unit
}

func fmtRatio(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + "×"
}

func fmtPct(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return strconv.FormatFloat(v*100, 'f', 0, 64) + "%"
}

func fmtMiB(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return strconv.FormatFloat(v/(1<<20), 'f', 1, 64) + " MiB"
}

func fmtKiB(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return strconv.FormatFloat(v/(1<<10), 'f', 1, 64) + " KiB"
}

// commas formats v rounded to an integer with thousands separators.
func commas(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// table is a Markdown table; the first column (or the first left ones) is
// left-aligned, the others right-aligned.
type table struct {
	head []string
	rows [][]string
	left int
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

// write renders the table with padded columns.
func (t *table) write(w io.Writer) {
	width := make([]int, len(t.head))
	for _, row := range append([][]string{t.head}, t.rows...) {
		for i, c := range row {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	left := max(t.left, 1)
	line := func(cells []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range cells {
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			if i < left {
				b.WriteString(" " + c + pad + " |")
			} else {
				b.WriteString(" " + pad + c + " |")
			}
		}
		fmt.Fprintln(w, b.String())
	}
	line(t.head)
	sep := make([]string, len(t.head))
	for i := range sep {
		if i < left {
			sep[i] = strings.Repeat("-", width[i])
		} else {
			sep[i] = strings.Repeat("-", width[i]-1) + ":"
		}
	}
	line(sep)
	for _, row := range t.rows {
		line(row)
	}
}

package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Names of the paths under test, in table order.
const (
	pathDirect  = "direct"
	pathPlain   = "plain"
	pathLLMGate = "llmgate"
)

// pathLabel returns the name of a path in the tables.
func pathLabel(name string) string {
	switch name {
	case pathDirect:
		return "direct (no proxy)"
	case pathPlain:
		return "httputil.ReverseProxy"
	}
	return name
}

// report holds every measurement of a run and renders them.
type report struct {
	cfg     config
	command string
	started time.Time
	commit  string
	pinned  bool
	pinNote string
	load    string // load average at start
	cpus    int    // online CPUs
	model   string // CPU model

	paths  []string             // every path, in table order
	json   map[string][]*window // by path, one per round
	single map[string][]*window // JSON with one client
	stream map[string][]*window
	hold   map[string][]*holdWindow // proxies only
	warmup tally                    // failures during warm-ups
	notes  []string                 // things the reader must know
}

// failures returns the number of failed requests of the whole run and the
// number of requests.
func (r *report) failures() (failed, total int) {
	failed = r.warmup.total()
	for _, m := range []map[string][]*window{r.json, r.single, r.stream} {
		for _, ws := range m {
			for _, w := range ws {
				failed += w.errs.total()
				total += w.requests
			}
		}
	}
	for _, hs := range r.hold {
		for _, h := range hs {
			failed += h.errs.total()
			total += h.streams
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
	for _, p := range r.paths {
		var j, s, h tally
		for _, w := range append(slices.Clone(r.json[p]), r.single[p]...) {
			j.merge(w.errs)
		}
		for _, w := range r.stream[p] {
			s.merge(w.errs)
		}
		for _, w := range r.hold[p] {
			h.merge(w.errs)
		}
		add("JSON via "+pathLabel(p), j)
		add("streaming via "+pathLabel(p), s)
		add("long streams via "+pathLabel(p), h)
	}
	return strings.Join(lines, "\n")
}

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
	p("%s %s; in each, every path is warmed up for %v, then measured for %v per scenario (%v with 1 client) "+
		"in slices of about %v that alternate between the paths. Tables show medians over rounds; "+
		"ratios and added latencies are medians of per-round values. Fake upstream and clients on loopback.\n\n",
		r.pinNote, rounds, cfg.warmup, cfg.duration, cfg.singleDuration(), min(cfg.slice, cfg.duration))
	if failed > 0 {
		p("> **⚠ ERRORS: %d of %d requests failed. These numbers are not trustworthy.**\n>\n", failed, total)
		for line := range strings.Lines(r.errorSummary()) {
			p("> %s", line)
		}
		p("\n\n")
	} else {
		p("No errors: all %s responses had status 200 and were complete (JSON valid with usage; streams with every event, usage and `[DONE]`).\n\n", commas(float64(total)))
	}

	p("### JSON chat completions, %d concurrent clients\n\n", cfg.concurrency)
	t := &table{head: []string{"Path", "p50", "p99", "Throughput", "Proxy CPU / request"}}
	for _, path := range r.paths {
		ws := r.json[path]
		t.add(pathLabel(path),
			fmtMs(medianOf(ws, func(w *window) float64 { return ms(percentile(w.latency, 0.50)) })),
			fmtMs(medianOf(ws, func(w *window) float64 { return ms(percentile(w.latency, 0.99)) })),
			fmtRate(medianOf(ws, (*window).rps), "req/s"),
			r.cpuCell(path, ws))
	}
	t.write(w)

	p("\n### JSON chat completions, 1 client (latency without queueing)\n\n")
	t = &table{head: []string{"Path", "p50", "p99", "Throughput", "Proxy CPU / request"}}
	for _, path := range r.paths {
		ws := r.single[path]
		t.add(pathLabel(path),
			fmtMs(medianOf(ws, func(w *window) float64 { return ms(percentile(w.latency, 0.50)) })),
			fmtMs(medianOf(ws, func(w *window) float64 { return ms(percentile(w.latency, 0.99)) })),
			fmtRate(medianOf(ws, (*window).rps), "req/s"),
			r.cpuCell(path, ws))
	}
	t.write(w)

	p("\n### Streaming chat completions, %d concurrent clients, %d content chunks %v apart\n\n", cfg.concurrency, cfg.events, cfg.delay)
	t = &table{head: []string{"Path", "First event p50", "First event p99", "Stream p50", "Stream p99", "Throughput", "Proxy CPU / request"}}
	for _, path := range r.paths {
		ws := r.stream[path]
		t.add(pathLabel(path),
			fmtMs(medianOf(ws, func(w *window) float64 { return ms(percentile(w.first, 0.50)) })),
			fmtMs(medianOf(ws, func(w *window) float64 { return ms(percentile(w.first, 0.99)) })),
			fmtMs(medianOf(ws, func(w *window) float64 { return ms(percentile(w.latency, 0.50)) })),
			fmtMs(medianOf(ws, func(w *window) float64 { return ms(percentile(w.latency, 0.99)) })),
			fmtRate(medianOf(ws, (*window).rps), "streams/s"),
			r.cpuCell(path, ws))
	}
	t.write(w)

	p("\n### %d concurrent streams held open, %v each (%d chunks %v apart)\n\n", cfg.streams, cfg.hold, cfg.holdEvents, cfg.holdDelay().Round(100*time.Microsecond))
	t = &table{head: []string{"Path", "RSS before", "Peak RSS (VmHWM)", "Peak − before, per stream", "Max streams open at once"}}
	for _, path := range r.paths {
		hs := r.hold[path]
		if len(hs) == 0 {
			continue
		}
		t.add(pathLabel(path),
			fmtMiB(medianOf(hs, func(h *holdWindow) float64 { return float64(h.idleRSS) })),
			fmtMiB(medianOf(hs, func(h *holdWindow) float64 { return float64(h.peakRSS) })),
			fmtKiB(medianOf(hs, func(h *holdWindow) float64 { return float64(h.peakRSS-h.idleRSS) / float64(h.streams) })),
			strconv.Itoa(int(medianOf(hs, func(h *holdWindow) float64 { return float64(h.maxOpen) }))))
	}
	t.write(w)

	p("\n### llmgate ÷ httputil.ReverseProxy\n\n")
	if cfg.rounds > 1 {
		p("Median of the per-round ratios, with their range over rounds in parentheses.\n\n")
	}
	t = &table{head: []string{"Ratio", "JSON", "Streaming"}}
	t.add("Proxy CPU per request",
		fmtRatios(r.ratio(r.json, func(w *window) float64 { return float64(w.cpuPerRequest()) })),
		fmtRatios(r.ratio(r.stream, func(w *window) float64 { return float64(w.cpuPerRequest()) })))
	t.add("Throughput",
		fmtRatios(r.ratio(r.json, (*window).rps)),
		fmtRatios(r.ratio(r.stream, (*window).rps)))
	t.add("Latency p50 (JSON: response; streaming: first event)",
		fmtRatios(r.ratio(r.json, func(w *window) float64 { return ms(percentile(w.latency, 0.50)) })),
		fmtRatios(r.ratio(r.stream, func(w *window) float64 { return ms(percentile(w.first, 0.50)) })))
	t.add("Latency p99 (JSON: response; streaming: first event)",
		fmtRatios(r.ratio(r.json, func(w *window) float64 { return ms(percentile(w.latency, 0.99)) })),
		fmtRatios(r.ratio(r.stream, func(w *window) float64 { return ms(percentile(w.first, 0.99)) })))
	t.write(w)
	if rss := r.holdRatio(); len(rss) > 0 {
		p("\nPeak RSS with %d open streams: llmgate ÷ httputil.ReverseProxy = %s.\n", cfg.streams, fmtRatios(rss))
	}

	p("\n### Added p50 latency over calling the upstream directly\n\n")
	t = &table{head: []string{"Path", "JSON response", "JSON response, 1 client", "Stream first event", "Whole stream"}}
	for _, path := range r.paths {
		if path == pathDirect {
			continue
		}
		t.add(pathLabel(path),
			fmtAdded(r.added(r.json, path, func(w *window) float64 { return ms(percentile(w.latency, 0.50)) })),
			fmtAdded(r.added(r.single, path, func(w *window) float64 { return ms(percentile(w.latency, 0.50)) })),
			fmtAdded(r.added(r.stream, path, func(w *window) float64 { return ms(percentile(w.first, 0.50)) })),
			fmtAdded(r.added(r.stream, path, func(w *window) float64 { return ms(percentile(w.latency, 0.50)) })))
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
			t.add(sc.name, pathLabel(path), commas(float64(requests)), strconv.Itoa(errs), proxy,
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
}

// cpuCell formats the median proxy CPU per request of a path.
func (r *report) cpuCell(path string, ws []*window) string {
	if path == pathDirect {
		return "—"
	}
	return fmtMicros(medianOf(ws, func(w *window) float64 { return float64(w.cpuPerRequest()) / 1e3 }))
}

// ratio returns f(llmgate) / f(plain) for each round.
func (r *report) ratio(m map[string][]*window, f func(*window) float64) []float64 {
	gw, pl := m[pathLLMGate], m[pathPlain]
	var rs []float64
	for i := range min(len(gw), len(pl)) {
		if d := f(pl[i]); d > 0 {
			rs = append(rs, f(gw[i])/d)
		}
	}
	return rs
}

// holdRatio returns the peak RSS ratio llmgate / plain for each round.
func (r *report) holdRatio() []float64 {
	gw, pl := r.hold[pathLLMGate], r.hold[pathPlain]
	var rs []float64
	for i := range min(len(gw), len(pl)) {
		if pl[i].peakRSS > 0 {
			rs = append(rs, float64(gw[i].peakRSS)/float64(pl[i].peakRSS))
		}
	}
	return rs
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
		for _, path := range []string{pathPlain, pathLLMGate} {
			ws := sc.m[path]
			gen := medianOf(ws, func(w *window) float64 { return busy(w.cpu.self+w.cpu.upstream, w.elapsed) })
			proxy := medianOf(ws, func(w *window) float64 { return busy(w.cpu.proxy, w.elapsed) })
			if gen >= 0.9 && proxy < 0.85 {
				notes = append(notes, fmt.Sprintf("%s via %s: the load generator's CPU was %s busy and the proxy's %s, "+
					"so throughput there is bounded by the load generator and understates the proxy's capacity; "+
					"compare CPU per request instead.", sc.name, pathLabel(path), fmtPct(gen), fmtPct(proxy)))
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

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/llmgate/gateway/providers"
)

// shape is a kind of request: the client's format and JSON or stream.
type shape struct {
	format providers.Format
	stream bool
}

func (s shape) String() string {
	if s.stream {
		return string(s.format) + " stream"
	}
	return string(s.format) + " JSON"
}

var shapes = []shape{
	{providers.FormatOpenAI, false}, {providers.FormatOpenAI, true},
	{providers.FormatAnthropic, false}, {providers.FormatAnthropic, true},
}

// shapeRow counts the outcomes of one request shape.
type shapeRow struct {
	okSame, okCross, okFailover, streamFailed, errors, clientEnded, violations int64
}

// exampleLog is a count with its first few examples.
type exampleLog struct {
	count    int64
	examples []string
}

// tally collects the outcome of every request, the violations with
// examples, and non-failing notes. Safe for concurrent use.
type tally struct {
	maxExamples int

	mu           sync.Mutex
	requests     int64
	classes      map[string]int64
	shapes       map[shape]*shapeRow
	clientFaults [numClientFaults]int64
	violations   map[string]*exampleLog
	notes        map[string]*exampleLog
}

func newTally(maxExamples int) *tally {
	t := &tally{maxExamples: maxExamples, classes: map[string]int64{}, shapes: map[shape]*shapeRow{},
		violations: map[string]*exampleLog{}, notes: map[string]*exampleLog{}}
	for _, s := range shapes {
		t.shapes[s] = &shapeRow{}
	}
	return t
}

func (t *tally) addExample(m map[string]*exampleLog, kind, example string) {
	l := m[kind]
	if l == nil {
		l = &exampleLog{}
		m[kind] = l
	}
	l.count++
	if len(l.examples) < t.maxExamples {
		l.examples = append(l.examples, example)
	}
}

// violation records a broken promise that is not tied to one client
// request (an upstream-side check, a log line, a resource leak).
func (t *tally) violation(kind, example string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.addExample(t.violations, kind, example)
}

// note records an observation that does not fail the run.
func (t *tally) note(kind, example string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.addExample(t.notes, kind, example)
}

// add records the outcome of one request.
func (t *tally) add(p *plan, r *result, recs []attemptRecord, o outcome) {
	var ex string
	if len(o.violations) > 0 {
		ex = describe(p, r, recs)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.requests++
	t.classes[o.class]++
	t.clientFaults[p.cfault]++
	row := t.shapes[shape{p.format, p.stream}]
	switch {
	case len(o.violations) > 0:
		row.violations++
	case o.class == classOKJSON || o.class == classOKStream:
		if o.cross {
			row.okCross++
		} else {
			row.okSame++
		}
		if o.failover {
			row.okFailover++
		}
	case o.class == classStreamFailed:
		row.streamFailed++
	case o.class == classHungUp || o.class == classCanceled:
		row.clientEnded++
	default:
		row.errors++
	}
	for _, v := range o.violations {
		t.addExample(t.violations, v.kind, v.detail+"\n"+ex)
	}
	for _, v := range o.notes {
		t.addExample(t.notes, v.kind, v.detail)
	}
}

// describe tells what a request was, what the upstreams did and what the
// client saw, for a violation's example.
func describe(p *plan, r *result, recs []attemptRecord) string {
	var b strings.Builder
	fmt.Fprintf(&b, "request   %s\n", p)
	if len(recs) == 0 {
		b.WriteString("upstream  (no upstream request recorded)\n")
	}
	for i, a := range recs {
		fmt.Fprintf(&b, "upstream  #%d %s\n", i+1, a)
	}
	if r.status == 0 {
		fmt.Fprintf(&b, "client    no response: %v (canceled by the client: %v)\n", r.err, r.canceled)
		return b.String()
	}
	fmt.Fprintf(&b, "client    %d", r.status)
	for _, k := range []string{"Content-Type", "Llmgate-Model", "Llmgate-Attempts", "Llmgate-Upstream-X-Request-Id",
		"Llmgate-Upstream-Request-Id", "Retry-After", "Llmgate-Request-Id"} {
		if v := r.header.Get(k); v != "" {
			fmt.Fprintf(&b, ", %s: %s", k, v)
		}
	}
	if r.err != nil {
		fmt.Fprintf(&b, ", read error: %v", r.err)
	}
	if r.hungUp {
		b.WriteString(", client hung up")
	}
	if r.canceled {
		b.WriteString(", client canceled")
	}
	fmt.Fprintf(&b, "\nbody      (%d bytes) %s\n", len(r.body), strconv.Quote(excerpt(r.body, 1500)))
	return b.String()
}

// logWriter turns the lines of a log.Logger into violations or notes.
type logWriter struct {
	t     *tally
	kind  string
	fatal bool
}

func (w logWriter) Write(b []byte) (int, error) {
	line := strings.TrimSpace(string(b))
	if w.fatal {
		w.t.violation(w.kind, line)
	} else {
		w.t.note(w.kind, line)
	}
	return len(b), nil
}

// slogTally is the gateway's logger: errors are violations (the gateway
// logs one for a panic), warnings notes.
type slogTally struct{ t *tally }

func (h slogTally) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h slogTally) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	msg := excerpt([]byte(b.String()), 4000)
	if r.Level >= slog.LevelError {
		h.t.violation("gateway logged an error", msg)
	} else {
		h.t.note("gateway logged a warning", msg)
	}
	return nil
}

func (h slogTally) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h slogTally) WithGroup(string) slog.Handler      { return h }

// summary is the result of a run.
type summary struct {
	cfg              config
	elapsed          time.Duration
	tally            *tally
	upstreamRequests int64
	faults           [numFaults]int64
	late             int // upstream requests recorded after their client request was checked
	stalls           int // process stalls of stallTolerance or more
	longestStall     time.Duration
	start, end       resources
}

// failed reports whether the run broke any promise.
func (s *summary) failed() bool {
	s.tally.mu.Lock()
	defer s.tally.mu.Unlock()
	return len(s.tally.violations) > 0
}

// violationKinds returns the kinds of violation seen, sorted.
func (s *summary) violationKinds() []string {
	s.tally.mu.Lock()
	defer s.tally.mu.Unlock()
	kinds := make([]string, 0, len(s.tally.violations))
	for k := range s.tally.violations {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}

// count returns the number of requests of an outcome class.
func (s *summary) count(class string) int64 {
	s.tally.mu.Lock()
	defer s.tally.mu.Unlock()
	return s.tally.classes[class]
}

// okCross returns the number of successful requests served across formats.
func (s *summary) okCross() int64 {
	s.tally.mu.Lock()
	defer s.tally.mu.Unlock()
	var n int64
	for _, r := range s.tally.shapes {
		n += r.okCross
	}
	return n
}

// thousands formats a count with thousands separators.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func share(n, total int64) string {
	if total == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(total))
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// print writes the report.
func (s *summary) print(w io.Writer) {
	t := s.tally
	t.mu.Lock()
	defer t.mu.Unlock()
	c := s.cfg
	fmt.Fprintf(w, "llmgate soak: %d clients for %v, seed %d, fault rate %.2f, per-attempt timeout %v, total timeout %v, %d keys per provider\n\n",
		c.clients, c.duration, c.seed, c.faultRate, c.attemptTimeout, c.totalTimeout, c.keysPerProvider)
	rate := float64(t.requests) / s.elapsed.Seconds()
	perReq := 0.0
	if t.requests > 0 {
		perReq = float64(s.upstreamRequests) / float64(t.requests)
	}
	fmt.Fprintf(w, "%s requests in %v (%.0f/s); %s upstream requests (%.2f per request)\n\n",
		thousands(t.requests), s.elapsed.Round(time.Millisecond), rate, thousands(s.upstreamRequests), perReq)

	classes := make([]string, 0, len(t.classes))
	for k := range t.classes {
		classes = append(classes, k)
	}
	order := map[string]int{classOKJSON: 0, classOKStream: 1, classStreamFailed: 2, classHungUp: 4, classCanceled: 5, classViolation: 6}
	sort.Slice(classes, func(i, j int) bool {
		oi, ok := order[classes[i]]
		if !ok {
			oi = 3
		}
		oj, ok := order[classes[j]]
		if !ok {
			oj = 3
		}
		if oi != oj {
			return oi < oj
		}
		return classes[i] < classes[j]
	})
	fmt.Fprintf(w, "%-40s %10s %7s\n", "Outcome", "Requests", "Share")
	for _, k := range classes {
		fmt.Fprintf(w, "%-40s %10s %7s\n", k, thousands(t.classes[k]), share(t.classes[k], t.requests))
	}

	fmt.Fprintf(w, "\n%-18s %10s %10s %10s %10s %10s %10s %10s\n", "Request shape", "ok same", "ok cross", "(failover)", "in-stream", "error", "client end", "violation")
	for _, sh := range shapes {
		r := t.shapes[sh]
		fmt.Fprintf(w, "%-18s %10s %10s %10s %10s %10s %10s %10s\n", sh, thousands(r.okSame), thousands(r.okCross),
			thousands(r.okFailover), thousands(r.streamFailed), thousands(r.errors), thousands(r.clientEnded), thousands(r.violations))
	}
	fmt.Fprintln(w, "(ok same/cross: served by a provider of the client's / the other format; (failover): of those, served after a failed attempt)")

	fmt.Fprintf(w, "\n%-34s %10s %7s   %s\n", "Upstream fault injected", "Requests", "Share", "Gateway must")
	for f := range numFaults {
		must := "serve it if chosen"
		switch fault(f).verdict() {
		case mustFailInStream:
			must = "end the stream with an error event"
		case mustNotServe:
			must = "fail over"
		}
		fmt.Fprintf(w, "%-34s %10s %7s   %s\n", fault(f), thousands(s.faults[f]), share(s.faults[f], s.upstreamRequests), must)
	}

	fmt.Fprintf(w, "\n%-34s %10s\n", "Client fault", "Requests")
	for f := range numClientFaults {
		fmt.Fprintf(w, "%-34s %10s\n", clientFault(f), thousands(t.clientFaults[f]))
	}

	fmt.Fprintf(w, "\n%-22s %12s %12s %14s\n", "Resources", "start", "end", "limit")
	fmt.Fprintf(w, "%-22s %12d %12d %14d\n", "goroutines", s.start.goroutines, s.end.goroutines, s.start.goroutines+c.goroutineSlack)
	if s.start.fds != nil {
		fmt.Fprintf(w, "%-22s %12d %12d %14d\n", "open file descriptors", len(s.start.fds), len(s.end.fds), len(s.start.fds))
	}
	if s.start.rss > 0 {
		fmt.Fprintf(w, "%-22s %12s %12s %14s   (peak %s)\n", "RSS", mib(s.start.rss), mib(s.end.rss),
			mib(s.start.rss+int64(c.rssSlackMiB)<<20), mib(s.end.hwm))
	}

	fmt.Fprintf(w, "\nLate upstream requests (arrived after their client request was checked): %d\n", s.late)
	fmt.Fprintf(w, "Process stalls of %v or more (an overloaded machine): %d", stallTolerance, s.stalls)
	if s.stalls > 0 {
		fmt.Fprintf(w, ", longest %v; timing verdicts on requests that overlapped one are notes, not violations", s.longestStall.Round(time.Millisecond))
	}
	fmt.Fprintln(w)
	if len(t.notes) > 0 {
		fmt.Fprintln(w, "\nNotes (do not fail the run):")
		for _, k := range sortedKeys(t.notes) {
			l := t.notes[k]
			fmt.Fprintf(w, "  %s: %d, first: %s\n", k, l.count, excerpt([]byte(l.examples[0]), 300))
		}
	}

	if len(t.violations) == 0 {
		fmt.Fprintln(w, "\nViolations: none")
		fmt.Fprintln(w, "\nRESULT: PASS")
		return
	}
	var total int64
	for _, l := range t.violations {
		total += l.count
	}
	fmt.Fprintf(w, "\nViolations: %s in %d kinds\n", thousands(total), len(t.violations))
	for _, k := range sortedKeys(t.violations) {
		l := t.violations[k]
		fmt.Fprintf(w, "\n[%s] %s\n", thousands(l.count), k)
		for i, ex := range l.examples {
			fmt.Fprintf(w, "  example %d: %s\n", i+1, strings.ReplaceAll(strings.TrimRight(ex, "\n"), "\n", "\n    "))
		}
	}
	fmt.Fprintln(w, "\nRESULT: FAIL")
}

func sortedKeys(m map[string]*exampleLog) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

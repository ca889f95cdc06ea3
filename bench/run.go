package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/llmgate/gateway/bench/internal/gatewaykey"
)

// target is one path under test.
type target struct {
	name string
	host string // host:port
	pid  int    // the proxy's process, 0 for the direct path
	bin  string // the proxy's binary, "" for the direct path
	mode string // the proxy's -mode
	// strategies runs the proxy with -strategies (model selection
	// strategies configured).
	strategies bool
	// keys runs the proxy with -keys (gateway API keys required).
	keys bool
	// ledger runs the proxy with -credits over this ledger (ledgerMemory
	// or ledgerSQLite; keys required and credits paid), "" for none.
	ledger string
	// query is appended to the path of every request sent to the target
	// ("?delay=0s"): how the direct path of the large-body scenario asks
	// the fake upstream for what the proxies' upstream URL asks for.
	query string
}

// llmgate reports whether the target is an llmgate build.
func (t target) llmgate() bool { return t.mode == pathLLMGate }

// hostOf returns the host:port of a child's base URL.
func hostOf(baseURL string) string { return strings.TrimPrefix(baseURL, "http://") }

// run builds and starts the processes, measures every scenario and returns
// the report. On error the report, when not nil, holds what was measured.
func run(ctx context.Context, cfg config, taskset, pinNote string) (*report, error) {
	rep := newReport(cfg, pinNote, taskset != "")
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
	// proxies take part in every scenario; with -strategies, -keys and
	// -credits, the llmgate+cel, llmgate+keys and llmgate+credits paths
	// only in the JSON, 1-client and streaming ones: what strategies, keys
	// and credits cost is CPU per request, which those measure, so they sit
	// out the held-streams and scale scenarios to keep the run short. The
	// credits paths also serve the same-format large requests: a
	// ~100k-token prompt is where a hold sized from the prompt would show
	// in the time to the first byte.
	proxies := []target{{name: pathPlain, bin: proxyBin, mode: pathPlain}, {name: pathLLMGate, bin: proxyBin, mode: pathLLMGate}}
	var mainOnly []target
	if cfg.strategies {
		mainOnly = append(mainOnly, target{name: pathCEL, bin: proxyBin, mode: pathLLMGate, strategies: true})
	}
	if cfg.keys {
		mainOnly = append(mainOnly, target{name: pathKeys, bin: proxyBin, mode: pathLLMGate, keys: true})
	}
	if cfg.credits {
		for _, l := range cfg.ledgers {
			mainOnly = append(mainOnly, target{name: creditsPath(l), bin: proxyBin, mode: pathLLMGate, keys: true, ledger: l})
		}
	}
	if cfg.baseline != "" {
		progress("building the llmgate proxy at %s", cfg.baseline)
		bin, rev, err := buildBaseline(ctx, root, dir, cfg.baseline)
		if err != nil {
			rep.notes = append(rep.notes, fmt.Sprintf("**No baseline**: %v", err))
			progress("no baseline: %v", err)
		} else {
			rep.baselineRev = rev
			rep.paths = append(rep.paths, pathBaseline)
			proxies = append(proxies, target{name: pathBaseline, bin: bin, mode: pathLLMGate})
		}
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
	for _, t := range append(slices.Clone(proxies), mainOnly...) {
		c, err := startChild(ctx, dir, childName(t.name), taskset, cfg.proxyCPUs, t.bin, proxyArgs(cfg, t, up.url, dir, childName(t.name))...)
		if err != nil {
			return nil, err
		}
		children = append(children, c)
		t.host, t.pid = hostOf(c.url), c.pid()
		targets = append(targets, t)
	}

	slices.SortStableFunc(targets, func(a, b target) int { // in table order
		return slices.Index(rep.paths, a.name) - slices.Index(rep.paths, b.name)
	})

	gen := newLoadGen()
	defer gen.close()
	jsonSpec, streamSpec := chatSpecs(cfg.events)
	sameJSON, sameStream, crossJSON, crossStream := largeSpecs(cfg.largeBytes, cfg.events)
	// An old baseline may not serve everything: without the basics it is
	// dropped, without cross-format serving it sits those requests out.
	noCross := map[string]bool{}
	for i := 0; i < len(targets); i++ {
		t := targets[i]
		err := sanityCheck(ctx, gen, t.host, jsonSpec, streamSpec)
		if err == nil && t.llmgate() {
			if cerr := sanityCheck(ctx, gen, t.host, crossJSON, crossStream); cerr != nil && t.name == pathBaseline {
				noCross[t.name] = true
				rep.notes = append(rep.notes, fmt.Sprintf("%s does not serve the cross-format requests (%v): it has no rows for them.",
					rep.label(t.name), cerr))
			} else {
				err = cerr
			}
		}
		if err == nil && t.keys {
			err = authCheck(ctx, t.host, jsonSpec)
		}
		if err == nil && t.ledger != "" {
			err = chargeCheck(ctx, t.host)
		}
		switch {
		case err == nil:
		case t.name == pathBaseline:
			rep.notes = append(rep.notes, fmt.Sprintf("**No baseline**: %s does not answer correctly (%v).", rep.label(t.name), err))
			progress("no baseline: %v", err)
			targets = slices.Delete(targets, i, i+1)
			proxies = slices.DeleteFunc(proxies, func(p target) bool { return p.name == pathBaseline })
			rep.paths = slices.DeleteFunc(rep.paths, func(p string) bool { return p == pathBaseline })
			rep.baselineRev = ""
			i--
		default:
			return nil, fmt.Errorf("%s does not answer correctly: %w%s", rep.label(t.name), err, childLog(children, childName(t.name)))
		}
	}
	m := measurer{cfg: cfg, gen: gen, rep: rep, upstream: up.pid(), variants: map[variant]*spec{}}

	scenarios := []struct {
		name   string
		spec   *spec
		conc   int
		window time.Duration
		dst    map[string][]*window
	}{
		{"json", jsonSpec, cfg.concurrency, cfg.duration, rep.json},
		{"json-1", jsonSpec, 1, cfg.singleDuration(), rep.single},
		{"stream", streamSpec, cfg.concurrency, cfg.duration, rep.stream},
	}
	for round := range cfg.rounds {
		for _, sc := range scenarios {
			if err := m.round(ctx, round, sc.name, targets, sc.spec, sc.conc, sc.window, sc.dst); err != nil {
				return rep, err
			}
		}
	}

	// Long streams: a fresh proxy process per round, so that its peak RSS
	// is that of holding the streams, not of the load before.
	hold := func(name string, n, events int, delay time.Duration, rounds int, dst map[string][]*holdWindow) error {
		q := url.Values{"events": {strconv.Itoa(events)}, "delay": {delay.String()}}
		holdURL := up.url + "?" + q.Encode()
		_, s := chatSpecs(events)
		for round := range rounds {
			for i := range proxies {
				t := proxies[(i+round)%len(proxies)]
				h, err := holdRound(ctx, cfg, gen, dir, taskset, t, fmt.Sprintf("%s-%s-%d", t.name, name, round+1),
					holdURL, jsonSpec, s, n, &rep.warmup)
				if err != nil {
					return err
				}
				dst[t.name] = append(dst[t.name], h)
				if !h.resetHWM && !rep.hwmNoted {
					rep.hwmNoted = true
					rep.notes = append(rep.notes, "VmHWM could not be reset through /proc/<pid>/clear_refs: "+
						"the peak RSS of the held streams may include the proxy's warm-up.")
				}
				progress("round %d/%d  %-6s  %-26s  %d streams, max %d open, all open after %v, RSS %s → peak %s (%s per stream), errors %d",
					round+1, rounds, name, rep.label(t.name), h.streams, h.maxOpen, h.lastOpen.Round(time.Millisecond),
					fmtMiB(float64(h.idleRSS)), fmtMiB(float64(h.peakRSS)), fmtKiB(h.perStream()), h.errs.total())
			}
		}
		return nil
	}
	if err := hold("hold", cfg.streams, cfg.holdEvents, cfg.holdDelay(), cfg.rounds, rep.hold); err != nil {
		return rep, err
	}

	// Large requests, in the client's format and across formats, through
	// proxies of their own whose upstream sends stream chunks back to back,
	// so that a request's CPU time is the proxy's work rather than its
	// wake-ups between chunks. The ReverseProxy cannot translate, so it only
	// serves the same-format requests; so do the direct path (for the time
	// each proxy adds to the first byte) and the credits paths.
	const largeQuery = "?delay=0s"
	var large, largeCredits []target
	largeProxies := slices.Clone(proxies)
	for _, t := range mainOnly {
		if t.ledger != "" { // llmgate+cel and llmgate+keys sit the scenario out
			largeProxies = append(largeProxies, t)
		}
	}
	for _, t := range largeProxies {
		name := childName(t.name) + "-large"
		c, err := startChild(ctx, dir, name, taskset, cfg.proxyCPUs, t.bin, proxyArgs(cfg, t, up.url+largeQuery, dir, name)...)
		if err != nil {
			return rep, err
		}
		children = append(children, c)
		t.host, t.pid = hostOf(c.url), c.pid()
		if t.ledger != "" {
			if err := sanityCheck(ctx, gen, t.host, sameJSON); err != nil {
				return rep, fmt.Errorf("%s (large requests) does not answer correctly: %w%s", rep.label(t.name), err, c.logTail(10))
			}
			largeCredits = append(largeCredits, t)
		} else {
			large = append(large, t)
		}
	}
	cross := slices.DeleteFunc(slices.Clone(large[1:]), func(t target) bool { return noCross[t.name] })
	same := append(append([]target{{name: pathDirect, host: hostOf(up.url), query: largeQuery}}, large...), largeCredits...)
	cases := []struct {
		spec    *spec
		targets []target
	}{{sameJSON, same}, {sameStream, same}, {crossJSON, cross}, {crossStream, cross}}
	for round := range cfg.rounds {
		for _, c := range cases {
			dst := rep.large[c.spec.name]
			if dst == nil {
				dst = map[string][]*window{}
				rep.large[c.spec.name] = dst
			}
			if err := m.round(ctx, round, c.spec.name, c.targets, c.spec, cfg.largeConc, cfg.largeDuration, dst); err != nil {
				return rep, err
			}
		}
	}

	if cfg.scaleStreams > 0 {
		rep.fdLimit = fdLimit()
		if need := 2*cfg.scaleStreams + 512; rep.fdLimit < need {
			rep.notes = append(rep.notes, fmt.Sprintf("**Scale scenario skipped**: %d streams need about %d file descriptors in the proxy, "+
				"and the limit is %d (raise it with ulimit -n).", cfg.scaleStreams, need, rep.fdLimit))
		} else if err := hold("scale", cfg.scaleStreams, cfg.scaleEvents, cfg.scaleDelay, cfg.scaleRounds, rep.scale); err != nil {
			return rep, err
		}
	}

	// The credits paths must have charged every request they served.
	for _, t := range append(targets, largeCredits...) {
		if t.ledger == "" {
			continue
		}
		scenario := "JSON, 1 client, streaming"
		if slices.Contains(largeCredits, t) {
			scenario = "large requests"
		}
		chk := ledgerCheck{path: t.name, scenario: scenario, sent: gen.sent(t.host)}
		chk.snap, chk.err = settled(ctx, t.host, chk.sent)
		rep.ledgers = append(rep.ledgers, chk)
		progress("ledger of %-33s  %-25s  %d requests sent, %d usage records, $%s spent, $%s held",
			rep.label(t.name), scenario, chk.sent, chk.snap.Records, chk.snap.Spent, chk.snap.Held)
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

// measurer measures rounds of the closed-loop scenarios.
type measurer struct {
	cfg      config
	gen      *loadGen
	rep      *report
	upstream int // the fake upstream's pid
	variants map[variant]*spec
}

// variant is a spec sent with a query (target.query).
type variant struct {
	s     *spec
	query string
}

// specFor returns s as sent to t: with t.query appended to its path. The
// same spec and query give the same *spec, so that workers reuse the
// request bytes they rendered for it.
func (m *measurer) specFor(t target, s *spec) *spec {
	if t.query == "" {
		return s
	}
	k := variant{s, t.query}
	if v, ok := m.variants[k]; ok {
		return v
	}
	v := *s
	v.path += t.query
	m.variants[k] = &v
	return &v
}

// round measures one round of scenario name: s sent by conc clients to each
// of targets, after a warm-up, for d in slices that alternate between
// the targets (so that a burst of load from other processes hits every
// path of the round alike), starting with a different target each round.
// It appends each target's window to dst.
func (m *measurer) round(ctx context.Context, round int, name string, targets []target, s *spec, conc int,
	d time.Duration, dst map[string][]*window) error {
	order := make([]target, len(targets))
	for i := range targets {
		order[i] = targets[(i+round)%len(targets)]
	}
	if m.cfg.warmup > 0 {
		for _, t := range order {
			warm, err := m.gen.measure(ctx, t.host, m.specFor(t, s), conc, m.cfg.warmup, pids{})
			if err != nil {
				return err
			}
			m.rep.warmup.merge(warm.errs)
		}
	}
	n := max(1, int((d+m.cfg.slice/2)/m.cfg.slice))
	slices := make([][]*window, len(order))
	for range n {
		for i, t := range order {
			w, err := m.gen.measure(ctx, t.host, m.specFor(t, s), conc, d/time.Duration(n),
				pids{proxy: t.pid, upstream: m.upstream, self: os.Getpid()})
			if err != nil {
				return err
			}
			slices[i] = append(slices[i], w)
		}
	}
	for i, t := range order {
		w := mergeWindows(slices[i])
		dst[t.name] = append(dst[t.name], w)
		cpu := "—"
		if t.pid != 0 {
			cpu = fmtMicros(float64(w.cpuPerRequest()) / 1e3)
		}
		progress("round %d/%d  %-12s  %-33s  %7.0f req/s  first %-9s  p50 %-9s  p99 %-9s  proxy cpu/req %-9s  others %-4s  errors %d",
			round+1, m.cfg.rounds, name, m.rep.label(t.name), w.rps(),
			fmtMs(ms(percentile(w.first, 0.5))), fmtMs(ms(percentile(w.latency, 0.5))), fmtMs(ms(percentile(w.latency, 0.99))), cpu,
			fmtPct(busy(w.cpu.others(), w.elapsed)), w.errs.total())
	}
	return nil
}

// holdRound starts a fresh proxy like t, named name, in front of upstream,
// warms it up with warm requests, holds n streams of s open through it at
// once and stops it. Failures during the warm-up are added to warmupErrs.
func holdRound(ctx context.Context, cfg config, gen *loadGen, dir, taskset string, t target, name, upstream string,
	warm, s *spec, n int, warmupErrs *tally) (*holdWindow, error) {
	c, err := startChild(ctx, dir, name, taskset, cfg.proxyCPUs, t.bin, proxyArgs(cfg, t, upstream, dir, name)...)
	if err != nil {
		return nil, err
	}
	defer c.stop()
	defer gen.forget(hostOf(c.url))
	if cfg.warmup > 0 {
		w, err := gen.measure(ctx, hostOf(c.url), warm, cfg.concurrency, cfg.warmup, pids{})
		if err != nil {
			return nil, err
		}
		warmupErrs.merge(w.errs)
		gen.forget(hostOf(c.url)) // the warm-up's connections are not part of the peak
	}
	h, err := gen.hold(ctx, hostOf(c.url), s, n, c.pid())
	if h != nil && h.errs.total() > 0 && c.logLines() > 0 {
		progress("%s", c.logTail(5))
	}
	return h, err
}

// childName returns the name of a path's process, its log file and its
// ledger file: the path's name without slashes.
func childName(path string) string { return strings.ReplaceAll(path, "/", "-") }

// proxyArgs returns the command line of a proxy process like t, named name.
// A SQLite ledger is the file dir/name.db.
func proxyArgs(cfg config, t target, upstream, dir, name string) []string {
	args := []string{"-mode", t.mode, "-upstream", upstream}
	if t.mode == pathPlain && cfg.liveBody {
		args = append(args, "-live-body")
	}
	if t.strategies {
		args = append(args, "-strategies")
	}
	if t.keys {
		args = append(args, "-keys")
	}
	switch t.ledger {
	case "":
	case ledgerSQLite, ledgerSQLiteLease:
		args = append(args, "-credits", t.ledger+":"+filepath.Join(dir, name+".db"))
	default:
		args = append(args, "-credits", t.ledger)
	}
	return args
}

// sanityCheck sends one request of each spec.
func sanityCheck(ctx context.Context, gen *loadGen, host string, specs ...*spec) error {
	w := gen.newWorker(host, bigBuffers)
	defer w.drop()
	for _, s := range specs {
		if _, err := w.do(ctx, s, time.Now(), nil); err != nil {
			return fmt.Errorf("%s request: %w", s.name, err)
		}
	}
	return nil
}

// authCheck proves that the gateway at host requires its gateway API key,
// so that a path meant to authenticate every request cannot pass the
// sanity check without doing so: s sent with gatewaykey.Unknown (a token of
// the right shape that no key has) and s sent without any credential must
// both be refused with 401. sanityCheck has already sent s with
// gatewaykey.Token, which must succeed.
func authCheck(ctx context.Context, host string, s *spec) error {
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: time.Minute}
	for _, auth := range []string{"Bearer " + gatewaykey.Unknown, ""} {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+host+s.path, bytes.NewReader(s.body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		what := "without a credential"
		if auth != "" {
			req.Header.Set("Authorization", auth)
			what = "with an unknown gateway token"
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("%s request %s: %w", s.name, what, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			return fmt.Errorf("%s request %s: status %d, want 401: the path does not authenticate (%s)",
				s.name, what, resp.StatusCode, bytes.TrimSpace(body))
		}
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

// fdLimit returns the hard limit on open files that the proxies and the
// driver can raise their soft limit to (Go programs do so at start).
func fdLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return int(min(rl.Max, uint64(math.MaxInt)))
}

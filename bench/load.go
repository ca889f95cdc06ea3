package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// chatRequest is the body of every request: a realistic chat completion
// request of about 1 KB (a system and a user message). The streaming
// variant adds "stream" and asks for the usage chunk, as clients that
// meter usage do.
const chatRequest = `{"model":"gpt-4o-mini","messages":[` +
	`{"role":"system","content":"You are a concise technical assistant for a software company. Answer in plain English, ` +
	`prefer short paragraphs and bullet lists, include code only when it helps, and say so when you are not sure. ` +
	`Never invent APIs, flags or version numbers; if the user's environment matters, ask about it first."},` +
	`{"role":"user","content":"We run a Go service behind a reverse proxy that forwards chat completion requests to several ` +
	`model providers. Under load, p99 latency doubles while CPU stays under half a core. What should we measure first to ` +
	`find out whether the proxy, the connection pool to the upstreams or the upstreams themselves are responsible, and ` +
	`which Go runtime settings (GOMAXPROCS, GOGC, GOMEMLIMIT) are worth trying? Keep the answer under 200 words and end ` +
	`with a short checklist we can follow during the next load test."}` +
	`],"temperature":0.2,"max_tokens":400`

// Kinds of failed requests.
const (
	errTransport  = "transport error"
	errStatus     = "unexpected status"
	errBadBody    = "bad JSON response"
	errIncomplete = "incomplete stream"
)

// checkError is a failed request: the kind counts it, the detail is kept as
// an example.
type checkError struct {
	kind, detail string
}

func (e *checkError) Error() string { return e.kind + ": " + e.detail }

// tally counts failed requests by kind and keeps the first example of each.
type tally struct {
	count   map[string]int
	example map[string]string
}

// add records err.
func (t *tally) add(err error) {
	if t.count == nil {
		t.count, t.example = map[string]int{}, map[string]string{}
	}
	kind, detail := errTransport, err.Error()
	var ce *checkError
	if errors.As(err, &ce) {
		kind, detail = ce.kind, ce.detail
	}
	if t.count[kind] == 0 {
		t.example[kind] = detail
	}
	t.count[kind]++
}

// merge adds o's counts to t.
func (t *tally) merge(o tally) {
	for k, n := range o.count {
		if t.count == nil {
			t.count, t.example = map[string]int{}, map[string]string{}
		}
		if t.count[k] == 0 {
			t.example[k] = o.example[k]
		}
		t.count[k] += n
	}
}

// total returns the number of failed requests.
func (t *tally) total() int {
	n := 0
	for _, c := range t.count {
		n += c
	}
	return n
}

// String lists the counts with an example of each kind.
func (t *tally) String() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(t.count)) {
		parts = append(parts, fmt.Sprintf("%d × %s (e.g. %s)", t.count[k], k, t.example[k]))
	}
	return strings.Join(parts, "; ")
}

// loadGen is the load generator: closed-loop clients, each with its own
// keep-alive connection, which it drives with precomputed request bytes and
// http.ReadResponse rather than an http.Transport. That spares the
// per-connection goroutines and channel hand-offs of the transport, so
// that the load generator, which shares a CPU with the fake upstream, costs
// as little as possible. Safe for concurrent use.
type loadGen struct {
	jsonBody   []byte
	streamBody []byte
	dialer     net.Dialer
	mu         sync.Mutex
	idle       map[string][]*worker // by host: workers with open connections
}

func newLoadGen() *loadGen {
	return &loadGen{
		jsonBody:   []byte(chatRequest + "}"),
		streamBody: []byte(chatRequest + `,"stream":true,"stream_options":{"include_usage":true}}`),
		dialer:     net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
		idle:       map[string][]*worker{},
	}
}

// workers returns n workers for host, reusing idle ones (and their
// connections) first.
func (g *loadGen) workers(host string, n int) []*worker {
	g.mu.Lock()
	idle := g.idle[host]
	k := min(n, len(idle))
	ws := slices.Clone(idle[len(idle)-k:])
	g.idle[host] = idle[:len(idle)-k]
	g.mu.Unlock()
	for len(ws) < n {
		ws = append(ws, g.newWorker(host))
	}
	return ws
}

// release makes workers available for reuse.
func (g *loadGen) release(ws []*worker) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, w := range ws {
		g.idle[w.host] = append(g.idle[w.host], w)
	}
}

// forget closes the idle connections to host and forgets them.
func (g *loadGen) forget(host string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, w := range g.idle[host] {
		w.drop()
	}
	delete(g.idle, host)
}

// close closes every idle connection.
func (g *loadGen) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for host, ws := range g.idle {
		for _, w := range ws {
			w.drop()
		}
		delete(g.idle, host)
	}
}

// pids are the processes whose CPU time a window records; 0 means none.
type pids struct {
	proxy, upstream, self int
}

// cpuSnapshot is the CPU time of each of pids, and of the whole machine.
type cpuSnapshot struct {
	proxy, upstream, self, machine time.Duration
}

// others returns the CPU time of the processes not in the snapshot (other
// sessions on the machine, the kernel's own work).
func (s cpuSnapshot) others() time.Duration {
	return max(0, s.machine-s.proxy-s.upstream-s.self)
}

func snapshot(p pids) (cpuSnapshot, error) {
	var s cpuSnapshot
	var errs []error
	var err error
	if p != (pids{}) {
		s.machine, err = machineBusy()
		errs = append(errs, err)
	}
	for _, x := range []struct {
		pid int
		dst *time.Duration
	}{{p.proxy, &s.proxy}, {p.upstream, &s.upstream}, {p.self, &s.self}} {
		if x.pid == 0 {
			continue
		}
		d, err := cpuTime(x.pid)
		errs = append(errs, err)
		*x.dst = d
	}
	return s, errors.Join(errs...)
}

// window is the outcome of one measured run of one scenario against one
// target.
type window struct {
	requests int           // completed, failed ones included
	errs     tally         // failed requests
	elapsed  time.Duration // from the first request to the last response
	latency  []time.Duration
	first    []time.Duration // streams: time to the first event
	cpu      cpuSnapshot     // CPU used during the window
}

// rps returns the throughput in requests per second.
func (w *window) rps() float64 { return float64(w.requests) / w.elapsed.Seconds() }

// cpuPerRequest returns the proxy's CPU time per request served.
func (w *window) cpuPerRequest() time.Duration {
	if w.requests == 0 {
		return 0
	}
	return w.cpu.proxy / time.Duration(w.requests)
}

// measure runs conc closed-loop clients against baseURL for d: each sends a
// request, checks the whole response, and sends the next. Requests still in
// flight at d finish and count. With stream, each request is a streaming
// one whose response must carry exactly wantEvents data events, the last
// "[DONE]". It records the CPU time of the processes in p.
func (g *loadGen) measure(ctx context.Context, host string, stream bool, wantEvents, conc int, d time.Duration, p pids) (*window, error) {
	workers := g.workers(host, conc)
	defer g.release(workers)
	for _, w := range workers {
		w.reset()
	}
	before, err := snapshot(p)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t0 := time.Now()
				var first time.Duration
				var err error
				if stream {
					first, err = w.stream(ctx, wantEvents, t0, nil)
				} else {
					err = w.json(ctx)
				}
				total := time.Since(t0)
				w.n++
				if err != nil {
					w.errs.add(err)
					continue
				}
				w.latency = append(w.latency, total)
				if stream {
					w.first = append(w.first, first)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	after, err := snapshot(p)
	if err != nil {
		return nil, err
	}
	win := &window{elapsed: elapsed, cpu: cpuSnapshot{
		proxy:    after.proxy - before.proxy,
		upstream: after.upstream - before.upstream,
		self:     after.self - before.self,
		machine:  after.machine - before.machine,
	}}
	for _, w := range workers {
		win.requests += w.n
		win.errs.merge(w.errs)
		win.latency = append(win.latency, w.latency...)
		win.first = append(win.first, w.first...)
	}
	slices.Sort(win.latency)
	slices.Sort(win.first)
	return win, ctx.Err()
}

// mergeWindows returns the window made of ws, measured one after the other.
func mergeWindows(ws []*window) *window {
	m := &window{}
	for _, w := range ws {
		m.requests += w.requests
		m.errs.merge(w.errs)
		m.elapsed += w.elapsed
		m.latency = append(m.latency, w.latency...)
		m.first = append(m.first, w.first...)
		m.cpu.proxy += w.cpu.proxy
		m.cpu.upstream += w.cpu.upstream
		m.cpu.self += w.cpu.self
		m.cpu.machine += w.cpu.machine
	}
	slices.Sort(m.latency)
	slices.Sort(m.first)
	return m
}

// holdWindow is the outcome of one run of the long-streams scenario.
type holdWindow struct {
	streams  int
	errs     tally
	maxOpen  int   // most streams open at once (first event seen, not ended)
	idleRSS  int64 // proxy VmRSS before the streams, bytes
	peakRSS  int64 // proxy VmHWM after them, bytes
	resetHWM bool  // whether VmHWM was reset before the streams
	elapsed  time.Duration
}

// hold opens n streams against host at once, each on a new connection,
// waits for all of them to end, and records the peak RSS of process pid
// meanwhile.
func (g *loadGen) hold(ctx context.Context, host string, wantEvents, n, pid int) (*holdWindow, error) {
	idle, _, err := memory(pid)
	if err != nil {
		return nil, err
	}
	h := &holdWindow{streams: n, idleRSS: idle, resetHWM: resetPeakRSS(pid) == nil}
	var open, maxOpen atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		wg.Go(func() {
			w := g.newWorker(host)
			defer w.drop()
			opened := false
			_, err := w.stream(ctx, wantEvents, time.Now(), func() {
				opened = true
				now := open.Add(1)
				for {
					m := maxOpen.Load()
					if now <= m || maxOpen.CompareAndSwap(m, now) {
						break
					}
				}
			})
			if opened {
				open.Add(-1)
			}
			if err != nil {
				mu.Lock()
				h.errs.add(err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	h.elapsed = time.Since(start)
	h.maxOpen = int(maxOpen.Load())
	if _, h.peakRSS, err = memory(pid); err != nil {
		return nil, err
	}
	return h, ctx.Err()
}

// worker is one closed-loop client with one keep-alive connection, which
// it opens on first use and after a failure. It reuses its buffers between
// requests. Not safe for concurrent use.
type worker struct {
	g         *loadGen
	host      string
	jsonReq   []byte // whole HTTP requests
	streamReq []byte
	conn      net.Conn
	cr        *bufio.Reader // reads conn
	sr        *bufio.Reader // reads a stream body
	buf       bytes.Buffer
	n         int // requests sent in the current window
	errs      tally
	latency   []time.Duration
	first     []time.Duration
}

func (g *loadGen) newWorker(host string) *worker {
	req := func(body []byte) []byte {
		return append([]byte("POST /v1/chat/completions HTTP/1.1\r\nHost: "+host+
			"\r\nUser-Agent: llmgate-bench/1\r\nContent-Type: application/json\r\nAuthorization: Bearer sk-bench-client"+
			"\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"), body...)
	}
	return &worker{
		g: g, host: host,
		jsonReq: req(g.jsonBody), streamReq: req(g.streamBody),
		cr: bufio.NewReaderSize(nil, 32<<10), sr: bufio.NewReaderSize(nil, 64<<10),
	}
}

// reset clears the counters of the current window.
func (w *worker) reset() {
	w.n, w.errs = 0, tally{}
	w.latency, w.first = w.latency[:0], w.first[:0]
}

// drop closes the connection.
func (w *worker) drop() {
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
		w.cr.Reset(nil)
	}
}

// roundTrip sends one request and reads the response header; it checks the
// status and the Content-Type. On error the connection is dropped. The
// caller must read the body to its end, or drop the connection.
func (w *worker) roundTrip(ctx context.Context, req []byte, wantType string) (*http.Response, error) {
	if w.conn == nil {
		c, err := w.g.dialer.DialContext(ctx, "tcp", w.host)
		if err != nil {
			return nil, &checkError{errTransport, err.Error()}
		}
		w.conn = c
		w.cr.Reset(c)
	}
	_ = w.conn.SetDeadline(time.Now().Add(time.Minute))
	if _, err := w.conn.Write(req); err != nil {
		w.drop()
		return nil, &checkError{errTransport, err.Error()}
	}
	resp, err := http.ReadResponse(w.cr, nil)
	if err != nil {
		w.drop()
		return nil, &checkError{errTransport, err.Error()}
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		w.drop()
		return nil, &checkError{errStatus, fmt.Sprintf("%d: %s", resp.StatusCode, bytes.TrimSpace(b))}
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, wantType) {
		w.drop()
		return nil, &checkError{errStatus, fmt.Sprintf("Content-Type %q, want %s", ct, wantType)}
	}
	return resp, nil
}

// cancelOnDone unblocks the worker's I/O when ctx is done; call the
// returned function when the request is over.
func (w *worker) cancelOnDone(ctx context.Context) (stop func() bool) {
	return context.AfterFunc(ctx, func() {
		if c := w.conn; c != nil {
			_ = c.SetDeadline(time.Unix(1, 0))
		}
	})
}

// json sends a JSON chat completion request and checks that the whole
// response arrived: valid JSON with a finish_reason and usage.
func (w *worker) json(ctx context.Context) error {
	defer w.cancelOnDone(ctx)()
	resp, err := w.roundTrip(ctx, w.jsonReq, "application/json")
	if err != nil {
		return err
	}
	w.buf.Reset()
	_, err = w.buf.ReadFrom(resp.Body)
	if err != nil || resp.Close {
		w.drop()
	}
	if err != nil {
		return &checkError{errBadBody, "reading the body: " + err.Error()}
	}
	b := w.buf.Bytes()
	switch {
	case !json.Valid(b):
		return &checkError{errBadBody, fmt.Sprintf("invalid JSON (%d bytes)", len(b))}
	case !bytes.Contains(b, []byte(`"finish_reason":"stop"`)) || !bytes.Contains(b, []byte(`"usage":{`)):
		return &checkError{errBadBody, "no finish_reason or usage"}
	}
	return nil
}

// stream sends a streaming request and reads the event stream to its end,
// returning the time from start to the first event. It calls onFirst, if
// not nil, when the first event arrives. The stream must end with the
// server closing it after exactly want data events, the last "[DONE]", one
// before carrying usage.
func (w *worker) stream(ctx context.Context, want int, start time.Time, onFirst func()) (time.Duration, error) {
	defer w.cancelOnDone(ctx)()
	resp, err := w.roundTrip(ctx, w.streamReq, "text/event-stream")
	if err != nil {
		return 0, err
	}
	first, err := readStream(w.sr, resp.Body, want, start, onFirst)
	if err != nil || resp.Close {
		w.drop()
	}
	return first, err
}

// readStream reads a chat.completion.chunk event stream from body (see
// worker.stream), using br as its buffer.
func readStream(br *bufio.Reader, body io.Reader, want int, start time.Time, onFirst func()) (first time.Duration, err error) {
	br.Reset(body)
	defer br.Reset(nil)
	var (
		events         int
		isData, isDone bool // about the event being read
		done, sawUsage bool // about the stream so far
	)
	incomplete := func(why string) error {
		return &checkError{errIncomplete, fmt.Sprintf("%s (%d of %d data events)", why, events, want)}
	}
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, io.EOF) && len(line) == 0 {
			break
		}
		if errors.Is(err, io.EOF) {
			return first, incomplete("stream ended inside an event")
		}
		if err != nil {
			return first, incomplete(err.Error())
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			if isData {
				events++
				if events == 1 {
					first = time.Since(start)
					if onFirst != nil {
						onFirst()
					}
				}
				done = isDone
			}
			isData, isDone = false, false
			continue
		}
		if done {
			return first, incomplete("data after [DONE]")
		}
		if data, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			data = bytes.TrimPrefix(data, []byte(" "))
			isData = true
			if string(data) == "[DONE]" {
				isDone = true
			} else if bytes.Contains(data, []byte(`"usage":{"prompt_tokens"`)) {
				sawUsage = true
			}
		}
	}
	switch {
	case !done:
		return first, incomplete("no [DONE] at the end")
	case events != want:
		return first, incomplete("wrong number of events")
	case !sawUsage:
		return first, incomplete("no usage chunk")
	}
	return first, nil
}

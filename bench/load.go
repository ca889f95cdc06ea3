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

	"github.com/llmgate/gateway/bench/internal/gatewaykey"
)

// chatRequest is the body of the requests of the main scenarios: a
// realistic chat completion request of about 1 KB (a system and a user
// message), without its closing brace. The streaming variant adds "stream"
// and asks for the usage chunk, as clients that meter usage do.
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

// respKind is the kind of response a request expects, and how it is
// checked.
type respKind int

const (
	// respJSON is a chat.completion: valid JSON with finish_reason "stop"
	// and usage.
	respJSON respKind = iota
	// respChatStream is a chat.completion.chunk stream: exactly spec.want
	// data events, the last "[DONE]", one before carrying usage.
	respChatStream
	// respMessagesStream is an Anthropic Messages stream: message_start
	// first, text deltas, message_delta with usage, message_stop last.
	respMessagesStream
)

// spec is one kind of request the load generator sends. Read-only once
// made.
type spec struct {
	name string // for progress lines
	path string // request path, for example "/v1/chat/completions"
	body []byte
	kind respKind
	want int // respChatStream: data events
}

// stream reports whether the response is an event stream.
func (s *spec) stream() bool { return s.kind != respJSON }

// chatSpecs returns the requests of the main scenarios: JSON and streamed
// chat completions with chatRequest, streams of events content chunks.
func chatSpecs(events int) (json, stream *spec) {
	json = &spec{name: "json", path: "/v1/chat/completions", body: []byte(chatRequest + "}"), kind: respJSON}
	stream = &spec{name: "stream", path: "/v1/chat/completions", kind: respChatStream, want: wantEvents(events),
		body: []byte(chatRequest + `,"stream":true,"stream_options":{"include_usage":true}}`)}
	return json, stream
}

// loadGen is the load generator: closed-loop clients, each with its own
// keep-alive connection, which it drives with precomputed request bytes and
// http.ReadResponse rather than an http.Transport. That spares the
// per-connection goroutines and channel hand-offs of the transport, so
// that the load generator, which shares a CPU with the fake upstream, costs
// as little as possible. Safe for concurrent use.
type loadGen struct {
	dialer net.Dialer
	mu     sync.Mutex
	idle   map[string][]*worker     // by host: workers with open connections
	counts map[string]*atomic.Int64 // by host: requests sent (see sent)
}

func newLoadGen() *loadGen {
	return &loadGen{
		dialer: net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
		idle:   map[string][]*worker{},
		counts: map[string]*atomic.Int64{},
	}
}

// counter returns the count of requests sent to host.
func (g *loadGen) counter(host string) *atomic.Int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.counts[host]
	if c == nil {
		c = new(atomic.Int64)
		g.counts[host] = c
	}
	return c
}

// sent returns the number of requests the load generator's workers have
// written to host in full, warm-ups and checks included: every one of them
// reached the proxy, which must meter it.
func (g *loadGen) sent(host string) int64 { return g.counter(host).Load() }

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
		ws = append(ws, g.newWorker(host, bigBuffers))
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

// sub returns s − o.
func (s cpuSnapshot) sub(o cpuSnapshot) cpuSnapshot {
	return cpuSnapshot{proxy: s.proxy - o.proxy, upstream: s.upstream - o.upstream, self: s.self - o.self, machine: s.machine - o.machine}
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
	first    []time.Duration // time to the first event (streams) or the response header (JSON)
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

// measure runs conc closed-loop clients sending s to host for d: each sends
// a request, checks the whole response, and sends the next. Requests still
// in flight at d finish and count. It records the CPU time of the
// processes in p.
func (g *loadGen) measure(ctx context.Context, host string, s *spec, conc int, d time.Duration, p pids) (*window, error) {
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
				first, err := w.do(ctx, s, t0, nil)
				total := time.Since(t0)
				w.n++
				if err != nil {
					w.errs.add(err)
					continue
				}
				w.latency = append(w.latency, total)
				w.first = append(w.first, first)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	after, err := snapshot(p)
	if err != nil {
		return nil, err
	}
	win := &window{elapsed: elapsed, cpu: after.sub(before)}
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

// holdWindow is the outcome of one run of a held-streams scenario.
type holdWindow struct {
	streams  int
	errs     tally
	maxOpen  int           // most streams open at once (first event seen, not ended)
	lastOpen time.Duration // from the start to the last stream's first event
	idleRSS  int64         // proxy VmRSS before the streams, bytes
	peakRSS  int64         // proxy VmHWM after them, bytes
	resetHWM bool          // whether VmHWM was reset before the streams
	elapsed  time.Duration
}

// perStream returns (peak − before) / streams, in bytes.
func (h *holdWindow) perStream() float64 {
	return float64(h.peakRSS-h.idleRSS) / float64(h.streams)
}

// hold opens n streams of s against host at once, each on a new
// connection, waits for all of them to end, and records the peak RSS of
// process pid meanwhile. The connections are opened first and the requests
// sent together once all are open, so that the streams overlap as much as
// they can. Each stream costs the load generator one goroutine, one
// connection and small buffers.
func (g *loadGen) hold(ctx context.Context, host string, s *spec, n, pid int) (*holdWindow, error) {
	idle, _, err := memory(pid)
	if err != nil {
		return nil, err
	}
	h := &holdWindow{streams: n, idleRSS: idle, resetHWM: resetPeakRSS(pid) == nil}
	var open, maxOpen atomic.Int64
	var mu sync.Mutex
	var dialed, wg sync.WaitGroup
	ready := make(chan struct{})
	var start time.Time
	dialed.Add(n)
	for range n {
		wg.Go(func() {
			w := g.newWorker(host, smallBuffers)
			defer w.drop()
			err := w.dial(ctx)
			dialed.Done()
			<-ready
			opened := false
			var first time.Duration
			if err == nil {
				first, err = w.do(ctx, s, start, func() {
					opened = true
					now := open.Add(1)
					for {
						m := maxOpen.Load()
						if now <= m || maxOpen.CompareAndSwap(m, now) {
							break
						}
					}
				})
			}
			if opened {
				open.Add(-1)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				h.errs.add(err)
			}
			h.lastOpen = max(h.lastOpen, first)
		})
	}
	dialed.Wait()
	start = time.Now()
	close(ready)
	wg.Wait()
	h.elapsed = time.Since(start)
	h.maxOpen = int(maxOpen.Load())
	if _, h.peakRSS, err = memory(pid); err != nil {
		return nil, err
	}
	return h, ctx.Err()
}

// Buffer sizes of a worker's readers: big for the closed-loop clients, which
// read whole responses quickly, small for the thousands of held streams.
const (
	bigBuffers   = 32 << 10
	smallBuffers = 4 << 10
)

// worker is one closed-loop client with one keep-alive connection, which
// it opens on first use and after a failure. It reuses its buffers between
// requests. Not safe for concurrent use.
type worker struct {
	g    *loadGen
	host string
	sent *atomic.Int64    // requests written to host by any worker
	reqs map[*spec][]byte // whole HTTP requests, rendered on first use
	conn net.Conn
	cr   *bufio.Reader // reads conn
	sr   *bufio.Reader // reads a stream body
	buf  bytes.Buffer
	data []byte // the data of the stream event being read

	n       int // requests sent in the current window
	errs    tally
	latency []time.Duration
	first   []time.Duration
}

// newWorker returns a worker for host whose readers have bufSize bytes.
func (g *loadGen) newWorker(host string, bufSize int) *worker {
	return &worker{
		g: g, host: host, sent: g.counter(host), reqs: map[*spec][]byte{},
		cr: bufio.NewReaderSize(nil, bufSize), sr: bufio.NewReaderSize(nil, bufSize),
	}
}

// request returns the HTTP request bytes of s. Every path gets the
// benchmark's gateway token (gatewaykey.Token) as Authorization: Bearer:
// the llmgate+keys path requires it; the others ignore it (the plain proxy
// forwards it and the fake upstream does not read it; an llmgate without a
// key store keeps it as a pass-through credential that it never sends, as
// its providers have keys), so that every path reads the same bytes.
func (w *worker) request(s *spec) []byte {
	if b, ok := w.reqs[s]; ok {
		return b
	}
	b := append([]byte("POST "+s.path+" HTTP/1.1\r\nHost: "+w.host+
		"\r\nUser-Agent: llmgate-bench/1\r\nContent-Type: application/json\r\nAuthorization: Bearer "+gatewaykey.Token+
		"\r\nContent-Length: "+strconv.Itoa(len(s.body))+"\r\n\r\n"), s.body...)
	w.reqs[s] = b
	return b
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
	if err := w.dial(ctx); err != nil {
		return nil, err
	}
	_ = w.conn.SetDeadline(time.Now().Add(time.Minute))
	if _, err := w.conn.Write(req); err != nil {
		w.drop()
		return nil, &checkError{errTransport, err.Error()}
	}
	w.sent.Add(1)
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

// dial opens the worker's connection unless it is open.
func (w *worker) dial(ctx context.Context) error {
	if w.conn != nil {
		return nil
	}
	c, err := w.g.dialer.DialContext(ctx, "tcp", w.host)
	if err != nil {
		return &checkError{errTransport, err.Error()}
	}
	w.conn = c
	w.cr.Reset(c)
	return nil
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

// do sends s and reads and checks the whole response (see respKind). It
// returns the time from start to the first event of a stream, or to the
// response header of a JSON response, and calls onFirst, if not nil, at
// that moment.
func (w *worker) do(ctx context.Context, s *spec, start time.Time, onFirst func()) (time.Duration, error) {
	defer w.cancelOnDone(ctx)()
	wantType := "application/json"
	if s.stream() {
		wantType = "text/event-stream"
	}
	resp, err := w.roundTrip(ctx, w.request(s), wantType)
	if err != nil {
		return 0, err
	}
	var first time.Duration
	switch s.kind {
	case respJSON:
		first = time.Since(start)
		if onFirst != nil {
			onFirst()
		}
		err = w.readJSON(resp.Body)
	case respChatStream:
		first, err = readChatStream(w.sr, resp.Body, s.want, start, onFirst)
	case respMessagesStream:
		first, err = readMessagesStream(w.sr, resp.Body, start, onFirst)
	}
	if err != nil || resp.Close {
		w.drop()
	}
	return first, err
}

// readJSON reads a chat.completion and checks that the whole response
// arrived: valid JSON with a finish_reason and usage.
func (w *worker) readJSON(body io.Reader) error {
	w.buf.Reset()
	if _, err := w.buf.ReadFrom(body); err != nil {
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

// readEvents reads a text/event-stream from body with br as its buffer and
// calls ev with the name and data of each event that has data, in order,
// until the body ends; an error from ev stops it. It returns the time from
// start to the first such event, calling onFirst, if not nil, then. The
// data passed to ev is only valid during the call.
func readEvents(br *bufio.Reader, body io.Reader, start time.Time, onFirst func(), ev func(name, data []byte) error) (first time.Duration, err error) {
	br.Reset(body)
	defer br.Reset(nil)
	var (
		name, data []byte
		isData     bool // the event being read has a data line
		inEvent    bool // lines of an unfinished event were read
		n          int
	)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, io.EOF) && len(line) == 0 {
			if inEvent {
				return first, &checkError{errIncomplete, "stream ended inside an event"}
			}
			return first, nil
		}
		if errors.Is(err, io.EOF) {
			return first, &checkError{errIncomplete, "stream ended inside an event"}
		}
		if err != nil {
			return first, &checkError{errIncomplete, err.Error()}
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) > 0 {
			inEvent = true
			if v, ok := bytes.CutPrefix(line, []byte("data:")); ok {
				if isData {
					data = append(data, '\n')
				}
				data = append(data, bytes.TrimPrefix(v, []byte(" "))...)
				isData = true
			} else if v, ok := bytes.CutPrefix(line, []byte("event:")); ok {
				name = append(name[:0], bytes.TrimPrefix(v, []byte(" "))...)
			}
			continue
		}
		if isData {
			n++
			if n == 1 {
				first = time.Since(start)
				if onFirst != nil {
					onFirst()
				}
			}
			if err := ev(name, data); err != nil {
				return first, err
			}
		}
		name, data, isData, inEvent = name[:0], data[:0], false, false
	}
}

// readChatStream reads a chat.completion.chunk event stream (see
// respChatStream) with br as its buffer.
func readChatStream(br *bufio.Reader, body io.Reader, want int, start time.Time, onFirst func()) (time.Duration, error) {
	var events int
	var done, sawUsage bool
	incomplete := func(why string) error {
		return &checkError{errIncomplete, fmt.Sprintf("%s (%d of %d data events)", why, events, want)}
	}
	first, err := readEvents(br, body, start, onFirst, func(_, data []byte) error {
		if done {
			return errors.New("data after [DONE]")
		}
		events++
		if string(data) == "[DONE]" {
			done = true
		} else if bytes.Contains(data, []byte(`"usage":{"prompt_tokens"`)) {
			sawUsage = true
		}
		return nil
	})
	switch {
	case err != nil:
		return first, incomplete(detail(err))
	case !done:
		return first, incomplete("no [DONE] at the end")
	case events != want:
		return first, incomplete("wrong number of events")
	case !sawUsage:
		return first, incomplete("no usage chunk")
	}
	return first, nil
}

// readMessagesStream reads an Anthropic Messages event stream (see
// respMessagesStream) with br as its buffer.
func readMessagesStream(br *bufio.Reader, body io.Reader, start time.Time, onFirst func()) (time.Duration, error) {
	var events, deltas int
	var stopped, sawUsage bool
	first, err := readEvents(br, body, start, onFirst, func(name, data []byte) error {
		events++
		switch {
		case stopped:
			return errors.New("event after message_stop")
		case events == 1 && string(name) != "message_start":
			return fmt.Errorf("first event %q, want message_start", name)
		}
		switch string(name) {
		case "content_block_delta":
			if bytes.Contains(data, []byte(`"text_delta"`)) {
				deltas++
			}
		case "message_delta":
			sawUsage = bytes.Contains(data, []byte(`"usage":{`))
		case "message_stop":
			stopped = true
		case "error":
			return errors.New("error event: " + string(data))
		}
		return nil
	})
	why := ""
	switch {
	case err != nil:
		why = detail(err)
	case !stopped:
		why = "no message_stop at the end"
	case deltas == 0:
		why = "no text delta"
	case !sawUsage:
		why = "no usage in message_delta"
	default:
		return first, nil
	}
	return first, &checkError{errIncomplete, fmt.Sprintf("%s (%d events, %d text deltas)", why, events, deltas)}
}

// detail returns the detail of a checkError, or the error's text.
func detail(err error) string {
	if ce, ok := errors.AsType[*checkError](err); ok {
		return ce.detail
	}
	return err.Error()
}

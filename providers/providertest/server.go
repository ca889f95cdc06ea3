// Package providertest holds a scripted fake upstream that speaks the exact
// OpenAI and Anthropic wire formats over real HTTP, builders for the
// responses and event streams those APIs send, and RunConformance, a suite
// any providers.Provider implementation can run (in the spirit of
// testing/fstest.TestFS).
//
// A Server answers each incoming request with the next queued Step, or, when
// the queue is empty, with an automatic reply in its format that echoes the
// requested model:
//
//	s := providertest.Start(t, providers.FormatOpenAI)
//	s.Enqueue(providertest.RateLimited(providers.FormatOpenAI, "2"),
//		providertest.OpenAIChat("gpt-4o", "Hi!", providertest.Usage{Input: 9, Output: 2}))
//	p, _ := openai.New(openai.Config{Name: "openai", BaseURL: s.URL})
//	// the first Do gets a 429, the second the completion, later ones auto-replies
//
// The builders are the one implementation of the two wire formats that the
// module's fake upstreams share:
// the fixed ones (OpenAIChat, AnthropicStream, ...) use deterministic ids,
// and those named *Reply build the same shapes from a Reply, which also
// sets ids, timestamps, tool calls and a pause between streamed deltas. A
// Step is an http.Handler, so other fake upstreams — the llmgate demo
// upstream, the load benchmark's — answer with the same bytes without a
// Server.
package providertest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmgate/gateway/providers"
)

// Server is a fake upstream API of one wire format, listening on a loopback
// port. All methods are safe for concurrent use.
type Server struct {
	// URL is the API root to configure a provider with; it ends in "/v1/"
	// (for example "http://127.0.0.1:41234/v1/"). The Anthropic SDK wants
	// the root without "v1/".
	URL string

	format  providers.Format
	srv     *httptest.Server
	closing chan struct{}
	once    sync.Once
	active  atomic.Int64 // handlers running, for tests

	mu    sync.Mutex
	queue []Step
	reqs  []Recorded
}

// Step scripts the answer to one request. The zero Step answers 200 with an
// empty body.
type Step struct {
	// Status is the response status; 0 means 200.
	Status int
	// Header holds response headers. Content-Type defaults to
	// application/json for a Body and text/event-stream for Events.
	Header http.Header
	// Body is the response body when Events is nil.
	Body []byte
	// Events, when non-nil, makes the response a text/event-stream that
	// sends these events in order, flushing each one as it is written.
	Events []Event
	// HeaderDelay is how long to wait before writing the response headers.
	// The wait ends early, without an answer, if the client goes away.
	HeaderDelay time.Duration
	// Hang makes the server never answer: the handler returns only when
	// the client's request context ends (or the Server closes).
	Hang bool
	// DropAfter, with Events, abruptly closes the connection after sending
	// this many events, without the events that follow and without the
	// chunked-encoding terminator, so the client sees an unexpected EOF. A
	// value of len(Events) or more drops the connection after the last
	// event; a negative value drops it right after the headers. 0 means no
	// drop.
	DropAfter int
	// Check, if set, is run on the recorded request before answering; a
	// non-nil error makes the server answer 599 with the error text as a
	// plain-text body instead of playing the step.
	Check func(r Recorded) error
}

// Event is one server-sent event of a Step.
type Event struct {
	// Name is the event type, written as an "event:" line when non-empty
	// (Anthropic and the OpenAI Responses API name their events; chat
	// completion chunks are unnamed).
	Name string
	// Data is the event payload, written as one "data:" line per line.
	Data string
	// Delay is how long to wait before sending the event.
	Delay time.Duration
	// Wait, if non-nil, holds the event back until the channel is closed
	// (or the client goes away), after Delay. Tests use it as a gate, for
	// example to check that an earlier event is readable before this one
	// is sent.
	Wait <-chan struct{}
	// Raw, if non-empty, is written verbatim instead of Name and Data; it
	// must carry its own line endings.
	Raw string
}

// Recorded is one request the Server received.
type Recorded struct {
	Method   string
	Path     string // URL path, for example "/v1/chat/completions"
	RawQuery string
	Header   http.Header
	Body     []byte
	Time     time.Time // when the request body had been read
}

// NewServer starts a fake upstream speaking format. The caller must Close
// it. It panics if format is not valid.
func NewServer(format providers.Format) *Server {
	if !format.Valid() {
		panic(fmt.Sprintf("providertest: unknown format %q", format))
	}
	s := &Server{format: format, closing: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL + "/v1/"
	return s
}

// Start is NewServer with t.Cleanup(s.Close).
func Start(t testing.TB, format providers.Format) *Server {
	t.Helper()
	s := NewServer(format)
	t.Cleanup(s.Close)
	return s
}

// Close ends hanging and waiting handlers, closes all connections and shuts
// the server down. It is safe to call more than once.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closing)
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
}

// Format returns the wire format the server speaks.
func (s *Server) Format() providers.Format { return s.format }

// Client returns an *http.Client for the server whose idle connections are
// closed when the server closes; handy for pointing SDKs at the fake.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Enqueue appends steps to the script; each incoming request consumes one
// step in FIFO order. With the queue empty the server auto-replies.
func (s *Server) Enqueue(steps ...Step) {
	s.mu.Lock()
	s.queue = append(s.queue, steps...)
	s.mu.Unlock()
}

// Pending returns the number of queued steps not yet consumed.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// Requests returns a copy of every request received so far, in arrival
// order.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Recorded, len(s.reqs))
	for i, r := range s.reqs {
		r.Header = r.Header.Clone()
		r.Body = slices.Clone(r.Body)
		out[i] = r
	}
	return out
}

// Count returns the number of requests received so far. A request counts
// once its body has been read, before it is answered.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.active.Add(1)
	defer s.active.Add(-1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the client went away while sending
	}
	rec := Recorded{
		Method:   r.Method,
		Path:     r.URL.Path,
		RawQuery: r.URL.RawQuery,
		Header:   r.Header.Clone(),
		Body:     body,
		Time:     time.Now(),
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, rec)
	step, queued := Step{}, len(s.queue) > 0
	if queued {
		step = s.queue[0]
		s.queue[0] = Step{}
		s.queue = s.queue[1:]
	}
	s.mu.Unlock()

	if !queued {
		step = s.autoReply(rec)
	}
	play(w, r, step, rec, s.closing)
}

// ServeHTTP plays the step as the response to r, exactly as a Server plays
// a queued step, so that a Step (or one built by the builders) can answer
// requests outside a Server: the demo upstream and the load benchmark's
// fake upstream serve their answers this way. When Check is set, the
// request body is read and checked first. Waits end when r's context does.
// A Step is not modified, so one can answer many requests concurrently.
func (s Step) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var rec Recorded
	if s.Check != nil {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return // the client went away while sending
		}
		rec = Recorded{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body, Time: time.Now()}
	}
	play(w, r, s, rec, nil)
}

// pacer waits between the parts of a response, reusing one timer.
type pacer struct {
	ctx     context.Context
	closing <-chan struct{} // nil for no Server
	timer   *time.Timer
}

// wait blocks for d and, if gate is non-nil, until gate is closed. It
// reports false if the client went away or the server is closing first.
func (p *pacer) wait(d time.Duration, gate <-chan struct{}) bool {
	if d > 0 {
		if p.timer == nil {
			p.timer = time.NewTimer(d)
		} else {
			p.timer.Reset(d)
		}
		select {
		case <-p.timer.C:
		case <-p.ctx.Done():
			return false
		case <-p.closing:
			return false
		}
	}
	if gate != nil {
		select {
		case <-gate:
		case <-p.ctx.Done():
			return false
		case <-p.closing:
			return false
		}
	}
	return true
}

func (p *pacer) stop() {
	if p.timer != nil {
		p.timer.Stop()
	}
}

// abort drops the connection without completing the response.
func abort() { panic(http.ErrAbortHandler) }

// play writes step as the response to r; rec is the recorded request for
// step.Check, and closing, when closed, ends every wait.
func play(w http.ResponseWriter, r *http.Request, step Step, rec Recorded, closing <-chan struct{}) {
	ctx := r.Context()
	if step.Check != nil {
		if err := step.Check(rec); err != nil {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(599)
			_, _ = io.WriteString(w, err.Error())
			return
		}
	}
	if step.Hang {
		select {
		case <-ctx.Done():
			return
		case <-closing:
			abort()
		}
	}
	p := pacer{ctx: ctx, closing: closing}
	defer p.stop()
	if !p.wait(step.HeaderDelay, nil) {
		abort()
	}
	h := w.Header()
	for k, vs := range step.Header {
		h[k] = slices.Clone(vs)
	}
	status := step.Status
	if status == 0 {
		status = http.StatusOK
	}

	if step.Events == nil {
		if h.Get("Content-Type") == "" && len(step.Body) > 0 {
			h.Set("Content-Type", "application/json")
		}
		h.Set("Content-Length", strconv.Itoa(len(step.Body)))
		w.WriteHeader(status)
		_, _ = w.Write(step.Body)
		return
	}

	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "text/event-stream; charset=utf-8")
	}
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-cache")
	}
	rc := http.NewResponseController(w)
	w.WriteHeader(status)
	// The header goes out with the first event when that is sent at once,
	// as real APIs send them; otherwise right away, so that the client sees
	// the response begin before the first event.
	if len(step.Events) == 0 || step.DropAfter < 0 || step.Events[0].Delay > 0 || step.Events[0].Wait != nil {
		if err := rc.Flush(); err != nil {
			return
		}
	}
	var buf []byte
	last := len(step.Events) - 1
	for i, ev := range step.Events {
		if step.DropAfter != 0 && i >= step.DropAfter {
			abort()
		}
		if !p.wait(ev.Delay, ev.Wait) {
			abort()
		}
		var err error
		if ev.Raw != "" {
			_, err = io.WriteString(w, ev.Raw)
		} else {
			buf = ev.appendTo(buf[:0])
			_, err = w.Write(buf)
		}
		if err != nil {
			return
		}
		// The last event goes out with the end of the body when the
		// handler returns, unless the connection is to be dropped.
		if i < last || step.DropAfter != 0 {
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
	if step.DropAfter != 0 {
		abort()
	}
}

// appendTo appends the event in text/event-stream form to b.
func (e Event) appendTo(b []byte) []byte {
	if e.Raw != "" {
		return append(b, e.Raw...)
	}
	if e.Name != "" {
		b = append(b, "event: "...)
		b = append(b, e.Name...)
		b = append(b, '\n')
	}
	for line := range strings.SplitSeq(e.Data, "\n") {
		b = append(b, "data: "...)
		b = append(b, line...)
		b = append(b, '\n')
	}
	return append(b, '\n')
}

// Bytes returns the exact bytes the server writes for the event.
func (e Event) Bytes() []byte { return e.appendTo(nil) }

// StreamBytes returns the exact response body a Server writes for the
// step's Events when nothing is dropped, for byte-exact comparisons.
func (s Step) StreamBytes() []byte {
	var b []byte
	for _, e := range s.Events {
		b = e.appendTo(b)
	}
	return b
}

// DeadURL returns an http API root ("http://127.0.0.1:<port>/v1/") on a
// loopback port that was listened on and closed, so connecting to it is
// refused.
func DeadURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("providertest: listen: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("providertest: close listener: %v", err)
	}
	return "http://" + addr + "/v1/"
}

package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/llmgate/gateway/internal/jsonx"
	"github.com/llmgate/gateway/internal/sse"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/tokens"
)

// relay writes one upstream answer (2xx) to the client: a JSON body or an
// event stream, each through the request's filter chain (filters.go), with
// one commit point. Before the commit point nothing has reached the client
// and a failure lets failover try the next attempt; after it, the response
// is the client's and a failure is reported in the client's dialect.
//
// A stream runs these named steps: next (read one upstream event),
// filter (the chain), write (hold before the commit point, or write and
// flush), commit, and one of end (a complete stream), fail (an in-stream
// error) or gone (the client left or stopped reading).
type relay struct {
	c    *call
	ctx  context.Context
	dog  *watchdog
	a    *Attempt
	p    *prepared
	key  providers.Key
	resp *providers.Response

	chain
	dialect streamDialect
	rd      *sse.Reader
	ev      sse.Event   // the current upstream event (a field, so filters can take its address without an allocation)
	w       eventWriter // nil until committed
	ka      *keepAlive
	hold    []byte // client bytes held back before the commit point
	held    int    // preamble events held
	scratch []byte // LF-normalised event bytes

	committed bool
	// committedAt is when a stream's first content event committed it:
	// its time to first token.
	committedAt time.Time
	sawEnd      bool // the upstream's terminal event went through
}

// newRelay readies the call's relay for one answer.
func newRelay(c *call, ctx context.Context, dog *watchdog, a *Attempt, p *prepared, key providers.Key, resp *providers.Response) *relay {
	r := &c.relay
	*r = relay{c: c, ctx: ctx, dog: dog, a: a, p: p, key: key, resp: resp, dialect: dialectOf(p.route.surface)}
	r.chain.build(c, p)
	return r
}

// run relays the answer and says what the attempt decided.
func (r *relay) run() outcome {
	defer r.resp.Body.Close()
	var o outcome
	if r.c.parsed.stream {
		o = r.stream()
	} else {
		o = r.json()
	}
	if o == done && r.red != nil {
		r.c.respRedactions = r.red.result()
	}
	return o
}

// json relays a JSON answer: read whole (bounded), so that a truncated
// body still fails over and its usage can be read, filtered, then
// committed and written.
func (r *relay) json() outcome {
	c := r.c
	data, err := readAllSized(r.resp.Body, r.resp.Header.Get("Content-Length"), c.cfg.maxResponseBytes)
	if err != nil {
		if r.ctx.Err() != nil {
			r.a.Error, r.a.Reason = c.classifyErr(r.ctx, err, r.key)
			if r.a.Error == AttemptCanceled {
				return stop
			}
		} else {
			r.a.Error, r.a.Reason = AttemptBadResponse, "reading the response body: "+c.redact(err.Error(), r.key)
		}
		return nextAttempt
	}
	if !looksComplete(data) || jsonx.Valid(data) != nil {
		r.a.Error, r.a.Reason = AttemptBadResponse, "upstream response body is not a complete JSON object"
		return nextAttempt
	}
	if data, err = r.chain.body(data); err != nil {
		r.a.Error, r.a.Reason = AttemptBadResponse, err.Error()
		return nextAttempt
	}
	if o, ok := r.lockIn(); !ok {
		return o
	}
	c.setUsage(r.tap.result())
	c.commitHeaders(r.p, r.key, countSent(c.attempts)+1)
	h := c.w.Header()
	if ct := r.resp.Header.Get("Content-Type"); ct != "" && !r.p.route.translate {
		h.Set("Content-Type", ct)
	} else {
		h["Content-Type"] = valJSON
	}
	c.copyUpstreamIDs(h, r.resp.Header, r.key)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	c.writeHeader(r.resp.StatusCode)
	c.armWrite()
	c.captureResponse(data)
	if _, err := c.w.Write(data); err != nil {
		r.gone(err)
	}
	return done
}

// stream relays an event stream, event by event.
func (r *relay) stream() outcome {
	c := r.c
	if !isEventStream(r.resp.Header.Get("Content-Type")) {
		data, _ := readAll(r.resp.Body, 64<<10)
		r.a.Error = AttemptBadResponse
		r.a.Reason = "upstream answered a streaming request with " + strconv.Quote(jsonSafe(truncate(r.resp.Header.Get("Content-Type"), 64)))
		if msg := upstreamErrorMessage(data); msg != "" {
			r.a.Reason += ": " + c.redact(msg, r.key)
		}
		return nextAttempt
	}
	r.rd = sse.NewReader(r.resp.Body, c.cfg.maxEventBytes)
	defer r.stopKeepAlive()
	for {
		if err := r.next(); err != nil {
			return r.readFailed(err)
		}
		ev := &r.ev
		class := classifyEvent(r.dialect, ev, r.committed)
		if class == evError {
			return r.upstreamError(ev)
		}
		b, err := r.chain.event(ev, class)
		if err != nil {
			if _, ok := err.(*redactError); ok {
				return r.broken(err.Error())
			}
			return r.broken("untranslatable upstream event: " + err.Error())
		}
		if class == evEnd {
			r.sawEnd = true
		}
		if b == nil {
			continue // dropped by a filter
		}
		if o, ok := r.write(class, b); !ok {
			return o
		}
	}
}

// next reads the next upstream event into r.ev, with bare CR line endings
// made LF.
// After the commit point the upstream has the idle timeout to send it; the
// time spent writing to the client is not counted.
func (r *relay) next() error {
	r.dog.waitUpstream()
	var err error
	r.ev, err = r.rd.Next()
	r.dog.pause()
	if err == nil {
		r.ev.Raw = lfEndings(r.ev.Raw, &r.scratch)
	}
	return err
}

// write holds one event's client bytes before the commit point, and writes
// them after it, flushing unless the next event is already complete in the
// buffer (one flush per burst keeps latency minimal without a syscall per
// tiny event, and an event never waits behind a read that may block). The
// first content event, or a full holdback, commits. ok is false when the
// relay must end with o.
func (r *relay) write(class eventClass, b []byte) (o outcome, ok bool) {
	c := r.c
	if !r.committed {
		r.hold = append(r.hold, b...)
		if class == evPreamble {
			r.held++
			if r.held <= c.cfg.holdbackEvents && len(r.hold) <= c.cfg.holdbackBytes {
				return 0, true
			}
		}
		if o, ok := r.lockIn(); !ok {
			return o, false
		}
		if err := r.commit(); err != nil {
			return r.gone(err), false
		}
	} else if err := r.w.Write(b); err != nil {
		return r.gone(err), false
	}
	if !r.rd.Ready() {
		if err := r.w.Flush(); err != nil {
			return r.gone(err), false
		}
	}
	return 0, true
}

// lockIn stops the per-attempt and total timeouts at the commit point:
// from here on the response is the client's, and the watchdog measures
// upstream idleness. If a timeout fired first, the attempt is over instead
// (ok false, with what it decided): a response is never committed by an
// attempt that has already timed out.
func (r *relay) lockIn() (o outcome, ok bool) {
	if r.dog.commit() {
		return 0, true
	}
	r.a.Error, r.a.Reason = r.c.classifyErr(r.ctx, context.Cause(r.ctx), r.key)
	if r.a.Error == AttemptCanceled {
		return stop, false
	}
	return nextAttempt, false
}

// commit makes the response the client's: the status line and headers, and
// the held preamble (lockIn has stopped the timeouts).
func (r *relay) commit() error {
	c := r.c
	r.committed, r.committedAt = true, c.now()
	c.commitHeaders(r.p, r.key, countSent(c.attempts)+1)
	h := c.w.Header()
	sse.SetHeaders(h)
	c.copyUpstreamIDs(h, r.resp.Header, r.key)
	c.writeHeader(r.resp.StatusCode)
	cw := &clientStream{c: c, sw: sse.NewWriter(c.w)}
	r.w = cw
	if r.tr != nil && c.cfg.keepAlive > 0 {
		// A translated stream has no upstream pings of the client's kind:
		// keep the client's connection alive while the upstream is silent.
		r.ka = startKeepAlive(cw, r.tr.ping(), c.cfg.keepAlive)
		r.w = r.ka
	}
	hold := r.hold
	r.hold = nil
	if len(hold) > 0 {
		return r.w.Write(hold)
	}
	return nil
}

// readFailed handles the end of the upstream stream: its end (EOF) or a
// read error.
func (r *relay) readFailed(err error) outcome {
	c := r.c
	if errors.Is(err, io.EOF) {
		switch {
		case r.committed && r.sawEnd:
			return r.end()
		case r.committed:
			return r.fail("upstream stream ended before its final event")
		case r.sawEnd:
			// A complete stream with no content (an empty answer).
			if r.red != nil {
				r.hold = r.red.finish(r.hold)
			}
			if r.tr != nil {
				r.hold = r.tr.finish(r.hold, true)
			}
			if o, ok := r.lockIn(); !ok {
				return o
			}
			if err := r.commit(); err != nil {
				return r.gone(err)
			}
			if err := r.w.Flush(); err != nil {
				return r.gone(err)
			}
			c.setUsage(r.tap.result())
			return done
		}
		r.a.Error, r.a.Reason = AttemptStreamError, "upstream stream ended before any content"
		return nextAttempt
	}
	if !r.committed {
		if errors.Is(err, sse.ErrEventTooLarge) {
			r.a.Error, r.a.Reason = AttemptBadResponse, err.Error()
			return nextAttempt
		}
		r.a.Error, r.a.Reason = c.classifyErr(r.ctx, err, r.key)
		switch r.a.Error {
		case AttemptCanceled:
			return stop
		case AttemptConnection:
			r.a.Error = AttemptStreamError
		}
		return nextAttempt
	}
	if r.sawEnd {
		// The terminal event was relayed: the response is complete,
		// whatever happens to the connection afterwards (clients such as
		// the OpenAI SDK hang up right after [DONE]).
		return r.end()
	}
	if cerr := c.r.Context().Err(); cerr != nil {
		return r.gone(cerr)
	}
	_, reason := c.classifyErr(r.ctx, err, r.key)
	return r.fail(reason)
}

// end completes a stream whose upstream finished: the text redaction
// still holds back and the translator's closing events, if any, then the
// usage.
func (r *relay) end() outcome {
	var out []byte
	if r.red != nil {
		out = r.red.finish(nil)
	}
	if r.tr != nil {
		out = r.tr.finish(append(r.tr.out[:0], out...), true)
	}
	if len(out) > 0 {
		if err := r.w.Write(out); err != nil {
			return r.gone(err)
		}
		if err := r.w.Flush(); err != nil {
			return r.gone(err)
		}
	}
	r.c.setUsage(r.tap.result())
	return done
}

// broken handles an upstream event the relay cannot pass on: before the
// commit point the attempt failed; after it the stream fails.
func (r *relay) broken(reason string) outcome {
	if !r.committed {
		r.a.Error, r.a.Reason = AttemptBadResponse, reason
		return nextAttempt
	}
	return r.fail(reason)
}

// fail ends a committed stream whose upstream failed with an in-stream
// error event in the client's dialect. It never looks like a clean end.
func (r *relay) fail(reason string) outcome {
	c := r.c
	c.setUsage(r.tap.result())
	r.a.Error, r.a.Reason = AttemptStreamFailed, reason
	e := &Error{Kind: KindStreamFailed, Message: "upstream stream failed: " + reason}
	c.err = e
	var out []byte
	if r.red != nil {
		// The text redaction holds back goes before the error.
		out = r.red.finish(nil)
	}
	if r.tr != nil {
		out = append(out, r.tr.errorEvent(http.StatusBadGateway, e.Message, e.Code())...)
	} else {
		out = sse.AppendEvent(out, errorEventName(c.format), appendErrorBody(nil, c.format, e, c.reqID, c.cfg.errorDetail))
	}
	if err := r.w.Write(out); err != nil {
		return r.gone(err)
	}
	if err := r.w.Flush(); err != nil {
		return r.gone(err)
	}
	return done
}

// upstreamError handles an error event from the upstream: before the
// commit point the attempt failed; after it the stream fails with the
// upstream's message (redacted) in the gateway's own error event, whose
// code is stream_failed in either dialect.
func (r *relay) upstreamError(ev *sse.Event) outcome {
	c := r.c
	msg := c.redact(streamErrorMessage(r.dialect, ev), r.key)
	if !r.committed {
		r.a.Error, r.a.Reason = AttemptStreamError, msg
		return nextAttempt
	}
	return r.fail(msg)
}

// gone records that the client stopped taking a committed response: it
// went away, or it stopped reading for the write timeout. The attempt's
// context is canceled when the relay returns, which stops the upstream.
func (r *relay) gone(err error) outcome {
	c := r.c
	c.setUsage(r.tap.result())
	if errors.Is(err, os.ErrDeadlineExceeded) {
		r.a.Reason = "client stopped reading: no write progress within " + c.cfg.writeTimeout.String()
		c.err = &Error{Kind: KindRequestTimeout, Message: r.a.Reason, Err: err}
		return done
	}
	r.a.Reason = "client went away: " + err.Error()
	c.err = &Error{Kind: KindCanceled, Message: "client closed the stream", Err: err}
	return done
}

func (r *relay) stopKeepAlive() {
	if r.ka != nil {
		r.ka.close()
	}
}

// errorEventName is the SSE event name of an error event in format f.
func errorEventName(f providers.Format) string {
	if f == providers.FormatAnthropic {
		return "error"
	}
	return ""
}

func (c *call) setUsage(u tokens.Usage, ok bool) {
	if ok {
		c.usage, c.usageKnown = u, true
	}
}

// copyUpstreamIDs relays the upstream's request ID headers, which
// providers' support teams ask for, redacted like everything relayed from
// an upstream.
func (c *call) copyUpstreamIDs(dst, src http.Header, k providers.Key) {
	for _, name := range [...]string{"X-Request-Id", "Request-Id"} {
		if v := src.Get(name); v != "" {
			dst.Set("Llmgate-Upstream-"+name, c.redact(v, k))
		}
	}
}

// lfEndings returns raw with bare CR line endings turned into LF. Both are
// valid SSE, but several client SSE parsers (the OpenAI Go SDK's among them)
// split lines on LF only. A CR can only be a line ending in SSE, so the
// rewrite keeps every field and comment; CRLF is left alone. scratch is
// reused for the rewritten copy.
func lfEndings(raw []byte, scratch *[]byte) []byte {
	i := bytes.IndexByte(raw, '\r')
	if i < 0 {
		return raw
	}
	out := append((*scratch)[:0], raw...)
	for ; i < len(out); i++ {
		if out[i] == '\r' && (i+1 == len(out) || out[i+1] != '\n') {
			out[i] = '\n'
		}
	}
	*scratch = out
	return out
}

// eventWriter writes client stream bytes: a clientStream, or a keepAlive
// around one.
type eventWriter interface {
	Write(b []byte) error
	Flush() error
}

// clientStream writes a committed stream to the client, each write under
// the client write deadline (WithClientTimeouts).
type clientStream struct {
	c  *call
	sw *sse.Writer
}

func (s *clientStream) Write(b []byte) error {
	s.c.armWrite()
	s.c.captureResponse(b)
	return s.sw.Write(b)
}

func (s *clientStream) Flush() error {
	s.c.armWrite()
	return s.sw.Flush()
}

// keepAlive writes a ping to a committed stream whenever nothing was written
// for a whole interval. Its goroutine ends with close.
type keepAlive struct {
	mu   sync.Mutex
	w    *clientStream
	ping []byte
	last time.Time
	stop chan struct{}
	done chan struct{}
}

func startKeepAlive(w *clientStream, ping []byte, interval time.Duration) *keepAlive {
	k := &keepAlive{w: w, ping: ping, last: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(k.done)
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		for {
			select {
			case <-k.stop:
				return
			case now := <-t.C:
				k.mu.Lock()
				if now.Sub(k.last) >= interval {
					if k.w.Write(k.ping) == nil {
						_ = k.w.Flush()
					}
					k.last = now
				}
				k.mu.Unlock()
			}
		}
	}()
	return k
}

func (k *keepAlive) Write(b []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.last = time.Now()
	return k.w.Write(b)
}

func (k *keepAlive) Flush() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.w.Flush()
}

// close stops the pinger and waits for its goroutine.
func (k *keepAlive) close() {
	close(k.stop)
	<-k.done
}

// looksComplete is a constant-time check that a JSON response was not cut
// short: it must be an object from its first to its last byte. (A full
// validation would cost a scan of every response; truncation is the failure
// that happens.)
func looksComplete(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) >= 2 && b[0] == '{' && b[len(b)-1] == '}'
}

// readAllSized is readAll with the buffer sized from a Content-Length
// header when there is one (bounded by limit).
func readAllSized(r io.Reader, contentLength string, limit int64) ([]byte, error) {
	n, err := strconv.ParseInt(contentLength, 10, 64)
	if err != nil || n <= 0 || n > limit {
		return readAll(r, limit)
	}
	// net/http stops a body at its Content-Length and reports a shorter
	// one as io.ErrUnexpectedEOF.
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// readAll reads r to the end, failing beyond limit bytes.
func readAll(r io.Reader, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, errors.New("response body exceeds " + strconv.FormatInt(limit, 10) + " bytes")
	}
	return buf.Bytes(), nil
}

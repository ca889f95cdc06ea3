package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/llmgate/gateway/credits"
	"github.com/llmgate/gateway/internal/reqid"
	"github.com/llmgate/gateway/internal/strategy"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/redaction"
	"github.com/llmgate/gateway/tokens"
)

// call is the state of one client request, from arrival to its event. It
// is owned by the request's goroutine (the keep-alive pinger of a
// translated stream writes through its own lock).
type call struct {
	g       *Gateway
	rt      *routing // the snapshot this request routes with, start to end
	cfg     *config  // rt.cfg
	w       http.ResponseWriter
	rc      http.ResponseController // deadlines through the host's wrappers (Unwrap)
	r       *http.Request
	reqID   string
	surface providers.Surface
	format  providers.Format // the client's wire format
	start   time.Time

	principal principal
	body      []byte
	parsed    parsedBody
	header    http.Header // the client headers sent upstream (allow-listed)

	cands    []candidate
	attempts []Attempt
	rejected []Rejection
	// served is the candidate that answered, kept whole (its model and
	// prices settle the request); served.up is nil until one did.
	served  candidate
	removed []string // request fields translation or the request policy dropped for the served candidate

	deadline      time.Time // the total timeout: attempts must commit a response by then (real clock)
	upstreamTime  time.Duration
	firstWrite    time.Time
	writeDeadline time.Time // the client write deadline set, zero when none
	noDeadlines   bool      // the ResponseWriter cannot take deadlines
	status        int
	err           *Error
	usage         tokens.Usage
	usageKnown    bool
	hdr           [3]string        // backing values of the diagnostic headers
	relay         relay            // the relay of the attempt that answered, reused by each (one runs at a time)
	estimate      *inputEstimate   // the prompt's token estimate for a translated stream, when one is needed
	selection     []SelectionStep  // the model selection trace
	sreq          strategy.Request // the request as selection strategies see it, once sreqSet
	sreqSet       bool
	explain       bool // an Explain: plan only, change no state
	streaming     bool // counted in Gateway.streams until finish

	// Metering (metering.go).
	outCap        int64 // the maximum output tokens sent upstream, 0 when the client's stand
	promptTokens  int64 // the prompt counted with tiktoken in inputEncoding, once inputCounted
	inputEncoding string
	inputCounted  bool
	hold          credits.Hold // the request's credit hold, once held
	held          bool
	holdTried     bool                // a hold was asked for (it may exist even if the answer was lost)
	servedKeyID   string              // the key of the attempt that answered
	servedSource  providers.KeySource // and where it came from

	// Redaction (redaction.go): the replacements in the request body and
	// in the answer the client received.
	reqRedactions  redaction.Counts
	respRedactions redaction.Counts

	insp *inspection // the traffic capture (inspector.go), nil without WithInspector
	// leases are the pooled buffers of rewritten bodies (prepared.lease),
	// given back in finish.
	leases []*bodyLease
	// bodyLease is the pooled buffer the request body was read into
	// (bodypool.go); nil when the body is not pooled.
	bodyLease *bodyLease
	span      RequestSpan // the request's span (tracing.go), nil without WithTracer
}

func (g *Gateway) newCall(w http.ResponseWriter, r *http.Request) *call {
	rt := g.routing.Load()
	c := &call{g: g, rt: rt, cfg: rt.cfg, w: w, r: r, rc: *http.NewResponseController(w), reqID: reqid.New()}
	c.start = c.now()
	// One backing array, in the call, for the three per-request diagnostic
	// headers.
	c.hdr[0] = c.reqID
	w.Header()[HeaderRequestID] = c.hdr[0:1:1]
	if c.cfg.inspector != nil {
		c.insp = &inspection{max: c.cfg.inspectorOpts.MaxBytes}
	}
	return c
}

// run is the life of one API request, phase by phase. Each phase either
// moves the request on or ends it with an error in the client's dialect;
// finish (deferred by ServeHTTP) closes every path.
func (c *call) run() {
	if e := c.authenticate(); e != nil { // who is asking (auth.go)
		c.fail(e)
		return
	}
	if e := c.readRequest(); e != nil { // body, bounded in size and time, parsed
		c.fail(e)
		return
	}
	if e := c.plan(); e != nil { // the candidates, in order (selection.go)
		c.fail(e)
		return
	}
	if e := c.admit(); e != nil { // limits and credit holds (metering.go)
		c.fail(e)
		return
	}
	c.failover() // attempts over candidates and keys, each relaying its answer (failover.go, relay.go)
}

// now is the gateway's clock (WithClock): every timestamp and duration in
// events and attempts comes from it.
func (c *call) now() time.Time { return c.cfg.now() }

// readRequest checks the content type, reads the body once under the
// size limit and the body read deadline, and parses the fields the gateway
// routes on.
func (c *call) readRequest() *Error {
	if e := checkContentType(c.r.Header.Get("Content-Type")); e != nil {
		return e
	}
	if e := c.readBody(); e != nil {
		return e
	}
	if e := c.redactRequest(); e != nil {
		return e
	}
	c.captureRequest()
	p, perr := parseBody(c.body)
	if perr != nil {
		return perr
	}
	c.parsed = p
	if p.stream && !c.surface.Streams() {
		return &Error{Kind: KindInvalidRequest, Param: "stream", Message: string(c.surface) + " requests cannot stream"}
	}
	if p.stream && !c.explain {
		c.streaming = true
		c.g.streams.Add(1)
	}
	if n := len(p.models) + btoi(p.model != ""); n > c.cfg.maxModels {
		return &Error{Kind: KindInvalidRequest, Param: "models",
			Message: fmt.Sprintf("the request names %d models; at most %d are allowed (model and models together)", n, c.cfg.maxModels)}
	}
	return nil
}

// checkContentType requires a JSON media type: application/json or any
// application/*+json. A form or text/plain POST is what a web page can send
// cross-site without a preflight.
func checkContentType(ct string) *Error {
	if ct == "application/json" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return nil
	}
	if ct == "" {
		ct = "none"
	}
	return &Error{Kind: KindUnsupportedMediaType,
		Message: "the request body must be JSON with Content-Type: application/json (got " + strconv.Quote(jsonSafe(truncate(ct, 64))) + ")"}
}

// readBody reads the body once, under the size limit and the body read
// deadline.
func (c *call) readBody() *Error {
	limit := c.cfg.maxRequestBytes
	if c.r.ContentLength > limit {
		return errorf(KindInputTooLarge, "request body of %d bytes exceeds the limit of %d bytes", c.r.ContentLength, limit)
	}
	size := 512
	if c.r.ContentLength > 0 {
		size = int(c.r.ContentLength) + 1 // +1 so the last Read sees EOF without growing
	}
	deadline := false
	if c.r.ContentLength != 0 {
		// Bound the time a client may take to send its body (slowloris).
		deadline = c.setDeadline(false, time.Now().Add(c.cfg.bodyReadTimeout))
	}
	var buf []byte
	if c.bodyLease = c.g.bodies.lease(size); c.bodyLease != nil {
		buf = *c.bodyLease.buf
	} else {
		buf = make([]byte, 0, size)
	}
	body, err := readBodyInto(buf, http.MaxBytesReader(c.w, c.r.Body, limit))
	if deadline && err == nil {
		// Cleared only after a complete body: after a failed read the
		// expired deadline stays, so net/http does not wait for the rest of
		// the body before answering, and closes the connection.
		_ = c.rc.SetReadDeadline(time.Time{})
	}
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return errorf(KindInputTooLarge, "request body exceeds the limit of %d bytes", limit)
		case errors.Is(err, os.ErrDeadlineExceeded):
			return &Error{Kind: KindRequestTimeout, Err: err,
				Message: "the request body did not arrive within " + c.cfg.bodyReadTimeout.String()}
		case c.r.Context().Err() != nil:
			return &Error{Kind: KindCanceled, Message: "client went away while sending the request", Err: err}
		}
		return &Error{Kind: KindInvalidRequest, Message: "could not read the request body: " + err.Error(), Err: err}
	}
	// The capacity ends at the body: an append never writes into the rest
	// of a pooled buffer, and nothing reads what an earlier request left
	// there.
	c.body = body[:len(body):len(body)]
	return nil
}

// readBodyInto reads r to its end into buf, growing it only when it is
// full: a body whose Content-Length sized buf is read without a copy
// (bytes.Buffer.ReadFrom would double a 400 KB buffer to keep 512 bytes
// free, then clear and copy it).
func readBodyInto(buf []byte, r io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// armWrite makes sure the next write to the client has a deadline at
// least half the write timeout away (WithClientTimeouts): a client that
// stops reading cannot hold the handler. Moving the deadline costs a
// little, so it moves only when half of it is used up.
func (c *call) armWrite() {
	if c.noDeadlines {
		return
	}
	now := time.Now()
	if c.writeDeadline.Sub(now) > c.cfg.writeTimeout/2 {
		return
	}
	if d := now.Add(c.cfg.writeTimeout); c.setDeadline(true, d) {
		c.writeDeadline = d
	}
}

// setDeadline sets the client write (or read) deadline, and reports
// whether it could: a ResponseWriter without deadlines (a recorder, a
// host's wrapper without Unwrap) is served without them, and not asked
// again.
func (c *call) setDeadline(write bool, d time.Time) bool {
	if c.noDeadlines {
		return false
	}
	var err error
	if write {
		err = c.rc.SetWriteDeadline(d)
	} else {
		err = c.rc.SetReadDeadline(d)
	}
	if err != nil {
		c.noDeadlines = errors.Is(err, http.ErrNotSupported)
		return false
	}
	return true
}

// commitHeaders sets the diagnostic headers of a response about to be
// written by candidate p with key k after n upstream attempts.
func (c *call) commitHeaders(p *prepared, k providers.Key, attempts int) {
	c.served = *p.cand
	c.servedKeyID, c.servedSource = k.ID, k.Source
	c.removed = p.removed
	h := c.w.Header()
	c.hdr[1], c.hdr[2] = strconv.Itoa(attempts), p.cand.name()
	h[HeaderAttempts] = c.hdr[1:2:2]
	h[HeaderModel] = c.hdr[2:3:3]
	if len(p.removed) > 0 {
		h.Set(HeaderRemovedParams, strings.Join(p.removed, ", "))
	}
	if p.capped > 0 && (c.parsed.maxOut == 0 || c.parsed.maxOut > p.capped) {
		h.Set(HeaderMaxOutputTokens, strconv.FormatInt(p.capped, 10)+"; reason=policy")
	}
}

var valJSON = []string{"application/json"}

func (c *call) writeHeader(status int) {
	c.status = status
	c.firstWrite = c.now()
	c.w.WriteHeader(status)
}

// fail answers the client with e. A client that went away before anything
// was written still gets its 499 written: a half-closed connection may
// read it, and nothing may look like a success.
func (c *call) fail(e *Error) {
	c.err = e
	if !c.firstWrite.IsZero() {
		return
	}
	c.hdr[1] = strconv.Itoa(countSent(c.attempts))
	h := c.w.Header()
	h[HeaderAttempts] = c.hdr[1:2:2]
	if c.body == nil && c.r.ContentLength != 0 && c.r.ProtoMajor == 1 {
		// The body was not read (refused before, or cut short): close the
		// connection rather than let net/http wait for the rest of it.
		h.Set("Connection", "close")
	}
	c.status = e.HTTPStatus()
	c.firstWrite = c.now()
	c.armWrite()
	c.captureResponse(writeError(c.w, c.format, e, c.reqID, c.cfg.errorDetail))
}

// recoverPanic turns a panic in the gateway into a 500 internal_error (or,
// once the response has started, an aborted connection), so one bad
// request never takes the host process down. http.ErrAbortHandler passes
// through.
func (c *call) recoverPanic() {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	c.cfg.logger.Error("llmgate: panic serving request", "request_id", c.reqID, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	if c.firstWrite.IsZero() {
		c.fail(&Error{Kind: KindInternal, Message: "internal error", Attempts: c.attempts, Err: fmt.Errorf("panic: %v", v)})
		return
	}
	c.err = &Error{Kind: KindInternal, Message: "internal error after the response started", Err: fmt.Errorf("panic: %v", v)}
	panic(http.ErrAbortHandler)
}

// finish ends every request, whatever happened to it: it clears the client
// deadlines, settles the request's credit hold and emits its event. It
// runs under context.WithoutCancel, so a client that went away does not cut
// short the accounting of what it used.
func (c *call) finish() {
	ctx := context.WithoutCancel(c.r.Context())
	if c.streaming {
		c.g.streams.Add(-1)
	}
	if !c.writeDeadline.IsZero() {
		_ = c.rc.SetWriteDeadline(time.Time{})
	}
	c.settle(ctx)
	if len(c.cfg.sinks) > 0 || c.span != nil {
		ev := c.event()
		for _, s := range c.cfg.sinks {
			s.HandleEvent(ctx, ev)
		}
		if c.span != nil {
			c.span.End(ev)
		}
	}
	c.inspect(ctx)
	if c.bodyLease != nil {
		// Last: settling may count the prompt, the inspector copies it.
		c.body = nil
		c.bodyLease.Release()
	}
	for _, l := range c.leases {
		l.Release()
	}
	c.leases = nil
}

// event builds the request's Event.
func (c *call) event() *Event {
	end := c.now()
	ev := &Event{
		RequestID: c.reqID, Time: c.start, Method: c.r.Method, Path: c.r.URL.Path,
		Surface: c.surface, Format: c.format, Stream: c.parsed.stream,
		RequestedModels: c.parsed.names(), Rejected: c.rejected, Selection: c.selection, Attempts: c.attempts,
		RemovedParams: c.removed, Status: c.status, Err: c.err, Usage: c.usage, UsageReported: c.usageKnown,
		Latency: end.Sub(c.start), Redactions: c.redactions(),
	}
	if c.served.up != nil {
		ev.ServedBy = c.served.name()
	}
	if !c.principal.IsZero() {
		p := c.principal.Principal
		ev.Principal = &p
	}
	if len(c.cands) > 0 {
		ev.Candidates = make([]string, len(c.cands))
		for i := range c.cands {
			ev.Candidates[i] = c.cands[i].name()
		}
		traceModels(c.selection, ev.Candidates)
	}
	ev.GatewayLatency = max(ev.Latency-c.upstreamTime, 0)
	if !c.firstWrite.IsZero() {
		ev.TimeToFirstByte = c.firstWrite.Sub(c.start)
	}
	return ev
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// jsonSafe returns s with invalid UTF-8 replaced, for text that echoes
// client input into messages.
func jsonSafe(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// truncate cuts s to at most n bytes (plus "…"), on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

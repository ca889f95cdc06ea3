package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/internal/translate"
	"github.com/llmgate/gateway/internal/wire"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/tokens"
)

// call is the state of one client request. It is owned by the request's
// goroutine.
type call struct {
	g       *Gateway
	w       http.ResponseWriter
	r       *http.Request
	reqID   string
	surface providers.Surface
	format  providers.Format
	start   time.Time

	body      []byte
	parsed    parsedBody
	clientKey providers.Secret
	header    http.Header

	cands    []candidate
	attempts []Attempt
	rejected []Rejection

	upstreamTime time.Duration // time spent inside attempts
	firstWrite   time.Time
	status       int
	servedBy     string
	err          *Error
	usage        tokens.Usage
	usageKnown   bool
	hdr          []string // backing values of the diagnostic headers
	removed      []string // request fields translation dropped for the served candidate
	// committed is set once response bytes reached the client; the attempt
	// timer then acts as the stream idle timer.
	committed atomic.Bool
}

// outcome is what an attempt decided.
type outcome uint8

const (
	nextAttempt outcome = iota // failed; try the next key or candidate
	done                       // the client has its response (success, fail-fast error or committed stream)
	stop                       // the client went away or the total timeout ran out
)

func (c *call) serve() {
	if err := c.readBody(); err != nil {
		c.fail(err)
		return
	}
	names := c.parsed.names()
	cands, rejected, perr := c.g.plan(c.surface, names)
	c.rejected = rejected
	if len(rejected) > 0 {
		ms := make([]string, len(rejected))
		for i, r := range rejected {
			ms[i] = r.Model
		}
		c.w.Header().Set(HeaderRejectedModels, strings.Join(ms, ", "))
	}
	if perr != nil {
		c.fail(perr)
		return
	}
	c.cands = cands
	c.clientKey = clientCredential(c.r, c.format)
	c.header = forwardHeader(c.r.Header)
	c.failover()
}

// readBody reads the body once, under the size limit, and parses it.
func (c *call) readBody() *Error {
	limit := c.g.cfg.maxRequestBytes
	if c.r.ContentLength > limit {
		return errorf(KindInputTooLarge, "request body of %d bytes exceeds the limit of %d bytes", c.r.ContentLength, limit)
	}
	size := 512
	if c.r.ContentLength > 0 {
		size = int(c.r.ContentLength) + 1 // +1 so ReadFrom sees EOF without growing
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	_, err := buf.ReadFrom(http.MaxBytesReader(c.w, c.r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errorf(KindInputTooLarge, "request body exceeds the limit of %d bytes", limit)
		}
		if c.r.Context().Err() != nil {
			return &Error{Kind: KindCanceled, Message: "client went away while sending the request", Err: err}
		}
		return &Error{Kind: KindInvalidRequest, Message: "could not read the request body: " + err.Error(), Err: err}
	}
	c.body = buf.Bytes()
	p, perr := parseBody(c.body)
	if perr != nil {
		return perr
	}
	c.parsed = p
	if p.stream && !c.surface.Streams() {
		return &Error{Kind: KindInvalidRequest, Param: "stream", Message: string(c.surface) + " requests cannot stream"}
	}
	return nil
}

// clientCredential returns the credential the client sent, preferring the
// header of its own API format.
func clientCredential(r *http.Request, f providers.Format) providers.Secret {
	bearer := ""
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		bearer = strings.TrimSpace(a[7:])
	}
	xkey := strings.TrimSpace(r.Header.Get("X-Api-Key"))
	if f == providers.FormatAnthropic && xkey != "" || bearer == "" {
		return providers.Secret(xkey)
	}
	return providers.Secret(bearer)
}

// forwardHeader copies the client's headers without credentials, cookies,
// hop-by-hop and framing headers. Values are shared, read-only.
func forwardHeader(in http.Header) http.Header {
	out := make(http.Header, len(in))
	for k, v := range in {
		switch k {
		case "Authorization", "X-Api-Key", "Cookie", "Proxy-Authorization", "Connection", "Keep-Alive",
			"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length", "Host", "Accept-Encoding",
			"Content-Type", "Accept", "Proxy-Connection":
			continue
		}
		out[k] = v
	}
	return out
}

// failover runs the attempt loop: each candidate in order, and for each its
// provider's keys in order, never the same (model, key) twice.
func (c *call) failover() {
	g := c.g
	ctx := c.r.Context()
	totalCtx, cancelTotal := context.WithCancelCause(ctx)
	defer cancelTotal(nil)
	totalTimer := time.AfterFunc(g.cfg.totalTimeout, func() { cancelTotal(errTotalTimeout) })
	defer totalTimer.Stop()

	var refused *translate.Error
	for i := range c.cands {
		cand := &c.cands[i]
		rt, ok, why := cand.route(c.surface)
		if !ok {
			c.attempts = append(c.attempts, Attempt{Provider: cand.up.id, Model: cand.upstreamModel, Skipped: true,
				Error: AttemptSkippedFormat, Reason: why})
			continue
		}
		p := &prepared{cand: cand, route: rt}
		if rt.translate {
			body, removed, err := translate.Request(c.format, cand.up.format, c.body,
				translate.RequestOptions{Model: cand.upstreamModel, MaxOutputTokens: cand.maxOutputTokens(),
					// A catalog model without reasoning rejects reasoning
					// settings: drop (and report) them instead.
					NoReasoning: cand.model != nil && !cand.model.HasFeature(catalog.FeatureReasoning)})
			if err != nil {
				reason := err.Error()
				var te *translate.Error
				if errors.As(err, &te) {
					refused, reason = te, te.Message
				}
				c.attempts = append(c.attempts, Attempt{Provider: cand.up.id, Model: cand.upstreamModel, Skipped: true,
					Error: AttemptSkippedTranslation, Reason: reason})
				continue
			}
			p.body, p.removed = body, removed
		} else {
			p.body = c.parsed.rewrite(c.body, cand.upstreamModel, c.injectUsage(cand))
		}
		keys := cand.up.keys
		if len(keys) == 0 {
			// Pass-through: the client's own credential (or none).
			ks := &keyState{key: providers.Key{ID: passThroughKeyID, Secret: c.clientKey}}
			if c.clientKey == "" {
				ks.key.ID = ""
			}
			keys = []*keyState{ks}
		}
		for _, ks := range keys {
			if until := ks.until.Load(); until != 0 && g.cfg.now().UnixNano() < until {
				c.attempts = append(c.attempts, Attempt{Provider: cand.up.id, Model: cand.upstreamModel, KeyID: ks.key.ID, Skipped: true,
					Error: AttemptSkippedCooldown, Reason: "key cooling down for " + time.Duration(until-g.cfg.now().UnixNano()).Round(time.Second).String()})
				continue
			}
			if totalCtx.Err() != nil {
				c.stopped(totalCtx)
				return
			}
			switch c.attempt(totalCtx, totalTimer, p, ks) {
			case done:
				return
			case stop:
				c.stopped(totalCtx)
				return
			}
		}
	}
	sent := countSent(c.attempts)
	if sent == 0 && refused != nil {
		// Nothing was sent because the only usable candidates would need a
		// translation that changes the request's meaning.
		c.fail(&Error{Kind: KindInvalidRequest, Param: refused.Param, Attempts: c.attempts,
			Message: refused.Message + " (no candidate model serves this request natively)", Err: refused})
		return
	}
	e := &Error{Kind: KindAllProvidersFailed, Attempts: c.attempts}
	switch {
	case sent == 0:
		e.Message = "no upstream could be tried: every candidate was skipped"
		e.RetryAfter = c.minCooldown()
	case len(c.cands) == 1 && sent == 1:
		e.Message = "the upstream request failed: " + c.lastReason()
	default:
		e.Message = "all " + strconv.Itoa(sent) + " upstream attempts failed; last: " + c.lastReason()
	}
	c.fail(e)
}

// stopped ends a request whose context ended: the client went away, or the
// total timeout ran out.
func (c *call) stopped(totalCtx context.Context) {
	if c.r.Context().Err() != nil {
		c.fail(&Error{Kind: KindCanceled, Message: "client closed the request", Attempts: c.attempts, Err: c.r.Context().Err()})
		return
	}
	if errors.Is(context.Cause(totalCtx), errTotalTimeout) {
		c.fail(&Error{Kind: KindTotalTimeout, Attempts: c.attempts,
			Message: "total timeout of " + c.g.cfg.totalTimeout.String() + " exceeded after " + strconv.Itoa(countSent(c.attempts)) + " attempts"})
		return
	}
	c.fail(&Error{Kind: KindInternal, Message: "request context ended", Attempts: c.attempts, Err: context.Cause(totalCtx)})
}

func (c *call) lastReason() string {
	for i := len(c.attempts) - 1; i >= 0; i-- {
		a := &c.attempts[i]
		if a.Skipped {
			continue
		}
		r := a.Provider + ":" + a.Model
		if a.Status != 0 {
			r += " answered " + strconv.Itoa(a.Status)
		}
		if a.Reason != "" {
			r += ": " + a.Reason
		}
		return r
	}
	return "none"
}

func (c *call) minCooldown() time.Duration {
	now := c.g.cfg.now().UnixNano()
	var soonest time.Duration
	for i := range c.cands {
		for _, ks := range c.cands[i].up.keys {
			if d := time.Duration(ks.until.Load() - now); d > 0 && (soonest == 0 || d < soonest) {
				soonest = d
			}
		}
	}
	return soonest
}

// injectUsage reports whether to ask an OpenAI-format upstream for a usage
// chunk at the end of the stream.
func (c *call) injectUsage(cand *candidate) bool {
	return c.parsed.stream && c.surface == providers.SurfaceChatCompletions && cand.up.streamUsage
}

// attempt makes one upstream request and, when it succeeds, answers the
// client.
// prepared is one candidate ready to be sent: its route and its upstream
// body, shared by the attempts with each of its keys.
type prepared struct {
	cand    *candidate
	route   route
	body    []byte
	removed []string // request fields dropped by translation
}

func (c *call) attempt(totalCtx context.Context, totalTimer *time.Timer, p *prepared, ks *keyState) outcome {
	cand := p.cand
	g := c.g
	ctx, cancel := context.WithCancelCause(totalCtx)
	defer cancel(nil)
	timer := time.AfterFunc(g.cfg.perAttemptTimeout, func() {
		if c.committed.Load() {
			cancel(errIdleTimeout)
		} else {
			cancel(errAttemptTimeout)
		}
	})
	defer timer.Stop()

	a := Attempt{Provider: cand.up.id, Model: cand.upstreamModel, KeyID: ks.key.ID, Translated: p.route.translate}
	start := time.Now()
	finish := func(o outcome) outcome {
		a.Duration = time.Since(start)
		c.upstreamTime += a.Duration
		c.attempts = append(c.attempts, a)
		return o
	}
	req := &providers.Request{Surface: p.route.surface, Model: cand.upstreamModel, Body: p.body, Stream: c.parsed.stream, Header: c.header}
	resp, err := cand.up.impl.Do(ctx, req, ks.key)
	a.TTFB = time.Since(start)
	if err != nil {
		a.Error, a.Reason = c.classifyErr(ctx, err)
		if a.Error == AttemptCanceled {
			return finish(stop)
		}
		return finish(nextAttempt)
	}
	a.Status = resp.StatusCode
	if resp.StatusCode >= 400 || resp.StatusCode < 200 {
		return finish(c.upstreamFailed(&a, p, ks, resp))
	}
	if c.parsed.stream {
		return finish(c.streamResponse(ctx, timer, totalTimer, &a, p, resp))
	}
	// A JSON answer: read it whole (bounded) so a truncated body still fails
	// over and usage can be read, then commit.
	data, rerr := readAllSized(resp.Body, resp.Header.Get("Content-Length"), g.cfg.maxResponseBytes)
	resp.Body.Close()
	if rerr != nil {
		if ctx.Err() != nil {
			a.Error, a.Reason = c.classifyErr(ctx, rerr)
			if a.Error == AttemptCanceled {
				return finish(stop)
			}
		} else {
			a.Error, a.Reason = AttemptBadResponse, "reading the response body: "+g.redact(rerr.Error(), c.clientKey)
		}
		return finish(nextAttempt)
	}
	if !looksComplete(data) {
		a.Error, a.Reason = AttemptBadResponse, "upstream response body is not a complete JSON object"
		return finish(nextAttempt)
	}
	usage, usageOK := usageFromJSON(cand.up.format, data)
	if p.route.translate {
		out, err := translate.Response(cand.up.format, c.format, data, translate.ResponseOptions{Now: g.cfg.now})
		if err != nil {
			a.Error, a.Reason = AttemptBadResponse, "translating the response: "+err.Error()
			return finish(nextAttempt)
		}
		data = out
	}
	timer.Stop()
	totalTimer.Stop()
	if usageOK {
		c.usage, c.usageKnown = usage, true
	}
	c.commitHeaders(p, countSent(c.attempts)+1)
	h := c.w.Header()
	if ct := resp.Header.Get("Content-Type"); ct != "" && !p.route.translate {
		h.Set("Content-Type", ct)
	} else {
		h["Content-Type"] = valJSON
	}
	copyUpstreamIDs(h, resp.Header)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	c.writeHeader(resp.StatusCode)
	if _, err := c.w.Write(data); err != nil {
		a.Reason = "client write failed: " + err.Error()
	}
	return finish(done)
}

// upstreamFailed handles a non-2xx upstream answer: cool the key down when
// the upstream refused or rate-limited it, then fail over or, for a
// fail-fast status, relay the error.
func (c *call) upstreamFailed(a *Attempt, p *prepared, ks *keyState, resp *providers.Response) outcome {
	g := c.g
	cand := p.cand
	data, _ := readAll(resp.Body, 64<<10)
	resp.Body.Close()
	a.Error = AttemptStatus
	a.Reason = g.redact(upstreamErrorMessage(data), c.clientKey)
	if a.Reason == "" {
		a.Reason = http.StatusText(resp.StatusCode)
	}
	if ks.key.ID != passThroughKeyID && len(cand.up.keys) > 0 {
		var d time.Duration
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusPaymentRequired, http.StatusForbidden:
			d = g.cfg.authCooldown
		case http.StatusTooManyRequests:
			d = g.cfg.rateLimitCooldown
			if ra, ok := providers.ParseRetryAfter(resp.Header.Get("Retry-After"), g.cfg.now(), g.cfg.maxRetryAfter); ok {
				d = ra
			}
		}
		if d > 0 {
			ks.until.Store(g.cfg.now().Add(d).UnixNano())
		}
	}
	if !g.cfg.failFast[resp.StatusCode] {
		return nextAttempt
	}
	// Fail fast: relay the provider's error, as it is in the same wire
	// format, else translated to the status and shape the client's SDK
	// expects.
	status := resp.StatusCode
	e := &Error{Kind: KindUpstream, Status: status, Message: a.Reason}
	c.err = e
	switch {
	case len(data) == 0:
		data = appendErrorBody(nil, c.format, e, c.reqID)
	case p.route.translate:
		status, data = translate.ErrorResponse(cand.up.format, c.format, status, data)
		e.Status = status
	}
	c.commitHeaders(p, countSent(c.attempts)+1)
	h := c.w.Header()
	h.Set("Content-Type", "application/json")
	copyUpstreamIDs(h, resp.Header)
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		h.Set("Retry-After", ra)
	}
	if clientFault(status) {
		h.Set("X-Should-Retry", "false")
	}
	h.Set("Content-Length", strconv.Itoa(len(data)))
	c.writeHeader(status)
	_, _ = c.w.Write(data)
	return done
}

// classifyErr explains a transport error (no response, or a body read that
// failed) in terms of what ended it.
func (c *call) classifyErr(ctx context.Context, err error) (AttemptError, string) {
	switch cause := context.Cause(ctx); {
	case c.r.Context().Err() != nil:
		return AttemptCanceled, "client closed the request"
	case errors.Is(cause, errTotalTimeout):
		return AttemptCanceled, "total timeout exceeded"
	case errors.Is(cause, errAttemptTimeout):
		return AttemptTimeout, "no answer within the per-attempt timeout of " + c.g.cfg.perAttemptTimeout.String()
	case errors.Is(cause, errIdleTimeout):
		return AttemptTimeout, "stream idle for " + c.g.cfg.streamIdleTimeout.String()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return AttemptTimeout, c.g.redact(err.Error(), c.clientKey)
	}
	return AttemptConnection, c.g.redact(err.Error(), c.clientKey)
}

// commitHeaders sets the diagnostic headers of a response about to be
// written by candidate p after n upstream attempts.
func (c *call) commitHeaders(p *prepared, attempts int) {
	c.servedBy = p.cand.name()
	c.removed = p.removed
	h := c.w.Header()
	c.hdr[1], c.hdr[2] = strconv.Itoa(attempts), c.servedBy
	h[HeaderAttempts] = c.hdr[1:2:2]
	h[HeaderModel] = c.hdr[2:3:3]
	if len(p.removed) > 0 {
		h.Set(HeaderRemovedParams, strings.Join(p.removed, ", "))
	}
}

var valJSON = []string{"application/json"}

func (c *call) writeHeader(status int) {
	c.status = status
	c.firstWrite = time.Now()
	c.w.WriteHeader(status)
}

// fail answers the client with e, unless the client went away.
func (c *call) fail(e *Error) {
	c.err = e
	if e.Kind == KindCanceled {
		c.status = e.HTTPStatus()
		return
	}
	c.hdr[1] = strconv.Itoa(countSent(c.attempts))
	c.w.Header()[HeaderAttempts] = c.hdr[1:2:2]
	c.status = e.HTTPStatus()
	c.firstWrite = time.Now()
	writeError(c.w, c.format, e, c.reqID)
}

// finish emits the request's event.
func (c *call) finish() {
	if len(c.g.cfg.sinks) == 0 {
		return
	}
	end := c.g.cfg.now()
	ev := &Event{
		RequestID: c.reqID, Time: c.start, Method: c.r.Method, Path: c.r.URL.Path,
		Surface: c.surface, Format: c.format, Stream: c.parsed.stream,
		RequestedModels: c.parsed.names(), Rejected: c.rejected, Attempts: c.attempts,
		ServedBy: c.servedBy, RemovedParams: c.removed, Status: c.status, Err: c.err, Usage: c.usage, UsageReported: c.usageKnown,
		Latency: end.Sub(c.start),
	}
	if len(c.cands) > 0 {
		ev.Candidates = make([]string, len(c.cands))
		for i := range c.cands {
			ev.Candidates[i] = c.cands[i].name()
		}
	}
	ev.GatewayLatency = ev.Latency - c.upstreamTime
	if ev.GatewayLatency < 0 {
		ev.GatewayLatency = 0
	}
	if !c.firstWrite.IsZero() {
		ev.TimeToFirstByte = c.firstWrite.Sub(c.start)
	}
	for _, s := range c.g.cfg.sinks {
		s.HandleEvent(c.r.Context(), ev)
	}
}

// copyUpstreamIDs relays the upstream's request ID headers, which providers'
// support teams ask for.
func copyUpstreamIDs(dst, src http.Header) {
	for _, k := range [...]string{"X-Request-Id", "Request-Id"} {
		if v := src.Get(k); v != "" {
			dst.Set("Llmgate-Upstream-"+k, v)
		}
	}
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

// usageFromJSON reads the usage of a JSON response in format f.
func usageFromJSON(f providers.Format, body []byte) (tokens.Usage, bool) {
	if f == providers.FormatAnthropic {
		return tokens.AnthropicUsage(body)
	}
	return tokens.OpenAIUsage(body)
}

// upstreamErrorMessage extracts the message of an upstream error body in
// either format (or of the looser shapes compatible providers use), or a
// short prefix of a body that is not JSON.
func upstreamErrorMessage(body []byte) string {
	msg, _ := wire.ErrorMessage(body)
	return truncate(msg, 512)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

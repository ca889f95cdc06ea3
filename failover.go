package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/internal/translate"
	"github.com/llmgate/gateway/internal/wire"
	"github.com/llmgate/gateway/metrics"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/tokens"
)

// outcome is what an attempt decided.
type outcome uint8

const (
	nextAttempt outcome = iota // failed; try the next key or candidate
	done                       // the client has its response (success, relayed error or committed stream)
	stop                       // the client went away or the total timeout ran out
)

// prepared is one candidate ready to be sent: its route and its upstream
// body, shared by the attempts with each of its keys.
type prepared struct {
	cand    *candidate
	route   route
	body    []byte
	lease   *bodyLease // the pooled buffer body was rewritten into; nil: the request's
	removed []string   // request fields dropped by translation or the request policy
	pol     *policy    // the candidate's request policy; nil: none
	capped  int64      // the policy's MaxOutputTokens, when it is the maximum sent; 0 otherwise
}

// bodyLease returns the lease of the pooled buffer p.body is in: its own
// (a rewritten body), else the request's; nil when neither is pooled.
func (p *prepared) bodyLease(c *call) *bodyLease {
	if p.lease != nil {
		return p.lease
	}
	return c.bodyLease
}

// failover runs the attempt loop: each candidate in order, and for each its
// provider's keys in order, never the same (model, key) twice, within the
// total timeout and the attempt cap.
func (c *call) failover() {
	c.deadline = time.Now().Add(c.cfg.totalTimeout)
	var refused *translate.Error
	for i := range c.cands {
		p, te := c.prepare(&c.cands[i])
		if te != nil {
			refused = te
		}
		if p == nil {
			continue
		}
		keys, skip, ke := c.keysFor(p.cand)
		if ke != nil {
			ke.Attempts = c.attempts
			c.fail(ke)
			return
		}
		if skip != "" {
			why := AttemptSkippedCredential
			if len(p.cand.up.keys) > 0 {
				why = AttemptSkippedKeySelection
			}
			c.skip(p, providers.Key{}, why, skip)
			continue
		}
		for _, ks := range keys {
			if d := ks.remaining(p.cand.upstreamModel, c.now()); d > 0 {
				c.skip(p, ks.key, AttemptSkippedCooldown, "key cooling down for "+d.Round(time.Second).String())
				continue
			}
			if c.r.Context().Err() != nil || !time.Now().Before(c.deadline) {
				c.stopped()
				return
			}
			if countSent(c.attempts) >= c.cfg.maxAttempts {
				c.skip(p, ks.key, AttemptSkippedLimit, "the request reached its limit of "+strconv.Itoa(c.cfg.maxAttempts)+" upstream attempts")
				c.exhausted(nil)
				return
			}
			switch c.attempt(p, ks) {
			case done:
				return
			case stop:
				c.stopped()
				return
			}
		}
	}
	c.exhausted(refused)
}

// prepare decides how candidate cand serves the request and builds its
// upstream body: the client's body with the model rewritten, or its
// translation, then the request policy applied and the maximum output
// capped. A candidate that cannot serve the request is recorded as skipped
// and nil returned, with the translator's refusal if that was why.
func (c *call) prepare(cand *candidate) (*prepared, *translate.Error) {
	rt, ok, why := cand.route(c.surface)
	if !ok {
		c.attempts = append(c.attempts, Attempt{Provider: cand.up.id, Model: cand.upstreamModel, Skipped: true,
			Error: AttemptSkippedFormat, Reason: why})
		return nil, nil
	}
	p := &prepared{cand: cand, route: rt, pol: cand.policy()}
	if !rt.translate {
		inject := c.injectUsage(cand)
		p.body = c.body
		if c.parsed.changes(c.body, cand.upstreamModel, inject) {
			// A large body is rewritten into a pooled buffer, like the
			// one it was read into; finish gives it back.
			var buf []byte
			if p.lease = c.g.bodies.lease(len(c.body) + rewriteBound(cand.upstreamModel)); p.lease != nil {
				c.leases = append(c.leases, p.lease)
				buf = *p.lease.buf
			}
			p.body = c.parsed.rewriteInto(buf, c.body, cand.upstreamModel, inject)
		}
		c.applyPolicies(p)
		return p, nil
	}
	if c.parsed.stream && c.format == providers.FormatAnthropic {
		c.estimateInput(cand) // for message_start, counted while the upstream works
	}
	body, removed, err := translate.Request(c.format, cand.up.format, c.body,
		translate.RequestOptions{Model: cand.upstreamModel, MaxOutputTokens: cand.maxOutputTokens(),
			// A catalog model without reasoning rejects reasoning
			// settings: drop (and report) them instead.
			NoReasoning: cand.model != nil && !cand.model.HasFeature(catalog.FeatureReasoning)})
	if err != nil {
		reason := err.Error()
		var te *translate.Error
		if errors.As(err, &te) {
			reason = te.Message
		}
		c.attempts = append(c.attempts, Attempt{Provider: cand.up.id, Model: cand.upstreamModel, Skipped: true,
			Error: AttemptSkippedTranslation, Reason: reason})
		return nil, te
	}
	p.body, p.removed = body, removed
	c.applyPolicies(p)
	return p, nil
}

// injectUsage reports whether to ask an OpenAI-format upstream for a usage
// chunk at the end of the stream.
func (c *call) injectUsage(cand *candidate) bool {
	return c.parsed.stream && c.surface == providers.SurfaceChatCompletions && cand.up.streamUsage
}

// keysFor returns the keys to try for cand: its provider's configured keys
// in the order its key selection gives, or for a keyless provider the one
// the pass-through mode allows (the client's credential, or none), or the
// reason to skip it. A key selection strategy that fails fails the
// request.
func (c *call) keysFor(cand *candidate) ([]*keyState, string, *Error) {
	if ks, skip, ok := c.attachedKeys(cand.up); ok {
		return ks, skip, nil
	}
	if len(cand.up.keys) > 0 {
		keys, err := c.orderKeys(cand.up, cand.upstreamModel)
		if err == nil && len(keys) == 0 {
			return nil, "the provider's api key selection chose none of its keys", nil
		}
		return keys, "", err
	}
	if c.principal.KeyID != "" && !cand.up.custom {
		return nil, "provider " + cand.up.id + " has no configured key and none is attached to gateway key " + c.principal.KeyID, nil
	}
	k, skip := c.keylessKey(cand.up)
	if skip != "" {
		return nil, skip, nil
	}
	// Pass-through keys are the client's: they never cool down anything
	// shared. Their metrics are the provider's "client" key's.
	return []*keyState{{key: k, series: c.rt.metrics.Key(cand.up.id, k.ID)}}, "", nil
}

// remaining returns how long the key is still cooling for model.
func (ks *keyState) remaining(model string, now time.Time) time.Duration {
	if ks.cool == nil {
		return 0
	}
	return ks.cool.remaining(model, now.UnixNano())
}

// skip records a (candidate, key) pair that was not tried.
func (c *call) skip(p *prepared, k providers.Key, why AttemptError, reason string) {
	c.attempts = append(c.attempts, Attempt{Provider: p.cand.up.id, Model: p.cand.upstreamModel, KeyID: k.ID,
		Skipped: true, Translated: p.route.translate, Error: why, Reason: reason})
}

// attempt makes one upstream request and, when it succeeds, relays the
// answer to the client. Its context ends with the client's, and the
// watchdog cancels it at the per-attempt timeout or the total deadline,
// whichever comes first, until the response is committed.
func (c *call) attempt(p *prepared, ks *keyState) outcome {
	ctx, cancel := context.WithCancelCause(c.r.Context())
	defer cancel(nil)
	// A watchdog per attempt: a late fire of the last one's timer must
	// never touch this one.
	dog := new(watchdog)
	dog.start(cancel, c.cfg.perAttemptTimeout, time.Until(c.deadline), c.cfg.streamIdleTimeout)
	defer dog.stop()

	a := Attempt{Provider: p.cand.up.id, Model: p.cand.upstreamModel, KeyID: ks.key.ID, Translated: p.route.translate}
	if ks.key.ID != "" {
		a.KeySource = ks.key.Source.String()
	}
	mt := c.rt.metrics.Model(p.cand.up.id, p.cand.upstreamModel).Begin()
	kt := ks.series.Begin()
	start := c.now()
	a.Start = start
	req := &providers.Request{Surface: p.route.surface, Model: p.cand.upstreamModel, Body: p.body, Stream: c.parsed.stream, Header: c.header}
	if p.pol != nil {
		req.ExtraHeader, req.ExtraQuery = p.pol.header, p.pol.query
	}
	if lease := p.bodyLease(c); lease != nil {
		if _, ok := p.cand.up.impl.(providers.LeasesBody); ok {
			req.BodyLease = lease
		} else {
			lease.pin() // the provider may keep the body: never reuse it
		}
	}
	var o outcome
	sctx, span := c.startAttemptSpan(ctx, &a, p, req)
	if span != nil {
		// Ended on every path, a panic included; with the usage only when
		// this attempt's answer was relayed.
		defer func() {
			var u *tokens.Usage
			if o == done && a.Status >= 200 && a.Status < 300 && c.usageKnown {
				u = &c.usage
			}
			span.End(&a, u)
		}()
	}
	resp, err := p.cand.up.impl.Do(sctx, req, ks.key)
	a.TTFB = c.now().Sub(start)
	var ttft time.Duration
	switch {
	case err != nil:
		a.Error, a.Reason = c.classifyErr(ctx, err, ks.key)
		o = nextAttempt
		if a.Error == AttemptCanceled {
			o = stop
		}
	case resp.StatusCode < 200 || resp.StatusCode >= 300:
		a.Status = resp.StatusCode
		o = c.upstreamFailed(&a, p, ks, resp)
	default:
		a.Status = resp.StatusCode
		r := newRelay(c, ctx, dog, &a, p, ks.key, resp)
		o = r.run()
		if c.parsed.stream && r.committed {
			ttft = r.committedAt.Sub(start)
		}
	}
	a.Duration = c.now().Sub(start)
	c.upstreamTime += a.Duration
	c.attempts = append(c.attempts, a)
	observe(mt, kt, &a, ttft)
	return o
}

// observe ends the attempt's in-flight metrics and records its outcome,
// unless the client's leaving ended it: that says nothing of the upstream.
func observe(mt, kt metrics.Attempt, a *Attempt, ttft time.Duration) {
	if a.Error == AttemptCanceled {
		mt.Abandon()
		kt.Abandon()
		return
	}
	o := metrics.Outcome{Status: a.Status, Timeout: a.Error == AttemptTimeout, TTFT: ttft}
	if a.Error != "" && a.Status >= 200 && a.Status < 300 {
		// A 2xx whose body failed: an upstream failure, not a success.
		o.Status = 0
	}
	mt.End(o)
	kt.End(o)
}

// upstreamFailed handles a non-2xx upstream answer: cool the key down when
// the upstream refused or rate-limited it, then fail over or relay the
// error to the client.
func (c *call) upstreamFailed(a *Attempt, p *prepared, ks *keyState, resp *providers.Response) outcome {
	status := resp.StatusCode
	data, _ := readAll(resp.Body, 64<<10)
	resp.Body.Close()
	a.Error = AttemptStatus
	a.Reason = c.redact(upstreamErrorMessage(data), ks.key)
	if status >= 300 && status < 400 {
		a.Reason = "the upstream answered with a redirect (" + strconv.Itoa(status) + "), which is never followed"
	}
	if a.Reason == "" {
		a.Reason = http.StatusText(status)
	}
	c.coolDown(ks, p.cand, resp, data)
	if !c.relaysError(status, p, data) {
		return nextAttempt
	}
	// Relay the provider's error, as it is in the same wire format, else
	// translated to the status and shape the client's SDK expects.
	e := &Error{Kind: KindUpstream, Status: status, Message: a.Reason}
	c.err = e
	switch {
	case len(data) == 0:
		data = appendErrorBody(nil, c.format, e, c.reqID, c.cfg.errorDetail)
	case p.route.translate:
		status, data = translate.ErrorResponse(p.cand.up.format, c.format, status, data)
		e.Status = status
	}
	data = c.rt.redact.Bytes(data, c.principal.credential, c.principal.token, ks.key.Secret)
	c.commitHeaders(p, ks.key, countSent(c.attempts)+1)
	h := c.w.Header()
	h["Content-Type"] = valJSON
	c.copyUpstreamIDs(h, resp.Header, ks.key)
	if d, ok := providers.ParseRetryAfter(resp.Header.Get("Retry-After"), c.now(), c.cfg.maxRetryAfter); ok {
		h.Set("Retry-After", strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10))
	}
	if clientFault(status) {
		h.Set("X-Should-Retry", "false")
	}
	h.Set("Content-Length", strconv.Itoa(len(data)))
	c.writeHeader(status)
	c.armWrite()
	c.captureResponse(data)
	_, _ = c.w.Write(data)
	return done
}

// relaysError decides whether an upstream error ends the request: a status
// listed in WithFailFastStatuses, or a 400 or 422 to a request in the
// provider's own format that is about the request itself rather than the
// model's limits (every model would refuse it: the client should see the
// provider's explanation, not a 503). Everything else fails over.
func (c *call) relaysError(status int, p *prepared, body []byte) bool {
	if c.cfg.failFast[status] {
		return true
	}
	return (status == http.StatusBadRequest || status == http.StatusUnprocessableEntity) &&
		!p.route.translate && !wire.ModelSpecific(body)
}

// coolDown puts a configured key aside after the upstream refused it (the
// whole key) or rate-limited it (for that model only, unless the upstream
// says the limit is the account's).
func (c *call) coolDown(ks *keyState, cand *candidate, resp *providers.Response, body []byte) {
	if ks.cool == nil {
		return
	}
	now := c.now()
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusPaymentRequired, http.StatusForbidden:
		if c.cfg.authCooldown > 0 {
			ks.cool.coolKey(now.Add(c.cfg.authCooldown).UnixNano())
		}
	case http.StatusTooManyRequests:
		d := c.cfg.rateLimitCooldown
		if ra, ok := providers.ParseRetryAfter(resp.Header.Get("Retry-After"), now, c.cfg.maxRetryAfter); ok {
			d = ra
		}
		if d <= 0 {
			return
		}
		until := now.Add(d).UnixNano()
		if wire.AccountWide(body) {
			ks.cool.coolKey(until)
		} else {
			ks.cool.coolModel(cand.upstreamModel, until, now.UnixNano())
		}
	}
}

// classifyErr explains a transport error (no response, or a body read that
// failed) in terms of what ended it.
func (c *call) classifyErr(ctx context.Context, err error, k providers.Key) (AttemptError, string) {
	switch cause := context.Cause(ctx); {
	case c.r.Context().Err() != nil:
		return AttemptCanceled, "client closed the request"
	case errors.Is(cause, errTotalTimeout):
		return AttemptCanceled, "total timeout exceeded"
	case errors.Is(cause, errAttemptTimeout):
		return AttemptTimeout, "no answer within the per-attempt timeout of " + c.cfg.perAttemptTimeout.String()
	case errors.Is(cause, errIdleTimeout):
		return AttemptTimeout, "stream idle for " + c.cfg.streamIdleTimeout.String()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return AttemptTimeout, c.redact(err.Error(), k)
	}
	return AttemptConnection, c.redact(err.Error(), k)
}

// stopped ends a request that ran out of time before a response was
// committed: the client went away, or the total timeout ran out.
func (c *call) stopped() {
	if err := c.r.Context().Err(); err != nil {
		c.fail(&Error{Kind: KindCanceled, Message: "client closed the request", Attempts: c.attempts, Err: err})
		return
	}
	c.fail(&Error{Kind: KindTotalTimeout, Attempts: c.attempts,
		Message: "total timeout of " + c.cfg.totalTimeout.String() + " exceeded after " + strconv.Itoa(countSent(c.attempts)) + " attempts"})
}

// exhausted ends a request whose every candidate and key failed or was
// skipped.
func (c *call) exhausted(refused *translate.Error) {
	sent := countSent(c.attempts)
	if sent == 0 && refused != nil {
		// Nothing was sent because the only usable candidates would need a
		// translation that changes the request's meaning.
		c.fail(&Error{Kind: KindInvalidRequest, Param: refused.Param, Attempts: c.attempts,
			Message: refused.Message + " (no candidate model serves this request natively)", Err: refused})
		return
	}
	e := &Error{Kind: KindAllProvidersFailed, Attempts: c.attempts}
	last := c.lastFailure()
	switch {
	case sent == 0:
		e.Message = "no upstream could be tried: every candidate was skipped"
		if last != "" {
			e.Message += "; last: " + last
		}
	case len(c.cands) == 1 && sent == 1:
		e.Message = "the upstream request failed: " + last
	default:
		e.Message = "all " + strconv.Itoa(sent) + " upstream attempts failed; last: " + last
	}
	if sent == 0 || c.allRateLimited() {
		// Every key is cooling: say when the first one is back, on the
		// very request whose 429s started the cooldowns too.
		e.RetryAfter = c.minCooldown()
	}
	c.fail(e)
}

// lastFailure describes the last attempt, with the upstream's reason only
// under WithErrorDetail (the event always has it).
func (c *call) lastFailure() string {
	for i := len(c.attempts) - 1; i >= 0; i-- {
		a := &c.attempts[i]
		if a.Skipped && countSent(c.attempts) > 0 {
			continue
		}
		r := a.Provider + ":" + a.Model
		switch {
		case a.Status != 0:
			r += " answered " + strconv.Itoa(a.Status)
		case a.Error != "":
			r += ": " + string(a.Error)
		}
		if a.Reason != "" && (c.cfg.errorDetail || a.Skipped) {
			r += ": " + a.Reason
		}
		return r
	}
	return ""
}

// allRateLimited reports whether every attempt sent was answered 429.
func (c *call) allRateLimited() bool {
	n := 0
	for i := range c.attempts {
		if a := &c.attempts[i]; !a.Skipped {
			if a.Status != http.StatusTooManyRequests {
				return false
			}
			n++
		}
	}
	return n > 0
}

// minCooldown returns the time until the first of the plan's keys is
// usable again for its model, or 0.
func (c *call) minCooldown() time.Duration {
	now := c.now()
	var soonest time.Duration
	for i := range c.cands {
		for _, ks := range c.cands[i].up.keys {
			if d := ks.remaining(c.cands[i].upstreamModel, now); d > 0 && (soonest == 0 || d < soonest) {
				soonest = d
			}
		}
	}
	return soonest
}

// redact removes every configured secret, the client's credential and the
// attempt's key from s.
func (c *call) redact(s string, k providers.Key) string {
	return c.rt.redact.String(s, c.principal.credential, c.principal.token, k.Secret)
}

// watchdog cancels an attempt whose upstream keeps it waiting: until the
// commit point for the per-attempt timeout (or the total deadline, when it
// comes first), then, for a stream, for the idle timeout between events.
// The time spent writing to the client does not count (the client has its
// own write deadline): the relay pauses the watchdog while it writes. One
// timer per attempt that re-arms itself; the relay only stores deadlines.
type watchdog struct {
	timer    *time.Timer
	cancel   context.CancelCauseFunc
	idle     time.Duration
	cause    error        // of a timeout before the commit point: errAttemptTimeout or errTotalTimeout
	deadline atomic.Int64 // UnixNano the upstream must answer by; 0 while the gateway writes
	state    atomic.Int32 // watchWaiting, then watchCommitted or watchFired
}

// Watchdog states: a commit and a timeout race for the one transition out
// of watchWaiting, so a response is never committed by an attempt that
// has already timed out.
const (
	watchWaiting   int32 = iota // before the commit point
	watchCommitted              // committed: the idle timeout applies
	watchFired                  // a timeout canceled the attempt
)

// start arms the watchdog for an attempt: cancel ends it at perAttempt, or
// at total (the time left of the total timeout) when that is sooner.
func (w *watchdog) start(cancel context.CancelCauseFunc, perAttempt, total, idle time.Duration) {
	w.cancel, w.idle, w.cause = cancel, idle, errAttemptTimeout
	d := perAttempt
	if total < d {
		d, w.cause = max(total, 0), errTotalTimeout
	}
	w.state.Store(watchWaiting)
	w.deadline.Store(time.Now().Add(d).UnixNano())
	w.timer = time.AfterFunc(d, w.fire)
}

func (w *watchdog) fire() {
	d := w.deadline.Load()
	if d == 0 {
		// The gateway is writing to the client: not the upstream's time.
		w.timer.Reset(w.idle)
		return
	}
	if wait := time.Until(time.Unix(0, d)); wait > 0 {
		w.timer.Reset(wait)
		return
	}
	if w.state.CompareAndSwap(watchWaiting, watchFired) {
		w.cancel(w.cause)
		return
	}
	w.cancel(errIdleTimeout)
}

// commit switches from the attempt's timeouts to the idle timeout. It
// reports false when a timeout fired first: the attempt is over and must
// not commit.
func (w *watchdog) commit() bool {
	if !w.state.CompareAndSwap(watchWaiting, watchCommitted) {
		return false
	}
	w.deadline.Store(0)
	w.timer.Reset(w.idle)
	return true
}

// waitUpstream starts an idle period: the upstream must send its next
// event within the idle timeout. Before the commit point the attempt's
// deadline stays.
func (w *watchdog) waitUpstream() {
	if w.state.Load() == watchCommitted {
		w.deadline.Store(time.Now().Add(w.idle).UnixNano())
	}
}

// pause stops the clock while the gateway writes to the client.
func (w *watchdog) pause() {
	if w.state.Load() == watchCommitted {
		w.deadline.Store(0)
	}
}

// stop ends the attempt's watch.
func (w *watchdog) stop() {
	w.timer.Stop()
	w.state.Store(watchFired)
}

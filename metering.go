package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/credits"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/tokens"
)

// Metering is where a request's tokens are bounded and its cost is held
// and settled (WithTokenLimits, WithMetering). Two phases of the pipeline:
//
//   - admit runs after planning, before any upstream call: it applies the
//     token limits and, when the request pays with credits, reserves the
//     most it may cost (its prompt and maximum answer at the dearest
//     credit-paid candidate's prices, plus the fee) against the account,
//     lowering the request's maximum output tokens to what the account
//     can pay when it cannot pay the whole worst case, and refusing it in
//     the client's dialect when it cannot pay even the prompt and a
//     minimum answer.
//   - settle runs in finish on every path, exactly once: it prices what
//     the serving candidate used (the provider's counts, else the
//     gateway's), settles or releases the hold, and records the usage.
//
// Counting a prompt with tiktoken costs milliseconds per hundred kilobytes,
// so admit counts only when a decision needs the count: the hold is first
// sized with tokens.UpperBound, which reads no JSON, and the prompt is
// counted only when a limit or a short balance could change the answer.

// HeaderMaxOutputTokens is set when the gateway lowered the request's
// maximum output tokens, to the value sent upstream, followed by why:
// "512; reason=credits" (the account's balance covers no more),
// "8192; reason=limit" (WithTokenLimits), "4096; reason=default"
// (MeteringOptions.DefaultMaxOutputTokens) or "1024; reason=policy" (the
// serving model's RequestPolicy.MaxOutputTokens).
const HeaderMaxOutputTokens = "Llmgate-Max-Output-Tokens"

// meter is a routing snapshot's metering: the ledger, its options with
// defaults applied, and the sweeper (kept across Reloads while the ledger
// and its interval stay).
type meter struct {
	ledger credits.Ledger
	opts   MeteringOptions
	sweep  *sweeper // nil when the ledger does not sweep or sweeping is off
	logger *slog.Logger
}

// newMeter builds the snapshot's meter, reusing prev's sweeper when it
// sweeps the same ledger at the same interval.
func newMeter(cfg *config, prev *meter) *meter {
	if cfg.ledger == nil {
		return nil
	}
	o := cfg.metering
	if o.MinOutputTokens == 0 {
		o.MinOutputTokens = DefaultMinOutputTokens
	}
	if o.DefaultMaxOutputTokens == 0 {
		o.DefaultMaxOutputTokens = DefaultMeteredMaxOutputTokens
	}
	if o.HoldTTL == 0 {
		o.HoldTTL = max(DefaultHoldTTL, min(2*cfg.totalTimeout, credits.MaxHoldTTL))
	}
	if o.SweepInterval == 0 {
		o.SweepInterval = DefaultSweepInterval
	}
	m := &meter{ledger: cfg.ledger, opts: o, logger: cfg.logger}
	if s, ok := cfg.ledger.(credits.Sweeper); ok && o.SweepInterval > 0 {
		if prev != nil && prev.sweep != nil && prev.sweep.s == s && prev.sweep.interval == o.SweepInterval {
			m.sweep = prev.sweep
		} else {
			m.sweep = &sweeper{s: s, interval: o.SweepInterval, logger: cfg.logger}
		}
	}
	return m
}

// sweeper asks a ledger to release expired holds and expire lots, once at
// start (holds a crash left behind) and then every interval, until stop.
type sweeper struct {
	s        credits.Sweeper
	interval time.Duration
	logger   *slog.Logger

	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc // ends run and a sweep in progress; nil once stopped
	done    chan struct{}      // closed when run returns
}

func (s *sweeper) start() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return
	}
	s.started = true
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	go s.run(ctx, s.done)
}

// run sweeps until ctx ends, then closes done. It touches none of s's
// mutable fields, which stop changes.
func (s *sweeper) run(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		// stop cancels a sweep in progress through ctx.
		sctx, cancel := context.WithTimeout(ctx, max(s.interval, 10*time.Second))
		res, err := s.s.Sweep(sctx)
		cancel()
		switch {
		case err != nil && !errors.Is(err, context.Canceled):
			s.logger.Warn("llmgate: credits sweep failed", "error", err.Error())
		case res.HoldsReleased > 0 || res.LotsExpired > 0:
			s.logger.Info("llmgate: credits sweep", "holds_released", res.HoldsReleased, "released", res.Released.String(),
				"lots_expired", res.LotsExpired, "expired", res.Expired.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// stop ends the sweeper and waits for it.
func (s *sweeper) stop() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started || s.cancel == nil {
		return
	}
	s.cancel()
	<-s.done
	s.cancel = nil
}

func (m *meter) start() {
	if m != nil {
		m.sweep.start()
	}
}

// stop stops m's sweeper unless next keeps it.
func (m *meter) stop(next *meter) {
	if m == nil || next != nil && next.sweep == m.sweep {
		return
	}
	m.sweep.stop()
}

// admit applies the request's token limits and holds its cost.
func (c *call) admit() *Error {
	if e := c.limitTokens(); e != nil {
		return e
	}
	return c.reserve()
}

// limitTokens applies WithTokenLimits: the output limit lowers (or sets)
// the request's maximum output tokens; the input limit counts the prompt
// only when its upper bound exceeds the limit.
func (c *call) limitTokens() *Error {
	if lim := int64(c.cfg.maxOutputTokens); lim > 0 && c.surface != providers.SurfaceEmbeddings {
		if c.parsed.maxOut == 0 || c.parsed.maxOut > lim {
			c.capOutput(lim, "limit")
		}
	}
	lim := int64(c.cfg.maxInputTokens)
	if lim == 0 || tokens.UpperBound(c.body) <= lim {
		return nil
	}
	if n := c.countInput(c.encoding()); n > lim {
		return &Error{Kind: KindInputTooLarge, Param: promptParam(c.surface),
			Message: fmt.Sprintf("the prompt has %d tokens; this gateway accepts at most %d", n, lim)}
	}
	return nil
}

// promptParam names the request field holding the prompt.
func promptParam(s providers.Surface) string {
	switch s {
	case providers.SurfaceResponses, providers.SurfaceEmbeddings:
		return "input"
	}
	return "messages"
}

// capOutput lowers the maximum output tokens sent upstream to n (never
// raises it), saying so in HeaderMaxOutputTokens.
func (c *call) capOutput(n int64, reason string) {
	if c.outCap != 0 && c.outCap <= n {
		return
	}
	c.outCap = n
	c.w.Header().Set(HeaderMaxOutputTokens, strconv.FormatInt(n, 10)+"; reason="+reason)
}

// encoding is the tokenizer of the first candidate's model, the one the
// gateway counts the prompt with (see package tokens for non-OpenAI
// models).
func (c *call) encoding() string {
	if len(c.cands) > 0 && c.cands[0].model != nil && c.cands[0].model.Encoding != "" {
		return c.cands[0].model.Encoding
	}
	if len(c.cands) > 0 {
		return tokens.EncodingFor(c.cands[0].upstreamModel)
	}
	return catalog.EncodingO200K
}

// countInput counts the prompt's tokens in encoding with tiktoken, once
// per encoding.
func (c *call) countInput(encoding string) int64 {
	if c.inputCounted && c.inputEncoding == encoding {
		return c.promptTokens
	}
	var n int64
	switch c.surface {
	case providers.SurfaceChatCompletions:
		n = c.g.counter.EstimateOpenAIChat(encoding, c.body)
	case providers.SurfaceMessages:
		n = c.g.counter.EstimateAnthropicMessages(encoding, c.body)
	default:
		// Responses and embeddings: the body's text as a whole, an
		// overcount by its JSON punctuation.
		k, err := c.g.counter.Count(encoding, string(c.body))
		if err != nil {
			k = int(tokens.UpperBound(c.body))
		}
		n = int64(k)
	}
	c.promptTokens, c.inputEncoding, c.inputCounted = n, encoding, true
	return n
}

// account is whose credits the request spends: the principal's account,
// or for a gateway key without one the key's own ID.
func (c *call) account() string {
	if c.principal.Account != "" {
		return c.principal.Account
	}
	return c.principal.KeyID
}

// creditPaid reports whether cand would be served with the operator's
// configured provider keys (and so paid with credits): not with keys
// attached to the client's gateway key, nor with the client's own
// credential, nor without a key.
func (c *call) creditPaid(cand *candidate) bool {
	if len(cand.up.keys) == 0 {
		return false
	}
	for i := range c.principal.attached {
		if c.attachedTo(&c.principal.attached[i], cand.up) {
			return false
		}
	}
	return true
}

// priced reports whether the catalog has a price for cand's model.
func priced(cand *candidate) bool {
	return cand.model != nil && (cand.model.Pricing.Input > 0 || cand.model.Pricing.Output > 0)
}

// reserve holds the request's worst-case cost when it pays with credits.
func (c *call) reserve() *Error {
	m := c.rt.meter
	if m == nil || !m.opts.Credits || c.account() == "" {
		return nil
	}
	// Candidates paid with credits must have a price.
	kept, paid := c.cands[:0], 0
	var unpriced []string
	for i := range c.cands {
		cand := c.cands[i]
		if c.creditPaid(&cand) {
			if !priced(&cand) {
				unpriced = append(unpriced, cand.name())
				c.rejected = append(c.rejected, Rejection{Model: cand.name(), Reason: "no price in the catalog: cannot be paid with credits"})
				continue
			}
			paid++
		}
		kept = append(kept, cand)
	}
	c.cands = kept
	if len(unpriced) > 0 {
		c.setRejectedHeader()
	}
	if len(c.cands) == 0 {
		return &Error{Kind: KindModelNotPriced, Param: "model",
			Message: "the catalog has no price for " + strings.Join(unpriced, ", ") + ": requests paid with credits can only use priced models (configure the model's pricing, or attach your own provider key)"}
	}
	if paid == 0 {
		return nil
	}
	if c.surface != providers.SurfaceEmbeddings && c.parsed.maxOut == 0 && c.outCap == 0 {
		// Without a maximum from the client or the catalog the answer is
		// unbounded: bound it, so that the hold is the worst case.
		for i := range c.cands {
			if c.creditPaid(&c.cands[i]) && c.cands[i].maxOutputTokens() == 0 {
				c.capOutput(int64(m.opts.DefaultMaxOutputTokens), "default")
				break
			}
		}
	}
	in, exact := tokens.UpperBound(c.body), false
	recount := func() bool {
		if exact {
			return false
		}
		exact = true
		n := c.countInput(c.priciestEncoding(in))
		if n >= in {
			return false
		}
		in = n
		return true
	}
	c.holdTried = true
	for {
		worst, least := c.holdRange(in)
		h, err := m.ledger.Reserve(c.r.Context(), credits.Reservation{ID: c.reqID, Account: c.account(),
			Max: worst, Min: least, TTL: m.opts.HoldTTL})
		var ie *credits.InsufficientError
		switch {
		case err == nil:
			c.hold, c.held = h, true
			if h.Amount < worst {
				// The account cannot pay the worst case: lower the answer
				// to what the hold pays for, with the prompt counted
				// exactly so that the bound's slack is not taken from it.
				recount()
				if w, _ := c.holdRange(in); w > h.Amount {
					c.capOutput(c.outputWithin(h.Amount, in), "credits")
				}
			}
			return nil
		case errors.As(err, &ie):
			if !ie.Never && recount() {
				continue
			}
			msg := "account " + strconv.Quote(c.account()) + " has no credits"
			if !ie.Never {
				msg = "account " + strconv.Quote(c.account()) + " has $" + ie.Available.String() + " of credits available; this request needs at least $" + least.String() +
					" (its prompt and " + strconv.Itoa(m.opts.MinOutputTokens) + " output tokens)"
			}
			return &Error{Kind: KindCreditsExhausted, Message: msg + ": buy credits to continue", Err: err}
		case c.r.Context().Err() != nil:
			return &Error{Kind: KindCanceled, Message: "client went away while credits were reserved", Err: err}
		default:
			m.logger.Error("llmgate: credits reserve failed", "request_id", c.reqID, "error", err.Error())
			return &Error{Kind: KindCreditsUnavailable, Message: "the credits ledger could not be reached; nothing was charged, retry later", Err: err}
		}
	}
}

// maxOutFor is the most output tokens cand may produce for this request:
// the smallest of the gateway's cap, the client's maximum and the model's
// (the catalog's, lowered by the request policy's clamp), else the
// default.
func (c *call) maxOutFor(cand *candidate) int64 {
	n := c.parsed.maxOut
	if c.outCap > 0 && (n == 0 || c.outCap < n) {
		n = c.outCap
	}
	if cm := int64(cand.maxOutputTokens()); cm > 0 && (n == 0 || cm < n) {
		n = cm
	}
	if n == 0 {
		n = int64(c.rt.meter.opts.DefaultMaxOutputTokens)
	}
	return n
}

// holdRange returns the most and the least worth holding for a prompt of
// in tokens: the worst case and the prompt with a minimum answer, each at
// the dearest credit-paid candidate.
func (c *call) holdRange(in int64) (worst, least credits.Amount) {
	m := c.rt.meter
	for i := range c.cands {
		cand := &c.cands[i]
		if !c.creditPaid(cand) {
			continue
		}
		out := c.maxOutFor(cand)
		minOut := min(int64(m.opts.MinOutputTokens), out)
		p := worstPricing(cand.model.Pricing)
		cin := in + cand.extraInput()
		worst = max(worst, m.charge(p, credits.Tokens{Input: cin, Output: out}))
		least = max(least, m.charge(p, credits.Tokens{Input: cin, Output: minOut}))
	}
	if least == 0 {
		least = 1 // a hold of nothing is no hold
	}
	return max(worst, least), least
}

// priciestEncoding is the tokenizer of the credit-paid candidate whose
// worst case is dearest.
func (c *call) priciestEncoding(in int64) string {
	enc, best := "", credits.Amount(-1)
	for i := range c.cands {
		cand := &c.cands[i]
		if !c.creditPaid(cand) {
			continue
		}
		if w := c.rt.meter.charge(worstPricing(cand.model.Pricing), credits.Tokens{Input: in + cand.extraInput(), Output: c.maxOutFor(cand)}); w > best {
			best, enc = w, cand.model.Encoding
		}
	}
	if enc == "" {
		enc = catalog.EncodingO200K
	}
	return enc
}

// outputWithin returns the most output tokens every credit-paid candidate
// can produce, with a prompt of in tokens, for at most amount.
func (c *call) outputWithin(amount credits.Amount, in int64) int64 {
	m := c.rt.meter
	best := int64(-1)
	for i := range c.cands {
		cand := &c.cands[i]
		if !c.creditPaid(cand) {
			continue
		}
		p := worstPricing(cand.model.Pricing)
		cin := in + cand.extraInput()
		lo, hi := int64(0), c.maxOutFor(cand)
		for lo < hi { // the largest out with charge(out) <= amount
			mid := lo + (hi-lo+1)/2
			if m.charge(p, credits.Tokens{Input: cin, Output: mid}) <= amount {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		if best < 0 || lo < best {
			best = lo
		}
	}
	return max(best, 1)
}

// worstPricing prices every prompt token at the dearest input rate (a
// cache write costs more than a plain input token at some providers).
func worstPricing(p catalog.Pricing) catalog.Pricing {
	p.Input = max(p.Input, p.CacheWrite, p.CacheRead)
	p.CacheRead, p.CacheWrite = 0, 0
	return p
}

// maxBilledTokens bounds each token count priced, far above any real
// request, so that no provider report can overflow the arithmetic.
const maxBilledTokens = 1 << 29

// cost is the model price of t at p, rounded up to the micro-dollar.
// Cached prompt tokens are priced at CacheRead and CacheWrite; a zero
// cache price means the plain input price.
func cost(p catalog.Pricing, t credits.Tokens) credits.Amount {
	clamp := func(n int64) int64 { return min(max(n, 0), maxBilledTokens) }
	in, out, cr, cw := clamp(t.Input), clamp(t.Output), clamp(t.CacheRead), clamp(t.CacheWrite)
	uncached := max(in-cr-cw, 0)
	rr, wr := p.CacheRead, p.CacheWrite
	if rr == 0 {
		rr = p.Input
	}
	if wr == 0 {
		wr = p.Input
	}
	// Each product is at most 2^29 tokens × 2^31 µ$ ($2,147 per million
	// tokens) = 2^60: the sum of four cannot overflow.
	price := func(v int64) int64 { return min(max(v, 0), 1<<31) }
	micro := uncached*price(p.Input) + cr*price(rr) + cw*price(wr) + out*price(p.Output)
	return credits.Amount(ceilDiv(micro, 1_000_000))
}

// fee is the processing fee on a model cost for n tokens.
func (m *meter) fee(modelCost credits.Amount, n int64) credits.Amount {
	f := ceilDiv(int64(modelCost)*m.opts.FeeBasisPoints, 10_000)
	f += ceilDiv(min(max(n, 0), 4*maxBilledTokens)*int64(m.opts.FeePerMillionTokens), 1_000_000)
	return credits.Amount(f)
}

// charge is what t costs at p, fee included.
func (m *meter) charge(p catalog.Pricing, t credits.Tokens) credits.Amount {
	mc := cost(p, t)
	return mc + m.fee(mc, t.Input+t.Output)
}

func ceilDiv(a, b int64) int64 {
	if a <= 0 {
		return 0
	}
	return (a + b - 1) / b
}

// settle prices what the request used, settles or releases its hold and
// records its usage. It runs once, in finish, on every path.
func (c *call) settle(ctx context.Context) {
	m := c.rt.meter
	if m == nil || c.explain || c.surface == "" || c.body == nil && !c.holdTried {
		return // not an API request that reached the gateway's pipeline
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	rec := c.usageRecord()
	paid := c.held && c.answered() && c.servedSource == providers.KeyConfigured && c.servedKeyID != ""
	var err error
	switch {
	case paid:
		var s credits.Settlement
		for try := 0; ; try++ {
			s, err = m.ledger.Settle(ctx, c.hold.ID, rec.Charge(), rec)
			if err == nil || try == 2 || !errors.Is(err, credits.ErrUnavailable) || ctx.Err() != nil {
				break
			}
			time.Sleep(time.Duration(50<<try) * time.Millisecond)
		}
		if err == nil && s.Uncollected > 0 {
			m.logger.Warn("llmgate: request cost more than its account could pay", "request_id", c.reqID,
				"account", rec.Account, "uncollected", s.Uncollected.String())
		}
	case c.holdTried:
		// Nothing credit-paid was served (or the reservation's answer was
		// lost): end the hold, then record.
		if rerr := m.ledger.Release(ctx, c.reqID); rerr != nil && !errors.Is(rerr, credits.ErrHoldNotFound) {
			err = rerr
		}
		if rerr := m.ledger.Record(ctx, rec); rerr != nil {
			err = errors.Join(err, rerr)
		}
	default:
		err = m.ledger.Record(ctx, rec)
	}
	if err != nil {
		m.logger.Error("llmgate: metering failed", "request_id", c.reqID, "paid", paid, "error", err.Error())
	}
}

// usageRecord builds the request's usage record: the tokens the provider
// reported and those the gateway counted, and their price at the serving
// model's catalog prices plus the fee.
func (c *call) usageRecord() *credits.UsageRecord {
	m := c.rt.meter
	end := c.now()
	rec := &credits.UsageRecord{ID: c.reqID, RequestID: c.reqID, KeyID: c.principal.KeyID, Account: c.account(),
		Status: c.status, Stream: c.parsed.stream, Start: c.start, End: end}
	if c.err != nil {
		rec.Error = c.err.Code()
	}
	rec.Attempts = make([]credits.AttemptRecord, 0, min(len(c.attempts), credits.MaxAttempts))
	for i := range c.attempts {
		a := &c.attempts[i]
		if len(rec.Attempts) == credits.MaxAttempts {
			rec.AttemptsDropped = len(c.attempts) - i
			break
		}
		rec.Attempts = append(rec.Attempts, credits.AttemptRecord{Provider: a.Provider, Model: a.Model, KeyID: a.KeyID,
			KeySource: credits.KeySource(a.KeySource), Skipped: a.Skipped, Status: a.Status, Error: string(a.Error),
			Served: a.Error == AttemptOK && !a.Skipped && c.served.up != nil, Start: a.Start, Duration: a.Duration})
	}
	if c.served.up == nil {
		rec.KeySource = credits.SourceNone
		return rec
	}
	rec.Provider, rec.Model = c.served.up.id, c.served.upstreamModel
	rec.KeySource = keySource(c.servedKeyID, c.servedSource)
	if !c.answered() {
		return rec // the provider's error, relayed: nothing to pay for
	}
	u := c.usage
	rec.Reported = credits.Tokens{Input: u.InputTokens, Output: u.OutputTokens, CacheRead: u.CacheReadTokens, CacheWrite: u.CacheWriteTokens}
	rec.ReportedKnown = c.usageKnown
	// The provider's counts win; where it reported nothing (or a stream
	// ended before its final usage), the gateway counts: the prompt with
	// the model's tokenizer, the answer from the text delivered.
	final := c.usageKnown && (!c.parsed.stream || c.relay.tap.outputReported())
	billed := rec.Reported
	enc := tokens.EncodingFor(c.served.upstreamModel)
	if c.served.model != nil && c.served.model.Encoding != "" {
		enc = c.served.model.Encoding
	}
	if !c.usageKnown || u.InputTokens == 0 {
		rec.Estimated.Input = c.countInput(enc)
		billed.Input = rec.Estimated.Input
	} else if c.inputCounted {
		rec.Estimated.Input = c.promptTokens
	}
	if !final {
		rec.Estimated.Output = c.relay.tap.out.Tokens(c.g.counter, enc)
		billed.Output = max(billed.Output, rec.Estimated.Output)
	}
	if c.served.model != nil {
		rec.Cost = cost(c.served.model.Pricing, billed)
		rec.Fee = m.fee(rec.Cost, billed.Input+billed.Output)
	}
	return rec
}

// answered reports that a candidate answered the request with a success
// (a relayed upstream error is not one).
func (c *call) answered() bool { return c.served.up != nil && c.status >= 200 && c.status < 300 }

// keySource names where the serving key came from, for usage records.
func keySource(id string, s providers.KeySource) credits.KeySource {
	switch {
	case s == providers.KeyAttached:
		return credits.SourceAttached
	case s == providers.KeyClient:
		return credits.SourceClient
	case id == "":
		return credits.SourceNone
	}
	return credits.SourceConfigured
}

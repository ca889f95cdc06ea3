package prommetrics

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/providers"
)

// HandleEvent records one request's event: the request by status and
// error code, its gateway overhead, each upstream attempt (result,
// duration, and the failover that followed a failed one), and for the
// model that served it the request's duration, time to first token,
// tokens and cost. It takes no lock once the event's labels were seen,
// performs no I/O and does not allocate; part of gateway.EventSink.
func (e *Exporter) HandleEvent(_ context.Context, ev *gateway.Event) {
	e.requestChildren.get(e, ev.Status, ev.Err).Inc()
	if ev.Surface == "" {
		return // a model list, or a path with no route: nothing went upstream
	}
	op := opOf(ev.Surface)
	e.overhead.Observe(ev.GatewayLatency.Seconds())
	var cat *catalog.Catalog
	if gw := e.gw.Load(); gw != nil {
		cat = gw.Catalog()
	}
	t := e.labels.current(cat)
	var (
		failed *modelSeries // the series of a sent attempt that failed
		last   *resolved    // the resolution of the last sent attempt
		la     *gateway.Attempt
	)
	for i := range ev.Attempts {
		a := &ev.Attempts[i]
		r := e.labels.resolve(t, a.Provider, a.Model)
		s := r.s
		if a.Skipped {
			s.skip(a.Error).Inc()
			continue
		}
		if failed != nil {
			failed.failovers().Inc()
			failed = nil
		}
		last, la = r, a
		s.attempt(a.Error).Inc()
		s.operation(op, a).Observe(a.Duration.Seconds())
		if a.Error != gateway.AttemptOK {
			failed = s
		}
	}

	served, r := e.none, (*resolved)(nil)
	if provider, model, ok := strings.Cut(ev.ServedBy, ":"); ok {
		if la != nil && la.Provider == provider && la.Model == model {
			r = last // the attempt that served: resolved already
		} else {
			r = e.labels.resolve(t, provider, model)
		}
		served = r.s
	}
	served.serverDuration(op, ev.Err).Observe(ev.Latency.Seconds())
	if r == nil {
		return
	}
	if ev.Stream && ev.TimeToFirstByte > 0 {
		served.timeToFirstToken(op).Observe(ev.TimeToFirstByte.Seconds())
	}
	if ev.UsageReported {
		u := &ev.Usage
		served.tokens(op, tokenInput).Observe(float64(u.InputTokens))
		served.tokens(op, tokenOutput).Observe(float64(u.OutputTokens))
		if !r.pricing.IsZero() {
			if c := cost(r.pricing, u.InputTokens, u.OutputTokens, u.CacheReadTokens, u.CacheWriteTokens); c > 0 {
				served.costs().Add(c)
			}
		}
	}
}

// cost is the list price in US dollars of the token counts at p (micro-USD
// per million tokens), pricing cached prompt tokens at the cache prices (a
// zero cache price means the input price), as the gateway's metering does.
// The products are exact integers in pico-dollars.
func cost(p catalog.Pricing, in, out, cacheRead, cacheWrite int64) float64 {
	const maxTokens = 1 << 29 // as metering: no product can overflow
	clamp := func(n int64) int64 { return min(max(n, 0), maxTokens) }
	price := func(v int64) int64 { return min(max(v, 0), 1<<31) }
	in, out, cacheRead, cacheWrite = clamp(in), clamp(out), clamp(cacheRead), clamp(cacheWrite)
	uncached := max(in-cacheRead-cacheWrite, 0)
	rr, wr := p.CacheRead, p.CacheWrite
	if rr == 0 {
		rr = p.Input
	}
	if wr == 0 {
		wr = p.Input
	}
	pico := uncached*price(p.Input) + cacheRead*price(rr) + cacheWrite*price(wr) + out*price(p.Output)
	return float64(pico) / 1e12
}

// opOf maps an API surface to its OpenTelemetry operation.
func opOf(s providers.Surface) int {
	if s == providers.SurfaceEmbeddings {
		return opEmbeddings
	}
	return opChat
}

var opNames = [numOps]string{opChat: "chat", opEmbeddings: "embeddings"}

// Token types (gen_ai_token_type).
const (
	tokenInput = iota
	tokenOutput
	numTokenTypes
)

var tokenTypes = [numTokenTypes]string{tokenInput: "input", tokenOutput: "output"}

// Attempt results with a child of their own in a modelSeries: the classes
// of sent attempts.
var results = [...]gateway.AttemptError{
	gateway.AttemptOK, gateway.AttemptTimeout, gateway.AttemptConnection, gateway.AttemptStatus,
	gateway.AttemptBadResponse, gateway.AttemptStreamError, gateway.AttemptStreamFailed, gateway.AttemptCanceled,
}

// Reasons of skipped candidates with a child of their own in a
// modelSeries.
var reasons = [...]gateway.AttemptError{
	gateway.AttemptSkippedCooldown, gateway.AttemptSkippedFormat, gateway.AttemptSkippedTranslation,
	gateway.AttemptSkippedCredential, gateway.AttemptSkippedLimit, gateway.AttemptSkippedKeySelection,
}

// resultLabel is the result label of an attempt error.
func resultLabel(a gateway.AttemptError) string {
	if a == gateway.AttemptOK {
		return "ok"
	}
	return string(a)
}

// modelSeries holds the metric children of one (provider, model) label
// pair, each created on first use.
type modelSeries struct {
	e *Exporter
	pair
	attempts       [len(results)]lazy[prometheus.Counter]
	skips          [len(reasons)]lazy[prometheus.Counter]
	operationErr   sync.Map // error_type → prometheus.Observer, per operation (opErrKey)
	failover, cost lazy[prometheus.Counter]
	operationOK    [numOps]lazy[prometheus.Observer]
	serverOK       [numOps]lazy[prometheus.Observer]
	ttft           [numOps]lazy[prometheus.Observer]
	tokenUsage     [numOps][numTokenTypes]lazy[prometheus.Observer]
}

func newModelSeries(e *Exporter, k pair) *modelSeries { return &modelSeries{e: e, pair: k} }

func (s *modelSeries) attempt(a gateway.AttemptError) prometheus.Counter {
	for i, r := range results {
		if r == a {
			return s.attempts[i].get(func() prometheus.Counter {
				return s.e.attempts.WithLabelValues(s.provider, s.model, resultLabel(a))
			})
		}
	}
	return s.e.attempts.WithLabelValues(s.provider, s.model, resultLabel(a))
}

func (s *modelSeries) skip(reason gateway.AttemptError) prometheus.Counter {
	for i, r := range reasons {
		if r == reason {
			return s.skips[i].get(func() prometheus.Counter {
				return s.e.skipped.WithLabelValues(s.provider, s.model, string(reason))
			})
		}
	}
	return s.e.skipped.WithLabelValues(s.provider, s.model, string(reason))
}

func (s *modelSeries) failovers() prometheus.Counter {
	return s.failover.get(func() prometheus.Counter { return s.e.failovers.WithLabelValues(s.provider, s.model) })
}

func (s *modelSeries) costs() prometheus.Counter {
	return s.cost.get(func() prometheus.Counter { return s.e.cost.WithLabelValues(s.provider, s.model) })
}

// operation returns the upstream duration child of attempt a.
func (s *modelSeries) operation(op int, a *gateway.Attempt) prometheus.Observer {
	if a.Error == gateway.AttemptOK {
		return s.operationOK[op].get(func() prometheus.Observer {
			return s.e.operation.WithLabelValues(opNames[op], s.provider, s.model, "")
		})
	}
	// A bounded set: the statuses 100 to 599 and the error classes.
	k := opErrKey{op: op, class: a.Error}
	if a.Error == gateway.AttemptStatus && a.Status >= 100 && a.Status <= 599 {
		k.status = a.Status
	}
	if o, ok := s.operationErr.Load(k); ok {
		return o.(prometheus.Observer)
	}
	et := string(a.Error)
	if k.status != 0 {
		et = strconv.Itoa(k.status)
	}
	o, _ := s.operationErr.LoadOrStore(k, s.e.operation.WithLabelValues(opNames[op], s.provider, s.model, et))
	return o.(prometheus.Observer)
}

// opErrKey identifies the error_type of a failed attempt: the upstream
// status for an HTTP error, else the attempt's error class.
type opErrKey struct {
	op     int
	status int
	class  gateway.AttemptError
}

func (s *modelSeries) serverDuration(op int, err *gateway.Error) prometheus.Observer {
	if err == nil {
		return s.serverOK[op].get(func() prometheus.Observer {
			return s.e.serverDuration.WithLabelValues(opNames[op], s.provider, s.model, "")
		})
	}
	return s.e.serverDuration.WithLabelValues(opNames[op], s.provider, s.model, err.Code())
}

func (s *modelSeries) timeToFirstToken(op int) prometheus.Observer {
	return s.ttft[op].get(func() prometheus.Observer {
		return s.e.timeToFirstToken.WithLabelValues(opNames[op], s.provider, s.model)
	})
}

func (s *modelSeries) tokens(op, typ int) prometheus.Observer {
	return s.tokenUsage[op][typ].get(func() prometheus.Observer {
		return s.e.tokenUsage.WithLabelValues(opNames[op], s.provider, s.model, tokenTypes[typ])
	})
}

// codeChildren caches the children of llmgate_requests_total by status
// and error kind: a bounded set (HTTP statuses times the closed Kind
// set), copied on write.
type codeChildren struct {
	mu sync.Mutex // serialises writers
	m  atomic.Pointer[map[uint32]prometheus.Counter]
}

func (c *codeChildren) get(e *Exporter, status int, err *gateway.Error) prometheus.Counter {
	k := uint32(status&0xffff) << 8
	if err != nil {
		k |= uint32(err.Kind) + 1
	}
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old == nil {
		old = new(map[uint32]prometheus.Counter)
	}
	if v, ok := (*old)[k]; ok {
		return v
	}
	code := ""
	if err != nil {
		code = err.Code()
	}
	v := e.requests.WithLabelValues(strconv.Itoa(status), code)
	m := make(map[uint32]prometheus.Counter, len(*old)+1)
	for k, v := range *old {
		m[k] = v
	}
	m[k] = v
	c.m.Store(&m)
	return v
}

package metrics

import (
	"sync/atomic"
	"time"
)

// Series is the live record of one (provider, model) or (provider, key ID)
// pair, obtained from [Recorder.Model] or [Recorder.Key]. Every method is
// safe for concurrent use; recording (Begin, End, Observe) takes no lock and
// does not allocate once the series has storage.
//
// A nil *Series records nothing and reads as zero, so a gateway without a
// recorder needs no branch at every call site. The zero Series is not
// usable.
type Series struct {
	r              *Recorder
	kind           Kind
	provider, name string

	inFlight atomic.Int64
	// ring is nil until the first recording, and again once the series
	// stayed idle for two windows (see compute).
	ring       atomic.Pointer[ring]
	stats      atomic.Pointer[Stats]
	refreshing atomic.Bool
}

// Outcome describes how one upstream attempt ended. The zero Outcome is a
// connection failure: no status, no timeout.
type Outcome struct {
	// Status is the HTTP status of the upstream answer; 0 when none came
	// back. Any status outside 2xx counts as an error, including 1xx and
	// 3xx (the gateway does not follow upstream redirects, so a redirect
	// is a failed attempt).
	Status int
	// Timeout reports that no (complete) answer came in time. A timeout
	// is an error even with a 2xx Status (a stream that stalled after its
	// header).
	Timeout bool
	// TTFT is the time to the first content event of a successful stream;
	// 0 otherwise. Only attempts with a positive TTFT enter the TTFT
	// figures.
	TTFT time.Duration
}

// Attempt is one running upstream attempt, returned by [Series.Begin]. It is
// a small value: keep it in a variable and call End on that variable exactly
// once. End clears the variable, so a second End on it (say a deferred End
// after an explicit one) does nothing; a copy of an Attempt is a separate
// token, and ending both counts the attempt twice. The zero Attempt ends as
// a no-op.
type Attempt struct {
	s     *Series
	start time.Time
}

// Begin starts an attempt: the series' in-flight gauge goes up by one until
// the returned Attempt ends. It reads the recorder's clock once.
func (s *Series) Begin() Attempt {
	if s == nil {
		return Attempt{}
	}
	s.inFlight.Add(1)
	return Attempt{s: s, start: s.r.now()}
}

// End finishes the attempt: the in-flight gauge goes down by one and the
// attempt is recorded with outcome o and the duration since Begin (by the
// recorder's clock; a negative duration counts as 0). End on an Attempt that
// already ended, or on the zero Attempt, does nothing.
func (a *Attempt) End(o Outcome) {
	s := a.s
	if s == nil {
		return
	}
	a.s = nil
	now := s.r.now()
	s.inFlight.Add(-1)
	s.record(now, now.Sub(a.start), o)
}

// Abandon finishes the attempt without recording it: the in-flight gauge
// goes down by one and nothing else changes. For an attempt whose end
// says nothing about the upstream, such as one the client canceled.
// Abandon on an Attempt that already ended, or on the zero Attempt, does
// nothing.
func (a *Attempt) Abandon() {
	if s := a.s; s != nil {
		a.s = nil
		s.inFlight.Add(-1)
	}
}

// Observe records one completed attempt that took d, ending now by the
// recorder's clock, without touching the in-flight gauge: for replays,
// tests, and callers that time attempts themselves. A negative d counts as
// 0.
func (s *Series) Observe(d time.Duration, o Outcome) {
	if s == nil {
		return
	}
	s.record(s.r.now(), d, o)
}

// record adds one attempt ending at now.
func (s *Series) record(now time.Time, d time.Duration, o Outcome) {
	rg := s.ring.Load()
	if rg == nil {
		rg = s.allocate()
	}
	d = max(d, 0)
	o.TTFT = max(o.TTFT, 0)
	g := &s.r.geo
	rg.add(g, floorDiv(now.UnixNano(), g.width), d, o)
}

// allocate gives the series its storage (again, after an idle release).
func (s *Series) allocate() *ring {
	rg := newRing(&s.r.geo)
	for {
		if s.ring.CompareAndSwap(nil, rg) {
			return rg
		}
		if cur := s.ring.Load(); cur != nil {
			return cur
		}
	}
}

// InFlight returns the live number of attempts begun and not yet ended
// (never negative).
func (s *Series) InFlight() int64 {
	if s == nil {
		return 0
	}
	return max(s.inFlight.Load(), 0)
}

// Labels returns the series' provider and model name (or key ID), ASCII
// lower-cased; "" and "_other" for an overflow series.
func (s *Series) Labels() (provider, name string) {
	if s == nil {
		return "", ""
	}
	return s.provider, s.name
}

// Kind returns whether the series belongs to a model or a key.
func (s *Series) Kind() Kind {
	if s == nil {
		return KindModel
	}
	return s.kind
}

// Stats returns the series' figures over the window ending now. The result
// is cached: the same pointer comes back until it is older than the
// recorder's Refresh, so a caller may cache values derived from it keyed by
// the pointer. Only one goroutine recomputes an expired result; the others
// keep getting the previous one meanwhile. Stats.InFlight may therefore be
// up to Refresh old; [Series.InFlight] reads the live gauge. The *Stats is
// shared and must not be modified. A nil series returns a new zero Stats.
func (s *Series) Stats() *Stats {
	if s == nil {
		return &Stats{}
	}
	now := s.r.now()
	p := s.stats.Load()
	if p != nil {
		if age := now.Sub(p.End); age >= 0 && age < s.r.refresh {
			return p
		}
	}
	if !s.refreshing.CompareAndSwap(false, true) {
		if p != nil {
			return p
		}
		return s.compute(now) // first ever read racing another: not cached
	}
	st := s.compute(now)
	s.stats.Store(st)
	s.refreshing.Store(false)
	return st
}

// compute sums the buckets of the window ending at now. It releases the
// storage of a series that recorded nothing for two windows; an attempt
// recorded at that very moment may be lost.
func (s *Series) compute(now time.Time) *Stats {
	g := &s.r.geo
	cur := floorDiv(now.UnixNano(), g.width)
	lo := cur - g.buckets + 1
	st := &Stats{
		Start:    time.Unix(0, lo*g.width),
		End:      now,
		InFlight: s.InFlight(),
	}
	rg := s.ring.Load()
	if rg == nil {
		return st
	}
	var t totals
	if rg.sum(g, lo, cur, cur-2*g.buckets+1, &t) {
		s.ring.CompareAndSwap(rg, nil)
	}
	if t.requests == 0 {
		return st
	}
	st.Requests = t.requests
	n := float64(t.requests)
	rate := func(c uint64) float64 { return min(float64(c)/n, 1) }
	st.ErrorRate = ErrorRate{
		Total:     rate(t.errors),
		Timeout:   rate(t.timeouts),
		RateLimit: rate(t.rateLimited),
		Client:    rate(t.client),
		Server:    rate(t.server),
	}
	st.Latency.UpstreamAvg = time.Duration(t.upstreamSum / t.requests)
	st.Latency.UpstreamP95 = quantile(&t.upstream, 0.95)
	if t.ttfts > 0 {
		st.Latency.TTFTAvg = time.Duration(t.ttftSum / t.ttfts)
		st.Latency.TTFTP95 = quantile(&t.ttft, 0.95)
	}
	return st
}

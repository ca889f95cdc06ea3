package metrics

import (
	"math"
	"sync/atomic"
	"time"
)

// Shape of the latency histograms: numBins half-octave bins. Bin 0 holds
// durations under 1 ms; bin i in [1, numBins-2] holds [2^((i-1)/2),
// 2^(i/2)) ms; the last bin holds everything from 2^20 ms (about 17.5
// minutes) up.
const (
	numBins = 42
	// histSlots is the number of histogram slots a window is grouped into
	// (the ring holds one more): histograms are the bulk of a series'
	// memory, so they are kept at a coarser time granularity than the
	// counters.
	histSlots = 6
)

// Sentinel epochs. A real epoch is floor(UnixNano / bucket width), far above
// both for any clock after 1678.
const (
	epochEmpty int64 = math.MinInt64     // the slot never held an epoch
	epochBusy  int64 = math.MinInt64 + 1 // a recorder is resetting the slot
)

// bucket holds the counters of one time bucket. Every field is atomic.
// Recorders increment requests before the class counters and readers load
// the class counters before requests, so a reader never sees more errors
// than requests. 56 bytes.
type bucket struct {
	epoch       atomic.Int64
	upstreamSum atomic.Uint64 // nanoseconds
	ttftSum     atomic.Uint64 // nanoseconds
	requests    atomic.Uint32
	errors      atomic.Uint32
	timeouts    atomic.Uint32
	rateLimited atomic.Uint32
	client      atomic.Uint32
	server      atomic.Uint32
	ttfts       atomic.Uint32 // attempts with a TTFT
}

// clear zeroes the counters, not the epoch.
func (b *bucket) clear() {
	b.upstreamSum.Store(0)
	b.ttftSum.Store(0)
	b.requests.Store(0)
	b.errors.Store(0)
	b.timeouts.Store(0)
	b.rateLimited.Store(0)
	b.client.Store(0)
	b.server.Store(0)
	b.ttfts.Store(0)
}

// histSlot holds the latency histograms of one histogram slot (a run of
// geometry.perHist buckets). 344 bytes.
type histSlot struct {
	epoch    atomic.Int64
	upstream [numBins]atomic.Uint32
	ttft     [numBins]atomic.Uint32
}

// clear zeroes the histograms, not the epoch.
func (h *histSlot) clear() {
	for i := range h.upstream {
		h.upstream[i].Store(0)
		h.ttft[i].Store(0)
	}
}

// ring is the storage of one series: a ring of counter buckets and a ring of
// histogram slots, each slot tagged with its epoch. A slot whose epoch lies
// outside the window is ignored by readers and reset by the next recorder
// that needs it.
type ring struct {
	buckets []bucket
	hists   []histSlot
}

func newRing(g *geometry) *ring {
	rg := &ring{
		buckets: make([]bucket, g.buckets),
		hists:   make([]histSlot, g.hists),
	}
	for i := range rg.buckets {
		rg.buckets[i].epoch.Store(epochEmpty)
	}
	for i := range rg.hists {
		rg.hists[i].epoch.Store(epochEmpty)
	}
	return rg
}

// enter makes the slot whose epoch is ep ready to count epoch e. It reports
// ok when the caller may increment the slot, and fresh when the caller won
// the slot from another epoch: it must then clear the counters and store e
// in ep. A slot being reset by another recorder is not waited for: ok is
// false and the sample is dropped for this slot (the reset takes a few
// dozen atomic stores, once per slot per rollover).
func enter(ep *atomic.Int64, e int64) (ok, fresh bool) {
	for range 4 {
		switch cur := ep.Load(); cur {
		case e:
			return true, false
		case epochBusy:
			return false, false
		default:
			// Another epoch: older in normal operation, newer only after
			// the clock stepped back by more than the window. Either way
			// the slot now belongs to e.
			if ep.CompareAndSwap(cur, epochBusy) {
				return true, true
			}
		}
	}
	return false, false
}

// class is a bit set of the failure classes of an [Outcome].
type class uint8

const (
	classError class = 1 << iota
	classTimeout
	classRateLimit
	classClient
	classServer
)

// classify maps an outcome to its classes; 0 for a success.
func classify(o Outcome) class {
	if o.Status >= 200 && o.Status < 300 && !o.Timeout {
		return 0
	}
	c := classError
	if o.Timeout {
		c |= classTimeout
	}
	switch {
	case o.Status == 429:
		c |= classRateLimit
	case o.Status >= 400 && o.Status < 500:
		c |= classClient
	case o.Status >= 500 && o.Status < 600:
		c |= classServer
	}
	return c
}

// add counts one attempt ending at bucket epoch e.
func (rg *ring) add(g *geometry, e int64, d time.Duration, o Outcome) {
	rg.buckets[mod(e, g.buckets)].add(e, d, o)
	he := floorDiv(e, g.perHist)
	rg.hists[mod(he, g.hists)].add(he, d, o)
}

// add counts one attempt in the bucket for epoch e.
func (b *bucket) add(e int64, d time.Duration, o Outcome) {
	ok, fresh := enter(&b.epoch, e)
	if fresh {
		b.clear()
		b.epoch.Store(e)
	}
	if !ok {
		return
	}
	b.requests.Add(1)
	if c := classify(o); c != 0 {
		b.errors.Add(1)
		if c&classTimeout != 0 {
			b.timeouts.Add(1)
		}
		switch {
		case c&classRateLimit != 0:
			b.rateLimited.Add(1)
		case c&classClient != 0:
			b.client.Add(1)
		case c&classServer != 0:
			b.server.Add(1)
		}
	}
	b.upstreamSum.Add(uint64(d))
	if o.TTFT > 0 {
		b.ttfts.Add(1)
		b.ttftSum.Add(uint64(o.TTFT))
	}
}

// add counts one attempt in the histograms for histogram epoch he.
func (h *histSlot) add(he int64, d time.Duration, o Outcome) {
	ok, fresh := enter(&h.epoch, he)
	if fresh {
		h.clear()
		h.epoch.Store(he)
	}
	if !ok {
		return
	}
	h.upstream[binOf(d)].Add(1)
	if o.TTFT > 0 {
		h.ttft[binOf(o.TTFT)].Add(1)
	}
}

// totals is the sum of the buckets of a window.
type totals struct {
	requests, errors, timeouts, rateLimited, client, server, ttfts uint64
	upstreamSum, ttftSum                                           uint64
	upstream, ttft                                                 [numBins]uint64
}

// sum adds the slots of rg inside the window of bucket epochs [lo, cur] to
// t. It reports idle when no slot was used since bucket epoch idleBefore,
// and none is being reset.
func (rg *ring) sum(g *geometry, lo, cur, idleBefore int64, t *totals) (idle bool) {
	idle = true
	for i := range rg.buckets {
		b := &rg.buckets[i]
		e := b.epoch.Load()
		if e == epochBusy || e >= idleBefore {
			idle = false
		}
		if e < lo || e > cur {
			continue
		}
		errs, tos, rl := b.errors.Load(), b.timeouts.Load(), b.rateLimited.Load()
		cl, sv, tn := b.client.Load(), b.server.Load(), b.ttfts.Load()
		us, ts := b.upstreamSum.Load(), b.ttftSum.Load()
		n := b.requests.Load()
		if b.epoch.Load() != e {
			continue // reset while we read
		}
		t.requests += uint64(n)
		t.errors += uint64(errs)
		t.timeouts += uint64(tos)
		t.rateLimited += uint64(rl)
		t.client += uint64(cl)
		t.server += uint64(sv)
		t.ttfts += uint64(tn)
		t.upstreamSum += us
		t.ttftSum += ts
	}
	hlo, hcur := floorDiv(lo, g.perHist), floorDiv(cur, g.perHist)
	for i := range rg.hists {
		h := &rg.hists[i]
		e := h.epoch.Load()
		if e < hlo || e > hcur {
			continue
		}
		var up, tt [numBins]uint32
		for j := range up {
			up[j] = h.upstream[j].Load()
			tt[j] = h.ttft[j].Load()
		}
		if h.epoch.Load() != e {
			continue
		}
		for j := range up {
			t.upstream[j] += uint64(up[j])
			t.ttft[j] += uint64(tt[j])
		}
	}
	return idle
}

// binOf returns the histogram bin of d.
func binOf(d time.Duration) int {
	if d < time.Millisecond {
		return 0
	}
	// d = frac × 2^exp ms with frac in [0.5, 1): the octave [2^(exp-1),
	// 2^exp) ms is bins 2exp-1 and 2exp, split at 2^(exp-1/2).
	frac, exp := math.Frexp(float64(d) / float64(time.Millisecond))
	i := 2*exp - 1
	if frac >= math.Sqrt2/2 {
		i++
	}
	return min(i, numBins-1)
}

// binValue is the duration reported for a quantile falling in bin i: the
// geometric middle of the bin, within a factor 2^(1/4) (18.9%) of any
// duration in it; 500 µs for the first bin and the lower bound for the last.
func binValue(i int) time.Duration {
	switch i {
	case 0:
		return time.Millisecond / 2
	case numBins - 1:
		return time.Duration(math.Exp2(float64(numBins-2)/2) * float64(time.Millisecond))
	}
	return time.Duration(math.Exp2(float64(2*i-1)/4) * float64(time.Millisecond))
}

// quantile returns the nearest-rank q-quantile of histogram h, or 0 when it
// is empty.
func quantile(h *[numBins]uint64, q float64) time.Duration {
	var n uint64
	for _, c := range h {
		n += c
	}
	if n == 0 {
		return 0
	}
	rank := max(uint64(math.Ceil(q*float64(n))), 1)
	var cum uint64
	for i, c := range h {
		cum += c
		if cum >= rank {
			return binValue(i)
		}
	}
	return binValue(numBins - 1)
}

// floorDiv divides rounding toward negative infinity, so that epochs stay
// monotonic for clocks before 1970.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// mod returns a modulo n in [0, n).
func mod(a, n int64) int64 {
	m := a % n
	if m < 0 {
		m += n
	}
	return m
}

package metrics_test

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/metrics"
)

// p95Error is the documented bound on the ratio between a reported
// percentile and the true one.
var p95Error = math.Pow(2, 0.25)

func requireWithin(t *testing.T, want, got time.Duration) {
	t.Helper()
	ratio := float64(got) / float64(want)
	require.Truef(t, ratio <= p95Error && ratio >= 1/p95Error, "got %v, want %v within 19%%", got, want)
}

func TestZeroStats(t *testing.T) {
	r, clk := newRecorder(t, metrics.Options{})
	clk.Add(25 * time.Second)
	st := r.Model("p", "m").Stats()
	require.Equal(t, metrics.Stats{
		// The window covers the current bucket (from 20 s) and the 29
		// before it.
		Start: epoch0.Add(20*time.Second - 29*10*time.Second),
		End:   epoch0.Add(25 * time.Second),
	}, normalize(*st))
}

// normalize strips the location from Start and End so that they compare
// with ==.
func normalize(st metrics.Stats) metrics.Stats {
	st.Start, st.End = st.Start.UTC(), st.End.UTC()
	return st
}

func TestErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		name     string
		outcomes []metrics.Outcome
		want     metrics.ErrorRate
	}{
		{
			name:     "all successes",
			outcomes: []metrics.Outcome{{Status: 200}, {Status: 201}},
		},
		{
			name:     "rate limits",
			outcomes: []metrics.Outcome{{Status: 200}, {Status: 429}, {Status: 200}, {Status: 429}},
			want:     metrics.ErrorRate{Total: 0.5, RateLimit: 0.5},
		},
		{
			name:     "client errors",
			outcomes: []metrics.Outcome{{Status: 400}, {Status: 401}, {Status: 404}, {Status: 200}},
			want:     metrics.ErrorRate{Total: 0.75, Client: 0.75},
		},
		{
			name:     "server errors",
			outcomes: []metrics.Outcome{{Status: 500}, {Status: 200}, {Status: 200}, {Status: 200}, {Status: 529}},
			want:     metrics.ErrorRate{Total: 0.4, Server: 0.4},
		},
		{
			name:     "timeouts",
			outcomes: []metrics.Outcome{{Timeout: true}, {Status: 200, Timeout: true}, {Status: 504, Timeout: true}, {Status: 200}},
			want:     metrics.ErrorRate{Total: 0.75, Timeout: 0.75, Server: 0.25},
		},
		{
			name:     "connection failures and redirects count only in Total",
			outcomes: []metrics.Outcome{{}, {Status: 302}, {Status: 101}, {Status: 200}},
			want:     metrics.ErrorRate{Total: 0.75},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := newRecorder(t, metrics.Options{})
			s := r.Key("p", "k")
			for _, o := range tc.outcomes {
				s.Observe(time.Second, o)
			}
			st := s.Stats()
			require.EqualValues(t, len(tc.outcomes), st.Requests)
			require.InDelta(t, tc.want.Total, st.ErrorRate.Total, 1e-12)
			require.InDelta(t, tc.want.Timeout, st.ErrorRate.Timeout, 1e-12)
			require.InDelta(t, tc.want.RateLimit, st.ErrorRate.RateLimit, 1e-12)
			require.InDelta(t, tc.want.Client, st.ErrorRate.Client, 1e-12)
			require.InDelta(t, tc.want.Server, st.ErrorRate.Server, 1e-12)
		})
	}
}

// TestLatency: averages are exact and the p95 figures within the documented
// error, over a known distribution spread across the window.
func TestLatency(t *testing.T) {
	r, clk := newRecorder(t, metrics.Options{})
	s := r.Model("p", "m")
	var ttftSum time.Duration
	var ttftN int
	for i := 1; i <= 1000; i++ {
		o := metrics.Outcome{Status: 200}
		if i%2 == 0 {
			o.TTFT = time.Duration(i) * 100 * time.Microsecond
			ttftSum += o.TTFT
			ttftN++
		}
		if i%10 == 0 {
			o.Status = 500 // failures count in the latency too
			o.TTFT = 0
			if i%2 == 0 {
				ttftSum -= time.Duration(i) * 100 * time.Microsecond
				ttftN--
			}
		}
		s.Observe(time.Duration(i)*time.Millisecond, o)
		clk.Add(250 * time.Millisecond) // 250 s in all
	}
	st := s.Stats()
	require.EqualValues(t, 1000, st.Requests)
	require.Equal(t, 500500*time.Microsecond, st.Latency.UpstreamAvg)
	requireWithin(t, 950*time.Millisecond, st.Latency.UpstreamP95)
	require.Equal(t, ttftSum/time.Duration(ttftN), st.Latency.TTFTAvg)
	// TTFTs are 0.2 ms steps of the even i not divisible by 10: 400 of
	// them; rank 380 is i = 948 → 94.8 ms.
	requireWithin(t, 94800*time.Microsecond, st.Latency.TTFTP95)
	require.InDelta(t, 0.1, st.ErrorRate.Total, 1e-12)
}

func TestWindowExpiry(t *testing.T) {
	r, clk := newRecorder(t, metrics.Options{})
	s := r.Model("p", "m")
	for range 3 {
		s.Observe(time.Second, metrics.Outcome{Status: 500})
	}
	clk.Set(time.Minute)
	for range 2 {
		s.Observe(100*time.Millisecond, metrics.Outcome{Status: 200})
	}

	clk.Set(5*time.Minute - time.Second)
	st := s.Stats()
	require.EqualValues(t, 5, st.Requests)
	require.InDelta(t, 0.6, st.ErrorRate.Total, 1e-12)

	// The first bucket leaves the window; its histogram slot still
	// overlaps it.
	clk.Set(5 * time.Minute)
	st = s.Stats()
	require.EqualValues(t, 2, st.Requests)
	require.Zero(t, st.ErrorRate.Total)
	require.Equal(t, 100*time.Millisecond, st.Latency.UpstreamAvg)
	requireWithin(t, time.Second, st.Latency.UpstreamP95)
	require.Equal(t, epoch0.Add(10*time.Second), st.Start.UTC())

	// Once the window starts past the first histogram slot (50 s), the
	// percentiles no longer see it.
	clk.Set(5*time.Minute + 50*time.Second)
	st = s.Stats()
	require.EqualValues(t, 2, st.Requests)
	requireWithin(t, 100*time.Millisecond, st.Latency.UpstreamP95)

	clk.Set(6*time.Minute + 10*time.Second)
	st = s.Stats()
	require.Equal(t, metrics.Stats{Start: st.Start, End: st.End}, *st, "everything expired")
}

// TestStaleSlotsReused: a bucket whose slot comes round again is reset, not
// added to, and a clock stepping back past the window takes slots back.
func TestStaleSlotsReused(t *testing.T) {
	r, clk := newRecorder(t, metrics.Options{Refresh: time.Millisecond})
	s := r.Model("p", "m")
	s.Observe(time.Second, metrics.Outcome{Status: 500})
	clk.Set(5 * time.Minute) // the same ring slot, one window later
	s.Observe(time.Second, metrics.Outcome{Status: 200})
	st := s.Stats()
	require.EqualValues(t, 1, st.Requests)
	require.Zero(t, st.ErrorRate.Total)

	clk.Set(time.Hour) // same slot again, far ahead
	s.Observe(time.Second, metrics.Outcome{Status: 429})
	clk.Set(0) // stepped back
	require.Zero(t, s.Stats().Requests, "future buckets are not in the window")
	s.Observe(time.Second, metrics.Outcome{Status: 200})
	clk.Add(time.Millisecond)
	st = s.Stats()
	require.EqualValues(t, 1, st.Requests)
	require.Zero(t, st.ErrorRate.Total)
}

func TestRefreshCaching(t *testing.T) {
	r, clk := newRecorder(t, metrics.Options{Refresh: 2 * time.Second})
	s := r.Model("p", "m")
	first := s.Stats()
	s.Observe(time.Second, metrics.Outcome{Status: 200})
	require.Same(t, first, s.Stats())
	clk.Add(2*time.Second - 1)
	require.Same(t, first, s.Stats())
	require.Zero(t, s.Stats().Requests, "the cached stats predate the attempt")

	clk.Add(1)
	second := s.Stats()
	require.NotSame(t, first, second)
	require.EqualValues(t, 1, second.Requests)
	require.Same(t, second, s.Stats())
	require.Equal(t, clk.Now(), second.End)

	clk.Add(-time.Second) // a clock that went back invalidates the cache
	require.NotSame(t, second, s.Stats())
}

func TestInFlight(t *testing.T) {
	r, clk := newRecorder(t, metrics.Options{})
	s := r.Key("p", "k")
	a1, a2, a3 := s.Begin(), s.Begin(), s.Begin()
	require.Equal(t, int64(3), s.InFlight())
	require.Equal(t, int64(3), s.Stats().InFlight)

	clk.Add(500 * time.Millisecond)
	a1.End(metrics.Outcome{Status: 200})
	a1.End(metrics.Outcome{Status: 200}) // a second End on the same variable is a no-op
	require.Equal(t, int64(2), s.InFlight())
	require.Equal(t, int64(3), s.Stats().InFlight, "cached until Refresh passes")

	clk.Add(time.Second)
	st := s.Stats()
	require.Equal(t, int64(2), st.InFlight)
	require.EqualValues(t, 1, st.Requests)
	require.Equal(t, 500*time.Millisecond, st.Latency.UpstreamAvg, "measured from Begin to End")

	a2.End(metrics.Outcome{Timeout: true})
	a3.End(metrics.Outcome{Status: 503})
	require.Zero(t, s.InFlight())

	// Ending a copy as well counts twice; the gauge still never reads
	// negative.
	a4 := s.Begin()
	c := a4
	a4.End(metrics.Outcome{Status: 200})
	c.End(metrics.Outcome{Status: 200})
	require.Zero(t, s.InFlight())
	clk.Add(time.Second)
	require.Zero(t, s.Stats().InFlight)
}

func TestAbandon(t *testing.T) {
	r, clk := newRecorder(t, metrics.Options{})
	s := r.Model("p", "m")
	a := s.Begin()
	require.Equal(t, int64(1), s.InFlight())
	a.Abandon()
	a.End(metrics.Outcome{Status: 500}) // already over: no-op
	a.Abandon()
	require.Zero(t, s.InFlight())
	clk.Add(2 * time.Second)
	require.Zero(t, s.Stats().Requests, "an abandoned attempt is not recorded")
	var zero metrics.Attempt
	zero.Abandon()
}

func TestObserveClampsNegative(t *testing.T) {
	r, clk := newRecorder(t, metrics.Options{})
	s := r.Model("p", "m")
	s.Observe(-time.Second, metrics.Outcome{Status: 200, TTFT: -time.Second})
	clk.Set(5 * time.Second)
	a := s.Begin()
	clk.Set(time.Second) // a clock that went back, within the bucket
	a.End(metrics.Outcome{Status: 200})
	st := s.Stats()
	require.EqualValues(t, 2, st.Requests)
	require.Zero(t, st.Latency.UpstreamAvg)
	require.Equal(t, 500*time.Microsecond, st.Latency.UpstreamP95)
	require.Zero(t, st.Latency.TTFTAvg)
	require.Zero(t, st.Latency.TTFTP95)
}

// TestIdleRelease: a series idle for two windows drops its storage on read
// and starts afresh on the next attempt.
func TestIdleRelease(t *testing.T) {
	r, clk := newRecorder(t, metrics.Options{})
	s := r.Model("p", "m")
	s.Observe(time.Second, metrics.Outcome{Status: 500})
	clk.Set(10*time.Minute + 10*time.Second)
	require.Zero(t, s.Stats().Requests)
	s.Observe(time.Second, metrics.Outcome{Status: 200})
	clk.Add(time.Second)
	st := s.Stats()
	require.EqualValues(t, 1, st.Requests)
	require.Zero(t, st.ErrorRate.Total)
}

// TestConcurrentRecording: with the clock frozen (no bucket rollover), many
// goroutines recording at once lose nothing.
func TestConcurrentRecording(t *testing.T) {
	r, clk := newRecorder(t, metrics.Options{})
	const workers, per = 32, 400
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				s := r.Model("openai", "gpt")
				if w%2 == 0 {
					s = r.Model("OPENAI", "GPT")
				}
				switch i % 4 {
				case 0:
					a := s.Begin()
					a.End(metrics.Outcome{Status: 200, TTFT: 10 * time.Millisecond})
				case 1:
					s.Observe(time.Second, metrics.Outcome{Status: 429})
				case 2:
					s.Observe(time.Second, metrics.Outcome{Status: 502})
				case 3:
					a := s.Begin()
					_ = s.InFlight()
					_ = s.Stats()
					a.End(metrics.Outcome{Timeout: true})
				}
			}
		})
	}
	wg.Wait()
	clk.Add(time.Second)
	s := r.Model("openai", "gpt")
	st := s.Stats()
	require.EqualValues(t, workers*per, st.Requests)
	require.Zero(t, st.InFlight)
	require.InDelta(t, 0.75, st.ErrorRate.Total, 1e-12)
	require.InDelta(t, 0.25, st.ErrorRate.RateLimit, 1e-12)
	require.InDelta(t, 0.25, st.ErrorRate.Server, 1e-12)
	require.InDelta(t, 0.25, st.ErrorRate.Timeout, 1e-12)
	require.Equal(t, 500*time.Millisecond, st.Latency.UpstreamAvg)
	require.Equal(t, 10*time.Millisecond, st.Latency.TTFTAvg)
}

// TestConcurrentRollover: recording while the clock runs through bucket
// rollovers and readers recompute never yields absurd figures (and is
// clean under -race). Some attempts may be lost at rollovers.
func TestConcurrentRollover(t *testing.T) {
	r, clk := newRecorder(t, metrics.Options{Window: time.Second, Buckets: 10, Refresh: time.Millisecond})
	s := r.Key("p", "k")
	var recorders, readers sync.WaitGroup
	stop := make(chan struct{})
	for w := range 8 {
		recorders.Go(func() {
			for i := range 2000 {
				a := s.Begin()
				a.End(metrics.Outcome{Status: []int{200, 429, 500, 0}[(w+i)%4]})
			}
		})
	}
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				clk.Add(3 * time.Millisecond)
				st := s.Stats()
				require.LessOrEqual(t, st.Requests, uint64(8*2000))
				require.GreaterOrEqual(t, st.InFlight, int64(0))
				for _, rate := range []float64{st.ErrorRate.Total, st.ErrorRate.RateLimit, st.ErrorRate.Server} {
					require.True(t, rate >= 0 && rate <= 1, "rate %v", rate)
				}
				require.LessOrEqual(t, st.ErrorRate.RateLimit+st.ErrorRate.Server, st.ErrorRate.Total+1e-9)
			}
		})
	}
	recorders.Wait()
	close(stop)
	readers.Wait()
	require.Zero(t, s.InFlight())
}

func BenchmarkBeginEnd(b *testing.B) {
	r, err := metrics.NewRecorder(metrics.Options{})
	require.NoError(b, err)
	s := r.Model("openai", "gpt-4o")
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			a := s.Begin()
			a.End(metrics.Outcome{Status: 200, TTFT: 300 * time.Millisecond})
		}
	})
	b.Run("parallel one series", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				a := s.Begin()
				a.End(metrics.Outcome{Status: 200, TTFT: 300 * time.Millisecond})
			}
		})
	})
	b.Run("parallel lookup model and key", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m, k := r.Model("openai", "gpt-4o").Begin(), r.Key("openai", "key-1").Begin()
				m.End(metrics.Outcome{Status: 200})
				k.End(metrics.Outcome{Status: 200})
			}
		})
	})
}

func BenchmarkObserve(b *testing.B) {
	r, clk := newRecorder(b, metrics.Options{})
	s := r.Model("openai", "gpt-4o")
	b.ReportAllocs()
	for b.Loop() {
		s.Observe(time.Second, metrics.Outcome{Status: 500})
		clk.Add(time.Millisecond) // a rollover every 10000 iterations
	}
}

func BenchmarkStats(b *testing.B) {
	r, clk := newRecorder(b, metrics.Options{})
	s := r.Model("openai", "gpt-4o")
	for i := range 3000 { // every bucket and histogram slot in use
		s.Observe(time.Duration(i)*time.Millisecond, metrics.Outcome{Status: 200, TTFT: time.Duration(i) * time.Microsecond})
		clk.Add(100 * time.Millisecond)
	}
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = s.Stats()
		}
	})
	b.Run("cached parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = s.Stats()
			}
		})
	})
	b.Run("refresh", func(b *testing.B) {
		b.ReportAllocs()
		var i int
		for b.Loop() {
			// Alternate between two instants a Refresh apart so every
			// call recomputes over the same data.
			if i++; i%2 == 0 {
				clk.Add(time.Second)
			} else {
				clk.Add(-time.Second)
			}
			_ = s.Stats()
		}
	})
}

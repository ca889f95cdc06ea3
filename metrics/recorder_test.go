package metrics_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/metrics"
)

// epoch0 is a start time aligned on 5 minutes, so that tests know where
// buckets begin.
var epoch0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// clock is a fake clock, safe for concurrent use.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(epoch0.UnixNano())
	return c
}

func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }
func (c *clock) Set(d time.Duration) { c.ns.Store(epoch0.Add(d).UnixNano()) }

// newRecorder returns a recorder with the default window on a fake clock.
func newRecorder(t testing.TB, o metrics.Options) (*metrics.Recorder, *clock) {
	t.Helper()
	clk := newClock()
	o.Now = clk.Now
	r, err := metrics.NewRecorder(o)
	require.NoError(t, err)
	return r, clk
}

func TestLabelsFoldASCIICase(t *testing.T) {
	r, _ := newRecorder(t, metrics.Options{})
	s := r.Model("OpenAI", "GPT-4o")
	require.Same(t, s, r.Model("openai", "gpt-4o"))
	require.Same(t, s, r.Model("OPENAI", "gpt-4O"))
	p, n := s.Labels()
	require.Equal(t, "openai", p)
	require.Equal(t, "gpt-4o", n)
	require.Equal(t, metrics.KindModel, s.Kind())

	// Only ASCII folds; the same labels as a key are another series.
	require.NotSame(t, r.Model("p", "É"), r.Model("p", "é"))
	k := r.Key("OpenAI", "GPT-4o")
	require.NotSame(t, s, k)
	require.Equal(t, metrics.KindKey, k.Kind())

	// The provider/name split is not ambiguous.
	require.NotSame(t, r.Model("ab", "c"), r.Model("a", "bc"))

	// Labels longer than the stack buffer still match.
	long := string(make([]byte, 300))
	require.Same(t, r.Key(long, "X"+long), r.Key(long, "x"+long))
}

func TestMaxSeriesOverflow(t *testing.T) {
	r, _ := newRecorder(t, metrics.Options{MaxSeries: 2})
	a, b := r.Model("p", "a"), r.Model("p", "b")
	over := r.Model("p", "c")
	require.NotSame(t, a, over)
	require.NotSame(t, b, over)
	require.Same(t, over, r.Model("q", "d"), "every later label shares the overflow series")
	require.Same(t, a, r.Model("P", "A"), "existing series are still found")
	p, n := over.Labels()
	require.Equal(t, "", p)
	require.Equal(t, "_other", n)

	// Keys have their own bound and overflow series.
	k1, k2, k3 := r.Key("p", "k1"), r.Key("p", "k2"), r.Key("p", "k3")
	require.NotSame(t, k1, k2)
	require.NotSame(t, over, k3)
	require.Equal(t, metrics.KindKey, k3.Kind())
	require.Same(t, k3, r.Key("p", "k4"))

	over.Observe(time.Second, metrics.Outcome{Status: 200})
	r.Model("x", "y").Observe(time.Second, metrics.Outcome{Status: 500})
	st := over.Stats()
	require.EqualValues(t, 2, st.Requests)
	require.InDelta(t, 0.5, st.ErrorRate.Server, 1e-9)
}

func TestEach(t *testing.T) {
	r, _ := newRecorder(t, metrics.Options{MaxSeries: 2})
	r.Model("openai", "gpt-4o").Observe(time.Second, metrics.Outcome{Status: 200})
	r.Key("openai", "k1").Observe(time.Second, metrics.Outcome{Status: 429})
	r.Model("anthropic", "claude")
	r.Model("x", "overflowed").Observe(time.Second, metrics.Outcome{Status: 200})
	r.Model("y", "overflowed too")

	var got []string
	r.Each(func(kind metrics.Kind, provider, name string, st *metrics.Stats) bool {
		got = append(got, fmt.Sprintf("%v %s/%s requests=%d rate_limit=%.1f", kind, provider, name, st.Requests, st.ErrorRate.RateLimit))
		return true
	})
	require.Equal(t, []string{
		"model openai/gpt-4o requests=1 rate_limit=0.0",
		"key openai/k1 requests=1 rate_limit=1.0",
		"model anthropic/claude requests=0 rate_limit=0.0",
		"model /_other requests=1 rate_limit=0.0",
	}, got)

	var n int
	r.Each(func(metrics.Kind, string, string, *metrics.Stats) bool {
		n++
		return n < 2
	})
	require.Equal(t, 2, n, "Each stops when fn returns false")
}

func TestNilRecorderAndSeries(t *testing.T) {
	var r *metrics.Recorder
	s := r.Model("p", "m")
	require.Nil(t, s)
	require.Nil(t, r.Key("p", "k"))
	r.Each(func(metrics.Kind, string, string, *metrics.Stats) bool {
		t.Fatal("a nil recorder has no series")
		return false
	})
	a := s.Begin()
	require.Equal(t, int64(0), s.InFlight())
	a.End(metrics.Outcome{Status: 200})
	s.Observe(time.Second, metrics.Outcome{})
	require.Equal(t, metrics.Stats{}, *s.Stats())
	p, n := s.Labels()
	require.Empty(t, p)
	require.Empty(t, n)
	var zero metrics.Attempt
	zero.End(metrics.Outcome{}) // no-op
}

func TestKindString(t *testing.T) {
	require.Equal(t, "model", metrics.KindModel.String())
	require.Equal(t, "key", metrics.KindKey.String())
	require.Equal(t, "Kind(7)", metrics.Kind(7).String())
}

// TestConcurrentCreation: racing lookups of the same new labels agree on
// one series each, and the bound holds.
func TestConcurrentCreation(t *testing.T) {
	r, _ := newRecorder(t, metrics.Options{MaxSeries: 50})
	const workers = 16
	got := make([][]*metrics.Series, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range 100 {
				got[w] = append(got[w], r.Model("p", fmt.Sprintf("M%d", i)))
			}
		})
	}
	wg.Wait()
	for w := 1; w < workers; w++ {
		for i := range got[0] {
			require.Same(t, got[0][i], got[w][i])
		}
	}
	distinct := map[*metrics.Series]bool{}
	for _, s := range got[0] {
		distinct[s] = true
	}
	require.Len(t, distinct, 51, "50 series and the overflow series")
}

func BenchmarkModelLookup(b *testing.B) {
	r, _ := newRecorder(b, metrics.Options{})
	for i := range 200 {
		r.Model("openai", fmt.Sprintf("model-%d", i))
	}
	r.Model("openai", "gpt-4o-mini")
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = r.Model("openai", "gpt-4o-mini")
		}
	})
	b.Run("hit mixed case", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = r.Model("OpenAI", "GPT-4o-mini")
		}
	})
	b.Run("hit parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = r.Model("openai", "gpt-4o-mini")
			}
		})
	})
}

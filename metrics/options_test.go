package metrics_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/metrics"
)

func TestNewRecorderOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts metrics.Options
		errs []string // substrings, one per problem; none for a valid Options
	}{
		{name: "zero selects defaults", opts: metrics.Options{}},
		{name: "custom", opts: metrics.Options{Window: time.Minute, Buckets: 60, Refresh: 10 * time.Millisecond, MaxSeries: 10}},
		{name: "smallest", opts: metrics.Options{Window: 2 * time.Millisecond, Buckets: 2}},
		{name: "largest buckets", opts: metrics.Options{Window: 10 * time.Minute, Buckets: 600}},
		{name: "refresh equal to window", opts: metrics.Options{Window: time.Second, Buckets: 10, Refresh: time.Second}},
		{name: "negative window", opts: metrics.Options{Window: -time.Second}, errs: []string{"negative Window -1s"}},
		{name: "one bucket", opts: metrics.Options{Buckets: 1}, errs: []string{"Buckets 1 outside [2, 600]"}},
		{name: "negative buckets", opts: metrics.Options{Buckets: -3}, errs: []string{"Buckets -3 outside [2, 600]"}},
		{name: "too many buckets", opts: metrics.Options{Buckets: 601}, errs: []string{"Buckets 601 outside [2, 600]"}},
		{name: "window not divisible", opts: metrics.Options{Window: time.Minute, Buckets: 7}, errs: []string{"Window 1m0s is not a whole multiple of 7 Buckets"}},
		{name: "buckets under a millisecond", opts: metrics.Options{Window: 10 * time.Millisecond, Buckets: 20}, errs: []string{"buckets of 500µs, under 1ms"}},
		{name: "negative refresh", opts: metrics.Options{Refresh: -1}, errs: []string{"negative Refresh -1ns"}},
		{name: "refresh beyond window", opts: metrics.Options{Window: time.Minute, Refresh: 2 * time.Minute}, errs: []string{"Refresh 2m0s longer than Window 1m0s"}},
		{name: "negative max series", opts: metrics.Options{MaxSeries: -1}, errs: []string{"negative MaxSeries -1"}},
		{name: "huge max series", opts: metrics.Options{MaxSeries: 1<<20 + 1}, errs: []string{"MaxSeries 1048577 above 1048576"}},
		{
			name: "every problem at once",
			opts: metrics.Options{Window: -1, Buckets: 1, Refresh: -1, MaxSeries: -1},
			errs: []string{"negative Window", "Buckets 1", "negative Refresh", "negative MaxSeries"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := metrics.NewRecorder(tc.opts)
			if len(tc.errs) == 0 {
				require.NoError(t, err)
				require.NotNil(t, r)
				return
			}
			require.Nil(t, r)
			require.ErrorIs(t, err, metrics.ErrInvalidOptions)
			joined, ok := err.(interface{ Unwrap() []error })
			require.True(t, ok)
			require.Len(t, joined.Unwrap(), len(tc.errs))
			for i, want := range tc.errs {
				require.ErrorContains(t, joined.Unwrap()[i], want)
				require.True(t, errors.Is(joined.Unwrap()[i], metrics.ErrInvalidOptions))
			}
		})
	}
}

// TestDefaultRefreshFollowsShortBuckets: the 1 s default refresh is cut to
// the bucket width when buckets are shorter, rather than rejected.
func TestDefaultRefreshFollowsShortBuckets(t *testing.T) {
	clk := newClock()
	r, err := metrics.NewRecorder(metrics.Options{Window: 100 * time.Millisecond, Buckets: 10, Now: clk.Now})
	require.NoError(t, err)
	s := r.Model("p", "m")
	first := s.Stats()
	clk.Add(9 * time.Millisecond)
	require.Same(t, first, s.Stats())
	clk.Add(time.Millisecond)
	require.NotSame(t, first, s.Stats())
}

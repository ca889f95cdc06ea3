package metrics

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBinOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    time.Duration
		bin  int
	}{
		{"negative", -time.Second, 0},
		{"zero", 0, 0},
		{"under a millisecond", 999 * time.Microsecond, 0},
		{"one millisecond", time.Millisecond, 1},
		{"just under sqrt2 ms", 1414 * time.Microsecond, 1},
		{"just over sqrt2 ms", 1415 * time.Microsecond, 2},
		{"two milliseconds", 2 * time.Millisecond, 3},
		{"one second", time.Second, 20},
		{"1024 ms", 1024 * time.Millisecond, 21},
		{"just under the last bin", (1<<20 - 1) * time.Millisecond, numBins - 2},
		{"last bin", (1 << 20) * time.Millisecond, numBins - 1},
		{"an hour", time.Hour, numBins - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.bin, binOf(tc.d))
		})
	}
}

// TestBinValueError: every duration between 1 ms and the last bin reads back
// within the documented factor 2^(1/4).
func TestBinValueError(t *testing.T) {
	limit := math.Pow(2, 0.25) + 1e-9
	for d := time.Millisecond; d < (1<<20)*time.Millisecond; d = d*101/100 + 1 {
		got := binValue(binOf(d))
		ratio := float64(got) / float64(d)
		require.Truef(t, ratio <= limit && ratio >= 1/limit, "d=%v read %v", d, got)
	}
	require.Equal(t, 500*time.Microsecond, binValue(0))
	require.Equal(t, (1<<20)*time.Millisecond, binValue(numBins-1))
}

func TestQuantile(t *testing.T) {
	var h [numBins]uint64
	require.Zero(t, quantile(&h, 0.95))
	h[3] = 1
	require.Equal(t, binValue(3), quantile(&h, 0.95), "a single sample")
	h[3], h[10] = 95, 5
	require.Equal(t, binValue(3), quantile(&h, 0.95), "rank 95 of 100 falls in the first bin")
	h[3] = 94
	require.Equal(t, binValue(10), quantile(&h, 0.95), "rank 95 of 99 falls in the second")
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Outcome
		c    class
	}{
		{"200", Outcome{Status: 200}, 0},
		{"204", Outcome{Status: 204}, 0},
		{"connection failure", Outcome{}, classError},
		{"timeout without answer", Outcome{Timeout: true}, classError | classTimeout},
		{"stream stalled after 200", Outcome{Status: 200, Timeout: true}, classError | classTimeout},
		{"100", Outcome{Status: 100}, classError},
		{"redirect", Outcome{Status: 302}, classError},
		{"400", Outcome{Status: 400}, classError | classClient},
		{"401", Outcome{Status: 401}, classError | classClient},
		{"429", Outcome{Status: 429}, classError | classRateLimit},
		{"499", Outcome{Status: 499}, classError | classClient},
		{"500", Outcome{Status: 500}, classError | classServer},
		{"504 with timeout", Outcome{Status: 504, Timeout: true}, classError | classServer | classTimeout},
		{"600", Outcome{Status: 600}, classError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.c, classify(tc.o))
		})
	}
}

func TestFloorDivMod(t *testing.T) {
	for _, tc := range []struct {
		a, b, q, m int64
	}{
		{7, 3, 2, 1},
		{6, 3, 2, 0},
		{-1, 3, -1, 2},
		{-3, 3, -1, 0},
		{-4, 3, -2, 2},
		{0, 3, 0, 0},
	} {
		t.Run("", func(t *testing.T) {
			require.Equal(t, tc.q, floorDiv(tc.a, tc.b))
			require.Equal(t, tc.m, mod(tc.a, tc.b))
		})
	}
}

func TestGeometry(t *testing.T) {
	for _, tc := range []struct {
		name    string
		window  time.Duration
		buckets int
		want    geometry
	}{
		{"default", 5 * time.Minute, 30, geometry{width: int64(10 * time.Second), buckets: 30, perHist: 5, hists: 7}},
		{"few buckets", time.Minute, 4, geometry{width: int64(15 * time.Second), buckets: 4, perHist: 1, hists: 5}},
		{"uneven grouping", time.Minute, 20, geometry{width: int64(3 * time.Second), buckets: 20, perHist: 4, hists: 6}},
		{"many buckets", 10 * time.Minute, 600, geometry{width: int64(time.Second), buckets: 600, perHist: 100, hists: 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, newGeometry(tc.window, tc.buckets))
		})
	}
}

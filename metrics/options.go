package metrics

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidOptions is wrapped by every problem [NewRecorder] reports about
// its [Options], so errors.Is(err, ErrInvalidOptions) holds for the joined
// error it returns.
var ErrInvalidOptions = errors.New("metrics: invalid options")

// Defaults and bounds of [Options].
const (
	defaultWindow    = 5 * time.Minute
	defaultBuckets   = 30
	defaultRefresh   = time.Second
	defaultMaxSeries = 4096
	minBuckets       = 2
	maxBuckets       = 600
	minBucketWidth   = time.Millisecond
	maxMaxSeries     = 1 << 20
)

// Options configures a [Recorder]. The zero Options is valid and selects
// every default: a 5 minute window of 30 buckets (10 s each), stats at most
// 1 s stale and at most 4096 series of each [Kind]. A negative value is an
// error, as is a combination that cannot be honoured exactly; see
// [NewRecorder].
type Options struct {
	// Window is the span the [Stats] cover; default 5 minutes. It must be
	// a whole multiple of Buckets nanoseconds, and each bucket at least
	// 1 ms wide.
	Window time.Duration
	// Buckets is the number of time buckets the window is divided into,
	// between 2 and 600; default 30. Old buckets leave the window one at a
	// time, so the stats cover between Window-Window/Buckets and Window of
	// history. Memory per series grows linearly with Buckets (see the
	// package documentation).
	Buckets int
	// Refresh is how stale the cached *Stats of a series may be; default
	// 1 s, or the bucket width when that is shorter. It must not exceed
	// Window.
	Refresh time.Duration
	// MaxSeries bounds the number of distinct series of each Kind; default
	// 4096, at most 1<<20. Labels first seen when the bound is reached
	// share one overflow series per Kind, labelled provider "" and name
	// "_other".
	MaxSeries int
	// Now is the clock; default time.Now. Tests inject a fake clock. It is
	// called on every recording and on every Stats call, from many
	// goroutines at once, so it must be safe for concurrent use.
	Now func() time.Time
}

// geometry is the validated shape of a recorder's window, in nanoseconds and
// slot counts.
type geometry struct {
	width   int64 // nanoseconds per bucket
	buckets int64 // counter buckets in the window and in the ring
	perHist int64 // buckets per histogram slot
	hists   int64 // histogram slots in the ring
}

// newGeometry divides the window into buckets and groups them into at most
// histSlots histogram slots; the ring holds one slot more, because a window
// that does not start on a slot boundary overlaps one slot more.
func newGeometry(window time.Duration, buckets int) geometry {
	n := int64(buckets)
	per := (n + histSlots - 1) / histSlots
	return geometry{
		width:   int64(window) / n,
		buckets: n,
		perHist: per,
		hists:   (n+per-1)/per + 1,
	}
}

// withDefaults validates o and fills in its defaults. It returns every
// problem at once, each wrapping [ErrInvalidOptions].
func (o Options) withDefaults() (Options, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...))
	}
	switch {
	case o.Window < 0:
		bad("negative Window %v", o.Window)
	case o.Window == 0:
		o.Window = defaultWindow
	}
	switch {
	case o.Buckets == 0:
		o.Buckets = defaultBuckets
	case o.Buckets < minBuckets || o.Buckets > maxBuckets:
		bad("Buckets %d outside [%d, %d]", o.Buckets, minBuckets, maxBuckets)
	}
	if o.Window > 0 && o.Buckets >= minBuckets && o.Buckets <= maxBuckets {
		switch w := o.Window / time.Duration(o.Buckets); {
		case o.Window%time.Duration(o.Buckets) != 0:
			bad("Window %v is not a whole multiple of %d Buckets", o.Window, o.Buckets)
		case w < minBucketWidth:
			bad("Window %v over %d Buckets gives buckets of %v, under %v", o.Window, o.Buckets, w, minBucketWidth)
		case o.Refresh == 0:
			o.Refresh = min(defaultRefresh, w)
		}
	}
	switch {
	case o.Refresh < 0:
		bad("negative Refresh %v", o.Refresh)
	case o.Window > 0 && o.Refresh > o.Window:
		bad("Refresh %v longer than Window %v", o.Refresh, o.Window)
	}
	switch {
	case o.MaxSeries < 0:
		bad("negative MaxSeries %d", o.MaxSeries)
	case o.MaxSeries == 0:
		o.MaxSeries = defaultMaxSeries
	case o.MaxSeries > maxMaxSeries:
		bad("MaxSeries %d above %d", o.MaxSeries, maxMaxSeries)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, errors.Join(errs...)
}

// Package metrics keeps live figures of the gateway's own upstream traffic —
// request counts, error rates by class, in-flight attempts, upstream latency
// and time to first token — per (provider, model) and per (provider, key ID),
// over a rolling window. Selection strategies read them at plan time, key
// balancing reads them to pick the least loaded or fastest key, and exporters
// enumerate them with [Recorder.Each]. The package depends only on the
// standard library.
//
// # Recording
//
// A [Recorder] hands out one [Series] per label pair ([Recorder.Model],
// [Recorder.Key]). An attempt is bracketed by [Series.Begin] and
// [Attempt.End]; [Series.Observe] records a finished attempt directly:
//
//	a := rec.Key("openai", keyID).Begin()
//	resp, err := send()
//	a.End(metrics.Outcome{Status: status, Timeout: timedOut})
//
// Recording takes no lock and does not allocate: it is a handful of atomic
// additions on the current bucket. Looking up an existing series neither
// locks nor allocates. A nil *Recorder and a nil *Series are valid and record
// nothing.
//
// # Window and buckets
//
// The window (default 5 minutes) is divided into buckets (default 30, so
// 10 s each) kept in a ring; each bucket is tagged with its epoch, the
// number of bucket widths since the Unix epoch. An attempt is counted in the
// bucket of the moment it ended. [Series.Stats] sums the buckets whose epoch
// lies in the window ending now, so buckets that went stale are ignored
// whether or not anything reset them since, and counts leave the window one
// bucket at a time: the figures cover between Window minus one bucket and
// Window of history; [Stats.Start] says exactly where they begin.
//
// Latency histograms are kept at a coarser grain: the buckets are grouped
// into 6 histogram slots per window (every 5 buckets by default, 50 s), and
// the percentiles cover every slot that overlaps the window, that is up to
// one slot more than the counts. Averages come from the exact per-bucket
// sums and follow the bucket window.
//
// Nothing runs in the background. Stats are computed lazily on read and
// cached per series for Options.Refresh (default 1 s): the same *Stats comes
// back until then, and only one reader recomputes when it expires.
//
// # Accuracy
//
// Counts, error rates and averages are exact within the bucket window.
// Percentiles (the p95 figures) come from histograms with two bins per
// octave from 1 ms to 2^20 ms (about 17.5 minutes): the reported value is
// the geometric middle of the bin holding the nearest-rank quantile, within
// 19% (a factor 2^(1/4)) of the true quantile. Below 1 ms a percentile reads
// 500 µs; from 17.5 minutes up it reads 17.5 minutes.
//
// Error classes follow the product's rules: [ErrorRate.Total] counts every
// attempt that did not end with a 2xx status in time, including connection
// failures (status 0), 1xx and 3xx answers (the gateway does not follow
// upstream redirects) and timeouts; Timeout, RateLimit (429), Client (other
// 4xx) and Server (5xx) are subsets, and need not add up to Total.
//
// Each counter holds up to 2^32-1 attempts per bucket.
//
// # Concurrency
//
// Every method is safe for concurrent use. When a bucket is reused for a new
// epoch, the first recorder to claim it resets it; an attempt recorded
// during that reset (a few dozen atomic stores, once per bucket per
// rollover) is dropped rather than waited for. A reader never sees a bucket
// half reset, rates are clamped to [0, 1] and the in-flight gauge to zero or
// more. The clock is read on recording, so a recorder that stalls for a
// whole window between reading it and recording may count its attempt in a
// newer bucket.
//
// # Memory
//
// A series' storage is allocated on its first recording: 56 bytes per bucket
// plus 344 bytes per histogram slot (two histograms of 42 uint32 bins), so
// with the defaults 30×56 + 7×344 = 4088 bytes, measured at about 4.6 KiB
// per series with allocator rounding, the series itself and its index
// entries. A series that recorded nothing for two windows gives its storage
// back on the next Stats read (an attempt recorded at that very moment may
// be lost), leaving about 170 bytes. The number of series of each kind is
// bounded by Options.MaxSeries (default 4096); later labels share an
// overflow series. The worst case with the defaults, 4096 active model
// series and 4096 active key series, is about 37 MiB; a gateway with 100
// active series uses under 500 KiB.
package metrics

package metrics

import "time"

// Stats summarizes one series (a provider's model, or a provider's key) over
// the recorder's rolling window. A series without history reads as the zero
// Stats except for Start and End. Stats is a plain value; a *Stats returned
// by [Series.Stats] is shared and must not be modified.
type Stats struct {
	// Start and End bound the window the figures cover.
	Start, End time.Time
	// Requests is the number of upstream attempts that ended in the window.
	Requests uint64
	// InFlight is the number of attempts running when the stats were taken.
	InFlight int64
	// Latency holds upstream response times of the attempts in the window.
	Latency Latency
	// ErrorRate holds the failure ratios of the attempts in the window.
	ErrorRate ErrorRate
}

// Latency is a set of latency summaries; zero means no observation.
type Latency struct {
	// UpstreamAvg and UpstreamP95 summarize the full upstream response time:
	// from sending the request to the last byte (or the failure).
	UpstreamAvg, UpstreamP95 time.Duration
	// TTFTAvg and TTFTP95 summarize the time to the first content event of
	// streamed responses; zero when no stream succeeded in the window.
	TTFTAvg, TTFTP95 time.Duration
}

// ErrorRate holds failure ratios in [0, 1] over the attempts in the window.
type ErrorRate struct {
	// Total counts every attempt that did not end with a 2xx answer:
	// timeouts, connection failures and HTTP errors.
	Total float64
	// Timeout counts attempts that got no (complete) answer in time.
	Timeout float64
	// RateLimit counts HTTP 429 answers.
	RateLimit float64
	// Client counts 4xx answers other than 429.
	Client float64
	// Server counts 5xx answers.
	Server float64
}

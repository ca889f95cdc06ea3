// Package webhook is a gateway.EventSink that sends request events, in
// batches, to an HTTP endpoint: a collector, a log pipeline, a billing
// service.
//
//	sink, err := webhook.New(webhook.Options{
//		URL:     "https://collector.example/ingest",
//		Headers: map[string]providers.Secret{"Authorization": providers.Secret("Bearer " + token)},
//	})
//	if err != nil {
//		return err
//	}
//	gw, err := gateway.New(gateway.WithEventSink(sink), ...)
//	...
//	_ = gw.Close()
//	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
//	defer cancel()
//	_ = sink.Close(ctx) // sends what is queued, for at most 10s
//
// # Wire format
//
// Each batch is one request:
//
//	POST <URL>
//	Content-Type: application/json
//	User-Agent: llmgate-webhook
//	<Options.Headers>
//
//	{"events":[EVENT,...]}
//
// where each EVENT is the encoding/json form of one gateway.Event (the
// form the jsonl sink writes), 1 to BatchSize of them, in the order the
// requests ended when Concurrency is 1. Any 2xx status acknowledges the
// whole batch; the response body is ignored.
//
// # Delivery
//
// HandleEvent never blocks the request: it encodes the event and adds it
// to a bounded queue of QueueSize events. When the queue is full, the new
// event is dropped and counted (Stats.Dropped): the newest is dropped, so
// that an event once accepted is never displaced, and a collector that
// comes back receives the events of the outage that fitted in the queue.
// Concurrency workers (default 1) each take up to BatchSize events from
// the queue, waiting at most FlushInterval after the first one for the
// batch to fill, and POST them.
//
// A batch that fails with a network error, a timeout (Timeout per
// request), 408, 429 or a 5xx status is sent again after an exponential
// backoff with jitter (MinBackoff doubling up to MaxBackoff, each wait
// drawn between half and all of it), or after the response's Retry-After
// (seconds or an HTTP date) capped at MaxRetryAfter, up to MaxAttempts
// requests in all. Any other status (3xx: redirects are not followed, and
// 4xx) rejects the batch at once (Stats.Rejected). A retry can deliver a
// batch twice when the collector received it but its answer was lost;
// every event carries the request's unique request_id, by which receivers
// deduplicate.
//
// Close stops accepting events and sends those queued, retrying as above,
// until its context ends; then it abandons what is left (Stats.Failed).
// Every event HandleEvent accepted is thus sent, rejected, failed, or
// still queued. The sink never logs its headers, nor more of the URL than
// its scheme and host: the path, query and user information may hold
// credentials.
package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/sinks/internal/eventq"
)

// Defaults of Options.
const (
	DefaultBatchSize     = 100
	DefaultFlushInterval = time.Second
	DefaultQueueSize     = 10000
	DefaultTimeout       = 10 * time.Second
	DefaultMaxAttempts   = 10
	DefaultMinBackoff    = 500 * time.Millisecond
	DefaultMaxBackoff    = 30 * time.Second
	DefaultMaxRetryAfter = 2 * time.Minute
	DefaultConcurrency   = 1
)

// Options configure a Sink. Only URL is required: every other zero field
// takes its default.
type Options struct {
	// URL is the http or https URL events are POSTed to.
	URL string
	// Headers are sent with every request, for example Authorization.
	// Their values are treated as secrets: never logged nor printed.
	// Content-Type, Content-Length, Transfer-Encoding and Host are set by
	// the sink and may not be given.
	Headers map[string]providers.Secret
	// BatchSize is the most events per request. Default
	// DefaultBatchSize.
	BatchSize int
	// FlushInterval is the longest the first event of a batch waits for
	// the batch to fill before it is sent. Default DefaultFlushInterval.
	FlushInterval time.Duration
	// QueueSize is the most events waiting to be sent, beyond the batches
	// being sent; further events are dropped. Default DefaultQueueSize.
	QueueSize int
	// Timeout bounds each request, until its response headers and body
	// are read. Default DefaultTimeout.
	Timeout time.Duration
	// MaxAttempts is the most requests made for one batch before it is
	// given up (Stats.Failed); negative: retry until Close gives up.
	// Default DefaultMaxAttempts.
	MaxAttempts int
	// MinBackoff is the wait before the first retry, doubled for each
	// further one up to MaxBackoff; each wait is drawn at random between
	// half and all of it. Defaults DefaultMinBackoff and
	// DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// MaxRetryAfter caps the wait a response's Retry-After asks for.
	// Default DefaultMaxRetryAfter.
	MaxRetryAfter time.Duration
	// Concurrency is the number of batches sent at once. Above 1, events
	// may arrive out of order. Default DefaultConcurrency.
	Concurrency int
	// Client sends the requests. Default: a client of the sink's own,
	// which does not follow redirects (a redirected POST would replay the
	// headers and the events elsewhere). Its Timeout, if any, applies
	// beside Timeout.
	Client *http.Client
	// Logger receives delivery problems: retries, batches given up, drops
	// (at most one drop report every 10 seconds). Default slog.Default().
	Logger *slog.Logger
}

// Stats counts a sink's events and requests. Every event HandleEvent
// accepted is in exactly one of Sent, Rejected, Failed or Queued.
type Stats struct {
	// Sent is the number of events in acknowledged batches.
	Sent uint64
	// Dropped is the number of events refused by HandleEvent: the queue
	// was full, the sink was closed, or the event could not be encoded.
	Dropped uint64
	// Rejected is the number of events in batches the endpoint refused
	// with a status that is not retried (3xx, 4xx other than 408 and 429).
	Rejected uint64
	// Failed is the number of events in batches given up after
	// MaxAttempts requests, or abandoned when Close's context ended.
	Failed uint64
	// Queued is the number of events accepted and not yet sent, rejected
	// or failed: waiting in the queue or in a batch being sent.
	Queued uint64
	// Batches is the number of acknowledged requests.
	Batches uint64
	// FailedBatches is the number of batches rejected or given up.
	FailedBatches uint64
	// Retries is the number of requests that repeated a failed one.
	Retries uint64
}

// Sink sends events to a webhook; see the package documentation. It is
// safe for concurrent use. Create it with New; the zero value is not
// usable.
type Sink struct {
	url         string
	logURL      string // scheme and host only
	header      http.Header
	client      *http.Client
	transport   *http.Transport // the sink's own, closed by Close; nil with Options.Client
	logger      *slog.Logger
	batchSize   int
	interval    time.Duration
	timeout     time.Duration
	maxAttempts int
	minBackoff  time.Duration
	maxBackoff  time.Duration
	maxRetry    time.Duration
	sleep       func(ctx context.Context, d time.Duration) error

	q         *eventq.Queue
	ctx       context.Context // canceled when Close gives up
	cancel    context.CancelFunc
	workers   atomic.Int32  // running; the last one out closes done
	done      chan struct{} // closed when every worker has returned
	closeOnce sync.Once

	sent, rejected, failed, batches, failedBatches, retries atomic.Uint64

	dropMu       sync.Mutex
	dropReported uint64
	dropLogged   time.Time
}

// New validates opts and starts the sink's workers; Close stops them.
func New(opts Options) (*Sink, error) {
	return newSink(opts, sleepCtx)
}

func newSink(opts Options, sleep func(context.Context, time.Duration) error) (*Sink, error) {
	s := &Sink{
		batchSize: orDefault(opts.BatchSize, DefaultBatchSize), interval: orDefault(opts.FlushInterval, DefaultFlushInterval),
		timeout: orDefault(opts.Timeout, DefaultTimeout), maxAttempts: orDefault(opts.MaxAttempts, DefaultMaxAttempts),
		minBackoff: orDefault(opts.MinBackoff, DefaultMinBackoff), maxBackoff: orDefault(opts.MaxBackoff, DefaultMaxBackoff),
		maxRetry: orDefault(opts.MaxRetryAfter, DefaultMaxRetryAfter), logger: opts.Logger, client: opts.Client,
		sleep: sleep, done: make(chan struct{}),
	}
	queueSize, concurrency := orDefault(opts.QueueSize, DefaultQueueSize), orDefault(opts.Concurrency, DefaultConcurrency)
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("webhook: "+format, args...)) }
	if u, err := parseURL(opts.URL); err != nil {
		errs = append(errs, err)
	} else {
		s.url, s.logURL = u.String(), (&url.URL{Scheme: u.Scheme, Host: u.Host}).String()
	}
	s.header = http.Header{"Content-Type": {"application/json"}, "User-Agent": {"llmgate-webhook"}}
	for name, v := range opts.Headers {
		if err := CheckHeader(name, v); err != nil {
			errs = append(errs, err)
			continue
		}
		s.header[http.CanonicalHeaderKey(name)] = []string{v.Reveal()}
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"BatchSize", opts.BatchSize}, {"QueueSize", opts.QueueSize}, {"Concurrency", opts.Concurrency}} {
		if f.v < 0 {
			bad("%s must not be negative, got %d", f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"FlushInterval", opts.FlushInterval}, {"Timeout", opts.Timeout}, {"MinBackoff", opts.MinBackoff},
		{"MaxBackoff", opts.MaxBackoff}, {"MaxRetryAfter", opts.MaxRetryAfter}} {
		if f.v < 0 {
			bad("%s must not be negative, got %v", f.name, f.v)
		}
	}
	if opts.MinBackoff >= 0 && opts.MaxBackoff >= 0 && s.minBackoff > s.maxBackoff {
		bad("MinBackoff (%v) must not exceed MaxBackoff (%v)", s.minBackoff, s.maxBackoff)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if s.client == nil {
		s.transport = http.DefaultTransport.(*http.Transport).Clone()
		s.client = &http.Client{Transport: s.transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	s.q = eventq.New(queueSize)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.workers.Store(int32(concurrency))
	for range concurrency {
		go s.work()
	}
	return s, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// CheckURL reports whether rawURL is a URL New accepts: an absolute http
// or https URL. Its error never repeats the URL, which may hold a
// credential.
func CheckURL(rawURL string) error {
	_, err := parseURL(rawURL)
	return err
}

func parseURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	switch {
	case rawURL == "":
		return nil, errors.New("webhook: URL is required")
	case err != nil:
		return nil, errors.New("webhook: URL is not a URL") // url.Error would repeat the URL
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return nil, errors.New("webhook: URL must be an absolute http or https URL")
	}
	return u, nil
}

// CheckHeader reports whether New accepts the header name: value in
// Options.Headers. Its error never repeats the value.
func CheckHeader(name string, value providers.Secret) error {
	switch canon := http.CanonicalHeaderKey(name); {
	case !validHeaderName(name):
		return fmt.Errorf("webhook: header name %q is not valid", name)
	case canon == "Content-Type" || canon == "Content-Length" || canon == "Transfer-Encoding" || canon == "Host":
		return fmt.Errorf("webhook: header %s is set by the sink", canon)
	case strings.ContainsAny(value.Reveal(), "\r\n\x00"):
		return fmt.Errorf("webhook: header %s: the value must not contain CR, LF or NUL", canon)
	}
	return nil
}

// validHeaderName reports whether s is an HTTP token (RFC 9110).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// HandleEvent encodes e and queues it, without blocking; when the queue is
// full or the sink is closed, e is dropped and counted.
func (s *Sink) HandleEvent(_ context.Context, e *gateway.Event) {
	s.q.Offer(e)
}

// Stats returns the sink's counters.
func (s *Sink) Stats() Stats {
	st := Stats{Sent: s.sent.Load(), Rejected: s.rejected.Load(), Failed: s.failed.Load(),
		Batches: s.batches.Load(), FailedBatches: s.failedBatches.Load(), Retries: s.retries.Load()}
	pushed := s.q.Pushed() // after the outcomes: Queued never underflows
	st.Dropped = s.q.Dropped()
	st.Queued = pushed - min(pushed, st.Sent+st.Rejected+st.Failed)
	return st
}

// Close stops accepting events and sends those queued, retrying failed
// batches as usual, until they are all sent, rejected or given up, or ctx
// ends. When ctx ends first, the requests and waits in progress are
// canceled, every event not yet sent is counted as Failed, and Close
// returns ctx's error. Either way the workers have stopped when Close
// returns. Close is idempotent; later calls wait for the same end. Close
// the sink after the gateway, so that no event comes after it.
func (s *Sink) Close(ctx context.Context) error {
	s.closeOnce.Do(s.q.Close)
	var err error
	select {
	case <-s.done:
	case <-ctx.Done():
		failed := s.failed.Load()
		s.cancel()
		<-s.done // prompt: every wait and request is canceled
		lost := s.failed.Load() - failed
		s.logger.Warn("webhook event sink: closed before every event was sent; the rest are lost", "url", s.logURL, "events", lost)
		err = fmt.Errorf("webhook: close: gave up on %d events not yet sent: %w", lost, ctx.Err())
	}
	s.cancel()
	s.reportDrops(true)
	if s.transport != nil {
		s.transport.CloseIdleConnections()
	}
	return err
}

// work is one worker: it takes batches off the queue and delivers them
// until the queue is closed and empty.
func (s *Sink) work() {
	defer func() {
		if s.workers.Add(-1) == 0 {
			close(s.done)
		}
	}()
	batch := make([][]byte, 0, s.batchSize)
	timer := time.NewTimer(s.interval)
	timer.Stop()
	defer timer.Stop()
	for {
		b, ok := <-s.q.C()
		if !ok {
			return
		}
		batch = append(batch[:0], b)
		timer.Reset(s.interval)
	fill:
		for len(batch) < s.batchSize {
			select {
			case b, ok := <-s.q.C():
				if !ok { // closing: send what there is
					break fill
				}
				batch = append(batch, b)
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
		s.deliver(batch)
		clear(batch)
	}
}

// outcome is what one request came to.
type outcome struct {
	ok         bool          // acknowledged
	retry      bool          // failed, may succeed later
	status     int           // 0 without a response
	err        error         // the transport error, without the URL
	retryAfter time.Duration // the response's Retry-After, 0 if none
}

// deliver sends one batch, retrying as the package documentation says.
func (s *Sink) deliver(batch [][]byte) {
	body := encodeBatch(batch)
	n := uint64(len(batch))
	for attempt := 1; ; attempt++ {
		if s.ctx.Err() != nil { // Close gave up; it logs the total
			s.failed.Add(n)
			s.failedBatches.Add(1)
			return
		}
		o := s.post(body)
		switch {
		case o.ok:
			s.sent.Add(n)
			s.batches.Add(1)
			s.reportDrops(false)
			return
		case s.ctx.Err() != nil:
			continue // canceled by Close: abandoned above
		case !o.retry:
			s.giveUp(n, &s.rejected, "webhook event sink: batch refused; its events are lost", "events", n, "url", s.logURL, "status", o.status)
			return
		case s.maxAttempts > 0 && attempt >= s.maxAttempts:
			s.giveUp(n, &s.failed, "webhook event sink: batch given up; its events are lost", "events", n, "url", s.logURL,
				"attempts", attempt, "status", o.status, "err", o.err)
			return
		}
		wait := s.backoff(attempt, o.retryAfter)
		s.logger.Warn("webhook event sink: request failed; retrying", "url", s.logURL, "attempt", attempt,
			"status", o.status, "err", o.err, "retry_in", wait, "events", n)
		s.reportDrops(false)
		s.retries.Add(1)
		_ = s.sleep(s.ctx, wait) // when canceled, the loop abandons the batch
	}
}

func (s *Sink) giveUp(n uint64, counter *atomic.Uint64, msg string, attrs ...any) {
	counter.Add(n)
	s.failedBatches.Add(1)
	s.logger.Warn(msg, attrs...)
	s.reportDrops(false)
}

// encodeBatch returns {"events":[...]}.
func encodeBatch(batch [][]byte) []byte {
	size := len(`{"events":[]}`) + len(batch)
	for _, b := range batch {
		size += len(b)
	}
	body := make([]byte, 0, size)
	body = append(body, `{"events":[`...)
	for i, b := range batch {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, b...)
	}
	return append(body, "]}"...)
}

// post makes one request.
func (s *Sink) post(body []byte) outcome {
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return outcome{err: errors.New("building the request failed")} // unreachable: the URL was checked
	}
	req.Header = s.header.Clone()
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text would repeat the URL
		}
		return outcome{retry: true, err: err}
	}
	// Read a little of the body so that the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	o := outcome{status: resp.StatusCode}
	switch c := resp.StatusCode; {
	case c >= 200 && c <= 299:
		o.ok = true
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		o.retry = true
		o.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return o
}

// backoff returns the wait before retry number attempt (1 for the first):
// the Retry-After capped at MaxRetryAfter when the response had one, else
// MinBackoff·2^(attempt-1) capped at MaxBackoff, with jitter (between half
// and all of it).
func (s *Sink) backoff(attempt int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, s.maxRetry)
	}
	d := s.minBackoff
	for i := 1; i < attempt && d < s.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.maxBackoff)
	return d/2 + rand.N(d/2+1)
}

// parseRetryAfter reads a Retry-After value, delay-seconds or an HTTP
// date; 0 when absent, invalid or not in the future.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// reportDrops logs the events dropped since the last report, at most once
// every 10 seconds unless final.
func (s *Sink) reportDrops(final bool) {
	d := s.q.Dropped()
	s.dropMu.Lock()
	defer s.dropMu.Unlock()
	if d == s.dropReported || !final && time.Since(s.dropLogged) < 10*time.Second {
		return
	}
	s.logger.Warn("webhook event sink: queue full; events dropped", "url", s.logURL, "dropped", d-s.dropReported, "dropped_total", d)
	s.dropReported, s.dropLogged = d, time.Now()
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

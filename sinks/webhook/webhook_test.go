package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/sinks/internal/sinktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ids(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("req-%d", i))
	}
	sort.Strings(out)
	return out
}

// receiver is an httptest collector. Its respond function decides each
// request's fate by its number (0-based); a batch counts as received only
// when respond returns a 2xx status.
type receiver struct {
	t       *testing.T
	srv     *httptest.Server
	respond func(n int, w http.ResponseWriter, r *http.Request) int

	mu       sync.Mutex
	requests int
	times    []time.Time
	received map[string]int // request_id → times received in acknowledged batches
	batches  []int          // sizes of the acknowledged batches, in order
	order    []string       // request IDs in acknowledged order
	headers  []http.Header
}

func newReceiver(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request) int) *receiver {
	rc := &receiver{t: t, respond: respond, received: map[string]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	rc.mu.Lock()
	n := rc.requests
	rc.requests++
	rc.times = append(rc.times, time.Now())
	rc.headers = append(rc.headers, r.Header.Clone())
	rc.mu.Unlock()
	status := http.StatusOK
	if rc.respond != nil {
		status = rc.respond(n, w, r)
	}
	if status < 200 || status > 299 {
		w.WriteHeader(status)
		return
	}
	var batch struct {
		Events []gateway.Event `json:"events"`
	}
	if err := json.Unmarshal(body, &batch); err != nil {
		rc.t.Errorf("batch is not {\"events\":[...]}: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.batches = append(rc.batches, len(batch.Events))
	for _, e := range batch.Events {
		rc.received[e.RequestID]++
		rc.order = append(rc.order, e.RequestID)
	}
	rc.mu.Unlock()
	w.WriteHeader(status)
}

// ids returns the request IDs received, sorted, and fails on duplicates.
func (rc *receiver) ids() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for id, n := range rc.received {
		require.Equal(rc.t, 1, n, "%s received %d times", id, n)
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func (rc *receiver) batchSizes() []int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]int(nil), rc.batches...)
}

func (rc *receiver) requestCount() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.requests
}

// waits records the backoff waits asked for, without waiting.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	w.d = append(w.d, d)
	w.mu.Unlock()
	return ctx.Err()
}

func (w *waits) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func closeSink(t *testing.T, s *Sink) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, s.Close(ctx))
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"url only", Options{URL: "https://collector.example/ingest"}, ""},
		{"all set", Options{URL: "http://127.0.0.1:9/x", Headers: map[string]providers.Secret{"Authorization": "Bearer x", "x-tenant": "t"},
			BatchSize: 1, FlushInterval: time.Millisecond, QueueSize: 1, Timeout: time.Second, MaxAttempts: -1,
			MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond, MaxRetryAfter: time.Second, Concurrency: 3}, ""},
		{"no url", Options{}, "URL is required"},
		{"relative url", Options{URL: "/ingest"}, "absolute http or https URL"},
		{"ftp url", Options{URL: "ftp://collector.example/"}, "absolute http or https URL"},
		{"no host", Options{URL: "https:///x"}, "absolute http or https URL"},
		{"not a url", Options{URL: "https://x/%zz?token=s3cret"}, "URL is not a URL"},
		{"bad header name", Options{URL: "https://x/", Headers: map[string]providers.Secret{"Bad Header": "v"}}, `header name "Bad Header" is not valid`},
		{"content type", Options{URL: "https://x/", Headers: map[string]providers.Secret{"content-type": "text/plain"}}, "header Content-Type is set by the sink"},
		{"header newline", Options{URL: "https://x/", Headers: map[string]providers.Secret{"Authorization": "a\r\nX-Evil: 1"}}, "must not contain CR, LF or NUL"},
		{"negative batch", Options{URL: "https://x/", BatchSize: -1}, "BatchSize must not be negative"},
		{"negative queue", Options{URL: "https://x/", QueueSize: -1}, "QueueSize must not be negative"},
		{"negative concurrency", Options{URL: "https://x/", Concurrency: -2}, "Concurrency must not be negative"},
		{"negative interval", Options{URL: "https://x/", FlushInterval: -1}, "FlushInterval must not be negative"},
		{"negative timeout", Options{URL: "https://x/", Timeout: -1}, "Timeout must not be negative"},
		{"backoffs crossed", Options{URL: "https://x/", MinBackoff: time.Minute}, "MinBackoff (1m0s) must not exceed MaxBackoff (30s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.opts)
			if tc.want != "" {
				require.ErrorContains(t, err, tc.want)
				require.NotContains(t, err.Error(), "s3cret")
				require.Nil(t, s)
				return
			}
			require.NoError(t, err)
			closeSink(t, s)
		})
	}
}

func TestBatches(t *testing.T) {
	rc := newReceiver(t, nil)
	s, err := New(Options{URL: rc.srv.URL + "/ingest?token=q", BatchSize: 100, FlushInterval: time.Hour, Logger: quiet(),
		Headers: map[string]providers.Secret{"Authorization": "Bearer tok", "X-Tenant": "t1"}})
	require.NoError(t, err)
	for i := range 250 {
		s.HandleEvent(context.Background(), sinktest.Event(i))
	}
	// Two full batches leave at once; the last 50 wait for the interval
	// (an hour), or Close.
	require.Eventually(t, func() bool { return s.Stats().Sent == 200 }, 10*time.Second, time.Millisecond)
	require.Equal(t, Stats{Sent: 200, Queued: 50, Batches: 2}, s.Stats())
	closeSink(t, s)
	require.Equal(t, []int{100, 100, 50}, rc.batchSizes())
	require.Equal(t, ids(0, 250), rc.ids())
	require.Equal(t, Stats{Sent: 250, Batches: 3}, s.Stats())

	rc.mu.Lock()
	defer rc.mu.Unlock()
	for i := range 250 {
		require.Equal(t, fmt.Sprintf("req-%d", i), rc.order[i], "in order with one worker")
	}
	h := rc.headers[0]
	require.Equal(t, "application/json", h.Get("Content-Type"))
	require.Equal(t, "Bearer tok", h.Get("Authorization"))
	require.Equal(t, "t1", h.Get("X-Tenant"))
	require.Equal(t, "llmgate-webhook", h.Get("User-Agent"))
}

func TestFlushInterval(t *testing.T) {
	rc := newReceiver(t, nil)
	s, err := New(Options{URL: rc.srv.URL, BatchSize: 100, FlushInterval: 5 * time.Millisecond, Logger: quiet()})
	require.NoError(t, err)
	for i := range 3 {
		s.HandleEvent(context.Background(), sinktest.Event(i))
	}
	// Sent without Close, in batches smaller than BatchSize.
	require.Eventually(t, func() bool { return s.Stats().Sent == 3 }, 10*time.Second, time.Millisecond)
	require.Equal(t, ids(0, 3), rc.ids())
	closeSink(t, s)
}

// TestSlowFailingRecovering: the collector is slow (it holds a request
// while the queue fills up and overflows), then fails in every way (5xx,
// a dropped connection, a request timeout, 429), then recovers: every
// event accepted within the queue bound arrives exactly once, and the
// events beyond it are counted as dropped.
func TestSlowFailingRecovering(t *testing.T) {
	const queueSize, batchSize, overflow = 50, 10, 20
	entered, release := make(chan struct{}), make(chan struct{})
	failures := map[int]func(w http.ResponseWriter, r *http.Request) int{
		1: func(http.ResponseWriter, *http.Request) int { return http.StatusInternalServerError },
		2: func(http.ResponseWriter, *http.Request) int { panic(http.ErrAbortHandler) }, // connection dropped
		3: func(_ http.ResponseWriter, r *http.Request) int { // too slow: the client times out, the batch is not stored
			<-r.Context().Done()
			return http.StatusGatewayTimeout
		},
		4: func(http.ResponseWriter, *http.Request) int { return http.StatusBadGateway },
		5: func(http.ResponseWriter, *http.Request) int { return http.StatusTooManyRequests },
		7: func(http.ResponseWriter, *http.Request) int { return http.StatusServiceUnavailable },
	}
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) int {
		if n == 0 { // slow: held until the queue has overflowed
			close(entered)
			<-release
			return http.StatusOK
		}
		if f := failures[n]; f != nil {
			return f(w, r)
		}
		return http.StatusOK
	})
	var w waits
	s, err := newSink(Options{URL: rc.srv.URL, BatchSize: batchSize, QueueSize: queueSize, FlushInterval: time.Millisecond,
		Timeout: time.Second, MinBackoff: 100 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, Logger: quiet()}, w.sleep)
	require.NoError(t, err)

	s.HandleEvent(context.Background(), sinktest.Event(0))
	<-entered // batch [req-0] is held by the collector; the queue is empty
	for i := 1; i <= queueSize+overflow; i++ {
		s.HandleEvent(context.Background(), sinktest.Event(i)) // never blocks
	}
	require.Equal(t, Stats{Dropped: overflow, Queued: 1 + queueSize}, s.Stats())
	close(release)

	closeSink(t, s)
	require.Equal(t, ids(0, 1+queueSize), rc.ids(), "every accepted event, exactly once")
	for _, n := range rc.batchSizes() {
		require.LessOrEqual(t, n, batchSize)
	}
	require.Equal(t, Stats{Sent: 1 + queueSize, Dropped: overflow, Batches: uint64(len(rc.batchSizes())), Retries: uint64(len(failures))}, s.Stats())

	// Consecutive failures of one batch back off exponentially with
	// jitter: the batch of request 1 failed five times in a row (requests
	// 1 to 5), the next batch once (request 7).
	got := w.all()
	require.Len(t, got, len(failures))
	for i, max := range []time.Duration{100, 200, 300, 300, 300, 100} {
		max *= time.Millisecond
		require.GreaterOrEqual(t, got[i], max/2, "wait %d", i)
		require.LessOrEqual(t, got[i], max, "wait %d", i)
	}
}

func TestRetryAfter(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) int {
		switch n {
		case 0:
			w.Header().Set("Retry-After", "2")
			return http.StatusTooManyRequests
		case 1:
			w.Header().Set("Retry-After", "3600") // capped
			return http.StatusServiceUnavailable
		case 2:
			w.Header().Set("Retry-After", "soon") // invalid: backoff
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	var w waits
	s, err := newSink(Options{URL: rc.srv.URL, MaxRetryAfter: 5 * time.Second, MinBackoff: time.Second, MaxBackoff: time.Second, Logger: quiet()}, w.sleep)
	require.NoError(t, err)
	s.HandleEvent(context.Background(), sinktest.Event(0))
	closeSink(t, s)
	require.Equal(t, ids(0, 1), rc.ids())
	got := w.all()
	require.Len(t, got, 3)
	require.Equal(t, []time.Duration{2 * time.Second, 5 * time.Second}, got[:2])
	require.GreaterOrEqual(t, got[2], 500*time.Millisecond)
	require.LessOrEqual(t, got[2], time.Second)
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{" 7 ", 7 * time.Second},
		{"99999999999", 24 * time.Hour},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"tomorrow", 0},
	} {
		t.Run(tc.in, func(t *testing.T) {
			require.Equal(t, tc.want, parseRetryAfter(tc.in, now))
		})
	}
}

func TestGiveUp(t *testing.T) {
	for _, tc := range []struct {
		name    string
		respond func(n int, w http.ResponseWriter, r *http.Request) int
		opts    Options
		want    Stats
		// requests made
		requests int
		received []string
	}{
		{
			name: "4xx rejects at once",
			respond: func(n int, _ http.ResponseWriter, _ *http.Request) int {
				if n == 0 {
					return http.StatusBadRequest
				}
				return http.StatusOK
			},
			opts: Options{BatchSize: 2}, want: Stats{Sent: 1, Rejected: 2, Batches: 1, FailedBatches: 1},
			requests: 2, received: ids(2, 3),
		},
		{
			name: "redirect is not followed",
			respond: func(n int, w http.ResponseWriter, _ *http.Request) int {
				w.Header().Set("Location", "https://elsewhere.example/")
				return http.StatusTemporaryRedirect
			},
			opts: Options{BatchSize: 3}, want: Stats{Rejected: 3, FailedBatches: 1}, requests: 1,
		},
		{
			name:    "max attempts",
			respond: func(int, http.ResponseWriter, *http.Request) int { return http.StatusInternalServerError },
			opts:    Options{BatchSize: 3, MaxAttempts: 4}, want: Stats{Failed: 3, FailedBatches: 1, Retries: 3}, requests: 4,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, tc.respond)
			var w waits
			opts := tc.opts
			opts.URL, opts.FlushInterval, opts.Logger = rc.srv.URL, time.Hour, quiet()
			s, err := newSink(opts, w.sleep)
			require.NoError(t, err)
			for i := range 3 {
				s.HandleEvent(context.Background(), sinktest.Event(i))
			}
			closeSink(t, s)
			require.Equal(t, tc.want, s.Stats())
			require.Equal(t, tc.requests, rc.requestCount())
			require.Equal(t, tc.received, rc.ids())
		})
	}
}

func TestCloseDeadline(t *testing.T) {
	rc := newReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) int {
		<-r.Context().Done() // never answers
		return http.StatusOK
	})
	s, err := New(Options{URL: rc.srv.URL, BatchSize: 5, FlushInterval: time.Millisecond, MaxAttempts: -1, Logger: quiet()})
	require.NoError(t, err)
	for i := range 12 {
		s.HandleEvent(context.Background(), sinktest.Event(i))
	}
	require.Eventually(t, func() bool { return rc.requestCount() > 0 }, 10*time.Second, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err = s.Close(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "gave up on 12 events not yet sent")
	st := s.Stats()
	require.Equal(t, uint64(12), st.Failed, "every event abandoned: %+v", st)
	require.Zero(t, st.Queued)
	require.Zero(t, st.Sent)
	s.HandleEvent(context.Background(), sinktest.Event(99))
	require.Equal(t, uint64(1), s.Stats().Dropped, "after Close")
	require.ErrorIs(t, s.Close(context.Background()), nil, "later calls return at once")
}

func TestConcurrency(t *testing.T) {
	rc := newReceiver(t, func(n int, _ http.ResponseWriter, _ *http.Request) int {
		if n%5 == 1 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	var w waits
	s, err := newSink(Options{URL: rc.srv.URL, BatchSize: 7, QueueSize: 2000, Concurrency: 4, FlushInterval: time.Millisecond, Logger: quiet()}, w.sleep)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 250 {
				s.HandleEvent(context.Background(), sinktest.Event(g*250+i))
			}
		})
	}
	wg.Wait()
	closeSink(t, s)
	require.Equal(t, ids(0, 1000), rc.ids())
	for _, n := range rc.batchSizes() {
		require.LessOrEqual(t, n, 7)
	}
	st := s.Stats()
	require.Equal(t, uint64(1000), st.Sent)
	require.Equal(t, uint64(len(w.all())), st.Retries)
	require.NotZero(t, st.Retries)
}

// TestNoSecretsLogged: neither the headers nor the URL's query and user
// information reach the logs, whatever fails.
func TestNoSecretsLogged(t *testing.T) {
	rc := newReceiver(t, func(n int, _ http.ResponseWriter, _ *http.Request) int {
		if n == 0 {
			return http.StatusInternalServerError
		}
		return http.StatusUnauthorized
	})
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var w waits
	u := strings.Replace(rc.srv.URL, "http://", "http://user:pw-s3cret@", 1) + "/hook-s3cret/in?token=q-s3cret"
	s, err := newSink(Options{URL: u, QueueSize: 1, FlushInterval: time.Millisecond, Logger: logger,
		Headers: map[string]providers.Secret{"Authorization": "Bearer h-s3cret"}}, w.sleep)
	require.NoError(t, err)
	for i := range 3 {
		s.HandleEvent(context.Background(), sinktest.Event(i)) // some dropped
	}
	closeSink(t, s)

	// A connection that fails: the transport's error names the URL.
	s, err = newSink(Options{URL: "http://user:pw-s3cret@127.0.0.1:1/hook-s3cret?token=q-s3cret", MaxAttempts: 2, FlushInterval: time.Millisecond,
		Logger: logger, Headers: map[string]providers.Secret{"Authorization": "Bearer h-s3cret"}}, w.sleep)
	require.NoError(t, err)
	s.HandleEvent(context.Background(), sinktest.Event(9))
	closeSink(t, s)
	require.Equal(t, uint64(1), s.Stats().Failed)

	mu.Lock()
	defer mu.Unlock()
	out := logs.String()
	require.Contains(t, out, "retrying")
	require.Contains(t, out, "batch refused")
	require.Contains(t, out, "batch given up")
	require.Contains(t, out, "url=http://127.0.0.1:") // the URL's scheme and host only
	require.NotContains(t, out, "s3cret")
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// BenchmarkHandleEvent measures what a request pays: encoding and queueing
// an event (accepted), or counting it when the queue is full (dropped).
func BenchmarkHandleEvent(b *testing.B) {
	ev := sinktest.Event(1)
	b.Run("accepted", func(b *testing.B) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
		}))
		defer srv.Close()
		const chunk = 1000
		s, err := New(Options{URL: srv.URL, QueueSize: chunk, FlushInterval: time.Millisecond, Logger: quiet()})
		require.NoError(b, err)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N { // not b.Loop: chunks of b.N
			if i%chunk == 0 && i > 0 {
				// Let the sink send, off the clock, so that every event
				// is accepted and encoded, and the sending does not share
				// the CPU with the loop.
				b.StopTimer()
				for s.Stats().Queued > 0 {
					time.Sleep(100 * time.Microsecond)
				}
				b.StartTimer()
			}
			s.HandleEvent(context.Background(), ev)
		}
		b.StopTimer()
		require.NoError(b, s.Close(context.Background()))
		require.Zero(b, s.Stats().Dropped)
		require.Equal(b, uint64(b.N), s.Stats().Sent)
	})
	b.Run("dropped", func(b *testing.B) {
		entered, release := make(chan struct{}, 1), make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			entered <- struct{}{}
			<-release
		}))
		defer srv.Close()
		s, err := New(Options{URL: srv.URL, QueueSize: 1, BatchSize: 1, Logger: quiet()})
		require.NoError(b, err)
		s.HandleEvent(context.Background(), ev)
		<-entered
		s.HandleEvent(context.Background(), ev) // the queue is full
		b.ReportAllocs()
		for b.Loop() {
			s.HandleEvent(context.Background(), ev)
		}
		b.StopTimer()
		close(release)
		require.NoError(b, s.Close(context.Background()))
		require.Equal(b, uint64(2), s.Stats().Sent)
	})
}

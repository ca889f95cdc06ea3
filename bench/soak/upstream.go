package main

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

// attemptRecord is one upstream request as the fake upstream saw it.
type attemptRecord struct {
	id       string // the upstream request ID, sent back as X-Request-Id / Request-Id
	provider string // "openai" or "anthropic"
	model    string
	keyID    string
	fault    fault
	stream   bool
}

func (a attemptRecord) String() string {
	return a.id + " " + a.provider + ":" + a.model + " key " + a.keyID + " fault " + strconv.Quote(a.fault.String())
}

// ledger records every upstream request by the marker of the client
// request it serves. It is shared by the fake upstreams and read by the
// clients when their request has ended.
type ledger struct {
	mu       sync.Mutex
	next     uint64
	byMarker map[string][]attemptRecord
	faults   [numFaults]int64
	requests int64
}

func newLedger() *ledger {
	return &ledger{byMarker: map[string][]attemptRecord{}}
}

// record adds an upstream request for marker and returns its ID.
func (l *ledger) record(marker string, a attemptRecord) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.next++
	a.id = "up-" + strconv.FormatUint(l.next, 10)
	l.byMarker[marker] = append(l.byMarker[marker], a)
	l.faults[a.fault]++
	l.requests++
	return a.id
}

// take returns and forgets the upstream requests made for marker.
func (l *ledger) take(marker string) []attemptRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	recs := l.byMarker[marker]
	delete(l.byMarker, marker)
	return recs
}

// leftover returns the number of upstream requests recorded after their
// client request had been checked (the gateway had given up on them before
// the upstream read them) and forgets them.
func (l *ledger) leftover() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, recs := range l.byMarker {
		n += len(recs)
	}
	clear(l.byMarker)
	return n
}

// upstream is a fake provider API of one wire format on a loopback port.
// Each request it receives gets a fault drawn deterministically from the
// seed, the request's marker, the model and the key, so a run is
// reproducible request by request.
type upstream struct {
	provider string // provider ID: "openai" or "anthropic"
	format   providers.Format
	path     string // the one API path it serves
	url      string // API root for ProviderConfig.BaseURL
	seed     uint64
	rate     float64
	weights  *faultWeights
	keys     map[string]string // secret -> key ID
	ledger   *ledger
	tally    *tally

	srv     *http.Server
	closing chan struct{}
	served  chan struct{} // closed when Serve has returned

	mu     sync.Mutex
	nextID uint64
	open   map[uint64]string // requests being answered: what they are
}

func startUpstream(provider string, format providers.Format, cfg *config, keys map[string]string, l *ledger, t *tally) (*upstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u := &upstream{
		provider: provider, format: format, path: "/v1/chat/completions",
		url: "http://" + ln.Addr().String() + "/v1/", seed: cfg.seed, rate: cfg.faultRate, weights: &cfg.weights,
		keys: keys, ledger: l, tally: t, closing: make(chan struct{}), served: make(chan struct{}),
		open: map[uint64]string{},
	}
	if format == providers.FormatAnthropic {
		u.path = "/v1/messages"
	}
	u.srv = &http.Server{
		Handler:           u,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(logWriter{t, "fake upstream " + provider + " server log", false}, "", 0),
	}
	go func() {
		defer close(u.served)
		_ = u.srv.Serve(ln)
	}()
	return u, nil
}

// close ends stalled handlers and closes every connection.
func (u *upstream) close() {
	close(u.closing)
	_ = u.srv.Close()
	<-u.served
}

// upstreamRequest holds the request fields the fake reads.
type upstreamRequest struct {
	Model    string `json:"model"`
	Stream   bool   `json:"stream"`
	User     string `json:"user"`
	Metadata struct {
		UserID string `json:"user_id"`
	} `json:"metadata"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Models json.RawMessage `json:"models"`
}

// track records a request being answered and returns the function that
// updates its description and the one that forgets it.
func (u *upstream) track() (describe func(string), done func()) {
	u.mu.Lock()
	u.nextID++
	id := u.nextID
	u.open[id] = "(request body not read yet)"
	u.mu.Unlock()
	return func(s string) {
			u.mu.Lock()
			u.open[id] = s
			u.mu.Unlock()
		}, func() {
			u.mu.Lock()
			delete(u.open, id)
			u.mu.Unlock()
		}
}

// openRequests describes the requests still being answered.
func (u *upstream) openRequests() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]string, 0, len(u.open))
	for _, s := range u.open {
		out = append(out, s)
	}
	return out
}

// ServeHTTP checks an upstream request, draws its fault, records it in the
// ledger and answers it.
func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	describe, done := u.track()
	defer done()
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return // the gateway gave up while sending
	}
	var req upstreamRequest
	if err := json.Unmarshal(body, &req); err != nil {
		u.tally.violation("upstream received a body that is not JSON", u.provider+": "+excerpt(body, 300))
		writeStep(w, providertest.Error(u.format, http.StatusBadRequest, "soak upstream: invalid JSON"))
		return
	}
	marker := req.User
	if u.format == providers.FormatAnthropic {
		marker = req.Metadata.UserID
	}
	secret := strings.TrimSpace(r.Header.Get("X-Api-Key"))
	if u.format == providers.FormatOpenAI {
		secret = strings.TrimSpace(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	}
	keyID, known := u.keys[secret]
	switch {
	case r.URL.Path != u.path:
		u.tally.violation("upstream request to an unexpected path", u.provider+": "+r.Method+" "+r.URL.Path)
	case !known:
		u.tally.violation("upstream request without one of the provider's keys", u.provider+" marker "+marker)
	case marker == "":
		u.tally.violation("upstream request without the client's marker (user / metadata.user_id lost)", u.provider+": "+excerpt(body, 300))
	case req.Models != nil:
		u.tally.violation(`"models" sent upstream`, u.provider+" marker "+marker)
	}
	if marker == "" || !known || r.URL.Path != u.path {
		writeStep(w, providertest.Error(u.format, http.StatusBadRequest, "soak upstream: request not understood"))
		return
	}
	rng := rngFor(u.seed, "upstream", marker, u.provider, req.Model, keyID)
	f := pickFault(rng, u.rate, req.Stream, u.weights)
	if strings.HasSuffix(marker, doomedSuffix) {
		f = faultHang
		if req.Stream && rng.IntN(2) == 0 {
			f = faultStallBefore
		}
	}
	a := attemptRecord{provider: u.provider, model: req.Model, keyID: keyID, fault: f, stream: req.Stream}
	id := u.ledger.record(marker, a)
	a.id = id
	describe("upstream request " + a.String() + " for " + marker)
	u.play(w, r, &req, marker, id, f, rng)
}

// replyDeltas returns the stream deltas of the answer to the request with
// marker; joined, they are the text of a JSON answer. Both upstreams send
// the same text, so a client can check its answer whoever served it.
func replyDeltas(marker string) []string {
	rng := rngFor(0, "reply", marker)
	words := []string{"Reply", " to", " " + marker + ":"}
	for range 2 + rng.IntN(7) {
		words = append(words, " "+fillerWords[rng.IntN(len(fillerWords))])
	}
	return words
}

var fillerWords = []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett", "kilo", "lima"}

// preambleEvents is the number of events a stream of the format sends before
// its first content event (OpenAI: the role chunk; Anthropic:
// message_start, content_block_start and ping).
func preambleEvents(f providers.Format) int {
	if f == providers.FormatAnthropic {
		return 3
	}
	return 1
}

// play answers the request with upstream request ID id, as fault f says.
func (u *upstream) play(w http.ResponseWriter, r *http.Request, req *upstreamRequest, marker, id string, f fault, rng *rand.Rand) {
	ctx := r.Context()
	deltas := replyDeltas(marker)
	usage := providertest.Usage{Input: 16, Output: len(deltas)}
	jsonStep, streamStep := u.steps(req, deltas, usage)
	step := jsonStep
	if req.Stream {
		step = streamStep
	}
	idHeader := "X-Request-Id"
	if u.format == providers.FormatAnthropic {
		idHeader = "Request-Id"
	}
	setID := func(s *providertest.Step) {
		s.Header.Del("X-Request-Id")
		s.Header.Del("Request-Id")
		s.Header.Set(idHeader, id)
	}
	setID(&jsonStep)
	setID(&streamStep)

	switch f {
	case faultNone, faultSlow:
		if !req.Stream {
			if f == faultSlow && !u.wait(ctx, time.Duration(20+rng.IntN(130))*time.Millisecond) {
				return
			}
			writeStep(w, step)
			return
		}
		var spacing time.Duration
		if f == faultSlow {
			spacing = time.Duration(5+rng.IntN(35)) * time.Millisecond
		}
		u.stream(w, ctx, step, len(step.Events), spacing)
	case faultStatus5xx:
		statuses := []int{500, 502, 503}
		if u.format == providers.FormatAnthropic {
			statuses = append(statuses, 529)
		}
		e := providertest.Error(u.format, statuses[rng.IntN(len(statuses))], "soak: injected upstream failure")
		setID(&e)
		writeStep(w, e)
	case faultStatus429:
		ras := []string{"0.1", "0.25", "1", "2"}
		e := providertest.RateLimited(u.format, ras[rng.IntN(len(ras))])
		setID(&e)
		writeStep(w, e)
	case faultStatus401:
		e := providertest.Error(u.format, http.StatusUnauthorized, "soak: injected invalid key")
		setID(&e)
		writeStep(w, e)
	case faultHang:
		u.wait(ctx, -1)
	case faultReset:
		resetConn(w)
	case faultTruncCL, faultTruncShort:
		body := jsonStep.Body
		cut := 1 + rng.IntN(len(body)-1)
		h := w.Header()
		copyHeader(h, jsonStep.Header)
		if f == faultTruncCL {
			h.Set("Content-Length", strconv.Itoa(len(body)))
		} else {
			h.Set("Content-Length", strconv.Itoa(cut))
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body[:cut])
		if f == faultTruncCL {
			_ = http.NewResponseController(w).Flush()
			panic(http.ErrAbortHandler)
		}
	case faultWrongType:
		if req.Stream {
			writeStep(w, jsonStep)
		} else {
			u.stream(w, ctx, streamStep, len(streamStep.Events), 0)
		}
	case faultDropBefore:
		k := rng.IntN(preambleEvents(u.format) + 1)
		if u.stream(w, ctx, step, k, 0) && rng.IntN(2) == 0 {
			panic(http.ErrAbortHandler)
		}
	case faultStallBefore:
		if u.stream(w, ctx, step, preambleEvents(u.format), 0) {
			u.wait(ctx, -1)
		}
	case faultErrEventBefore:
		k := rng.IntN(preambleEvents(u.format) + 1)
		step.Events = append(step.Events[:k:k], u.errorEvent(rng))
		u.stream(w, ctx, step, len(step.Events), 0)
	case faultDropAfter, faultEOFAfter, faultStallAfter, faultErrEventAfter:
		p := preambleEvents(u.format)
		// At least one content event, never the terminal one.
		k := p + 1 + rng.IntN(len(step.Events)-p-1)
		if f == faultErrEventAfter {
			step.Events = append(step.Events[:k:k], u.errorEvent(rng))
			k++
		}
		if !u.stream(w, ctx, step, k, 0) {
			return
		}
		switch f {
		case faultDropAfter:
			panic(http.ErrAbortHandler)
		case faultStallAfter:
			u.wait(ctx, -1)
		}
	case faultDropAfterEnd:
		if u.stream(w, ctx, step, len(step.Events), 0) {
			panic(http.ErrAbortHandler)
		}
	}
}

// errorEvent returns an in-stream error event in the upstream's format.
func (u *upstream) errorEvent(rng *rand.Rand) providertest.Event {
	if u.format == providers.FormatAnthropic {
		return providertest.StreamErrorEvent(u.format, []int{500, 529}[rng.IntN(2)], "soak: injected in-stream error")
	}
	return providertest.StreamErrorEvent(u.format, 500, "soak: injected in-stream error")
}

// steps builds the complete JSON answer and the complete stream for req.
func (u *upstream) steps(req *upstreamRequest, deltas []string, usage providertest.Usage) (jsonStep, streamStep providertest.Step) {
	text := strings.Join(deltas, "")
	if u.format == providers.FormatAnthropic {
		return providertest.AnthropicMessage(req.Model, text, usage), providertest.AnthropicStream(req.Model, deltas, usage)
	}
	include := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	return providertest.OpenAIChat(req.Model, text, usage), providertest.OpenAIChatStream(req.Model, deltas, usage, include)
}

// stream writes the headers of step and its first n events, each after
// spacing, flushing each. It reports false if the gateway went away.
func (u *upstream) stream(w http.ResponseWriter, ctx context.Context, step providertest.Step, n int, spacing time.Duration) bool {
	copyHeader(w.Header(), step.Header)
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if rc.Flush() != nil {
		return false
	}
	for _, ev := range step.Events[:n] {
		if spacing > 0 && !u.wait(ctx, spacing) {
			return false
		}
		if _, err := w.Write(ev.Bytes()); err != nil {
			return false
		}
		if rc.Flush() != nil {
			return false
		}
	}
	return true
}

// wait sleeps for d (forever when d < 0) and reports whether it slept the
// whole time: false when the gateway went away or the upstream is closing.
func (u *upstream) wait(ctx context.Context, d time.Duration) bool {
	var timeout <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-timeout:
		return true
	case <-ctx.Done():
		return false
	case <-u.closing:
		return false
	}
}

// writeStep writes a JSON (or empty) answer.
func writeStep(w http.ResponseWriter, s providertest.Step) {
	copyHeader(w.Header(), s.Header)
	if s.Header.Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(s.Body)))
	status := s.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(s.Body)
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = append([]string(nil), vs...)
	}
}

// resetConn takes the connection over and closes it with SO_LINGER 0, so
// the peer gets a TCP RST instead of an orderly end.
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

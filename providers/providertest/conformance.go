package providertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmgate/gateway/providers"
)

// Promptly bounds what the conformance suite expects to happen promptly: Do
// returning after its context is cancelled, a stream event becoming
// readable, a read failing after cancellation. It is generous so that the
// suite is not flaky under the race detector.
const Promptly = 5 * time.Second

// conformanceModel is the model name the suite puts in request bodies.
const conformanceModel = "conformance-model"

// RunConformance checks that the Provider returned by newProvider behaves as
// the providers.Provider contract requires, against a Server speaking
// format. newProvider is called once per subtest with the API root to use
// (a Server's URL, or a DeadURL); it should build the provider with
// defaults, without static credentials in extra headers.
//
// The subtests check:
//   - Identity: Name is non-empty; Surfaces is non-empty, without
//     duplicates, and every surface belongs to format.
//   - JSONRoundTrip, per surface: the upstream receives a POST at
//     "/v1/"+Surface.Path() whose body is req.Body byte for byte, with the
//     key's secret in some header; the Response has the upstream status,
//     headers and the exact, unread body. The same request with the zero
//     Key sends none of the headers that carried the secret.
//   - Streaming, per streaming surface: Do returns once the headers arrive
//     and the first event is readable from Body before the upstream sends
//     the second (the fake holds the second back until then); the whole
//     body arrives byte for byte.
//   - ErrorStatus: 4xx and 5xx answers (and a 429 with Retry-After) are a
//     Response with a nil error and the exact, readable body.
//   - ConnectionRefused: Do fails with an error wrapping
//     providers.ErrNotSent whose text does not contain the secret.
//   - CancelledBeforeSend: with a context cancelled before Do, Do fails
//     with providers.ErrNotSent and the upstream sees nothing.
//   - CancelWhileWaiting: when the context is cancelled after the upstream
//     received the request but before it answered, Do returns promptly
//     with an error that does not wrap providers.ErrNotSent (the request
//     was sent).
//   - CancelMidStream: cancelling the context mid-stream makes Body.Read
//     fail promptly.
//   - TruncatedStream: a connection dropped mid-stream surfaces as a read
//     error after the events sent so far, never as a clean end of stream.
//   - Replay: the same *Request sent twice sends identical bodies, and
//     Do modifies neither the Request nor its Body or Header.
//   - Concurrent: 32 concurrent Do calls sharing one Request all succeed.
func RunConformance(t *testing.T, format providers.Format, newProvider func(t *testing.T, baseURL string) providers.Provider) {
	t.Helper()
	if !format.Valid() {
		t.Fatalf("providertest: RunConformance: unknown format %q", format)
	}
	c := &conformance{format: format, newProvider: newProvider}
	t.Run("Identity", c.identity)
	t.Run("JSONRoundTrip", c.jsonRoundTrip)
	t.Run("Streaming", c.streaming)
	t.Run("ErrorStatus", c.errorStatus)
	t.Run("ConnectionRefused", c.connectionRefused)
	t.Run("CancelledBeforeSend", c.cancelledBeforeSend)
	t.Run("CancelWhileWaiting", c.cancelWhileWaiting)
	t.Run("CancelMidStream", c.cancelMidStream)
	t.Run("TruncatedStream", c.truncatedStream)
	t.Run("Replay", c.replay)
	t.Run("Concurrent", c.concurrent)
}

type conformance struct {
	format      providers.Format
	newProvider func(t *testing.T, baseURL string) providers.Provider
}

// setup starts a Server and builds a provider pointed at it.
func (c *conformance) setup(t *testing.T) (*Server, providers.Provider) {
	t.Helper()
	s := Start(t, c.format)
	p := c.newProvider(t, s.URL)
	if p == nil {
		t.Fatal("newProvider returned nil")
	}
	return s, p
}

func nonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func testKey() providers.Key {
	return providers.Key{ID: "key-conformance", Secret: providers.Secret("sk-conformance-" + nonce())}
}

// requestBody returns a plausible request body for surface.
func requestBody(s providers.Surface, stream bool) []byte {
	text := "conformance " + nonce()
	var b strings.Builder
	switch s {
	case providers.SurfaceChatCompletions:
		fmt.Fprintf(&b, `{"model":%q,"messages":[{"role":"user","content":%q}]`, conformanceModel, text)
		if stream {
			b.WriteString(`,"stream":true,"stream_options":{"include_usage":true}`)
		}
	case providers.SurfaceResponses:
		fmt.Fprintf(&b, `{"model":%q,"input":%q`, conformanceModel, text)
		if stream {
			b.WriteString(`,"stream":true`)
		}
	case providers.SurfaceMessages:
		fmt.Fprintf(&b, `{"model":%q,"max_tokens":64,"messages":[{"role":"user","content":%q}]`, conformanceModel, text)
		if stream {
			b.WriteString(`,"stream":true`)
		}
	default:
		fmt.Fprintf(&b, `{"model":%q,"input":%q`, conformanceModel, text)
	}
	b.WriteString("}")
	return []byte(b.String())
}

func newRequest(s providers.Surface, stream bool) *providers.Request {
	return &providers.Request{
		Surface: s,
		Model:   conformanceModel,
		Body:    requestBody(s, stream),
		Stream:  stream,
		Header: http.Header{
			"X-Conformance-Client": {"1"},
			"Cookie":               {"session=conformance-cookie"},
		},
	}
}

// reply returns a scripted answer for surface.
func reply(s providers.Surface, stream bool) Step {
	u := Usage{Input: 11, Output: 3, CacheRead: 2}
	deltas := []string{"con", "form", "ance"}
	switch s {
	case providers.SurfaceChatCompletions:
		if stream {
			return OpenAIChatStream(conformanceModel, deltas, u, true)
		}
		return OpenAIChat(conformanceModel, "conformance", u)
	case providers.SurfaceResponses:
		if stream {
			return OpenAIResponsesStream(conformanceModel, deltas, u)
		}
		return OpenAIResponses(conformanceModel, "conformance", u)
	case providers.SurfaceEmbeddings:
		return OpenAIEmbeddings(conformanceModel, 1)
	default:
		if stream {
			return AnthropicStream(conformanceModel, deltas, u)
		}
		return AnthropicMessage(conformanceModel, "conformance", u)
	}
}

func requestIDHeader(f providers.Format) string {
	if f == providers.FormatAnthropic {
		return "Request-Id"
	}
	return "X-Request-Id"
}

// doResult is what one call of Provider.Do returned.
type doResult struct {
	resp *providers.Response
	err  error
}

// goDo calls p.Do in a goroutine and sends what it returns on the channel,
// which has room for it, so the goroutine ends even if nobody receives.
func goDo(ctx context.Context, p providers.Provider, req *providers.Request, key providers.Key) <-chan doResult {
	ch := make(chan doResult, 1)
	go func() {
		resp, err := p.Do(ctx, req, key)
		ch <- doResult{resp, err}
	}()
	return ch
}

// doWithin calls p.Do and fails the test if it does not return within d;
// then it cancels the call and waits for it a little longer.
func doWithin(t *testing.T, p providers.Provider, ctx context.Context, req *providers.Request, key providers.Key, d time.Duration) (*providers.Response, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	ch := goDo(ctx, p, req, key)
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case r := <-ch:
		if r.resp != nil {
			// The body outlives this function; cancel when the test ends.
			t.Cleanup(cancel)
		} else {
			cancel()
		}
		return r.resp, r.err
	case <-timer.C:
	}
	cancel()
	select {
	case r := <-ch:
		if r.resp != nil {
			_ = r.resp.Body.Close()
		}
	case <-time.After(d):
	}
	t.Fatalf("Do did not return within %v (it must return once the response headers arrive, leaving the body unread)", d)
	return nil, nil
}

type readResult struct {
	data []byte
	err  error
}

// readWithin runs read in a goroutine and waits up to d for it. On timeout
// it calls unblock and waits up to d again for the read to stop. It reports
// whether the read finished in time.
func readWithin(read func() ([]byte, error), d time.Duration, unblock func()) (readResult, bool) {
	ch := make(chan readResult, 1)
	go func() {
		b, err := read()
		ch <- readResult{b, err}
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case r := <-ch:
		return r, true
	case <-timer.C:
	}
	unblock()
	select {
	case r := <-ch:
		return r, false
	case <-time.After(d):
		return readResult{}, false
	}
}

func readFull(r io.Reader, n int) func() ([]byte, error) {
	return func() ([]byte, error) {
		b := make([]byte, n)
		k, err := io.ReadFull(r, b)
		return b[:k], err
	}
}

func readAll(r io.Reader) func() ([]byte, error) {
	return func() ([]byte, error) { return io.ReadAll(r) }
}

// mustResponse checks a successful Do and reads nothing.
func mustResponse(t *testing.T, resp *providers.Response, err error, key providers.Key) *providers.Response {
	t.Helper()
	if err != nil {
		checkNoSecret(t, err, key)
		t.Fatalf("Do: unexpected error: %v", err)
	}
	if resp == nil || resp.Body == nil {
		t.Fatal("Do returned a nil Response or Body with a nil error")
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func checkNoSecret(t *testing.T, err error, key providers.Key) {
	t.Helper()
	if s := key.Secret.Reveal(); s != "" && err != nil &&
		(strings.Contains(err.Error(), s) || strings.Contains(fmt.Sprintf("%+v", err), s)) {
		t.Errorf("the error text contains the key secret: %q", strings.ReplaceAll(err.Error(), s, "<SECRET>"))
	}
}

func (c *conformance) identity(t *testing.T) {
	_, p := c.setup(t)
	if p.Name() == "" {
		t.Error("Name() is empty")
	}
	surfaces := p.Surfaces()
	if len(surfaces) == 0 {
		t.Fatal("Surfaces() is empty")
	}
	seen := map[providers.Surface]bool{}
	for _, s := range surfaces {
		if s.Format() != c.format {
			t.Errorf("surface %q is not of format %q", s, c.format)
		}
		if seen[s] {
			t.Errorf("surface %q is listed twice", s)
		}
		seen[s] = true
		if !providers.Serves(p, s) {
			t.Errorf("providers.Serves(p, %q) = false", s)
		}
	}
}

func (c *conformance) jsonRoundTrip(t *testing.T) {
	_, p := c.setup(t)
	for _, sf := range p.Surfaces() {
		t.Run(string(sf), func(t *testing.T) {
			s, p := c.setup(t)
			n := nonce()
			step := reply(sf, false)
			step.Header.Set("X-Conformance", n)
			s.Enqueue(step)
			req, key := newRequest(sf, false), testKey()

			resp, err := doWithin(t, p, t.Context(), req, key, 30*time.Second)
			resp = mustResponse(t, resp, err, key)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("StatusCode = %d, want 200", resp.StatusCode)
			}
			if got := resp.Header.Get("X-Conformance"); got != n {
				t.Errorf("response header X-Conformance = %q, want %q", got, n)
			}
			if got := resp.Header.Get(requestIDHeader(c.format)); got != RequestID {
				t.Errorf("response header %s = %q, want %q", requestIDHeader(c.format), got, RequestID)
			}
			r, ok := readWithin(readAll(resp.Body), Promptly, func() { _ = resp.Body.Close() })
			if !ok || r.err != nil {
				t.Fatalf("reading the body: finished in time %v, error %v", ok, r.err)
			}
			if !bytes.Equal(r.data, step.Body) {
				t.Errorf("body = %q, want the upstream's %q", r.data, step.Body)
			}

			recs := s.Requests()
			if len(recs) != 1 {
				t.Fatalf("upstream received %d requests, want 1", len(recs))
			}
			rec := recs[0]
			if rec.Method != http.MethodPost {
				t.Errorf("method = %s, want POST", rec.Method)
			}
			if want := "/v1/" + sf.Path(); rec.Path != want {
				t.Errorf("path = %q, want %q", rec.Path, want)
			}
			if !bytes.Equal(rec.Body, req.Body) {
				t.Errorf("upstream body = %q, want req.Body %q", rec.Body, req.Body)
			}
			secret := key.Secret.Reveal()
			var carriers []string
			for name, vs := range rec.Header {
				for _, v := range vs {
					if strings.Contains(v, secret) {
						carriers = append(carriers, name)
					}
				}
			}
			if len(carriers) == 0 {
				t.Errorf("the key's secret reached the upstream in no header (headers: %v)", slices.Sorted(maps.Keys(rec.Header)))
			}
			if v := rec.Header.Get("Cookie"); v != "" {
				t.Errorf("the client's Cookie header was forwarded: %q", v)
			}

			// The zero Key sends no credential.
			resp, err = doWithin(t, p, t.Context(), req, providers.Key{}, 30*time.Second)
			resp = mustResponse(t, resp, err, key)
			_, _ = io.Copy(io.Discard, resp.Body)
			recs = s.Requests()
			if len(recs) != 2 {
				t.Fatalf("upstream received %d requests, want 2", len(recs))
			}
			for _, name := range carriers {
				if vs := recs[1].Header.Values(name); len(vs) > 0 {
					t.Errorf("with the zero Key, header %s (which carried the key) was sent: %q", name, vs)
				}
			}
			for name, vs := range recs[1].Header {
				for _, v := range vs {
					if strings.Contains(v, secret) {
						t.Errorf("with the zero Key, header %s carried the earlier key's secret", name)
					}
				}
			}
		})
	}
}

// streamSurfaces returns the provider's surfaces that can stream.
func streamSurfaces(p providers.Provider) []providers.Surface {
	var out []providers.Surface
	for _, s := range p.Surfaces() {
		if s.Streams() {
			out = append(out, s)
		}
	}
	return out
}

// setupStream is setup for a test of the provider's first streaming
// surface, which it returns; it skips the test when there is none.
func (c *conformance) setupStream(t *testing.T) (*Server, providers.Provider, providers.Surface) {
	t.Helper()
	_, probe := c.setup(t)
	surfaces := streamSurfaces(probe)
	if len(surfaces) == 0 {
		t.Skip("the provider serves no streaming surface")
	}
	s, p := c.setup(t)
	return s, p, surfaces[0]
}

// gatedStream scripts a stream for surface whose second event waits for
// the returned release function (also called at cleanup).
func gatedStream(t *testing.T, s *Server, sf providers.Surface) (step Step, release func()) {
	step = reply(sf, true)
	if len(step.Events) < 2 {
		t.Fatalf("providertest: stream for %s has fewer than 2 events", sf)
	}
	gate := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	step.Events[1].Wait = gate
	s.Enqueue(step)
	return step, release
}

func (c *conformance) streaming(t *testing.T) {
	_, p := c.setup(t)
	surfaces := streamSurfaces(p)
	if len(surfaces) == 0 {
		t.Skip("the provider serves no streaming surface")
	}
	for _, sf := range surfaces {
		t.Run(string(sf), func(t *testing.T) {
			s, p := c.setup(t)
			step, release := gatedStream(t, s, sf)
			req, key := newRequest(sf, true), testKey()

			resp, err := doWithin(t, p, t.Context(), req, key, Promptly)
			resp = mustResponse(t, resp, err, key)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("StatusCode = %d, want 200", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
				t.Errorf("Content-Type = %q, want text/event-stream", ct)
			}
			first := step.Events[0].Bytes()
			r, ok := readWithin(readFull(resp.Body, len(first)), Promptly, func() { _ = resp.Body.Close() })
			if !ok {
				t.Fatalf("the first event was not readable within %v while the upstream held the second back: the stream is buffered", Promptly)
			}
			if r.err != nil || !bytes.Equal(r.data, first) {
				t.Fatalf("first event = %q (error %v), want %q", r.data, r.err, first)
			}
			release()
			r, ok = readWithin(readAll(resp.Body), Promptly, func() { _ = resp.Body.Close() })
			if !ok || r.err != nil {
				t.Fatalf("reading the rest of the stream: finished in time %v, error %v", ok, r.err)
			}
			if got, want := append(first, r.data...), step.StreamBytes(); !bytes.Equal(got, want) {
				t.Errorf("stream body = %q, want %q", got, want)
			}
			recs := s.Requests()
			if len(recs) != 1 {
				t.Fatalf("upstream received %d requests, want 1", len(recs))
			}
			if want := "/v1/" + sf.Path(); recs[0].Path != want {
				t.Errorf("path = %q, want %q", recs[0].Path, want)
			}
			if !bytes.Equal(recs[0].Body, req.Body) {
				t.Errorf("upstream body = %q, want req.Body %q", recs[0].Body, req.Body)
			}
		})
	}
}

func (c *conformance) errorStatus(t *testing.T) {
	statuses := []int{400, 401, 403, 404, 429, 500, 502, 503}
	if c.format == providers.FormatAnthropic {
		statuses = []int{400, 401, 403, 404, 413, 429, 500, 504, 529}
	}
	for _, status := range statuses {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			s, p := c.setup(t)
			step := Error(c.format, status, fmt.Sprintf("conformance error %d", status))
			if status == http.StatusTooManyRequests {
				step = RateLimited(c.format, "7")
			}
			s.Enqueue(step)
			sf := p.Surfaces()[0]
			req, key := newRequest(sf, false), testKey()
			resp, err := doWithin(t, p, t.Context(), req, key, 30*time.Second)
			resp = mustResponse(t, resp, err, key)
			if resp.StatusCode != status {
				t.Errorf("StatusCode = %d, want %d", resp.StatusCode, status)
			}
			if status == http.StatusTooManyRequests {
				if got := resp.Header.Get("Retry-After"); got != "7" {
					t.Errorf("Retry-After = %q, want %q", got, "7")
				}
			}
			r, ok := readWithin(readAll(resp.Body), Promptly, func() { _ = resp.Body.Close() })
			if !ok || r.err != nil {
				t.Fatalf("reading the error body: finished in time %v, error %v", ok, r.err)
			}
			if !bytes.Equal(r.data, step.Body) {
				t.Errorf("body = %q, want %q", r.data, step.Body)
			}
		})
	}
}

func (c *conformance) connectionRefused(t *testing.T) {
	_, probe := c.setup(t)
	p := c.newProvider(t, DeadURL(t))
	req, key := newRequest(probe.Surfaces()[0], false), testKey()
	resp, err := doWithin(t, p, t.Context(), req, key, 30*time.Second)
	if err == nil {
		_ = resp.Body.Close()
		t.Fatal("Do succeeded against a refused connection")
	}
	if resp != nil {
		t.Error("Do returned both a Response and an error")
	}
	if !errors.Is(err, providers.ErrNotSent) {
		t.Errorf("error does not wrap providers.ErrNotSent: %v", err)
	}
	checkNoSecret(t, err, key)
}

func (c *conformance) cancelledBeforeSend(t *testing.T) {
	s, p := c.setup(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	req, key := newRequest(p.Surfaces()[0], false), testKey()
	resp, err := doWithin(t, p, ctx, req, key, Promptly)
	if err == nil {
		_ = resp.Body.Close()
		t.Fatal("Do succeeded with a cancelled context")
	}
	if !errors.Is(err, providers.ErrNotSent) {
		t.Errorf("error does not wrap providers.ErrNotSent: %v", err)
	}
	if n := s.Count(); n != 0 {
		t.Errorf("upstream received %d requests, want 0", n)
	}
	checkNoSecret(t, err, key)
}

func (c *conformance) cancelWhileWaiting(t *testing.T) {
	s, p := c.setup(t)
	s.Enqueue(Step{Hang: true})
	req, key := newRequest(p.Surfaces()[0], false), testKey()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := goDo(ctx, p, req, key)
	deadline := time.Now().Add(30 * time.Second)
	for s.Count() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if s.Count() == 0 {
		cancel()
		<-ch
		t.Fatal("the upstream never received the request")
	}
	cancel()
	select {
	case r := <-ch:
		if r.err == nil {
			_ = r.resp.Body.Close()
			t.Fatal("Do succeeded although the upstream never answered")
		}
		if errors.Is(r.err, providers.ErrNotSent) {
			t.Errorf("the request reached the upstream, yet the error wraps providers.ErrNotSent: %v", r.err)
		}
		checkNoSecret(t, r.err, key)
	case <-time.After(Promptly):
		t.Fatalf("Do did not return within %v of the context being cancelled", Promptly)
	}
}

func (c *conformance) cancelMidStream(t *testing.T) {
	s, p, sf := c.setupStream(t)
	step, _ := gatedStream(t, s, sf) // the second event never comes
	req, key := newRequest(sf, true), testKey()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	resp, err := doWithin(t, p, ctx, req, key, Promptly)
	resp = mustResponse(t, resp, err, key)
	first := step.Events[0].Bytes()
	r, ok := readWithin(readFull(resp.Body, len(first)), Promptly, func() { _ = resp.Body.Close() })
	if !ok || r.err != nil {
		t.Fatalf("reading the first event: finished in time %v, error %v", ok, r.err)
	}
	cancel()
	r, ok = readWithin(readAll(resp.Body), Promptly, func() { _ = resp.Body.Close() })
	if !ok {
		t.Fatalf("Body.Read did not fail within %v of the context being cancelled", Promptly)
	}
	if r.err == nil {
		t.Errorf("after the context was cancelled the stream ended cleanly (read %q); want an error", r.data)
	}
}

func (c *conformance) truncatedStream(t *testing.T) {
	s, p, sf := c.setupStream(t)
	step := reply(sf, true)
	step.DropAfter = 2
	s.Enqueue(step)
	req, key := newRequest(sf, true), testKey()
	resp, err := doWithin(t, p, t.Context(), req, key, Promptly)
	resp = mustResponse(t, resp, err, key)
	r, ok := readWithin(readAll(resp.Body), Promptly, func() { _ = resp.Body.Close() })
	if !ok {
		t.Fatalf("reading a dropped stream did not end within %v", Promptly)
	}
	if r.err == nil {
		t.Error("a stream whose connection was dropped ended cleanly; want a read error")
	}
	want := append(step.Events[0].Bytes(), step.Events[1].Bytes()...)
	if !bytes.Equal(r.data, want) {
		t.Errorf("read %q before the drop, want %q", r.data, want)
	}
}

func (c *conformance) replay(t *testing.T) {
	s, p := c.setup(t)
	sf := p.Surfaces()[0]
	req, key := newRequest(sf, false), testKey()
	req.Header.Set("Anthropic-Version", "2023-06-01")
	req.Header.Set("Openai-Beta", "conformance=v1")
	before := providers.Request{
		Surface: req.Surface,
		Model:   req.Model,
		Body:    slices.Clone(req.Body),
		Stream:  req.Stream,
		Header:  req.Header.Clone(),
	}
	for i := range 2 {
		resp, err := doWithin(t, p, t.Context(), req, key, 30*time.Second)
		resp = mustResponse(t, resp, err, key)
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			t.Fatalf("call %d: reading the body: %v", i+1, err)
		}
	}
	if !reflect.DeepEqual(*req, before) {
		t.Errorf("Do modified the Request:\n got %+v\nwant %+v", *req, before)
	}
	recs := s.Requests()
	if len(recs) != 2 {
		t.Fatalf("upstream received %d requests, want 2", len(recs))
	}
	for i, rec := range recs {
		if !bytes.Equal(rec.Body, before.Body) {
			t.Errorf("call %d sent body %q, want %q", i+1, rec.Body, before.Body)
		}
	}
	if recs[0].Path != recs[1].Path || recs[0].RawQuery != recs[1].RawQuery {
		t.Errorf("the two calls went to %s?%s and %s?%s", recs[0].Path, recs[0].RawQuery, recs[1].Path, recs[1].RawQuery)
	}
}

func (c *conformance) concurrent(t *testing.T) {
	const n = 32
	s, p := c.setup(t)
	sf := p.Surfaces()[0]
	req, key := newRequest(sf, false), testKey()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp, err := p.Do(ctx, req, key)
			if err != nil {
				errs <- fmt.Errorf("call %d: %w", i, err)
				return
			}
			defer func() { _ = resp.Body.Close() }()
			body, err := io.ReadAll(resp.Body)
			switch {
			case err != nil:
				errs <- fmt.Errorf("call %d: reading the body: %w", i, err)
			case resp.StatusCode != http.StatusOK:
				errs <- fmt.Errorf("call %d: status %d: %s", i, resp.StatusCode, body)
			case !json.Valid(body):
				errs <- fmt.Errorf("call %d: body is not JSON: %q", i, body)
			}
		})
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		checkNoSecret(t, err, key)
		if failed++; failed <= 5 {
			t.Error(err)
		}
	}
	if failed > 5 {
		t.Errorf("... and %d more failed calls", failed-5)
	}
	recs := s.Requests()
	if len(recs) != n {
		t.Fatalf("upstream received %d requests, want %d", len(recs), n)
	}
	for i, rec := range recs {
		if !bytes.Equal(rec.Body, req.Body) {
			t.Errorf("request %d body = %q, want %q", i, rec.Body, req.Body)
		}
	}
}

package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/openai"
	"github.com/llmgate/gateway/providers/providertest"
	"github.com/llmgate/gateway/tokens"
)

// fakeTracer records what the gateway tells it, and marks the contexts it
// returns so that tests can see which context reached what.
type fakeTracer struct {
	mu   sync.Mutex
	reqs []*fakeRequestSpan
}

type traceKey struct{}

type fakeRequestSpan struct {
	t        *fakeTracer
	method   string
	path     string
	attempts []*fakeAttemptSpan
	ended    int
	event    *Event
}

type fakeAttemptSpan struct {
	start    AttemptStart
	started  Attempt // *start.Attempt as it was at StartAttempt
	ended    int
	end      Attempt
	usage    *tokens.Usage
	ctxValue any // the trace value of the context StartAttempt was given
}

func (f *fakeTracer) StartRequest(ctx context.Context, r *http.Request) (context.Context, RequestSpan) {
	s := &fakeRequestSpan{t: f, method: r.Method, path: r.URL.Path}
	f.mu.Lock()
	f.reqs = append(f.reqs, s)
	f.mu.Unlock()
	return context.WithValue(ctx, traceKey{}, "request"), s
}

func (s *fakeRequestSpan) StartAttempt(ctx context.Context, a *AttemptStart) (context.Context, AttemptSpan) {
	as := &fakeAttemptSpan{start: *a, started: *a.Attempt, ctxValue: ctx.Value(traceKey{})}
	a.Header.Set("Traceparent", fmt.Sprintf("00-0af7651916cd43dd8448eb211c80319c-%016x-01", len(s.attempts)))
	s.t.mu.Lock()
	s.attempts = append(s.attempts, as)
	s.t.mu.Unlock()
	return context.WithValue(ctx, traceKey{}, "attempt"), as
}

func (s *fakeRequestSpan) End(e *Event) {
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	s.ended++
	s.event = e
}

func (a *fakeAttemptSpan) End(at *Attempt, u *tokens.Usage) {
	a.ended++
	a.end = *at
	if u != nil {
		cp := *u
		a.usage = &cp
	}
}

// only returns the one request span, ended.
func (f *fakeTracer) only(t *testing.T) *fakeRequestSpan {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Len(t, f.reqs, 1)
	require.Equal(t, 1, f.reqs[0].ended, "End is called once")
	return f.reqs[0]
}

// ctxProvider is a custom provider that records the context value it was
// called with and the trace headers, then panics or answers through next.
type ctxProvider struct {
	providers.Provider
	up     *providertest.Server
	mu     sync.Mutex
	values []any
	trace  []http.Header
	panic  bool
}

// newCtxProvider returns a ctxProvider in front of the built-in OpenAI
// provider, named "custom", calling a fake upstream.
func newCtxProvider(t *testing.T) *ctxProvider {
	up := providertest.Start(t, providers.FormatOpenAI)
	inner, err := openai.New(openai.Config{Name: "custom", BaseURL: up.URL})
	require.NoError(t, err)
	return &ctxProvider{Provider: inner, up: up}
}

func (p *ctxProvider) Do(ctx context.Context, req *providers.Request, key providers.Key) (*providers.Response, error) {
	p.mu.Lock()
	p.values = append(p.values, ctx.Value(traceKey{}))
	p.trace = append(p.trace, req.TraceHeader)
	p.mu.Unlock()
	if p.panic {
		panic("provider bug")
	}
	return p.Provider.Do(ctx, req, key)
}

func TestTracerSpans(t *testing.T) {
	const clientTP = "00-11111111111111111111111111111111-2222222222222222-01"
	t.Run("failover: one attempt span per sent attempt", func(t *testing.T) {
		tr := &fakeTracer{}
		e := newEnv(t, envConfig{opts: []Option{WithTracer(tr)}})
		e.oa.Enqueue(providertest.Error(providers.FormatOpenAI, 500, "boom"),
			providertest.OpenAIChat("gpt-4o", "hi", providertest.Usage{Input: 7, Output: 3}))
		resp, body := e.post(t, "/v1/chat/completions", chatBody("gpt-4o"), "Traceparent", clientTP)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))

		rs := tr.only(t)
		require.Equal(t, http.MethodPost, rs.method)
		require.Equal(t, "/v1/chat/completions", rs.path)
		require.Same(t, e.events.last(t), rs.event, "the sinks' event")
		require.Len(t, rs.attempts, 2)
		for i, as := range rs.attempts {
			require.Equal(t, 1, as.ended, "attempt %d ended once", i)
			require.Equal(t, "openai", as.started.Provider)
			require.Equal(t, "gpt-4o", as.started.Model)
			require.Equal(t, "configured", as.started.KeySource)
			require.False(t, as.started.Start.IsZero())
			require.Equal(t, providers.SurfaceChatCompletions, as.start.Surface)
			require.False(t, as.start.Stream)
			require.Equal(t, "127.0.0.1", as.start.ServerAddress)
			require.NotZero(t, as.start.ServerPort)
			require.Equal(t, "request", as.ctxValue, "the attempt's context derives from the request's")
			require.Equal(t, rs.event.Attempts[i], as.end, "End gets the attempt as recorded")
		}
		require.Equal(t, 500, rs.attempts[0].end.Status)
		require.Equal(t, AttemptStatus, rs.attempts[0].end.Error)
		require.Nil(t, rs.attempts[0].usage, "no usage for a failed attempt")
		require.Equal(t, &tokens.Usage{InputTokens: 7, OutputTokens: 3}, rs.attempts[1].usage)

		reqs := e.oa.Requests()
		require.Len(t, reqs, 2)
		require.Equal(t, "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", reqs[0].Header.Get("Traceparent"))
		require.Equal(t, "00-0af7651916cd43dd8448eb211c80319c-0000000000000001-01", reqs[1].Header.Get("Traceparent"))
	})
	t.Run("error before any attempt", func(t *testing.T) {
		tr := &fakeTracer{}
		e := newEnv(t, envConfig{opts: []Option{WithTracer(tr)}})
		resp, body := e.post(t, "/v1/chat/completions", chatBody("no-such-model-anywhere"))
		require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, string(body))
		rs := tr.only(t)
		require.Empty(t, rs.attempts)
		require.NotNil(t, rs.event.Err)
		require.Equal(t, "model_unknown", rs.event.Err.Code())
	})
	t.Run("no route", func(t *testing.T) {
		tr := &fakeTracer{}
		e := newEnv(t, envConfig{opts: []Option{WithTracer(tr)}})
		resp, _ := e.post(t, "/v2/nothing", "{}")
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
		rs := tr.only(t)
		require.Equal(t, http.StatusNotFound, rs.event.Status)
	})
	t.Run("streaming usage", func(t *testing.T) {
		tr := &fakeTracer{}
		e := newEnv(t, envConfig{opts: []Option{WithTracer(tr)}})
		e.oa.Enqueue(providertest.OpenAIChatStream("gpt-4o", []string{"a", "b"}, providertest.Usage{Input: 4, Output: 2}, true))
		resp, body := e.post(t, "/v1/chat/completions", chatBody("gpt-4o", `"stream":true`))
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		rs := tr.only(t)
		require.Len(t, rs.attempts, 1)
		require.True(t, rs.attempts[0].start.Stream)
		require.Equal(t, &tokens.Usage{InputTokens: 4, OutputTokens: 2}, rs.attempts[0].usage)
	})
	t.Run("panic in a provider", func(t *testing.T) {
		tr := &fakeTracer{}
		impl := newCtxProvider(t)
		impl.panic = true
		gw, err := New(WithTracer(tr), WithLogger(slog.New(slog.DiscardHandler)),
			WithProvider(ProviderConfig{ID: "custom", Provider: impl, Models: []catalogModel{{ID: "m1"}}}))
		require.NoError(t, err)
		defer gw.Close()
		srv := newServer(t, gw)
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(chatBody("custom:m1")))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
		rs := waitEnded(t, tr)
		require.Len(t, rs.attempts, 1)
		require.Equal(t, 1, rs.attempts[0].ended, "the attempt span ends on a panic too")
		require.Equal(t, "internal_error", rs.event.Err.Code())
		require.Equal(t, []any{"attempt"}, impl.values, "the provider is called with the attempt's context")
	})
}

// waitEnded waits until the one request span has ended (the handler may
// still be finishing when the client has its response).
func waitEnded(t *testing.T, tr *fakeTracer) *fakeRequestSpan {
	t.Helper()
	require.Eventually(t, func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return len(tr.reqs) == 1 && tr.reqs[0].ended > 0
	}, 5e9, 5e6)
	return tr.only(t)
}

func TestTraceHeaderForwarding(t *testing.T) {
	const clientTP = "00-11111111111111111111111111111111-2222222222222222-01"
	for _, tc := range []struct {
		name    string
		opts    []Option
		want    string // the upstream's traceparent
		wantHdr bool   // whether the custom provider saw a TraceHeader
	}{
		{name: "no tracer", want: ""},
		{name: "no tracer, allow-listed", opts: []Option{WithForwardHeaders("Traceparent")}, want: ""},
		{name: "tracer", opts: []Option{WithTracer(&fakeTracer{})}, want: "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", wantHdr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envConfig{opts: tc.opts})
			e.oa.Enqueue(providertest.OpenAIChat("gpt-4o", "hi", providertest.Usage{}))
			resp, body := e.post(t, "/v1/chat/completions", chatBody("gpt-4o"), "Traceparent", clientTP)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			reqs := e.oa.Requests()
			require.Len(t, reqs, 1)
			require.Equal(t, tc.want, reqs[0].Header.Get("Traceparent"))
		})
	}
	t.Run("custom provider", func(t *testing.T) {
		for _, tc := range []struct {
			name      string
			opts      []Option
			wantTrace bool
		}{{"no tracer", nil, false}, {"tracer", []Option{WithTracer(&fakeTracer{})}, true}} {
			t.Run(tc.name, func(t *testing.T) {
				impl := newCtxProvider(t)
				impl.up.Enqueue(providertest.OpenAIChat("m1", "hi", providertest.Usage{}))
				gw, err := New(append([]Option{WithProvider(ProviderConfig{ID: "custom", Provider: impl, Models: []catalogModel{{ID: "m1"}}})}, tc.opts...)...)
				require.NoError(t, err)
				defer gw.Close()
				srv := newServer(t, gw)
				req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(chatBody("custom:m1")))
				require.NoError(t, err)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				resp.Body.Close()
				require.Equal(t, http.StatusOK, resp.StatusCode)
				require.Len(t, impl.trace, 1)
				if tc.wantTrace {
					require.NotEmpty(t, impl.trace[0].Get("Traceparent"))
					require.Equal(t, "attempt", impl.values[0])
				} else {
					require.Nil(t, impl.trace[0])
					require.Nil(t, impl.values[0])
				}
			})
		}
	})
}

func TestWithTracerNil(t *testing.T) {
	_, err := New(WithTracer(nil))
	require.ErrorContains(t, err, "WithTracer")
}

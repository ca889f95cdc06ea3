package oteltracing_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
	"github.com/llmgate/gateway/tracing/oteltracing"
)

// The client's span: the gateway's request span must be its child.
const (
	clientTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpanID  = "00f067aa0ba902b7"
	clientTP      = "00-" + clientTraceID + "-" + clientSpanID + "-01"
)

// secrets are every credential of the test gateway and its clients: no
// span attribute or event may contain one.
var secrets = []string{"sk-oa-secret-1", "sk-oa-secret-2", "sk-an-secret-1", "client-secret-key"}

type env struct {
	exp *tracetest.InMemoryExporter
	srv *httptest.Server
	oa  *providertest.Server
	an  *providertest.Server
}

// newEnv starts a gateway traced into an in-memory exporter, in front of
// a fake OpenAI upstream (two keys) and a fake Anthropic upstream.
func newEnv(t *testing.T, o oteltracing.Options) *env {
	t.Helper()
	e := &env{exp: tracetest.NewInMemoryExporter(), oa: providertest.Start(t, providers.FormatOpenAI),
		an: providertest.Start(t, providers.FormatAnthropic)}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(e.exp), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	gw, err := gateway.New(
		gateway.WithProvider(gateway.ProviderConfig{ID: "openai", BaseURL: e.oa.URL,
			Keys: []gateway.ProviderKey{{ID: "oa-1", Value: "sk-oa-secret-1"}, {ID: "oa-2", Value: "sk-oa-secret-2"}}}),
		gateway.WithProvider(gateway.ProviderConfig{ID: "anthropic", BaseURL: e.an.URL,
			Keys: []gateway.ProviderKey{{ID: "an-1", Value: "sk-an-secret-1"}}}),
		gateway.WithTracer(oteltracing.New(tp, o)),
		gateway.WithErrorDetail(true),
	)
	require.NoError(t, err)
	e.srv = httptest.NewServer(gw)
	t.Cleanup(func() {
		e.srv.Close()
		_ = gw.Close()
	})
	return e
}

// post sends a request with the client's credential and the extra
// headers (name, value pairs), and returns the response with its body
// read.
func (e *env) post(t *testing.T, path, body string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer client-secret-key")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// spans waits for the request's span (ended after the response) and
// returns it with the attempt spans, in the order they started.
func (e *env) spans(t *testing.T) (tracetest.SpanStub, []tracetest.SpanStub) {
	t.Helper()
	var req tracetest.SpanStub
	require.Eventually(t, func() bool {
		for _, s := range e.exp.GetSpans() {
			if s.SpanKind == trace.SpanKindServer {
				req = s
				return true
			}
		}
		return false
	}, 5*time.Second, 2*time.Millisecond, "no request span")
	var attempts []tracetest.SpanStub
	for _, s := range e.exp.GetSpans() {
		if s.SpanKind == trace.SpanKindClient {
			attempts = append(attempts, s)
		}
	}
	slices.SortFunc(attempts, func(a, b tracetest.SpanStub) int { return a.StartTime.Compare(b.StartTime) })
	requireNoSecrets(t, e.exp.GetSpans())
	return req, attempts
}

// requireNoSecrets checks every attribute of every span and span event.
func requireNoSecrets(t *testing.T, spans tracetest.SpanStubs) {
	t.Helper()
	for _, s := range spans {
		kvs := slices.Clone(s.Attributes)
		for _, ev := range s.Events {
			kvs = append(kvs, ev.Attributes...)
		}
		for _, kv := range kvs {
			for _, secret := range secrets {
				require.NotContains(t, kv.Value.Emit(), secret, "span %q attribute %s", s.Name, kv.Key)
			}
		}
		for _, secret := range secrets {
			require.NotContains(t, s.Status.Description, secret)
		}
	}
}

// attrs returns a span's attributes by key.
func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value, len(s.Attributes))
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

// requireAttrs checks the attributes want (string, int, int64 or bool
// values) and that the keys in absent are not set.
func requireAttrs(t *testing.T, s tracetest.SpanStub, want map[string]any, absent ...string) {
	t.Helper()
	got := attrs(s)
	for k, v := range want {
		a, ok := got[attribute.Key(k)]
		require.True(t, ok, "span %q has no %s", s.Name, k)
		switch v := v.(type) {
		case string:
			require.Equal(t, v, a.AsString(), k)
		case int:
			require.Equal(t, int64(v), a.AsInt64(), k)
		case bool:
			require.Equal(t, v, a.AsBool(), k)
		default:
			t.Fatalf("bad want type %T", v)
		}
	}
	for _, k := range absent {
		_, ok := got[attribute.Key(k)]
		require.False(t, ok, "span %q has %s", s.Name, k)
	}
}

// upstreamParent returns the span context in the traceparent an upstream
// received.
func upstreamParent(t *testing.T, r providertest.Recorded) trace.SpanContext {
	t.Helper()
	require.NotEmpty(t, r.Header.Get("Traceparent"), "the upstream received no traceparent")
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(r.Header))
	sc := trace.SpanContextFromContext(ctx)
	require.True(t, sc.IsValid())
	return sc
}

func TestFailoverSpans(t *testing.T) {
	e := newEnv(t, oteltracing.Options{})
	e.oa.Enqueue(providertest.Error(providers.FormatOpenAI, 500, "boom"),
		providertest.OpenAIChat("gpt-4o", "hi", providertest.Usage{Input: 11, Output: 5}))
	resp, body := e.post(t, "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}`,
		"Traceparent", clientTP)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	req, attempts := e.spans(t)

	require.Equal(t, "chat gpt-4o", req.Name)
	require.Equal(t, clientTraceID, req.SpanContext.TraceID().String(), "the client's trace")
	require.Equal(t, clientSpanID, req.Parent.SpanID().String(), "the client's span is the parent")
	require.True(t, req.Parent.IsRemote())
	require.Equal(t, codes.Unset, req.Status.Code)
	requireAttrs(t, req, map[string]any{
		"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o",
		"gen_ai.provider.name": "openai", "gen_ai.request.stream": false,
		"gen_ai.usage.input_tokens": 11, "gen_ai.usage.output_tokens": 5,
		"http.request.method": "POST", "http.route": "/v1/chat/completions", "url.path": "/v1/chat/completions",
		"http.response.status_code": 200, "llmgate.request_id": resp.Header.Get(gateway.HeaderRequestID),
		"llmgate.attempts": 2, "llmgate.served_by": "openai:gpt-4o",
	}, "error.type", "gen_ai.usage.cache_read.input_tokens")

	require.Len(t, attempts, 2)
	for i, a := range attempts {
		require.Equal(t, "chat gpt-4o", a.Name)
		require.Equal(t, req.SpanContext.TraceID(), a.SpanContext.TraceID())
		require.Equal(t, req.SpanContext.SpanID(), a.Parent.SpanID(), "attempt %d is a child of the request's span", i)
		requireAttrs(t, a, map[string]any{"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
			"gen_ai.request.model": "gpt-4o", "server.address": "127.0.0.1", "llmgate.key_source": "configured",
			"llmgate.key_id": "oa-" + string(rune('1'+i)), "llmgate.translated": false})
	}
	requireAttrs(t, attempts[0], map[string]any{"http.response.status_code": 500, "error.type": "500"},
		"gen_ai.usage.input_tokens", "gen_ai.response.model")
	require.Equal(t, codes.Error, attempts[0].Status.Code)
	require.Contains(t, attempts[0].Status.Description, "boom")
	requireAttrs(t, attempts[1], map[string]any{"http.response.status_code": 200, "gen_ai.response.model": "gpt-4o",
		"gen_ai.usage.input_tokens": 11, "gen_ai.usage.output_tokens": 5}, "error.type")
	require.Equal(t, codes.Unset, attempts[1].Status.Code)

	reqs := e.oa.Requests()
	require.Len(t, reqs, 2)
	for i, r := range reqs {
		sc := upstreamParent(t, r)
		require.Equal(t, clientTraceID, sc.TraceID().String(), "upstream %d sees the client's trace", i)
		require.Equal(t, attempts[i].SpanContext.SpanID(), sc.SpanID(), "upstream %d sees its attempt's span as parent", i)
		require.True(t, sc.IsSampled())
	}
}

func TestStreamSpans(t *testing.T) {
	e := newEnv(t, oteltracing.Options{})
	e.oa.Enqueue(providertest.OpenAIChatStream("gpt-4o", []string{"Hel", "lo"}, providertest.Usage{Input: 8, Output: 2}, true))
	resp, body := e.post(t, "/v1/chat/completions",
		`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"Hi"}]}`, "Traceparent", clientTP)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Contains(t, body, "[DONE]")
	req, attempts := e.spans(t)
	requireAttrs(t, req, map[string]any{"gen_ai.request.stream": true, "gen_ai.usage.input_tokens": 8,
		"gen_ai.usage.output_tokens": 2, "llmgate.attempts": 1}, "error.type")
	require.Len(t, attempts, 1)
	requireAttrs(t, attempts[0], map[string]any{"gen_ai.request.stream": true, "gen_ai.usage.output_tokens": 2,
		"http.response.status_code": 200})
	require.Equal(t, attempts[0].SpanContext.SpanID(), upstreamParent(t, e.oa.Requests()[0]).SpanID())
}

func TestAnthropicSpans(t *testing.T) {
	e := newEnv(t, oteltracing.Options{})
	e.an.Enqueue(providertest.AnthropicMessage("claude-sonnet-4-5", "hi", providertest.Usage{Input: 9, Output: 4, CacheRead: 3}))
	resp, body := e.post(t, "/v1/messages",
		`{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"Hi"}]}`,
		"Traceparent", clientTP, "X-Api-Key", "client-secret-key")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	req, attempts := e.spans(t)
	require.Equal(t, "chat claude-sonnet-4-5", req.Name)
	require.Equal(t, clientSpanID, req.Parent.SpanID().String())
	requireAttrs(t, req, map[string]any{"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
		"http.route": "/v1/messages", "gen_ai.usage.cache_read.input_tokens": 3})
	require.Len(t, attempts, 1)
	requireAttrs(t, attempts[0], map[string]any{"gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-sonnet-4-5"})
	reqs := e.an.Requests()
	require.Len(t, reqs, 1)
	sc := upstreamParent(t, reqs[0])
	require.Equal(t, clientTraceID, sc.TraceID().String())
	require.Equal(t, attempts[0].SpanContext.SpanID(), sc.SpanID())
}

func TestErrorSpans(t *testing.T) {
	t.Run("unknown model", func(t *testing.T) {
		e := newEnv(t, oteltracing.Options{})
		resp, body := e.post(t, "/v1/chat/completions", `{"model":"no-such-model","messages":[]}`, "Traceparent", clientTP)
		require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, body)
		req, attempts := e.spans(t)
		require.Empty(t, attempts)
		require.Equal(t, "chat no-such-model", req.Name)
		require.Equal(t, codes.Error, req.Status.Code)
		requireAttrs(t, req, map[string]any{"error.type": "model_unknown", "http.response.status_code": 422,
			"llmgate.attempts": 0}, "gen_ai.provider.name", "gen_ai.response.model")
	})
	t.Run("all providers failed", func(t *testing.T) {
		e := newEnv(t, oteltracing.Options{})
		e.oa.Enqueue(providertest.Error(providers.FormatOpenAI, 503, "down"), providertest.Error(providers.FormatOpenAI, 429, "slow down"))
		resp, body := e.post(t, "/v1/chat/completions", `{"model":"gpt-4o","messages":[]}`)
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, body)
		req, attempts := e.spans(t)
		require.False(t, req.Parent.IsValid(), "no client span: a root")
		requireAttrs(t, req, map[string]any{"error.type": "all_providers_failed", "llmgate.attempts": 2})
		require.Len(t, attempts, 2)
		requireAttrs(t, attempts[0], map[string]any{"error.type": "503"})
		requireAttrs(t, attempts[1], map[string]any{"error.type": "429"})
		for i, r := range e.oa.Requests() {
			sc := upstreamParent(t, r)
			require.Equal(t, req.SpanContext.TraceID(), sc.TraceID(), "the gateway's trace")
			require.Equal(t, attempts[i].SpanContext.SpanID(), sc.SpanID())
		}
	})
	t.Run("no route", func(t *testing.T) {
		e := newEnv(t, oteltracing.Options{})
		resp, _ := e.post(t, "/v1/nothing", `{}`)
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
		req, _ := e.spans(t)
		require.Equal(t, "POST", req.Name)
		requireAttrs(t, req, map[string]any{"error.type": "not_found", "url.path": "/v1/nothing"},
			"http.route", "gen_ai.operation.name")
	})
	t.Run("model list", func(t *testing.T) {
		e := newEnv(t, oteltracing.Options{})
		resp, err := http.Get(e.srv.URL + "/v1/models")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		req, _ := e.spans(t)
		require.Equal(t, "GET /v1/models", req.Name)
		requireAttrs(t, req, map[string]any{"http.route": "/v1/models", "http.response.status_code": 200}, "error.type")
	})
}

func TestSkippedCandidateEvents(t *testing.T) {
	// n > 1 cannot be translated to Anthropic: its candidate is skipped.
	body := `{"model":"claude-sonnet-4-5","models":["gpt-4o"],"n":2,"messages":[{"role":"user","content":"Hi"}]}`
	for _, tc := range []struct {
		name string
		omit bool
	}{{"recorded", false}, {"omitted", true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, oteltracing.Options{OmitSkipped: tc.omit})
			e.oa.Enqueue(providertest.OpenAIChat("gpt-4o", "hi", providertest.Usage{}))
			resp, out := e.post(t, "/v1/chat/completions", body)
			require.Equal(t, http.StatusOK, resp.StatusCode, out)
			req, attempts := e.spans(t)
			require.Len(t, attempts, 1)
			require.Equal(t, "chat claude-sonnet-4-5", req.Name, "named after the model the client asked for")
			if tc.omit {
				require.Empty(t, req.Events)
				return
			}
			require.Len(t, req.Events, 1)
			ev := req.Events[0]
			require.Equal(t, "llmgate.candidate_skipped", ev.Name)
			got := map[attribute.Key]string{}
			for _, kv := range ev.Attributes {
				got[kv.Key] = kv.Value.Emit()
			}
			require.Equal(t, "anthropic", got["gen_ai.provider.name"])
			require.Equal(t, "claude-sonnet-4-5", got["gen_ai.request.model"])
			require.Equal(t, "translation_refused", got["llmgate.skip.reason"])
			require.NotEmpty(t, got["llmgate.skip.detail"])
		})
	}
}

func TestPublicEndpoint(t *testing.T) {
	e := newEnv(t, oteltracing.Options{PublicEndpoint: true})
	e.oa.Enqueue(providertest.OpenAIChat("gpt-4o", "hi", providertest.Usage{}))
	resp, body := e.post(t, "/v1/chat/completions", `{"model":"gpt-4o","messages":[]}`, "Traceparent", clientTP)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	req, attempts := e.spans(t)
	require.False(t, req.Parent.IsValid(), "a new root")
	require.NotEqual(t, clientTraceID, req.SpanContext.TraceID().String())
	require.Len(t, req.Links, 1)
	require.Equal(t, clientSpanID, req.Links[0].SpanContext.SpanID().String(), "linked to the client's span")
	require.Len(t, attempts, 1)
	sc := upstreamParent(t, e.oa.Requests()[0])
	require.Equal(t, req.SpanContext.TraceID(), sc.TraceID())
}

func TestPropagatorOption(t *testing.T) {
	// The default, Trace Context alone: the client's baggage stays at the
	// gateway.
	e := newEnv(t, oteltracing.Options{})
	e.oa.Enqueue(providertest.OpenAIChat("gpt-4o", "hi", providertest.Usage{}))
	resp, body := e.post(t, "/v1/chat/completions", `{"model":"gpt-4o","messages":[]}`, "Traceparent", clientTP, "Baggage", "user=alice")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	_, _ = e.spans(t)
	r := e.oa.Requests()[0]
	require.Equal(t, clientTraceID, upstreamParent(t, r).TraceID().String())
	require.Empty(t, r.Header.Get("Baggage"))

	// With Baggage in the propagator it is sent on.
	e = newEnv(t, oteltracing.Options{Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})})
	e.oa.Enqueue(providertest.OpenAIChat("gpt-4o", "hi", providertest.Usage{}))
	resp, body = e.post(t, "/v1/chat/completions", `{"model":"gpt-4o","messages":[]}`, "Traceparent", clientTP, "Baggage", "user=alice")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Equal(t, clientTraceID, upstreamParent(t, e.oa.Requests()[0]).TraceID().String())
	require.Equal(t, "user=alice", e.oa.Requests()[0].Header.Get("Baggage"))
}

func TestNilProviderPropagates(t *testing.T) {
	oa := providertest.Start(t, providers.FormatOpenAI)
	oa.Enqueue(providertest.OpenAIChat("gpt-4o", "hi", providertest.Usage{}))
	gw, err := gateway.New(gateway.WithProvider(gateway.ProviderConfig{ID: "openai", BaseURL: oa.URL, Keys: []gateway.ProviderKey{{Value: "sk-x"}}}),
		gateway.WithTracer(oteltracing.New(nil, oteltracing.Options{})))
	require.NoError(t, err)
	defer gw.Close()
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o","messages":[]}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Traceparent", clientTP)
	gw.ServeHTTP(w, r)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	sc := upstreamParent(t, oa.Requests()[0])
	require.Equal(t, clientTraceID, sc.TraceID().String(), "the client's context goes on without a recording span")
	require.Equal(t, clientSpanID, sc.SpanID().String())
}

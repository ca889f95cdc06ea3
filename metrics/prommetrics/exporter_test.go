package prommetrics

import (
	"bufio"
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

// env is a gateway with an exporter, in front of a fake OpenAI and a fake
// Anthropic upstream, with the exporter registered and served by promhttp.
type env struct {
	gw      *gateway.Gateway
	exp     *Exporter
	reg     *prometheus.Registry
	srv     *httptest.Server // the gateway
	metrics *httptest.Server // promhttp
	oa, an  *providertest.Server
	events  *eventWaiter
}

// eventWaiter lets a test wait for the exporter to have seen a request's
// event: events are emitted just after the client has its response.
type eventWaiter struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (w *eventWaiter) HandleEvent(_ context.Context, ev *gateway.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen[ev.RequestID] = true
}

func (w *eventWaiter) wait(t *testing.T, id string) {
	t.Helper()
	require.Eventually(t, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.seen[id]
	}, 5*time.Second, time.Millisecond, "no event for %s", id)
}

func newEnv(t *testing.T, opts ...gateway.Option) *env {
	t.Helper()
	e := &env{oa: providertest.Start(t, providers.FormatOpenAI), an: providertest.Start(t, providers.FormatAnthropic),
		events: &eventWaiter{seen: map[string]bool{}}}
	exp, err := New(Options{})
	require.NoError(t, err)
	e.exp = exp
	gw, err := gateway.New(append([]gateway.Option{
		gateway.WithProvider(gateway.ProviderConfig{ID: "openai", BaseURL: e.oa.URL,
			Keys: []gateway.ProviderKey{{Value: "sk-oa-1"}, {Value: "sk-oa-2"}}}),
		gateway.WithProvider(gateway.ProviderConfig{ID: "anthropic", BaseURL: e.an.URL,
			Keys: []gateway.ProviderKey{{ID: "main", Value: "sk-an-1"}}}),
		gateway.WithOnlyConfiguredProviders(true),
		gateway.WithKeyCooldowns(time.Minute, time.Minute, time.Minute),
		gateway.WithEventSink(exp),
		gateway.WithEventSink(e.events), // after exp: when it has seen an event, so has exp
	}, opts...)...)
	require.NoError(t, err)
	exp.Bind(gw)
	e.gw = gw
	e.reg = prometheus.NewPedanticRegistry()
	require.NoError(t, e.reg.Register(exp))
	e.srv = httptest.NewServer(gw)
	e.metrics = httptest.NewServer(promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{}))
	t.Cleanup(func() {
		e.metrics.Close()
		e.srv.Close()
		_ = gw.Close()
	})
	return e
}

// post sends a request and waits for its event.
func (e *env) post(t *testing.T, path, body string) int {
	t.Helper()
	resp, err := http.Post(e.srv.URL+path, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	e.events.wait(t, resp.Header.Get(gateway.HeaderRequestID))
	return resp.StatusCode
}

// scrape fetches /metrics over HTTP and parses it.
func (e *env) scrape(t *testing.T) scraped {
	t.Helper()
	resp, err := http.Get(e.metrics.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

type scraped map[string]*dto.MetricFamily

// find returns the metric of family name whose labels include want, or nil.
func (s scraped) find(name string, want map[string]string) *dto.Metric {
	f := s[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

// value returns the value of a counter or gauge, or the sample count of a
// histogram; NaN when absent.
func (s scraped) value(name string, labels ...string) float64 {
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	m := s.find(name, want)
	switch {
	case m == nil:
		return math.NaN()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return math.NaN()
}

// sum returns the sample sum of a histogram; NaN when absent.
func (s scraped) sum(name string, labels ...string) float64 {
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	if m := s.find(name, want); m != nil && m.Histogram != nil {
		return m.Histogram.GetSampleSum()
	}
	return math.NaN()
}

func chat(model string, extra ...string) string {
	s := `{"model":"` + model + `","messages":[{"role":"user","content":"Hi"}]`
	for _, x := range extra {
		s += "," + x
	}
	return s + "}"
}

func messages(model string, extra ...string) string {
	s := `{"model":"` + model + `","max_tokens":64,"messages":[{"role":"user","content":"Hi"}]`
	for _, x := range extra {
		s += "," + x
	}
	return s + "}"
}

func TestScrapeAfterTraffic(t *testing.T) {
	e := newEnv(t)
	oa := providers.FormatOpenAI

	// 1. A JSON answer with usage.
	e.oa.Enqueue(providertest.OpenAIChat("gpt-4o-mini", "hello", providertest.Usage{Input: 1000, Output: 200}))
	require.Equal(t, http.StatusOK, e.post(t, "/v1/chat/completions", chat("openai:gpt-4o-mini")))
	// 2. A 500 on the first key, then an answer on the second: a failover.
	e.oa.Enqueue(providertest.Error(oa, http.StatusInternalServerError, "boom"),
		providertest.OpenAIChat("gpt-4o-mini", "hello", providertest.Usage{Input: 10, Output: 2}))
	require.Equal(t, http.StatusOK, e.post(t, "/v1/chat/completions", chat("openai:gpt-4o-mini")))
	// 3. A 429 cools the first key down for the model; the second answers.
	e.oa.Enqueue(providertest.RateLimited(oa, "60"),
		providertest.OpenAIChat("gpt-4o-mini", "hello", providertest.Usage{Input: 10, Output: 2}))
	require.Equal(t, http.StatusOK, e.post(t, "/v1/chat/completions", chat("openai:gpt-4o-mini")))
	// 4. Next time the cooled key is skipped.
	e.oa.Enqueue(providertest.OpenAIChat("gpt-4o-mini", "hello", providertest.Usage{Input: 10, Output: 2}))
	require.Equal(t, http.StatusOK, e.post(t, "/v1/chat/completions", chat("openai:gpt-4o-mini")))
	// 5. A stream on Anthropic.
	e.an.Enqueue(providertest.AnthropicStream("claude-haiku-4-5", []string{"a", "b"}, providertest.Usage{Input: 30, Output: 4}))
	require.Equal(t, http.StatusOK, e.post(t, "/v1/messages", messages("anthropic:claude-haiku-4-5", `"stream":true`)))
	// 6. A model the catalog does not know, passed through.
	e.oa.Enqueue(providertest.OpenAIChat("ft:my-model", "hello", providertest.Usage{Input: 5, Output: 1}))
	require.Equal(t, http.StatusOK, e.post(t, "/v1/chat/completions", chat("openai:ft:my-model")))
	// 7. Every candidate fails.
	e.an.Enqueue(providertest.Error(providers.FormatAnthropic, http.StatusServiceUnavailable, "overloaded"))
	require.Equal(t, http.StatusServiceUnavailable, e.post(t, "/v1/messages", messages("anthropic:claude-haiku-4-5")))
	// 8. A model list and a request the gateway refuses before planning.
	resp, err := http.Get(e.srv.URL + "/v1/models")
	require.NoError(t, err)
	resp.Body.Close()
	e.events.wait(t, resp.Header.Get(gateway.HeaderRequestID))
	require.Equal(t, http.StatusBadRequest, e.post(t, "/v1/chat/completions", `{"model":`))

	s := e.scrape(t)
	g := func(name string, labels ...string) float64 { return s.value(name, labels...) }

	t.Run("requests", func(t *testing.T) {
		require.Equal(t, 7.0, g("llmgate_requests_total", "status", "200", "code", ""))
		require.Equal(t, 1.0, g("llmgate_requests_total", "status", "503", "code", "all_providers_failed"))
		require.Equal(t, 1.0, g("llmgate_requests_total", "status", "400", "code", "invalid_json"))
		// Every API request but the model list has its overhead observed.
		require.Equal(t, 8.0, g("llmgate_gateway_overhead_seconds"))
	})
	t.Run("attempts and failovers", func(t *testing.T) {
		mini := []string{"provider", "openai", "model", "gpt-4o-mini"}
		require.Equal(t, 4.0, g("llmgate_attempts_total", append(mini, "result", "ok")...))
		require.Equal(t, 2.0, g("llmgate_attempts_total", append(mini, "result", "http_status")...))
		require.Equal(t, 2.0, g("llmgate_failovers_total", mini...))
		require.Equal(t, 1.0, g("llmgate_attempts_skipped_total", append(mini, "reason", "key_cooldown")...))
		require.Equal(t, 1.0, g("llmgate_attempts_total", "provider", "anthropic", "model", "claude-haiku-4-5", "result", "ok"))
		require.Equal(t, 1.0, g("llmgate_attempts_total", "provider", "anthropic", "model", "claude-haiku-4-5", "result", "http_status"))
		require.True(t, math.IsNaN(g("llmgate_failovers_total", "provider", "anthropic")), "a last failed attempt is no failover")
		require.Equal(t, 1.0, g("llmgate_attempts_total", "provider", "openai", "model", Other, "result", "ok"))

		op := []string{"gen_ai_operation_name", "chat", "gen_ai_provider_name", "openai", "gen_ai_request_model", "gpt-4o-mini"}
		require.Equal(t, 4.0, g("gen_ai_client_operation_duration_seconds", append(op, "error_type", "")...))
		require.Equal(t, 1.0, g("gen_ai_client_operation_duration_seconds", append(op, "error_type", "500")...))
		require.Equal(t, 1.0, g("gen_ai_client_operation_duration_seconds", append(op, "error_type", "429")...))
	})
	t.Run("served requests", func(t *testing.T) {
		srv := []string{"gen_ai_operation_name", "chat", "gen_ai_provider_name", "openai", "gen_ai_response_model", "gpt-4o-mini"}
		require.Equal(t, 4.0, g("gen_ai_server_request_duration_seconds", append(srv, "error_type", "")...))
		require.Equal(t, 1.0, g("gen_ai_server_request_duration_seconds",
			"gen_ai_provider_name", "", "gen_ai_response_model", "", "error_type", "all_providers_failed"))
		haiku := []string{"gen_ai_operation_name", "chat", "gen_ai_provider_name", "anthropic", "gen_ai_response_model", "claude-haiku-4-5"}
		require.Equal(t, 1.0, g("gen_ai_server_time_to_first_token_seconds", haiku...))
		require.True(t, math.IsNaN(g("gen_ai_server_time_to_first_token_seconds", srv...)), "JSON answers have no time to first token")
	})
	t.Run("tokens and cost", func(t *testing.T) {
		in := []string{"gen_ai_provider_name", "openai", "gen_ai_request_model", "gpt-4o-mini", "gen_ai_token_type", "input"}
		out := []string{"gen_ai_provider_name", "openai", "gen_ai_request_model", "gpt-4o-mini", "gen_ai_token_type", "output"}
		require.Equal(t, 4.0, g("gen_ai_client_token_usage", in...))
		require.Equal(t, 1030.0, s.sum("gen_ai_client_token_usage", in...))
		require.Equal(t, 206.0, s.sum("gen_ai_client_token_usage", out...))
		require.Equal(t, 30.0, s.sum("gen_ai_client_token_usage", "gen_ai_request_model", "claude-haiku-4-5", "gen_ai_token_type", "input"))

		p, ok := e.gw.Catalog().Provider("openai")
		require.True(t, ok)
		m, ok := p.Model("gpt-4o-mini")
		require.True(t, ok)
		require.False(t, m.Pricing.IsZero())
		want := float64(1030*m.Pricing.Input+206*m.Pricing.Output) / 1e12
		require.InEpsilon(t, want, g("llmgate_cost_usd_total", "provider", "openai", "model", "gpt-4o-mini"), 1e-9)
		require.True(t, math.IsNaN(g("llmgate_cost_usd_total", "provider", "openai", "model", Other)), "an unknown model has no price")
	})
	t.Run("keys", func(t *testing.T) {
		require.Equal(t, 2.0, g("llmgate_provider_keys", "provider", "openai"))
		require.Equal(t, 1.0, g("llmgate_provider_keys", "provider", "anthropic"))
		require.Equal(t, 1.0, g("llmgate_key_cooldowns", "provider", "openai", "scope", "model"))
		require.Equal(t, 0.0, g("llmgate_key_cooldowns", "provider", "openai", "scope", "key"))
		require.Equal(t, 0.0, g("llmgate_key_cooldowns", "provider", "anthropic", "scope", "model"))
	})
	t.Run("recorder", func(t *testing.T) {
		mini := []string{"provider", "openai", "model", "gpt-4o-mini"}
		require.Equal(t, 6.0, g("llmgate_upstream_window_requests", mini...))
		require.InDelta(t, 2.0/6, g("llmgate_upstream_window_error_ratio", mini...), 1e-9)
		require.Greater(t, g("llmgate_upstream_window_latency_p95_seconds", mini...), 0.0)
		require.Equal(t, 0.0, g("llmgate_upstream_inflight", mini...))
		require.Equal(t, 0.0, g("llmgate_upstream_inflight", "provider", "openai", "model", Other))
		require.True(t, math.IsNaN(g("llmgate_upstream_window_requests", "provider", "openai", "model", Other)),
			"models without labels of their own have no window figures")
		require.InDelta(t, 0.5, g("llmgate_key_upstream_window_error_ratio", "provider", "anthropic", "key_id", "main"), 1e-9)
		require.Equal(t, 0.0, g("llmgate_inflight_requests"))
		require.Equal(t, 0.0, g("llmgate_inflight_streams"))
	})
	t.Run("lint", func(t *testing.T) {
		problems, err := testutil.CollectAndLint(e.exp)
		require.NoError(t, err)
		require.Empty(t, problems)
	})
}

func TestScrapeDuringStream(t *testing.T) {
	e := newEnv(t)
	gate := make(chan struct{})
	step := providertest.AnthropicStream("claude-haiku-4-5", []string{"a", "b"}, providertest.Usage{Input: 3, Output: 2})
	step.Events[len(step.Events)-1].Wait = gate
	e.an.Enqueue(step)
	resp, err := http.Post(e.srv.URL+"/v1/messages", "application/json", strings.NewReader(messages("anthropic:claude-haiku-4-5", `"stream":true`)))
	require.NoError(t, err)
	defer resp.Body.Close()
	_, err = bufio.NewReader(resp.Body).ReadString('\n')
	require.NoError(t, err)

	s := e.scrape(t)
	require.Equal(t, 1.0, s.value("llmgate_inflight_streams"))
	require.Equal(t, 1.0, s.value("llmgate_inflight_requests"))
	require.Equal(t, 1.0, s.value("llmgate_upstream_inflight", "provider", "anthropic", "model", "claude-haiku-4-5"))
	require.Equal(t, 1.0, s.value("llmgate_key_upstream_inflight", "provider", "anthropic", "key_id", "main"))

	close(gate)
	_, _ = io.Copy(io.Discard, resp.Body)
	e.events.wait(t, resp.Header.Get(gateway.HeaderRequestID))
	s = e.scrape(t)
	require.Equal(t, 0.0, s.value("llmgate_inflight_streams"))
	require.Equal(t, 0.0, s.value("llmgate_upstream_inflight", "provider", "anthropic", "model", "claude-haiku-4-5"))
	require.Equal(t, 1.0, s.value("gen_ai_server_time_to_first_token_seconds", "gen_ai_response_model", "claude-haiku-4-5"))
}

func TestNewOptions(t *testing.T) {
	_, err := New(Options{MaxModels: -1})
	require.ErrorContains(t, err, "negative MaxModels")
	e, err := New(Options{})
	require.NoError(t, err)
	require.Equal(t, DefaultMaxModels, e.labels.max)
}

func TestUnboundExporter(t *testing.T) {
	e, err := New(Options{})
	require.NoError(t, err)
	e.HandleEvent(context.Background(), &gateway.Event{Status: 200, Surface: providers.SurfaceChatCompletions, ServedBy: "openai:gpt-4o",
		Attempts: []gateway.Attempt{{Provider: "openai", Model: "gpt-4o"}}})
	require.Equal(t, 1.0, testutil.ToFloat64(e.attempts.WithLabelValues(Other, Other, "ok")))
	// Without a gateway, only the event metrics are collected.
	n, err := testutil.GatherAndCount(registry(t, e), "llmgate_inflight_requests", "llmgate_requests_total")
	require.NoError(t, err)
	require.Equal(t, 1, n)
}

func registry(t *testing.T, c prometheus.Collector) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	return reg
}

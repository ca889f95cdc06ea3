package gateway

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

func TestModelGrammar(t *testing.T) {
	e := newEnv(t, envConfig{})
	def, ok := e.gw.Catalog().Provider("openai")
	require.True(t, ok)
	for _, tc := range []struct {
		name, body   string
		wantUpstream string
		wantServedBy string
	}{
		{name: "catalog id", body: chatBody("gpt-4o"), wantUpstream: "gpt-4o", wantServedBy: "openai:gpt-4o"},
		{name: "case-insensitive", body: chatBody("GPT-4O"), wantUpstream: "gpt-4o", wantServedBy: "openai:gpt-4o"},
		{name: "dated alias kept", body: chatBody("gpt-4o-2024-08-06"), wantUpstream: "gpt-4o-2024-08-06", wantServedBy: "openai:gpt-4o-2024-08-06"},
		{name: "provider prefix", body: chatBody("openai:gpt-4o-mini"), wantUpstream: "gpt-4o-mini", wantServedBy: "openai:gpt-4o-mini"},
		{name: "provider alias and case", body: chatBody("Open-AI:gpt-4o"), wantUpstream: "gpt-4o", wantServedBy: "openai:gpt-4o"},
		{name: "author form", body: chatBody("openai/gpt-4.1"), wantUpstream: "gpt-4.1", wantServedBy: "openai:gpt-4.1"},
		{name: "unknown model passes through with prefix", body: chatBody("openai:gpt-9-Preview"), wantUpstream: "gpt-9-Preview", wantServedBy: "openai:gpt-9-Preview"},
		{name: "auto", body: chatBody("auto"), wantUpstream: def.DefaultModel, wantServedBy: "openai:" + def.DefaultModel},
		{name: "no model", body: `{"messages":[]}`, wantUpstream: def.DefaultModel, wantServedBy: "openai:" + def.DefaultModel},
		{name: "models only", body: `{"models":["gpt-4.1-mini"],"messages":[]}`, wantUpstream: "gpt-4.1-mini", wantServedBy: "openai:gpt-4.1-mini"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := e.oa.Count()
			resp, body := e.post(t, "/v1/chat/completions", tc.body)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			require.Equal(t, tc.wantServedBy, resp.Header.Get(HeaderModel))
			reqs := e.oa.Requests()
			require.Len(t, reqs, n+1)
			require.Equal(t, tc.wantUpstream, upstreamModel(t, reqs[n]))
		})
	}
}

func TestAutoOnMessagesUsesAnthropicDefault(t *testing.T) {
	e := newEnv(t, envConfig{})
	resp, body := e.post(t, "/v1/messages", messagesBody("auto"))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	an, _ := e.gw.Catalog().Provider("anthropic")
	require.Equal(t, "anthropic:"+an.DefaultModel, resp.Header.Get(HeaderModel))
	ev := e.events.last(t)
	require.Len(t, ev.Attempts, 1, "the native default comes first")
	require.Equal(t, []string{"anthropic:" + an.DefaultModel, "openai:" + e.gw.routing.Load().upstreams["openai"].cat.DefaultModel}, ev.Candidates,
		"then the others, through translation")
}

func TestDefaultModelsOption(t *testing.T) {
	e := newEnv(t, envConfig{opts: []Option{WithDefaultModels("openai:gpt-4.1-nano", "openai:gpt-4o")}})
	e.oa.Enqueue(providertest.Error(providers.FormatOpenAI, 500, "x"), providertest.Error(providers.FormatOpenAI, 500, "x"))
	resp, body := e.post(t, "/v1/chat/completions", `{"messages":[]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, "openai:gpt-4o", resp.Header.Get(HeaderModel))

	_, err := New(WithDefaultModels("nope-model"))
	require.ErrorContains(t, err, "nope-model")
}

func TestRestrictions(t *testing.T) {
	t.Run("only configured providers", func(t *testing.T) {
		e := newEnv(t, envConfig{opts: []Option{WithOnlyConfiguredProviders(true)}})
		resp, body := e.post(t, "/v1/chat/completions", chatBody("groq:llama-3.3-70b-versatile"))
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		v := decodeOpenAIError(t, body)
		require.Equal(t, "provider_not_allowed", v.Error.Code)
		require.Equal(t, "permission_error", v.Error.Type)
		require.Contains(t, v.Error.Message, `"groq"`)
		require.Equal(t, "groq:llama-3.3-70b-versatile", resp.Header.Get(HeaderRejectedModels))

		// A refused model in the list is skipped, the rest is served.
		resp, body = e.post(t, "/v1/chat/completions", `{"model":"groq:llama-3.3-70b-versatile","models":["gpt-4o"],"messages":[]}`)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		require.Equal(t, "openai:gpt-4o", resp.Header.Get(HeaderModel))
		require.Equal(t, "groq:llama-3.3-70b-versatile", resp.Header.Get(HeaderRejectedModels))
		ev := e.events.last(t)
		require.Len(t, ev.Rejected, 1)

		// Anthropic-format clients get Anthropic-shaped errors.
		resp, body = e.post(t, "/v1/messages", messagesBody("deepseek:deepseek-chat"))
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		a := decodeAnthropicError(t, body)
		require.Equal(t, "permission_error", a.Error.Type)
		require.Equal(t, "provider_not_allowed", a.Error.Code)
	})
	t.Run("only configured models", func(t *testing.T) {
		oa := providertest.Start(t, providers.FormatOpenAI)
		gw, err := New(WithOnlyConfiguredModels(true),
			WithProvider(ProviderConfig{ID: "openai", BaseURL: oa.URL, Models: []catalog.Model{{ID: "gpt-4o"}}}))
		require.NoError(t, err)
		defer gw.Close()
		e := &testEnv{gw: gw, srv: newServer(t, gw)}
		resp, body := e.post(t, "/v1/chat/completions", chatBody("gpt-4o-mini"))
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		v := decodeOpenAIError(t, body)
		require.Equal(t, "model_not_allowed", v.Error.Code)
		require.Contains(t, v.Error.Message, "gpt-4o-mini")
		resp, _ = e.post(t, "/v1/chat/completions", chatBody("openai:some-unlisted-model"))
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		resp, body = e.post(t, "/v1/chat/completions", chatBody("gpt-4o"))
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		resp, body = e.post(t, "/v1/chat/completions", chatBody("gpt-4o-2024-08-06"))
		require.Equal(t, http.StatusOK, resp.StatusCode, "an alias of a listed model is allowed: %s", body)
	})
}

func TestFormatCompatibility(t *testing.T) {
	e := newEnv(t, envConfig{})
	for _, tc := range []struct {
		name, path, body string
		status           int
		code             string
	}{
		{name: "anthropic model on responses", path: "/v1/responses", body: `{"model":"claude-sonnet-4-5","input":"x"}`, status: 422, code: "format_unsupported"},
		{name: "anthropic model on embeddings", path: "/v1/embeddings", body: `{"model":"claude-sonnet-4-5","input":"x"}`, status: 422, code: "format_unsupported"},
		{name: "embeddings model on chat", path: "/v1/chat/completions", body: chatBody("text-embedding-3-small"), status: 422, code: "format_unsupported"},
		{name: "chat model on embeddings", path: "/v1/embeddings", body: `{"model":"gpt-4o","input":"x"}`, status: 422, code: "format_unsupported"},
		{name: "responses-only model on chat", path: "/v1/chat/completions", body: chatBody("o3-pro"), status: 422, code: "format_unsupported"},
		{name: "embeddings", path: "/v1/embeddings", body: `{"model":"text-embedding-3-small","input":"hello"}`, status: 200},
		{name: "responses", path: "/v1/responses", body: `{"model":"gpt-4o","input":"hello"}`, status: 200},
		{name: "responses-only model on responses", path: "/v1/responses", body: `{"model":"o3-pro","input":"hello"}`, status: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.post(t, tc.path, tc.body)
			require.Equal(t, tc.status, resp.StatusCode, string(body))
			if tc.code != "" {
				require.Equal(t, tc.code, decodeOpenAIError(t, body).Error.Code)
				return
			}
			last := e.oa.Requests()[e.oa.Count()-1]
			require.Equal(t, "/v1/"+strings.TrimPrefix(tc.path, "/v1/"), last.Path)
		})
	}
}

func TestCustomProviders(t *testing.T) {
	ollama := providertest.Start(t, providers.FormatOpenAI)
	azure := providertest.Start(t, providers.FormatOpenAI)
	gw, err := New(
		WithProvider(ProviderConfig{ID: "my-ollama", BaseURL: ollama.URL, Models: []catalog.Model{{ID: "llama3.2:latest", Aliases: []string{"llama3.2"}}}}),
		WithProvider(ProviderConfig{ID: "azure-eu", BaseURL: azure.URL, AuthHeader: "api-key",
			QueryParams: map[string]string{"api-version": "2024-10-21"}, Keys: []ProviderKey{{ID: "eu-primary", Value: "az-secret"}},
			Models: []catalog.Model{{ID: "gpt-4o-eu"}}}),
	)
	require.NoError(t, err)
	defer gw.Close()
	e := &testEnv{gw: gw, srv: newServer(t, gw)}

	resp, body := e.post(t, "/v1/chat/completions", chatBody("my-ollama:llama3.2:latest"))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, "llama3.2:latest", upstreamModel(t, ollama.Requests()[0]))
	resp, body = e.post(t, "/v1/chat/completions", chatBody("llama3.2"))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, "my-ollama:llama3.2:latest", resp.Header.Get(HeaderModel))

	resp, body = e.post(t, "/v1/chat/completions", chatBody("gpt-4o-eu"))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	r := azure.Requests()[0]
	require.Equal(t, "az-secret", r.Header.Get("Api-Key"))
	require.Empty(t, r.Header.Get("Authorization"))
	require.Equal(t, "api-version=2024-10-21", r.RawQuery)
}

// cheapest returns the ID of the provider's catalog model with the lowest
// non-zero input price, the first of equals, among chat models.
func cheapest(t *testing.T, gw *Gateway, provider string) string {
	t.Helper()
	p, ok := gw.Catalog().Provider(provider)
	require.True(t, ok)
	best := ""
	var price int64
	for _, m := range p.Models {
		if m.Pricing.Input == 0 || m.HasFeature(catalog.FeatureEmbeddings) || m.HasFeature(catalog.FeatureResponsesOnly) || m.HasFeature(catalog.FeatureModeration) {
			continue
		}
		if best == "" || m.Pricing.Input < price {
			best, price = m.ID, m.Pricing.Input
		}
	}
	require.NotEmpty(t, best)
	return best
}

// firstWithContext returns the first chat model of openai, then
// anthropic, with a context window of at least n tokens.
func firstWithContext(t *testing.T, gw *Gateway, n int) string {
	t.Helper()
	for _, id := range []string{"openai", "anthropic"} {
		p, _ := gw.Catalog().Provider(id)
		for _, m := range p.Models {
			if m.ContextWindow >= n && !m.HasFeature(catalog.FeatureEmbeddings) && !m.HasFeature(catalog.FeatureResponsesOnly) {
				return id + ":" + m.ID
			}
		}
	}
	t.Fatal("no long-context model")
	return ""
}

func TestModelSelectionStrategies(t *testing.T) {
	only := WithOnlyConfiguredProviders(true)
	for _, tc := range []struct {
		name       string
		strategies []string
		path, body string
		header     []string
		wantStatus int
		wantServed func(gw *Gateway) string
		wantCands  func(gw *Gateway) []string
		wantSteps  int
		wantReject []string // models in Llmgate-Rejected-Models
		wantCode   string
	}{
		{
			name:       "auto: cheapest Anthropic model",
			strategies: []string{"ai.models.onlyProviders(['anthropic']).sortBy(m, m.pricing.input).filter(m, m.pricing.input > 0.0)"},
			path:       "/v1/messages", body: messagesBody("auto"), wantStatus: 200, wantSteps: 1,
			wantServed: func(gw *Gateway) string { return "anthropic:" + cheapest(t, gw, "anthropic") },
		},
		{
			name:       "empty result falls through to the next strategy",
			strategies: []string{"ai.models.onlyProviders(['groq'])", "ai.models.get('openai', 'gpt-4o')"},
			path:       "/v1/chat/completions", body: chatBody("auto"), wantStatus: 200, wantSteps: 2,
			wantServed: func(*Gateway) string { return "openai:gpt-4o" },
		},
		{
			name:       "a lookup that finds nothing is an empty result",
			strategies: []string{"ai.models.get('openai', 'no-such-model')", "ai.models.get('openai', 'gpt-4.1')"},
			path:       "/v1/chat/completions", body: chatBody("auto"), wantStatus: 200, wantSteps: 2,
			wantServed: func(*Gateway) string { return "openai:gpt-4.1" },
		},
		{
			name:       "client order kept, strategy can only remove",
			strategies: []string{"ai.models.ignore(['gpt-4.1']).sortByDesc(m, m.id)"},
			path:       "/v1/chat/completions", body: `{"model":"gpt-4o","models":["gpt-4.1","claude-sonnet-4-5","gpt-4o-mini"],"messages":[{"role":"user","content":"Hi"}]}`,
			wantStatus: 200, wantSteps: 1,
			wantServed: func(*Gateway) string { return "openai:gpt-4o" },
			wantCands: func(*Gateway) []string {
				return []string{"openai:gpt-4o", "anthropic:claude-sonnet-4-5", "openai:gpt-4o-mini"}
			},
			wantReject: []string{"openai:gpt-4.1"},
		},
		{
			name:       "strategies cannot add to the client's models",
			strategies: []string{"ai.models.onlyProviders(['anthropic'])", "ai.models"},
			path:       "/v1/chat/completions", body: chatBody("gpt-4o"), wantStatus: 200, wantSteps: 2,
			wantServed: func(*Gateway) string { return "openai:gpt-4o" },
		},
		{
			name:       "pass-through model is visible as unknown",
			strategies: []string{"ai.models.filter(m, !m.known)"},
			path:       "/v1/chat/completions", body: chatBody("openai:gpt-9-preview"), wantStatus: 200, wantSteps: 1,
			wantServed: func(*Gateway) string { return "openai:gpt-9-preview" },
		},
		{
			name:       "header-selected tier",
			strategies: []string{"request.header('X-Tier') == 'premium' ? ai.models.get('anthropic', 'claude-opus-4-1') : ai.models.get('openai', 'gpt-4o-mini')"},
			path:       "/v1/chat/completions", body: chatBody("auto"), header: []string{"X-Tier", "premium"}, wantStatus: 200, wantSteps: 1,
			wantServed: func(*Gateway) string { return "anthropic:claude-opus-4-1" },
		},
		{
			name:       "long prompt goes to a long-context model",
			strategies: []string{"request.input_tokens > 2000 ? ai.models.filter(m, m.max_context_window >= 1000000) : [ai.models.get('openai', 'gpt-4o-mini')]"},
			path:       "/v1/chat/completions", body: `{"model":"auto","messages":[{"role":"user","content":"` + strings.Repeat("lorem ipsum dolor ", 2000) + `"}]}`,
			wantStatus: 200, wantSteps: 1,
			wantServed: func(gw *Gateway) string { return firstWithContext(t, gw, 1_000_000) },
		},
		{
			name:       "runtime error: 422 in the OpenAI dialect",
			strategies: []string{"ai.models.filter(m, int(request.header('x-budget')) > 3)"},
			path:       "/v1/chat/completions", body: chatBody("auto"), header: []string{"X-Budget", "lots"},
			wantStatus: 422, wantSteps: 1, wantCode: "model_selection_failed",
		},
		{
			name:       "runtime error: 422 in the Anthropic dialect",
			strategies: []string{"ai.models.filter(m, int(request.header('x-budget')) > 3)"},
			path:       "/v1/messages", body: messagesBody("auto"), header: []string{"X-Budget", "lots"},
			wantStatus: 422, wantSteps: 1, wantCode: "model_selection_failed",
		},
		{
			name:       "nothing selected",
			strategies: []string{"ai.models.onlyProviders(['anthropic'])"},
			path:       "/v1/chat/completions", body: chatBody("gpt-4o"),
			wantStatus: 422, wantSteps: 1, wantCode: "no_model_selected", wantReject: []string{"openai:gpt-4o"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envConfig{opts: []Option{only, WithModelSelection(tc.strategies...)}})
			resp, body := e.post(t, tc.path, tc.body, tc.header...)
			require.Equal(t, tc.wantStatus, resp.StatusCode, string(body))
			ev := e.events.last(t)
			require.Len(t, ev.Selection, tc.wantSteps)
			for i, st := range ev.Selection {
				require.Equal(t, i, st.Index)
				require.Equal(t, tc.strategies[i], st.Strategy)
			}
			if tc.wantServed != nil {
				require.Equal(t, tc.wantServed(e.gw), resp.Header.Get(HeaderModel))
				require.Equal(t, ev.Candidates[:min(len(ev.Candidates), maxTraceModels)], ev.Selection[len(ev.Selection)-1].Models)
			}
			if tc.wantCands != nil {
				require.Equal(t, tc.wantCands(e.gw), ev.Candidates)
			}
			for _, m := range tc.wantReject {
				require.Contains(t, resp.Header.Get(HeaderRejectedModels), m)
			}
			if tc.wantCode == "" {
				return
			}
			msg := ""
			if strings.HasPrefix(tc.path, "/v1/messages") {
				b := decodeAnthropicError(t, body)
				require.Equal(t, tc.wantCode, b.Error.Code)
				msg = b.Error.Message
			} else {
				b := decodeOpenAIError(t, body)
				require.Equal(t, tc.wantCode, b.Error.Code)
				msg = b.Error.Message
			}
			if tc.wantCode == "model_selection_failed" {
				require.Contains(t, msg, "strategy 0")
				require.NotEmpty(t, ev.Selection[0].Error)
			}
			require.Zero(t, e.oa.Count()+e.an.Count(), "nothing was sent upstream")
		})
	}
}

func TestModelSelectionCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, expr, want string
	}{
		{"syntax", "ai.models.filter(m, ", "1:"},
		{"unknown field", "ai.models.filter(m, m.prce > 1.0)", "prce"},
		{"not models", "true", "want llmgate.Model or list(llmgate.Model)"},
		{"keys in a model strategy", "ai.keys", "keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(WithModelSelection("ai.models", tc.expr))
			require.Error(t, err)
			oes := OptionErrors(err)
			require.Len(t, oes, 1, err.Error())
			require.Equal(t, "WithModelSelection", oes[0].Option)
			require.Equal(t, "[1]", oes[0].Field)
			require.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := New(WithKeySelection("round_robin", "ai.keys"))
	require.ErrorContains(t, err, "must be the only entry")
	_, err = New(WithKeySelection("ai.keys.filter(k, k.nope)"))
	require.Equal(t, "WithKeySelection", OptionErrors(err)[0].Option)
}

// TestMetricsDrivenRouting: a provider that starts failing stops being
// chosen first by an error-rate strategy, and is chosen again once its
// failures leave the metrics window.
func TestMetricsDrivenRouting(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	e := newEnv(t, envConfig{openAIKeys: []ProviderKey{{Value: "sk-oa-1"}}, opts: []Option{
		WithOnlyConfiguredProviders(true), WithClock(clock.now),
		WithModelSelection("ai.models.filter(m, m.id in ['gpt-4o', 'claude-sonnet-4-5']).sortBy(m, m.metrics.error_rate.total)"),
	}})
	served := func() string {
		resp, body := e.post(t, "/v1/chat/completions", chatBody("auto"))
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		return resp.Header.Get(HeaderModel)
	}
	require.Equal(t, "openai:gpt-4o", served(), "no history: catalog order")

	// OpenAI fails three times: each request fails over to Anthropic.
	for range 3 {
		e.oa.Enqueue(providertest.Error(providers.FormatOpenAI, 500, "boom"))
		require.Equal(t, "anthropic:claude-sonnet-4-5", served())
	}
	clock.advance(2 * time.Second) // past the metrics refresh
	n := e.oa.Count()
	require.Equal(t, "anthropic:claude-sonnet-4-5", served(), "the failing provider is no longer first")
	require.Equal(t, n, e.oa.Count(), "and is not even tried")
	st := e.gw.Metrics().Model("openai", "gpt-4o").Stats()
	require.InDelta(t, 0.75, st.ErrorRate.Total, 0.001)
	require.InDelta(t, 0.75, st.ErrorRate.Server, 0.001)

	clock.advance(10 * time.Minute) // the failures leave the window
	require.Equal(t, "openai:gpt-4o", served(), "recovered")
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestStrategyResultsCached(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	e := newEnv(t, envConfig{opts: []Option{WithOnlyConfiguredProviders(true), WithClock(clock.now), WithModelSelection(
		"request.header('x-skip') == 'yes' ? ai.models : ai.models.only(['none'])",
		"ai.models.filter(m, m.metrics.error_rate.total < 0.5)",
	)}})
	slots := e.gw.routing.Load().results[providers.SurfaceChatCompletions].slots
	post := func() {
		resp, body := e.post(t, "/v1/chat/completions", chatBody("auto"))
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	}
	post()
	require.Nil(t, slots[0].Load(), "a strategy that reads the request is evaluated per request")
	first := slots[1].Load()
	require.NotNil(t, first)
	post()
	require.Same(t, first, slots[1].Load(), "reused within the metrics refresh period")
	clock.advance(1500 * time.Millisecond)
	post()
	require.NotSame(t, first, slots[1].Load(), "evaluated again after it")
}

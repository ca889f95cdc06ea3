package gateway

import (
	"net/http"
	"strings"
	"testing"

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

package gateway

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/providers"
)

func TestOptionValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		want []string
	}{
		{name: "nil option", opts: []Option{nil}, want: []string{"nil Option"}},
		{name: "timeouts", opts: []Option{WithTimeouts(0, time.Second)}, want: []string{"WithTimeouts"}},
		{name: "attempt beyond total", opts: []Option{WithTimeouts(time.Minute, time.Second)}, want: []string{"exceeds total timeout"}},
		{name: "idle", opts: []Option{WithStreamIdleTimeout(-time.Second)}, want: []string{"WithStreamIdleTimeout"}},
		{name: "sizes", opts: []Option{WithMaxRequestBytes(0), WithMaxResponseBytes(-1), WithMaxEventBytes(10)},
			want: []string{"WithMaxRequestBytes", "WithMaxResponseBytes", "WithMaxEventBytes"}},
		{name: "holdback", opts: []Option{WithStreamHoldback(-1, 0)}, want: []string{"WithStreamHoldback"}},
		{name: "fail fast", opts: []Option{WithFailFastStatuses(200)}, want: []string{"not a 4xx or 5xx"}},
		{name: "cooldowns", opts: []Option{WithKeyCooldowns(-1, 0, 0)}, want: []string{"WithKeyCooldowns"}},
		{name: "client timeout", opts: []Option{WithHTTPClient(&http.Client{Timeout: time.Second})}, want: []string{"Timeout must be zero"}},
		{name: "nil client", opts: []Option{WithHTTPClient(nil)}, want: []string{"WithHTTPClient"}},
		{name: "nil logger", opts: []Option{WithLogger(nil)}, want: []string{"WithLogger"}},
		{name: "nil sink", opts: []Option{WithEventSink(nil)}, want: []string{"WithEventSink"}},
		{name: "nil clock", opts: []Option{WithClock(nil)}, want: []string{"WithClock"}},
		{name: "nil catalog", opts: []Option{WithCatalog(nil)}, want: []string{"WithCatalog"}},
		{name: "empty default", opts: []Option{WithDefaultModels("")}, want: []string{"WithDefaultModels"}},
		{name: "unknown default", opts: []Option{WithDefaultModels("nope-model")}, want: []string{"nope-model"}},
		{name: "empty provider id", opts: []Option{WithProvider(ProviderConfig{})}, want: []string{"ID is empty"}},
		{name: "duplicate provider", opts: []Option{WithProvider(ProviderConfig{ID: "openai"}), WithProvider(ProviderConfig{ID: "OpenAI"})},
			want: []string{"configured twice"}},
		{name: "bad format", opts: []Option{WithProvider(ProviderConfig{ID: "x", BaseURL: "http://x", Format: "grpc"})}, want: []string{"unknown format"}},
		{name: "custom without url", opts: []Option{WithProvider(ProviderConfig{ID: "mine"})}, want: []string{"mine"}},
		{name: "keys", opts: []Option{WithProvider(ProviderConfig{ID: "openai", Keys: []ProviderKey{{Value: ""}, {ID: "a", Value: "x"}, {ID: "a", Value: "y"}, {ID: "client", Value: "z"}}})},
			want: []string{"empty value", `key ID "a" used twice`, "reserved"}},
		{name: "only models without models", opts: []Option{WithOnlyConfiguredModels(true)}, want: []string{"no provider lists any model"}},
		{name: "only providers without providers", opts: []Option{WithOnlyConfiguredProviders(true)}, want: []string{"no provider is configured"}},
		{name: "all at once", opts: []Option{WithTimeouts(0, 0), WithMaxRequestBytes(0), WithProvider(ProviderConfig{ID: "mine"})},
			want: []string{"WithTimeouts", "WithMaxRequestBytes", "mine"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw, err := New(tc.opts...)
			require.Nil(t, gw)
			require.Error(t, err)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestOptionsAreOrderIndependent(t *testing.T) {
	p := WithProvider(ProviderConfig{ID: "local", BaseURL: "http://127.0.0.1:1/v1/", Models: []catalog.Model{{ID: "m"}}})
	a, err := New(p, WithOnlyConfiguredProviders(true), WithDefaultModels("local:m"))
	require.NoError(t, err)
	defer a.Close()
	b, err := New(WithDefaultModels("local:m"), WithOnlyConfiguredProviders(true), p)
	require.NoError(t, err)
	defer b.Close()
	require.Equal(t, a.routing.Load().defaults, b.routing.Load().defaults)
	require.Equal(t, a.routing.Load().configuredList, b.routing.Load().configuredList)
}

func TestOptionsCopyTheirArguments(t *testing.T) {
	keys := []ProviderKey{{Value: "sk-1"}}
	opt := WithProvider(ProviderConfig{ID: "openai", Keys: keys})
	keys[0].Value = "changed"
	gw, err := New(opt)
	require.NoError(t, err)
	defer gw.Close()
	require.Equal(t, providers.Secret("sk-1"), gw.routing.Load().upstreams["openai"].keys[0].key.Secret)
}

func TestDisabledProvider(t *testing.T) {
	gw, err := New(WithProvider(ProviderConfig{ID: "groq", Disabled: true}))
	require.NoError(t, err)
	defer gw.Close()
	_, ok := gw.Catalog().Provider("groq")
	require.False(t, ok)
	e := &testEnv{gw: gw, srv: newServer(t, gw)}
	resp, body := e.post(t, "/v1/chat/completions", chatBody("groq:llama-3.3-70b-versatile"))
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, string(body))
	require.Equal(t, "provider_unknown", decodeOpenAIError(t, body).Error.Code)
}

func TestCloseRefusesNewRequests(t *testing.T) {
	e := newEnv(t, envConfig{})
	require.NoError(t, e.gw.Close())
	require.NoError(t, e.gw.Close(), "idempotent")
	resp, body := e.post(t, "/v1/chat/completions", chatBody("gpt-4o"))
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "gateway_closed", decodeOpenAIError(t, body).Error.Code)
}

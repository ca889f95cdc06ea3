package strategy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/metrics"
)

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		kind      Kind
		expr      string
		line, col int
		msg       string
	}{
		{"syntax", Models, "ai.models.filter(m, m.id ==)", 1, 28, "Syntax error"},
		{"syntax line 2", Models, "ai.models\n  .filter(m, ))", 2, 14, "Syntax error"},
		{"unknown field", Models, "ai.models.filter(m, m.prce < 1.0)", 1, 22, "undefined field 'prce'"},
		{"unknown nested field", Models, "ai.models.filter(m, m.metrics.latency.ttft < 1)", 1, 38, "undefined field 'ttft'"},
		{"wrong output bool", Models, "true", 0, 0, "returns bool"},
		{"wrong output strings", Models, "ai.models.map(m, m.id)", 0, 0, "returns list(string)"},
		{"providers output", Models, "ai.providers", 0, 0, "returns list(llmgate.Provider)"},
		{"keys in model strategy", Models, "ai.keys", 1, 3, "undefined field 'keys'"},
		{"models in key strategy", Keys, "ai.models", 1, 3, "undefined field 'models'"},
		{"model output in key strategy", Keys, "ai.keys.map(k, k.id)", 0, 0, "want llmgate.Key"},
		{"price type literal", Models, "ai.models.underCost('tools.web_search.per_search_call', 1.0)", 0, 0, "accepted: text.input"},
		{"wrong arg type", Models, "ai.models.underCost('text.input', 'cheap')", 1, 20, "found no matching overload"},
		{"unknown function", Models, "ai.models.inRegion('us-east-1')", 1, 19, "undeclared reference"},
		{"sortBy non-ident", Models, "ai.models.sortBy(m.x, m.id)", 1, 19, "simple name"},
		{"cost too high", Models, "ai.models.filter(m, ai.models.exists(n, ai.models.exists(o, o.id == n.id + m.id)))", 0, 0, "exceeds the limit"},
		{"no construction", Models, "llmgate.Model{id: 'x'}", 0, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.kind, []string{"ai." + map[Kind]string{Models: "models", Keys: "keys"}[tc.kind], tc.expr}, Options{})
			if tc.name == "no construction" {
				// Object literals type-check but cannot be built.
				require.NoError(t, err)
				p, err := Compile(tc.kind, []string{tc.expr}, Options{})
				require.NoError(t, err)
				_, err = p.EvalModels(t.Context(), 0, NewUniverse(nil), nil)
				require.ErrorContains(t, err, "cannot create")
				return
			}
			require.Error(t, err)
			var ce *CompileError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, 1, ce.Index)
			require.Equal(t, tc.expr, ce.Expr)
			require.Equal(t, tc.line, ce.Line, ce.Error())
			require.Equal(t, tc.col, ce.Column, ce.Error())
			require.Contains(t, ce.Message, tc.msg)
			require.Contains(t, ce.Error(), "strategy 1 ")
		})
	}
	t.Run("all problems joined", func(t *testing.T) {
		_, err := Compile(Models, []string{"true", "ai.models", "ai.models.(", "ai.models.filter(m, m.nope)"}, Options{})
		var idx []int
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			var ce *CompileError
			require.ErrorAs(t, e, &ce)
			idx = append(idx, ce.Index)
		}
		require.Equal(t, []int{0, 2, 3}, idx)
	})
	t.Run("long expression truncated", func(t *testing.T) {
		ce := &CompileError{Index: 0, Expr: "ai.models.filter(m, m.id == 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')", Line: 1, Column: 3, Message: "x"}
		require.Equal(t, `strategy 0 "ai.models.filter(m, m.id == 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…" at 1:3: x`, ce.Error())
	})
	t.Run("typical strategies fit the estimate", func(t *testing.T) {
		_, err := Compile(Models, benchStrategies, Options{})
		require.NoError(t, err)
	})
}

func TestProgramAccessors(t *testing.T) {
	p, err := Compile(Models, []string{"ai.models", "ai.models.filter(m, request.input_tokens < m.max_context_window)"}, Options{})
	require.NoError(t, err)
	require.Equal(t, 2, p.Len())
	require.Equal(t, "ai.models", p.Expr(0))
	require.True(t, p.ReadsInputTokens())
	p, err = Compile(Models, []string{"ai.models.filter(m, request.stream)"}, Options{})
	require.NoError(t, err)
	require.False(t, p.ReadsInputTokens())
	_, err = p.EvalModels(t.Context(), 1, nil, nil)
	var ee *EvalError
	require.ErrorAs(t, err, &ee)
	_, err = p.EvalKeys(t.Context(), 0, nil, nil)
	require.ErrorContains(t, err, "wrong kind")
}

func TestInputTokensLazy(t *testing.T) {
	u := NewUniverse(testModels())
	var calls atomic.Int32
	req := &Request{InputTokens: func() int { calls.Add(1); return 10_000 }}
	p, err := Compile(Models, []string{
		"ai.models.filter(m, request.stream)",
		"ai.models.filter(m, m.max_context_window > request.input_tokens)",
		"ai.models.filter(m, request.input_tokens > 0)",
	}, Options{})
	require.NoError(t, err)
	_, err = p.EvalModels(t.Context(), 0, u, req)
	require.NoError(t, err)
	require.Zero(t, calls.Load(), "not read, not computed")
	ms, err := p.EvalModels(t.Context(), 1, u, req)
	require.NoError(t, err)
	require.Len(t, ms, 4)
	_, err = p.EvalModels(t.Context(), 2, u, req)
	require.NoError(t, err)
	require.Equal(t, int32(1), calls.Load(), "computed once per Request")
}

func TestSortByTargetEvaluatedOnce(t *testing.T) {
	u := NewUniverse(testModels())
	var calls atomic.Int32
	// A Rand that counts its calls: randomize over n elements calls it n-1
	// times; evaluating the target twice would double that.
	rnd := func(n int) int { calls.Add(1); return 0 }
	ms, err := evalModels(t, u, nil, "ai.models.randomize().sortBy(m, m.pricing.input)", Options{Rand: rnd})
	require.NoError(t, err)
	require.Equal(t, int32(len(u.Models)-1), calls.Load())
	// Sorted ascending and a permutation of the universe.
	require.Len(t, ms, len(u.Models))
	for i := 1; i < len(ms); i++ {
		require.LessOrEqual(t, ms[i-1].Pricing.Input, ms[i].Pricing.Input)
	}
}

func TestContextCancel(t *testing.T) {
	u := benchUniverse() // enough iterations to reach an interrupt check
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	p, err := Compile(Models, []string{"ai.models.filter(m, ai.models.exists(n, n.id == m.id))"}, Options{MaxEstimatedCost: 1 << 40})
	require.NoError(t, err)
	_, err = p.EvalModels(ctx, 0, u, nil)
	require.ErrorIs(t, err, context.Canceled)
}

func TestNoCostLimit(t *testing.T) {
	p, err := Compile(Models, []string{"ai.models.filter(m, ai.models.exists(n, n.id == m.id + 'x'))"}, Options{MaxCost: NoCostLimit, MaxEstimatedCost: 1 << 40})
	require.NoError(t, err)
	ms, err := p.EvalModels(t.Context(), 0, benchUniverse(), nil)
	require.NoError(t, err)
	require.Empty(t, ms)
}

func TestCostLimit(t *testing.T) {
	u := benchUniverse()
	p, err := Compile(Models, []string{"ai.models.filter(m, ai.models.exists(n, n.id == m.id + 'x'))"}, Options{MaxCost: 10_000, MaxEstimatedCost: 1 << 40})
	require.NoError(t, err)
	_, err = p.EvalModels(t.Context(), 0, u, nil)
	require.ErrorContains(t, err, "cost limit")
}

func TestConcurrentEval(t *testing.T) {
	u := NewUniverse(testModels())
	keys := []*Key{{ID: "a"}, {ID: "b", Weight: 2}}
	mp, err := Compile(Models, []string{"ai.models.onlyProviders('openai').sortBy(m, m.metrics.error_rate.total)", "ai.models.randomize()"}, Options{})
	require.NoError(t, err)
	kp, err := Compile(Keys, []string{"ai.keys.sortByDesc(k, k.weight)"}, Options{})
	require.NoError(t, err)
	req := testRequest()
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 200 {
				ms, err := mp.EvalModels(context.Background(), 0, u, req)
				if err != nil || len(ms) != 3 {
					panic(fmt.Sprint(ms, err))
				}
				ms, err = mp.EvalModels(context.Background(), 1, u, req)
				if err != nil || len(ms) != 6 {
					panic(fmt.Sprint(ms, err))
				}
				ks, err := kp.EvalKeys(context.Background(), 0, keys, req)
				if err != nil || ks[0].ID != "b" {
					panic(fmt.Sprint(ks, err))
				}
			}
		})
	}
	wg.Wait()
}

func TestNewUniverse(t *testing.T) {
	u := NewUniverse(testModels())
	var provs, auths []string
	for _, p := range u.Providers {
		provs = append(provs, fmt.Sprintf("%s%v%d", p.ID, p.Aliases, len(p.Models)))
	}
	for _, a := range u.Authors {
		auths = append(auths, fmt.Sprintf("%s%d", a.ID, len(a.Models)))
	}
	require.Equal(t, []string{"openai[oai]3", "anthropic[]1", "azure[]1", "local[]1"}, provs)
	require.Equal(t, []string{"openai4", "anthropic1", "meta1"}, auths)

	t.Run("literal universe", func(t *testing.T) {
		m := &Model{ID: "x", ProviderID: "p"}
		u := &Universe{Models: []*Model{m}, Providers: []*Provider{{ID: "p", Models: []*Model{m, {ID: "y"}}}}}
		ms, err := evalModels(t, u, nil, "ai.providers[0].models.filter(x, x in ai.models)", Options{})
		require.NoError(t, err)
		require.Equal(t, []*Model{m}, ms)
	})
	t.Run("nil universe", func(t *testing.T) {
		ms, err := evalModels(t, nil, nil, "ai.models", Options{})
		require.NoError(t, err)
		require.Empty(t, ms)
	})
}

func TestErrNotFoundWrapped(t *testing.T) {
	_, err := evalModels(t, NewUniverse(testModels()), nil, "ai.models.get('x', 'y')", Options{})
	require.True(t, errors.Is(err, ErrNotFound))
	var ee *EvalError
	require.ErrorAs(t, err, &ee)
	require.Zero(t, ee.Index)
}

// benchStrategies are three typical strategies.
var benchStrategies = []string{
	"ai.models.filter(m, m.metrics.error_rate.total < 0.2 && m.max_context_window >= 100000)",
	"ai.models.onlyProviders(['p1','p2']).sortBy(m, m.pricing.input)",
	"ai.models.underCost('text.input', 1.0)",
}

// benchUniverse is 10 providers × 20 models with prices and stats.
func benchUniverse() *Universe {
	var models []*Model
	for p := range 10 {
		for i := range 20 {
			st := &metrics.Stats{Requests: uint64(i * 10), ErrorRate: metrics.ErrorRate{Total: float64(i%5) / 10}}
			models = append(models, &Model{
				ID: fmt.Sprintf("model-%d", i), ProviderID: fmt.Sprintf("p%d", p), AuthorID: fmt.Sprintf("a%d", i%3), Known: true,
				ContextWindow: 50_000 * (i%4 + 1),
				Pricing:       catalog.Pricing{Input: int64((i*7+p*3)%20) * 100_000, Output: 4_000_000},
				Stats:         func() *metrics.Stats { return st },
			})
		}
	}
	return NewUniverse(models)
}

func BenchmarkStrategies(b *testing.B) {
	b.Run("cost_limit", func(b *testing.B) { benchStrategies3(b, Options{}) })
	b.Run("no_cost_limit", func(b *testing.B) { benchStrategies3(b, Options{MaxCost: NoCostLimit}) })
}

func benchStrategies3(b *testing.B, o Options) {
	u := benchUniverse()
	p, err := Compile(Models, benchStrategies, o)
	require.NoError(b, err)
	req := &Request{API: "chat_completions"}
	ctx := context.Background()
	for i, name := range []string{"filter", "onlyProviders_sortBy", "underCost"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.EvalModels(ctx, i, u, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("all_three", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i := range 3 {
				if _, err := p.EvalModels(ctx, i, u, req); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// TestQuickEvalHonoursCancel: an expression cheap enough to run without
// interrupt checks still does not start once the context is done.
func TestQuickEvalHonoursCancel(t *testing.T) {
	p, err := Compile(Models, []string{"ai.models.onlyProviders(['p1'])"}, Options{})
	require.NoError(t, err)
	require.True(t, p.quick[0])
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = p.EvalModels(ctx, 0, NewUniverse(nil), &Request{})
	require.ErrorIs(t, err, context.Canceled)
	var ee *EvalError
	require.ErrorAs(t, err, &ee)

	slow, err := Compile(Models, []string{"ai.models.filter(m, ai.models.exists(n, n.id == m.id))"}, Options{MaxEstimatedCost: 1 << 40})
	require.NoError(t, err)
	require.False(t, slow.quick[0], "nested loops keep their interrupt checks")
}

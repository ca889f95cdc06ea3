package strategy

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/google/cel-go/common/types/ref"
	"github.com/stretchr/testify/require"
)

// evalCompiled evaluates expr with the program options of Compile (the
// accumulator macros and the comparison decorator), twice: the second
// result must equal the first.
func evalCompiled(t *testing.T, expr string, o Options) any {
	t.Helper()
	env, err := newEnv(Models, o)
	require.NoError(t, err)
	a, iss := env.Compile(expr)
	require.NoError(t, iss.Err())
	prg, err := env.Program(a, programOptions(o)...)
	require.NoError(t, err)
	u := NewUniverse(testModels())
	act := &activation{ai: u.values(), req: requestValue(testRequest())}
	var outs [2]any
	for i := range outs {
		out, _, err := prg.Eval(act)
		require.NoError(t, err)
		outs[i] = plain(out)
	}
	require.Equal(t, outs[0], outs[1])
	return outs[0]
}

// plain turns lists of strings, numbers and bools into Go slices.
func plain(v ref.Val) any {
	if vs, errv := elems(v); errv == nil {
		out := []any{}
		for _, x := range vs {
			out = append(out, plain(x))
		}
		return out
	}
	return v.Value()
}

func TestAccumulatorLists(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want any
	}{
		{"ai.models.filter(m, m.provider_id == 'openai').map(m, m.id)", []any{"gpt-4o", "gpt-4o-mini", "gpt-5-preview"}},
		{"ai.models.filter(m, m.id == 'none')", []any{}},
		{"ai.models.filter(m, m.id == 'none').map(m, m.id)", []any{}},
		{"ai.models.map(m, m.known, m.provider_id + ':' + m.id)", []any{"openai:gpt-4o", "openai:gpt-4o-mini", "anthropic:claude-sonnet-4", "azure:gpt-4o", "local:llama3:8b"}},
		{"(ai.models.filter(m, m.provider_id == 'azure') + ai.models.filter(m, m.provider_id == 'local')).map(m, m.id)", []any{"gpt-4o", "llama3:8b"}},
		{"(ai.models.filter(m, m.id == 'none') + ai.models.filter(m, m.provider_id == 'local')).map(m, m.id)", []any{"llama3:8b"}},
		{"ai.providers.map(p, p.models.filter(m, m.known).map(m, m.id))", []any{[]any{"gpt-4o", "gpt-4o-mini"}, []any{"claude-sonnet-4"}, []any{"gpt-4o"}, []any{"llama3:8b"}}},
		{"ai.models.filter(m, ai.models.filter(n, n.id == m.id).size() > 1).map(m, m.provider_id)", []any{"openai", "azure"}},
		{"size(ai.models.filter(m, m.known))", int64(5)},
		{"ai.models.filter(m, m.known)[1].id", "gpt-4o-mini"},
		{"'gpt-4o-mini' in ai.models.map(m, m.id)", true},
		{"'nope' in ai.models.map(m, m.id)", false},
		{"ai.models.map(m, m.id).filter(x, x.startsWith('gpt')) == ['gpt-4o', 'gpt-4o-mini', 'gpt-5-preview', 'gpt-4o']", true},
		{"['gpt-4o', 'gpt-4o-mini'] == ai.models.map(m, m.id).filter(x, x.startsWith('gpt-4o-'))", false},
		{"ai.models.filter(m, m.known) == ai.models.filter(m, m.known)", true},
		{"ai.models.filter(m, m.known) != ai.models.filter(m, m.custom)", true},
		{"ai.models.filter(m, m.id == 'none') == []", true},
		{"[] == ai.models.filter(m, m.id == 'none')", true},
		{"ai.models.map(m, m.max_context_window).filter(n, n > 100000)", []any{int64(128000), int64(128000), int64(200000), int64(128000)}},
		{"ai.models.filter(m, m.known).all(m, m.known) && ai.models.exists(m, m.custom) && ai.models.exists_one(m, m.custom)", true},
		{"has(request.key.id)", true},
		{"ai.models.sortBy(m, m.id).map(m, m.id)[0]", "claude-sonnet-4"},
		{"ai.models.filter(m, m.known).map(m, ai.models.filter(n, n.id == m.id).size())", []any{int64(2), int64(1), int64(1), int64(2), int64(1)}},
		{"dyn(ai.models.map(m, m.id)) == dyn(ai.models.map(m, m.id))", true},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			require.Equal(t, tc.want, evalCompiled(t, tc.expr, Options{MaxCost: NoCostLimit}))
			require.Equal(t, tc.want, evalCompiled(t, tc.expr, Options{MaxCost: DefaultMaxCost}))
		})
	}
}

func TestAccumulatorMacroErrors(t *testing.T) {
	for _, expr := range []string{"ai.models.filter(1, true)", "ai.models.map(m.id, 1)", "ai.models.sortBy(m.id, 1)"} {
		t.Run(expr, func(t *testing.T) {
			_, err := Compile(Models, []string{expr}, Options{})
			require.Error(t, err)
		})
	}
}

// TestAccumulatorNotShared evaluates one program with different requests
// sequentially and from many goroutines: each evaluation builds its own
// accumulators (nothing is folded at compile time).
func TestAccumulatorNotShared(t *testing.T) {
	p, err := Compile(Models, []string{"ai.models.filter(m, m.id in request.models).map(m, m.provider_id + ':' + m.id).size() > 0 ? ai.models.filter(m, m.id in request.models) : []"}, Options{MaxCost: NoCostLimit})
	require.NoError(t, err)
	u := NewUniverse(testModels())
	ids := []string{"gpt-4o", "gpt-4o-mini", "claude-sonnet-4", "llama3:8b"}
	want := map[string]int{"gpt-4o": 2, "gpt-4o-mini": 1, "claude-sonnet-4": 1, "llama3:8b": 1}
	check := func(id string) error {
		ms, err := p.EvalModels(context.Background(), 0, u, &Request{Models: []string{id}})
		if err != nil {
			return err
		}
		if len(ms) != want[id] {
			return fmt.Errorf("%s: got %v", id, names(ms))
		}
		for _, m := range ms {
			if m.ID != id {
				return fmt.Errorf("%s: got %v", id, names(ms))
			}
		}
		return nil
	}
	for _, id := range ids {
		require.NoError(t, check(id))
	}
	errs := make(chan error, 32*len(ids))
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := range 100 {
				if err := check(ids[(g+i)%len(ids)]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func TestNumericComparisons(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want bool
	}{
		{"1.5 < 2.0 && !(2.0 < 2.0) && 2.0 <= 2.0 && 3.0 > 2.0 && !(2.0 > 2.0) && 2.0 >= 2.0", true},
		{"1 < 2 && 2 <= 2 && 3 > 2 && 2 >= 2 && !(2 > 2) && -1 < 0", true},
		{"1u < 2u && 2u <= 2u && 3u > 2u && 2u >= 2u", true},
		{"1 < 1.5 && 2.5 > 2 && 2.0 >= 2 && 2 <= 2.0 && !(2 < 2.0)", true},
		{"1u < 1.5 && 2.5 > 2u && -1 < 0u && 0u > -1 && -1.0 < 0u && 2u >= 2", true},
		{"9223372036854775807 < 1e19 && -1e19 < -9223372036854775807", true},
		{"18446744073709551615u < 1e20 && 18446744073709551615u > 9223372036854775807", true},
		{"double('NaN') < 1.0 || double('NaN') >= 1.0 || 1 > double('NaN') || double('NaN') > 1u", false},
		{"ai.models.exists(m, m.metrics.error_rate.total > 0.2) && ai.models.all(m, m.max_context_window >= 0)", true},
		{"dyn(1) < dyn(2.5) && dyn('a') < dyn('b')", true},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			require.Equal(t, tc.want, evalCompiled(t, tc.expr, Options{MaxCost: NoCostLimit}))
			require.Equal(t, tc.want, evalCompiled(t, tc.expr, Options{MaxCost: DefaultMaxCost}))
		})
	}
	t.Run("errors propagate", func(t *testing.T) {
		env, err := newEnv(Models, Options{})
		require.NoError(t, err)
		a, iss := env.Compile("ai.models.get('nope').max_context_window > 1")
		require.NoError(t, iss.Err())
		prg, err := env.Program(a, programOptions(Options{MaxCost: NoCostLimit})...)
		require.NoError(t, err)
		_, _, err = prg.Eval(&activation{ai: NewUniverse(testModels()).values(), req: requestValue(nil)})
		require.ErrorIs(t, err, ErrNotFound)
	})
}

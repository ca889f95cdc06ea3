package strategy

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRequestFree(t *testing.T) {
	for _, tc := range []struct {
		expr string
		free bool
	}{
		{"ai.models", true},
		{"ai.models.filter(m, m.metrics.error_rate.total < 0.1).sortBy(m, m.pricing.input)", true},
		{"ai.models.underCost('text.input', 1.0)", true},
		{"request.stream ? ai.models : []", false},
		{"ai.models.filter(m, m.max_context_window > request.input_tokens)", false},
		{"ai.models.filter(m, request.header('x') == '')", false},
		{"ai.models.random()", false},
		{"ai.models.randomize()", false},
		{"ai.models.filter(request, request.known)", false},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			p, err := Compile(Models, []string{tc.expr}, Options{})
			require.NoError(t, err)
			require.Equal(t, tc.free, p.RequestFree(0))
		})
	}
}

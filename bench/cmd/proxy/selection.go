//go:build !nostrategies

package main

import (
	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/bench/internal/strategies"
)

// modelSelection returns the option that configures the benchmark's model
// selection strategies (strategies.Exprs).
func modelSelection() (gateway.Option, error) {
	return gateway.WithModelSelection(strategies.Exprs()...), nil
}

//go:build nostrategies

package main

import (
	"errors"

	gateway "github.com/llmgate/gateway"
)

// modelSelection fails: this build is for a library revision that may
// predate gateway.WithModelSelection (the benchmark builds its -baseline
// with the nostrategies tag, and never runs it with -strategies).
func modelSelection() (gateway.Option, error) {
	return nil, errors.New("-strategies: this proxy was built with the nostrategies tag")
}

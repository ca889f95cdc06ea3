//go:build nostrategies

package main

import (
	"errors"

	gateway "github.com/llmgate/gateway"
)

// keyStore fails: this build is for a library revision that may predate
// gateway.WithKeyStore and package keys (the benchmark builds its
// -baseline with the nostrategies tag, and never runs it with -keys).
func keyStore() (gateway.Option, error) {
	return nil, errors.New("-keys: this proxy was built with the nostrategies tag")
}

//go:build nostrategies

package main

import (
	"context"
	"errors"
	"net/http"

	gateway "github.com/llmgate/gateway"
)

// metering fails: this build is for a library revision that may predate
// gateway.WithMetering and package credits (the benchmark builds its
// -baseline with the nostrategies tag, and never runs it with -credits).
func metering(context.Context, string) (gateway.Option, func(http.Handler) http.Handler, func() error, error) {
	return nil, nil, nil, errors.New("-credits: this proxy was built with the nostrategies tag")
}

//go:build !nostrategies

package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/bench/internal/benchledger"
	"github.com/llmgate/gateway/credits"
	"github.com/llmgate/gateway/store/sqlite"
)

// metering returns what -credits LEDGER sets up: the option that makes
// every request pay with credits (gateway.WithMetering with Credits on,
// default options otherwise) over the ledger LEDGER names, funded by
// benchledger.Fund; a wrapper that serves the ledger's benchledger.Path
// beside the gateway; and the function that closes the ledger.
//
// LEDGER is "memory" (credits.NewMemory) or "sqlite:PATH" (the standalone
// server's embedded default, store/sqlite, on the file PATH, created when
// missing).
func metering(ctx context.Context, ledger string) (gateway.Option, func(http.Handler) http.Handler, func() error, error) {
	var (
		store     credits.Store
		closeFunc = func() error { return nil }
	)
	switch kind, path, _ := strings.Cut(ledger, ":"); {
	case ledger == "memory":
		store = credits.NewMemory(credits.MemoryOptions{})
	case kind == "sqlite" && path != "":
		st, err := sqlite.Open(ctx, path, sqlite.Options{})
		if err != nil {
			return nil, nil, nil, err
		}
		store, closeFunc = st, st.Close
	default:
		return nil, nil, nil, fmt.Errorf("-credits %q: want memory or sqlite:PATH", ledger)
	}
	if err := benchledger.Fund(ctx, store); err != nil {
		_ = closeFunc()
		return nil, nil, nil, err
	}
	wrap := func(next http.Handler) http.Handler { return benchledger.Handler(store, next) }
	return gateway.WithMetering(store, gateway.MeteringOptions{Credits: true}), wrap, closeFunc, nil
}

//go:build !nostrategies

package main

import (
	"context"
	"errors"
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
// LEDGER is "memory" (credits.NewMemory), "sqlite:PATH" (the standalone
// server's embedded default, store/sqlite, on the file PATH, created when
// missing) or "sqlite-lease:PATH" (the same, leased with credits.Leasing
// at its defaults, as the standalone server does; the debug endpoint
// first writes the leases back with Leasing.Sync).
func metering(ctx context.Context, ledger string) (gateway.Option, func(http.Handler) http.Handler, func() error, error) {
	var (
		store     credits.Store
		closeFunc = func() error { return nil }
	)
	kind, path, _ := strings.Cut(ledger, ":")
	switch {
	case ledger == "memory":
		store = credits.NewMemory(credits.MemoryOptions{})
	case (kind == "sqlite" || kind == "sqlite-lease") && path != "":
		st, err := sqlite.Open(ctx, path, sqlite.Options{})
		if err != nil {
			return nil, nil, nil, err
		}
		store, closeFunc = st, st.Close
	default:
		return nil, nil, nil, fmt.Errorf("-credits %q: want memory, sqlite:PATH or sqlite-lease:PATH", ledger)
	}
	if err := benchledger.Fund(ctx, store); err != nil {
		_ = closeFunc()
		return nil, nil, nil, err
	}
	var (
		ledgerOf credits.Ledger = store
		sync     func(context.Context) error
	)
	if kind == "sqlite-lease" {
		l := credits.NewLeasing(store.(credits.LeaseStore), credits.LeasingOptions{})
		ledgerOf, sync = l, l.Sync
		closeStore := closeFunc
		closeFunc = func() error { return errors.Join(l.Close(context.Background()), closeStore()) }
	}
	wrap := func(next http.Handler) http.Handler { return benchledger.Handler(store, sync, next) }
	return gateway.WithMetering(ledgerOf, gateway.MeteringOptions{Credits: true}), wrap, closeFunc, nil
}

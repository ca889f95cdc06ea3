//go:build !nostrategies

package main

import (
	"context"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/bench/internal/gatewaykey"
	"github.com/llmgate/gateway/keys"
)

// keyStore returns the option that requires gateway API keys: a
// keys.MemoryStore holding the benchmark's key (gatewaykey.Key), for the
// endpoint gatewaykey.Endpoint, with the default cache and touch options.
func keyStore() (gateway.Option, error) {
	store := keys.NewMemoryStore()
	if _, err := store.Create(context.Background(), gatewaykey.Key()); err != nil {
		return nil, err
	}
	return gateway.WithKeyStore(store, gateway.KeyStoreOptions{Endpoint: gatewaykey.Endpoint}), nil
}

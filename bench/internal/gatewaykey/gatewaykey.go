// Package gatewaykey holds the gateway API key of the load benchmark's
// "llmgate + gateway keys" path, shared by the proxy (bench/cmd/proxy
// -keys), which puts the key in its key store, and the load generator,
// which sends the token on every request of every path (the paths without
// a key store ignore it).
//
// The token is fixed, not secret: it only opens the benchmark's own
// gateway on loopback, and a fixed token makes every run send the same
// bytes.
package gatewaykey

import "github.com/llmgate/gateway/keys"

// Token is the benchmark's gateway token: "lg-" and 43 base64url
// characters, the shape keys.LooksLikeToken accepts.
const Token = keys.TokenPrefix + "llmgate-load-benchmark-gateway-api-key-0001"

// Unknown has the shape of a gateway token but is no key's: the benchmark
// sends it once to the keys path, which must refuse it (401), to prove the
// path authenticates.
const Unknown = keys.TokenPrefix + "llmgate-load-benchmark-unknown-api-key-0001"

// ID is the public ID of the key of Token: "key_" and 26 base32
// characters.
const ID = "key_benchmarkgatewayapikey2345"

// Endpoint is the endpoint the key belongs to, which the proxy passes as
// gateway.KeyStoreOptions.Endpoint.
const Endpoint = "bench"

// Key returns the key of Token as a store keeps it: its ID, the token's
// Hash and Redacted form, and Endpoint; no expiry and no restrictions.
// A new value on each call; safe for concurrent use.
func Key() keys.Key {
	return keys.Key{ID: ID, Hash: keys.Hash(Token), Redacted: keys.Redact(Token), Endpoint: Endpoint}
}

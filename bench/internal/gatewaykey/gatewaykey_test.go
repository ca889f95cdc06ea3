package gatewaykey

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/keys"
)

func TestToken(t *testing.T) {
	for _, tc := range []struct{ name, token string }{{"token", Token}, {"unknown", Unknown}} {
		t.Run(tc.name, func(t *testing.T) {
			require.True(t, keys.LooksLikeToken(tc.token), "a gateway sees %q as a provider key, not a gateway token", tc.token)
		})
	}
	require.NotEqual(t, Token, Unknown)
}

func TestKey(t *testing.T) {
	k := Key()
	require.True(t, keys.ValidID(k.ID), k.ID)
	require.NoError(t, keys.Validate(&k))
	require.Equal(t, keys.Hash(Token), k.Hash)
	require.NotContains(t, k.Redacted, Token[len(keys.TokenPrefix):len(Token)-4], "Redacted shows too much")

	store := keys.NewMemoryStore()
	_, err := store.Create(context.Background(), k)
	require.NoError(t, err)
	got, _, err := store.Lookup(context.Background(), keys.Hash(Token))
	require.NoError(t, err)
	require.Equal(t, ID, got.ID)
	require.Equal(t, Endpoint, got.Endpoint)
	_, _, err = store.Lookup(context.Background(), keys.Hash(Unknown))
	require.ErrorIs(t, err, keys.ErrNotFound)
}

func ExampleKey() {
	k := Key()
	fmt.Println(k.ID, k.Redacted, k.Endpoint)
	// Output: key_benchmarkgatewayapikey2345 lg-llm…0001 bench
}

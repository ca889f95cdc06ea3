package keys_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/keys"
)

func TestNewKey(t *testing.T) {
	seenIDs := map[string]bool{}
	seenTokens := map[string]bool{}
	for range 200 {
		k, token, err := keys.NewKey("ep")
		require.NoError(t, err)
		require.True(t, keys.ValidID(k.ID), k.ID)
		require.True(t, keys.LooksLikeToken(token), token)
		require.Len(t, token, 46)
		raw, err := base64.RawURLEncoding.DecodeString(token[3:])
		require.NoError(t, err)
		require.Len(t, raw, 32)
		require.Equal(t, keys.Hash(token), k.Hash)
		require.Equal(t, keys.Redact(token), k.Redacted)
		require.Equal(t, "ep", k.Endpoint)
		require.NotContains(t, k.Redacted, token[6:42])
		require.NoError(t, keys.Validate(&k))
		require.False(t, seenIDs[k.ID] || seenTokens[token], "fresh every time")
		seenIDs[k.ID], seenTokens[token] = true, true
	}
}

func TestNewAttachedID(t *testing.T) {
	a, b := keys.NewAttachedID(), keys.NewAttachedID()
	require.True(t, keys.ValidAttachedID(a), a)
	require.NotEqual(t, a, b)
	require.False(t, keys.ValidID(a))
}

func TestHash(t *testing.T) {
	// SHA-256("abc"), FIPS 180-2.
	h := keys.Hash("abc")
	require.Equal(t, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", hex.EncodeToString(h[:]))
	require.True(t, keys.Equal(h, keys.Hash("abc")))
	require.False(t, keys.Equal(h, keys.Hash("abd")))
	require.False(t, keys.Equal(h, [32]byte{}))
	for _, n := range []int{0, 45, 46, 47, 1000} {
		s := strings.Repeat("t", n)
		require.Equal(t, sha256.Sum256([]byte(s)), keys.Hash(s), "length %d", n)
	}
}

func TestLooksLikeToken(t *testing.T) {
	_, token, err := keys.NewKey("ep")
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		s    string
		want bool
	}{
		{"token", token, true},
		{"all alphabet", "lg-" + strings.Repeat("aZ09-_", 7) + "x", true},
		{"empty", "", false},
		{"prefix only", "lg-", false},
		{"short", token[:45], false},
		{"long", token + "a", false},
		{"other prefix", "sk-" + token[3:], false},
		{"upper prefix", "LG-" + token[3:], false},
		{"padding", token[:45] + "=", false},
		{"standard base64", token[:45] + "+", false},
		{"space", token[:45] + " ", false},
		{"provider key", "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, keys.LooksLikeToken(tc.s))
		})
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct {
		name, secret, want string
	}{
		{"empty", "", "…"},
		{"tiny", "abc", "…"},
		{"five", "abcde", "…"},
		{"six", "abcdef", "…ef"},
		{"short", "sk-12345678", "…78"},
		{"just short", strings.Repeat("x", 28) + "yz", "xxxxxx…xxyz"},
		{"29", strings.Repeat("x", 27) + "yz", "…yz"},
		{"token", "lg-3fZabcdefghijklmnopqrstuvwxyz0123456789k9Qa", "lg-3fZ…k9Qa"},
		{"multibyte", strings.Repeat("é", 40), "éééééé…éééé"},
		{"invalid UTF-8", "\xff\xfe" + strings.Repeat("a", 40), "\xff\xfeaaaa…aaaa"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := keys.Redact(tc.secret)
			require.Equal(t, tc.want, got)
			shown := len([]rune(strings.ReplaceAll(got, "…", "")))
			require.LessOrEqual(t, 3*shown, len([]rune(tc.secret)), "never more than a third shown")
		})
	}
}

func BenchmarkHash(b *testing.B) {
	_, token, err := keys.NewKey("ep")
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		keys.Hash(token)
	}
}

func BenchmarkLooksLikeToken(b *testing.B) {
	_, token, err := keys.NewKey("ep")
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if !keys.LooksLikeToken(token) {
			b.Fatal("not a token")
		}
	}
}

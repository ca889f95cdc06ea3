package config

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/keys"
	"github.com/llmgate/gateway/providers"
)

// kekBytes is a key-encryption key for tests, and its encodings.
var (
	kekBytes = [32]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 0xfe}
	kekB64   = base64.StdEncoding.EncodeToString(kekBytes[:])
	kekHex   = hex.EncodeToString(kekBytes[:])
)

const adminToken = "admin-token-0123456789abcdef"

const keysConfig = `
store: sqlite:/var/lib/llmgate/keys.db
endpoint: prod
gateway_keys: optional
key_encryption_keys:
  - {id: kek-2026-12, key: "${env:KEK}"}
  - {id: kek-2026-06, key: ` + "%s" + `}
admin:
  listen: 127.0.0.1:9090
  token: "${env:ADMIN_TOKEN}"
`

func TestParseKeyFields(t *testing.T) {
	oldKEK := [32]byte{0xff}
	old := base64.RawURLEncoding.EncodeToString(oldKEK[:])
	f, err := Parse(fmt.Appendf(nil, keysConfig, old), mapEnv(map[string]string{"KEK": kekB64, "ADMIN_TOKEN": adminToken}))
	require.NoError(t, err)
	require.Equal(t, providers.Secret("sqlite:/var/lib/llmgate/keys.db"), f.Store)
	require.Equal(t, "prod", f.Endpoint)
	require.Equal(t, "optional", f.GatewayKeys)
	require.Equal(t, []KEK{{ID: "kek-2026-12", Key: providers.Secret(kekB64)}, {ID: "kek-2026-06", Key: providers.Secret(old)}}, f.KeyEncryptionKeys)
	require.Equal(t, Admin{Listen: "127.0.0.1:9090", Token: adminToken}, f.Admin)

	kind, dsn := f.StoreDSN()
	require.Equal(t, StoreSQLite, kind)
	require.Equal(t, "/var/lib/llmgate/keys.db", dsn)
	require.Equal(t, "sqlite:/var/lib/llmgate/keys.db", f.StoreName())
	require.Equal(t, "prod", f.EndpointName())

	o, err := f.KeyStoreOptions()
	require.NoError(t, err)
	require.Equal(t, "prod", o.Endpoint)
	require.True(t, o.Optional)
	require.Equal(t, "kek-2026-12", o.Sealer.Current())
	require.Equal(t, []string{"kek-2026-06"}, o.Sealer.Old())

	// The Sealer opens what a Sealer of the same keys sealed.
	want, err := keys.NewSealer(keys.KEK{ID: "kek-2026-06", Key: oldKEK})
	require.NoError(t, err)
	a, err := want.NewAttached("key_x", "openai", "sk-provider")
	require.NoError(t, err)
	secret, err := o.Sealer.OpenAttached(&a)
	require.NoError(t, err)
	require.Equal(t, "sk-provider", secret)

	// The store settings are not options: Options builds a gateway without them.
	gw, err := gateway.New(f.Options()...)
	require.NoError(t, err)
	require.NoError(t, gw.Close())
}

func TestKeyFieldDefaults(t *testing.T) {
	f, err := Parse([]byte("store: 'postgresql://llmgate:pw@db.internal:5432/gw?sslmode=disable'\n"), mapEnv(nil))
	require.NoError(t, err)
	kind, dsn := f.StoreDSN()
	require.Equal(t, StorePostgres, kind)
	require.Equal(t, "postgresql://llmgate:pw@db.internal:5432/gw?sslmode=disable", dsn)
	require.Equal(t, "postgresql://db.internal:5432/gw", f.StoreName(), "no password in logs")
	o, err := f.KeyStoreOptions()
	require.NoError(t, err)
	require.Equal(t, gateway.KeyStoreOptions{Endpoint: DefaultEndpoint}, o, "required, no sealer")

	f, err = Parse(nil, mapEnv(nil))
	require.NoError(t, err)
	kind, dsn = f.StoreDSN()
	require.Empty(t, kind+dsn)
	require.Empty(t, f.StoreName())
	s, err := f.Sealer()
	require.NoError(t, err)
	require.Nil(t, s)
}

func TestDecodeKEK(t *testing.T) {
	for name, s := range map[string]string{
		"hex":               kekHex,
		"upper hex":         strings.ToUpper(kekHex),
		"std base64":        kekB64,
		"raw std base64":    base64.RawStdEncoding.EncodeToString(kekBytes[:]),
		"url base64":        base64.URLEncoding.EncodeToString(kekBytes[:]),
		"raw url base64":    base64.RawURLEncoding.EncodeToString(kekBytes[:]),
		"trailing new line": kekB64 + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			k, err := decodeKEK(s)
			require.NoError(t, err)
			require.Equal(t, kekBytes, k)
		})
	}
}

// TestParseKeyFieldErrors places every problem of the key store fields.
func TestParseKeyFieldErrors(t *testing.T) {
	env := mapEnv(map[string]string{"KEK": kekB64, "SHORT": "c2hvcnQ=", "TOKEN": adminToken, "ZERO": base64.StdEncoding.EncodeToString(make([]byte, 32))})
	const store = "store: sqlite:x.db\n"
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"no scheme", "store: ./llmgate.db", `store: must be sqlite:PATH or a postgres:// URL (line 1)`},
		{"unknown scheme", "store: mysql://u:pw@h/db", `store: has the unknown scheme "mysql": use sqlite:PATH or a postgres:// URL (line 1)`},
		{"sqlite without a path", "store: 'sqlite:'", `store: names no database file`},
		{"postgres not a URL", "store: 'postgres:host=db password=pw'", `store: is not a PostgreSQL URL such as postgres://user@host:5432/llmgate (line 1)`},
		{"store a list", "store: [a]", `store: expected a string, got a list`},
		{"empty endpoint", store + "endpoint: ''", `endpoint: must not be empty (default "default") (line 2)`},
		{"long endpoint", store + "endpoint: " + strings.Repeat("e", 256), `endpoint: must be valid UTF-8 of at most 255 bytes (line 2)`},
		{"bad gateway_keys", store + "gateway_keys: sometimes", `gateway_keys: "sometimes" is not one of required, optional (line 2)`},
		{"kek without id", store + "key_encryption_keys:\n  - key: ${env:KEK}", `key_encryption_keys[0].id: is required (line 3)`},
		{"kek id not ascii", store + "key_encryption_keys: [{id: 'clé', key: '${env:KEK}'}]", `key_encryption_keys[0].id: must be 1 to 64 printable ASCII characters (line 2)`},
		{"duplicate kek id", store + "key_encryption_keys:\n  - {id: a, key: '${env:KEK}'}\n  - {id: a, key: '" + kekHex + "'}", `key_encryption_keys[1].id: KEK "a" is also key_encryption_keys[0] (line 4)`},
		{"kek without key", store + "key_encryption_keys:\n  - id: a", `key_encryption_keys[0].key: is required (line 3)`},
		{"short kek", store + "key_encryption_keys:\n  - id: a\n    key: ${env:SHORT}", `key_encryption_keys[0].key: must decode to 32 bytes, got 5 (make one with: openssl rand -base64 32) (line 4)`},
		{"kek not base64", store + "key_encryption_keys: [{id: a, key: 'not a key!'}]", `key_encryption_keys[0].key: must be 32 bytes in base64 or 64 hexadecimal characters`},
		{"zero kek", store + "key_encryption_keys: [{id: a, key: '${env:ZERO}'}]", `key_encryption_keys[0].key: must not be all zeros`},
		{"kek unset", store + "key_encryption_keys: [{id: a, key: '${env:NOPE}'}]", `key_encryption_keys[0].key: ${env:NOPE} is not set (line 2)`},
		{"kek list a mapping", store + "key_encryption_keys: {id: a}", `key_encryption_keys: expected a list, got a mapping (line 2)`},
		{"bad admin listen", store + "admin:\n  listen: '9090'\n  token: ${env:TOKEN}", `admin.listen: "9090" is not a host:port address (line 3)`},
		{"admin without token", store + "admin:\n  listen: 127.0.0.1:9090", `admin.token: is required with admin.listen (at least 16 bytes) (line 3)`},
		{"admin without listen", store + "admin:\n  token: ${env:TOKEN}", `admin.listen: is required with admin.token (line 3)`},
		{"short admin token", store + "admin: {listen: ':9090', token: short-token}", `admin.token: must be at least 16 bytes, got 11 (line 2)`},
		{"admin token with spaces", store + "admin: {listen: ':9090', token: ' ${env:TOKEN}'}", `admin.token: must not begin or end with spaces (line 2)`},
		{"unknown admin field", store + "admin: {listen: ':9090', token: '${env:TOKEN}', tls: true}", `admin.tls: unknown field (line 2)`},
		{"endpoint without store", "endpoint: prod", `endpoint: needs a key store: set store (sqlite:PATH or postgres://…) (line 1)`},
		{"gateway_keys without store", "\ngateway_keys: required", `gateway_keys: needs a key store: set store (sqlite:PATH or postgres://…) (line 2)`},
		{"keks without store", "key_encryption_keys: [{id: a, key: '${env:KEK}'}]", `key_encryption_keys: needs a key store`},
		{"admin without store", "admin:\n  listen: ':9090'\n  token: ${env:TOKEN}", `admin: needs a key store: set store (sqlite:PATH or postgres://…) (line 2)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), env)
			require.Error(t, err)
			var ce *Error
			require.ErrorAs(t, err, &ce)
			require.Len(t, ce.Problems, 1, err.Error())
			require.Contains(t, err.Error(), tt.want)
		})
	}
}

// TestKeySecretsNeverPrinted checks that no problem and no formatting of
// its secret fields shows a KEK, the admin token or the store's password.
func TestKeySecretsNeverPrinted(t *testing.T) {
	const password = "pg-password-5ecret"
	const token = "admin-5ecret-token-value-0123"
	kek := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef0"))[:40] // not 32 bytes
	f, err := Parse([]byte(`
store: postgres://u:`+password+`@db/x
endpoint: ${env:TOKEN}x
gateway_keys: ${env:TOKEN}
key_encryption_keys:
  - {id: a, key: "`+kek+`"}
  - {id: b, key: "${env:TOKEN}"}
admin: {listen: "${env:TOKEN}", token: "${env:TOKEN}"}
`), mapEnv(map[string]string{"TOKEN": token}))
	require.Error(t, err)
	require.Greater(t, strings.Count(err.Error(), "\n"), 2, err.Error())
	require.NotContains(t, err.Error(), token)
	require.NotContains(t, err.Error(), "5ecret")
	require.NotContains(t, err.Error(), kek[:20])
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(verb, []any{f.Store, f.KeyEncryptionKeys, Admin{Token: f.Admin.Token}})
		require.NotContains(t, out, "5ecret", verb)
		require.NotContains(t, out, kek[:20], verb)
	}
	require.Equal(t, "postgres://db/x", f.StoreName())
}

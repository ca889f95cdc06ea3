package config

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/admin"
	"github.com/llmgate/gateway/keys"
	"github.com/llmgate/gateway/providers"
)

// DefaultEndpoint is the endpoint name of a file that sets store but no
// endpoint.
const DefaultEndpoint = "default"

// Store kinds, as File.StoreDSN returns them.
const (
	// StoreSQLite is a store written "sqlite:PATH" (store/sqlite).
	StoreSQLite = "sqlite"
	// StorePostgres is a store written "postgres://…" or
	// "postgresql://…" (store/postgres).
	StorePostgres = "postgres"
)

// Values of gateway_keys.
const (
	GatewayKeysRequired = "required"
	GatewayKeysOptional = "optional"
)

// KEK is one entry of key_encryption_keys: a key-encryption key for the
// provider keys attached to gateway keys (keys.KEK).
type KEK struct {
	// ID names the KEK; it is stored beside every key sealed under it.
	ID string `yaml:"id"`
	// Key is the 32-byte AES key in base64 (standard or URL alphabet,
	// padded or not) or as 64 hexadecimal characters; it is never
	// printed.
	Key providers.Secret `yaml:"key"`
}

// Admin is admin: the admin API of gateway keys on a listener of its own.
// Server setting: Options ignores it.
type Admin struct {
	// Listen is the admin listener's address (host:port).
	Listen string `yaml:"listen"`
	// Token is the bearer token of the admin API, at least
	// admin.MinTokenLen bytes; it is never printed.
	Token providers.Secret `yaml:"token"`
}

// checkKeys applies the rules of the key store fields: store, endpoint,
// gateway_keys, key_encryption_keys and admin. Secrets (KEKs, the admin
// token) and the store's URL are never shown in a message.
func (d *decoder) checkKeys(f *File) {
	hasStore := f.Store != "" && !d.bad["store"]
	if f.Store != "" && !d.bad["store"] {
		if _, _, err := parseStore(f.Store.Reveal()); err != nil {
			d.failAt("store", "%s", err)
		}
	}
	_, endpointSet := d.lines["endpoint"]
	switch {
	case d.bad["endpoint"]:
	case endpointSet && f.Endpoint == "":
		d.failAt("endpoint", "must not be empty (default %q)", DefaultEndpoint)
	case len(f.Endpoint) > keys.MaxDescription || !utf8.ValidString(f.Endpoint):
		d.failAt("endpoint", "must be valid UTF-8 of at most %d bytes", keys.MaxDescription)
	}
	if f.GatewayKeys != "" && !d.bad["gateway_keys"] && !oneOf(f.GatewayKeys, gatewayKeysModes) {
		d.failAt("gateway_keys", "%s is not one of %s", d.show("gateway_keys", f.GatewayKeys), strings.Join(gatewayKeysModes, ", "))
	}
	seen := map[string]int{}
	for i, k := range f.KeyEncryptionKeys {
		path := "key_encryption_keys[" + strconv.Itoa(i) + "]"
		if d.bad[path] {
			continue
		}
		switch j, dup := seen[k.ID]; {
		case d.bad[path+".id"]:
		case k.ID == "":
			d.failAt(path+".id", "is required")
		case len(k.ID) > keys.MaxKEKID || !printableASCII(k.ID):
			d.failAt(path+".id", "must be 1 to %d printable ASCII characters", keys.MaxKEKID)
		case dup:
			d.failAt(path+".id", "KEK %s is also key_encryption_keys[%d]", d.show(path+".id", k.ID), j)
		default:
			seen[k.ID] = i
		}
		switch _, err := decodeKEK(k.Key.Reveal()); {
		case d.bad[path+".key"]:
		case k.Key == "":
			d.failAt(path+".key", "is required")
		case err != nil:
			d.failAt(path+".key", "%s", err)
		}
	}
	a := f.Admin
	if a.Listen != "" && !d.bad["admin.listen"] {
		if _, port, err := net.SplitHostPort(a.Listen); err != nil || !validPort(port) {
			d.failAt("admin.listen", "%s is not a host:port address", d.show("admin.listen", a.Listen))
		}
	}
	switch t := a.Token.Reveal(); {
	case d.bad["admin.token"]:
	case t == "" && a.Listen != "":
		d.failAt("admin.token", "is required with admin.listen (at least %d bytes)", admin.MinTokenLen)
	case t == "":
	case len(t) < admin.MinTokenLen:
		d.failAt("admin.token", "must be at least %d bytes, got %d", admin.MinTokenLen, len(t))
	case strings.TrimSpace(t) != t:
		d.failAt("admin.token", "must not begin or end with spaces")
	case a.Listen == "" && !d.bad["admin.listen"]:
		d.failAt("admin.listen", "is required with admin.token")
	}
	if hasStore || d.bad["store"] {
		return
	}
	for _, field := range []struct {
		name string
		set  bool
	}{
		{"endpoint", endpointSet},
		{"gateway_keys", f.GatewayKeys != ""},
		{"key_encryption_keys", len(f.KeyEncryptionKeys) > 0},
		{"admin", a.Listen != "" || a.Token != ""},
	} {
		if field.set {
			d.failAt(field.name, "needs a key store: set store (sqlite:PATH or postgres://…)")
		}
	}
}

var gatewayKeysModes = []string{GatewayKeysRequired, GatewayKeysOptional}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// parseStore returns the kind and DSN of a store value. Its errors never
// show the value, which may hold a password.
func parseStore(s string) (kind, dsn string, err error) {
	scheme, rest, ok := strings.Cut(s, ":")
	switch {
	case !ok:
		return "", "", errors.New("must be sqlite:PATH or a postgres:// URL")
	case strings.EqualFold(scheme, "sqlite"):
		if rest == "" {
			return "", "", errors.New("names no database file: write sqlite:PATH, such as sqlite:./llmgate.db")
		}
		return StoreSQLite, rest, nil
	case strings.EqualFold(scheme, "postgres") || strings.EqualFold(scheme, "postgresql"):
		u, err := url.Parse(s)
		if err != nil || !strings.HasPrefix(rest, "//") || u.Host == "" {
			return "", "", errors.New("is not a PostgreSQL URL such as postgres://user@host:5432/llmgate")
		}
		return StorePostgres, s, nil
	}
	return "", "", fmt.Errorf("has the unknown scheme %q: use sqlite:PATH or a postgres:// URL", scheme)
}

// decodeKEK decodes a key-encryption key written as 64 hexadecimal
// characters or in base64. Its errors never show the key.
func decodeKEK(s string) ([32]byte, error) {
	var k [32]byte
	s = strings.TrimSpace(s)
	if len(s) == 64 {
		if b, err := hex.DecodeString(s); err == nil {
			copy(k[:], b)
			return k, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(b) != len(k) {
			return k, fmt.Errorf("must decode to 32 bytes, got %d (make one with: openssl rand -base64 32)", len(b))
		}
		copy(k[:], b)
		if k == [32]byte{} {
			return k, errors.New("must not be all zeros")
		}
		return k, nil
	}
	return k, errors.New("must be 32 bytes in base64 or 64 hexadecimal characters (make one with: openssl rand -base64 32)")
}

// StoreDSN returns the kind of the file's key store (StoreSQLite or
// StorePostgres) and what its driver opens: for SQLite the path (or SQLite
// URI) after "sqlite:", relative to the working directory; for PostgreSQL
// the URL as written. Both are "" when store is not set or is faulty.
// The DSN may hold a password: log StoreName instead.
func (f *File) StoreDSN() (kind, dsn string) {
	if f.Store == "" || f.bad["store"] {
		return "", ""
	}
	kind, dsn, err := parseStore(f.Store.Reveal())
	if err != nil {
		return "", ""
	}
	return kind, dsn
}

// StoreName returns the key store for logs, never a password: the SQLite
// path, or the PostgreSQL URL without its user information and query;
// "" without a store.
func (f *File) StoreName() string {
	kind, dsn := f.StoreDSN()
	switch kind {
	case StoreSQLite:
		return "sqlite:" + dsn
	case StorePostgres:
		u, err := url.Parse(dsn)
		if err != nil {
			return StorePostgres
		}
		return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	}
	return ""
}

// EndpointName returns endpoint, or DefaultEndpoint when it is not set.
func (f *File) EndpointName() string {
	if f.Endpoint == "" {
		return DefaultEndpoint
	}
	return f.Endpoint
}

// Sealer returns the keys.Sealer of key_encryption_keys (the first entry
// current, the others old ones, still opened), or nil when the list is
// empty. Each call returns a new Sealer. Its errors name KEK IDs, never
// keys.
func (f *File) Sealer() (*keys.Sealer, error) {
	if len(f.KeyEncryptionKeys) == 0 {
		return nil, nil
	}
	ks := make([]keys.KEK, len(f.KeyEncryptionKeys))
	for i, k := range f.KeyEncryptionKeys {
		b, err := decodeKEK(k.Key.Reveal())
		if err != nil {
			return nil, fmt.Errorf("key_encryption_keys[%d] (%q): %w", i, k.ID, err)
		}
		ks[i] = keys.KEK{ID: k.ID, Key: b}
	}
	return keys.NewSealer(ks[0], ks[1:]...)
}

// KeyStoreOptions returns the gateway.KeyStoreOptions the file sets for
// gateway.WithKeyStore: its endpoint (EndpointName), gateway_keys
// (Optional when "optional") and the Sealer of key_encryption_keys. The
// store itself is the caller's to open (see StoreDSN): this package
// imports no database driver.
func (f *File) KeyStoreOptions() (gateway.KeyStoreOptions, error) {
	s, err := f.Sealer()
	if err != nil {
		return gateway.KeyStoreOptions{}, err
	}
	return gateway.KeyStoreOptions{
		Endpoint: f.EndpointName(),
		Optional: strings.EqualFold(f.GatewayKeys, GatewayKeysOptional),
		Sealer:   s,
	}, nil
}

package keys

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"unicode/utf8"
)

// TokenPrefix starts every gateway token, so that a gateway token can be
// told from a provider key without a lookup (see LooksLikeToken).
const TokenPrefix = "lg-"

// tokenLen is the length of a token: the prefix and 32 random bytes in
// unpadded base64url (43 characters).
const tokenLen = len(TokenPrefix) + 43

// idEncoding is lower-case base32 (a-z, 2-7) without padding.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewKey mints a gateway API key for endpoint: a new ID ("key_" and 26
// base32 characters, 130 random bits) and a new token ("lg-" and 43
// base64url characters, 256 random bits). k carries the token's Hash and
// Redacted form, never the token itself; token is returned once, to be
// shown to the operator, and is not kept or logged anywhere.
//
// err is non-nil only when the system's random source fails. NewKey does
// not validate endpoint (the store's Create does). It is safe for
// concurrent use.
func NewKey(endpoint string) (k Key, token string, err error) {
	id, err := randomID("key_")
	if err != nil {
		return Key{}, "", err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Key{}, "", err
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return Key{ID: id, Hash: Hash(token), Redacted: Redact(token), Endpoint: endpoint}, token, nil
}

// NewAttachedID returns a new attached key ID: "pk_" and 26 lower-case
// base32 characters (130 random bits). It panics only if the system's
// random source fails, which crypto/rand documents as irrecoverable.
func NewAttachedID() string {
	id, err := randomID("pk_")
	if err != nil {
		panic("keys: crypto/rand failed: " + err.Error())
	}
	return id
}

// randomID returns prefix and 26 base32 characters of fresh randomness.
func randomID(prefix string) (string, error) {
	var b [17]byte // 136 bits, of which the 26 characters keep 130
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return prefix + idEncoding.EncodeToString(b[:])[:26], nil
}

// Hash returns the SHA-256 of a token, which is what stores keep and index.
// A plain fast hash is enough: tokens carry 256 random bits, so there is
// nothing to brute-force and no password-style slow hash (bcrypt, argon2)
// is needed; a fast hash keeps authentication cheap on the request path.
func Hash(token string) [32]byte {
	return sha256.Sum256([]byte(token))
}

// Equal reports whether two hashes are equal, in time independent of their
// contents.
func Equal(a, b [32]byte) bool {
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// LooksLikeToken reports whether s has the shape of a gateway token: the
// "lg-" prefix and 43 base64url characters. It does not say the token
// exists; it lets the gateway tell a gateway token from a provider key
// without a store lookup.
func LooksLikeToken(s string) bool {
	if len(s) != tokenLen || s[:len(TokenPrefix)] != TokenPrefix {
		return false
	}
	for i := len(TokenPrefix); i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// redactLong is the length (in characters) from which Redact shows the
// first six and last four characters: ten shown characters are at most a
// third of the secret.
const redactLong = 30

// Redact returns the display form of a secret (a token or a provider key):
// its first six characters, "…" and its last four when it has at least 30
// characters; "…" and its last two when it has 6 to 29; "…" alone when it
// is shorter. It never shows more than a third of the secret. Characters
// are runes; invalid UTF-8 bytes count as one each.
func Redact(secret string) string {
	n := utf8.RuneCountInString(secret)
	switch {
	case n >= redactLong:
		return secret[:runeOffset(secret, 6)] + "…" + secret[runeOffset(secret, n-4):]
	case n >= 6:
		return "…" + secret[runeOffset(secret, n-2):]
	}
	return "…"
}

// runeOffset returns the byte offset of the i-th rune of s.
func runeOffset(s string, i int) int {
	for off := range s {
		if i == 0 {
			return off
		}
		i--
	}
	return len(s)
}

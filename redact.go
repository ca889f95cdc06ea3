package gateway

import (
	"strings"

	"github.com/llmgate/gateway/providers"
)

// redacted replaces every secret the gateway removes from text.
const redacted = "[redacted]"

// minSecretLen is the shortest value treated as a secret: replacing
// shorter ones would mangle ordinary text.
const minSecretLen = 4

// redactor removes credentials from everything the gateway relays or
// records from an upstream: error bodies and messages, in-stream error
// events, copied upstream headers and attempt reasons. It knows the
// configured keys of one routing snapshot; a request adds the credentials
// it used itself (the client's, a key attached to its gateway key), so keys
// added after New (by Reload, or attached per client) are covered too.
// Immutable, safe for concurrent use.
type redactor struct {
	secrets []string // configured secrets of at least minSecretLen bytes, longest first
}

func newRedactor(secrets []string) *redactor {
	r := &redactor{}
	for _, s := range secrets {
		if len(s) >= minSecretLen {
			r.secrets = append(r.secrets, s)
		}
	}
	// Longest first, so that a key containing another is replaced whole.
	for i := 1; i < len(r.secrets); i++ {
		for j := i; j > 0 && len(r.secrets[j]) > len(r.secrets[j-1]); j-- {
			r.secrets[j], r.secrets[j-1] = r.secrets[j-1], r.secrets[j]
		}
	}
	return r
}

// String returns s with every configured secret and every one of extra
// replaced by "[redacted]". It does not allocate when s contains none.
func (r *redactor) String(s string, extra ...providers.Secret) string {
	for _, e := range extra {
		if v := e.Reveal(); len(v) >= minSecretLen && strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, redacted)
		}
	}
	for _, v := range r.secrets {
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, redacted)
		}
	}
	return s
}

// Bytes is String for a byte slice: b itself when it contains no secret.
func (r *redactor) Bytes(b []byte, extra ...providers.Secret) []byte {
	s := r.String(string(b), extra...)
	if len(s) == len(b) && s == string(b) {
		return b
	}
	return []byte(s)
}

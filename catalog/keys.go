package catalog

import (
	"cmp"
	"slices"
	"strings"
)

// keyPrefix is one distinct API key prefix and the providers declaring it.
type keyPrefix struct {
	prefix string
	owners []*Provider
}

// indexKeyPrefixes groups the providers' key prefixes by prefix, longest
// first (ties by prefix, for a stable order).
func indexKeyPrefixes(provs []*Provider) []keyPrefix {
	var out []keyPrefix
	for _, p := range provs {
		for _, k := range p.KeyPrefixes {
			i := slices.IndexFunc(out, func(kp keyPrefix) bool { return kp.prefix == k })
			if i < 0 {
				out = append(out, keyPrefix{prefix: k})
				i = len(out) - 1
			}
			if !slices.Contains(out[i].owners, p) {
				out[i].owners = append(out[i].owners, p)
			}
		}
	}
	slices.SortFunc(out, func(a, b keyPrefix) int {
		return cmp.Or(cmp.Compare(len(b.prefix), len(a.prefix)), strings.Compare(a.prefix, b.prefix))
	})
	return out
}

// MayOwnKey reports whether credential, an API key a client sent for
// pass-through, may belong to provider p: whether it starts with one of p's
// [Provider.KeyPrefixes] and no provider of the catalog declares a longer
// prefix that it also starts with. So with the built-in catalog "sk-ant-…"
// may belong to Anthropic only, "sk-or-…" to OpenRouter only, "sk-proj-…" to
// OpenAI and DeepSeek (both document "sk-"), and a credential that matches
// no prefix to nobody. A provider without key prefixes owns no credential;
// callers that want to pass keys to such providers must decide that
// themselves. Prefixes are case-sensitive.
//
// p is identified by its ID and should be a provider of c. MayOwnKey does not
// allocate; the prefixes are indexed when the catalog is built. It is safe
// for concurrent use and on a nil catalog or provider (false).
func (c *Catalog) MayOwnKey(p *Provider, credential string) bool {
	if c == nil || p == nil {
		return false
	}
	for i := range c.keyPrefixes {
		kp := &c.keyPrefixes[i]
		if !strings.HasPrefix(credential, kp.prefix) {
			continue
		}
		// The longest prefix the credential starts with decides.
		for _, o := range kp.owners {
			if o == p || o.ID == p.ID {
				return true
			}
		}
		return false
	}
	return false
}

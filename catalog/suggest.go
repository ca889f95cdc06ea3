package catalog

import "strings"

// MaxSuggestLen is the longest name, in bytes, [Catalog.Suggest] considers.
const MaxSuggestLen = 128

// Suggest returns the model name closest to name that the catalog knows, for
// a "did you mean" hint after [Catalog.Resolve] failed or an upstream
// rejected a passed-through model. It compares, ASCII case-insensitively and
// by edit distance (insertions, deletions, substitutions and transpositions
// of adjacent characters), name with every model ID and alias, keeping the
// shape of name:
//
//   - "provider:model" with a known provider: the nearest model of that
//     provider, behind the provider prefix as written ("OpenAI:gpt4o" →
//     "OpenAI:gpt-4o").
//   - "provider:model" with an unknown provider: the nearest provider name,
//     followed by the nearest of its models, or the model part as written
//     when none is near ("opnai:gpt-4o" → "openai:gpt-4o"); or the nearest
//     model name of any provider if that is closer (model IDs may contain
//     ':').
//   - "author/model": the nearest model of that author behind the author as
//     written, or the nearest ID or alias as a whole.
//   - anything else: the nearest model ID or alias of any provider
//     ("gpt-4o-mnii" → "gpt-4o-mini").
//
// A name is near when at most 1 edit away for names of 3 or 4 bytes, 2 for
// up to 12 bytes and 3 beyond; names shorter than 3 bytes match only
// exactly, and names longer than [MaxSuggestLen] get no suggestion. Ties go
// to the first name in catalog order (IDs before aliases). A name the
// catalog knows exactly comes back in its catalog spelling. ok is false when
// nothing is near.
//
// Suggest is meant for error paths: it scans the whole catalog (a few
// thousand comparisons of at most MaxSuggestLen bytes) and does not
// allocate beyond the result. It is safe for concurrent use.
func (c *Catalog) Suggest(name string) (suggestion string, ok bool) {
	name = strings.TrimSpace(name)
	if c == nil || len(name) > MaxSuggestLen || hasControl(name) {
		return "", false
	}
	lower := toLower(name)
	var s suggester

	if i := strings.IndexByte(lower, ':'); i > 0 {
		prefix, rest := strings.TrimSpace(name[:i]), strings.TrimSpace(name[i+1:])
		restLower := toLower(rest)
		if p := c.byName[toLower(prefix)]; p != nil {
			if m, d := s.nearestModel(c, p, rest, restLower, maxEdits(len(rest))); d >= 0 {
				return prefix + ":" + m, true
			}
			return "", false
		}
		best, bestD := "", -1
		if p, pname, dp := s.nearestProvider(c, toLower(prefix)); p != nil && rest != "" {
			best, bestD = pname+":"+rest, dp
			if m, dm := s.nearestModel(c, p, rest, restLower, maxEdits(len(rest))); dm >= 0 && dp+dm <= maxEdits(len(name)) {
				best, bestD = pname+":"+m, dp+dm
			}
		}
		if m, d := s.nearestModel(c, nil, name, lower, maxEdits(len(name))); d >= 0 && (bestD < 0 || d < bestD) {
			best, bestD = m, d
		}
		return best, bestD >= 0
	}
	m, d := s.nearestModel(c, nil, name, lower, maxEdits(len(name)))
	return m, d >= 0
}

// maxEdits is the largest edit distance at which a name of n bytes is near
// another; -1 (nothing is near) for an empty name.
func maxEdits(n int) int {
	switch {
	case n == 0:
		return -1
	case n < 3:
		return 0
	case n <= 4:
		return 1
	case n <= 12:
		return 2
	}
	return 3
}

// suggester holds the scratch rows of the edit distance, so that Suggest
// does not allocate them.
type suggester struct {
	rows [3][MaxSuggestLen + 1]int
}

// nearestProvider returns the provider whose ID or alias is nearest to the
// lower-cased name, that name, and the distance; nil when none is near.
func (s *suggester) nearestProvider(c *Catalog, lower string) (*Provider, string, int) {
	limit := maxEdits(len(lower))
	var best *Provider
	bestName, bestD := "", limit+1
	for _, p := range c.providers {
		for j := -1; j < len(p.Aliases); j++ {
			n := p.ID
			if j >= 0 {
				n = p.Aliases[j]
			}
			if d := s.distance(lower, n, bestD-1); d < bestD {
				best, bestName, bestD = p, n, d
			}
		}
	}
	return best, bestName, bestD
}

// nearestModel returns the model name nearest to name (lower is name
// lower-cased) among the models of p, or of every provider when p is nil,
// and its distance; -1 when none is within limit. A name "author/model"
// also matches "model" among the author's models, keeping the author as
// written.
func (s *suggester) nearestModel(c *Catalog, p *Provider, name, lower string, limit int) (string, int) {
	if limit < 0 {
		return "", -1
	}
	author, authorLower, rest := "", "", ""
	if i := strings.IndexByte(lower, '/'); i > 0 && i < len(lower)-1 {
		author, authorLower, rest = name[:i+1], lower[:i], lower[i+1:]
	}
	best, bestD := "", limit+1
	visit := func(p *Provider) {
		for _, m := range p.Models {
			for j := -1; j < len(m.Aliases); j++ {
				n := m.ID
				if j >= 0 {
					n = m.Aliases[j]
				}
				if d := s.distance(lower, n, bestD-1); d < bestD {
					best, bestD = n, d
				}
				if author != "" && equalFold(m.Author, authorLower) {
					if d := s.distance(rest, n, bestD-1); d < bestD {
						best, bestD = author+n, d
					}
				}
			}
		}
	}
	if p != nil {
		visit(p)
	} else {
		for _, p := range c.providers {
			visit(p)
		}
	}
	if bestD > limit {
		return "", -1
	}
	return best, bestD
}

// distance returns the optimal string alignment distance between a (lower
// case, at most MaxSuggestLen bytes) and b compared ASCII
// case-insensitively, or limit+1 as soon as it is known to exceed limit.
func (s *suggester) distance(a, b string, limit int) int {
	if d := len(a) - len(b); limit < 0 || d > limit || -d > limit {
		return limit + 1
	}
	prev2, prev, cur := s.rows[0][:len(a)+1], s.rows[1][:len(a)+1], s.rows[2][:len(a)+1]
	for i := range prev {
		prev[i] = i
	}
	for j := 1; j <= len(b); j++ {
		bj := lowerByte(b[j-1])
		cur[0] = j
		rowMin := j
		for i := 1; i <= len(a); i++ {
			cost := 1
			if a[i-1] == bj {
				cost = 0
			}
			v := min(prev[i]+1, cur[i-1]+1, prev[i-1]+cost)
			if i > 1 && j > 1 && a[i-1] == lowerByte(b[j-2]) && a[i-2] == bj {
				v = min(v, prev2[i-2]+1)
			}
			cur[i] = v
			rowMin = min(rowMin, v)
		}
		if rowMin > limit {
			return limit + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return min(prev[len(a)], limit+1)
}

// lowerByte lower-cases an ASCII letter.
func lowerByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

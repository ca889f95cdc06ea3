package redaction

import (
	"unicode/utf8"
)

// found caches a rule's next match while one text is being replaced.
type found struct {
	from int   // the position the match was searched from; -1 when stale
	m    []int // submatch indices into the text; nil when there is none before the limit
}

// scratch is the per-caller state of replace.
type scratch struct {
	next []found
}

// find returns the leftmost match of rule k in text that starts at or
// after from and before limit and that its validator accepts (as the
// validator cuts it). A match the validator rejects is no match: the
// search goes on from the character after its start. So the result
// depends on the text and from alone, and a search from any position
// between from and the match's start finds the same match. When bot is
// false, text[0] is context, not text to match, and from >= 1.
func (r *Redactor) find(k int, text []byte, from, limit int, bot bool) []int {
	rl := &r.rules[k]
	for from < limit {
		from = r.skip(k, text, from)
		if from >= limit {
			return nil
		}
		// A bounded pattern is searched in a window that holds its
		// longest match and the rune after it from every position it
		// trusts, so that a search costs the window, not the rest of
		// the text.
		lo, hi := max(from-1, 0), len(text)
		if rl.span > 0 && hi-from > 2*rl.span {
			hi = from + 2*rl.span
		}
		var m []int
		if from == 0 && bot {
			m = rl.re.FindSubmatchIndex(text[:hi])
		} else if m = rl.ctx.FindSubmatchIndex(text[lo:hi]); m != nil {
			m = m[2:]
			for i := range m {
				if m[i] >= 0 {
					m[i] += lo
				}
			}
		}
		if hi < len(text) {
			// Matches that start late in the window, or none, say
			// nothing past hi-span: search on from there.
			if trusted := hi - rl.span; m == nil || m[0] > trusted {
				if m != nil {
					trusted = m[0]
				}
				from = max(trusted, from+1)
				continue
			}
		}
		if m == nil || m[0] >= limit {
			return nil
		}
		if rl.valid == nil {
			return m
		}
		if e := rl.valid(text, m[0], m[1]); e > m[0] {
			if e < m[1] {
				for i := 0; i < len(m); i += 2 {
					if m[i] >= e {
						m[i], m[i+1] = -1, -1
					} else {
						m[i+1] = min(m[i+1], e)
					}
				}
			}
			return m
		}
		_, size := utf8.DecodeRune(text[m[0]:])
		from = m[0] + size
	}
	return nil
}

// skip returns the first position at or after from where a match of rule
// k can start — len(text) when none can — so that its regexp need not
// read the text before it. The forward automaton finds the first position
// e where a match of the rule's pattern without assertions, starting at
// or after from, ends: every match ends at or after e, so the text from
// its start to e begins a match, and the reversed-prefix automaton, run
// back from e, finds the leftmost position where that holds.
func (r *Redactor) skip(k int, text []byte, from int) int {
	bit := uint64(1) << min(k, 63)
	c := r.fwd.cache()
	n, ok := c.firstAccept(text[from:], bit)
	if !ok {
		return from
	}
	if n < 0 {
		return len(text)
	}
	e := from + n
	if q, ok := holdScan(r.rev.cache(), text[:e], from, from); ok {
		return q
	}
	return from
}

// replace appends to out text[pos:limit] with every match that starts
// before limit replaced, and returns out and the position up to which text
// has been consumed: limit, or the end of a match that runs past it.
// Matches of the rules in mask are considered (bit 63 stands for every
// rule from 63 on). bot reports that text begins the text; otherwise
// text[0] is context and pos >= 1. counts[i] grows by rule i's
// replacements.
func (r *Redactor) replace(out, text []byte, pos, limit int, bot bool, mask uint64, sc *scratch, counts []int) ([]byte, int) {
	if cap(sc.next) < len(r.rules) {
		sc.next = make([]found, len(r.rules))
	}
	next := sc.next[:len(r.rules)]
	for i := range next {
		next[i] = found{from: -1}
	}
	for {
		best, start, end := -1, 0, 0
		for i := range r.rules {
			if mask&(1<<min(i, 63)) == 0 {
				continue
			}
			f := &next[i]
			if f.from < 0 || f.from > pos || f.m != nil && f.m[0] < pos {
				f.m, f.from = r.find(i, text, pos, limit, bot), pos
			}
			if f.m == nil {
				continue
			}
			if best < 0 || f.m[0] < start || f.m[0] == start && f.m[1] > end {
				best, start, end = i, f.m[0], f.m[1]
			}
		}
		if best < 0 {
			break
		}
		out = append(out, text[pos:start]...)
		rl := &r.rules[best]
		if rl.expand {
			out = rl.re.Expand(out, rl.tmpl, text, next[best].m)
		} else {
			out = append(out, rl.to...)
		}
		counts[best]++
		pos = end
	}
	if pos < limit {
		out = append(out, text[pos:limit]...)
		pos = limit
	}
	return out, pos
}

// holdStart returns where the shortest suffix of text[from:] starts that
// could still be the beginning of a match (or of a match that needs to see
// what follows it): len(text) when there is none. It looks back at most
// r.window bytes.
func (r *Redactor) holdStart(text []byte, from int) int {
	lim := max(from, len(text)-r.window)
	c := r.rev.cache()
	for range 2 {
		if q, ok := holdScan(c, text, from, lim); ok {
			return q
		}
		c = r.rev.renew(c)
	}
	// No automaton: hold the whole window, from a rune boundary.
	for lim > from && !utf8.RuneStart(text[lim]) {
		lim--
	}
	return lim
}

// holdScan runs the reversed-prefix automaton back from the end of text
// to lim and returns the last position where it accepted; false when the
// cache is full.
func holdScan(c *dcache, text []byte, from, lim int) (int, bool) {
	end := len(text)
	id, q := startState, end
	for i := end; i > lim; {
		var nid int32
		size := 1
		if b := text[i-1]; b < utf8.RuneSelf {
			if v := c.state(id).next[b].Load(); v != 0 {
				nid = v - 1
			} else {
				nid = c.slow(id, rune(b))
			}
		} else {
			var r rune
			r, size = utf8.DecodeLastRune(text[from:i])
			nid = c.slow(id, r)
		}
		if nid == deadState {
			break
		}
		if nid < 0 {
			return 0, false
		}
		id = nid
		i -= size
		if c.state(id).match != 0 {
			q = i
		}
	}
	return q, true
}

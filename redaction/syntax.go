package redaction

import (
	"regexp/syntax"
	"slices"
	"unicode"
	"unicode/utf8"
)

// unbounded is the length bound of a pattern without one (`.+`, `\w*`).
const unbounded = -1

// tooLong is the bound above which a pattern counts as unbounded: a
// window this large would buffer more than any stream should.
const tooLong = 1 << 20

// lengths returns the shortest and the longest match of re, in bytes of
// input. max is unbounded when re has no bound. Invalid UTF-8 in the input
// matches as U+FFFD one byte at a time, so classes that contain U+FFFD
// (and `.`) can match a single byte.
func lengths(re *syntax.Regexp) (lo, hi int) {
	switch re.Op {
	case syntax.OpNoMatch:
		return tooLong, 0
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return 0, 0
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			a, b := runeLens(r, re.Flags&syntax.FoldCase != 0)
			lo, hi = lo+a, hi+b
		}
		return lo, hi
	case syntax.OpCharClass:
		if len(re.Rune) == 0 {
			return tooLong, 0
		}
		lo, hi = utf8.UTFMax, 0
		for i := 0; i < len(re.Rune); i += 2 {
			a, b := re.Rune[i], re.Rune[i+1]
			lo = min(lo, utf8.RuneLen(a))
			hi = max(hi, utf8.RuneLen(b))
			if a <= utf8.RuneError && utf8.RuneError <= b {
				lo = 1
			}
		}
		return lo, hi
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return 1, utf8.UTFMax
	case syntax.OpCapture:
		return lengths(re.Sub[0])
	case syntax.OpStar:
		_, b := lengths(re.Sub[0])
		if b == 0 {
			return 0, 0
		}
		return 0, unbounded
	case syntax.OpPlus:
		a, b := lengths(re.Sub[0])
		if b != 0 {
			b = unbounded
		}
		return a, b
	case syntax.OpQuest:
		_, b := lengths(re.Sub[0])
		return 0, b
	case syntax.OpRepeat:
		a, b := lengths(re.Sub[0])
		lo = min(a*re.Min, tooLong)
		switch {
		case b == 0:
			hi = 0
		case b == unbounded || re.Max == -1:
			hi = unbounded
		default:
			hi = b * re.Max
		}
		return lo, bound(hi)
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			a, b := lengths(sub)
			lo = min(lo+a, tooLong)
			if hi != unbounded {
				if b == unbounded {
					hi = unbounded
				} else {
					hi = bound(hi + b)
				}
			}
		}
		return lo, hi
	case syntax.OpAlternate:
		lo = tooLong
		for _, sub := range re.Sub {
			a, b := lengths(sub)
			lo = min(lo, a)
			if hi != unbounded {
				if b == unbounded {
					hi = unbounded
				} else {
					hi = max(hi, b)
				}
			}
		}
		return lo, hi
	}
	return 0, unbounded // not reached for a parsed pattern
}

// bound turns lengths beyond tooLong into unbounded.
func bound(n int) int {
	if n > tooLong {
		return unbounded
	}
	return n
}

// runeLens returns the byte lengths of r and, with fold, of every rune
// that case-folds to it.
func runeLens(r rune, fold bool) (lo, hi int) {
	lo, hi = utf8.RuneLen(r), utf8.RuneLen(r)
	if r == utf8.RuneError {
		lo = 1
	}
	if fold {
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			lo, hi = min(lo, utf8.RuneLen(f)), max(hi, utf8.RuneLen(f))
		}
	}
	return lo, hi
}

// stripped returns re with every empty-width assertion (^ $ \A \z \b \B)
// replaced by the empty pattern. It matches every string re matches, and
// more; which strings no longer depends on the text around a match.
func stripped(re *syntax.Regexp) *syntax.Regexp {
	switch re.Op {
	case syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return &syntax.Regexp{Op: syntax.OpEmptyMatch}
	}
	if len(re.Sub) == 0 {
		return re
	}
	c := *re
	c.Sub = make([]*syntax.Regexp, len(re.Sub))
	for i, sub := range re.Sub {
		c.Sub[i] = stripped(sub)
	}
	return &c
}

// prefixes returns a pattern matching every prefix of every string that
// re matches (the empty string included), for an re without assertions
// (see stripped). It may match a few more strings (after a part that can
// match nothing), never fewer.
func prefixes(re *syntax.Regexp) *syntax.Regexp {
	switch re.Op {
	case syntax.OpNoMatch:
		return re
	case syntax.OpEmptyMatch:
		return re
	case syntax.OpLiteral:
		// a(b(c)?)?)? — every prefix of the literal, the empty one too.
		var p *syntax.Regexp
		for i := len(re.Rune) - 1; i >= 0; i-- {
			lit := &syntax.Regexp{Op: syntax.OpLiteral, Flags: re.Flags, Rune: []rune{re.Rune[i]}}
			if p == nil {
				p = quest(lit)
			} else {
				p = quest(concat(lit, p))
			}
		}
		if p == nil {
			return empty()
		}
		return p
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return quest(re)
	case syntax.OpCapture, syntax.OpQuest:
		return prefixes(re.Sub[0])
	case syntax.OpStar, syntax.OpPlus:
		// Prefixes of x* and x+ are x* followed by a prefix of x.
		return concat(star(re.Sub[0]), prefixes(re.Sub[0]))
	case syntax.OpRepeat:
		switch {
		case re.Max == 0:
			return empty()
		case re.Max == -1:
			return concat(star(re.Sub[0]), prefixes(re.Sub[0]))
		case re.Max == 1:
			return prefixes(re.Sub[0])
		}
		return concat(&syntax.Regexp{Op: syntax.OpRepeat, Min: 0, Max: re.Max - 1, Sub: []*syntax.Regexp{re.Sub[0]}}, prefixes(re.Sub[0]))
	case syntax.OpConcat:
		// P(a b c) = P(a) | a P(b c), nested to the right so the size
		// stays linear.
		var p *syntax.Regexp
		for i := len(re.Sub) - 1; i >= 0; i-- {
			if p == nil {
				p = prefixes(re.Sub[i])
			} else {
				p = alternate(prefixes(re.Sub[i]), concat(re.Sub[i], p))
			}
		}
		if p == nil {
			return empty()
		}
		return p
	case syntax.OpAlternate:
		subs := make([]*syntax.Regexp, len(re.Sub))
		for i, sub := range re.Sub {
			subs[i] = prefixes(sub)
		}
		return &syntax.Regexp{Op: syntax.OpAlternate, Sub: subs}
	}
	return re // assertions: removed by stripped before
}

// reversed returns a pattern that matches the reverse (rune by rune) of
// every string re matches, for an re without assertions.
func reversed(re *syntax.Regexp) *syntax.Regexp {
	switch re.Op {
	case syntax.OpLiteral:
		c := *re
		c.Rune = slices.Clone(re.Rune)
		slices.Reverse(c.Rune)
		return &c
	case syntax.OpConcat:
		c := *re
		c.Sub = make([]*syntax.Regexp, len(re.Sub))
		for i, sub := range re.Sub {
			c.Sub[len(re.Sub)-1-i] = reversed(sub)
		}
		return &c
	}
	if len(re.Sub) == 0 {
		return re
	}
	c := *re
	c.Sub = make([]*syntax.Regexp, len(re.Sub))
	for i, sub := range re.Sub {
		c.Sub[i] = reversed(sub)
	}
	return &c
}

func empty() *syntax.Regexp { return &syntax.Regexp{Op: syntax.OpEmptyMatch} }

func quest(re *syntax.Regexp) *syntax.Regexp {
	return &syntax.Regexp{Op: syntax.OpQuest, Sub: []*syntax.Regexp{re}}
}

func star(re *syntax.Regexp) *syntax.Regexp {
	return &syntax.Regexp{Op: syntax.OpStar, Sub: []*syntax.Regexp{re}}
}

func concat(a, b *syntax.Regexp) *syntax.Regexp {
	return &syntax.Regexp{Op: syntax.OpConcat, Sub: []*syntax.Regexp{a, b}}
}

func alternate(a, b *syntax.Regexp) *syntax.Regexp {
	return &syntax.Regexp{Op: syntax.OpAlternate, Sub: []*syntax.Regexp{a, b}}
}

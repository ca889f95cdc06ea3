package redaction

import (
	"math/rand/v2"
	"regexp"
	"regexp/syntax"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLengths(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		lo, hi  int
	}{
		{`abc`, 3, 3},
		{`é`, 2, 2},
		{`(?i)k`, 1, 3},
		{`[a-z]`, 1, 1},
		{`[a-zé]`, 1, 2},
		{`[^a]`, 1, 4},
		{`.`, 1, 4},
		{`\x{FFFD}`, 1, 3}, // matches an invalid byte
		{`a?`, 0, 1},
		{`a*`, 0, unbounded},
		{`a+`, 1, unbounded},
		{`a{2,5}`, 2, 5},
		{`a{2,}`, 2, unbounded},
		{`(?:ab|c){3}`, 3, 6},
		{`ab|cde`, 2, 3},
		{`\bx\b$`, 1, 1},
		{`(a)(b(c))`, 3, 3},
		{`[^\x00-\x{10FFFF}]`, tooLong, 0},
		{`(?:.{10}){20}`, 200, 800},
	} {
		t.Run(tc.pattern, func(t *testing.T) {
			re, err := syntax.Parse(tc.pattern, syntax.Perl)
			require.NoError(t, err)
			lo, hi := lengths(re)
			require.Equal(t, tc.lo, lo, "min")
			require.Equal(t, tc.hi, hi, "max")
		})
	}
}

func TestLengthsTooLong(t *testing.T) {
	// A bound beyond tooLong counts as none.
	re := &syntax.Regexp{Op: syntax.OpRepeat, Min: 1, Max: 1000, Sub: []*syntax.Regexp{
		{Op: syntax.OpRepeat, Min: 1, Max: 1000, Sub: []*syntax.Regexp{{Op: syntax.OpAnyChar}}},
	}}
	lo, hi := lengths(re)
	require.Equal(t, 1, lo)
	require.Equal(t, unbounded, hi)
}

func TestStripped(t *testing.T) {
	re, err := syntax.Parse(`(?m)^\bab\B$\z`, syntax.Perl)
	require.NoError(t, err)
	got := regexp.MustCompile(`^(?:` + stripped(re).String() + `)$`)
	require.True(t, got.MatchString("ab"))
}

// TestPrefixes checks that prefixes(p) matches every prefix of every
// match of p, and reversed(prefixes(p)) their reverses, on random
// strings over a small alphabet.
func TestPrefixes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, p := range []string{`abc`, `(?i)ab`, `a+b`, `a{2,4}c`, `(?:ab|ba)*c`, `a?b?c`, `[ab]{3}|c`, `(a|b)(c|a)b`, `é+a`} {
		t.Run(p, func(t *testing.T) {
			tree, err := syntax.Parse(p, syntax.Perl)
			require.NoError(t, err)
			whole := regexp.MustCompile(`^(?:` + p + `)$`)
			pre := regexp.MustCompile(`^(?:` + prefixes(stripped(tree)).String() + `)$`)
			rev := regexp.MustCompile(`^(?:` + reversed(prefixes(stripped(tree))).String() + `)$`)
			alphabet := []rune("abcAé")
			for range 3000 {
				s := make([]rune, rng.IntN(7))
				for i := range s {
					s[i] = alphabet[rng.IntN(len(alphabet))]
				}
				if !whole.MatchString(string(s)) {
					continue
				}
				for i := 0; i <= len(s); i++ {
					require.True(t, pre.MatchString(string(s[:i])), "%q is a prefix of %q", string(s[:i]), string(s))
					r := []rune(string(s[:i]))
					for a, b := 0, len(r)-1; a < b; a, b = a+1, b-1 {
						r[a], r[b] = r[b], r[a]
					}
					require.True(t, rev.MatchString(string(r)), "%q reversed", string(s[:i]))
				}
			}
		})
	}
}

package redaction

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestReplaceSemantics(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules []Rule
		in    string
		want  string
		count Counts
	}{
		{"captures", []Rule{{From: `(\w+)@(\w+)\.com`, To: "$2:$1"}}, "a jo@acme.com b", "a acme:jo b", Counts{1}},
		{"named captures", []Rule{{From: `(?P<k>key)=(?P<v>\w+)`, To: "${k}=***"}}, "key=abc key=d", "key=*** key=***", Counts{2}},
		{"empty to deletes", []Rule{{From: `\s*\[internal\]`}}, "ok [internal] done [internal]", "ok done", Counts{2}},
		{"leftmost wins over order", []Rule{{From: `cd`, To: "1"}, {From: `bc`, To: "2"}}, "abcd", "a2d", Counts{0, 1}},
		{"longest wins at one start", []Rule{{From: `ab`, To: "1"}, {From: `abc`, To: "2"}}, "abcd", "2d", Counts{0, 1}},
		{"order breaks ties", []Rule{{From: `a.`, To: "1"}, {From: `.b`, To: "2"}}, "ab", "1", Counts{1, 0}},
		{"replacements are not scanned again", []Rule{{From: `a`, To: "b"}, {From: `b`, To: "c"}}, "ab", "bc", Counts{1, 1}},
		{"a rule's own to is not scanned", []Rule{{From: `x`, To: "xx"}}, "x", "xx", Counts{1}},
		{"deletion can join a new match", []Rule{{From: `ab`}}, "aabb", "ab", Counts{1}},
		{"assertions see the input", []Rule{{From: `\bfoo`, To: "#"}, {From: `x`, To: " "}}, "xfoo foo", " foo #", Counts{1, 1}},
		{"fold case", []Rule{{From: `(?i)secret`, To: "#"}}, "SeCrEt secret", "# #", Counts{2}},
		{"multiline anchors", []Rule{{From: `(?m)^# .*$`, To: "#"}}, "a\n# b\nc", "a\n#\nc", Counts{1}},
		{"begin and end of text", []Rule{{From: `^a|a$`, To: "#"}}, "aaa", "#a#", Counts{2}},
		{"non-ASCII", []Rule{{From: `é+`, To: "e"}}, "café éé", "cafe e", Counts{2}},
		{"invalid UTF-8 is kept", []Rule{{From: `b`, To: "#"}}, "a\xffb", "a\xff#", Counts{1}},
		{"rejected candidate is no match", []Rule{{Preset: PresetPaymentCard}, {From: `\d{4}`, To: "#"}}, "4111 1111 1111 1112", "# # # #", Counts{0, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Compile(tc.rules)
			require.NoError(t, err)
			got, c := r.Text(tc.in)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.count, c)
		})
	}
}

func TestFindWindowed(t *testing.T) {
	// A bounded pattern in a long text: the windowed search finds what
	// a search of the whole text finds, at every distance.
	r, err := Compile([]Rule{{From: `\bab{1,3}c\b`, To: "#"}})
	require.NoError(t, err)
	for _, n := range []int{0, 1, 10, 17, 18, 19, 40, 100, 1000} {
		in := strings.Repeat("x ", n) + "abbc " + strings.Repeat("y", n) + " abc"
		got, _ := r.Text(in)
		require.Equal(t, regexp.MustCompile(`\bab{1,3}c\b`).ReplaceAllString(in, "#"), got, n)
	}
}

func TestCountsAdd(t *testing.T) {
	var c Counts
	c = c.Add(Counts{1, 2})
	c = c.Add(Counts{0, 1, 3})
	c = c.Add(nil)
	require.Equal(t, Counts{1, 3, 3}, c)
	require.Equal(t, 7, c.Total())
	require.Equal(t, 3, c.Get(2))
	require.Zero(t, c.Get(5))
	require.Zero(t, c.Get(-1))
	require.Zero(t, Counts(nil).Total())
}

// FuzzSingleRuleMatchesRegexp checks the context-aware search against
// regexp.ReplaceAll for one rule without a validator: the same matches,
// the same expansions, for every pattern of a set and any text.
func FuzzSingleRuleMatchesRegexp(f *testing.F) {
	patterns := []string{`\bab+c`, `\d{2,4}\b`, `(?m)^x|y$`, `(\w)(\d)`, `\Bq.`, `[^a]b`, `(?i)k+`, `é|e\b`, `.a`, `a{3}`, `(?s).\n`, `\b\w+@\w+\b`}
	for i := range patterns {
		f.Add("abbc ab 12 345 x\ny aq qq bb KkK é e ea aaaa a@b", uint8(i))
	}
	f.Fuzz(func(t *testing.T, s string, pick uint8) {
		p := patterns[int(pick)%len(patterns)]
		re := regexp.MustCompile(p)
		to := "<$0>"
		if re.NumSubexp() > 0 {
			to = "<$0|$1>"
		}
		r, err := Compile([]Rule{{From: p, To: to}})
		require.NoError(t, err)
		got, _ := r.Text(s)
		want := re.ReplaceAllString(s, to)
		if got != want {
			t.Fatalf("pattern %s on %q:\n got %q\nwant %q", p, s, got, want)
		}
	})
}

// reference redacts s by the package's rules, by brute force: at each
// position, each rule's match anchored there (the regexp's preferred one,
// with the character before as context), validated; the longest wins,
// then the rule listed first.
func reference(t *testing.T, r *Redactor, s string) string {
	type anchored struct{ bot, ctx *regexp.Regexp }
	res := make([]anchored, len(r.rules))
	for i, rl := range r.rules {
		p := rl.re.String()
		res[i] = anchored{regexp.MustCompile(`^(?:` + p + `)`), regexp.MustCompile(`^(?s:.)(` + p + `)`)}
	}
	text := []byte(s)
	var out []byte
	pos := 0
	for p := 0; p < len(text); {
		best, end := -1, 0
		var bestM []int
		for i, rl := range r.rules {
			var m []int
			if p == 0 {
				m = res[i].bot.FindSubmatchIndex(text)
			} else if m = res[i].ctx.FindSubmatchIndex(text[p-1:]); m != nil {
				m = m[2:]
				for j := range m {
					if m[j] >= 0 {
						m[j] += p - 1
					}
				}
			}
			if m == nil {
				continue
			}
			if rl.valid != nil {
				e := rl.valid(text, m[0], m[1])
				if e <= m[0] {
					continue
				}
				for j := 0; j < len(m); j += 2 {
					if m[j] >= e {
						m[j], m[j+1] = -1, -1
					} else {
						m[j+1] = min(m[j+1], e)
					}
				}
			}
			if best < 0 || m[1] > end {
				best, end, bestM = i, m[1], m
			}
		}
		if best < 0 {
			_, size := utf8.DecodeRune(text[p:])
			p += size
			continue
		}
		out = append(out, text[pos:p]...)
		out = r.rules[best].re.Expand(out, r.rules[best].tmpl, text, bestM)
		pos, p = end, end
	}
	return string(append(out, text[pos:]...))
}

// FuzzRulesMatchReference checks Text against the brute-force reference
// for any set of the stream fuzzers' rules.
func FuzzRulesMatchReference(f *testing.F) {
	for i, s := range presetSamples {
		f.Add(s, uint32(1)<<(i%6)|1<<(6+i))
	}
	f.Add("start abbbc cat dog DoG x1y xy end aeiou aab abc b_x bxx qz q12z", uint32(0x7ffff))
	f.Fuzz(func(t *testing.T, s string, pick uint32) {
		if len(s) > 300 {
			s = s[:300]
		}
		r, _ := fuzzRedactor(t, pick)
		got, _ := r.Text(s)
		if want := reference(t, r, s); got != want {
			t.Fatalf("Text      %q\nreference %q", got, want)
		}
	})
}

package redaction

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// allPresets compiles every preset.
func allPresets(t testing.TB) *Redactor {
	t.Helper()
	var rules []Rule
	for _, p := range Presets() {
		rules = append(rules, Rule{Preset: p})
	}
	r, err := Compile(rules)
	require.NoError(t, err)
	return r
}

// streamed feeds s to a new stream in chunks cut at cuts (increasing
// offsets) and returns the concatenated output.
func streamed(r *Redactor, m Mode, s string, cuts []int) (string, Counts) {
	st := r.NewStream(m)
	var out []byte
	prev := 0
	for _, c := range append(cuts, len(s)) {
		out = append(out, st.Feed([]byte(s[prev:c]))...)
		prev = c
	}
	out = append(out, st.Flush()...)
	return string(out), st.Counts()
}

// presetSamples is text with every preset's shapes, each a match.
var presetSamples = []string{
	"write to john.doe+tag@mail.example.co.uk today",
	"call +1 (415) 555-2671, or 415.555.2671 or +44 20 7946 0958.",
	"SSN 078-05-1120 on file",
	"card 4111 1111 1111 1111 and 5500-0000-0000-0004, amex 378282246310005.",
	"from 192.168.10.254 and 2001:db8:85a3::8a2e:370:7334 and ::1 too",
	"keys sk-proj-Ab3dEfGhIjKlMnOpQrStUvWx, AKIAIOSFODNN7EXAMPLE and Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo",
	"github ghp_0123456789abcdefghijklmnopqrstuvwxyz and xoxb-1234567890-abcdefghij, AIzaSyA-1234567890abcdefghijklmnopqrstu",
}

func TestStreamSplitAtEveryByte(t *testing.T) {
	r := allPresets(t)
	for _, s := range presetSamples {
		t.Run(s[:12], func(t *testing.T) {
			whole, wc := r.Text(s)
			require.NotEqual(t, s, whole, "the sample has matches")
			// Two chunks, cut at every byte.
			for i := 0; i <= len(s); i++ {
				got, gc := streamed(r, AcrossChunks, s, []int{i})
				require.Equal(t, whole, got, "cut at %d", i)
				require.Equal(t, []int(wc), []int(gc), "cut at %d", i)
			}
			// One byte per chunk, and every pair of cuts.
			var cuts []int
			for i := 1; i < len(s); i++ {
				cuts = append(cuts, i)
			}
			got, _ := streamed(r, AcrossChunks, s, cuts)
			require.Equal(t, whole, got)
			for i := 0; i <= len(s); i += 3 {
				for j := i; j <= len(s); j += 2 {
					got, _ := streamed(r, AcrossChunks, s, []int{i, j})
					require.Equal(t, whole, got, "cuts at %d, %d", i, j)
				}
			}
		})
	}
}

func TestStreamPerChunkMissesSplitMatches(t *testing.T) {
	r := allPresets(t)
	s := "mail john@example.com now"
	got, _ := streamed(r, PerChunk, s, []int{9})
	require.Equal(t, s, got, "the split email is not seen")
	got, c := streamed(r, PerChunk, s, []int{4})
	require.Equal(t, "mail [EMAIL] now", got)
	require.Equal(t, 1, c.Total())
}

func TestStreamHoldsOnlyWhatCouldMatch(t *testing.T) {
	r, err := Compile([]Rule{{From: `secret-\d+`, To: "X"}})
	require.NoError(t, err)
	for _, tc := range []struct {
		name, chunk, now string
		pending          int
	}{
		{"no possible start", "the test", "the test", 0},
		{"a possible start", "it is sec", "it is ", 3},
		{"prefix of the literal", "a secret-", "a ", 7},
		{"match that may go on", "a secret-12", "a ", 9},
		{"complete match", "a secret-12 b", "a X b", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := r.NewStream(AcrossChunks)
			require.Equal(t, tc.now, string(st.Feed([]byte(tc.chunk))))
			require.Equal(t, tc.pending, st.Pending())
		})
	}
}

func TestStreamFeedReturnsChunkItself(t *testing.T) {
	r := allPresets(t)
	st := r.NewStream(AcrossChunks)
	chunk := []byte("Hello, ")
	out := st.Feed(chunk)
	require.Equal(t, "Hello, ", string(out))
	require.Same(t, &chunk[0], &out[0])
	allocs := testing.AllocsPerRun(100, func() {
		st.Feed(chunk)
	})
	require.Zero(t, allocs)
}

func TestStreamSteadyStateAllocs(t *testing.T) {
	r := allPresets(t)
	st := r.NewStream(AcrossChunks)
	words := [][]byte{[]byte(" The"), []byte(" quick"), []byte(" brown"), []byte(" fox"), []byte(" jumps"), []byte(".")}
	for _, w := range words { // warm the automata
		st.Feed(w)
	}
	allocs := testing.AllocsPerRun(100, func() {
		for _, w := range words {
			st.Feed(w)
		}
	})
	require.Zero(t, allocs)
}

func TestStreamFlushStartsANewText(t *testing.T) {
	r, err := Compile([]Rule{{From: `^ab`, To: "X"}})
	require.NoError(t, err)
	st := r.NewStream(AcrossChunks)
	out := string(st.Feed([]byte("ab ab")))
	out += string(st.Flush())
	require.Equal(t, "X ab", out)
	out = string(st.Feed([]byte("ab"))) + string(st.Flush())
	require.Equal(t, "X", out, "^ matches again after Flush")
	require.Equal(t, Counts{2}, st.Counts())
}

func TestStreamMaxMatch(t *testing.T) {
	// A pattern without a bound: a stream holds up to MaxMatch bytes.
	r, err := Compile([]Rule{{From: `<[^>]*>`, To: "", MaxMatch: 8}})
	require.NoError(t, err)
	s := "a <tag> b <longer-than-eight> c"
	whole, _ := r.Text(s)
	require.Equal(t, "a  b  c", whole)
	var cuts []int
	for i := 1; i < len(s); i++ {
		cuts = append(cuts, i)
	}
	got, _ := streamed(r, AcrossChunks, s, cuts)
	require.Equal(t, "a  b <longer-than-eight> c", got, "the longer match is missed, the short one is not")
}

// fuzzRules are the patterns the stream fuzzers draw rules from: presets,
// literals, classes, captures, assertions, alternations, and patterns
// that match their own replacement's neighbours.
var fuzzRules = []Rule{
	{Preset: PresetEmail},
	{Preset: PresetPhone},
	{Preset: PresetUSSSN},
	{Preset: PresetPaymentCard},
	{Preset: PresetIPAddress},
	{Preset: PresetAPIKey},
	{From: `ab+c`, To: "#"},
	{From: `\bcat\b`, To: "#"},
	{From: `(?i)dog`, To: "#"},
	{From: `x(\d)y`, To: "<$1>"},
	{From: `^start`, To: "#"},
	{From: `end$`, To: "#"},
	{From: `(?m)^line`, To: "#"},
	{From: `a|ab|abc`, To: "#"},
	{From: `[aeiou]{2}`, To: "#"},
	{From: `b\B.`, To: "#"},
	{From: `é+`, To: "#"},
	{From: `q.{0,3}z`, To: "#"},
	{From: `\d\d`, To: ""},
}

// fuzzRedactor compiles the rules picked by the bits of pick (at least
// one).
func fuzzRedactor(t testing.TB, pick uint32) (*Redactor, []Rule) {
	var rules []Rule
	for i, rl := range fuzzRules {
		if pick&(1<<i) != 0 {
			rules = append(rules, rl)
		}
	}
	if len(rules) == 0 {
		rules = fuzzRules[:1]
	}
	r, err := Compile(rules)
	require.NoError(t, err)
	return r, rules
}

func fuzzCuts(seed uint64, n int) []int {
	rng := rand.New(rand.NewPCG(seed, 7))
	var cuts []int
	for i := 1; i < n; i++ {
		if rng.IntN(4) == 0 {
			cuts = append(cuts, i)
		}
	}
	return cuts
}

func addStreamSeeds(f *testing.F) {
	for i, s := range presetSamples {
		f.Add(s, uint32(1)<<(i%6)|1<<(6+i), uint64(i))
	}
	f.Add("start abbbc cat dog DoG x1y xy end", uint32(0x7ffff), uint64(1))
	f.Add("line one\nline two\n éé q12z qz", uint32(0x7ffff), uint64(2))
	f.Add("aeiou aab abc b_x bxx", uint32(0x7ffff), uint64(3))
	f.Add("1234 5678 9012 3456 and 4111111111111111", uint32(0x7ffff), uint64(4))
}

// FuzzStreamEqualsWhole checks that for any text, rules and chunking, a
// stream's output is the text's whole redaction (the fuzz texts are
// shorter than any rule's MaxMatch).
func FuzzStreamEqualsWhole(f *testing.F) {
	addStreamSeeds(f)
	f.Fuzz(func(t *testing.T, s string, pick uint32, seed uint64) {
		if len(s) > 200 {
			s = s[:200]
		}
		r, _ := fuzzRedactor(t, pick)
		whole, wc := r.Text(s)
		got, gc := streamed(r, AcrossChunks, s, fuzzCuts(seed, len(s)))
		if got != whole {
			t.Fatalf("stream %q\nwhole  %q", got, whole)
		}
		if wc.Total() != gc.Total() {
			t.Fatalf("counts %v, whole %v", gc, wc)
		}
	})
}

// presetMarkers are the presets' replacements.
var presetMarkers = regexp.MustCompile(`\[(?:EMAIL|PHONE|SSN|CARD|IP|API_KEY)\]`)

// escapes returns the matches of r's rules in out that do not touch a
// marker: text the redaction should have replaced. A match next to a
// marker can appear where the input glued two matches together (a
// validator or \b rejected the second because of the first's last
// character, which the marker replaced): replacements are not scanned
// again, and the text around them is judged as the input had it.
func escapes(r *Redactor, out string) []string {
	markers := presetMarkers.FindAllStringIndex(out, -1)
	var bad []string
	for _, rl := range r.rules {
	match:
		for _, m := range rl.re.FindAllStringIndex(out, -1) {
			if rl.valid != nil && rl.valid([]byte(out), m[0], m[1]) < 0 {
				continue
			}
			for _, k := range markers {
				if k[0] <= m[1] && m[0] <= k[1] {
					continue match
				}
			}
			bad = append(bad, rl.name+": "+out[m[0]:m[1]])
		}
	}
	return bad
}

func TestNoMatchEscapesSeparatedText(t *testing.T) {
	r := allPresets(t)
	text := strings.Join(presetSamples, " ")
	for seed := range uint64(200) {
		got, _ := streamed(r, AcrossChunks, text, fuzzCuts(seed, len(text)))
		for _, rl := range r.rules {
			require.Empty(t, rl.re.FindAllString(got, -1), "rule %s in %q", rl.name, got)
		}
	}
}

// FuzzNoMatchEscapes checks that the presets leave no match of any of
// them in a stream's output, however the text is cut, but next to their
// markers (see escapes); the markers hold no character any preset
// matches.
func FuzzNoMatchEscapes(f *testing.F) {
	addStreamSeeds(f)
	r := allPresets(f)
	f.Fuzz(func(t *testing.T, s string, pick uint32, seed uint64) {
		if len(s) > 300 {
			s = s[:300]
		}
		// Splice pieces of sample matches into the fuzzed text.
		rng := rand.New(rand.NewPCG(seed, uint64(pick)))
		var b strings.Builder
		for i := 0; i < len(s); i += 40 {
			b.WriteString(s[i:min(i+40, len(s))])
			if rng.IntN(2) == 0 {
				sample := presetSamples[rng.IntN(len(presetSamples))]
				a := rng.IntN(len(sample))
				b.WriteString(sample[a:min(len(sample), a+rng.IntN(40))])
			}
		}
		text := b.String()
		got, _ := streamed(r, AcrossChunks, text, fuzzCuts(seed, len(text)))
		if bad := escapes(r, got); len(bad) > 0 {
			t.Fatalf("%q escaped in %q from %q", bad, got, text)
		}
	})
}

func mustPreset(name string) preset {
	p, ok := presetNamed(name)
	if !ok {
		panic(name)
	}
	return p
}

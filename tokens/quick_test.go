package tokens

import (
	"flag"
	"fmt"
	"go/format"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"github.com/tiktoken-go/tokenizer"

	"github.com/llmgate/gateway/internal/jsonx"
)

var calibrate = flag.Bool("calibrate", false, "refit the quick estimator's costs on testdata/corpus and rewrite quick_costs.go")

// corpus returns the calibration texts by file name.
func corpus(t testing.TB) map[string]string { return readTexts(t, "corpus") }

// holdout returns texts the calibration does not see, by file name.
func holdout(t testing.TB) map[string]string { return readTexts(t, "holdout") }

// readTexts reads the texts of a testdata directory.
func readTexts(t testing.TB, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.txt"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		out[strings.TrimSuffix(filepath.Base(f), ".txt")] = string(b)
	}
	return out
}

// Kinds of piece, for calibration.
const (
	pieceWord = iota
	pieceWordUpper
	pieceWordHump
	pieceWordPrefixed
	pieceWordExt
	pieceWordAlt
	pieceDigits
	piecePunct
	pieceSpaces
	pieceLines
	pieceBreaks
	pieceHan
	pieceKana
	pieceHangul
	pieceSymbol
	pieceEmoji
	pieceOther
	pieceBlob
)

// segment is a piece of a text.
type segment struct {
	kind       int
	n          int // length in characters (letters for words, groups for digits)
	start, end int // byte offsets
}

// trace runs the model's automaton over text and returns its pieces, the
// pieces of blobs replaced by one blob piece each.
func trace(d *quickDFA, text string) []segment {
	var segs, blobs []segment
	st, start, chars := stStart, 0, 0
	runStart, runLen, switches := 0, 0, 0
	closePiece := func(end int) {
		if st == stStart {
			return
		}
		seg := segment{start: start, end: end, n: chars}
		first, _ := family(st)
		switch {
		case first >= 0 && text[start] < utf8.RuneSelf && asciiClass[text[start]] == chPunct:
			seg.kind, seg.n = pieceWordPrefixed, chars-1
			switch first {
			case stExt:
				seg.kind = pieceWordExt
			case stAlt:
				seg.kind = pieceWordAlt
			}
		case first == stWordLo || first == stWordUp:
			seg.kind = pieceWord
		case first == stUpper:
			seg.kind = pieceWordUpper
		case first == stHumpLo || first == stHumpUp:
			seg.kind = pieceWordHump
		case first == stExt:
			seg.kind = pieceWordExt
		case first == stAlt:
			seg.kind = pieceWordAlt
		case st >= stDigit1 && st <= stDigit3:
			seg.kind, seg.n = pieceDigits, (chars+2)/3
		case st >= stPunct1 && st <= stPunct4:
			seg.kind = piecePunct
		case st == stSpace1 || st == stSpaces:
			seg.kind = pieceSpaces
		case st == stLines:
			seg.kind = pieceLines
		case st == stBreaks:
			seg.kind = pieceBreaks
		default:
			seg.kind = pieceHan + st - stHan
		}
		segs = append(segs, seg)
	}
	endRun := func(end int) {
		if runLen >= blobMinLen && switches*blobSwitchEvery >= runLen {
			blobs = append(blobs, segment{kind: pieceBlob, n: runLen, start: runStart, end: end})
		}
		runLen, switches = 0, 0
	}
	for i := 0; i < len(text); {
		var cl uint8
		n := 1
		if c := text[i]; c < utf8.RuneSelf {
			cl = asciiClass[c]
		} else {
			var r rune
			r, n = utf8.DecodeRuneInString(text[i:])
			cl = runeClass(r)
		}
		t := d.trans[st][cl]
		if t.flags&flagEndRun != 0 {
			endRun(i)
		}
		if t.flags&flagNonWS != 0 {
			if runLen == 0 {
				runStart = i
			}
			runLen++
		}
		if t.flags&flagSwitch != 0 {
			switches++
		}
		if t.flags&flagNewPiece != 0 {
			closePiece(i)
			start, chars = i, 0
		}
		st = int(t.next)
		chars++
		i += n
	}
	closePiece(len(text))
	endRun(len(text))
	if len(blobs) == 0 {
		return segs
	}
	var out []segment
	b := 0
	for _, s := range segs {
		for b < len(blobs) && blobs[b].end <= s.start {
			b++
		}
		if b < len(blobs) && s.start >= blobs[b].start && s.end <= blobs[b].end {
			if len(out) == 0 || out[len(out)-1].start != blobs[b].start {
				out = append(out, blobs[b])
			}
			continue
		}
		out = append(out, s)
	}
	return out
}

// pieces returns the pieces of text with the tokens tiktoken makes
// starting in each: a space that a word, number or punctuation run takes
// is counted with it, as tiktoken's pre-tokenizer does.
func pieces(t testing.TB, codec tokenizer.Codec, text string) ([]segment, []int) {
	segs := trace(buildDFA(&quickCosts{}), text)
	for i := 0; i+1 < len(segs); i++ {
		if segs[i].kind == pieceSpaces && segs[i+1].kind != pieceLines && segs[i].end == segs[i+1].start {
			segs[i].end--
			segs[i+1].start--
		}
	}
	_, toks, err := codec.Encode(text)
	require.NoError(t, err)
	counts := make([]int, len(segs))
	off := 0
	for _, tok := range toks {
		i := sort.Search(len(segs), func(i int) bool { return segs[i].end > off })
		if i < len(segs) {
			counts[i]++
		}
		off += len(tok)
	}
	require.Equal(t, len(text), off)
	return segs, counts
}

// fitCosts measures the average token cost of each kind of piece of the
// corpus.
func fitCosts(t testing.TB, codec tokenizer.Codec, texts map[string]string) quickCosts {
	type acc struct{ tokens, n, units float64 }
	stats := map[string]*acc{}
	add := func(key string, tokens, units float64) {
		a := stats[key]
		if a == nil {
			a = &acc{}
			stats[key] = a
		}
		a.tokens += tokens
		a.n++
		a.units += units
	}
	type wordSample struct{ n, tokens int }
	var prefixed []wordSample
	samples := map[string][]wordSample{}
	for _, text := range texts {
		segs, counts := pieces(t, codec, text)
		for i, s := range segs {
			tok := float64(counts[i])
			key := map[int]string{pieceWord: "word", pieceWordUpper: "upper", pieceWordHump: "hump", pieceWordExt: "ext", pieceWordAlt: "alt"}[s.kind]
			switch s.kind {
			case pieceWord, pieceWordUpper, pieceWordHump:
				samples[key] = append(samples[key], wordSample{s.n, counts[i]})
			case pieceWordPrefixed:
				prefixed = append(prefixed, wordSample{s.n, counts[i]})
			case pieceWordExt, pieceWordAlt:
				samples[key] = append(samples[key], wordSample{s.n, counts[i]})
			case piecePunct:
				if s.n <= punctBuckets {
					add(fmt.Sprintf("punct/%d", s.n), tok, 1)
				} else {
					add("punctLong", tok, float64(s.n))
				}
			case pieceSpaces:
				units := 0.0
				if s.end > s.start {
					units = 1
				}
				add("spaces", tok, units)
			default:
				add(fmt.Sprintf("k%d", s.kind), tok, float64(s.n))
			}
		}
	}
	rate := func(key string, fallback float64) float64 {
		if a := stats[key]; a != nil && a.n >= 3 && a.units > 0 {
			return a.tokens / a.units
		}
		return fallback
	}
	u := func(v float64) uint16 { return uint16(max(0, v*256+0.5)) }
	var c quickCosts
	// Word tables: a word of up to knee letters costs base, each letter
	// beyond adds slope (least squares); a length with many samples keeps
	// its own average. Tables never decrease with length.
	const knee = 6
	table := func(key string, t *[wordBuckets]uint16) (slope float64) {
		var sum, n, sxy, sxx float64
		byLen := map[int][2]float64{}
		for _, w := range samples[key] {
			if w.n <= knee {
				sum += float64(w.tokens)
				n++
			}
			b := byLen[w.n]
			byLen[w.n] = [2]float64{b[0] + float64(w.tokens), b[1] + 1}
		}
		base := 1.0
		if n > 0 {
			base = sum / n
		}
		for _, w := range samples[key] {
			if w.n > knee {
				x := float64(w.n - knee)
				sxy += x * (float64(w.tokens) - base)
				sxx += x * x
			}
		}
		slope = 0.25
		if sxx > 0 {
			slope = max(sxy/sxx, 0)
		}
		prev := 0.0
		for l := 1; l <= wordBuckets; l++ {
			v := base + slope*float64(max(l-knee, 0))
			if b := byLen[l]; b[1] >= 30 {
				v = b[0] / b[1]
			}
			v = max(v, prev)
			t[l-1], prev = u(v), v
		}
		return slope
	}
	c.wordLong = u(table("word", &c.word))
	table("upper", &c.upper)
	table("hump", &c.hump)
	c.altLong = u(max(table("ext", &c.wordExt), table("alt", &c.wordAlt)))
	var extra float64
	for _, w := range prefixed {
		extra += float64(w.tokens) - float64(c.word[min(w.n, wordBuckets)-1])/256
	}
	c.prefix = u(extra / max(float64(len(prefixed)), 1))
	c.digits = u(rate(fmt.Sprintf("k%d", pieceDigits), 1))
	prev := 1.0
	for n := 1; n <= punctBuckets; n++ {
		v := rate(fmt.Sprintf("punct/%d", n), prev+0.2)
		c.punct[n-1], prev = u(v), v
	}
	c.punctLong = u(rate("punctLong", 0.3))
	c.spaces = u(rate("spaces", 1))
	c.lines = u(rate(fmt.Sprintf("k%d", pieceLines), 1))
	c.breaks = u(rate(fmt.Sprintf("k%d", pieceBreaks), 0.3))
	c.han = u(rate(fmt.Sprintf("k%d", pieceHan), 1.2))
	c.kana = u(rate(fmt.Sprintf("k%d", pieceKana), 1))
	c.hangul = u(rate(fmt.Sprintf("k%d", pieceHangul), 1.2))
	c.symbol = u(rate(fmt.Sprintf("k%d", pieceSymbol), 1))
	c.blob = u(rate(fmt.Sprintf("k%d", pieceBlob), 0.6))
	c.emoji = u(rate(fmt.Sprintf("k%d", pieceEmoji), 2.5))
	c.other = u(rate(fmt.Sprintf("k%d", pieceOther), 1))
	// foreign: what the texts with accented words miss, relative to the
	// cost of their ASCII words.
	var miss, base float64
	d := buildDFA(&c)
	for _, text := range texts {
		q := quickCounter{d: d}
		q.text([]byte(text), false)
		q.end()
		if q.extWords == 0 {
			continue
		}
		exact, err := codec.Count(text)
		require.NoError(t, err)
		miss += float64(exact) - float64(q.units)/256
		base += float64(q.wordUnits) / 256 * float64(q.extWords) / float64(q.words)
	}
	if base > 0 {
		c.foreign = u(miss / base)
	}
	return c
}

// quickBand is the largest error of QuickCount against tiktoken that
// TestQuickErrorBand accepts for a text of the corpus or the holdout set,
// by the text's file name prefix; the bands QuickCount documents.
func quickBand(name string) float64 {
	switch {
	case strings.HasPrefix(name, "zh"), strings.HasPrefix(name, "ja"), strings.HasPrefix(name, "ko"):
		return 0.25
	case strings.HasPrefix(name, "en_"), strings.HasPrefix(name, "code_"), strings.HasPrefix(name, "json"),
		strings.HasPrefix(name, "logs"), strings.HasPrefix(name, "numbers"), strings.HasPrefix(name, "markdown"):
		return 0.10
	}
	return 0.15 // other languages, emoji, base64
}

// TestQuickErrorBand measures QuickCount against tiktoken on every text of
// the corpus (which the costs were fitted on) and of the holdout set (which
// they were not), and on whole request bodies made of them.
func TestQuickErrorBand(t *testing.T) {
	texts := corpus(t)
	for name, text := range holdout(t) {
		texts["holdout/"+name] = text
	}
	c := NewCounter()
	for _, enc := range quickEncodings {
		var sumQ, sumT int64
		for name, text := range texts {
			exact, err := c.Count(enc.name, text)
			require.NoError(t, err)
			q := QuickCount(enc.name, []byte(text))
			sumQ += q
			sumT += int64(exact)
			e := float64(q-int64(exact)) / float64(exact)
			require.LessOrEqual(t, abs(e), quickBand(strings.TrimPrefix(name, "holdout/")), "%s %s: tiktoken %d, quick %d", enc.name, name, exact, q)
		}
		e := float64(sumQ-sumT) / float64(sumT)
		t.Logf("%s all texts: tiktoken %d, quick %d (%+.1f%%)", enc.name, sumT, sumQ, 100*e)
		require.LessOrEqual(t, abs(e), 0.05, "%s all texts: tiktoken %d, quick %d", enc.name, sumT, sumQ)
		for _, set := range []map[string]string{corpus(t), holdout(t)} {
			for _, body := range []struct {
				anthropic bool
				b         []byte
			}{{false, openAIBody(set)}, {true, anthropicBody(set)}} {
				exact, quick := c.EstimateOpenAIChat(enc.name, body.b), QuickEstimateOpenAIChat(enc.name, body.b)
				if body.anthropic {
					exact, quick = c.EstimateAnthropicMessages(enc.name, body.b), QuickEstimateAnthropicMessages(enc.name, body.b)
				}
				e := float64(quick-exact) / float64(exact)
				t.Logf("%s body (anthropic %v): tiktoken %d, quick %d (%+.1f%%)", enc.name, body.anthropic, exact, quick, 100*e)
				require.LessOrEqual(t, abs(e), 0.08, "%s body (anthropic %v): tiktoken %d, quick %d", enc.name, body.anthropic, exact, quick)
			}
		}
	}
}

func abs(x float64) float64 { return max(x, -x) }

// TestQuickCountEscapes checks that a text counts the same as the inside of
// its JSON string literal.
func TestQuickCountEscapes(t *testing.T) {
	for _, text := range corpus(t) {
		checkEscapes(t, text)
	}
}

func checkEscapes(t testing.TB, text string) {
	for _, lit := range [][]byte{jsonx.AppendQuote(nil, text), asciiJSON(text)} {
		for _, enc := range quickEncodings {
			q := newQuickCounter(enc.name)
			q.text(lit[1:len(lit)-1], true)
			q.end()
			if got, want := q.tokens(), QuickCount(enc.name, []byte(text)); got != want {
				t.Fatalf("%s: literal %.80q counts %d, text %d", enc.name, lit, got, want)
			}
		}
	}
}

// asciiJSON quotes text escaping everything beyond ASCII, as Python's
// json.dumps does.
func asciiJSON(text string) []byte {
	b := []byte{'"'}
	for _, r := range text {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r < 0x20 || r >= 0x7F:
			for _, u := range utf16.Encode([]rune{r}) {
				b = fmt.Appendf(b, `\u%04x`, u)
			}
		default:
			b = append(b, byte(r))
		}
	}
	return append(b, '"')
}

func FuzzQuickCountEscapes(f *testing.F) {
	for _, s := range []string{"Hello, world!", "a\tb\nc \"q\" \\ é 中文 😀 \u2028", "getLogger_id.x", "aB3xK9+/QzaB3xK9+/QzaB3xK9+/Qz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		checkEscapes(t, s)
	})
}

// quickEncodings are the encodings the quick estimator is calibrated for.
var quickEncodings = []struct {
	name  string
	enc   tokenizer.Encoding
	costs *quickCosts
	dfa   **quickDFA
}{{EncodingCL100K, tokenizer.Cl100kBase, &cl100kCosts, &cl100kDFA}, {EncodingO200K, tokenizer.O200kBase, &o200kCosts, &o200kDFA}}

// TestQuickCalibration refits the quick estimator's costs on the corpus,
// rewrites quick_costs.go and prints the errors on the corpus and on the
// holdout set:
//
//	go test ./tokens -run TestQuickCalibration -calibrate
func TestQuickCalibration(t *testing.T) {
	if !*calibrate {
		t.Skip("run with -calibrate to refit the quick estimator's costs")
	}
	texts := corpus(t)
	var src strings.Builder
	src.WriteString("package tokens\n\n// The quick estimator's calibration, fitted on testdata/corpus by\n//\n//\tgo test ./tokens -run TestQuickCalibration -calibrate\nvar (\n")
	for _, enc := range quickEncodings {
		codec, err := tokenizer.Get(enc.enc)
		require.NoError(t, err)
		c := fitCosts(t, codec, texts)
		fmt.Fprintf(&src, "\t%sCosts = %s\n", strings.TrimSuffix(enc.name, "_base"), costsLiteral(c))
		*enc.costs = c
		*enc.dfa = buildDFA(enc.costs)
	}
	src.WriteString(")\n")
	formatted, err := format.Source([]byte(src.String()))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile("quick_costs.go", formatted, 0o644))
	reportErrors(t, texts)
	reportErrors(t, holdout(t))
}

// costsLiteral writes c as Go source.
func costsLiteral(c quickCosts) string {
	var b strings.Builder
	b.WriteString("quickCosts{\n")
	v := reflect.ValueOf(c)
	for i := range v.NumField() {
		f := v.Field(i)
		fmt.Fprintf(&b, "\t\t%s: ", v.Type().Field(i).Name)
		if f.Kind() == reflect.Array {
			fmt.Fprintf(&b, "[%d]uint16{", f.Len())
			for j := range f.Len() {
				if j > 0 {
					b.WriteString(", ")
				}
				fmt.Fprint(&b, f.Index(j).Uint())
			}
			b.WriteString("},\n")
		} else {
			fmt.Fprintf(&b, "%d,\n", f.Uint())
		}
	}
	b.WriteString("\t}")
	return b.String()
}

// reportErrors prints the quick estimate's error on each corpus text.
func reportErrors(t testing.TB, texts map[string]string) {
	names := make([]string, 0, len(texts))
	for n := range texts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, enc := range quickEncodings {
		codec, err := tokenizer.Get(enc.enc)
		require.NoError(t, err)
		var sumQ, sumT int64
		for _, n := range names {
			exact, err := codec.Count(texts[n])
			require.NoError(t, err)
			q := QuickCount(enc.name, []byte(texts[n]))
			sumQ += q
			sumT += int64(exact)
			fmt.Printf("%-12s %-14s tiktoken %6d quick %6d error %+6.1f%%\n", enc.name, n, exact, q, 100*float64(q-int64(exact))/float64(exact))
		}
		fmt.Printf("%-12s %-14s tiktoken %6d quick %6d error %+6.1f%%\n", enc.name, "ALL", sumT, sumQ, 100*float64(sumQ-sumT)/float64(sumT))
	}
}

// largeBodies returns ~400 KB request bodies in each format, made of the
// corpus repeated.
func largeBodies(t testing.TB) (openai, anthropic []byte) {
	texts := corpus(t)
	big := map[string]string{}
	for name, text := range texts {
		for i := range 8 {
			big[fmt.Sprintf("%s_%d", name, i)] = text
		}
	}
	return openAIBody(big), anthropicBody(big)
}

func BenchmarkQuickEstimate(b *testing.B) {
	openai, anthropic := largeBodies(b)
	b.Run("openai_400K", func(b *testing.B) {
		b.SetBytes(int64(len(openai)))
		b.ReportAllocs()
		for b.Loop() {
			QuickEstimateOpenAIChat(EncodingO200K, openai)
		}
	})
	b.Run("anthropic_400K", func(b *testing.B) {
		b.SetBytes(int64(len(anthropic)))
		b.ReportAllocs()
		for b.Loop() {
			QuickEstimateAnthropicMessages(EncodingCL100K, anthropic)
		}
	})
}

func BenchmarkQuickCount(b *testing.B) {
	texts := corpus(b)
	for _, name := range []string{"en_prose", "code_go", "json", "zh", "base64"} {
		text := []byte(texts[name])
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			for b.Loop() {
				QuickCount(EncodingCL100K, text)
			}
		})
	}
}

// BenchmarkQuickCountReference is the floor of any estimator that looks at
// every byte: a class table lookup and a sum per byte, over the corpus.
func BenchmarkQuickCountReference(b *testing.B) {
	var text []byte
	for _, name := range sortedNames(corpus(b)) {
		text = append(text, corpus(b)[name]...)
	}
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	var sum int
	for b.Loop() {
		for _, c := range text {
			sum += int(asciiClass[c])
		}
	}
	if sum == 0 {
		b.Fatal("no text")
	}
}

// BenchmarkEstimate400K is the exact count of the same bodies, for
// comparison.
func BenchmarkEstimate400K(b *testing.B) {
	openai, anthropic := largeBodies(b)
	c := NewCounter()
	c.EstimateOpenAIChat(EncodingO200K, openai)
	c.EstimateAnthropicMessages(EncodingCL100K, anthropic)
	b.Run("openai", func(b *testing.B) {
		b.SetBytes(int64(len(openai)))
		b.ReportAllocs()
		for b.Loop() {
			c.EstimateOpenAIChat(EncodingO200K, openai)
		}
	})
	b.Run("anthropic", func(b *testing.B) {
		b.SetBytes(int64(len(anthropic)))
		b.ReportAllocs()
		for b.Loop() {
			c.EstimateAnthropicMessages(EncodingCL100K, anthropic)
		}
	})
}

// TestQuickSampledBody: a large body is estimated from a sample of its
// text; the result stays within 2% of counting all of the text quickly, and
// within the whole-body band of the exact count.
func TestQuickSampledBody(t *testing.T) {
	openai, anthropic := largeBodies(t)
	require.Greater(t, len(openai), 4*sampleFrom, "a body large enough to be sampled")
	c := NewCounter()
	for _, tc := range []struct {
		name      string
		body      []byte
		anthropic bool
		encoding  string
		exact     int64
	}{
		{"openai", openai, false, EncodingO200K, c.EstimateOpenAIChat(EncodingO200K, openai)},
		{"anthropic", anthropic, true, EncodingCL100K, c.EstimateAnthropicMessages(EncodingCL100K, anthropic)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			whole, ok := walkBody(tc.body, tc.anthropic, nil, dfaFor(tc.encoding), false)
			require.True(t, ok)
			sampled, ok := walkBody(tc.body, tc.anthropic, nil, dfaFor(tc.encoding), true)
			require.True(t, ok)
			require.InEpsilon(t, float64(whole), float64(sampled), 0.02, "sampled %d, whole %d", sampled, whole)
			require.InEpsilon(t, float64(tc.exact), float64(sampled), 0.08, "sampled %d, exact %d", sampled, tc.exact)
		})
	}
}

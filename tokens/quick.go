package tokens

import (
	"unicode/utf8"

	"github.com/llmgate/gateway/internal/jsonx"
)

// The quick estimator: a token count without tiktoken, for when a count is
// needed before the first byte of a response (Anthropic's message_start
// input_tokens) and the exact count would cost more than the request.
//
// It cuts text into the pieces tiktoken's pre-tokenizer makes — runs of
// letters, digits (in groups of three), punctuation, spaces and line
// breaks, and single CJK characters, symbols and emoji — and adds a cost
// per piece, by kind and length, measured once on a corpus against the
// real cl100k_base and o200k_base counts (quickCosts, fitted by
// TestQuickCalibration -calibrate). No piece is looked up: a character costs
// a table lookup, and nothing is allocated. TestQuickErrorBand
// measures the error against tiktoken on that corpus (English prose,
// technical text, chat, Go, Python and TypeScript code, JSON, CSV numbers,
// logs, base64 and hex, Chinese, Japanese, Korean, Russian, European
// languages, emoji) and fails when it leaves the band documented on
// QuickCount.

// Character classes.
const (
	chLower = iota
	chUpper
	chDigit
	chPunct
	chSpace
	chLine
	chLatin // a letter of Latin-1 or Latin Extended
	chAlt   // a letter of Greek, Cyrillic, Armenian, Hebrew, Arabic, ...
	chHan
	chKana
	chHangul
	chSymbol
	chEmoji
	chOther
)

// Buckets of the cost tables.
const (
	wordBuckets  = 16 // letter runs of 1..16 letters; longer ones cost more per letter
	punctBuckets = 4  // punctuation runs of 1..4 characters; longer ones cost more per character
)

// quickCosts are the token costs of the pieces, in 1/256 of a token.
type quickCosts struct {
	word      [wordBuckets]uint16  // ASCII words with a lower-case letter, by length
	upper     [wordBuckets]uint16  // ASCII words in capitals, by length
	hump      [wordBuckets]uint16  // the parts of camelCase words after the first, by length
	wordLong  uint16               // each ASCII letter beyond the tables
	prefix    uint16               // a word's extra cost for the punctuation character it took
	foreign   uint16               // extra cost of the ASCII words of a text, times the share of its words with non-ASCII letters
	wordExt   [wordBuckets]uint16  // words with non-ASCII Latin letters, by length in letters
	wordAlt   [wordBuckets]uint16  // words in another alphabet, by length in letters
	altLong   uint16               // each letter beyond wordExt and wordAlt
	digits    uint16               // each group of up to three digits
	punct     [punctBuckets]uint16 // punctuation runs by length
	punctLong uint16               // each character beyond the table
	spaces    uint16               // a run of spaces or tabs, beyond the one a piece takes
	lines     uint16               // a run of whitespace with line breaks
	breaks    uint16               // line breaks right after punctuation
	han       uint16               // each CJK ideograph
	kana      uint16               // each kana
	hangul    uint16               // each Hangul syllable
	symbol    uint16               // each other symbol
	blob      uint16               // each character of a blob: base64, hex, hashes, ids
	emoji     uint16               // each four-byte character
	other     uint16               // each letter of another script
}

// asciiClass is the class of each ASCII byte.
var asciiClass = func() (t [256]uint8) {
	for c := range 128 {
		switch {
		case 'a' <= c && c <= 'z':
			t[c] = chLower
		case 'A' <= c && c <= 'Z':
			t[c] = chUpper
		case '0' <= c && c <= '9':
			t[c] = chDigit
		case c == ' ' || c == '\t' || c == '\v' || c == '\f':
			t[c] = chSpace
		case c == '\n' || c == '\r':
			t[c] = chLine
		default:
			t[c] = chPunct
		}
	}
	return t
}()

// runeClass classifies a non-ASCII character.
func runeClass(r rune) uint8 {
	switch {
	case r < 0xC0:
		return chSymbol
	case r < 0x370:
		if r == 0xD7 || r == 0xF7 {
			return chSymbol
		}
		return chLatin
	case r < 0x800:
		return chAlt
	case r < 0x2000:
		return chOther
	case r < 0x3040:
		return chSymbol
	case r < 0x3100:
		return chKana
	case r < 0xA000:
		return chHan
	case r < 0xAC00:
		return chOther
	case r < 0xD7B0:
		return chHangul
	case r < 0x10000:
		return chSymbol
	}
	return chEmoji
}

// The model. A text is cut into pieces as tiktoken's pre-tokenizer cuts it,
// and each piece costs an amount by kind and length:
//
//   - words: runs of letters, split at lower→upper case changes (the part
//     after a change is a "hump"). A word of ASCII letters costs word (with
//     a lower-case letter), upper (capitals only) or hump by length, plus
//     wordLong per letter beyond the table; a word with Latin letters beyond
//     ASCII costs wordExt, one with another alphabet wordAlt, plus altLong
//     per letter beyond. A lone punctuation character right before a word,
//     not after a space, belongs to it ("_id", ".get", "'s") and costs
//     prefix instead of a punctuation run.
//   - digits cost digits per group of up to three; punctuation runs punct
//     by length, plus punctLong per character beyond; line breaks cost
//     lines, or breaks right after punctuation (which tiktoken joins to
//     it); two or more spaces or tabs cost spaces (a lone space goes with
//     the next piece, free); CJK characters, kana, Hangul syllables, other
//     symbols, emoji and letters of other scripts cost per character.
//   - blobs: a run without whitespace of at least blobMinLen characters
//     that switches between lower case, upper case and digits at least
//     once per blobSwitchEvery characters (base64, hex, hashes, UUIDs)
//     costs blob per character instead of its pieces.
//   - the ASCII words of a text that has words with accented letters are
//     mostly not English and cost more: foreign times the share of words
//     with accented letters.
//
// The model is compiled into an automaton (quickDFA) whose states are the
// kind and length of the open piece, so that a character costs a table
// lookup: step says what one character does, buildDFA tabulates it.

// Automaton states.
const (
	stStart  = iota // the start of a text
	stSpace1        // a space or tab
	stSpaces        // two or more
	stLines         // whitespace with line breaks
	stBreaks        // line breaks after punctuation
	stDigit1        // digits: the position in a group of three
	stDigit2
	stDigit3
	stPunct1       // one punctuation character, not after spaces
	stPunct1Spaced // one, after spaces
	stPunct2
	stPunct3
	stPunct4 // four or more
	stHan
	stKana
	stHangul
	stSymbol
	stEmoji
	stOther
	stWordLo                            // + k-1: an ASCII word of k letters, with a lower-case letter, the last one lower case
	stWordUp   = stWordLo + wordBuckets // + k-1: the same, the last letter upper case
	stUpper    = stWordUp + wordBuckets // + k-1: capitals only
	stHumpLo   = stUpper + wordBuckets  // + k-1: a hump, the last letter lower case
	stHumpUp   = stHumpLo + wordBuckets // + k-1: a hump, the last letter upper case
	stExt      = stHumpUp + wordBuckets // + k-1: a word with accented Latin letters
	stAlt      = stExt + wordBuckets    // + k-1: a word in another alphabet
	numStates  = stAlt + wordBuckets
	numClasses = chOther + 1
)

// Transition flags.
const (
	flagNonWS    = 1 << iota // the character is not whitespace (counts in the run)
	flagSwitch               // a change between lower case, upper case and digits
	flagEndRun               // whitespace after a run: end the run first
	flagStartRun             // the first character after whitespace: commit what the whitespace cost
	flagWord                 // a word starts (not a hump)
	flagExt                  // the word becomes one with accented Latin letters
	flagUnExt                // it stops being one (it has another alphabet too)
	flagNewPiece             // a new piece starts (calibration)
)

// transition is one entry of the automaton.
type transition struct {
	next  uint8
	flags uint8
	cost  int16 // in 1/256 of a token
	word  int16 // the part of cost that the ASCII words' cost (for foreign) gets
}

// quickDFA is the model compiled for one calibration. The table is sized
// so that a uint8 state and a class indexes it without bounds checks.
type quickDFA struct {
	c     *quickCosts
	trans [256][16]transition
}

// family returns a word state's family (its first state) and length, or
// (-1, 0) for other states.
func family(st int) (first, k int) {
	if st < stWordLo {
		return -1, 0
	}
	return stWordLo + (st-stWordLo)/wordBuckets*wordBuckets, (st-stWordLo)%wordBuckets + 1
}

// table returns the costs of a word family.
func (c *quickCosts) table(first int) (t *[wordBuckets]uint16, long uint16) {
	switch first {
	case stWordLo, stWordUp:
		return &c.word, c.wordLong
	case stUpper:
		return &c.upper, c.wordLong
	case stHumpLo, stHumpUp:
		return &c.hump, c.wordLong
	case stExt:
		return &c.wordExt, c.altLong
	}
	return &c.wordAlt, c.altLong
}

// wordCost is the cost of a word of family first and length k (k may
// exceed the table).
func (c *quickCosts) wordCost(first, k int) int {
	t, long := c.table(first)
	u := int(t[min(k, wordBuckets)-1])
	if k > wordBuckets {
		u += (k - wordBuckets) * int(long)
	}
	return u
}

// isASCIIWord reports whether a word family counts in the ASCII words'
// cost.
func isASCIIWord(first int) bool { return first >= stWordLo && first < stExt }

// isWhitespace reports whether a state is whitespace (or the start).
func isWhitespace(st int) bool { return st <= stBreaks }

// lastClass returns the class of the last character of a state for
// switch counting: chLower, chUpper, chDigit, or chPunct for others.
func lastClass(st int) uint8 {
	switch first, _ := family(st); {
	case st >= stDigit1 && st <= stDigit3:
		return chDigit
	case first == stWordLo || first == stHumpLo:
		return chLower
	case first == stWordUp || first == stHumpUp || first == stUpper:
		return chUpper
	}
	return chPunct
}

// step is the model for one character: in state st, a character of class
// cl leads to state next at cost (of which word goes to the ASCII words'
// cost), with flags.
func (c *quickCosts) step(st int, cl uint8) (next int, cost, word int, flags uint8) {
	ws := cl == chSpace || cl == chLine
	if !ws {
		flags |= flagNonWS
		if isWhitespace(st) {
			flags |= flagStartRun
		}
		if p := lastClass(st); p <= chDigit && cl <= chDigit && p != cl {
			flags |= flagSwitch
		}
	} else if !isWhitespace(st) {
		flags |= flagEndRun
	}
	first, k := family(st)
	// A new piece of the character's own kind.
	start := func() (int, int, int, uint8) {
		f := flags | flagNewPiece
		switch cl {
		case chSpace:
			return stSpace1, 0, 0, f
		case chLine:
			if st >= stPunct1 && st <= stPunct4 {
				return stBreaks, int(c.breaks), 0, f
			}
			return stLines, int(c.lines), 0, f
		case chDigit:
			return stDigit1, int(c.digits), 0, f
		case chPunct:
			if st == stSpace1 || st == stSpaces {
				return stPunct1Spaced, int(c.punct[0]), 0, f
			}
			return stPunct1, int(c.punct[0]), 0, f
		case chLower:
			return stWordLo, int(c.word[0]), int(c.word[0]), f | flagWord
		case chUpper:
			return stUpper, int(c.upper[0]), int(c.upper[0]), f | flagWord
		case chLatin:
			return stExt, int(c.wordExt[0]), 0, f | flagWord | flagExt
		case chAlt:
			return stAlt, int(c.wordAlt[0]), 0, f | flagWord
		}
		s, u := c.perChar(cl)
		return s, u, 0, f
	}
	// grow makes the open word one letter longer in family to.
	grow := func(to int) (int, int, int, uint8) {
		n := min(k+1, wordBuckets)
		cost := c.wordCost(to, k+1) - c.wordCost(first, k)
		word := 0
		if isASCIIWord(to) {
			word += c.wordCost(to, k+1)
		}
		if isASCIIWord(first) {
			word -= c.wordCost(first, k)
		}
		f := flags
		if to == stExt && first != stExt {
			f |= flagExt
		}
		if to == stAlt && first == stExt {
			f |= flagUnExt
		}
		return to + n - 1, cost, word, f
	}
	switch {
	case st == stSpace1 && cl == chSpace:
		return stSpaces, int(c.spaces), 0, flags
	case st == stSpace1 && cl == chLine:
		return stLines, int(c.lines), 0, flags
	case st == stSpaces && cl == chSpace:
		return stSpaces, 0, 0, flags
	case st == stSpaces && cl == chLine:
		return stLines, int(c.lines) - int(c.spaces), 0, flags
	case (st == stLines || st == stBreaks) && cl == chLine:
		return st, 0, 0, flags
	case st == stDigit1 && cl == chDigit:
		return stDigit2, 0, 0, flags
	case st == stDigit2 && cl == chDigit:
		return stDigit3, 0, 0, flags
	case st == stDigit3 && cl == chDigit:
		return stDigit1, int(c.digits), 0, flags
	case st >= stPunct1 && st <= stPunct4 && cl == chPunct:
		switch st {
		case stPunct1, stPunct1Spaced:
			return stPunct2, int(c.punct[1]) - int(c.punct[0]), 0, flags
		case stPunct2:
			return stPunct3, int(c.punct[2]) - int(c.punct[1]), 0, flags
		case stPunct3:
			return stPunct4, int(c.punct[3]) - int(c.punct[2]), 0, flags
		}
		return stPunct4, int(c.punctLong), 0, flags
	case st == stPunct1 && (cl == chLower || cl == chUpper || cl == chLatin || cl == chAlt):
		// The punctuation character goes with the word.
		next, cost, word, f := start()
		return next, cost - int(c.punct[0]) + int(c.prefix), word, f &^ flagNewPiece
	case st >= stHan && st <= stOther:
		if s, u := c.perChar(cl); s == st {
			return st, u, 0, flags
		}
	case first >= 0 && (cl == chLower || cl == chUpper || cl == chLatin || cl == chAlt):
		switch {
		case first == stAlt || cl == chAlt:
			return grow(stAlt)
		case first == stExt || cl == chLatin:
			return grow(stExt)
		case cl == chUpper && (first == stWordLo || first == stHumpLo):
			// A hump: a new piece, not a new word.
			return stHumpUp, int(c.hump[0]), int(c.hump[0]), flags | flagNewPiece
		case cl == chLower && (first == stWordLo || first == stWordUp || first == stUpper):
			return grow(stWordLo)
		case cl == chLower:
			return grow(stHumpLo)
		case first == stHumpLo || first == stHumpUp:
			return grow(stHumpUp)
		case first == stUpper:
			return grow(stUpper)
		}
		return grow(stWordUp)
	}
	return start()
}

// perChar returns the state and cost of a character of a class that costs
// per character (CJK, symbols, emoji, other scripts), or (-1, 0).
func (c *quickCosts) perChar(cl uint8) (st, cost int) {
	switch cl {
	case chHan:
		return stHan, int(c.han)
	case chKana:
		return stKana, int(c.kana)
	case chHangul:
		return stHangul, int(c.hangul)
	case chSymbol:
		return stSymbol, int(c.symbol)
	case chEmoji:
		return stEmoji, int(c.emoji)
	case chOther:
		return stOther, int(c.other)
	}
	return -1, 0
}

// buildDFA compiles the model for a calibration.
func buildDFA(c *quickCosts) *quickDFA {
	d := &quickDFA{c: c}
	for st := range numStates {
		for cl := range numClasses {
			next, cost, word, flags := c.step(st, uint8(cl))
			d.trans[st][cl] = transition{next: uint8(next), flags: flags, cost: int16(cost), word: int16(word)}
		}
	}
	return d
}

// Blobs (see the model).
const (
	blobMinLen      = 24
	blobSwitchEvery = 4
)

// quickCounter sums the model's costs over one or more texts. The zero
// value is not usable: see newQuickCounter.
type quickCounter struct {
	d *quickDFA

	units     int64 // committed cost
	wordUnits int64 // committed cost of ASCII words
	words     int   // words (not humps)
	extWords  int   // words with accented Latin letters

	st       int   // automaton state
	run      int64 // cost since the start of the run (or of the whitespace)
	runWord  int64 // its ASCII words' part
	runLen   int   // non-whitespace characters in the run
	switches int   // case and digit changes in the run
}

// text adds the pieces of b. With escaped, b is the inside of a JSON string
// literal and its escapes count as the characters they stand for.
//
// This is the hot loop: the automaton's state and the run's sums live in
// local variables, and a character costs one table lookup.
func (q *quickCounter) text(b []byte, escaped bool) {
	d := q.d
	st := uint8(q.st)
	run, runWord, runLen, switches := q.run, q.runWord, q.runLen, q.switches
	units, wordUnits, words, extWords := q.units, q.wordUnits, q.words, q.extWords
	blob := int64(d.c.blob)
	for i := 0; i < len(b); {
		c := b[i]
		var cl uint8
		switch {
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(b[i:])
			cl = runeClass(r)
			i += n
		case c == '\\' && escaped && i+1 < len(b):
			var n int
			cl, n = escapeClass(b[i:])
			i += n
		case 'a' <= c && c <= 'z' && st >= stWordLo && st < stWordUp:
			// A run of lower-case letters that continues a lower-case
			// word only lengthens it: its cost comes from the word table
			// at once.
			j := i + 1
			for j < len(b) && 'a' <= b[j] && b[j] <= 'z' {
				j++
			}
			k, m := int(st)-stWordLo+1, j-i
			cost := int64(d.c.wordCost(stWordLo, k+m) - d.c.wordCost(stWordLo, k))
			run += cost
			runWord += cost
			runLen += m
			st = uint8(stWordLo + min(k+m, wordBuckets) - 1)
			i = j
			continue
		default:
			cl = asciiClass[c]
			i++
		}
		t := &d.trans[st][cl&15]
		if f := t.flags; f&(flagEndRun|flagStartRun|flagWord|flagExt|flagUnExt) != 0 {
			if f&(flagEndRun|flagStartRun) != 0 {
				// A blob costs blob per character, anything else what
				// its pieces cost.
				if runLen >= blobMinLen && switches*blobSwitchEvery >= runLen {
					units += int64(runLen) * blob
				} else {
					units += run
					wordUnits += runWord
				}
				run, runWord, runLen, switches = 0, 0, 0, 0
			}
			words += int(f&flagWord) >> 4
			extWords += int(f&flagExt)>>5 - int(f&flagUnExt)>>6
		}
		st = t.next
		run += int64(t.cost)
		runWord += int64(t.word)
		runLen += int(t.flags & flagNonWS)
		switches += int(t.flags&flagSwitch) >> 1
	}
	q.st = int(st)
	q.run, q.runWord, q.runLen, q.switches = run, runWord, runLen, switches
	q.units, q.wordUnits, q.words, q.extWords = units, wordUnits, words, extWords
}

// endRun ends a run of characters without whitespace, as text does.
func (q *quickCounter) endRun() {
	if q.runLen >= blobMinLen && q.switches*blobSwitchEvery >= q.runLen {
		q.units += int64(q.runLen) * int64(q.d.c.blob)
	} else {
		q.units += q.run
		q.wordUnits += q.runWord
	}
	q.run, q.runWord, q.runLen, q.switches = 0, 0, 0, 0
}

// escapeClass classifies the JSON escape at the start of b (b[0] == '\\')
// and returns its length.
func escapeClass(b []byte) (uint8, int) {
	r, n := jsonx.DecodeEscape(b)
	switch {
	case n == 0: // malformed: the backslash and the next byte
		return chPunct, 2
	case r < utf8.RuneSelf:
		return asciiClass[r], n
	}
	return runeClass(r), n
}

// end closes the text that was added last.
func (q *quickCounter) end() {
	if q.st == stSpace1 { // a lone space at the end is a piece
		q.run += int64(q.d.c.spaces)
	}
	q.endRun()
	q.st = stStart
}

// tokens returns the sum so far, rounded. The ASCII words of a text with
// accented words are mostly not English, and cost more.
func (q *quickCounter) tokens() int64 {
	u := q.units
	if q.extWords > 0 && q.words > 0 {
		u += q.wordUnits * int64(q.d.c.foreign) * int64(q.extWords) / int64(q.words) >> 8
	}
	return max(u+128, 0) >> 8
}

// The compiled calibrations. They are built once, at program start (a few
// microseconds), and never change.
var (
	cl100kDFA = buildDFA(&cl100kCosts)
	o200kDFA  = buildDFA(&o200kCosts)
)

// dfaFor returns the automaton of an encoding ("" means cl100k_base, as for
// Counter; unknown encodings use o200k_base's, the newer one).
func dfaFor(encoding string) *quickDFA {
	if encoding == EncodingCL100K || encoding == "" {
		return cl100kDFA
	}
	return o200kDFA
}

// newQuickCounter returns a counter with the calibration of an encoding.
func newQuickCounter(encoding string) quickCounter {
	return quickCounter{d: dfaFor(encoding)}
}

// QuickCount estimates the number of tokens of text in the encoding
// (cl100k_base for ""; other encodings use o200k_base's calibration)
// without tokenizing it. Its error against tiktoken, measured by
// TestQuickErrorBand on the corpus and on held-out texts, stays within
// ±10% for a text of a few kilobytes of English, code, JSON, Markdown, logs
// or numbers; ±15% for other languages written in the Latin or Cyrillic
// alphabets, emoji, base64 and hex; ±25% for Chinese, Japanese and Korean;
// and ±5% over all the texts together. A short text can be off by a token
// or two more. It is safe for concurrent use and does not allocate.
func QuickCount(encoding string, text []byte) int64 {
	q := newQuickCounter(encoding)
	q.text(text, false)
	q.end()
	return q.tokens()
}

// QuickEstimateOpenAIChat estimates the prompt tokens of an OpenAI chat
// completions request body as Counter.EstimateOpenAIChat counts them (the
// same text and per-message overhead), with QuickCount instead of
// tiktoken: within a few percent of it for a typical conversation (see
// QuickCount for the bands), at several hundred megabytes per second, so
// that a count never delays a response. A body over 64 KB is estimated
// from an even sample of about 64 KB of its text, so the cost stops growing
// with the body (within a percent or two of counting it all). Unreadable input estimates at 4
// bytes per token. It is safe for concurrent use and does not allocate.
func QuickEstimateOpenAIChat(encoding string, body []byte) int64 {
	n, ok := walkBody(body, false, nil, dfaFor(encoding), true)
	if !ok {
		return int64(len(body)+3) / 4
	}
	return n
}

// QuickEstimateAnthropicMessages estimates the input tokens of an Anthropic
// messages request body as Counter.EstimateAnthropicMessages counts them,
// with QuickCount instead of tiktoken. See QuickEstimateOpenAIChat.
func QuickEstimateAnthropicMessages(encoding string, body []byte) int64 {
	n, ok := walkBody(body, true, nil, dfaFor(encoding), true)
	if !ok {
		return int64(len(body)+3) / 4
	}
	return n
}

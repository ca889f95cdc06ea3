package tokens

import (
	"unicode/utf16"
	"unicode/utf8"
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
// TestQuickCalibration -calibrate). No piece is looked up, so it reads
// about a gigabyte per second and never allocates. TestQuickErrorBand
// measures the error against tiktoken on that corpus (English prose,
// technical text, chat, Go, Python and TypeScript code, JSON, CSV numbers,
// logs, base64 and hex, Chinese, Japanese, Korean, Russian, European
// languages, emoji) and fails when it leaves the band documented on
// QuickCount.

// Kinds of piece.
const (
	pieceNone    = iota
	pieceWord    // ASCII letters (up to a lower→upper case change)
	pieceWordExt // letters, some of them Latin beyond ASCII
	pieceWordAlt // letters, some of them Greek, Cyrillic or another two-byte script
	pieceDigits
	piecePunct  // ASCII punctuation
	pieceSpaces // spaces and tabs
	pieceLines  // whitespace with line breaks
	pieceBreaks // line breaks right after punctuation (tiktoken joins them)
	pieceHan
	pieceKana
	pieceHangul
	pieceSymbol // other punctuation and symbols (two or three bytes)
	pieceEmoji  // four-byte characters
	pieceOther  // letters of other three-byte scripts

	// Calibration only: the kinds of pieceWord.
	pieceWordUpper    // in capitals
	pieceWordHump     // after a lower→upper case change ("State" of "useState")
	pieceWordPrefixed // with the punctuation character before it ("_id", ".get")
	pieceBlob         // a blob (see endRun)
)

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
var asciiClass = func() (t [128]uint8) {
	for c := range t {
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

// segment is a piece found by the quick estimator, for calibration.
type segment struct {
	kind       int
	n          int // length in characters (groups for digits)
	start, end int // byte offsets
}

// quickCounter sums piece costs over one or more texts.
type quickCounter struct {
	c     *quickCosts
	units uint64

	wordUnits       uint64 // cost of the ASCII words
	words, extWords int    // words, and words with non-ASCII Latin letters

	// The run of characters since the last whitespace, to tell blobs.
	run      uint64 // cost of its pieces
	runWords uint64 // cost of its ASCII words
	runLen   int    // its length in characters
	switches int    // changes between lower case, upper case and digits in it
	prevCl   uint8  // class of its last character
	runStart int    // its byte offset (calibration)
	blobs    *[]segment

	kind     int  // kind of the open piece
	n        int  // its length in characters
	lower    bool // its last letter is lower case
	hasLower bool // it has a lower-case letter
	hump     bool // it is a word that starts at a lower→upper case change
	prefixed bool // it is a word that took the punctuation character before it
	spaced   bool // it follows spaces
	start    int  // its byte offset (calibration)
	segments *[]segment
}

// flush ends the open piece; next is the class of the character that
// follows it (-1 at the end of the text).
func (q *quickCounter) flush(next int, at int) {
	c := q.c
	var u uint64
	switch q.kind {
	case pieceNone:
		return
	case pieceWord:
		t := &c.word
		switch {
		case q.hump:
			t = &c.hump
		case !q.hasLower:
			t = &c.upper
		default:
			q.words++
		}
		u = uint64(t[min(q.n, wordBuckets)-1])
		if q.n > wordBuckets {
			u += uint64(q.n-wordBuckets) * uint64(c.wordLong)
		}
		if q.prefixed {
			u += uint64(c.prefix)
		}
		q.runWords += u
	case pieceWordExt, pieceWordAlt:
		q.words++
		t := &c.wordAlt
		if q.kind == pieceWordExt {
			q.extWords++
			t = &c.wordExt
		}
		u = uint64(t[min(q.n, wordBuckets)-1])
		if q.n > wordBuckets {
			u += uint64(q.n-wordBuckets) * uint64(c.altLong)
		}
	case pieceDigits:
		u = uint64((q.n+2)/3) * uint64(c.digits)
	case piecePunct:
		u = uint64(c.punct[min(q.n, punctBuckets)-1])
		if q.n > punctBuckets {
			u += uint64(q.n-punctBuckets) * uint64(c.punctLong)
		}
	case pieceSpaces:
		// The last space or tab goes with the next piece; a lone one
		// costs nothing.
		if q.n > 1 || next < 0 || next == chLine {
			u = uint64(c.spaces)
		}
	case pieceLines:
		u = uint64(c.lines)
	case pieceBreaks:
		u = uint64(c.breaks)
	case pieceHan:
		u = uint64(q.n) * uint64(c.han)
	case pieceKana:
		u = uint64(q.n) * uint64(c.kana)
	case pieceHangul:
		u = uint64(q.n) * uint64(c.hangul)
	case pieceSymbol:
		u = uint64(q.n) * uint64(c.symbol)
	case pieceEmoji:
		u = uint64(q.n) * uint64(c.emoji)
	case pieceOther:
		u = uint64(q.n) * uint64(c.other)
	}
	if q.kind >= pieceSpaces && q.kind <= pieceBreaks {
		q.units += u
	} else {
		q.run += u
	}
	if q.segments != nil {
		q.trace(at)
	}
	q.kind = pieceNone
}

// Blobs: runs without whitespace of at least blobMinLen characters that
// switch between lower case, upper case and digits at least once every
// blobSwitchEvery characters (base64, hex, hashes, UUIDs) are tokenized
// into short fragments; they cost blob per character instead of their
// pieces.
const (
	blobMinLen      = 24
	blobSwitchEvery = 4
)

// endRun ends the run of characters since the last whitespace.
func (q *quickCounter) endRun(at int) {
	if q.runLen >= blobMinLen && q.switches*blobSwitchEvery >= q.runLen {
		q.units += uint64(q.runLen) * uint64(q.c.blob)
		if q.blobs != nil {
			*q.blobs = append(*q.blobs, segment{n: q.runLen, start: q.runStart, end: at})
		}
	} else {
		q.units += q.run
		q.wordUnits += q.runWords
	}
	q.run, q.runWords, q.runLen, q.switches, q.prevCl = 0, 0, 0, 0, chSpace
}

// trace records the open piece for calibration.
func (q *quickCounter) trace(at int) {
	kind, n := q.kind, q.n
	switch {
	case kind == pieceDigits:
		n = (n + 2) / 3
	case kind != pieceWord:
	case q.hump:
		kind = pieceWordHump
	case q.prefixed:
		kind = pieceWordPrefixed
	case !q.hasLower:
		kind = pieceWordUpper
	}
	*q.segments = append(*q.segments, segment{kind: kind, n: n, start: q.start, end: at})
}

// pieceOf maps a character class to the kind of piece it starts.
var pieceOf = [...]int{
	chLower: pieceWord, chUpper: pieceWord, chDigit: pieceDigits, chPunct: piecePunct,
	chSpace: pieceSpaces, chLine: pieceLines, chLatin: pieceWordExt, chAlt: pieceWordAlt,
	chHan: pieceHan, chKana: pieceKana, chHangul: pieceHangul, chSymbol: pieceSymbol,
	chEmoji: pieceEmoji, chOther: pieceOther,
}

// char adds one character of class cl at byte offset at.
func (q *quickCounter) char(cl uint8, at int) {
	if cl == chSpace || cl == chLine {
		if q.runLen > 0 { // the open piece is not whitespace: end it and the run
			kind := pieceSpaces
			if cl == chLine {
				kind = pieceLines
				if q.kind == piecePunct {
					kind = pieceBreaks
				}
			}
			q.flush(int(cl), at)
			q.endRun(at)
			q.kind, q.n, q.start, q.hump, q.prefixed = kind, 1, at, false, false
			return
		}
	} else {
		if q.runLen == 0 {
			q.runStart = at
		}
		q.runLen++
		if cl <= chDigit && q.prevCl <= chDigit && cl != q.prevCl {
			q.switches++
		}
		q.prevCl = cl
	}
	switch q.kind {
	case pieceWord, pieceWordExt, pieceWordAlt:
		switch cl {
		case chLower:
			q.n++
			q.lower, q.hasLower = true, true
			return
		case chUpper:
			if q.lower && q.kind == pieceWord {
				// A camelCase word: the part after the case change
				// is a piece of its own, as o200k's pre-tokenizer
				// makes it and cl100k's merges mostly do.
				q.flush(chUpper, at)
				q.kind, q.n, q.start, q.hump, q.prefixed = pieceWord, 1, at, true, false
				q.lower, q.hasLower = false, false
				return
			}
			q.n++
			q.lower = false
			return
		case chLatin:
			q.n++
			q.kind = max(q.kind, pieceWordExt)
			return
		case chAlt:
			q.n++
			q.kind = pieceWordAlt
			return
		}
	case pieceDigits:
		if cl == chDigit {
			q.n++
			return
		}
	case piecePunct:
		switch cl {
		case chPunct:
			q.n++
			return
		case chLower, chUpper, chLatin, chAlt:
			// tiktoken's pre-tokenizer starts a word with the
			// punctuation character before it ("_id", ".get", "'s")
			// when that character stands alone.
			if q.n == 1 && !q.spaced {
				q.kind, q.n, q.hump, q.prefixed = pieceOf[cl], 1, false, true
				q.lower = cl == chLower
				q.hasLower = q.lower
				return
			}
		}
	case pieceSpaces:
		switch cl {
		case chSpace:
			q.n++
			return
		case chLine:
			q.kind = pieceLines
			return
		}
	case pieceLines, pieceBreaks:
		if cl == chLine {
			return
		}
	case pieceHan, pieceKana, pieceHangul, pieceSymbol, pieceEmoji, pieceOther:
		if pieceOf[cl] == q.kind {
			q.n++
			return
		}
	}
	kind := pieceOf[cl]
	if kind == pieceLines && q.kind == piecePunct {
		kind = pieceBreaks
	}
	spaced := q.kind == pieceSpaces
	q.flush(int(cl), at)
	q.kind, q.n, q.start, q.hump, q.prefixed, q.spaced = kind, 1, at, false, false, spaced
	q.lower = cl == chLower
	q.hasLower = q.lower
}

// text adds the pieces of b. With escaped, b is the inside of a JSON string
// literal and its escapes count as the characters they stand for.
func (q *quickCounter) text(b []byte, escaped bool) {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c == '\\' && escaped && i+1 < len(b) {
				cl, n := escapeClass(b[i:])
				q.char(cl, i)
				i += n
				continue
			}
			// A space between two words, the most common case, ends the
			// first word here; the space goes with the next word and
			// costs nothing (char does the same, slower).
			if c == ' ' && q.kind == pieceWord && q.segments == nil && i+1 < len(b) && 'a' <= b[i+1] && b[i+1] <= 'z' {
				q.flush(chSpace, i)
				q.endRun(i)
				i++
				q.kind, q.n, q.start, q.hump, q.prefixed, q.spaced = pieceWord, 0, i, false, false, true
				q.runStart, q.prevCl = i, chLower
				c = b[i]
			}
			cl := asciiClass[c]
			if !(cl == chLower && q.kind == pieceWord && q.prevCl == chLower) {
				q.char(cl, i)
			} else {
				q.n++
				q.runLen++
			}
			i++
			// The rest of a run of characters of the same class only
			// lengthens the piece (and the run, but for whitespace).
			j := i
			switch cl {
			case chLower:
				for j < len(b) && 'a' <= b[j] && b[j] <= 'z' {
					j++
				}
			case chDigit:
				for j < len(b) && '0' <= b[j] && b[j] <= '9' {
					j++
				}
			case chSpace:
				for j < len(b) && b[j] == ' ' {
					j++
				}
			default:
				for j < len(b) && b[j] < utf8.RuneSelf && asciiClass[b[j]] == cl && !(escaped && b[j] == '\\') {
					j++
				}
			}
			q.n += j - i
			if cl != chSpace && cl != chLine {
				q.runLen += j - i
			}
			i = j
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		cl := runeClass(r)
		q.char(cl, i)
		i += n
		// Likewise for the rest of a run of CJK characters and the like.
		if cl == chHan || cl == chKana || cl == chHangul {
			for i+3 <= len(b) && b[i]&0xF0 == 0xE0 {
				r, n := utf8.DecodeRune(b[i : i+3])
				if n != 3 || runeClass(r) != cl {
					break
				}
				q.n++
				q.runLen++
				i += 3
			}
		}
	}
}

// escapeClass classifies the JSON escape at the start of b (b[0] == '\\')
// and returns its length.
func escapeClass(b []byte) (uint8, int) {
	switch b[1] {
	case 'n', 'r':
		return chLine, 2
	case 't', 'f':
		return chSpace, 2
	case 'u':
		r := hex4(b)
		if r < 0 {
			return chPunct, 2
		}
		if utf16.IsSurrogate(r) {
			if r2 := hex4(b[6:]); r2 >= 0 && utf16.DecodeRune(r, r2) != utf8.RuneError {
				return chEmoji, 12
			}
			return chSymbol, 6
		}
		if r < utf8.RuneSelf {
			return asciiClass[r], 6
		}
		return runeClass(r), 6
	}
	return chPunct, 2
}

// hex4 reads the \uXXXX escape at the start of b, or returns -1.
func hex4(b []byte) rune {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range b[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// end closes the text that was added last.
func (q *quickCounter) end(at int) {
	q.flush(-1, at)
	q.endRun(at)
}

// tokens returns the sum so far, rounded. The ASCII words of a text with
// accented words are mostly not English, and cost more.
func (q *quickCounter) tokens() int64 {
	u := q.units
	if q.extWords > 0 {
		u += q.wordUnits * uint64(q.c.foreign) * uint64(q.extWords) / uint64(q.words) >> 8
	}
	return int64((u + 128) >> 8)
}

// costsFor returns the calibration of an encoding ("" means cl100k_base,
// as for Counter; unknown encodings use o200k_base's, the newer one).
func costsFor(encoding string) *quickCosts {
	if encoding == EncodingCL100K || encoding == "" {
		return &cl100kCosts
	}
	return &o200kCosts
}

// newQuickCounter returns a counter with the calibration of an encoding.
func newQuickCounter(encoding string) quickCounter {
	return quickCounter{c: costsFor(encoding), prevCl: chSpace}
}

// QuickCount estimates the number of tokens of text in the encoding
// (cl100k_base for ""; other encodings use o200k_base's calibration)
// without tokenizing it. On the test corpus its error against tiktoken
// stays within ±10% for a text of a few kilobytes of prose, code, JSON,
// logs or numbers, within ±20% for CJK, Cyrillic, emoji and base64, and
// within ±5% over the whole corpus; short texts can be off by a token or
// two more. It is safe for concurrent use and does not allocate.
func QuickCount(encoding string, text []byte) int64 {
	q := newQuickCounter(encoding)
	q.text(text, false)
	q.end(len(text))
	return q.tokens()
}

// quickText counts the texts of a body with a quickCounter, for walkBody.
// Its counts arrive at the end, through the counter's tokens.
type quickText struct{ q *quickCounter }

func (t quickText) text(lit []byte) int64 {
	t.q.text(lit[1:len(lit)-1], true)
	t.q.end(len(lit))
	return 0
}

func (t quickText) raw(v []byte) int64 {
	t.q.text(v, false)
	t.q.end(len(v))
	return 0
}

// QuickEstimateOpenAIChat estimates the prompt tokens of an OpenAI chat
// completions request body as Counter.EstimateOpenAIChat counts them (the
// same text and per-message overhead), with QuickCount instead of
// tiktoken: within a few percent of it for a typical conversation (see
// QuickCount for the bands), at several hundred megabytes per second, so
// that a count never delays a response. Unreadable input estimates at 4
// bytes per token. It is safe for concurrent use and does not allocate.
func QuickEstimateOpenAIChat(encoding string, body []byte) int64 {
	q := newQuickCounter(encoding)
	n, ok := walkBody(body, false, quickText{&q})
	if !ok {
		return int64(len(body)+3) / 4
	}
	return n + q.tokens()
}

// QuickEstimateAnthropicMessages estimates the input tokens of an Anthropic
// messages request body as Counter.EstimateAnthropicMessages counts them,
// with QuickCount instead of tiktoken. See QuickEstimateOpenAIChat.
func QuickEstimateAnthropicMessages(encoding string, body []byte) int64 {
	q := newQuickCounter(encoding)
	n, ok := walkBody(body, true, quickText{&q})
	if !ok {
		return int64(len(body)+3) / 4
	}
	return n + q.tokens()
}

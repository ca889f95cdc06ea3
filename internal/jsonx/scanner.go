package jsonx

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"unicode/utf8"
)

// Scanner is a validating, allocation-free JSON reader: a cursor over Data
// at byte offset Pos with primitives to read one token or skip one value.
// It is the only JSON scanner of the gateway: Members, Valid and Elements
// are built on it, and so are the translator's fast paths, which walk
// upstream events and request bodies without decoding them.
//
// Every primitive skips leading whitespace, consumes what it reads and
// reports ok=false (leaving Pos where the problem is) for malformed JSON;
// Err then describes the failure. The grammar is RFC 8259 exactly as
// encoding/json accepts it, including invalid UTF-8 inside strings (which
// encoding/json replaces with U+FFFD when decoding); ReadStringUTF8 is the
// strict variant for literals that are copied into output verbatim.
//
// The zero value scans an empty document. A Scanner is not safe for
// concurrent use; it holds no reference beyond Data.
type Scanner struct {
	// Data is the document being read.
	Data []byte
	// Pos is the offset of the next byte to read.
	Pos int

	want  string // what was expected at Pos when a primitive failed
	wantc byte   // the byte expected, when want is ""
}

// fail records that want was expected at the current position and returns
// false.
func (s *Scanner) fail(want string) bool {
	s.want = want
	return false
}

// Err returns a *SyntaxError for the last failed primitive, at Pos.
func (s *Scanner) Err() error {
	switch {
	case s.want == tooDeep:
		return &SyntaxError{Offset: s.Pos, Msg: tooDeep}
	case s.want == "":
		s.want = fmt.Sprintf("%q", s.wantc)
	}
	if s.Pos >= len(s.Data) {
		return &SyntaxError{Offset: s.Pos, Msg: "unexpected end of input, expected " + s.want}
	}
	return &SyntaxError{Offset: s.Pos, Msg: fmt.Sprintf("unexpected %q, expected %s", s.Data[s.Pos], s.want)}
}

const tooDeep = "nesting too deep"

// SkipSpace skips JSON whitespace. The common case, no whitespace, is
// inlined at the call site.
func (s *Scanner) SkipSpace() {
	if s.Pos < len(s.Data) && s.Data[s.Pos] > ' ' {
		return
	}
	s.skipSpace()
}

func (s *Scanner) skipSpace() {
	for s.Pos < len(s.Data) {
		switch s.Data[s.Pos] {
		case ' ', '\t', '\n', '\r':
			s.Pos++
		default:
			return
		}
	}
}

// Peek skips whitespace and returns the next byte, or 0 at the end.
func (s *Scanner) Peek() byte {
	s.SkipSpace()
	if s.Pos < len(s.Data) {
		return s.Data[s.Pos]
	}
	return 0
}

// Eat skips whitespace and consumes c if it comes next.
func (s *Scanner) Eat(c byte) bool {
	if s.Peek() != c {
		s.want, s.wantc = "", c
		return false
	}
	s.Pos++
	return true
}

// End skips whitespace and reports whether the document ends there.
func (s *Scanner) End() bool {
	s.SkipSpace()
	if s.Pos != len(s.Data) {
		return s.fail("end of document")
	}
	return true
}

// SWAR constants: one byte value repeated in each of the 8 bytes of a word.
const (
	lsb       = 0x0101010101010101
	msb       = 0x8080808080808080
	quoteByte = '"' * lsb
	bslsh     = '\\' * lsb
	ctrl      = 0x20 * lsb
)

// stops returns a mask with the high bit set in the bytes of w (little
// endian) that are a quote, a backslash or a control character, the bytes
// that end a run of plain string content, and possibly in some bytes above
// the lowest such byte. The lowest set bit is always exact (the classic
// "has zero byte" and "has byte less than n" tricks only err above a true
// match), so the first special byte is at bits.TrailingZeros64(m)/8.
func stops(w uint64) uint64 {
	x := w ^ quoteByte
	y := w ^ bslsh
	return ((x-lsb)&^x | (y-lsb)&^y | (w-ctrl)&^w) & msb
}

// stopsOrNonASCII is stops that also flags bytes >= 0x80.
func stopsOrNonASCII(w uint64) uint64 {
	return stops(w) | w&msb
}

// StringFlags describe a string literal read by a Scanner.
type StringFlags uint8

// The string flags.
const (
	// StrEscaped: the literal has escape sequences.
	StrEscaped StringFlags = 1 << iota
	// StrNonASCII: the literal has bytes >= 0x80.
	StrNonASCII
	// StrRecode: the literal has escapes that AppendQuote (like
	// encoding/json) writes differently, \/ or \uXXXX, so AppendRequote
	// changes it.
	StrRecode
)

// ReadString reads the string literal that comes next and returns it with
// its quotes. It validates the escapes and rejects control characters;
// like encoding/json it accepts invalid UTF-8. Plain content is skipped 8
// bytes at a time.
func (s *Scanner) ReadString() (lit []byte, f StringFlags, ok bool) {
	return s.str()
}

// ReadStringUTF8 is ReadString that also rejects invalid UTF-8, so that the
// literal can be copied verbatim into output as valid UTF-8 JSON text.
func (s *Scanner) ReadStringUTF8() (lit []byte, f StringFlags, ok bool) {
	lit, f, ok = s.str()
	if ok && f&StrNonASCII != 0 && !utf8.Valid(lit) {
		s.Pos -= len(lit)
		return nil, 0, s.fail("valid UTF-8 in string")
	}
	return lit, f, ok
}

func (s *Scanner) str() (lit []byte, f StringFlags, ok bool) {
	if s.Peek() != '"' {
		return nil, 0, s.fail("string")
	}
	d := s.Data
	start := s.Pos
	i := start + 1
	var acc uint64 // OR of the content bytes, for StrNonASCII
	for {
		// Skip to the next quote, backslash or control character.
		for {
			if i+8 > len(d) {
				for i < len(d) && d[i] >= 0x20 && d[i] != '"' && d[i] != '\\' {
					acc |= uint64(d[i])
					i++
				}
				break
			}
			w := binary.LittleEndian.Uint64(d[i:])
			if m := stops(w); m != 0 {
				n := bits.TrailingZeros64(m) >> 3
				acc |= w & (1<<(n<<3) - 1)
				i += n
				break
			}
			acc |= w
			i += 8
			// Plain text goes on: hand over to scanPlain, which reads
			// longer runs and simple escapes faster where it can.
			j, pf := scanPlain(d, i)
			i, f = j, f|pf
		}
		if i >= len(d) {
			s.Pos = i
			return nil, 0, s.fail("closing '\"'")
		}
		switch d[i] {
		case '"':
			i++
			s.Pos = i
			if acc&msb != 0 {
				f |= StrNonASCII
			}
			return d[start:i], f, true
		case '\\':
			f |= StrEscaped
			if i+1 >= len(d) {
				s.Pos = i + 1
				return nil, 0, s.fail("escape character")
			}
			switch escapes[d[i+1]] {
			case escSimple:
				i += 2
			case escSlash:
				f |= StrRecode
				i += 2
			case escUnicode:
				for j := i + 2; j < i+6; j++ {
					if j >= len(d) || !isHex(d[j]) {
						s.Pos = j
						return nil, 0, s.fail("hex digit in \\u escape")
					}
				}
				f |= StrRecode
				i += 6
			default:
				s.Pos = i + 1
				return nil, 0, s.fail("valid escape character")
			}
		default:
			s.Pos = i
			return nil, 0, s.fail("no control character in string")
		}
	}
}

// Kinds of the byte after a backslash in a string literal.
const (
	escInvalid = iota
	escSimple  // \" \\ \b \f \n \r \t
	escSlash   // \/
	escUnicode // \uXXXX
)

// escapes maps the byte after a backslash to its kind of escape. It is
// read, never written (scanPlain's assembly reads it too).
var escapes = [256]uint8{
	'"': escSimple, '\\': escSimple, 'b': escSimple, 'f': escSimple, 'n': escSimple, 'r': escSimple, 't': escSimple,
	'/': escSlash, 'u': escUnicode,
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// Key reads an object key without escapes and the colon after it, and
// returns the key without its quotes. A key with escapes fails (callers
// that must handle them use ReadString and Eat(':')).
func (s *Scanner) Key() ([]byte, bool) {
	lit, f, ok := s.ReadString()
	if !ok {
		return nil, false
	}
	if f&StrEscaped != 0 {
		s.Pos -= len(lit)
		return nil, s.fail("object key without escapes")
	}
	if !s.Eat(':') {
		return nil, false
	}
	return lit[1 : len(lit)-1], true
}

// Next consumes the ',' between members or elements (more=true) or the
// closing byte, '}' or ']' (more=false).
func (s *Scanner) Next(closing byte) (more, ok bool) {
	switch s.Peek() {
	case ',':
		s.Pos++
		return true, true
	case closing:
		s.Pos++
		return false, true
	}
	if closing == '}' {
		return false, s.fail("',' or '}' in object")
	}
	return false, s.fail("',' or ']' in array")
}

// Elements walks the elements of the array that comes next: elem consumes
// one element and returns false to stop. It reports false when no array
// comes next, when the array is malformed, or when elem stopped.
func (s *Scanner) Elements(elem func() bool) bool {
	if s.Peek() != '[' {
		return s.fail("'['")
	}
	s.Pos++
	if s.Peek() == ']' {
		s.Pos++
		return true
	}
	for {
		if !elem() {
			return false
		}
		more, ok := s.Next(']')
		if !ok {
			return false
		}
		if !more {
			return true
		}
	}
}

// Null consumes a null literal if one comes next, and reports whether it
// did.
func (s *Scanner) Null() bool {
	if s.Peek() == 'n' && s.lit("null") {
		return true
	}
	return false
}

// Uint reads a non-negative integer without fraction or exponent that
// fits in an int (up to about 10^10).
func (s *Scanner) Uint() (int, bool) {
	s.SkipSpace()
	d := s.Data
	i := s.Pos
	if i >= len(d) || d[i] < '0' || d[i] > '9' {
		return 0, s.fail("digit")
	}
	if d[i] == '0' {
		i++
		s.Pos = i
		if i < len(d) && isNumTail(d[i]) {
			return 0, s.fail("an integer")
		}
		return 0, true
	}
	n := 0
	for i < len(d) && d[i] >= '0' && d[i] <= '9' {
		if n > 1<<30 {
			s.Pos = i
			return 0, s.fail("a smaller integer")
		}
		n = n*10 + int(d[i]-'0')
		i++
	}
	s.Pos = i
	if i < len(d) && isNumTail(d[i]) {
		return 0, s.fail("an integer")
	}
	return n, true
}

func isNumTail(c byte) bool {
	return c == '.' || c == 'e' || c == 'E' || c >= '0' && c <= '9'
}

// Skip validates and skips the value that comes next. It fails when the
// value nests more than maxDepth arrays and objects (MaxDepth is what
// encoding/json allows).
func (s *Scanner) Skip(maxDepth int) bool {
	return s.skip(0, maxDepth)
}

// skip skips one value inside depth open arrays and objects.
func (s *Scanner) skip(depth, maxDepth int) bool {
	switch c := s.Peek(); c {
	case '"':
		_, _, ok := s.str()
		return ok
	case '{':
		if depth++; depth > maxDepth {
			return s.fail(tooDeep)
		}
		s.Pos++
		if s.Peek() == '}' {
			s.Pos++
			return true
		}
		for {
			if _, _, ok := s.str(); !ok {
				if s.want == "string" {
					s.want = "object key"
				}
				return false
			}
			if !s.Eat(':') {
				s.want = "':' after object key"
				return false
			}
			if !s.skip(depth, maxDepth) {
				return false
			}
			more, ok := s.Next('}')
			if !ok {
				return false
			}
			if !more {
				return true
			}
		}
	case '[':
		if depth++; depth > maxDepth {
			return s.fail(tooDeep)
		}
		s.Pos++
		if s.Peek() == ']' {
			s.Pos++
			return true
		}
		for {
			if !s.skip(depth, maxDepth) {
				return false
			}
			more, ok := s.Next(']')
			if !ok {
				return false
			}
			if !more {
				return true
			}
		}
	case 't':
		return s.lit("true")
	case 'f':
		return s.lit("false")
	case 'n':
		return s.lit("null")
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return s.Number()
	}
	return s.fail("a JSON value")
}

func (s *Scanner) lit(l string) bool {
	if len(s.Data)-s.Pos < len(l) || string(s.Data[s.Pos:s.Pos+len(l)]) != l {
		return s.fail(l)
	}
	s.Pos += len(l)
	return true
}

// Number validates and skips the number that comes next.
func (s *Scanner) Number() bool {
	s.SkipSpace()
	d := s.Data
	i := s.Pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		s.Pos = i
		return s.fail("digit")
	}
	if i < len(d) && d[i] == '.' {
		i++
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			s.Pos = i
			return s.fail("digit after '.'")
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			s.Pos = i
			return s.fail("digit in exponent")
		}
	}
	s.Pos = i
	return true
}

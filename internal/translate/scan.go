package translate

import (
	"bytes"
	"encoding/binary"
	"unicode/utf8"
)

// scanner is a small validating JSON reader for the fast paths of the
// stream translators. Its methods return ok=false both for malformed JSON
// and for shapes the fast path does not handle; the caller then falls back
// to encoding/json, which decides. It never allocates.
type scanner struct {
	data []byte
	pos  int
}

// maxFastDepth bounds the nesting the fast path skips over; deeper values go
// to the slow path.
const maxFastDepth = 32

func (s *scanner) ws() {
	if s.pos < len(s.data) && s.data[s.pos] > ' ' { // the usual case, inlined
		return
	}
	s.skipSpace()
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek skips whitespace and returns the next byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

// eat skips whitespace and consumes c.
func (s *scanner) eat(c byte) bool {
	if s.peek() != c {
		return false
	}
	s.pos++
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

// plain8 reports whether none of the 8 bytes of w (little endian) is a
// quote, a backslash, a control character or a non-ASCII byte: such bytes
// can be skipped in a string. It uses the classic "has zero byte" and
// "has byte less than n" bit tricks, which never miss a match.
func plain8(w uint64) bool {
	x := w ^ quoteByte
	y := w ^ bslsh
	hasQuote := (x - lsb) &^ x
	hasBslsh := (y - lsb) &^ y
	hasCtrl := (w - ctrl) &^ w
	return (hasQuote|hasBslsh|hasCtrl|w)&msb == 0
}

// str reads a string literal at the current position (after whitespace)
// and returns it with its quotes. It validates escapes, rejects control
// characters and, when the literal has non-ASCII bytes, invalid UTF-8 (so
// that a copied literal is always valid JSON text). esc reports whether it
// has escapes. Runs of plain ASCII are skipped 8 bytes at a time.
func (s *scanner) str() (lit []byte, esc, ok bool) {
	if s.peek() != '"' {
		return nil, false, false
	}
	d := s.data
	start := s.pos
	i := start + 1
	var acc byte
	for {
		for i+8 <= len(d) && plain8(binary.LittleEndian.Uint64(d[i:])) {
			i += 8
		}
		if i >= len(d) {
			return nil, false, false
		}
		c := d[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			acc |= c
			i++
			continue
		}
		switch c {
		case '"':
			i++
			lit = d[start:i]
			if acc >= 0x80 && !utf8.Valid(lit) {
				return nil, false, false
			}
			s.pos = i
			return lit, esc, true
		case '\\':
			esc = true
			if i+1 >= len(d) {
				return nil, false, false
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d) || !isHex(d[i+2]) || !isHex(d[i+3]) || !isHex(d[i+4]) || !isHex(d[i+5]) {
					return nil, false, false
				}
				i += 6
			default:
				return nil, false, false
			}
		default: // control character
			return nil, false, false
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// key reads an object key and the colon after it. Keys with escapes are not
// handled by the fast path.
func (s *scanner) key() ([]byte, bool) {
	lit, esc, ok := s.str()
	if !ok || esc || !s.eat(':') {
		return nil, false
	}
	return lit[1 : len(lit)-1], true
}

// next consumes the ',' between members (more=true) or the closing byte
// (more=false).
func (s *scanner) next(closing byte) (more, ok bool) {
	switch s.peek() {
	case ',':
		s.pos++
		return true, true
	case closing:
		s.pos++
		return false, true
	}
	return false, false
}

// null consumes a null literal if one is next.
func (s *scanner) null() bool {
	if s.peek() == 'n' && bytes.HasPrefix(s.data[s.pos:], []byte("null")) {
		s.pos += 4
		return true
	}
	return false
}

// strOrNull reads a string (returning its literal) or null (nil).
func (s *scanner) strOrNull() (lit []byte, esc, ok bool) {
	if s.null() {
		return nil, false, true
	}
	return s.str()
}

// uint reads a non-negative integer without fraction or exponent that fits
// in an int.
func (s *scanner) uint() (int, bool) {
	s.ws()
	d := s.data
	i := s.pos
	if i >= len(d) || d[i] < '0' || d[i] > '9' {
		return 0, false
	}
	if d[i] == '0' {
		i++
		s.pos = i
		return 0, i >= len(d) || !isNumTail(d[i])
	}
	n := 0
	for i < len(d) && d[i] >= '0' && d[i] <= '9' {
		if n > 1<<30 {
			return 0, false
		}
		n = n*10 + int(d[i]-'0')
		i++
	}
	if i < len(d) && isNumTail(d[i]) {
		return 0, false
	}
	s.pos = i
	return n, true
}

func isNumTail(c byte) bool {
	return c == '.' || c == 'e' || c == 'E' || c >= '0' && c <= '9'
}

// skip validates and skips one value.
func (s *scanner) skip(depth int) bool {
	if depth > maxFastDepth {
		return false
	}
	switch c := s.peek(); c {
	case '"':
		_, _, ok := s.str()
		return ok
	case '{':
		s.pos++
		if s.eat('}') {
			return true
		}
		for {
			if _, _, ok := s.str(); !ok || !s.eat(':') || !s.skip(depth+1) {
				return false
			}
			more, ok := s.next('}')
			if !ok {
				return false
			}
			if !more {
				return true
			}
		}
	case '[':
		s.pos++
		if s.eat(']') {
			return true
		}
		for {
			if !s.skip(depth + 1) {
				return false
			}
			more, ok := s.next(']')
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
	default:
		return s.number()
	}
}

func (s *scanner) lit(l string) bool {
	if !bytes.HasPrefix(s.data[s.pos:], []byte(l)) {
		return false
	}
	s.pos += len(l)
	return true
}

// number validates and skips a JSON number.
func (s *scanner) number() bool {
	d := s.data
	i := s.pos
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
		return false
	}
	if i < len(d) && d[i] == '.' {
		i++
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			return false
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
			return false
		}
	}
	s.pos = i
	return true
}

// end reports whether only whitespace remains.
func (s *scanner) end() bool {
	s.ws()
	return s.pos == len(s.data)
}

// foldsTo reports whether key matches one of names case-insensitively
// without matching it exactly. encoding/json matches keys that way, so the
// fast path hands such documents to the slow path to stay identical.
func foldsTo(key []byte, names ...string) bool {
	// The names are lower-case ASCII: a key of lower-case ASCII that is not
	// one of them cannot fold to one either.
	plain := true
	for _, c := range key {
		if c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			plain = false
			break
		}
	}
	if plain {
		return false
	}
	for _, n := range names {
		if string(key) != n && bytes.EqualFold(key, []byte(n)) {
			return true
		}
	}
	return false
}

// inner returns a string literal without its quotes (nil stays nil).
func inner(lit []byte) []byte {
	if len(lit) < 2 {
		return nil
	}
	return lit[1 : len(lit)-1]
}

// object walks the members of the object that comes next. For each key,
// field consumes the value and returns the key's bit (a distinct bit per
// known key, 0 for keys it skipped) and whether the fast path may go on.
// A known key seen twice fails: encoding/json decides duplicates.
func (s *scanner) object(field func(k []byte) (bit uint8, ok bool)) bool {
	if !s.eat('{') {
		return false
	}
	if s.eat('}') {
		return true
	}
	var seen uint8
	for {
		k, ok := s.key()
		if !ok {
			return false
		}
		bit, ok := field(k)
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		more, ok := s.next('}')
		if !ok {
			return false
		}
		if !more {
			return true
		}
	}
}

// other skips the value of a key the fast path does not read. A key that
// matches one of known only case-insensitively fails: encoding/json
// matches keys that way, so the slow path must decide.
func (s *scanner) other(k []byte, known []string) (uint8, bool) {
	return 0, !foldsTo(k, known...) && s.skip(1)
}

package jsonx

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// AppendQuote appends s to dst as a JSON string literal, byte for byte as
// encoding/json encodes a string without HTML escaping: '"', '\' and control
// characters are escaped (\b, \f, \n, \r and \t in their short forms, the
// others as \u00XX), U+2028 and U+2029 are escaped, and each byte of invalid
// UTF-8 becomes \ufffd. The result is therefore always valid JSON, and for
// valid UTF-8 input it decodes back to s exactly.
func AppendQuote[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start, i := 0, 0
	for {
		for i+8 <= len(s) {
			if m := stopsOrNonASCII(load64(s, i)); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = appendEscapedASCII(dst, c)
			i++
			start = i
			continue
		}
		n := min(len(s)-i, utf8.UTFMax)
		r, size := utf8.DecodeRuneInString(string(s[i : i+n]))
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// load64 reads 8 bytes of s at i, little endian (one load on amd64 and
// arm64: the compiler combines the byte loads).
func load64[S ~string | ~[]byte](s S, i int) uint64 {
	_ = s[i+7]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

// appendEscapedASCII appends the escape of an ASCII byte that AppendQuote
// does not write as itself: '"', '\' or a control character.
func appendEscapedASCII(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
}

// appendRune appends r (a valid rune) as AppendQuote writes it.
func appendRune(dst []byte, r rune) []byte {
	switch {
	case r < 0x20 || r == '"' || r == '\\':
		return appendEscapedASCII(dst, byte(r))
	case r == '\u2028' || r == '\u2029':
		return append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
	}
	return utf8.AppendRune(dst, r)
}

// AppendRequote appends the JSON string literal lit (quotes included, as
// Scanner.ReadString returns it) re-encoded in AppendQuote's form: the
// result is AppendQuote(dst, v) where v is lit decoded as encoding/json
// decodes it. A literal already in that form, the usual case, is copied
// without decoding.
func AppendRequote(dst, lit []byte) []byte {
	dst = append(dst, '"')
	dst = AppendRequoteContent(dst, lit)
	return append(dst, '"')
}

// Verbatim reports whether AppendRequote copies lit unchanged, for a
// literal that Scanner.ReadStringUTF8 read with flags f (it relies on lit
// being valid UTF-8). It reads lit only when it has non-ASCII bytes, to
// look for U+2028 and U+2029.
func Verbatim(lit []byte, f StringFlags) bool {
	if f&StrRecode != 0 {
		return false
	}
	if f&StrNonASCII == 0 {
		return true
	}
	for {
		i := bytes.Index(lit, []byte("\xe2\x80"))
		if i < 0 || i+2 >= len(lit) {
			return true
		}
		if lit[i+2] == 0xA8 || lit[i+2] == 0xA9 {
			return false
		}
		lit = lit[i+2:]
	}
}

// AppendRequoteContent is AppendRequote without the surrounding quotes, so
// that several literals can be joined into one string.
func AppendRequoteContent(dst, lit []byte) []byte {
	if len(lit) < 2 {
		return dst
	}
	b := lit[1 : len(lit)-1]
	start, i := 0, 0
	for {
		i = skipPlain(b, i)
		if i >= len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '\\' && i+1 < len(b):
			switch b[i+1] {
			case '"', '\\', 'b', 'f', 'n', 'r', 't': // already canonical
				i += 2
				continue
			case 'u':
				r, n := decodeU(b[i:])
				if n == 0 {
					break // malformed: copied as it is
				}
				dst = append(dst, b[start:i]...)
				dst = appendRune(dst, r)
				i += n
				start = i
				continue
			}
			// "\/", and (in malformed input) any other escape: the
			// escaped byte itself.
			dst = append(dst, b[start:i]...)
			dst = appendRune(dst, rune(b[i+1]))
			i += 2
			start = i
			continue
		case c < 0x20 || c == '"' || c == '\\': // malformed input
			dst = append(dst, b[start:i]...)
			dst = appendEscapedASCII(dst, c)
			i++
			start = i
			continue
		case c < utf8.RuneSelf:
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, b[start:i]...)
			dst = append(dst, "\uFFFD"...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, b[start:i]...)
			dst = appendRune(dst, r)
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(dst, b[start:]...)
}

// DecodeEscape decodes the escape sequence at the start of b (b[0] is the
// backslash) as encoding/json does, returning the character and the number
// of bytes read: a \uXXXX escape of a high surrogate takes the low half
// that follows with it, and a lone or broken surrogate is U+FFFD. n is 0
// for a malformed escape.
func DecodeEscape(b []byte) (r rune, n int) {
	if len(b) < 2 || b[0] != '\\' {
		return 0, 0
	}
	switch e := b[1]; e {
	case '"', '\\', '/':
		return rune(e), 2
	case 'b':
		return '\b', 2
	case 'f':
		return '\f', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 't':
		return '\t', 2
	case 'u':
		return decodeU(b)
	}
	return 0, 0
}

// decodeU decodes the \uXXXX escape at the start of b, with the low half
// that follows a high surrogate, as encoding/json does: a lone or broken
// surrogate is U+FFFD (and the escape after it is decoded on its own). n is
// the number of bytes read, 0 for a malformed escape.
func decodeU(b []byte) (r rune, n int) {
	r = hex4(b)
	if r < 0 {
		return 0, 0
	}
	if !utf16.IsSurrogate(r) {
		return r, 6
	}
	if r2 := hex4(b[6:]); r2 >= 0 {
		if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
			return d, 12
		}
	}
	return utf8.RuneError, 6
}

// hex4 reads a \uXXXX escape at the start of b, or returns -1.
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

// AppendUnquote appends the value of the JSON string literal lit (quotes
// included) to dst, decoded exactly as encoding/json decodes it (invalid
// UTF-8 and broken surrogate escapes become U+FFFD). ok is false when lit is
// not a valid literal.
func AppendUnquote(dst, lit []byte) (_ []byte, ok bool) {
	if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return dst, false
	}
	b := lit[1 : len(lit)-1]
	start, i := 0, 0
	for {
		i = skipPlain(b, i)
		if i >= len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '\\':
			r, n := DecodeEscape(b[i:])
			if n == 0 {
				return dst, false
			}
			dst = append(dst, b[start:i]...)
			dst = utf8.AppendRune(dst, r)
			i += n
			start = i
			continue
		case c < 0x20 || c == '"':
			return dst, false
		case c < utf8.RuneSelf:
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, b[start:i]...)
			dst = append(dst, "\uFFFD"...)
			start = i + 1
		}
		i += size
	}
	return append(dst, b[start:]...), true
}

// Unquote decodes a JSON string literal (with its quotes) as encoding/json
// does. A literal without escapes that is valid UTF-8 converts with one
// allocation.
func Unquote(lit []byte) (string, bool) {
	if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return "", false
	}
	inner := lit[1 : len(lit)-1]
	var acc byte
	special := false
	for _, c := range inner {
		if c == '\\' || c == '"' || c < 0x20 {
			special = true
			break
		}
		acc |= c
	}
	if !special && (acc < utf8.RuneSelf || utf8.Valid(inner)) {
		return string(inner), true
	}
	b, ok := AppendUnquote(make([]byte, 0, len(inner)), lit)
	if !ok {
		return "", false
	}
	return string(b), true
}

// AppendCompact appends the JSON value v without the insignificant
// whitespace between its tokens, as json.Compact does. v must be valid JSON
// (for example checked with a Scanner); its strings are copied unchanged.
func AppendCompact(dst, v []byte) []byte {
	start, i := 0, 0
	for i < len(v) {
		switch v[i] {
		case ' ', '\t', '\n', '\r':
			dst = append(dst, v[start:i]...)
			i++
			start = i
		case '"':
			i = stringEnd(v, i)
		default:
			i++
		}
	}
	return append(dst, v[start:]...)
}

// stringEnd returns the offset just past the string literal that starts at
// v[i] (or len(v) if it does not end).
func stringEnd(v []byte, i int) int {
	i++
	for {
		for i+8 <= len(v) {
			if m := stops(binary.LittleEndian.Uint64(v[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(v) {
			return len(v)
		}
		switch v[i] {
		case '"':
			return i + 1
		case '\\':
			i += 2
		default:
			i++
		}
	}
}

// skipPlain returns the index of the first byte of b at or after i, in
// whole 8-byte words, that is a quote, a backslash, a control byte or not
// ASCII; or the start of the last partial word, which the caller reads
// byte by byte.
func skipPlain(b []byte, i int) int {
	for i+8 <= len(b) {
		if m := stopsOrNonASCII(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
		i += 8
	}
	return i
}

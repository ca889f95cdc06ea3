// Package jsonx is a small, allocation-free JSON scanner for the gateway's
// hot path. It validates a whole document in one pass and reports the byte
// spans of the top-level members of an object, so the gateway can read a few
// fields (model, models, stream) and splice a rewritten body without
// decoding the messages, which can be megabytes.
package jsonx

import (
	"encoding/json"
	"errors"
	"fmt"
)

// MaxDepth is the deepest nesting of arrays and objects the scanner accepts.
const MaxDepth = 10000

// SyntaxError reports malformed JSON at a byte offset.
type SyntaxError struct {
	Offset int    // byte offset of the problem
	Msg    string // what was expected
}

// Error describes the problem and its offset.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at offset %d: %s", e.Offset, e.Msg)
}

// ErrNotObject reports a document whose top-level value is not an object.
var ErrNotObject = errors.New("JSON document is not an object")

// Kind is the type of a JSON value, decided by its first byte.
type Kind uint8

// The JSON value kinds.
const (
	Invalid Kind = iota
	Null
	Bool
	Number
	String
	Array
	Object
)

// String returns the JSON name of the kind ("string", "array", ...).
func (k Kind) String() string {
	switch k {
	case Null:
		return "null"
	case Bool:
		return "boolean"
	case Number:
		return "number"
	case String:
		return "string"
	case Array:
		return "array"
	case Object:
		return "object"
	}
	return "invalid"
}

// KindOf returns the kind of the JSON value that starts at v[0].
func KindOf(v []byte) Kind {
	if len(v) == 0 {
		return Invalid
	}
	switch v[0] {
	case 'n':
		return Null
	case 't', 'f':
		return Bool
	case '"':
		return String
	case '[':
		return Array
	case '{':
		return Object
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return Number
	}
	return Invalid
}

// Member is one member of an object: Key is the raw key including its
// quotes, Value the raw value; Start and End delimit the whole member in the
// document from the first byte of the key to the last byte of the value.
type Member struct {
	Key        []byte
	Value      []byte
	Start, End int
}

// Name returns the decoded key. Keys without escapes are converted without
// decoding.
func (m *Member) Name() string {
	s, _ := Unquote(m.Key)
	return s
}

// KeyIs reports whether the member's decoded key equals name, without
// allocating for keys that contain no escapes.
func (m *Member) KeyIs(name string) bool {
	k := m.Key
	if len(k) < 2 {
		return false
	}
	inner := k[1 : len(k)-1]
	for _, c := range inner {
		if c == '\\' {
			s, ok := Unquote(k)
			return ok && s == name
		}
	}
	return string(inner) == name
}

// Members validates data as one JSON object (surrounding whitespace
// allowed) and calls fn for each top-level member in document order. It
// stops early, returning nil, when fn returns false. A document that is not
// an object returns ErrNotObject; malformed JSON returns a *SyntaxError.
func Members(data []byte, fn func(m Member) bool) error {
	s := scanner{data: data}
	s.skipSpace()
	if s.pos >= len(data) {
		return &SyntaxError{Offset: s.pos, Msg: "empty document"}
	}
	if data[s.pos] != '{' {
		if err := s.value(0); err != nil {
			return err
		}
		return ErrNotObject
	}
	s.pos++
	s.skipSpace()
	stopped := false
	if s.peek() == '}' {
		s.pos++
	} else {
		for {
			s.skipSpace()
			kstart := s.pos
			if s.peek() != '"' {
				return s.fail("object key")
			}
			if err := s.str(); err != nil {
				return err
			}
			kend := s.pos
			s.skipSpace()
			if s.peek() != ':' {
				return s.fail("':' after object key")
			}
			s.pos++
			s.skipSpace()
			vstart := s.pos
			if err := s.value(1); err != nil {
				return err
			}
			if !stopped && fn != nil {
				if !fn(Member{Key: data[kstart:kend], Value: data[vstart:s.pos], Start: kstart, End: s.pos}) {
					stopped = true
				}
			}
			s.skipSpace()
			c := s.peek()
			if c == ',' {
				s.pos++
				continue
			}
			if c == '}' {
				s.pos++
				break
			}
			return s.fail("',' or '}' in object")
		}
	}
	s.skipSpace()
	if s.pos != len(data) {
		return s.fail("end of document")
	}
	return nil
}

// Valid validates data as exactly one JSON value of any kind.
func Valid(data []byte) error {
	s := scanner{data: data}
	s.skipSpace()
	if err := s.value(0); err != nil {
		return err
	}
	s.skipSpace()
	if s.pos != len(data) {
		return s.fail("end of document")
	}
	return nil
}

// Elements calls fn for each element of the JSON array v, which must be a
// valid array (for example a Member.Value already validated by Members).
// It returns an error if v is not an array.
func Elements(v []byte, fn func(elem []byte) bool) error {
	s := scanner{data: v}
	s.skipSpace()
	if s.peek() != '[' {
		return fmt.Errorf("JSON value is %s, not an array", KindOf(v[s.pos:]))
	}
	s.pos++
	s.skipSpace()
	if s.peek() == ']' {
		return nil
	}
	for {
		s.skipSpace()
		start := s.pos
		if err := s.value(1); err != nil {
			return err
		}
		if !fn(v[start:s.pos]) {
			return nil
		}
		s.skipSpace()
		switch s.peek() {
		case ',':
			s.pos++
		case ']':
			return nil
		default:
			return s.fail("',' or ']' in array")
		}
	}
}

// Unquote decodes a JSON string literal (with its quotes). Literals without
// escapes convert with one allocation; others are decoded by encoding/json.
func Unquote(lit []byte) (string, bool) {
	if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return "", false
	}
	inner := lit[1 : len(lit)-1]
	for _, c := range inner {
		if c == '\\' || c < 0x20 {
			var s string
			if err := json.Unmarshal(lit, &s); err != nil {
				return "", false
			}
			return s, true
		}
	}
	return string(inner), true
}

// AppendQuote appends s to dst as a JSON string literal, escaping as
// encoding/json does (without HTML escaping).
func AppendQuote(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

type scanner struct {
	data []byte
	pos  int
}

func (s *scanner) peek() byte {
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

func (s *scanner) fail(want string) error {
	if s.pos >= len(s.data) {
		return &SyntaxError{Offset: s.pos, Msg: "unexpected end of input, expected " + want}
	}
	return &SyntaxError{Offset: s.pos, Msg: fmt.Sprintf("unexpected %q, expected %s", s.data[s.pos], want)}
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

func (s *scanner) value(depth int) error {
	if depth > MaxDepth {
		return &SyntaxError{Offset: s.pos, Msg: "nesting too deep"}
	}
	switch s.peek() {
	case '"':
		return s.str()
	case '{':
		s.pos++
		s.skipSpace()
		if s.peek() == '}' {
			s.pos++
			return nil
		}
		for {
			s.skipSpace()
			if s.peek() != '"' {
				return s.fail("object key")
			}
			if err := s.str(); err != nil {
				return err
			}
			s.skipSpace()
			if s.peek() != ':' {
				return s.fail("':' after object key")
			}
			s.pos++
			s.skipSpace()
			if err := s.value(depth + 1); err != nil {
				return err
			}
			s.skipSpace()
			switch s.peek() {
			case ',':
				s.pos++
			case '}':
				s.pos++
				return nil
			default:
				return s.fail("',' or '}' in object")
			}
		}
	case '[':
		s.pos++
		s.skipSpace()
		if s.peek() == ']' {
			s.pos++
			return nil
		}
		for {
			s.skipSpace()
			if err := s.value(depth + 1); err != nil {
				return err
			}
			s.skipSpace()
			switch s.peek() {
			case ',':
				s.pos++
			case ']':
				s.pos++
				return nil
			default:
				return s.fail("',' or ']' in array")
			}
		}
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return s.number()
	}
	return s.fail("a JSON value")
}

func (s *scanner) literal(lit string) error {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		return s.fail(lit)
	}
	s.pos += len(lit)
	return nil
}

func (s *scanner) digits() int {
	n := 0
	for s.pos < len(s.data) && s.data[s.pos] >= '0' && s.data[s.pos] <= '9' {
		s.pos++
		n++
	}
	return n
}

func (s *scanner) number() error {
	if s.peek() == '-' {
		s.pos++
	}
	switch c := s.peek(); {
	case c == '0':
		s.pos++
	case c >= '1' && c <= '9':
		s.digits()
	default:
		return s.fail("digit")
	}
	if s.peek() == '.' {
		s.pos++
		if s.digits() == 0 {
			return s.fail("digit after '.'")
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.pos++
		if c := s.peek(); c == '+' || c == '-' {
			s.pos++
		}
		if s.digits() == 0 {
			return s.fail("digit in exponent")
		}
	}
	return nil
}

// str scans a string literal starting at the opening quote.
func (s *scanner) str() error {
	s.pos++ // opening quote
	d := s.data
	for s.pos < len(d) {
		c := d[s.pos]
		switch {
		case c == '"':
			s.pos++
			return nil
		case c == '\\':
			s.pos++
			if s.pos >= len(d) {
				return s.fail("escape character")
			}
			switch d[s.pos] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos++
			case 'u':
				s.pos++
				for i := 0; i < 4; i++ {
					if s.pos >= len(d) || !isHex(d[s.pos]) {
						return s.fail("hex digit in \\u escape")
					}
					s.pos++
				}
			default:
				return s.fail("valid escape character")
			}
		case c < 0x20:
			return s.fail("no control character in string")
		default:
			s.pos++
		}
	}
	return s.fail("closing '\"'")
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

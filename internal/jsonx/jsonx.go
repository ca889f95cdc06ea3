// Package jsonx is the gateway's allocation-free JSON toolkit for hot
// paths. Scanner is its one scanner: a validating cursor with primitives to
// read a token or skip a value, skipping string content 8 bytes at a time.
// On it, Members validates a whole document in one pass and reports the
// byte spans of the top-level members of an object, so the gateway can read
// a few fields (model, models, stream) and splice a rewritten body without
// decoding the messages, which can be megabytes; and the translator's fast
// paths walk stream events and request bodies.
//
// The string helpers write and read exactly what encoding/json does:
// AppendQuote quotes (always producing valid JSON), AppendRequote re-encodes
// a literal without decoding it (copying it when it is already in that
// form), AppendUnquote and Unquote decode, AppendCompact removes
// whitespace. Fuzz tests compare each with encoding/json.
package jsonx

import (
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
	s := Scanner{Data: data}
	c := s.Peek()
	if s.Pos >= len(data) {
		return &SyntaxError{Offset: s.Pos, Msg: "empty document"}
	}
	if c != '{' {
		if !s.Skip(MaxDepth) {
			return s.Err()
		}
		return ErrNotObject
	}
	s.Pos++
	stopped := false
	if s.Peek() == '}' {
		s.Pos++
	} else {
		for {
			s.SkipSpace()
			kstart := s.Pos
			if s.Peek() != '"' {
				s.fail("object key")
				return s.Err()
			}
			if _, _, ok := s.ReadString(); !ok {
				return s.Err()
			}
			kend := s.Pos
			if !s.Eat(':') {
				s.fail("':' after object key")
				return s.Err()
			}
			s.SkipSpace()
			vstart := s.Pos
			if !s.skip(1, MaxDepth) {
				return s.Err()
			}
			if !stopped && fn != nil {
				if !fn(Member{Key: data[kstart:kend], Value: data[vstart:s.Pos], Start: kstart, End: s.Pos}) {
					stopped = true
				}
			}
			more, ok := s.Next('}')
			if !ok {
				return s.Err()
			}
			if !more {
				break
			}
		}
	}
	if !s.End() {
		return s.Err()
	}
	return nil
}

// Valid validates data as exactly one JSON value of any kind.
func Valid(data []byte) error {
	s := Scanner{Data: data}
	if !s.Skip(MaxDepth) || !s.End() {
		return s.Err()
	}
	return nil
}

// Elements calls fn for each element of the JSON array v, which must be a
// valid array (for example a Member.Value already validated by Members).
// It returns an error if v is not an array.
func Elements(v []byte, fn func(elem []byte) bool) error {
	s := Scanner{Data: v}
	if s.Peek() != '[' {
		return fmt.Errorf("JSON value is %s, not an array", KindOf(v[s.Pos:]))
	}
	s.Pos++
	if s.Peek() == ']' {
		return nil
	}
	for {
		s.SkipSpace()
		start := s.Pos
		if !s.skip(1, MaxDepth) {
			return s.Err()
		}
		if !fn(v[start:s.Pos]) {
			return nil
		}
		more, ok := s.Next(']')
		if !ok {
			return s.Err()
		}
		if !more {
			return nil
		}
	}
}

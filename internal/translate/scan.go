package translate

import (
	"bytes"
	"unicode/utf8"

	"github.com/llmgate/gateway/internal/jsonx"
)

// scanner is the fast paths' JSON reader: jsonx.Scanner (whose primitives
// it promotes) plus the rules that keep a fast path identical to the
// encoding/json slow path it stands in for. Its methods return ok=false
// both for malformed JSON and for shapes a fast path does not handle; the
// caller then falls back to encoding/json, which decides. It never
// allocates.
type scanner struct {
	jsonx.Scanner
}

func newScanner(data []byte) scanner {
	return scanner{jsonx.Scanner{Data: data}}
}

// maxFastDepth bounds the nesting the fast paths skip over; deeper values go
// to the slow path.
const maxFastDepth = 32

// str reads a string literal, with its quotes, that is valid UTF-8, so that
// a copied literal is always valid JSON text. esc reports whether it has
// escapes.
func (s *scanner) str() (lit []byte, esc, ok bool) {
	lit, f, ok := s.ReadStringUTF8()
	return lit, f&jsonx.StrEscaped != 0, ok
}

// strOrNull reads a string (returning its literal) or null (nil).
func (s *scanner) strOrNull() (lit []byte, esc, ok bool) {
	if s.Null() {
		return nil, false, true
	}
	return s.str()
}

// skip validates and skips one value of bounded depth.
func (s *scanner) skip() bool { return s.Skip(maxFastDepth) }

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
// A known key seen twice fails: encoding/json decides duplicates. Keys with
// escapes fail too.
func (s *scanner) object(field func(k []byte) (bit uint32, ok bool)) bool {
	if s.Peek() != '{' {
		return false
	}
	s.Pos++
	if s.Peek() == '}' {
		s.Pos++
		return true
	}
	var seen uint32
	for {
		k, ok := s.Key()
		if !ok {
			return false
		}
		bit, ok := field(k)
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		more, ok := s.Next('}')
		if !ok {
			return false
		}
		if !more {
			return true
		}
	}
}

// array walks the elements of the array that comes next, or of none when
// null comes next; elem consumes one element.
func (s *scanner) array(elem func() bool) bool {
	return s.Null() || s.Elements(elem)
}

// other skips the value of a key the fast path does not read. A key that
// matches one of known only case-insensitively fails: encoding/json
// matches keys that way, so the slow path must decide.
func (s *scanner) other(k []byte, known []string) (uint32, bool) {
	return 0, !foldsTo(k, known...) && s.skip()
}

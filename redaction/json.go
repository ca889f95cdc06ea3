package redaction

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/llmgate/gateway/internal/jsonx"
)

// ErrInvalidJSON reports a body or an event that is not valid JSON (or,
// for an event, not the shape its format has).
var ErrInvalidJSON = errors.New("redaction: invalid JSON")

// JSON returns body, a JSON document, with the rules applied to the text
// of its string values: each string is decoded (so that "\u0040" is an @
// and "\n" a newline to the rules), redacted as a whole text, and written
// back quoted as encoding/json quotes it. Object keys, numbers and the
// document's layout are not touched, so a rule cannot break its structure;
// strings no rule matches are copied byte for byte. It returns body itself
// and nil Counts when nothing matches, a new slice otherwise. Invalid JSON
// returns an error wrapping ErrInvalidJSON.
func (r *Redactor) JSON(body []byte) ([]byte, Counts, error) {
	w := jsonWalker{r: r, body: body}
	s := jsonx.Scanner{Data: body}
	if !w.value(&s, 0) || !s.End() {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalidJSON, s.Err())
	}
	if w.out == nil {
		return body, nil, nil
	}
	return append(w.out, body[w.copied:]...), w.counts, nil
}

// jsonWalker redacts the string values of one document.
type jsonWalker struct {
	r      *Redactor
	body   []byte
	out    []byte // nil until a string changes
	copied int    // body[:copied] is in out
	tmp    []byte // decoded string
	red    []byte // redacted string
	sc     scratch
	counts Counts
}

// value walks the value that comes next.
func (w *jsonWalker) value(s *jsonx.Scanner, depth int) bool {
	switch s.Peek() {
	case '"':
		lit, f, ok := s.ReadString()
		if !ok {
			return false
		}
		w.str(lit, f, s.Pos-len(lit))
		return true
	case '{':
		if depth >= jsonx.MaxDepth {
			return s.Skip(0) // fails, reporting the depth
		}
		s.Pos++
		if s.Peek() == '}' {
			s.Pos++
			return true
		}
		for {
			if _, _, ok := s.ReadString(); !ok || !s.Eat(':') || !w.value(s, depth+1) {
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
		if depth >= jsonx.MaxDepth {
			return s.Skip(0)
		}
		s.Pos++
		if s.Peek() == ']' {
			s.Pos++
			return true
		}
		for {
			if !w.value(s, depth+1) {
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
	return s.Skip(0)
}

// str redacts the string literal lit found at body[at:].
func (w *jsonWalker) str(lit []byte, f jsonx.StringFlags, at int) {
	text := lit[1 : len(lit)-1]
	if f&jsonx.StrEscaped != 0 || f&jsonx.StrNonASCII != 0 && !utf8.Valid(text) {
		// Decoded as a JSON reader decodes it: invalid UTF-8 is U+FFFD.
		w.tmp, _ = jsonx.AppendUnquote(w.tmp[:0], lit)
		text = w.tmp
	}
	var changed bool
	w.red, changed = w.r.whole(w.red[:0], text, &w.sc, &w.counts)
	if !changed {
		return
	}
	if w.out == nil {
		w.out = make([]byte, 0, len(w.body)+len(w.body)/8)
	}
	w.out = append(w.out, w.body[w.copied:at]...)
	w.out = jsonx.AppendQuote(w.out, w.red)
	w.copied = at + len(lit)
}

package tokens

import "github.com/llmgate/gateway/internal/jsonx"

// jscan walks a JSON document with a jsonx.Scanner, remembering whether it
// met malformed JSON. The request walk (walker) and the output collector
// (OutputCounter) read their documents with it. Its callbacks are called
// directly, never through an interface, so closures passed to them stay on
// the stack and a walk allocates nothing (except to decode an object key
// written with escapes).
type jscan struct {
	s   jsonx.Scanner
	bad bool // malformed JSON was met
}

// fail records malformed JSON and returns false.
func (w *jscan) fail() bool {
	w.bad = true
	return false
}

// skip skips a value.
func (w *jscan) skip() bool {
	return w.s.Skip(jsonx.MaxDepth) || w.fail()
}

// object calls member for each member of the object that comes next, with
// the decoded key (valid until the next call); member consumes the value. A
// value that is not an object is skipped (and member is not called).
func (w *jscan) object(member func(key []byte) bool) bool {
	if w.s.Peek() != '{' {
		return w.skip()
	}
	w.s.Pos++
	if w.s.Peek() == '}' {
		w.s.Pos++
		return true
	}
	for {
		lit, f, ok := w.s.ReadString()
		if !ok || !w.s.Eat(':') {
			return w.fail()
		}
		key := lit[1 : len(lit)-1]
		if f&jsonx.StrEscaped != 0 {
			key, _ = jsonx.AppendUnquote(nil, lit)
		}
		if !member(key) {
			return false
		}
		more, ok := w.s.Next('}')
		if !ok {
			return w.fail()
		}
		if !more {
			return true
		}
	}
}

// array calls elem for each element of the array that comes next (with
// true for an object, which elem reads; other elements are skipped after
// the call). A value that is not an array is skipped.
func (w *jscan) array(elem func(object bool) bool) bool {
	if w.s.Peek() != '[' {
		return w.skip()
	}
	return w.s.Elements(func() bool {
		isObject := w.s.Peek() == '{'
		return elem(isObject) && (isObject || w.skip())
	}) || w.fail()
}

// positions calls elem as array does, with each element's position in the
// array (0, 1, ...) as well.
func (w *jscan) positions(elem func(pos int, object bool) bool) bool {
	pos := 0
	return w.array(func(object bool) bool {
		pos++
		return elem(pos-1, object)
	})
}

// str reads the string literal that comes next and returns it with its
// quotes; any other value is skipped and lit is nil. ok is false for
// malformed JSON.
func (w *jscan) str() (lit []byte, ok bool) {
	if w.s.Peek() != '"' {
		return nil, w.skip()
	}
	lit, _, ok = w.s.ReadString()
	if !ok {
		return nil, w.fail()
	}
	return lit, true
}

// index reads a non-negative integer that comes next, or returns -1 after
// skipping any other value. ok is false for malformed JSON.
func (w *jscan) index() (n int, ok bool) {
	if c := w.s.Peek(); c < '0' || c > '9' {
		return -1, w.skip()
	}
	n, ok = w.s.Uint()
	if !ok {
		return -1, w.fail()
	}
	return n, true
}

// indexInto reads an index (see index) into *i; any other value is
// skipped and leaves *i as it was. It returns false for malformed JSON.
func (w *jscan) indexInto(i *int) bool {
	n, ok := w.index()
	if n >= 0 {
		*i = n
	}
	return ok
}

// rawValue reads the value that comes next and returns it as written.
func (w *jscan) rawValue() ([]byte, bool) {
	w.s.SkipSpace()
	start := w.s.Pos
	if !w.skip() {
		return nil, false
	}
	return w.s.Data[start:w.s.Pos], true
}

package translate

import (
	"bytes"
	"encoding/json"
	"slices"
	"unicode/utf8"

	"github.com/llmgate/gateway/internal/jsonx"
)

// Request translation has a fast path for the members that make a request
// big: the messages, the system prompt and the tools. They are converted by
// a hand-written pass over the scanner that copies what it does not change
// instead of decoding and re-encoding it: string literals go through
// jsonx.AppendRequote (which copies a literal unchanged when it is already
// in encoding/json's form, the usual case) and JSON values such as tool
// schemas, tool inputs and cache_control markers through
// jsonx.AppendCompact. The small members are decoded with encoding/json as
// before, and the output is the marshalled small members with the fast
// path's bytes spliced in.
//
// The fast pass handles only shapes it treats exactly as the slow path
// (encoding/json decoding into the wire types) does. For anything else
// (malformed values, keys with escapes or in other letter cases, duplicate
// keys, invalid UTF-8 in a literal, and every request error) it gives up,
// undoes what it reported as removed, and the slow path decides, so errors
// and edge cases keep the slow path's behaviour. Differential tests and
// fuzzers pin the two to identical bytes and removed lists.

// withFallback runs fast (unless opt says not to) and, when it declines,
// forgets the removed names it added and runs slow.
func withFallback(opt *RequestOptions, r *removedSet, fast func() bool, slow func() error) error {
	n := len(r.names)
	if !opt.slowOnly && fast() {
		return nil
	}
	r.names = r.names[:n]
	return slow()
}

// early is a member converted by a members pre hook, in the pass that
// validated the request, for the conversion step to pick up.
type early struct {
	at      int  // offset of the value in the body, -1 for none
	ok      bool // the fast pass converted it
	removed removedSet
	a, b    []byte // what the fast pass returned
}

// hook returns the members pre hook that converts the "messages" array
// with the fast pass f (nil when opt asks for the slow path only).
func (e *early) hook(opt *RequestOptions, f func(s *scanner, r *removedSet) (a, b []byte, ok bool)) func(k []byte, s *scanner) bool {
	if opt.slowOnly {
		return nil
	}
	return func(k []byte, s *scanner) bool {
		if string(k) != "messages" || s.Peek() != '[' {
			return false
		}
		*e = early{at: s.Pos}
		e.a, e.b, e.ok = f(s, &e.removed)
		return e.ok
	}
}

// result returns the early conversion of value (a subslice of body) if
// there is one: found reports whether it was attempted and ok whether it
// succeeded, in which case its removed names are added to r.
func (e *early) result(body, value []byte, r *removedSet) (a, b []byte, found, ok bool) {
	if e.at < 0 || len(value) == 0 || offsetIn(body, value) != e.at {
		return nil, nil, false, false
	}
	if !e.ok {
		return nil, nil, true, false
	}
	for _, n := range e.removed.names {
		r.add(n)
	}
	return e.a, e.b, true, true
}

// spliced is a member to splice into a marshalled object: its value is
// head followed by value; a nil value leaves the member out.
type spliced struct {
	key         string
	value, head []byte
}

// splice returns the JSON object base (encoding/json output: compact, one
// member per key) with the members of add inserted, or replacing the
// member with the same key, keeping the key order given by order, which
// lists every key in struct field order. add must follow that order too.
func splice(base []byte, order []string, add ...spliced) []byte {
	size := len(base)
	for _, a := range add {
		size += len(a.key) + len(a.head) + len(a.value) + 4
	}
	out := make([]byte, 0, size)
	out = append(out, '{')
	write := func(key, head, value []byte) {
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, key...)
		out = append(out, ':')
		out = append(out, head...)
		out = append(out, value...)
	}
	writeAdded := func(a spliced) {
		if a.value != nil {
			write(jsonx.AppendQuote(nil, a.key), a.head, a.value)
		}
	}
	next := 0
	_ = jsonx.Members(base, func(m jsonx.Member) bool {
		at := slices.Index(order, m.Name())
		for next < len(add) && slices.Index(order, add[next].key) < at {
			writeAdded(add[next])
			next++
		}
		if next < len(add) && m.KeyIs(add[next].key) {
			writeAdded(add[next])
			next++
			return true
		}
		write(m.Key, nil, m.Value)
		return true
	})
	for ; next < len(add); next++ {
		writeAdded(add[next])
	}
	return append(out, '}')
}

// Key orders of the request structs (checked against the struct tags by a
// test).
var (
	messagesRequestOrder = []string{
		"model", "max_tokens", "system", "messages", "metadata", "stop_sequences", "stream",
		"temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "output_config",
	}
	chatRequestOrder = []string{
		"model", "messages", "max_completion_tokens", "max_tokens", "temperature", "top_p", "stop",
		"stream", "stream_options", "tools", "tool_choice", "parallel_tool_calls", "reasoning_effort",
		"response_format", "user", "safety_identifier", "n", "logprobs", "top_logprobs", "modalities", "audio",
	}
)

// rawArray checks a top-level member that must be an array: a value of
// another kind gets the error encoding/json decoding gives.
func rawArray(v []byte, name string) error {
	if jsonx.KindOf(v) == jsonx.Array {
		return nil
	}
	var a []json.RawMessage
	if err := decode(v, &a, name); err != nil {
		return err
	}
	return errorf(name, "expected an array")
}

// rawElements decodes a validated array into its raw elements (the slow
// paths' input).
func rawElements(v []byte) []json.RawMessage {
	var a []json.RawMessage
	if len(v) > 0 {
		_ = json.Unmarshal(v, &a)
	}
	return a
}

// Helpers of the fast passes.

// lit is a JSON string literal read by the fast passes.
type lit struct {
	b     []byte // the literal with its quotes (valid UTF-8); nil for an absent or null string
	canon bool   // b is already in AppendQuote's form: it is copied as it is
}

// literal reads a string (or null) literal.
func (s *scanner) literal() (lit, bool) {
	if s.Null() {
		return lit{}, true
	}
	b, f, ok := s.ReadStringUTF8()
	return lit{b: b, canon: ok && jsonx.Verbatim(b, f)}, ok
}

// empty reports whether the literal's value is "" (or it is nil): every
// character and escape decodes to at least one byte.
func (l lit) empty() bool { return len(l.b) <= 2 }

// is reports whether the literal's value is s.
func (l lit) is(s string) bool {
	if len(l.b) == len(s)+2 && string(l.b[1:len(l.b)-1]) == s {
		return true
	}
	return bytes.IndexByte(l.b, '\\') >= 0 && string(l.value()) == s
}

// value returns the literal's decoded value: its inner bytes when it has no
// escapes, else a decoded copy.
func (l lit) value() []byte {
	if l.b == nil {
		return nil
	}
	if bytes.IndexByte(l.b, '\\') < 0 {
		return l.b[1 : len(l.b)-1]
	}
	v, _ := jsonx.AppendUnquote(nil, l.b)
	return v
}

// appendTo appends the literal as encoding/json writes its value ("" for
// nil).
func (l lit) appendTo(dst []byte) []byte {
	switch {
	case l.b == nil:
		return append(dst, '"', '"')
	case l.canon:
		return append(dst, l.b...)
	}
	return jsonx.AppendRequote(dst, l.b)
}

// appendContent is appendTo without the quotes.
func (l lit) appendContent(dst []byte) []byte {
	switch {
	case l.b == nil:
		return dst
	case l.canon:
		return append(dst, l.b[1:len(l.b)-1]...)
	}
	return jsonx.AppendRequoteContent(dst, l.b)
}

// readStr reads a string or null into *dst for the object walkers.
func readStr(s *scanner, bit uint32, dst *lit) (uint32, bool) {
	l, ok := s.literal()
	*dst = l
	return bit, ok
}

// readRaw reads any value into *dst (nil for null) for the object walkers:
// the json.RawMessage fields of the wire types.
func readRaw(s *scanner, bit uint32, dst *[]byte) (uint32, bool) {
	if s.Null() {
		*dst = nil
		return bit, true
	}
	s.SkipSpace()
	start := s.Pos
	ok := s.skip()
	*dst = s.Data[start:s.Pos]
	return bit, ok
}

// optBool is a JSON boolean that may be absent or null (a *bool field).
type optBool uint8

// The optBool values.
const (
	boolNull optBool = iota
	boolFalse
	boolTrue
)

// appendField appends ,"key":b unless b is null (omitempty).
func (b optBool) appendField(dst []byte, key string) []byte {
	switch b {
	case boolTrue:
		return append(appendKey(dst, key), "true"...)
	case boolFalse:
		return append(appendKey(dst, key), "false"...)
	}
	return dst
}

// readBool reads a boolean or null for the object walkers.
func readBool(s *scanner, bit uint32, dst *optBool) (uint32, bool) {
	switch s.Peek() {
	case 'n':
		*dst = boolNull
		return bit, s.Null()
	case 't':
		*dst = boolTrue
		return bit, s.Skip(0)
	case 'f':
		*dst = boolFalse
		return bit, s.Skip(0)
	}
	return bit, false
}

// unknown skips the value of a key that is not one of known and reports
// prefix.key as removed when the value is not null, as reportUnknown does.
func (s *scanner) unknown(k []byte, known []string, prefix string, r *removedSet) (uint32, bool) {
	if foldsTo(k, known...) || !utf8.Valid(k) {
		return 0, false
	}
	if s.Null() {
		return 0, true
	}
	if !s.skip() {
		return 0, false
	}
	r.add(joinParam(prefix, string(k)))
	return 0, true
}

// appendKey appends ,"key":value (key is plain ASCII).
func appendKey(dst []byte, key string) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, key...)
	return append(dst, '"', ':')
}

// defaultSchema is the input schema of a tool that gave none.
const defaultSchema = `{"type":"object","properties":{}}`

// toolDef is a function tool definition read by a fast pass.
type toolDef struct {
	name, desc lit
	schema     []byte // raw, nil for none
	strict     optBool
}

// appendTo writes the definition's members in wire.Tool and
// wire.ChatFunction order, the schema under schemaKey.
func (t *toolDef) appendTo(dst []byte, schemaKey string) []byte {
	dst = append(dst, `"name":`...)
	dst = t.name.appendTo(dst)
	dst = appendOptLit(dst, "description", t.desc)
	dst = appendKey(dst, schemaKey)
	if t.schema == nil {
		dst = append(dst, defaultSchema...)
	} else {
		dst = jsonx.AppendCompact(dst, t.schema)
	}
	return t.strict.appendField(dst, "strict")
}

// convertArray converts the JSON array raw (nil when absent) element by
// element: elem reads the element that comes next in s and appends what it
// becomes to out. It returns the converted array (nil when raw has no
// elements) and the number of elements; ok is false when elem declines.
func convertArray(raw []byte, elem func(s *scanner, out []byte) ([]byte, bool)) (out []byte, n int, ok bool) {
	if raw == nil {
		return nil, 0, true
	}
	out = make([]byte, 0, len(raw)+64)
	out = append(out, '[')
	s := newScanner(raw)
	ok = s.array(func() bool {
		if n > 0 {
			out = append(out, ',')
		}
		n++
		var ok bool
		out, ok = elem(&s, out)
		return ok
	})
	if !ok || !s.End() {
		return nil, 0, false
	}
	if n == 0 {
		return nil, 0, true
	}
	return append(out, ']'), n, true
}

// dataURLBytes is dataURL over bytes.
func dataURLBytes(u []byte) (mediaType, data []byte, ok bool) {
	rest, found := bytes.CutPrefix(u, []byte("data:"))
	if !found {
		return nil, nil, false
	}
	meta, data, found := bytes.Cut(rest, []byte(","))
	if !found {
		return nil, nil, false
	}
	meta, isBase64 := bytes.CutSuffix(meta, []byte(";base64"))
	if !isBase64 {
		return nil, nil, false
	}
	if i := bytes.IndexByte(meta, ';'); i >= 0 {
		meta = meta[:i]
	}
	return meta, data, true
}

package gateway

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/llmgate/gateway/providers"

	"github.com/llmgate/gateway/internal/jsonx"
)

// span is a byte range [start, end) of the request body.
type span struct{ start, end int }

// parsedBody is what the gateway reads of a request body: the model fields
// and the stream flags, plus where they sit so the body can be rewritten per
// candidate without decoding the rest.
type parsedBody struct {
	model     string
	hasModel  bool
	models    []string
	stream    bool
	modelSpan span // whole member, key to value
	// modelsSpan is the whole "models" member.
	modelsSpan  span
	hasModels   bool
	streamOpts  span // the value of "stream_options"
	hasStreamOp bool
	// wantsUsage reports stream_options.include_usage == true.
	wantsUsage bool
	// The kinds of the fields an API requires (jsonx.Invalid when absent).
	messages, maxTokens, input jsonx.Kind
}

// routedFields are the top-level fields the gateway routes, prices or
// checks on. Each may appear once, and a body with another key equal to one
// of them but for case ("MODEL", "ſtream") is refused: the gateway would
// route on one while a lenient upstream honoured the other (Go's
// encoding/json matches keys with Unicode case folding).
var routedFields = [...]string{"model", "models", "stream", "stream_options", "max_tokens",
	"max_completion_tokens", "messages", "input", "system", "tools", "tool_choice", "n"}

// shadowsRoutedField returns the routed field that key equals but for
// ASCII case, or "". Keys without an upper-case ASCII letter (all real
// ones) are decided by one scan.
func shadowsRoutedField(key []byte) string {
	folds := false
	for _, b := range key {
		// An upper-case letter, an escape or a non-ASCII byte (the long s
		// "ſ" and the Kelvin sign fold to "s" and "k").
		if b >= 'A' && b <= 'Z' || b == '\\' || b >= 0x80 {
			folds = true
			break
		}
	}
	if !folds {
		return ""
	}
	name, ok := jsonx.Unquote(key)
	if !ok {
		return ""
	}
	for _, f := range routedFields {
		if name != f && strings.EqualFold(name, f) {
			return f
		}
	}
	return ""
}

// requireFields checks the fields the request's API requires: messages
// for chat completions and messages (plus max_tokens for messages), input
// for embeddings.
func (p *parsedBody) requireFields(s providers.Surface) *Error {
	need := func(name string, k jsonx.Kind, want jsonx.Kind) *Error {
		switch k {
		case want:
			return nil
		case jsonx.Invalid, jsonx.Null:
			return &Error{Kind: KindInvalidRequest, Param: name, Message: name + " is required"}
		}
		return &Error{Kind: KindInvalidRequest, Param: name, Message: name + " must be " + want.String() + ", got " + k.String()}
	}
	switch s {
	case providers.SurfaceChatCompletions:
		return need("messages", p.messages, jsonx.Array)
	case providers.SurfaceMessages:
		if e := need("messages", p.messages, jsonx.Array); e != nil {
			return e
		}
		return need("max_tokens", p.maxTokens, jsonx.Number)
	case providers.SurfaceEmbeddings:
		if p.input == jsonx.Invalid || p.input == jsonx.Null {
			return &Error{Kind: KindInvalidRequest, Param: "input", Message: "input is required"}
		}
	}
	return nil
}

// parseBody validates body as a JSON object in UTF-8 and reads the fields
// the gateway routes on. Problems are 400 errors naming the field.
func parseBody(body []byte) (parsedBody, *Error) {
	var p parsedBody
	if !utf8.Valid(body) {
		// JSON is UTF-8 (RFC 8259 §8.1); parsers disagree on what else
		// means, and the translator would rewrite it.
		return p, &Error{Kind: KindInvalidJSON, Message: "request body is not valid UTF-8"}
	}
	var fieldErr *Error
	var seen uint16 // bit i: routedFields[i] was seen
	err := jsonx.Members(body, func(m jsonx.Member) bool {
		fieldErr = p.member(m, &seen)
		return fieldErr == nil
	})
	if err != nil {
		if errors.Is(err, jsonx.ErrNotObject) {
			return p, &Error{Kind: KindInvalidJSON, Message: "request body must be a JSON object", Err: err}
		}
		return p, &Error{Kind: KindInvalidJSON, Message: "request body is not valid JSON: " + err.Error(), Err: err}
	}
	return p, fieldErr
}

// member reads one top-level member of the body. seen tracks the routed
// fields met so far: every one of them may appear once (parsers disagree
// on which of two copies wins).
func (p *parsedBody) member(m jsonx.Member, seen *uint16) *Error {
	f := -1
	for i, name := range routedFields {
		if m.KeyIs(name) {
			f = i
			break
		}
	}
	if f < 0 {
		if name := shadowsRoutedField(m.Key); name != "" {
			return &Error{Kind: KindInvalidRequest, Param: name,
				Message: "key " + strconv.Quote(jsonSafe(truncate(m.Name(), 64))) + " differs from " + name + " only in case; send " + name}
		}
		return nil
	}
	name := routedFields[f]
	if *seen&(1<<f) != 0 {
		return &Error{Kind: KindInvalidRequest, Param: name, Message: "duplicate key " + name + " in the request body"}
	}
	*seen |= 1 << f
	kind := jsonx.KindOf(m.Value)
	wrongType := func(want string) *Error {
		return &Error{Kind: KindInvalidRequest, Param: name, Message: name + " must be " + want + ", got " + kind.String()}
	}
	switch name {
	case "model":
		p.modelSpan = span{m.Start, m.End}
		switch kind {
		case jsonx.String:
			p.model, _ = jsonx.Unquote(m.Value)
			p.hasModel = true
		case jsonx.Null:
		default:
			return wrongType("a string")
		}
	case "models":
		p.modelsSpan, p.hasModels = span{m.Start, m.End}, true
		switch kind {
		case jsonx.Null:
		case jsonx.Array:
			var e *Error
			_ = jsonx.Elements(m.Value, func(v []byte) bool {
				if k := jsonx.KindOf(v); k != jsonx.String {
					e = &Error{Kind: KindInvalidRequest, Param: name, Message: "models must be an array of strings, found " + k.String()}
					return false
				}
				s, _ := jsonx.Unquote(v)
				p.models = append(p.models, s)
				return true
			})
			return e
		default:
			return wrongType("an array of strings")
		}
	case "stream":
		switch string(m.Value) {
		case "true":
			p.stream = true
		case "false", "null":
		default:
			return wrongType("a boolean")
		}
	case "stream_options":
		switch kind {
		case jsonx.Null:
		case jsonx.Object:
			p.hasStreamOp = true
			p.streamOpts = span{m.End - len(m.Value), m.End}
			_ = jsonx.Members(m.Value, func(o jsonx.Member) bool {
				if o.KeyIs("include_usage") && string(o.Value) == "true" {
					p.wantsUsage = true
				}
				return true
			})
		default:
			return wrongType("an object")
		}
	case "messages":
		p.messages = kind
	case "max_tokens":
		p.maxTokens = kind
	case "input":
		p.input = kind
	}
	return nil
}

// names returns model followed by models: the client's preference order.
func (p *parsedBody) names() []string {
	if !p.hasModel || p.model == "" {
		return p.models
	}
	out := make([]string, 0, 1+len(p.models))
	return append(append(out, p.model), p.models...)
}

// rewrite returns the body to send upstream: "model" set to model, "models"
// removed, and, when injectUsage is set, stream_options.include_usage
// forced to true. The rest of the body is copied byte for byte.
func (p *parsedBody) rewrite(body []byte, model string, injectUsage bool) []byte {
	injectUsage = injectUsage && !p.wantsUsage
	out := make([]byte, 0, len(body)+len(model)+48)
	// Edits sorted by position: replace model, delete models, replace
	// stream_options value.
	type edit struct {
		span
		repl string
		del  bool
	}
	var edits [3]edit
	n := 0
	modelMember := `"model":` + string(jsonx.AppendQuote(nil, model))
	if p.modelSpan != (span{}) {
		edits[n] = edit{span: p.modelSpan, repl: modelMember}
		n++
	}
	if p.hasModels {
		edits[n] = edit{span: p.modelsSpan, del: true}
		n++
	}
	if injectUsage && p.hasStreamOp {
		edits[n] = edit{span: p.streamOpts, repl: mergeIncludeUsage(body[p.streamOpts.start:p.streamOpts.end])}
		n++
	}
	// Insertion sort of at most three edits.
	for i := 1; i < n; i++ {
		for j := i; j > 0 && edits[j].start < edits[j-1].start; j-- {
			edits[j], edits[j-1] = edits[j-1], edits[j]
		}
	}
	// Find the opening brace; prepend new members right after it.
	open := 0
	for open < len(body) && body[open] != '{' {
		open++
	}
	out = append(out, body[:open+1]...)
	var prefix []string
	if p.modelSpan == (span{}) {
		prefix = append(prefix, modelMember)
	}
	if injectUsage && !p.hasStreamOp {
		prefix = append(prefix, `"stream_options":{"include_usage":true}`)
	}
	for _, m := range prefix {
		out = append(out, m...)
		out = append(out, ',')
	}
	pos := open + 1
	for i := 0; i < n; i++ {
		e := edits[i]
		out = append(out, body[pos:e.start]...)
		pos = e.end
		if !e.del {
			out = append(out, e.repl...)
			continue
		}
		// Delete the member and one adjacent comma.
		j := pos
		for j < len(body) && isSpace(body[j]) {
			j++
		}
		if j < len(body) && body[j] == ',' {
			pos = j + 1
			continue
		}
		// No comma after it: it was the last member; drop the comma before.
		k := len(out) - 1
		for k >= 0 && isSpace(out[k]) {
			k--
		}
		if k >= 0 && out[k] == ',' {
			out = out[:k]
		}
	}
	out = append(out, body[pos:]...)
	// A prefix member followed by an object that is now empty leaves a
	// trailing comma: "{"model":"x",}".
	if len(prefix) > 0 {
		k := len(out) - 1
		for k >= 0 && isSpace(out[k]) {
			k--
		}
		if k > 0 && out[k] == '}' {
			j := k - 1
			for j >= 0 && isSpace(out[j]) {
				j--
			}
			if j >= 0 && out[j] == ',' {
				out = append(out[:j], out[k:]...)
			}
		}
	}
	return out
}

// mergeIncludeUsage returns the stream_options object with include_usage set
// to true, keeping its other members.
func mergeIncludeUsage(obj []byte) string {
	out := []byte(`{"include_usage":true`)
	_ = jsonx.Members(obj, func(m jsonx.Member) bool {
		if !m.KeyIs("include_usage") {
			out = append(out, ',')
			out = append(out, m.Key...)
			out = append(out, ':')
			out = append(out, m.Value...)
		}
		return true
	})
	return string(append(out, '}'))
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

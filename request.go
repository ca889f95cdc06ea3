package gateway

import (
	"bytes"
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
	// maxOut is the smallest positive integer of max_tokens,
	// max_completion_tokens and max_output_tokens: the most output tokens
	// the client asks for; 0 when it names none.
	maxOut int64
}

// routedFields are the top-level fields the gateway routes, prices or
// checks on. Each may appear once, and a body with another key equal to one
// of them but for case ("MODEL", "ſtream") is refused: the gateway would
// route on one while a lenient upstream honoured the other (Go's
// encoding/json matches keys with Unicode case folding).
var routedFields = [...]string{"model", "models", "stream", "stream_options", "max_tokens",
	"max_completion_tokens", "max_output_tokens", "messages", "input", "system", "tools", "tool_choice", "n"}

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
		return p.readModels(m.Value)
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
			p.readStreamOptions(m)
		default:
			return wrongType("an object")
		}
	case "messages":
		p.messages = kind
	case "max_tokens":
		p.maxTokens = kind
		p.readMaxOut(m.Value)
	case "max_completion_tokens", "max_output_tokens":
		p.readMaxOut(m.Value)
	case "input":
		p.input = kind
	}
	return nil
}

// readMaxOut notes a positive integer maximum of output tokens; anything
// else is the upstream's to refuse.
func (p *parsedBody) readMaxOut(v []byte) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err == nil && n > 0 && (p.maxOut == 0 || n < p.maxOut) {
		p.maxOut = n
	}
}

// readModels reads the "models" array of names.
func (p *parsedBody) readModels(v []byte) *Error {
	switch k := jsonx.KindOf(v); k {
	case jsonx.Null:
		return nil
	case jsonx.Array:
	default:
		return &Error{Kind: KindInvalidRequest, Param: "models", Message: "models must be an array of strings, got " + k.String()}
	}
	var e *Error
	_ = jsonx.Elements(v, func(v []byte) bool {
		if k := jsonx.KindOf(v); k != jsonx.String {
			e = &Error{Kind: KindInvalidRequest, Param: "models", Message: "models must be an array of strings, found " + k.String()}
			return false
		}
		s, _ := jsonx.Unquote(v)
		p.models = append(p.models, s)
		return true
	})
	return e
}

// readStreamOptions notes where the stream_options object is and whether
// it asks for usage.
func (p *parsedBody) readStreamOptions(m jsonx.Member) {
	p.hasStreamOp = true
	p.streamOpts = span{m.End - len(m.Value), m.End}
	_ = jsonx.Members(m.Value, func(o jsonx.Member) bool {
		if o.KeyIs("include_usage") && string(o.Value) == "true" {
			p.wantsUsage = true
		}
		return true
	})
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
// forced to true. The rest of the body is copied byte for byte; a body
// that needs none of these is returned as it is (callers never modify
// it).
func (p *parsedBody) rewrite(body []byte, model string, injectUsage bool) []byte {
	if !p.changes(body, model, injectUsage) {
		// Nothing to change: the body goes upstream as the client sent it,
		// without a copy (a 400 KB prompt costs a copy per candidate).
		return body
	}
	return p.rewriteInto(nil, body, model, injectUsage)
}

// changes reports whether rewrite would change body.
func (p *parsedBody) changes(body []byte, model string, injectUsage bool) bool {
	return injectUsage && !p.wantsUsage || p.hasModels || p.modelSpan == (span{}) ||
		string(body[p.modelSpan.start:p.modelSpan.end]) != `"model":`+string(jsonx.AppendQuote(nil, model))
}

// rewriteBound is the most rewriteInto may add to a body: the model
// member (every byte escaped at worst) and stream_options.
func rewriteBound(model string) int { return len(model)*6 + 64 }

// rewriteInto is rewrite into dst (whose contents it overwrites), always
// copying: dst is used when its capacity holds len(body) +
// rewriteBound(model), else a new buffer is made.
func (p *parsedBody) rewriteInto(dst, body []byte, model string, injectUsage bool) []byte {
	injectUsage = injectUsage && !p.wantsUsage
	modelMember := `"model":` + string(jsonx.AppendQuote(nil, model))
	out := dst[:0]
	if cap(out) < len(body)+rewriteBound(model) {
		out = make([]byte, 0, len(body)+len(model)+48)
	}
	// Find the opening brace; prepend new members right after it.
	open := 0
	for open < len(body) && body[open] != '{' {
		open++
	}
	out = append(out, body[:open+1]...)
	prefixed := false
	if p.modelSpan == (span{}) {
		out, prefixed = append(append(out, modelMember...), ','), true
	}
	if injectUsage && !p.hasStreamOp {
		out, prefixed = append(append(out, `"stream_options":{"include_usage":true}`...), ','), true
	}
	var edits [3]bodyEdit
	out, pos := applyEdits(out, body, open+1, p.edits(edits[:0], body, modelMember, injectUsage))
	out = append(out, body[pos:]...)
	if prefixed {
		// A prefix member followed by an object that is now empty leaves a
		// trailing comma: "{"model":"x",}".
		k := lastNonSpace(out, len(out)-1)
		if k > 0 && out[k] == '}' {
			if j := lastNonSpace(out, k-1); j >= 0 && out[j] == ',' {
				out = append(out[:j], out[k:]...)
			}
		}
	}
	return out
}

// bodyEdit replaces (or, with del, removes) one member of the body.
type bodyEdit struct {
	span
	repl string
	del  bool
}

// edits returns the edits of rewrite, sorted by position: replace model,
// delete models, replace the stream_options value.
func (p *parsedBody) edits(dst []bodyEdit, body []byte, modelMember string, injectUsage bool) []bodyEdit {
	if p.modelSpan != (span{}) {
		dst = append(dst, bodyEdit{span: p.modelSpan, repl: modelMember})
	}
	if p.hasModels {
		dst = append(dst, bodyEdit{span: p.modelsSpan, del: true})
	}
	if injectUsage && p.hasStreamOp {
		dst = append(dst, bodyEdit{span: p.streamOpts, repl: mergeIncludeUsage(body[p.streamOpts.start:p.streamOpts.end])})
	}
	for i := 1; i < len(dst); i++ { // insertion sort of at most three
		for j := i; j > 0 && dst[j].start < dst[j-1].start; j-- {
			dst[j], dst[j-1] = dst[j-1], dst[j]
		}
	}
	return dst
}

// applyEdits appends body from pos with the edits applied and returns the
// position in body after the last edit. A deleted member takes one adjacent
// comma with it.
func applyEdits(out, body []byte, pos int, edits []bodyEdit) ([]byte, int) {
	for _, e := range edits {
		out = append(out, body[pos:e.start]...)
		pos = e.end
		if !e.del {
			out = append(out, e.repl...)
			continue
		}
		j := pos
		for j < len(body) && isSpace(body[j]) {
			j++
		}
		if j < len(body) && body[j] == ',' {
			pos = j + 1
			continue
		}
		// No comma after it: it was the last member; drop the comma before.
		if k := lastNonSpace(out, len(out)-1); k >= 0 && out[k] == ',' {
			out = out[:k]
		}
	}
	return out, pos
}

// lastNonSpace returns the index of the last non-space byte of b[:i+1], or
// -1.
func lastNonSpace(b []byte, i int) int {
	for i >= 0 && isSpace(b[i]) {
		i--
	}
	return i
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

// capMaxOutput returns body with its maximum output tokens at most n: every
// max_tokens, max_completion_tokens or max_output_tokens above n (or not a
// positive integer) becomes n, and when there is none, field is added with
// n. The rest is copied byte for byte.
func capMaxOutput(body []byte, n int64, field string) []byte {
	var edits []bodyEdit
	found := false
	repl := strconv.FormatInt(n, 10)
	_ = jsonx.Members(body, func(m jsonx.Member) bool {
		if m.KeyIs("max_tokens") || m.KeyIs("max_completion_tokens") || m.KeyIs("max_output_tokens") {
			found = true
			if v, err := strconv.ParseInt(string(m.Value), 10, 64); err != nil || v <= 0 || v > n {
				start := m.End - len(m.Value)
				edits = append(edits, bodyEdit{span: span{start, m.End}, repl: repl})
			}
		}
		return true
	})
	open := bytes.IndexByte(body, '{')
	if open < 0 || found && len(edits) == 0 {
		return body
	}
	out := make([]byte, 0, len(body)+len(field)+24)
	out = append(out, body[:open+1]...)
	if !found {
		out = append(jsonx.AppendQuote(out, field), ':')
		out = append(out, repl...)
		k := open + 1
		for k < len(body) && isSpace(body[k]) {
			k++
		}
		if k < len(body) && body[k] != '}' {
			out = append(out, ',')
		}
	}
	out, pos := applyEdits(out, body, open+1, edits)
	return append(out, body[pos:]...)
}

// outputField is the field that caps the answer of a request on surface s
// to provider up, when the request has none: Anthropic's max_tokens, the
// Responses API's max_output_tokens, and for chat completions OpenAI's
// max_completion_tokens (its reasoning models refuse max_tokens) or, at
// other providers, the max_tokens every OpenAI-compatible server knows.
func outputField(s providers.Surface, up *upstream) string {
	switch {
	case s == providers.SurfaceMessages:
		return "max_tokens"
	case s == providers.SurfaceResponses:
		return "max_output_tokens"
	case up.id == "openai":
		return "max_completion_tokens"
	}
	return "max_tokens"
}

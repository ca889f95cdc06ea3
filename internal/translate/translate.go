package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/llmgate/gateway/internal/jsonx"
	"github.com/llmgate/gateway/providers"
)

// DefaultMaxOutputTokens is the Anthropic max_tokens used when the client
// gave none and RequestOptions.MaxOutputTokens is 0.
const DefaultMaxOutputTokens = 4096

// RequestOptions configures a request translation. The zero value keeps the
// client's model and uses DefaultMaxOutputTokens.
type RequestOptions struct {
	// Model is the upstream model ID to put in "model"; "" keeps the
	// client's value.
	Model string
	// MaxOutputTokens is the catalog's maximum output tokens of the model,
	// used as Anthropic max_tokens when the client omits it (0 means
	// DefaultMaxOutputTokens).
	MaxOutputTokens int
	// NoReasoning says the target model has no reasoning controls (no
	// "reasoning" feature in the catalog): OpenAI reasoning_effort, and
	// Anthropic thinking and output_config.effort, are then dropped and
	// reported instead of translated, since such models reject them. The
	// zero value translates them.
	NoReasoning bool

	// slowOnly makes tests translate without the fast passes.
	slowOnly bool
}

// ResponseOptions configures a response translation. The zero value keeps
// the upstream's model name and uses the current time.
type ResponseOptions struct {
	// ClientModel is the model name to report to the client; "" keeps the
	// upstream's.
	ClientModel string
	// Now gives the time written as OpenAI's "created" (Unix seconds); nil
	// means time.Now.
	Now func() time.Time
}

// Error reports a request that cannot be translated without silently
// changing its meaning, or that is not valid JSON of the expected shape.
// The gateway answers it with HTTP 400 and an invalid_request_error naming
// Param. An Error is immutable and safe to share.
type Error struct {
	// Param is the offending request field as a dotted path
	// ("n", "messages.content.type"); "" for the body as a whole.
	Param string
	// Message says what is wrong, for the client.
	Message string
}

// Error implements error: "translate: <param>: <message>".
func (e *Error) Error() string {
	if e.Param == "" {
		return "translate: " + e.Message
	}
	return "translate: " + e.Param + ": " + e.Message
}

// Status returns the HTTP status for the error: always 400.
func (e *Error) Status() int { return http.StatusBadRequest }

func errorf(param, format string, args ...any) *Error {
	return &Error{Param: param, Message: fmt.Sprintf(format, args...)}
}

// errSameFormat is returned when from == to: same-format traffic is passed
// through, never translated.
var errSameFormat = errors.New("translate: source and target formats are the same")

func checkFormats(from, to providers.Format) error {
	if !from.Valid() || !to.Valid() {
		return fmt.Errorf("translate: unsupported formats %q -> %q", from, to)
	}
	if from == to {
		return errSameFormat
	}
	return nil
}

// Request translates a client request body in format from into format to
// (OpenAI chat completions ⇄ Anthropic messages).
//
// It returns the new body; the names of request fields that were dropped
// because the target has no counterpart, sorted and without duplicates, as
// dotted paths ("seed", "messages.name", "messages.content.cache_control"),
// for the gateway's Llmgate-Removed-Params header; and an error. A request
// that cannot be translated without silently changing its meaning (OpenAI
// n > 1, logprobs, audio, non-function tools, ...) or that is not valid
// gives an *Error naming the field. The gateway's own "models" field is
// ignored and never emitted. Stream flags are carried over; an Anthropic
// streaming request becomes an OpenAI one with
// stream_options.include_usage = true. See the package documentation for
// the full mapping. from == to is an error: same-format requests are never
// translated.
func Request(from, to providers.Format, body []byte, opt RequestOptions) (out []byte, removed []string, err error) {
	if err := checkFormats(from, to); err != nil {
		return nil, nil, err
	}
	var r removedSet
	if from == providers.FormatOpenAI {
		out, err = openAIToAnthropicRequest(body, opt, &r)
	} else {
		out, err = anthropicToOpenAIRequest(body, opt, &r)
	}
	if err != nil {
		return nil, nil, err
	}
	return out, r.sorted(), nil
}

// removedSet collects the names of dropped fields.
type removedSet struct{ names []string }

func (r *removedSet) add(name string) {
	if !slices.Contains(r.names, name) {
		r.names = append(r.names, name)
	}
}

func (r *removedSet) sorted() []string {
	if len(r.names) == 0 {
		return nil
	}
	slices.Sort(r.names)
	return r.names
}

// marshal encodes v without HTML escaping and without a trailing newline.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// mustMarshal encodes values built by this package, which are always
// encodable (json.RawMessage fields hold validated JSON).
func mustMarshal(v any) json.RawMessage {
	b, err := marshal(v)
	if err != nil {
		panic("translate: marshal: " + err.Error())
	}
	return b
}

// decode unmarshals raw into v, turning failures into an *Error for param.
func decode(raw []byte, v any, param string) error {
	if err := json.Unmarshal(raw, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			p := param
			if te.Field != "" {
				p = joinParam(param, te.Field)
			}
			return errorf(p, "expected %s, got JSON %s", te.Type.String(), te.Value)
		}
		return errorf(param, "invalid value: %v", err)
	}
	return nil
}

func joinParam(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// isNull reports whether raw is absent or the JSON literal null.
func isNull(raw []byte) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// members calls fn for each top-level member of the JSON object raw, in
// order, until fn fails. A document that is not a valid object gives an
// *Error for param (before fn sees any member).
//
// When pre is not nil, it is first offered each member's value, with the
// scanner at the value, so that a big member can be converted in the same
// pass that validates the document: pre consumes the value and returns
// true, or returns false and the value is then skipped. fn gets every
// value either way. A document with escaped keys is walked a second time
// without pre.
func members(raw []byte, param string, pre func(key []byte, s *scanner) bool, fn func(name string, value []byte) error) error {
	if list, ok := walkMembers(raw, pre); ok {
		for _, m := range list {
			if err := fn(m.name, m.value); err != nil {
				return err
			}
		}
		return nil
	}
	var ferr error
	err := jsonx.Members(raw, func(m jsonx.Member) bool {
		ferr = fn(m.Name(), m.Value)
		return ferr == nil
	})
	if err != nil {
		if param == "" {
			return errorf("", "request body is not a JSON object: %v", err)
		}
		return errorf(param, "expected a JSON object: %v", err)
	}
	return ferr
}

// rawMember is a member of a JSON object.
type rawMember struct {
	name  string
	value []byte
}

// walkMembers reads the members of the object raw in one pass, offering
// each value to pre (see members). ok is false when raw is not a valid
// object or has a key with escapes or invalid UTF-8.
func walkMembers(raw []byte, pre func(key []byte, s *scanner) bool) (list []rawMember, ok bool) {
	s := newScanner(raw)
	if s.Peek() != '{' {
		return nil, false
	}
	s.Pos++
	if s.Peek() == '}' {
		s.Pos++
		return nil, s.End()
	}
	list = make([]rawMember, 0, 16)
	for {
		k, ok := s.Key()
		if !ok || !utf8.Valid(k) {
			return nil, false
		}
		s.SkipSpace()
		start := s.Pos
		if pre == nil || !pre(k, &s) {
			s.Pos = start
			if !s.Skip(jsonx.MaxDepth) {
				return nil, false
			}
		}
		list = append(list, rawMember{string(k), raw[start:s.Pos]})
		more, ok := s.Next('}')
		if !ok {
			return nil, false
		}
		if !more {
			return list, s.End()
		}
	}
}

// reportUnknown adds prefix.key to r for each key of the object raw that is
// not in known and whose value is not null.
func reportUnknown(raw []byte, prefix string, known []string, r *removedSet) {
	_ = jsonx.Members(raw, func(m jsonx.Member) bool {
		name := m.Name()
		if !slices.Contains(known, name) && !isNull(m.Value) {
			r.add(joinParam(prefix, name))
		}
		return true
	})
}

// stringOrParts reads a content value that is a JSON string, null, or an
// array, returning the string (isString) or the raw array elements.
func stringOrParts(raw []byte, param string) (s string, parts []json.RawMessage, isString bool, err error) {
	raw = bytes.TrimSpace(raw)
	switch jsonx.KindOf(raw) {
	case jsonx.Invalid, jsonx.Null:
		return "", nil, false, nil
	case jsonx.String:
		if err := decode(raw, &s, param); err != nil {
			return "", nil, false, err
		}
		return s, nil, true, nil
	case jsonx.Array:
		if err := decode(raw, &parts, param); err != nil {
			return "", nil, false, err
		}
		return "", parts, false, nil
	}
	return "", nil, false, errorf(param, "expected a string or an array, got JSON %s", jsonx.KindOf(raw))
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }

// nowFunc returns f or time.Now.
func nowFunc(f func() time.Time) func() time.Time {
	if f == nil {
		return time.Now
	}
	return f
}

// dataURL splits a data: URL of base64 content into its media type and
// data. ok is false for other URLs and for data: URLs that are not base64.
func dataURL(u string) (mediaType, data string, ok bool) {
	rest, found := strings.CutPrefix(u, "data:")
	if !found {
		return "", "", false
	}
	meta, data, found := strings.Cut(rest, ",")
	if !found {
		return "", "", false
	}
	meta, isBase64 := strings.CutSuffix(meta, ";base64")
	if !isBase64 {
		return "", "", false
	}
	if i := strings.IndexByte(meta, ';'); i >= 0 { // parameters such as charset
		meta = meta[:i]
	}
	return meta, data, true
}

// compactJSON returns raw compacted, or nil when raw is not valid JSON.
func compactJSON(raw []byte) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return nil
	}
	return b.Bytes()
}

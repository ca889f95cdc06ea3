package tokens

import (
	"bytes"

	"github.com/llmgate/gateway/internal/jsonx"
)

// textCounter counts the text the estimators find in a request body.
type textCounter interface {
	// text counts a JSON string literal's value (lit has its quotes).
	text(lit []byte) int64
	// raw counts a JSON value as the text it is written as (tool
	// definitions, tool calls and inputs).
	raw(v []byte) int64
}

// Per-message overhead of chat formats: OpenAI documents 3 tokens per
// message plus 3 to prime the reply; Anthropic's is similar.
const (
	tokensPerMessage = 3
	tokensPerReply   = 3
)

// walkBody counts the prompt of an OpenAI chat completions body (anthropic
// false: the messages' content and name, their tool_calls, and the tools
// and functions) or of an Anthropic messages body (the system prompt, the
// messages' content and the tools), with the per-message overhead. Content
// is a string or an array of parts whose text, content and thinking count
// as content and whose input and arguments count as raw JSON. It reads the
// body once and allocates nothing for keys without escapes. ok is false
// when the body is not a valid JSON object.
//
// The text goes to tc or, when tc is nil, to a quickCounter with the
// automaton d, whose tokens are added to n (it lives in the walker, not
// behind an interface, so that nothing is allocated); with sample, the
// quick counter sees only a sample of a large body's text (see sampleFrom).
func walkBody(body []byte, anthropic bool, tc textCounter, d *quickDFA, sample bool) (n int64, ok bool) {
	w := walker{jscan: jscan{s: jsonx.Scanner{Data: body}}, tc: tc, q: quickCounter{d: d}}
	if tc == nil && sample && len(body) > sampleFrom {
		// A large body: count a sample of its text, spread evenly (one
		// window of sampleWindow bytes in every period), and scale.
		w.period = int64(len(body)) * sampleWindow / sampleFrom
	}
	if w.s.Peek() != '{' {
		return 0, false
	}
	n = tokensPerReply
	ok = w.object(func(key []byte) bool {
		switch k := string(key); {
		case k == "messages":
			return w.array(func(elem bool) bool {
				if !elem {
					return true // not a message: no overhead (see UpperBound)
				}
				n += tokensPerMessage
				return w.object(func(key []byte) bool {
					switch k := string(key); {
					case k == "content", k == "name" && !anthropic:
						n += w.content(0)
					case k == "tool_calls" && !anthropic:
						n += w.countRaw()
					default:
						return w.skip()
					}
					return !w.bad
				})
			})
		case k == "system" && anthropic:
			n += w.content(0)
		case k == "tools", k == "functions" && !anthropic:
			n += w.countRaw()
		default:
			return w.skip()
		}
		return !w.bad
	})
	if tc == nil {
		t := w.q.tokens()
		if w.period > 0 && w.counted > 0 {
			t = t * w.seen / w.counted
		}
		n += t
	}
	return n, ok && !w.bad && w.s.End()
}

// The quick estimate of a body larger than sampleFrom bytes counts about
// sampleFrom bytes of its text: windows of sampleWindow bytes, one per
// period, spread evenly over all of the text, each starting after a space
// so that no word is cut at its start. The tokens counted are scaled by the
// text seen over the text counted. On the corpus the sampled estimate of a
// 400 KB conversation stays within a percent of the whole count
// (TestQuickSampledBody), at a fixed cost however large the body.
const (
	sampleFrom   = 64 << 10
	sampleWindow = 1 << 10
)

// walker reads a body for walkBody.
type walker struct {
	jscan
	tc textCounter
	q  quickCounter
	// Sampling (period > 0): the text bytes seen and counted so far.
	period, seen, counted int64
}

// quick counts text with the quick counter: all of it, or, when sampling,
// the parts of it that fall in the sample windows.
func (w *walker) quick(b []byte, escaped bool) {
	if w.period == 0 {
		w.q.text(b, escaped)
		w.q.end()
		return
	}
	for len(b) > 0 {
		pos := w.seen % w.period
		if pos >= sampleWindow {
			skip := min(w.period-pos, int64(len(b)))
			w.seen += skip
			b = b[skip:]
			// Start the window after a space (never inside a word or an
			// escape sequence); the bytes passed over are not counted.
			if i := bytes.IndexByte(b[:min(len(b), 64)], ' '); i > 0 {
				w.seen += int64(i)
				b = b[i:]
			}
			continue
		}
		take := min(sampleWindow-pos, int64(len(b)))
		w.q.text(b[:take], escaped)
		w.q.end()
		w.seen += take
		w.counted += take
		b = b[take:]
	}
}

// text counts a string literal's value.
func (w *walker) text(lit []byte) int64 {
	if w.tc != nil {
		return w.tc.text(lit)
	}
	w.quick(lit[1:len(lit)-1], true)
	return 0
}

// raw counts a JSON value's text.
func (w *walker) raw(v []byte) int64 {
	if w.tc != nil {
		return w.tc.raw(v)
	}
	w.quick(v, false)
	return 0
}

// maxContentDepth bounds the nesting of content parts the walk descends
// into (tool results hold parts): each level is an array and an object, and
// JSON deeper than jsonx.MaxDepth is invalid anyway.
const maxContentDepth = jsonx.MaxDepth / 2

// content counts a content value: a string, or an array of parts.
func (w *walker) content(depth int) int64 {
	var n int64
	switch w.s.Peek() {
	case '"':
		lit, _, ok := w.s.ReadString()
		if !ok {
			w.fail()
			return 0
		}
		return w.text(lit)
	case '[':
		if depth >= maxContentDepth {
			w.skip()
			return 0
		}
		w.array(func(elem bool) bool {
			if !elem {
				return true
			}
			return w.object(func(key []byte) bool {
				switch string(key) {
				case "text", "content", "thinking":
					n += w.content(depth + 1)
				case "input", "arguments":
					n += w.countRaw()
				default:
					return w.skip()
				}
				return !w.bad
			})
		})
		return n
	}
	w.skip()
	return 0
}

// countRaw counts the value that comes next as raw JSON.
func (w *walker) countRaw() int64 {
	v, ok := w.rawValue()
	if !ok {
		return 0
	}
	return w.raw(v)
}

package tokens

import "github.com/llmgate/gateway/internal/jsonx"

// MaxOutputText is the most text, in bytes, an OutputCounter keeps to count
// with tiktoken: as much as a Counter tokenizes for one count
// (DefaultMaxCountBytes), some 250,000 tokens of English, more than any
// model writes in one response. Text beyond it is not kept: it is counted
// as it arrives with the quick estimator (QuickCount), in both encodings.
const MaxOutputText = DefaultMaxCountBytes

// maxOutputSegments bounds the segments an OutputCounter keeps apart; later
// text joins the last one.
const maxOutputSegments = 1 << 14

// Kinds of output text, for segments.
const (
	outContent = iota + 1
	outReasoning
	outRefusal
	outToolName
	outToolArgs
)

// OutputCounter collects the text a model writes, from a response or the
// events of a stream, so that its output tokens can be counted when the
// provider reports none (an interrupted stream: the client is charged for
// what was delivered). Provider-reported usage always wins: call Tokens
// only when StreamTap, OpenAIUsage or AnthropicUsage report no output
// count (see StreamTap.OutputReported).
//
// It collects what is billed as output and delivered:
//
//   - OpenAI chat completions (chunks and responses): every choice's
//     content (a string or text parts), reasoning_content and reasoning,
//     refusal, and tool_calls' (and the legacy function_call's) function
//     name and arguments.
//   - Anthropic messages: text, thinking and tool_use names and input; in
//     a stream, content_block_start's text, thinking and name, and
//     content_block_delta's text_delta, thinking_delta and
//     input_json_delta.
//
// Hidden reasoning (OpenAI's reasoning tokens, Anthropic's full thinking
// behind a summary), audio, and the few tokens a provider spends to format
// tool calls are not delivered as text and not counted, so Tokens
// undercounts those responses.
//
// The text of each stretch (one choice's content, one tool call's
// arguments, ...) is kept apart and counted apart, as the provider counts
// it; stretches of interleaved choices (n > 1) are cut at each change,
// which can cost a token per cut.
//
// Observe and ObserveResponse cost one scan of the JSON and copy the text
// into a buffer; they allocate only to grow it (reuse an OutputCounter with
// Reset to keep it). An OutputCounter is not safe for concurrent use. The
// zero value collects OpenAI chat completions; NewAnthropicOutput returns
// one for Anthropic messages.
type OutputCounter struct {
	anthropic bool
	max       int // the text kept, at most; 0 means MaxOutputText

	text    []byte // the text kept, up to MaxOutputText bytes
	starts  []int  // the offset in text where each segment starts
	channel uint64 // the channel (choice, tool or block, and kind) of the last text

	// Text beyond MaxOutputText, counted as it comes.
	spilled bool
	cl100k  quickCounter
	o200k   quickCounter
}

// NewOpenAIOutput returns an OutputCounter for OpenAI chat completions
// responses and streams (the zero value).
func NewOpenAIOutput() *OutputCounter { return &OutputCounter{} }

// NewAnthropicOutput returns an OutputCounter for Anthropic messages
// responses and streams.
func NewAnthropicOutput() *OutputCounter { return &OutputCounter{anthropic: true} }

// Reset forgets the text collected, keeping the buffers and the format.
func (o *OutputCounter) Reset() {
	*o = OutputCounter{anthropic: o.anthropic, max: o.max, text: o.text[:0], starts: o.starts[:0]}
}

// Observe collects the text of one stream event's data: an OpenAI
// chat.completion.chunk, or an Anthropic event. Other data (such as
// "[DONE]", pings and usage) is ignored, and so is the rest of an event
// after malformed JSON.
func (o *OutputCounter) Observe(data []byte) { o.observe(data, true) }

// ObserveResponse collects the text of a whole (not streamed) response
// body: an OpenAI chat completion or an Anthropic message.
func (o *OutputCounter) ObserveResponse(body []byte) { o.observe(body, false) }

// observe collects the text of data, a stream event's (stream true) or a
// whole response's JSON object; anything else is ignored. OpenAI chunks
// and completions read alike; Anthropic events and messages do not. The
// readers are called directly (not through a func value), so that the
// scanner stays on the stack.
func (o *OutputCounter) observe(data []byte, stream bool) {
	w := jscan{s: jsonx.Scanner{Data: data}}
	if w.s.Peek() != '{' {
		return
	}
	switch {
	case !o.anthropic:
		o.openAI(&w)
	case stream:
		o.anthropicEvent(&w)
	default:
		o.anthropicMessage(&w)
	}
}

// Tokens counts the text collected in the encoding ("" means cl100k_base)
// with c's tiktoken: exactly, up to MaxOutputText bytes, at the cost of
// tokenizing it (about a millisecond per few kilobytes; call it once the
// response is complete, off the path of the response). Text beyond is
// estimated with QuickCount. Unknown encodings are estimated with
// QuickCount. It does not change o.
func (o *OutputCounter) Tokens(c *Counter, encoding string) int64 {
	b := c.budget(encoding)
	var n int64
	for i, start := range o.starts {
		end := len(o.text)
		if i+1 < len(o.starts) {
			end = o.starts[i+1]
		}
		n += b.count(o.text[start:end])
	}
	if o.spilled {
		q := o.o200k
		if dfaFor(encoding) == cl100kDFA {
			q = o.cl100k
		}
		q.end()
		n += q.tokens()
	}
	return n
}

// channel identifies a stretch of output: a choice (or Anthropic content
// block), a tool call within it, and the kind of text.
func channel(choice, tool, kind int) uint64 {
	return uint64(min(choice, 1<<24))<<32 | uint64(min(tool, 1<<24))<<8 | uint64(kind)
}

// add collects a JSON string literal's text (raw false) or a JSON value as
// it is written (raw true) for channel ch.
func (o *OutputCounter) add(ch uint64, v []byte, raw bool) {
	if !raw && len(v) <= 2 { // ""
		return
	}
	limit := o.max
	if limit == 0 {
		limit = MaxOutputText
	}
	if !o.spilled && len(o.text)+len(v) <= limit {
		if ch != o.channel || len(o.starts) == 0 {
			o.channel = ch
			if n := len(o.starts); n < maxOutputSegments && (n == 0 || o.starts[n-1] < len(o.text)) {
				o.starts = append(o.starts, len(o.text))
			}
		}
		if raw {
			o.text = append(o.text, v...)
			return
		}
		n := len(o.text)
		o.text, _ = jsonx.AppendUnquote(o.text, v)
		if len(o.text) <= limit {
			return
		}
		o.text = o.text[:n] // invalid UTF-8 made it longer: spill it
	}
	if !o.spilled {
		o.spilled = true
		o.cl100k = newQuickCounter(EncodingCL100K)
		o.o200k = newQuickCounter(EncodingO200K)
	} else if ch != o.channel {
		o.cl100k.end()
		o.o200k.end()
	}
	o.channel = ch
	if !raw {
		v = v[1 : len(v)-1]
	}
	o.cl100k.text(v, !raw)
	o.o200k.text(v, !raw)
}

// addString collects the string that comes next, if it is one.
func (o *OutputCounter) addString(w *jscan, ch uint64) bool {
	lit, ok := w.str()
	if lit != nil {
		o.add(ch, lit, false)
	}
	return ok
}

// openAI reads a chat completion or chunk: choices[].message or
// choices[].delta.
func (o *OutputCounter) openAI(w *jscan) {
	w.object(func(key []byte) bool {
		if string(key) != "choices" {
			return w.skip()
		}
		return w.positions(func(choice int, isObject bool) bool {
			if !isObject {
				return true
			}
			return w.object(func(key []byte) bool {
				switch string(key) {
				case "index":
					return w.indexInto(&choice)
				case "delta", "message":
					return o.openAIMessage(w, choice)
				}
				return w.skip()
			})
		})
	})
}

// openAIMessage reads a choice's message or delta.
func (o *OutputCounter) openAIMessage(w *jscan, choice int) bool {
	return w.object(func(key []byte) bool {
		switch string(key) {
		case "content":
			ch := channel(choice, 0, outContent)
			if w.s.Peek() == '[' { // text parts
				return w.array(func(isObject bool) bool {
					return !isObject || w.object(func(key []byte) bool {
						switch string(key) {
						case "text":
							return o.addString(w, ch)
						case "refusal":
							return o.addString(w, channel(choice, 0, outRefusal))
						}
						return w.skip()
					})
				})
			}
			return o.addString(w, ch)
		case "reasoning_content", "reasoning":
			return o.addString(w, channel(choice, 0, outReasoning))
		case "refusal":
			return o.addString(w, channel(choice, 0, outRefusal))
		case "tool_calls":
			return w.positions(func(tool int, isObject bool) bool {
				return !isObject || w.object(func(key []byte) bool {
					switch string(key) {
					case "index":
						return w.indexInto(&tool)
					case "function":
						return o.openAIFunction(w, choice, tool)
					}
					return w.skip()
				})
			})
		case "function_call":
			return o.openAIFunction(w, choice, 0)
		}
		return w.skip()
	})
}

// openAIFunction reads a tool call's function: its name and arguments (a
// string of JSON, or, from some providers, the JSON itself).
func (o *OutputCounter) openAIFunction(w *jscan, choice, tool int) bool {
	return w.object(func(key []byte) bool {
		switch string(key) {
		case "name":
			return o.addString(w, channel(choice, tool, outToolName))
		case "arguments":
			ch := channel(choice, tool, outToolArgs)
			if c := w.s.Peek(); c == '{' || c == '[' {
				v, ok := w.rawValue()
				if ok {
					o.add(ch, v, true)
				}
				return ok
			}
			return o.addString(w, ch)
		}
		return w.skip()
	})
}

// anthropicEvent reads a stream event: content_block_start's
// content_block and content_block_delta's delta, for the block at index.
func (o *OutputCounter) anthropicEvent(w *jscan) {
	block := 0
	w.object(func(key []byte) bool {
		switch string(key) {
		case "index":
			return w.indexInto(&block)
		case "delta":
			return w.object(func(key []byte) bool {
				switch string(key) {
				case "text":
					return o.addString(w, channel(block, 0, outContent))
				case "thinking":
					return o.addString(w, channel(block, 0, outReasoning))
				case "partial_json":
					return o.addString(w, channel(block, 0, outToolArgs))
				}
				return w.skip()
			})
		case "content_block":
			return o.anthropicBlock(w, block, false)
		}
		return w.skip()
	})
}

// anthropicMessage reads a message's content blocks.
func (o *OutputCounter) anthropicMessage(w *jscan) {
	w.object(func(key []byte) bool {
		if string(key) != "content" {
			return w.skip()
		}
		return w.positions(func(block int, isObject bool) bool {
			return !isObject || o.anthropicBlock(w, block, true)
		})
	})
}

// anthropicBlock reads a content block: its text, thinking and tool name,
// and with input, its tool input (a stream's content_block_start carries
// an empty input, which input_json_delta events fill).
func (o *OutputCounter) anthropicBlock(w *jscan, block int, input bool) bool {
	return w.object(func(key []byte) bool {
		switch string(key) {
		case "text":
			return o.addString(w, channel(block, 0, outContent))
		case "thinking":
			return o.addString(w, channel(block, 0, outReasoning))
		case "name":
			return o.addString(w, channel(block, 0, outToolName))
		case "input":
			if !input {
				break
			}
			v, ok := w.rawValue()
			if ok {
				o.add(channel(block, 0, outToolArgs), v, true)
			}
			return ok
		}
		return w.skip()
	})
}

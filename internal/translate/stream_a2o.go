package translate

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/llmgate/gateway/internal/jsonx"
	"github.com/llmgate/gateway/internal/wire"
)

// maxBlocks bounds the content block index (and the OpenAI tool call
// index) a stream may use, so a hostile upstream cannot make the
// translator allocate without bound.
const maxBlocks = 1 << 12

// anthropicToOpenAI turns Anthropic Messages stream events into OpenAI
// chat.completion.chunk events.
//
// message_start gives the first chunk (role "assistant", content ""); text
// and thinking deltas become content and reasoning_content deltas; each
// tool_use block becomes a tool call whose index counts the tool_use
// blocks from 0, announced with its id, type and name and arguments "",
// then one arguments fragment per non-empty input_json_delta (a block that
// received none gets "{}", or its start input, at content_block_stop).
// message_delta records the stop reason and the cumulative usage;
// message_stop emits the single finish chunk, the usage chunk when the
// client asked for it, and [DONE]. ping, signature and citation deltas and
// blocks without an OpenAI counterpart produce nothing.
type anthropicToOpenAI struct {
	opt  StreamOptions
	base []byte // `data: {"id":...,"object":...,"created":...,"model":...,`

	started bool // the role chunk was written
	done    bool // message_stop (or an error event) was consumed
	failed  bool // an error event was written
	content bool // HasContent

	blocks []a2oBlock // by Anthropic block index
	ntools int        // tool_use blocks seen

	stopReason []byte // Anthropic stop_reason, decoded
	usage      struct{ input, cacheRead, cacheWrite, output int64 }

	ev    anthropicEvent
	tpl   template
	empty wire.StreamEvent // stands in for the decoded event on the fast path
}

// a2oBlock is what the translator remembers of one content block.
type a2oBlock struct {
	tool     int    // tool call index + 1; 0 for blocks that are not tool_use
	sentArgs bool   // a non-empty arguments fragment was sent
	input    []byte // the start input when it is not {}, as a string literal
}

func newAnthropicToOpenAI(opt StreamOptions) *anthropicToOpenAI {
	return &anthropicToOpenAI{opt: opt}
}

func (a *anthropicToOpenAI) event(dst, name, data []byte) ([]byte, error) {
	if a.done || a.failed || len(bytes.TrimSpace(data)) == 0 {
		return dst, nil
	}
	e := &a.ev
	if err := parseAnthropicEvent(data, e, &a.tpl); err != nil {
		return dst, err
	}
	if e.full == nil {
		a.empty = wire.StreamEvent{}
		e.full = &a.empty
	}
	if len(e.typ) == 0 {
		e.typ = name // a proxy that dropped the type: trust the event name
	}
	mark := len(dst)
	var err error
	switch string(e.typ) {
	case "content_block_delta":
		dst, err = a.delta(dst, e)
	case "content_block_start":
		dst, err = a.blockStart(dst, e)
	case "content_block_stop":
		dst, err = a.blockStop(dst, e)
	case "message_start":
		if !a.started {
			var id, model string
			if m := e.full.Message; m != nil {
				id, model = m.ID, m.Model
				a.setUsage(m.Usage)
			}
			dst = a.start(dst, id, model)
		}
	case "message_delta":
		dst = a.ensureStarted(dst)
		if d := e.full.Delta; d != nil && d.StopReason != nil {
			a.stopReason = []byte(*d.StopReason)
		}
		a.setUsage(e.full.Usage)
	case "message_stop":
		return a.finish(dst), nil
	case "error":
		var typ, msg string
		if ee := e.full; ee != nil && ee.Error != nil {
			typ, msg = ee.Error.Type, ee.Error.Message
		}
		a.done, a.failed = true, true
		return appendOpenAIErrorEvent(dst, msg, wire.OpenAIErrorType(anthropicTypeStatus(typ)), typ), nil
	}
	// ping and unknown event types produce nothing.
	if err != nil {
		return dst[:mark], err
	}
	return dst, nil
}

// anthropicTypeStatus is the HTTP status an Anthropic error type stands for.
func anthropicTypeStatus(typ string) int {
	switch typ {
	case "invalid_request_error":
		return 400
	case "authentication_error":
		return 401
	case "billing_error":
		return 402
	case "permission_error":
		return 403
	case "not_found_error":
		return 404
	case "request_too_large":
		return 413
	case "rate_limit_error":
		return 429
	case "timeout_error":
		return 504
	case "overloaded_error":
		return 503
	}
	return 500
}

func (a *anthropicToOpenAI) setUsage(u *wire.StreamUsage) {
	if u == nil {
		return
	}
	// Totals are cumulative: set what is present, keep the rest.
	if u.InputTokens != nil {
		a.usage.input = *u.InputTokens
	}
	if u.CacheReadInputTokens != nil {
		a.usage.cacheRead = *u.CacheReadInputTokens
	}
	if u.CacheCreationInputTokens != nil {
		a.usage.cacheWrite = *u.CacheCreationInputTokens
	}
	if u.OutputTokens != nil {
		a.usage.output = *u.OutputTokens
	}
}

// start writes the role chunk and fixes the id, created and model of all
// chunks.
func (a *anthropicToOpenAI) start(dst []byte, id, model string) []byte {
	a.started = true
	if a.opt.ClientModel != "" {
		model = a.opt.ClientModel
	}
	b := append(a.base[:0], `data: {"id":`...)
	b = jsonx.AppendQuote(b, chatID(id))
	b = append(b, `,"object":"chat.completion.chunk","created":`...)
	b = strconv.AppendInt(b, nowFunc(a.opt.Now)().Unix(), 10)
	b = append(b, `,"model":`...)
	b = jsonx.AppendQuote(b, model)
	a.base = append(b, ',')
	dst = a.chunkStart(dst)
	dst = append(dst, `{"role":"assistant","content":""}`...)
	return a.chunkEnd(dst)
}

// ensureStarted writes the role chunk if message_start was missing.
func (a *anthropicToOpenAI) ensureStarted(dst []byte) []byte {
	if a.started {
		return dst
	}
	return a.start(dst, "", "")
}

func (a *anthropicToOpenAI) chunkStart(dst []byte) []byte {
	dst = append(dst, a.base...)
	return append(dst, `"choices":[{"index":0,"delta":`...)
}

func (a *anthropicToOpenAI) chunkEnd(dst []byte) []byte {
	return append(dst, `,"logprobs":null,"finish_reason":null}]}`+"\n\n"...)
}

func (a *anthropicToOpenAI) block(index int) (*a2oBlock, error) {
	if index >= maxBlocks {
		return nil, fmt.Errorf("translate: content block index %d out of range", index)
	}
	if index >= len(a.blocks) {
		a.blocks = append(a.blocks, make([]a2oBlock, index+1-len(a.blocks))...)
	}
	return &a.blocks[index], nil
}

func (a *anthropicToOpenAI) blockStart(dst []byte, e *anthropicEvent) ([]byte, error) {
	cb := e.full.ContentBlock
	if cb == nil {
		return dst, fmt.Errorf("translate: content_block_start without content_block")
	}
	b, err := a.block(e.index)
	if err != nil {
		return dst, err
	}
	dst = a.ensureStarted(dst)
	switch cb.Type {
	case "text":
		if lit := quoteLit(cb.Text); lit != nil {
			dst = a.textDelta(dst, `{"content":`, lit)
		}
	case "thinking":
		if lit := quoteLit(cb.Thinking); lit != nil {
			dst = a.textDelta(dst, `{"reasoning_content":`, lit)
		}
	case "tool_use":
		*b = a2oBlock{tool: a.ntools + 1}
		if in := bytes.TrimSpace(cb.Input); len(in) > 0 && jsonx.KindOf(in) == jsonx.Object && !isEmptyObject(in) {
			if c := compactJSON(in); c != nil {
				b.input = jsonx.AppendQuote(nil, string(c))
			}
		}
		a.ntools++
		a.content = true
		dst = a.chunkStart(dst)
		dst = append(dst, `{"tool_calls":[{"index":`...)
		dst = strconv.AppendInt(dst, int64(b.tool-1), 10)
		dst = append(dst, `,"id":`...)
		dst = jsonx.AppendQuote(dst, cb.ID)
		dst = append(dst, `,"type":"function","function":{"name":`...)
		dst = jsonx.AppendQuote(dst, cb.Name)
		dst = append(dst, `,"arguments":""}}]}`...)
		dst = a.chunkEnd(dst)
	}
	// redacted_thinking, server_tool_use and tool result blocks have no
	// OpenAI counterpart.
	return dst, nil
}

func isEmptyObject(in []byte) bool {
	c := compactJSON(in)
	return string(c) == "{}"
}

// textDelta writes a chunk whose delta is open + lit + "}".
func (a *anthropicToOpenAI) textDelta(dst []byte, open string, lit []byte) []byte {
	a.content = true
	dst = a.chunkStart(dst)
	dst = append(dst, open...)
	dst = append(dst, lit...)
	dst = append(dst, '}')
	return a.chunkEnd(dst)
}

func (a *anthropicToOpenAI) delta(dst []byte, e *anthropicEvent) ([]byte, error) {
	dst = a.ensureStarted(dst)
	switch string(e.deltaType) {
	case "text_delta":
		if e.text != nil {
			dst = a.textDelta(dst, `{"content":`, e.text)
		}
	case "thinking_delta":
		if e.thinking != nil {
			dst = a.textDelta(dst, `{"reasoning_content":`, e.thinking)
		}
	case "input_json_delta":
		if e.index >= len(a.blocks) || a.blocks[e.index].tool == 0 {
			return dst, fmt.Errorf("translate: input_json_delta for content block %d, which is not a tool_use block", e.index)
		}
		b := &a.blocks[e.index]
		if e.partial != nil {
			b.sentArgs = true
			dst = a.argsChunk(dst, b.tool-1, e.partial)
		}
	}
	// signature_delta and citations_delta have no counterpart.
	return dst, nil
}

func (a *anthropicToOpenAI) argsChunk(dst []byte, tool int, lit []byte) []byte {
	a.content = true
	dst = a.chunkStart(dst)
	dst = append(dst, `{"tool_calls":[{"index":`...)
	dst = strconv.AppendInt(dst, int64(tool), 10)
	dst = append(dst, `,"function":{"arguments":`...)
	dst = append(dst, lit...)
	dst = append(dst, `}}]}`...)
	return a.chunkEnd(dst)
}

func (a *anthropicToOpenAI) blockStop(dst []byte, e *anthropicEvent) ([]byte, error) {
	if e.index >= len(a.blocks) {
		return dst, nil
	}
	b := &a.blocks[e.index]
	if b.tool != 0 && !b.sentArgs {
		// OpenAI clients parse the arguments; never leave them "".
		lit := b.input
		if lit == nil {
			lit = []byte(`"{}"`)
		}
		b.sentArgs = true
		dst = a.argsChunk(dst, b.tool-1, lit)
	}
	return dst, nil
}

// finish writes the finish chunk, the usage chunk when asked for, and
// [DONE].
func (a *anthropicToOpenAI) finish(dst []byte) []byte {
	if a.done || a.failed {
		return dst
	}
	a.done = true
	a.content = true
	dst = a.ensureStarted(dst)
	dst = a.chunkStart(dst)
	dst = append(dst, `{},"logprobs":null,"finish_reason":"`...)
	dst = append(dst, openAIFinishReason(string(a.stopReason))...)
	dst = append(dst, `"}]}`+"\n\n"...)
	if a.opt.IncludeUsage {
		u := &a.usage
		prompt := u.input + u.cacheRead + u.cacheWrite
		dst = append(dst, a.base...)
		dst = append(dst, `"choices":[],"usage":{"prompt_tokens":`...)
		dst = strconv.AppendInt(dst, prompt, 10)
		dst = append(dst, `,"completion_tokens":`...)
		dst = strconv.AppendInt(dst, u.output, 10)
		dst = append(dst, `,"total_tokens":`...)
		dst = strconv.AppendInt(dst, prompt+u.output, 10)
		dst = append(dst, `,"prompt_tokens_details":{"cached_tokens":`...)
		dst = strconv.AppendInt(dst, u.cacheRead, 10)
		if u.cacheWrite != 0 {
			dst = append(dst, `,"cache_write_tokens":`...)
			dst = strconv.AppendInt(dst, u.cacheWrite, 10)
		}
		dst = append(dst, "}}}\n\n"...)
	}
	return append(dst, "data: [DONE]\n\n"...)
}

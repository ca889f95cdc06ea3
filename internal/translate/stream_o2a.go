package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/llmgate/gateway/internal/jsonx"
	"github.com/llmgate/gateway/internal/wire"
)

// blockKind is the kind of an Anthropic content block being built.
type blockKind uint8

const (
	kindNone blockKind = iota
	kindText
	kindThinking
	kindTool
)

// target names what a piece of content belongs to: the text, the
// thinking, or tool call number tool (the OpenAI index).
type target struct {
	kind blockKind
	tool int
}

// Tool call states.
const (
	toolUnseen uint8 = iota
	toolPending
	toolOpen
	toolClosed
)

// o2aTool is one OpenAI tool call (by index) being turned into a tool_use
// block.
type o2aTool struct {
	id, name []byte // JSON string literals, copied
	state    uint8
	buf      []byte // arguments received while pending (literal contents)
	js       jsonTrack
}

// openAIToAnthropic turns OpenAI chat.completion.chunk events into
// Anthropic Messages stream events.
//
// The first chunk gives message_start. Reasoning (reasoning_content or
// reasoning) deltas go to thinking blocks, content and refusal deltas to
// text blocks, and each tool call to a tool_use block (content_block_start
// with its id and name and input {}, then one input_json_delta per
// arguments fragment). A block is open until content of another kind
// arrives, and block indexes count from 0 without gaps. Empty deltas open
// nothing.
//
// Anthropic blocks cannot interleave, but OpenAI-compatible providers may
// interleave fragments of several tool calls, or send text while a call is
// still open. The open block is never closed while it is a tool call whose
// arguments are not yet a complete JSON object (tracked incrementally in
// jsonTrack); what arrives for other blocks meanwhile is buffered, in
// arrival order (text for one pending text block, arguments per call), and
// flushed as whole blocks as soon as the open call completes, or at the
// finish. In the common sequential case nothing is buffered. Arguments that
// arrive for a call whose block was already closed (only possible after
// its JSON was complete) are an error unless they are whitespace.
//
// finish_reason closes the blocks; message_delta (stop reason and usage)
// and message_stop wait for [DONE], because the usage chunk comes after
// the finish chunk. A stream that called tools and finished with "stop"
// (as Gemini's OpenAI endpoint does) ends with stop_reason tool_use.
type openAIToAnthropic struct {
	opt StreamOptions

	started, done, failed, content bool
	finalized                      bool // blocks were closed at finish_reason

	next        int // index of the next block
	active      target
	activeIndex int // index of the open block

	tools    []o2aTool
	lastTool int      // index of the last tool call a fragment went to, -1 before any
	sawTool  bool     // a tool call was opened or buffered
	pending  []target // targets with buffered content, oldest first

	textBuf, thinkingBuf []byte // buffered literal contents
	textPending          bool
	thinkingPending      bool

	finishReason []byte // finish_reason, copied
	stopSeq      []byte // vLLM's stop string literal, copied
	refusal      bool

	usage      wire.ChatUsage
	usageKnown bool

	info chunkInfo
	tpl  template
}

func newOpenAIToAnthropic(opt StreamOptions) *openAIToAnthropic {
	return &openAIToAnthropic{opt: opt, lastTool: -1}
}

func (o *openAIToAnthropic) event(dst, name, data []byte) ([]byte, error) {
	if o.done || o.failed {
		return dst, nil
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return dst, nil
	}
	if string(data) == "[DONE]" {
		return o.finishStream(dst), nil
	}
	c := &o.info
	if string(name) == "error" {
		// Some providers send errors as "event: error" with the error
		// object, or plain text, as data.
		c.reset()
		c.errRaw = data
	} else if err := parseOpenAIChunk(data, c, &o.tpl); err != nil {
		return dst, err
	}
	if c.errRaw != nil {
		msg, typ := openAIStreamError(c.errRaw)
		o.done, o.failed = true, true
		return appendAnthropicErrorEvent(dst, typ, msg, ""), nil
	}
	mark := len(dst)
	if !o.started {
		dst = o.start(dst, c)
	}
	if c.hasChoice && !o.finalized {
		var err error
		if c.reasoning != nil {
			dst, err = o.piece(dst, target{kind: kindThinking}, inner(c.reasoning))
		}
		if c.content != nil && err == nil {
			dst, err = o.piece(dst, target{kind: kindText}, inner(c.content))
		}
		if c.refusal != nil && err == nil {
			o.refusal = true
			dst, err = o.piece(dst, target{kind: kindText}, inner(c.refusal))
		}
		for i := range c.tools {
			if err != nil {
				break
			}
			dst, err = o.toolPiece(dst, &c.tools[i])
		}
		if err != nil {
			return dst[:mark], err
		}
		if c.finish != nil {
			o.finishReason = append(o.finishReason[:0], c.finish...)
			o.stopSeq = append(o.stopSeq[:0], c.stopSeq...)
			dst = o.finalize(dst)
		}
	}
	if c.usage != nil {
		o.usage, o.usageKnown = *c.usage, true
	}
	return dst, nil
}

// openAIStreamError reads an in-stream OpenAI error value: an object with
// message, type and code, or a string.
func openAIStreamError(raw []byte) (msg, typ string) {
	var e struct {
		Message json.RawMessage `json:"message"`
		Type    string          `json:"type"`
		Code    json.RawMessage `json:"code"`
		Error   json.RawMessage `json:"error"`
	}
	raw = bytes.TrimSpace(raw)
	switch jsonx.KindOf(raw) {
	case jsonx.String:
		_ = json.Unmarshal(raw, &msg)
	case jsonx.Object:
		_ = json.Unmarshal(raw, &e)
		if inner := bytes.TrimSpace(e.Error); len(inner) > 0 && !isNull(inner) {
			return openAIStreamError(inner) // {"error":{...}} as the data of an error event
		}
		msg = wire.RawText(e.Message)
	default:
		msg = wire.TruncateText(raw)
	}
	return msg, anthropicTypeForOpenAI(e.Type, wire.RawText(e.Code))
}

// anthropicTypeForOpenAI maps an OpenAI error type or code (some providers
// put the HTTP status in code) onto an Anthropic error type.
func anthropicTypeForOpenAI(typ, code string) string {
	if n, err := strconv.Atoi(code); err == nil && n >= 400 && n <= 599 {
		return wire.AnthropicErrorType(n)
	}
	for _, s := range [...]string{code, typ} {
		switch s {
		case "rate_limit_exceeded", "rate_limit_error", "requests", "tokens", "insufficient_quota":
			return "rate_limit_error"
		case "invalid_request_error", "context_length_exceeded":
			return "invalid_request_error"
		case "authentication_error", "invalid_api_key":
			return "authentication_error"
		case "permission_error":
			return "permission_error"
		case "not_found_error", "model_not_found":
			return "not_found_error"
		case "overloaded_error", "server_overloaded":
			return "overloaded_error"
		case "timeout", "timeout_error":
			return "timeout_error"
		}
	}
	return "api_error"
}

// start writes message_start.
func (o *openAIToAnthropic) start(dst []byte, c *chunkInfo) []byte {
	o.started = true
	dst = append(dst, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_"...)
	dst = append(dst, inner(c.id)...)
	dst = append(dst, `","type":"message","role":"assistant","model":`...)
	switch {
	case o.opt.ClientModel != "":
		dst = jsonx.AppendQuote(dst, o.opt.ClientModel)
	case c.model != nil:
		dst = append(dst, c.model...)
	default:
		dst = append(dst, `""`...)
	}
	dst = append(dst, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":`...)
	var u wire.Usage
	if c.usage != nil {
		u = anthropicUsage(c.usage)
		u.OutputTokens = 0
	} else if o.opt.InputTokens != nil {
		u.InputTokens = max(o.opt.InputTokens(), 0)
	}
	dst = appendUsage(dst, &u)
	return append(dst, "}}\n\n"...)
}

func appendUsage(dst []byte, u *wire.Usage) []byte {
	dst = append(dst, `{"input_tokens":`...)
	dst = strconv.AppendInt(dst, u.InputTokens, 10)
	dst = append(dst, `,"cache_creation_input_tokens":`...)
	dst = strconv.AppendInt(dst, u.CacheCreationInputTokens, 10)
	dst = append(dst, `,"cache_read_input_tokens":`...)
	dst = strconv.AppendInt(dst, u.CacheReadInputTokens, 10)
	dst = append(dst, `,"output_tokens":`...)
	dst = strconv.AppendInt(dst, u.OutputTokens, 10)
	return append(dst, '}')
}

// toolPiece handles one tool call fragment (the i-th of its chunk). A
// fragment names its call by index; providers that omit the index (Gemini's
// OpenAI endpoint) are followed by id: a new id is a new call, a fragment
// with neither continues the last call.
func (o *openAIToAnthropic) toolPiece(dst []byte, td *toolDelta) ([]byte, error) {
	idx := len(o.tools)
	switch {
	case td.hasIndex:
		idx = td.index
	case td.id != nil:
		for k := range o.tools {
			if bytes.Equal(o.tools[k].id, td.id) {
				idx = k
				break
			}
		}
	case o.lastTool >= 0:
		idx = o.lastTool
	}
	if idx >= maxBlocks {
		return dst, fmt.Errorf("translate: tool call index %d out of range", idx)
	}
	if idx >= len(o.tools) {
		o.tools = append(o.tools, make([]o2aTool, idx+1-len(o.tools))...)
	}
	o.lastTool = idx
	t := &o.tools[idx]
	if t.state == toolUnseen || t.state == toolPending {
		if td.id != nil && t.id == nil {
			t.id = append([]byte(nil), td.id...)
		}
		if td.name != nil && t.name == nil {
			t.name = append([]byte(nil), td.name...)
		}
		if t.state == toolUnseen && t.name == nil && td.args == nil {
			return dst, nil // wait for the name or the arguments
		}
	}
	o.sawTool = true
	return o.piece(dst, target{kind: kindTool, tool: idx}, inner(td.args))
}

// piece routes content for tg: to the open block, to tg's buffer, or to a
// newly opened block.
func (o *openAIToAnthropic) piece(dst []byte, tg target, data []byte) ([]byte, error) {
	switch {
	case o.active.kind != kindNone && o.active == tg:
		dst = o.delta(dst, tg.kind, data)
		if tg.kind == kindTool {
			t := &o.tools[tg.tool]
			t.js.feed(data)
			if len(o.pending) > 0 && t.js.complete() {
				dst = o.advance(dst)
			}
		}
	case tg.kind == kindTool && o.tools[tg.tool].state == toolClosed:
		t := &o.tools[tg.tool]
		t.js.feed(data)
		if t.js.state == trackBad {
			return dst, fmt.Errorf("translate: arguments for tool call %d arrived after its JSON was complete and its block closed", tg.tool)
		}
	case o.isPending(tg):
		o.buffer(tg, data)
	case o.closable():
		dst = o.closeActive(dst)
		dst = o.open(dst, tg)
		if tg.kind == kindTool {
			o.tools[tg.tool].js.feed(data)
		}
		dst = o.delta(dst, tg.kind, data)
	default:
		o.pending = append(o.pending, tg)
		switch tg.kind {
		case kindText:
			o.textPending = true
		case kindThinking:
			o.thinkingPending = true
		case kindTool:
			o.tools[tg.tool].state = toolPending
		}
		o.buffer(tg, data)
	}
	return dst, nil
}

func (o *openAIToAnthropic) isPending(tg target) bool {
	switch tg.kind {
	case kindText:
		return o.textPending
	case kindThinking:
		return o.thinkingPending
	}
	return o.tools[tg.tool].state == toolPending
}

func (o *openAIToAnthropic) buffer(tg target, data []byte) {
	switch tg.kind {
	case kindText:
		o.textBuf = append(o.textBuf, data...)
	case kindThinking:
		o.thinkingBuf = append(o.thinkingBuf, data...)
	case kindTool:
		t := &o.tools[tg.tool]
		t.buf = append(t.buf, data...)
		t.js.feed(data)
	}
}

// closable reports whether the open block may be closed now.
func (o *openAIToAnthropic) closable() bool {
	return o.active.kind != kindTool || o.tools[o.active.tool].js.complete()
}

// advance closes the open block and flushes pending blocks for as long as
// the open block is closable.
func (o *openAIToAnthropic) advance(dst []byte) []byte {
	for len(o.pending) > 0 && o.closable() {
		dst = o.closeActive(dst)
		dst = o.openPending(dst)
	}
	return dst
}

// openPending opens the oldest pending block and writes its buffer.
func (o *openAIToAnthropic) openPending(dst []byte) []byte {
	tg := o.pending[0]
	o.pending = o.pending[1:]
	if len(o.pending) == 0 {
		o.pending = o.pending[:0:0] // let the backing array be reused from the start
	}
	dst = o.open(dst, tg)
	switch tg.kind {
	case kindText:
		dst = o.delta(dst, kindText, o.textBuf)
		o.textBuf, o.textPending = o.textBuf[:0], false
	case kindThinking:
		dst = o.delta(dst, kindThinking, o.thinkingBuf)
		o.thinkingBuf, o.thinkingPending = o.thinkingBuf[:0], false
	case kindTool:
		t := &o.tools[tg.tool]
		dst = o.delta(dst, kindTool, t.buf)
		t.buf = nil
	}
	return dst
}

// open writes content_block_start for tg and makes it the open block.
func (o *openAIToAnthropic) open(dst []byte, tg target) []byte {
	o.content = true
	o.active, o.activeIndex = tg, o.next
	o.next++
	dst = append(dst, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":"...)
	dst = strconv.AppendInt(dst, int64(o.activeIndex), 10)
	switch tg.kind {
	case kindText:
		dst = append(dst, `,"content_block":{"type":"text","text":""}}`...)
	case kindThinking:
		dst = append(dst, `,"content_block":{"type":"thinking","thinking":"","signature":""}}`...)
	case kindTool:
		t := &o.tools[tg.tool]
		t.state = toolOpen
		dst = append(dst, `,"content_block":{"type":"tool_use","id":`...)
		if t.id != nil {
			dst = append(dst, t.id...)
		} else {
			dst = append(dst, `"call_`...)
			dst = strconv.AppendInt(dst, int64(tg.tool), 10)
			dst = append(dst, '"')
		}
		dst = append(dst, `,"name":`...)
		if t.name != nil {
			dst = append(dst, t.name...)
		} else {
			dst = append(dst, `""`...)
		}
		dst = append(dst, `,"input":{}}}`...)
	}
	return append(dst, "\n\n"...)
}

// delta writes a content_block_delta of the open block carrying data (the
// contents of a JSON string literal); empty data writes nothing.
func (o *openAIToAnthropic) delta(dst []byte, kind blockKind, data []byte) []byte {
	if len(data) == 0 {
		return dst
	}
	dst = append(dst, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":"...)
	dst = strconv.AppendInt(dst, int64(o.activeIndex), 10)
	switch kind {
	case kindText:
		dst = append(dst, `,"delta":{"type":"text_delta","text":"`...)
	case kindThinking:
		dst = append(dst, `,"delta":{"type":"thinking_delta","thinking":"`...)
	case kindTool:
		dst = append(dst, `,"delta":{"type":"input_json_delta","partial_json":"`...)
	}
	dst = append(dst, data...)
	return append(dst, "\"}}\n\n"...)
}

// closeActive writes content_block_stop for the open block.
func (o *openAIToAnthropic) closeActive(dst []byte) []byte {
	if o.active.kind == kindNone {
		return dst
	}
	if o.active.kind == kindTool {
		o.tools[o.active.tool].state = toolClosed
	}
	o.active = target{}
	dst = append(dst, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":"...)
	dst = strconv.AppendInt(dst, int64(o.activeIndex), 10)
	return append(dst, "}\n\n"...)
}

// finalize closes the open block and writes every pending block whole.
func (o *openAIToAnthropic) finalize(dst []byte) []byte {
	if o.finalized {
		return dst
	}
	o.finalized = true
	dst = o.closeActive(dst)
	for len(o.pending) > 0 {
		dst = o.openPending(dst)
		dst = o.closeActive(dst)
	}
	return dst
}

// finishStream writes what the end of the stream owes: message_start if
// nothing came, the blocks' stops, message_delta and message_stop.
func (o *openAIToAnthropic) finishStream(dst []byte) []byte {
	if o.done || o.failed {
		return dst
	}
	o.done = true
	if !o.started {
		o.info.reset()
		dst = o.start(dst, &o.info)
	}
	dst = o.finalize(dst)
	o.content = true
	stop := anthropicStopReason(string(o.finishReason), len(o.stopSeq) > 0)
	switch {
	case o.refusal && stop == "end_turn":
		stop = "refusal"
	case o.sawTool && stop == "end_turn":
		// Some providers (Gemini's OpenAI endpoint) finish a tool call
		// with "stop"; Anthropic clients act on tool_use.
		stop = "tool_use"
	}
	dst = append(dst, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\""...)
	dst = append(dst, stop...)
	dst = append(dst, `","stop_sequence":`...)
	if stop == "stop_sequence" {
		dst = append(dst, o.stopSeq...)
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `},"usage":`...)
	if o.usageKnown {
		u := anthropicUsage(&o.usage)
		dst = appendUsage(dst, &u)
	} else {
		dst = append(dst, `{"output_tokens":0}`...)
	}
	dst = append(dst, "}\n\n"...)
	return append(dst, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"...)
}

// jsonTrack follows the JSON text of a tool call's arguments, fed as the
// contents of JSON string literals (so escapes are decoded first), far
// enough to tell when it is one complete object: after a '{' at the top,
// brackets balance outside strings. It accepts nothing else at the top.
type jsonTrack struct {
	state  uint8 // trackStart, trackValue, trackDone, trackBad
	rawEsc uint8 // 0, or 1 after a backslash, or 2-5 while reading \u digits
	uval   uint16
	inStr  bool
	strEsc bool
	depth  int32
}

const (
	trackStart uint8 = iota
	trackValue
	trackDone
	trackBad
)

func (j *jsonTrack) complete() bool { return j.state == trackDone }

// feed consumes the contents of a JSON string literal.
func (j *jsonTrack) feed(raw []byte) {
	for _, b := range raw {
		if j.state == trackBad {
			return
		}
		switch j.rawEsc {
		case 0:
			if b == '\\' {
				j.rawEsc = 1
				continue
			}
			j.char(b)
		case 1:
			j.rawEsc = 0
			switch b {
			case 'u':
				j.rawEsc, j.uval = 2, 0
			case 'n':
				j.char('\n')
			case 'r':
				j.char('\r')
			case 't':
				j.char('\t')
			case 'b':
				j.char('\b')
			case 'f':
				j.char('\f')
			default: // '"', '\\', '/'
				j.char(b)
			}
		default:
			j.uval = j.uval<<4 | uint16(hexVal(b))
			if j.rawEsc++; j.rawEsc == 6 {
				j.rawEsc = 0
				if j.uval < 0x80 {
					j.char(byte(j.uval))
				} else {
					j.char(0x80) // any non-ASCII character
				}
			}
		}
	}
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 0
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// char consumes one character of the decoded JSON text.
func (j *jsonTrack) char(c byte) {
	switch j.state {
	case trackStart:
		switch {
		case isSpace(c):
		case c == '{':
			j.state, j.depth = trackValue, 1
		default:
			j.state = trackBad
		}
		return
	case trackDone:
		if !isSpace(c) {
			j.state = trackBad
		}
		return
	case trackBad:
		return
	}
	if j.inStr {
		switch {
		case j.strEsc:
			j.strEsc = false
		case c == '\\':
			j.strEsc = true
		case c == '"':
			j.inStr = false
		}
		return
	}
	switch c {
	case '"':
		j.inStr = true
	case '{', '[':
		j.depth++
	case '}', ']':
		if j.depth--; j.depth == 0 {
			j.state = trackDone
		}
	}
}

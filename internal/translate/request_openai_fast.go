package translate

import (
	"bytes"

	"github.com/llmgate/gateway/internal/jsonx"
)

// The fast pass of openAIMessages and openAITools (see request_fast.go).

// Kinds of oaBlock.
const (
	blockText uint8 = iota
	blockImageBase64
	blockImageURL
	blockDocument
	blockToolUse
	blockToolResult
)

// oaBlock is an Anthropic content block made from OpenAI message content,
// written out when its turn is complete.
type oaBlock struct {
	kind     uint8
	text     lit    // text
	id, name lit    // tool_use; id is tool_use_id for tool_result
	media    []byte // image: media type (decoded)
	data     []byte // image, document: base64 data; image URL (decoded)
	title    []byte // document (decoded)
	input    []byte // tool_use: compact JSON
	content  lit    // tool_result: string content
	lo, hi   int    // tool_result: array content, openAIConv.nested[lo:hi]
	cache    []byte // raw cache_control
}

// fileKeys are the keys of wire.FilePart.
var fileKeys = []string{"filename", "file_data", "file_id"}

// toolCall is one entry of an assistant message's tool_calls.
type toolCall struct {
	id, typ, name, args lit
}

// openAIConv converts OpenAI messages into Anthropic ones in one pass.
type openAIConv struct {
	r      *removedSet
	out    []byte    // the messages array
	system []oaBlock // system and developer content
	role   string    // role of the open turn, "" for none
	turn   []oaBlock // blocks of the open turn
	nested []oaBlock // tool_result contents of the open turn
	blocks []oaBlock // content of the message being read
	calls  []toolCall
	buf    []byte // compacted tool inputs (blocks keep subslices)
}

// fastOpenAIMessages is the fast pass of openAIMessages: raw is the
// request's messages array (nil when absent); system is the Anthropic
// system value (nil for none) and messages the messages array.
func fastOpenAIMessages(raw []byte, r *removedSet) (system, messages []byte, ok bool) {
	if raw == nil {
		return openAIMessagesFrom(nil, r)
	}
	s := newScanner(raw)
	system, messages, ok = openAIMessagesFrom(&s, r)
	return system, messages, ok && s.End()
}

// openAIMessagesFrom converts the messages array that comes next in s
// (none when s is nil).
func openAIMessagesFrom(s *scanner, r *removedSet) (system, messages []byte, ok bool) {
	size := 64
	if s != nil {
		size += (len(s.Data) - s.Pos) * 17 / 16
	}
	c := openAIConv{r: r, out: make([]byte, 0, size)}
	c.out = append(c.out, '[')
	if s != nil && (s.Peek() != '[' || !s.array(func() bool { return c.message(s) })) {
		return nil, nil, false
	}
	c.closeTurn()
	c.out = append(c.out, ']')
	switch {
	case len(c.system) == 1 && c.system[0].cache == nil:
		system = c.system[0].text.appendTo(nil)
	case len(c.system) > 0:
		system = c.appendBlocks(nil, c.system)
	}
	return system, c.out, true
}

// message reads one message and adds its blocks.
func (c *openAIConv) message(s *scanner) bool {
	var (
		role, name, callID, refusal, reasoningC, reasoning lit
		str                                                lit
		isStr, isParts                                     bool
		audio, funcCall                                    []byte
	)
	c.blocks, c.calls = c.blocks[:0], c.calls[:0]
	ok := s.object(func(k []byte) (uint32, bool) {
		switch string(k) {
		case "role":
			return readStr(s, 1<<0, &role)
		case "content":
			switch s.Peek() {
			case '"':
				l, ok := s.literal()
				str, isStr = l, true
				return 1 << 1, ok
			case '[':
				isParts = true
				return 1 << 1, s.array(func() bool { return c.part(s) })
			}
			return 1 << 1, s.Null()
		case "name":
			return readStr(s, 1<<2, &name)
		case "tool_calls":
			return 1 << 3, s.array(func() bool { return c.toolCall(s) })
		case "tool_call_id":
			return readStr(s, 1<<4, &callID)
		case "refusal":
			return readStr(s, 1<<5, &refusal)
		case "reasoning_content":
			return readStr(s, 1<<6, &reasoningC)
		case "reasoning":
			return readStr(s, 1<<7, &reasoning)
		case "function_call":
			return readRaw(s, 1<<8, &funcCall)
		case "audio":
			return readRaw(s, 1<<9, &audio)
		}
		return s.unknown(k, openAIMessageKeys, "messages", c.r)
	})
	if !ok || funcCall != nil {
		return false
	}
	if !name.empty() {
		c.r.add("messages.name")
	}
	if isStr && !str.empty() && !role.is("tool") {
		c.blocks = append(c.blocks, oaBlock{kind: blockText, text: str})
	}
	switch {
	case role.is("system"), role.is("developer"):
		if !textOnly(c.blocks) {
			return false
		}
		c.system = append(c.system, c.blocks...)
	case role.is("user"):
		c.appendTurn("user", c.blocks)
	case role.is("assistant"):
		if audio != nil || !textOnly(c.blocks) {
			return false
		}
		if !refusal.empty() {
			c.blocks = append(c.blocks, oaBlock{kind: blockText, text: refusal})
		}
		if !reasoningC.empty() {
			c.r.add("messages.reasoning_content")
		}
		if !reasoning.empty() {
			c.r.add("messages.reasoning")
		}
		for _, tc := range c.calls {
			if !tc.typ.empty() && !tc.typ.is("function") {
				return false
			}
			input, ok := c.argumentsInput(tc.args)
			if !ok {
				return false
			}
			c.blocks = append(c.blocks, oaBlock{kind: blockToolUse, id: tc.id, name: tc.name, input: input})
		}
		c.appendTurn("assistant", c.blocks)
	case role.is("tool"):
		b := oaBlock{kind: blockToolResult, id: callID}
		switch {
		case isStr && !str.empty():
			b.content = str
		case isParts && len(c.blocks) > 0:
			b.lo = len(c.nested)
			c.nested = append(c.nested, c.blocks...)
			b.hi = len(c.nested)
		}
		c.appendTurn("user", []oaBlock{b})
	default:
		return false
	}
	return true
}

// textOnly reports whether blocks has only text, as system and assistant
// content must.
func textOnly(blocks []oaBlock) bool {
	for _, b := range blocks {
		if b.kind != blockText {
			return false
		}
	}
	return true
}

// part reads one content part into c.blocks.
func (c *openAIConv) part(s *scanner) bool {
	var (
		typ, text, refusal, url, detail lit
		filename, fileData              lit
		imageURL, file                  bool
		imageUnknown                    []string
		audio, cache                    []byte
	)
	ok := s.object(func(k []byte) (uint32, bool) {
		switch string(k) {
		case "type":
			return readStr(s, 1<<0, &typ)
		case "text":
			return readStr(s, 1<<1, &text)
		case "image_url":
			if s.Null() {
				return 1 << 2, true
			}
			imageURL = true
			return 1 << 2, s.object(func(k []byte) (uint32, bool) {
				switch string(k) {
				case "url":
					return readStr(s, 1<<0, &url)
				case "detail":
					return readStr(s, 1<<1, &detail)
				}
				var discard removedSet
				bit, ok := s.unknown(k, openAIImageKeys, "", &discard)
				imageUnknown = append(imageUnknown, discard.names...)
				return bit, ok
			})
		case "file":
			if s.Null() {
				return 1 << 3, true
			}
			file = true
			var fileID lit
			return 1 << 3, s.object(func(k []byte) (uint32, bool) {
				switch string(k) {
				case "filename":
					return readStr(s, 1<<0, &filename)
				case "file_data":
					return readStr(s, 1<<1, &fileData)
				case "file_id":
					return readStr(s, 1<<2, &fileID)
				}
				return s.other(k, fileKeys)
			})
		case "input_audio":
			return readRaw(s, 1<<4, &audio)
		case "refusal":
			return readStr(s, 1<<5, &refusal)
		case "cache_control":
			return readRaw(s, 1<<6, &cache)
		}
		return s.unknown(k, openAIPartKeys, "messages.content", c.r)
	})
	if !ok {
		return false
	}
	var b oaBlock
	switch {
	case typ.is("text"), typ.is("refusal"):
		t := text
		if typ.is("refusal") {
			t = refusal
		}
		if t.empty() {
			return true
		}
		b = oaBlock{kind: blockText, text: t}
	case typ.is("image_url"):
		if !imageURL {
			return false
		}
		for _, name := range imageUnknown {
			c.r.add("messages.content.image_url." + name)
		}
		if !detail.empty() && !detail.is("auto") {
			c.r.add("messages.content.image_url.detail")
		}
		u := url.value()
		switch {
		case bytes.HasPrefix(u, []byte("data:")):
			mt, data, ok := dataURLBytes(u)
			if !ok {
				return false
			}
			b = oaBlock{kind: blockImageBase64, media: mt, data: data}
		case bytes.HasPrefix(u, []byte("https://")), bytes.HasPrefix(u, []byte("http://")):
			b = oaBlock{kind: blockImageURL, data: u}
		default:
			return false
		}
	case typ.is("file"):
		if !file || fileData.empty() {
			return false
		}
		fd := fileData.value()
		mt, data, ok := dataURLBytes(fd)
		if !ok {
			mt, data = []byte("application/pdf"), fd
		}
		if string(mt) != "application/pdf" {
			return false
		}
		b = oaBlock{kind: blockDocument, data: data, title: filename.value()}
	default: // input_audio, unknown or missing type: the slow path refuses
		return false
	}
	b.cache = cache
	c.blocks = append(c.blocks, b)
	return true
}

// toolCall reads one tool call into c.calls.
func (c *openAIConv) toolCall(s *scanner) bool {
	var tc toolCall
	ok := s.object(func(k []byte) (uint32, bool) {
		switch string(k) {
		case "id":
			return readStr(s, 1<<0, &tc.id)
		case "type":
			return readStr(s, 1<<1, &tc.typ)
		case "function":
			if s.Null() {
				return 1 << 2, true
			}
			return 1 << 2, s.object(func(k []byte) (uint32, bool) {
				switch string(k) {
				case "name":
					return readStr(s, 1<<0, &tc.name)
				case "arguments":
					return readStr(s, 1<<1, &tc.args)
				}
				return s.other(k, functionKeys)
			})
		}
		return s.other(k, toolCallKeys)
	})
	c.calls = append(c.calls, tc)
	return ok
}

// argumentsInput is argumentsInput for a literal: the compacted arguments
// object, or {} (reported as removed when the arguments are not an
// object). ok is false when the slow path must decide.
func (c *openAIConv) argumentsInput(args lit) (input []byte, ok bool) {
	t := bytes.TrimSpace(args.value())
	if len(t) == 0 {
		return []byte(`{}`), true
	}
	if t[0] == '{' && jsonx.Valid(t) == nil {
		start := len(c.buf)
		c.buf = jsonx.AppendCompact(c.buf, t)
		return c.buf[start:len(c.buf):len(c.buf)], true
	}
	c.r.add("messages.tool_calls.function.arguments")
	return []byte(`{}`), true
}

// appendTurn adds blocks to the open turn of role, or opens a new turn.
// Messages without blocks are dropped and do not end a turn.
func (c *openAIConv) appendTurn(role string, blocks []oaBlock) {
	if len(blocks) == 0 {
		return
	}
	if c.role != role {
		c.closeTurn()
		c.role = role
	}
	c.turn = append(c.turn, blocks...)
}

// closeTurn writes the open turn as a message.
func (c *openAIConv) closeTurn() {
	if c.role == "" {
		return
	}
	if len(c.out) > 1 {
		c.out = append(c.out, ',')
	}
	c.out = append(c.out, `{"role":"`...)
	c.out = append(c.out, c.role...)
	c.out = append(c.out, `","content":`...)
	if len(c.turn) == 1 && c.turn[0].kind == blockText && c.turn[0].cache == nil {
		c.out = c.turn[0].text.appendTo(c.out)
	} else {
		c.out = c.appendBlocks(c.out, c.turn)
	}
	c.out = append(c.out, '}')
	c.role, c.turn, c.nested = "", c.turn[:0], c.nested[:0]
}

// appendBlocks writes blocks as a JSON array.
func (c *openAIConv) appendBlocks(dst []byte, blocks []oaBlock) []byte {
	dst = append(dst, '[')
	for i := range blocks {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = c.appendBlock(dst, &blocks[i])
	}
	return append(dst, ']')
}

// appendBlock writes one block as encoding/json writes a wire.ContentBlock.
func (c *openAIConv) appendBlock(dst []byte, b *oaBlock) []byte {
	switch b.kind {
	case blockText:
		dst = append(dst, `{"type":"text","text":`...)
		dst = b.text.appendTo(dst)
	case blockImageBase64:
		dst = append(dst, `{"type":"image","source":{"type":"base64"`...)
		dst = appendOptString(dst, "media_type", b.media)
		dst = appendOptString(dst, "data", b.data)
		dst = append(dst, '}')
	case blockImageURL:
		dst = append(dst, `{"type":"image","source":{"type":"url"`...)
		dst = appendOptString(dst, "url", b.data)
		dst = append(dst, '}')
	case blockDocument:
		dst = append(dst, `{"type":"document","source":{"type":"base64","media_type":"application/pdf"`...)
		dst = appendOptString(dst, "data", b.data)
		dst = append(dst, '}')
		dst = appendOptString(dst, "title", b.title)
	case blockToolUse:
		dst = append(dst, `{"type":"tool_use"`...)
		dst = appendOptLit(dst, "id", b.id)
		dst = appendOptLit(dst, "name", b.name)
		dst = appendKey(dst, "input")
		dst = append(dst, b.input...)
	case blockToolResult:
		dst = append(dst, `{"type":"tool_result"`...)
		dst = appendOptLit(dst, "tool_use_id", b.id)
		switch {
		case b.content.b != nil:
			dst = appendKey(dst, "content")
			dst = b.content.appendTo(dst)
		case b.hi > b.lo:
			dst = appendKey(dst, "content")
			dst = c.appendBlocks(dst, c.nested[b.lo:b.hi])
		}
	}
	if b.cache != nil {
		dst = appendKey(dst, "cache_control")
		dst = jsonx.AppendCompact(dst, b.cache)
	}
	return append(dst, '}')
}

// appendOptString appends ,"key":"value" unless value is empty (omitempty).
func appendOptString(dst []byte, key string, value []byte) []byte {
	if len(value) == 0 {
		return dst
	}
	return jsonx.AppendQuote(appendKey(dst, key), value)
}

// appendOptLit appends ,"key":literal unless the literal is empty.
func appendOptLit(dst []byte, key string, l lit) []byte {
	if l.empty() {
		return dst
	}
	return l.appendTo(appendKey(dst, key))
}

// fastOpenAITools is the fast pass of the tools conversion: raw is the
// request's tools array (nil when absent); tools is the Anthropic tools
// array (nil for none) and n the number of tools.
func fastOpenAITools(raw []byte, r *removedSet) (tools []byte, n int, ok bool) {
	return convertArray(raw, func(s *scanner, out []byte) ([]byte, bool) {
		var (
			typ       lit
			fn        bool
			def       toolDef
			cache     []byte
			unknownFn []string
		)
		ok := s.object(func(k []byte) (uint32, bool) {
			switch string(k) {
			case "type":
				return readStr(s, 1<<0, &typ)
			case "function":
				if s.Null() {
					return 1 << 1, true
				}
				fn = true
				return 1 << 1, s.object(func(k []byte) (uint32, bool) {
					switch string(k) {
					case "name":
						return readStr(s, 1<<0, &def.name)
					case "description":
						return readStr(s, 1<<1, &def.desc)
					case "parameters":
						return readRaw(s, 1<<2, &def.schema)
					case "strict":
						return readBool(s, 1<<3, &def.strict)
					}
					var discard removedSet
					bit, ok := s.unknown(k, openAIFuncKeys, "", &discard)
					unknownFn = append(unknownFn, discard.names...)
					return bit, ok
				})
			case "cache_control":
				return readRaw(s, 1<<2, &cache)
			}
			return s.unknown(k, openAIToolKeys, "tools", r)
		})
		if !ok || !typ.is("function") || !fn {
			return out, false
		}
		for _, k := range unknownFn {
			r.add("tools.function." + k)
		}
		out = append(out, '{')
		out = def.appendTo(out, "input_schema")
		if cache != nil {
			out = jsonx.AppendCompact(appendKey(out, "cache_control"), cache)
		}
		return append(out, '}'), true
	})
}

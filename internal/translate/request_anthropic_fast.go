package translate

import (
	"slices"

	"github.com/llmgate/gateway/internal/jsonx"
)

// The fast pass of the Anthropic → OpenAI conversion of the system prompt,
// the messages and the tools (see request_fast.go).

// blockPrefix names the removed fields of the content blocks at one place
// of a request.
type blockPrefix struct{ base, cache, citations string }

var (
	prefixSystem  = blockPrefix{"system", "system.cache_control", "system.citations"}
	prefixContent = blockPrefix{"messages.content", "messages.content.cache_control", "messages.content.citations"}
	prefixResult  = blockPrefix{"messages.content.content", "messages.content.content.cache_control", "messages.content.content.citations"}
	sourceKeys    = []string{"type", "media_type", "data", "url", "file_id"}
	documentPDF   = lit{b: []byte(`"document.pdf"`), canon: true}
)

// aBlock is an Anthropic content block as the fast pass reads it: the
// fields of wire.ContentBlock it uses.
type aBlock struct {
	typ, text, title, id, name, toolUseID lit
	source                                aSource
	hasSource                             bool
	input, content                        []byte // raw values, nil for null
	isError                               bool
	resultRead                            bool // a tool_result whose content is in anthropicConv.texts and media
}

// aSource is the source of an image or document block.
type aSource struct {
	typ, mediaType, data, url lit
}

// Kinds of aoPart.
const (
	partText uint8 = iota
	partImage
	partImageURL
	partFile
)

// aoPart is an OpenAI user content part made from an Anthropic block.
type aoPart struct {
	kind        uint8
	text        lit // text; file: the file name
	media, data lit // image and file: the parts of the data: URL
	url         lit // image URL
}

// aoCall is a tool call of an assistant message.
type aoCall struct {
	id, name lit
	input    []byte
}

// anthropicConv converts Anthropic messages into OpenAI ones in one pass.
type anthropicConv struct {
	r     *removedSet
	out   []byte // the messages array
	n     int    // messages written
	tools int    // tool messages written for the message being read
	parts []aoPart
	media []aoPart // media of the tool_result being read
	texts []lit    // text of the assistant message or tool_result being read
	calls []aoCall
	buf   []byte
}

// fastAnthropicMessages is the fast pass of the messages conversion: raw is
// the request's messages array (nil when absent) and messages the OpenAI
// messages array, without the system message.
func fastAnthropicMessages(raw []byte, r *removedSet) (messages []byte, ok bool) {
	if raw == nil {
		return []byte("[]"), true
	}
	s := newScanner(raw)
	messages, _, ok = anthropicMessagesFrom(&s, r)
	return messages, ok && s.End()
}

// anthropicMessagesFrom converts the messages array that comes next in s.
// Its second result is always nil: it has the shape early.convert takes.
func anthropicMessagesFrom(s *scanner, r *removedSet) (messages, _ []byte, ok bool) {
	c := anthropicConv{r: r, out: make([]byte, 0, 64+(len(s.Data)-s.Pos)*17/16)}
	c.out = append(c.out, '[')
	if s.Peek() != '[' || !s.array(func() bool { return c.message(s) }) {
		return nil, nil, false
	}
	return append(c.out, ']'), nil, true
}

// startMessage writes the separator before a message.
func (c *anthropicConv) startMessage() {
	if c.n > 0 {
		c.out = append(c.out, ',')
	}
	c.n++
}

// message reads and writes one message: an assistant message, or for a
// user turn the tool messages of its tool_result blocks followed by a user
// message with the other blocks.
func (c *anthropicConv) message(s *scanner) bool {
	var (
		role, str   lit
		isStr, user bool
		hasText     bool
		raw         []byte // array content read before the role
	)
	c.parts, c.texts, c.calls, c.tools = c.parts[:0], c.texts[:0], c.calls[:0], 0
	ok := s.object(func(k []byte) (uint32, bool) {
		switch string(k) {
		case "role":
			bit, ok := readStr(s, 1<<0, &role)
			user = role.is("user")
			return bit, ok && (user || role.is("assistant"))
		case "content":
			switch s.Peek() {
			case '"':
				l, ok := s.literal()
				str, isStr = l, true
				return 1 << 1, ok
			case '[':
				if role.b == nil { // clients write the role first
					return readRaw(s, 1<<1, &raw)
				}
				return 1 << 1, s.array(func() bool { return c.block(s, user, &hasText) })
			}
			return 1 << 1, s.Null()
		}
		return s.unknown(k, anthropicMessageKeys, "messages", c.r)
	})
	if !ok || role.b == nil {
		return false
	}
	if raw != nil {
		rs := newScanner(raw)
		if !rs.array(func() bool { return c.block(&rs, user, &hasText) }) {
			return false
		}
	}
	switch {
	case isStr:
		c.startMessage()
		if user {
			c.out = append(c.out, `{"role":"user","content":`...)
		} else {
			c.out = append(c.out, `{"role":"assistant","content":`...)
		}
		c.out = str.appendTo(c.out)
		c.out = append(c.out, '}')
	case !user:
		c.assistant(hasText)
	case len(c.parts) == 1 && c.parts[0].kind == partText:
		c.startMessage()
		c.out = append(c.out, `{"role":"user","content":`...)
		c.out = c.parts[0].text.appendTo(c.out)
		c.out = append(c.out, '}')
	case len(c.parts) > 0:
		c.startMessage()
		c.out = append(c.out, `{"role":"user","content":[`...)
		for i := range c.parts {
			if i > 0 {
				c.out = append(c.out, ',')
			}
			c.out = appendPart(c.out, &c.parts[i])
		}
		c.out = append(c.out, "]}"...)
	case c.tools == 0: // an empty user turn stays an (empty) user message
		c.startMessage()
		c.out = append(c.out, `{"role":"user","content":""}`...)
	}
	return true
}

// assistant writes the assistant message read into texts and calls.
func (c *anthropicConv) assistant(hasText bool) {
	c.startMessage()
	c.out = append(c.out, `{"role":"assistant","content":`...)
	if hasText || len(c.calls) == 0 {
		c.out = append(c.out, '"')
		for _, t := range c.texts {
			c.out = t.appendContent(c.out)
		}
		c.out = append(c.out, '"')
	} else {
		c.out = append(c.out, "null"...)
	}
	if len(c.calls) > 0 {
		c.out = append(c.out, `,"tool_calls":[`...)
		for i, tc := range c.calls {
			if i > 0 {
				c.out = append(c.out, ',')
			}
			c.out = append(c.out, `{"id":`...)
			c.out = tc.id.appendTo(c.out)
			c.out = append(c.out, `,"type":"function","function":{"name":`...)
			c.out = tc.name.appendTo(c.out)
			c.out = append(c.out, `,"arguments":`...)
			if tc.input == nil {
				c.out = append(c.out, `"{}"`...)
			} else {
				c.buf = jsonx.AppendCompact(c.buf[:0], tc.input)
				c.out = jsonx.AppendQuote(c.out, c.buf)
			}
			c.out = append(c.out, "}}"...)
		}
		c.out = append(c.out, ']')
	}
	c.out = append(c.out, '}')
}

// block reads one content block of a message.
func (c *anthropicConv) block(s *scanner, user bool, hasText *bool) bool {
	b, ok := c.readBlock(s, &prefixContent, user)
	if !ok {
		return false
	}
	switch {
	case b.typ.is("text"):
		if user {
			c.parts = append(c.parts, aoPart{kind: partText, text: b.text})
		} else {
			c.texts = append(c.texts, b.text)
			*hasText = true
		}
	case b.typ.is("image"), b.typ.is("document"):
		p, ok := mediaPart(&b)
		if !ok || !user {
			return false
		}
		c.parts = append(c.parts, p)
	case b.typ.is("tool_use"):
		if user {
			return false
		}
		c.calls = append(c.calls, aoCall{id: b.id, name: b.name, input: b.input})
	case b.typ.is("tool_result"):
		if !user {
			return false
		}
		if !b.resultRead {
			c.texts, c.media = c.texts[:0], c.media[:0]
			if b.content != nil {
				rs := newScanner(b.content)
				if !c.result(&rs) {
					return false
				}
			}
		}
		c.toolMessage(&b)
		c.parts = slices.Insert(c.parts, 0, c.media...)
	case b.typ.is("thinking"):
		c.r.add("messages.content.thinking")
	case b.typ.is("redacted_thinking"):
		c.r.add("messages.content.redacted_thinking")
	default:
		return false
	}
	return true
}

// toolMessage writes the tool message of a tool_result whose text is in
// c.texts.
func (c *anthropicConv) toolMessage(b *aBlock) {
	c.startMessage()
	c.tools++
	c.out = append(c.out, `{"role":"tool","content":"`...)
	if b.isError {
		c.out = append(c.out, "Error: "...)
	}
	for i, t := range c.texts {
		if i > 0 {
			c.out = append(c.out, `\n\n`...)
		}
		c.out = t.appendContent(c.out)
	}
	c.out = append(c.out, '"')
	if !b.toolUseID.empty() {
		c.out = b.toolUseID.appendTo(appendKey(c.out, "tool_call_id"))
	}
	c.out = append(c.out, '}')
}

// result reads a tool_result's content (a string or blocks, not null) into
// c.texts and c.media.
func (c *anthropicConv) result(s *scanner) bool {
	switch s.Peek() {
	case '"':
		l, ok := s.literal()
		c.texts = append(c.texts, l)
		return ok
	case '[':
		return s.array(func() bool {
			b, ok := c.readBlock(s, &prefixResult, false)
			switch {
			case !ok:
				return false
			case b.typ.is("text"):
				if b.text.b != nil {
					c.texts = append(c.texts, b.text)
				}
			case b.typ.is("image"), b.typ.is("document"):
				p, ok := mediaPart(&b)
				if !ok {
					return false
				}
				c.media = append(c.media, p)
			default:
				return false
			}
			return true
		})
	}
	return false
}

// readBlock reads a content block, reporting its unknown keys, its
// cache_control and its citations as removed under p. With results, the
// content of a tool_result whose type comes first is read into c.texts and
// c.media on the way.
func (c *anthropicConv) readBlock(s *scanner, p *blockPrefix, results bool) (b aBlock, ok bool) {
	var (
		citations, cache                   []byte
		context, thinking, signature, data lit
		isError                            optBool
	)
	ok = s.object(func(k []byte) (uint32, bool) {
		switch string(k) {
		case "type":
			return readStr(s, 1<<0, &b.typ)
		case "text":
			return readStr(s, 1<<1, &b.text)
		case "citations":
			return readRaw(s, 1<<2, &citations)
		case "source":
			if s.Null() {
				return 1 << 3, true
			}
			b.hasSource = true
			src := &b.source
			return 1 << 3, s.object(func(k []byte) (uint32, bool) {
				switch string(k) {
				case "type":
					return readStr(s, 1<<0, &src.typ)
				case "media_type":
					return readStr(s, 1<<1, &src.mediaType)
				case "data":
					return readStr(s, 1<<2, &src.data)
				case "url":
					return readStr(s, 1<<3, &src.url)
				case "file_id":
					var id lit
					return readStr(s, 1<<4, &id)
				}
				return s.other(k, sourceKeys)
			})
		case "title":
			return readStr(s, 1<<4, &b.title)
		case "context":
			return readStr(s, 1<<5, &context)
		case "id":
			return readStr(s, 1<<6, &b.id)
		case "name":
			return readStr(s, 1<<7, &b.name)
		case "input":
			return readRaw(s, 1<<8, &b.input)
		case "tool_use_id":
			return readStr(s, 1<<9, &b.toolUseID)
		case "content":
			if results && b.typ.is("tool_result") && s.Peek() != 'n' {
				b.resultRead = true
				c.texts, c.media = c.texts[:0], c.media[:0]
				return 1 << 10, c.result(s)
			}
			return readRaw(s, 1<<10, &b.content)
		case "is_error":
			return readBool(s, 1<<11, &isError)
		case "thinking":
			return readStr(s, 1<<12, &thinking)
		case "signature":
			return readStr(s, 1<<13, &signature)
		case "data":
			return readStr(s, 1<<14, &data)
		case "cache_control":
			return readRaw(s, 1<<15, &cache)
		}
		return s.unknown(k, anthropicBlockKeys, p.base, c.r)
	})
	if !ok {
		return b, false
	}
	b.isError = isError == boolTrue
	if cache != nil {
		c.r.add(p.cache)
	}
	if citations != nil {
		c.r.add(p.citations)
	}
	return b, true
}

// mediaPart maps an image or document block onto an OpenAI part, as
// anthropicMediaPart does.
func mediaPart(b *aBlock) (aoPart, bool) {
	if !b.hasSource {
		return aoPart{}, false
	}
	src := &b.source
	if b.typ.is("image") {
		switch {
		case src.typ.is("base64"):
			return aoPart{kind: partImage, media: src.mediaType, data: src.data}, true
		case src.typ.is("url"):
			return aoPart{kind: partImageURL, url: src.url}, true
		}
		return aoPart{}, false
	}
	switch {
	case src.typ.is("base64"):
		name := b.title
		if name.empty() {
			name = documentPDF
		}
		return aoPart{kind: partFile, text: name, media: src.mediaType, data: src.data}, true
	case src.typ.is("text"):
		return aoPart{kind: partText, text: src.data}, true
	}
	return aoPart{}, false
}

// appendPart writes a part as encoding/json writes a wire.ChatContentPart.
func appendPart(dst []byte, p *aoPart) []byte {
	switch p.kind {
	case partText:
		dst = append(dst, `{"type":"text","text":`...)
		dst = p.text.appendTo(dst)
		return append(dst, '}')
	case partImage:
		dst = append(dst, `{"type":"image_url","image_url":{"url":"data:`...)
		dst = appendDataURL(dst, p)
		return append(dst, `"}}`...)
	case partImageURL:
		dst = append(dst, `{"type":"image_url","image_url":{"url":`...)
		dst = p.url.appendTo(dst)
		return append(dst, "}}"...)
	}
	dst = append(dst, `{"type":"file","file":{"filename":`...)
	dst = p.text.appendTo(dst)
	dst = append(dst, `,"file_data":"data:`...)
	dst = appendDataURL(dst, p)
	return append(dst, `"}}`...)
}

// appendDataURL writes the rest of a base64 data: URL, inside a string.
func appendDataURL(dst []byte, p *aoPart) []byte {
	dst = p.media.appendContent(dst)
	dst = append(dst, ";base64,"...)
	return p.data.appendContent(dst)
}

// fastAnthropicSystem is the fast pass of the system conversion: raw is the
// request's system value (nil when absent or null) and msg the OpenAI
// system message (nil for none).
func fastAnthropicSystem(raw []byte, r *removedSet) (msg []byte, ok bool) {
	if raw == nil {
		return nil, true
	}
	c := anthropicConv{r: r}
	s := newScanner(raw)
	switch s.Peek() {
	case '"':
		l, ok := s.literal()
		if !ok {
			return nil, false
		}
		c.texts = append(c.texts, l)
	case '[':
		ok := s.array(func() bool {
			b, ok := c.readBlock(&s, &prefixSystem, false)
			if !ok || !b.typ.is("text") || b.text.b == nil {
				return false
			}
			c.texts = append(c.texts, b.text)
			return true
		})
		if !ok {
			return nil, false
		}
	default:
		return nil, false
	}
	if !s.End() {
		return nil, false
	}
	if len(c.texts) == 0 || len(c.texts) == 1 && c.texts[0].empty() {
		return nil, true
	}
	msg = append(msg, `{"role":"system","content":"`...)
	for i, t := range c.texts {
		if i > 0 {
			msg = append(msg, `\n\n`...)
		}
		msg = t.appendContent(msg)
	}
	return append(msg, `"}`...), true
}

// fastAnthropicTools is the fast pass of the tools conversion: raw is the
// request's tools array (nil when absent); tools is the OpenAI tools array
// (nil for none) and n the number of tools.
func fastAnthropicTools(raw []byte, r *removedSet) (tools []byte, n int, ok bool) {
	return convertArray(raw, func(s *scanner, out []byte) ([]byte, bool) {
		var (
			typ   lit
			def   toolDef
			cache []byte
		)
		ok := s.object(func(k []byte) (uint32, bool) {
			switch string(k) {
			case "type":
				return readStr(s, 1<<0, &typ)
			case "name":
				return readStr(s, 1<<1, &def.name)
			case "description":
				return readStr(s, 1<<2, &def.desc)
			case "input_schema":
				return readRaw(s, 1<<3, &def.schema)
			case "strict":
				return readBool(s, 1<<4, &def.strict)
			case "cache_control":
				return readRaw(s, 1<<5, &cache)
			}
			return s.unknown(k, anthropicToolKeys, "tools", r)
		})
		if !ok || !typ.empty() && !typ.is("custom") {
			return out, false
		}
		if cache != nil {
			r.add("tools.cache_control")
		}
		out = append(out, `{"type":"function","function":{`...)
		out = def.appendTo(out, "parameters")
		return append(out, "}}"...), true
	})
}

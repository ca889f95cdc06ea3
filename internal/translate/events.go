package translate

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/llmgate/gateway/internal/jsonx"
	"github.com/llmgate/gateway/internal/wire"
)

// The stream translators read each upstream event into a small normalized
// struct. A hand-written fast path (fastOpenAIChunk, fastAnthropicEvent)
// handles the hot delta shapes without allocating and copies JSON string
// literals verbatim; anything else goes to a slow path over encoding/json
// (slowOpenAIChunk, slowAnthropicEvent). Both fill the same struct, and
// differential tests and fuzzers pin them to identical results. In both,
// string fields hold JSON string literals (quotes included) that are valid
// JSON text, and an empty or null string is nil.

// chunkInfo is one OpenAI chat.completion.chunk, normalized.
type chunkInfo struct {
	id, model []byte // literals
	hasChoice bool   // the chunk has a choice with index 0 (the only one read)
	content   []byte // literal
	reasoning []byte // literal of reasoning_content, else of reasoning
	refusal   []byte // literal
	tools     []toolDelta
	finish    []byte // finish_reason, decoded
	stopSeq   []byte // literal of vLLM's choice.stop_reason when it is a string
	usage     *wire.ChatUsage
	errRaw    []byte // the chunk's non-null "error" value
	dyn       int    // fast path: non-null content, reasoning, refusal and tool id, name and arguments strings
}

// toolDelta is one tool call fragment of a chunk.
type toolDelta struct {
	index    int
	hasIndex bool
	id, name []byte // literals
	args     []byte // literal
}

func (c *chunkInfo) reset() {
	tools := c.tools[:0]
	*c = chunkInfo{tools: tools}
}

// parseOpenAIChunk fills c from one chunk's data: from the template t of
// the previous delta chunk if data has its shape, else with the fast path
// (learning a new template), else with encoding/json.
func parseOpenAIChunk(data []byte, c *chunkInfo, t *template) error {
	c.reset()
	if t.matchOpenAI(data, c) {
		return nil
	}
	if fastOpenAIChunk(data, c) {
		t.learnOpenAI(data, c)
		return nil
	}
	c.reset()
	return slowOpenAIChunk(data, c)
}

// nonEmpty returns nil for an empty literal ("") so that "" and null agree.
func nonEmpty(lit []byte) []byte {
	if len(lit) <= 2 {
		return nil
	}
	return lit
}

var (
	chunkKeys    = []string{"id", "model", "choices", "usage", "error"}
	choiceKeys   = []string{"index", "delta", "finish_reason", "stop_reason"}
	deltaKeys    = []string{"role", "content", "reasoning_content", "reasoning", "refusal", "tool_calls"}
	toolCallKeys = []string{"index", "id", "type", "function"}
	functionKeys = []string{"name", "arguments"}
)

// fastOpenAIChunk handles chunks with at most one choice, no usage and no
// error. It reports false for anything else (and for malformed JSON).
func fastOpenAIChunk(data []byte, c *chunkInfo) bool {
	s := newScanner(data)
	ok := s.object(func(k []byte) (uint32, bool) {
		switch string(k) {
		case "id":
			lit, _, ok := s.strOrNull()
			c.id = nonEmpty(lit)
			return 1, ok
		case "model":
			lit, _, ok := s.strOrNull()
			c.model = nonEmpty(lit)
			return 2, ok
		case "choices":
			return 4, fastChoices(&s, c)
		case "usage":
			return 8, s.Null()
		case "error":
			return 16, s.Null()
		}
		return s.other(k, chunkKeys)
	})
	return ok && s.End()
}

func fastChoices(s *scanner, c *chunkInfo) bool {
	if s.Null() {
		return true
	}
	if !s.Eat('[') {
		return false
	}
	if s.Eat(']') {
		return true
	}
	index := 0
	var (
		content, reason  []byte
		reasonC, refusal []byte
		finish, stopSeq  []byte
	)
	ntools := len(c.tools)
	ok := s.object(func(k []byte) (uint32, bool) {
		switch string(k) {
		case "index":
			var ok bool
			index, ok = s.Uint()
			return 1, ok
		case "delta":
			return 2, fastDelta(s, c, &content, &reasonC, &reason, &refusal)
		case "finish_reason":
			lit, esc, ok := s.strOrNull()
			finish = inner(nonEmpty(lit))
			return 4, ok && !esc
		case "stop_reason":
			if s.Peek() != '"' {
				return 8, s.skip()
			}
			lit, _, ok := s.str()
			stopSeq = nonEmpty(lit)
			return 8, ok
		}
		return s.other(k, choiceKeys)
	})
	if !ok {
		return false
	}
	if !s.Eat(']') { // a second choice: slow path
		return false
	}
	if index != 0 {
		c.tools = c.tools[:ntools]
		return true
	}
	c.hasChoice = true
	c.content = nonEmpty(content)
	c.reasoning = nonEmpty(reasonC)
	if c.reasoning == nil {
		c.reasoning = nonEmpty(reason)
	}
	c.refusal = nonEmpty(refusal)
	c.finish = finish
	c.stopSeq = stopSeq
	return true
}

func fastDelta(s *scanner, c *chunkInfo, content, reasonC, reason, refusal *[]byte) bool {
	if s.Null() {
		return true
	}
	// text reads a string field into dst.
	text := func(bit uint32, dst *[]byte) (uint32, bool) {
		lit, _, ok := s.strOrNull()
		if dst != nil {
			*dst = lit
			if lit != nil {
				c.dyn++
			}
		}
		return bit, ok
	}
	return s.object(func(k []byte) (uint32, bool) {
		switch string(k) {
		case "role":
			return text(1, nil)
		case "content":
			return text(2, content)
		case "reasoning_content":
			return text(4, reasonC)
		case "reasoning":
			return text(8, reason)
		case "refusal":
			return text(16, refusal)
		case "tool_calls":
			return 32, fastToolCalls(s, c)
		}
		return s.other(k, deltaKeys)
	})
}

func fastToolCalls(s *scanner, c *chunkInfo) bool {
	if s.Null() {
		return true
	}
	if !s.Eat('[') {
		return false
	}
	if s.Eat(']') {
		return true
	}
	for {
		var t toolDelta
		ok := s.object(func(k []byte) (uint32, bool) {
			switch string(k) {
			case "index":
				var ok bool
				t.index, ok = s.Uint()
				t.hasIndex = true
				return 1, ok
			case "id":
				lit, _, ok := s.strOrNull()
				t.id = nonEmpty(lit)
				if lit != nil {
					c.dyn++
				}
				return 2, ok
			case "type":
				_, _, ok := s.strOrNull()
				return 4, ok
			case "function":
				return 8, fastFunction(s, c, &t)
			}
			return s.other(k, toolCallKeys)
		})
		if !ok {
			return false
		}
		c.tools = append(c.tools, t)
		more, ok := s.Next(']')
		if !ok {
			return false
		}
		if !more {
			return true
		}
	}
}

func fastFunction(s *scanner, c *chunkInfo, t *toolDelta) bool {
	if s.Null() {
		return true
	}
	return s.object(func(k []byte) (uint32, bool) {
		var dst *[]byte
		var bit uint32
		switch string(k) {
		case "name":
			bit, dst = 1, &t.name
		case "arguments":
			bit, dst = 2, &t.args
		default:
			return s.other(k, functionKeys)
		}
		lit, _, ok := s.strOrNull()
		*dst = nonEmpty(lit)
		if lit != nil {
			c.dyn++
		}
		return bit, ok
	})
}

// quoteLit returns the JSON literal of a decoded string, nil for "" or nil.
func quoteLit(p *string) []byte {
	if p == nil || *p == "" {
		return nil
	}
	return jsonx.AppendQuote(nil, *p)
}

// slowOpenAIChunk decodes a chunk with encoding/json.
func slowOpenAIChunk(data []byte, c *chunkInfo) error {
	var v wire.ChatCompletionChunk
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("translate: invalid OpenAI stream chunk: %w", err)
	}
	if !isNull(v.Error) {
		c.errRaw = v.Error
		return nil
	}
	c.id = quoteLit(&v.ID)
	c.model = quoteLit(&v.Model)
	c.usage = v.Usage
	for i := range v.Choices {
		ch := &v.Choices[i]
		if ch.Index != 0 {
			continue
		}
		c.hasChoice = true
		d := &ch.Delta
		c.content = quoteLit(d.Content)
		c.reasoning = quoteLit(d.ReasoningContent)
		if c.reasoning == nil {
			c.reasoning = quoteLit(d.Reasoning)
		}
		c.refusal = quoteLit(d.Refusal)
		if ch.FinishReason != nil && *ch.FinishReason != "" {
			c.finish = []byte(*ch.FinishReason)
		}
		if raw := bytes.TrimSpace(ch.StopReason); jsonx.KindOf(raw) == jsonx.String {
			var s string
			_ = json.Unmarshal(raw, &s)
			c.stopSeq = quoteLit(&s)
		}
		for j := range d.ToolCalls {
			tc := &d.ToolCalls[j]
			t := toolDelta{id: quoteLit(&tc.ID), name: quoteLit(&tc.Function.Name), args: quoteLit(&tc.Function.Arguments)}
			if tc.Index != nil {
				if *tc.Index < 0 || *tc.Index > 1<<30 {
					return fmt.Errorf("translate: invalid tool call index %d", *tc.Index)
				}
				t.index, t.hasIndex = int(*tc.Index), true
			}
			c.tools = append(c.tools, t)
		}
		break
	}
	return nil
}

// anthropicEvent is one Anthropic stream event, normalized. The fast path
// fills only typ, index and the delta fields; the slow path also full.
type anthropicEvent struct {
	typ       []byte // decoded event type
	index     int
	deltaType []byte // decoded delta type
	text      []byte // literals of the delta's fields
	partial   []byte
	thinking  []byte
	signature []byte
	full      *wire.StreamEvent // slow path only
	dyn       int               // fast path: non-null text, partial_json, thinking and signature strings
}

var (
	eventKeys      = []string{"type", "message", "index", "content_block", "delta", "usage", "error"}
	eventDeltaKeys = []string{"type", "text", "partial_json", "thinking", "signature", "stop_reason", "stop_sequence"}
)

// parseAnthropicEvent fills e from one event's data, as parseOpenAIChunk
// does.
func parseAnthropicEvent(data []byte, e *anthropicEvent, t *template) error {
	*e = anthropicEvent{}
	if t.matchAnthropic(data, e) {
		return nil
	}
	if fastAnthropicEvent(data, e) {
		t.learnAnthropic(data, e)
		return nil
	}
	*e = anthropicEvent{}
	return slowAnthropicEvent(data, e)
}

// fastAnthropicEvent handles events made only of type, index and a
// content delta: content_block_delta, content_block_stop, message_stop and
// ping.
func fastAnthropicEvent(data []byte, e *anthropicEvent) bool {
	s := newScanner(data)
	ok := s.object(func(k []byte) (uint32, bool) {
		switch string(k) {
		case "type":
			lit, esc, ok := s.strOrNull()
			e.typ = inner(lit)
			return 1, ok && !esc
		case "index":
			var ok bool
			e.index, ok = s.Uint()
			return 2, ok
		case "delta":
			return 4, fastEventDelta(&s, e)
		case "message", "content_block", "usage", "error":
			return 0, false
		}
		return s.other(k, eventKeys)
	})
	return ok && s.End()
}

func fastEventDelta(s *scanner, e *anthropicEvent) bool {
	if s.Null() {
		return true
	}
	return s.object(func(k []byte) (uint32, bool) {
		var dst *[]byte
		var bit uint32
		switch string(k) {
		case "type":
			lit, esc, ok := s.strOrNull()
			e.deltaType = inner(lit)
			return 1, ok && !esc
		case "text":
			bit, dst = 2, &e.text
		case "partial_json":
			bit, dst = 4, &e.partial
		case "thinking":
			bit, dst = 8, &e.thinking
		case "signature":
			bit, dst = 16, &e.signature
		case "stop_reason", "stop_sequence":
			return 0, false
		default:
			return s.other(k, eventDeltaKeys)
		}
		lit, _, ok := s.strOrNull()
		*dst = nonEmpty(lit)
		if lit != nil {
			e.dyn++
		}
		return bit, ok
	})
}

// slowAnthropicEvent decodes an event with encoding/json.
func slowAnthropicEvent(data []byte, e *anthropicEvent) error {
	var v wire.StreamEvent
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("translate: invalid Anthropic stream event: %w", err)
	}
	if v.Index < 0 || v.Index > 1<<30 {
		return fmt.Errorf("translate: invalid content block index %d", v.Index)
	}
	e.full = &v
	if v.Type != "" {
		e.typ = []byte(v.Type)
	}
	e.index = int(v.Index)
	if d := v.Delta; d != nil {
		if d.Type != "" {
			e.deltaType = []byte(d.Type)
		}
		e.text = quoteLit(d.Text)
		e.partial = quoteLit(d.PartialJSON)
		e.thinking = quoteLit(d.Thinking)
		e.signature = quoteLit(d.Signature)
	}
	return nil
}

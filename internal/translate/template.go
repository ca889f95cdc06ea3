package translate

import "bytes"

// A stream's delta events differ from one another only in one string: the
// text, reasoning or argument fragment. The translators remember the shape
// of the last delta event as a template: its bytes before and after that
// one string literal, and what the rest of the event parsed to. An event
// that starts with the same prefix, ends with the same suffix and has
// exactly one valid string literal in between parses to the same result
// with that literal (a JSON string token cannot change how anything around
// it parses), so it is read with two byte comparisons and one string scan.
// The template is learnt from events the fast path accepted, and only when
// that one string was the event's only non-null varying field, so that no
// value can depend on whether the new literal is empty.

// Template slots: which field the varying literal fills.
const (
	slotNone uint8 = iota
	slotContent
	slotReasoning
	slotRefusal
	slotArgs
	slotText
	slotPartial
	slotThinking
	slotSignature
)

// template is the learnt shape of a delta event. The zero value matches
// nothing.
type template struct {
	slot           uint8
	prefix, suffix []byte // copies

	// OpenAI chunks: the offsets of the id and model literals in the
	// event (in the prefix), -1 when absent; the tool call of an
	// arguments slot.
	idOff, idLen       int
	modelOff, modelLen int
	toolIndex          int
	toolHasIndex       bool

	// Anthropic events (decoded, copied).
	typ, deltaType []byte
	index          int
}

// middle returns the string literal between the template's prefix and
// suffix, or ok=false if data does not have the template's shape.
func (t *template) middle(data []byte) (lit []byte, ok bool) {
	if t.slot == slotNone || len(data) < len(t.prefix)+len(t.suffix)+2 ||
		!bytes.HasPrefix(data, t.prefix) || !bytes.HasSuffix(data, t.suffix) {
		return nil, false
	}
	mid := data[len(t.prefix) : len(data)-len(t.suffix)]
	if mid[0] != '"' {
		return nil, false
	}
	s := newScanner(mid)
	lit, _, ok = s.str()
	if !ok || s.Pos != len(mid) {
		return nil, false
	}
	return lit, true
}

// offsetIn returns the offset of sub, a subslice of data, in data.
func offsetIn(data, sub []byte) int { return cap(data) - cap(sub) }

// learn records data as the template with the varying literal lit (a
// subslice of data) in slot.
func (t *template) learn(data, lit []byte, slot uint8) {
	off := offsetIn(data, lit)
	t.slot = slot
	t.prefix = append(t.prefix[:0], data[:off]...)
	t.suffix = append(t.suffix[:0], data[off+len(lit):]...)
}

// matchOpenAI fills c from the template if data has its shape.
func (t *template) matchOpenAI(data []byte, c *chunkInfo) bool {
	if t.slot < slotContent || t.slot > slotArgs {
		return false
	}
	lit, ok := t.middle(data)
	if !ok {
		return false
	}
	c.hasChoice = true
	if t.idOff >= 0 {
		c.id = data[t.idOff : t.idOff+t.idLen]
	}
	if t.modelOff >= 0 {
		c.model = data[t.modelOff : t.modelOff+t.modelLen]
	}
	lit = nonEmpty(lit)
	switch t.slot {
	case slotContent:
		c.content = lit
	case slotReasoning:
		c.reasoning = lit
	case slotRefusal:
		c.refusal = lit
	case slotArgs:
		c.tools = append(c.tools, toolDelta{index: t.toolIndex, hasIndex: t.toolHasIndex, args: lit})
	}
	return true
}

// learnOpenAI makes a template of a chunk the fast path parsed, when its
// shape allows one.
func (t *template) learnOpenAI(data []byte, c *chunkInfo) {
	if c.dyn != 1 || !c.hasChoice || c.finish != nil || c.stopSeq != nil || c.usage != nil || c.errRaw != nil {
		return
	}
	if len(c.tools) > 1 || len(c.tools) == 1 && c.tools[0].args == nil {
		return
	}
	var lit []byte
	var slot uint8
	switch {
	case c.content != nil:
		lit, slot = c.content, slotContent
	case c.reasoning != nil:
		lit, slot = c.reasoning, slotReasoning
	case c.refusal != nil:
		lit, slot = c.refusal, slotRefusal
	case len(c.tools) == 1 && c.tools[0].args != nil:
		lit, slot = c.tools[0].args, slotArgs
		t.toolIndex, t.toolHasIndex = c.tools[0].index, c.tools[0].hasIndex
	default:
		return
	}
	off := offsetIn(data, lit)
	t.idOff, t.idLen = -1, 0
	t.modelOff, t.modelLen = -1, 0
	if c.id != nil {
		if t.idOff = offsetIn(data, c.id); t.idOff > off {
			t.slot = slotNone // only literals before the varying one are kept
			return
		}
		t.idLen = len(c.id)
	}
	if c.model != nil {
		if t.modelOff = offsetIn(data, c.model); t.modelOff > off {
			t.slot = slotNone
			return
		}
		t.modelLen = len(c.model)
	}
	t.learn(data, lit, slot)
}

// matchAnthropic fills e from the template if data has its shape.
func (t *template) matchAnthropic(data []byte, e *anthropicEvent) bool {
	if t.slot < slotText {
		return false
	}
	lit, ok := t.middle(data)
	if !ok {
		return false
	}
	e.typ, e.deltaType, e.index = t.typ, t.deltaType, t.index
	lit = nonEmpty(lit)
	switch t.slot {
	case slotText:
		e.text = lit
	case slotPartial:
		e.partial = lit
	case slotThinking:
		e.thinking = lit
	case slotSignature:
		e.signature = lit
	}
	return true
}

// learnAnthropic makes a template of an event the fast path parsed, when
// its shape allows one.
func (t *template) learnAnthropic(data []byte, e *anthropicEvent) {
	if e.dyn != 1 {
		return
	}
	var lit []byte
	var slot uint8
	switch {
	case e.text != nil:
		lit, slot = e.text, slotText
	case e.partial != nil:
		lit, slot = e.partial, slotPartial
	case e.thinking != nil:
		lit, slot = e.thinking, slotThinking
	case e.signature != nil:
		lit, slot = e.signature, slotSignature
	default:
		return
	}
	t.typ = append(t.typ[:0], e.typ...)
	t.deltaType = append(t.deltaType[:0], e.deltaType...)
	t.index = e.index
	t.learn(data, lit, slot)
}

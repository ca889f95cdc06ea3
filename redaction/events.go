package redaction

import (
	"bytes"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/llmgate/gateway/internal/jsonx"
)

// Format is the dialect of an event stream whose text EventStream
// redacts.
type Format uint8

const (
	// OpenAIChat is an OpenAI chat completion stream: the text is
	// choices[].delta.content, one text per choice index, which ends
	// with the choice's finish_reason (or the stream's [DONE]).
	OpenAIChat Format = iota + 1
	// Anthropic is an Anthropic Messages stream: the text is the
	// delta.text of content_block_delta events of type text_delta, one
	// text per content block, which ends with content_block_stop.
	Anthropic
)

// String returns "openai_chat" or "anthropic".
func (f Format) String() string {
	switch f {
	case OpenAIChat:
		return "openai_chat"
	case Anthropic:
		return "anthropic"
	}
	return "format(" + strconv.Itoa(int(f)) + ")"
}

// DeltaEvent returns the SSE event name of the content events an
// EventStream writes itself (Event's pre, Finish): "content_block_delta"
// for Anthropic, "" (no event field) for OpenAI.
func (f Format) DeltaEvent() string {
	if f == Anthropic {
		return "content_block_delta"
	}
	return ""
}

// maxChoices bounds the choice index of an OpenAI stream (the API allows
// n up to 128).
const maxChoices = 1024

// EventStream redacts the text of one server-sent event stream as it
// passes: pass each event's data to Event and send what it returns. Only
// the text a user reads is redacted (OpenAI delta.content, Anthropic
// text_delta); tool-call arguments, thinking (whose signature covers it)
// and other fields pass unchanged. An event without such text is returned
// as it is, without allocating.
//
// In the AcrossChunks mode the end of a text that could begin a match is
// held back and sent with the next event of the same text; held text
// still unsent when its text ends is sent in a content event of the
// EventStream's own before the event that ends it (Event's pre), or by
// Finish. In the PerChunk mode each event is redacted on its own.
//
// An EventStream is not safe for concurrent use; create one per stream
// with Redactor.NewEventStream.
type EventStream struct {
	r      *Redactor
	format Format
	mode   Mode
	counts Counts

	texts []*core // OpenAI: by choice index; Anthropic: texts[0]
	block int     // Anthropic: the index of the content block in texts[0]

	// OpenAI: the stream's id, created and model, raw, for the chunks
	// the EventStream writes.
	id, created, model []byte

	out, pre, tmp, key, join []byte
	choices                  []choice
}

// choice is what one OpenAI event says of one choice.
type choice struct {
	index    int
	lit      []byte // delta.content, a string literal, or nil
	at       int    // offset of lit in the data
	flags    jsonx.StringFlags
	finished bool // finish_reason is not null
}

// NewEventStream returns an EventStream for a stream of format f.
func (r *Redactor) NewEventStream(f Format, m Mode) *EventStream {
	return &EventStream{r: r, format: f, mode: m, counts: make(Counts, len(r.rules))}
}

// Counts returns the replacements made so far, per rule (a copy).
func (s *EventStream) Counts() Counts { return append(Counts(nil), s.counts...) }

// Event redacts the data of one event (the SSE data field, without the
// "data:" prefix) and returns the data to send in its place — data
// itself, unchanged, when it carries no text that changes — and, in pre,
// the data of a content event to send before it, or nil: that event, in
// the stream's format and named Format.DeltaEvent, carries held-back text
// of a text this event ends. Both stay valid until the next call. Data
// that is not valid JSON (other than OpenAI's [DONE]) returns an error
// wrapping ErrInvalidJSON.
func (s *EventStream) Event(data []byte) (pre, out []byte, err error) {
	if len(bytes.TrimSpace(data)) == 0 || len(s.r.rules) == 0 {
		return nil, data, nil
	}
	s.pre = s.pre[:0]
	if s.format == Anthropic {
		return s.anthropic(data)
	}
	return s.openAI(data)
}

// Finish returns the data of a content event with the text still held
// back, for a stream that ended without ending its texts, or nil.
func (s *EventStream) Finish() []byte {
	s.pre = s.pre[:0]
	if s.format == Anthropic {
		s.flushBlock()
	} else {
		s.flushChoices(nil)
	}
	if len(s.pre) == 0 {
		return nil
	}
	return s.pre
}

// text returns the state of the text with index i, creating it.
func (s *EventStream) text(i int) *core {
	if i >= len(s.texts) {
		s.texts = append(s.texts, make([]*core, i+1-len(s.texts))...)
	}
	if s.texts[i] == nil {
		s.texts[i] = &core{}
		s.texts[i].init(s.r, s.mode, s.counts)
	}
	return s.texts[i]
}

// feed redacts lit, a string literal at data[at:], as the next chunk of
// text t, and appends the data up to and including its replacement to
// s.out; s.out then holds data[:*copied]. With flush, the text ends
// there: what it held back is sent in lit too.
func (s *EventStream) feed(t *core, data, lit []byte, at int, f jsonx.StringFlags, flush bool, copied *int) {
	text := lit[1 : len(lit)-1]
	if f&jsonx.StrEscaped != 0 || f&jsonx.StrNonASCII != 0 && !utf8.Valid(text) {
		s.tmp, _ = jsonx.AppendUnquote(s.tmp[:0], lit)
		text = s.tmp
	}
	got := t.feed(text)
	same := len(got) == len(text) && (len(got) == 0 || &got[0] == &text[0])
	if flush {
		if len(t.buf) > t.off {
			// got may be t's buffer, which flush reuses.
			s.join = append(s.join[:0], got...)
			s.join = append(s.join, t.flush()...)
			got, same = s.join, false
		} else {
			t.flush()
		}
	}
	if same {
		return
	}
	s.out = append(s.out, data[*copied:at]...)
	s.out = jsonx.AppendQuote(s.out, got)
	*copied = at + len(lit)
}

// openAI handles one event of an OpenAI chat stream.
func (s *EventStream) openAI(data []byte) (pre, out []byte, err error) {
	if string(bytes.TrimSpace(data)) == "[DONE]" {
		s.flushChoices(nil)
		return s.preOrNil(), data, nil
	}
	if err := s.parseOpenAI(data); err != nil {
		return nil, nil, err
	}
	s.out = s.out[:0]
	copied := 0
	var ended []int
	for i := range s.choices {
		ch := &s.choices[i]
		if ch.index >= maxChoices {
			return nil, nil, fmt.Errorf("%w: choice index %d", ErrInvalidJSON, ch.index)
		}
		if ch.lit == nil {
			if ch.finished && ch.index < len(s.texts) && s.texts[ch.index] != nil {
				ended = append(ended, ch.index)
			}
			continue
		}
		s.feed(s.text(ch.index), data, ch.lit, ch.at, ch.flags, ch.finished, &copied)
	}
	if len(ended) > 0 {
		s.flushChoices(ended)
	}
	if copied == 0 {
		return s.preOrNil(), data, nil
	}
	s.out = append(s.out, data[copied:]...)
	return s.preOrNil(), s.out, nil
}

func (s *EventStream) preOrNil() []byte {
	if len(s.pre) == 0 {
		return nil
	}
	return s.pre
}

// flushChoices ends the texts of the choices listed (all when nil) and
// writes the held text of those with some in one chunk to s.pre.
func (s *EventStream) flushChoices(which []int) {
	n := 0
	for i, t := range s.texts {
		if t == nil || which != nil && !contains(which, i) {
			continue
		}
		rest := t.flush()
		if len(rest) == 0 {
			continue
		}
		if n == 0 {
			s.pre = append(s.pre, `{"id":`...)
			s.pre = appendRaw(s.pre, s.id, `""`)
			s.pre = append(s.pre, `,"object":"chat.completion.chunk","created":`...)
			s.pre = appendRaw(s.pre, s.created, `0`)
			s.pre = append(s.pre, `,"model":`...)
			s.pre = appendRaw(s.pre, s.model, `""`)
			s.pre = append(s.pre, `,"choices":[`...)
		} else {
			s.pre = append(s.pre, ',')
		}
		n++
		s.pre = append(s.pre, `{"index":`...)
		s.pre = strconv.AppendInt(s.pre, int64(i), 10)
		s.pre = append(s.pre, `,"delta":{"content":`...)
		s.pre = jsonx.AppendQuote(s.pre, rest)
		s.pre = append(s.pre, `},"logprobs":null,"finish_reason":null}`...)
	}
	if n > 0 {
		s.pre = append(s.pre, "]}"...)
	}
}

func contains(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func appendRaw(dst, raw []byte, def string) []byte {
	if raw == nil {
		return append(dst, def...)
	}
	return append(dst, raw...)
}

// parseOpenAI validates a chat completion chunk and fills s.choices (and,
// the first time, s.id, s.created and s.model).
func (s *EventStream) parseOpenAI(data []byte) error {
	s.choices = s.choices[:0]
	sc := jsonx.Scanner{Data: data}
	for key, more, ok := s.nextKey(&sc, true); more || !ok; key, more, ok = s.nextKey(&sc, false) {
		if !ok {
			return s.invalid(&sc)
		}
		start := sc.Pos
		switch {
		case string(key) == "choices" && sc.Peek() == '[':
			if !s.parseChoices(&sc) {
				return s.invalid(&sc)
			}
		case !sc.Skip(jsonx.MaxDepth):
			return s.invalid(&sc)
		case string(key) == "id" && s.id == nil:
			s.id = append([]byte{}, data[start:sc.Pos]...)
		case string(key) == "created" && s.created == nil:
			s.created = append([]byte{}, data[start:sc.Pos]...)
		case string(key) == "model" && s.model == nil:
			s.model = append([]byte{}, data[start:sc.Pos]...)
		}
	}
	return s.end(&sc)
}

// parseChoices reads the choices array.
func (s *EventStream) parseChoices(sc *jsonx.Scanner) bool {
	sc.Pos++ // '['
	if sc.Peek() == ']' {
		sc.Pos++
		return true
	}
	for {
		if sc.Peek() != '{' {
			if !sc.Skip(jsonx.MaxDepth) {
				return false
			}
		} else if !s.parseChoice(sc) {
			return false
		}
		more, ok := sc.Next(']')
		if !ok || !more {
			return ok
		}
	}
}

// parseChoice reads one choice object.
func (s *EventStream) parseChoice(sc *jsonx.Scanner) bool {
	ch := choice{}
	for key, more, ok := s.nextKey(sc, true); more || !ok; key, more, ok = s.nextKey(sc, false) {
		if !ok {
			return false
		}
		switch {
		case string(key) == "index" && isDigit(sc.Peek()):
			if ch.index, ok = sc.Uint(); !ok {
				return false
			}
		case string(key) == "finish_reason":
			if ch.finished = !sc.Null(); ch.finished && !sc.Skip(jsonx.MaxDepth) {
				return false
			}
		case string(key) == "delta" && sc.Peek() == '{':
			for key, more, ok := s.nextKey(sc, true); more || !ok; key, more, ok = s.nextKey(sc, false) {
				if !ok {
					return false
				}
				if string(key) != "content" || sc.Peek() != '"' {
					if !sc.Skip(jsonx.MaxDepth) {
						return false
					}
					continue
				}
				if ch.lit, ch.flags, ok = sc.ReadString(); !ok {
					return false
				}
				ch.at = sc.Pos - len(ch.lit)
			}
		default:
			if !sc.Skip(jsonx.MaxDepth) {
				return false
			}
		}
	}
	s.choices = append(s.choices, ch)
	return true
}

// nextKey reads the next key of an object and its colon: first for the
// object's first member (it reads the '{'), then after each value. more
// is false after the last member; ok is false for malformed JSON.
func (s *EventStream) nextKey(sc *jsonx.Scanner, first bool) (key []byte, more, ok bool) {
	if first {
		if !sc.Eat('{') {
			return nil, false, false
		}
		if sc.Peek() == '}' {
			sc.Pos++
			return nil, false, true
		}
	} else if more, ok = sc.Next('}'); !ok || !more {
		return nil, false, ok
	}
	key, ok = s.readKey(sc)
	return key, ok, ok
}

// readKey reads an object key and its colon, decoding escapes.
func (s *EventStream) readKey(sc *jsonx.Scanner) ([]byte, bool) {
	lit, f, ok := sc.ReadString()
	if !ok || !sc.Eat(':') {
		return nil, false
	}
	if f&jsonx.StrEscaped == 0 {
		return lit[1 : len(lit)-1], true
	}
	s.key, ok = jsonx.AppendUnquote(s.key[:0], lit)
	return s.key, ok
}

func (s *EventStream) end(sc *jsonx.Scanner) error {
	if !sc.End() {
		return s.invalid(sc)
	}
	return nil
}

func (s *EventStream) invalid(sc *jsonx.Scanner) error {
	return fmt.Errorf("%w: %v", ErrInvalidJSON, sc.Err())
}

// anthropicEvent is what one Anthropic event says.
type anthropicEvent struct {
	typ      []byte // the event's type, decoded
	index    int
	hasIndex bool
	textType bool   // delta.type is text_delta (content_block.type is text)
	lit      []byte // delta.text (content_block.text), or nil
	at       int
	flags    jsonx.StringFlags
}

// anthropic handles one event of an Anthropic Messages stream.
func (s *EventStream) anthropic(data []byte) (pre, out []byte, err error) {
	ev, err := s.parseAnthropic(data)
	if err != nil {
		return nil, nil, err
	}
	switch string(ev.typ) {
	case "content_block_delta", "content_block_start":
		if !ev.textType || !ev.hasIndex {
			return nil, data, nil
		}
		if len(s.texts) > 0 && s.block != ev.index {
			s.flushBlock() // a block that did not stop: end its text first
		}
		if string(ev.typ) == "content_block_start" {
			s.flushBlock()
		}
		s.block = ev.index
		if ev.lit == nil {
			return s.preOrNil(), data, nil
		}
		s.out = s.out[:0]
		copied := 0
		s.feed(s.text(0), data, ev.lit, ev.at, ev.flags, false, &copied)
		if copied == 0 {
			return s.preOrNil(), data, nil
		}
		s.out = append(s.out, data[copied:]...)
		return s.preOrNil(), s.out, nil
	case "content_block_stop":
		if ev.hasIndex && ev.index == s.block {
			s.flushBlock()
		}
	case "message_delta", "message_stop":
		s.flushBlock()
	}
	return s.preOrNil(), data, nil
}

// flushBlock ends the current content block's text and writes its held
// text, if any, as a text_delta to s.pre.
func (s *EventStream) flushBlock() {
	if len(s.texts) == 0 || s.texts[0] == nil {
		return
	}
	rest := s.texts[0].flush()
	if len(rest) == 0 {
		return
	}
	s.pre = append(s.pre, `{"type":"content_block_delta","index":`...)
	s.pre = strconv.AppendInt(s.pre, int64(s.block), 10)
	s.pre = append(s.pre, `,"delta":{"type":"text_delta","text":`...)
	s.pre = jsonx.AppendQuote(s.pre, rest)
	s.pre = append(s.pre, "}}"...)
}

// parseAnthropic validates an event and reads what redaction needs.
func (s *EventStream) parseAnthropic(data []byte) (anthropicEvent, error) {
	var ev anthropicEvent
	sc := jsonx.Scanner{Data: data}
	for key, more, ok := s.nextKey(&sc, true); more || !ok; key, more, ok = s.nextKey(&sc, false) {
		if !ok {
			return ev, s.invalid(&sc)
		}
		switch {
		case string(key) == "type" && sc.Peek() == '"':
			lit, f, ok := sc.ReadString()
			if !ok {
				return ev, s.invalid(&sc)
			}
			ev.typ = lit[1 : len(lit)-1]
			if f&jsonx.StrEscaped != 0 {
				ev.typ, _ = jsonx.AppendUnquote(nil, lit)
			}
		case string(key) == "index" && isDigit(sc.Peek()):
			if ev.index, ok = sc.Uint(); !ok {
				return ev, s.invalid(&sc)
			}
			ev.hasIndex = true
		case string(key) == "delta" && sc.Peek() == '{':
			if !s.parseText(&sc, &ev, "text_delta") {
				return ev, s.invalid(&sc)
			}
		case string(key) == "content_block" && sc.Peek() == '{':
			if !s.parseText(&sc, &ev, "text") {
				return ev, s.invalid(&sc)
			}
		default:
			if !sc.Skip(jsonx.MaxDepth) {
				return ev, s.invalid(&sc)
			}
		}
	}
	return ev, s.end(&sc)
}

// parseText reads a delta or content_block object: its type, which is
// textType when it is want, and its text.
func (s *EventStream) parseText(sc *jsonx.Scanner, ev *anthropicEvent, want string) bool {
	for key, more, ok := s.nextKey(sc, true); more || !ok; key, more, ok = s.nextKey(sc, false) {
		if !ok {
			return false
		}
		switch {
		case string(key) == "type" && sc.Peek() == '"':
			lit, f, ok := sc.ReadString()
			if !ok {
				return false
			}
			if f&jsonx.StrEscaped == 0 {
				ev.textType = string(lit[1:len(lit)-1]) == want
			} else {
				v, _ := jsonx.Unquote(lit)
				ev.textType = v == want
			}
		case string(key) == "text" && sc.Peek() == '"':
			if ev.lit, ev.flags, ok = sc.ReadString(); !ok {
				return false
			}
			ev.at = sc.Pos - len(ev.lit)
		default:
			if !sc.Skip(jsonx.MaxDepth) {
				return false
			}
		}
	}
	return true
}

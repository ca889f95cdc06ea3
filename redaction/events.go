package redaction

import (
	"bytes"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/llmgate/gateway/internal/jsonx"
)

// Format is the dialect of an event stream whose text EventStream
// redacts. The zero value is no format; NewEventStream reads any Format
// but Anthropic as OpenAIChat.
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
// with Redactor.NewEventStream (the zero value is not usable).
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

	// The bytes up to the text of the last event parsed in full, and
	// what the event said up to there; the bytes after the text of the
	// last event read from there, and what the whole event said. See
	// parseOpenAI.
	prefix, suffix             []byte
	hasSuffix                  bool
	prefixChoice, suffixChoice choice
	prefixEvent, suffixEvent   anthropicEvent
	cand                       int // during a parse: where the text starts; -1 none yet, -2 not noted
	candChoice                 choice
	candEvent                  anthropicEvent
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
// itself, unchanged, when it carries no text that changes (such an event
// is not parsed when no text holds anything back and it has no member
// that could be text, so it is not checked either) — and, in pre,
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
	if !bytes.HasPrefix(data, s.prefix) || len(s.prefix) == 0 {
		// Not a text event like the last: maybe no text event at all.
		if !s.pending() && !mayHoldText(data, s.format) {
			return nil, data, nil
		}
	}
	if s.format == Anthropic {
		return s.anthropic(data)
	}
	return s.openAI(data)
}

// mayHoldText reports whether data may have a member that holds text: a
// key is a string literal, written with its quotes unescaped, or with a
// backslash.
func mayHoldText(data []byte, f Format) bool {
	key := `"content"`
	if f == Anthropic {
		key = `"text"`
	}
	return bytes.Contains(data, []byte(key)) || bytes.IndexByte(data, '\\') >= 0
}

// pending reports whether any text holds something back.
func (s *EventStream) pending() bool {
	for _, t := range s.texts {
		if t != nil && len(t.buf) > t.off {
			return true
		}
	}
	return false
}

// Finish returns the data of a content event with the text still held
// back, for a stream that ended without ending its texts (no [DONE], no
// content_block_stop), or nil. Call it when the upstream's stream ends,
// before writing events of one's own, such as an in-stream error.
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
// the first time, s.id, s.created and s.model). The chunks of a stream
// repeat the same bytes up to their content: an event that starts with
// the bytes the last full parse read up to the content of its first
// choice is read from there on, since the same bytes leave a parser in
// the same state; and one that also ends with the bytes after the text
// of the last event read that way says what that one said.
func (s *EventStream) parseOpenAI(data []byte) error {
	s.choices = s.choices[:0]
	sc := jsonx.Scanner{Data: data}
	if n := len(s.prefix); n > 0 && len(data) > n && bytes.Equal(data[:n], s.prefix) {
		sc.Pos, s.cand = n, -2
		ch := s.prefixChoice
		if !s.content(&sc, &ch) {
			return s.invalid(&sc)
		}
		at, end := ch.at, sc.Pos
		if s.hasSuffix && ch.lit != nil && bytes.Equal(data[end:], s.suffix) {
			// The rest is the same too: so is what it says.
			ch.index, ch.finished = s.suffixChoice.index, s.suffixChoice.finished
			s.choices = append(s.choices, ch)
			return nil
		}
		ok := s.deltaRest(&sc, &ch) && s.choiceRest(&sc, &ch)
		if ok {
			s.choices = append(s.choices, ch)
			ok = s.choicesRest(&sc) && s.topRest(&sc)
		}
		if !ok {
			return s.invalid(&sc)
		}
		if err := s.end(&sc); err != nil {
			return err
		}
		if c := s.choices; len(c) == 1 && c[0].lit != nil && c[0].at == at {
			s.suffix, s.hasSuffix = append(s.suffix[:0], data[end:]...), true
			s.suffixChoice = c[0]
		}
		return nil
	}
	s.cand = -1
	if !s.top(&sc) {
		return s.invalid(&sc)
	}
	if err := s.end(&sc); err != nil {
		return err
	}
	if s.cand >= 0 {
		s.prefix = append(s.prefix[:0], data[:s.cand]...)
		s.prefixChoice, s.hasSuffix = s.candChoice, false
	}
	return nil
}

// top reads a chunk's object.
func (s *EventStream) top(sc *jsonx.Scanner) bool {
	return sc.Eat('{') && members(sc, '}', func() bool { return s.topMember(sc) })
}

// topRest reads the chunk's members after one, to its end.
func (s *EventStream) topRest(sc *jsonx.Scanner) bool {
	return more(sc, '}', func() bool { return s.topMember(sc) })
}

// topMember reads one member of the chunk.
func (s *EventStream) topMember(sc *jsonx.Scanner) bool {
	key, ok := s.readKey(sc)
	if !ok {
		return false
	}
	if string(key) == "choices" && sc.Peek() == '[' {
		sc.Pos++
		return members(sc, ']', func() bool { return s.choice(sc) })
	}
	start := sc.Pos
	if !sc.Skip(jsonx.MaxDepth) {
		return false
	}
	switch {
	case string(key) == "id" && s.id == nil:
		s.id = append([]byte{}, sc.Data[start:sc.Pos]...)
	case string(key) == "created" && s.created == nil:
		s.created = append([]byte{}, sc.Data[start:sc.Pos]...)
	case string(key) == "model" && s.model == nil:
		s.model = append([]byte{}, sc.Data[start:sc.Pos]...)
	}
	return true
}

// choicesRest reads the choices after one, to the array's end.
func (s *EventStream) choicesRest(sc *jsonx.Scanner) bool {
	return more(sc, ']', func() bool { return s.choice(sc) })
}

// choice reads one element of choices.
func (s *EventStream) choice(sc *jsonx.Scanner) bool {
	if sc.Peek() != '{' {
		return sc.Skip(jsonx.MaxDepth)
	}
	sc.Pos++
	var ch choice
	if !members(sc, '}', func() bool { return s.choiceMember(sc, &ch) }) {
		return false
	}
	s.choices = append(s.choices, ch)
	return true
}

// choiceRest reads a choice's members after one, to its end.
func (s *EventStream) choiceRest(sc *jsonx.Scanner, ch *choice) bool {
	return more(sc, '}', func() bool { return s.choiceMember(sc, ch) })
}

// choiceMember reads one member of a choice.
func (s *EventStream) choiceMember(sc *jsonx.Scanner, ch *choice) bool {
	key, ok := s.readKey(sc)
	if !ok {
		return false
	}
	switch {
	case string(key) == "index" && isDigit(sc.Peek()):
		ch.index, ok = sc.Uint()
		return ok
	case string(key) == "finish_reason":
		ch.finished = !sc.Null()
		return !ch.finished || sc.Skip(jsonx.MaxDepth)
	case string(key) == "delta" && sc.Peek() == '{':
		sc.Pos++
		return members(sc, '}', func() bool { return s.deltaMember(sc, ch) })
	}
	return sc.Skip(jsonx.MaxDepth)
}

// deltaRest reads a delta's members after one, to its end.
func (s *EventStream) deltaRest(sc *jsonx.Scanner, ch *choice) bool {
	return more(sc, '}', func() bool { return s.deltaMember(sc, ch) })
}

// deltaMember reads one member of a delta, noting where the first
// choice's content starts.
func (s *EventStream) deltaMember(sc *jsonx.Scanner, ch *choice) bool {
	key, ok := s.readKey(sc)
	if !ok {
		return false
	}
	if string(key) != "content" {
		return sc.Skip(jsonx.MaxDepth)
	}
	if s.cand == -1 && len(s.choices) == 0 && sc.Peek() == '"' {
		s.cand, s.candChoice = sc.Pos, *ch
	}
	return s.content(sc, ch)
}

// content reads the value of a delta's content.
func (s *EventStream) content(sc *jsonx.Scanner, ch *choice) bool {
	if sc.Peek() != '"' {
		ch.lit = nil
		return sc.Skip(jsonx.MaxDepth)
	}
	lit, f, ok := sc.ReadString()
	ch.lit, ch.flags, ch.at = lit, f, sc.Pos-len(lit)
	return ok
}

// members reads the members of an object (the elements of an array) whose
// opening brace (bracket) sc has just passed, to the closing byte close,
// calling each to read every one. The readers below are functions of
// this shape, called directly, so their closures stay on the stack.
func members(sc *jsonx.Scanner, close byte, each func() bool) bool {
	if sc.Peek() == close {
		sc.Pos++
		return true
	}
	return each() && more(sc, close, each)
}

// more reads the members of an object (the elements of an array) after
// one, to the closing byte close, calling each to read every further one.
// A parse that resumes inside a member goes on with it.
func more(sc *jsonx.Scanner, close byte, each func() bool) bool {
	for {
		next, ok := sc.Next(close)
		if !ok || !next {
			return ok
		}
		if !each() {
			return false
		}
	}
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
	typAt    int    // where typ is in the data; -1 when it was decoded
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
// Like parseOpenAI, it reads an event that starts with the bytes up to
// the text of the last full parse's text_delta from there on.
func (s *EventStream) parseAnthropic(data []byte) (anthropicEvent, error) {
	sc := jsonx.Scanner{Data: data}
	if n := len(s.prefix); n > 0 && len(data) > n && bytes.Equal(data[:n], s.prefix) {
		sc.Pos, s.cand = n, -2
		ev := s.prefixEvent
		if !s.textValue(&sc, &ev) {
			return ev, s.invalid(&sc)
		}
		at, end := ev.at, sc.Pos
		if s.hasSuffix && ev.lit != nil && bytes.Equal(data[end:], s.suffix) {
			lit, flags := ev.lit, ev.flags
			ev = s.suffixEvent
			ev.lit, ev.at, ev.flags = lit, at, flags
			return ev, nil
		}
		if !s.textRest(&sc, &ev, true) || !s.anthropicRest(&sc, &ev) {
			return ev, s.invalid(&sc)
		}
		if err := s.end(&sc); err != nil {
			return ev, err
		}
		if ev.lit != nil && ev.at == at && (ev.typ == nil || 0 <= ev.typAt && ev.typAt < n) {
			s.suffix, s.hasSuffix = append(s.suffix[:0], data[end:]...), true
			s.suffixEvent = ev
			if t := &s.suffixEvent; t.typ != nil {
				t.typ = s.prefix[t.typAt : t.typAt+len(t.typ)]
			}
		}
		return ev, nil
	}
	s.cand = -1
	ev := anthropicEvent{typAt: -1}
	if !sc.Eat('{') || !members(&sc, '}', func() bool { return s.anthropicMember(&sc, &ev) }) {
		return ev, s.invalid(&sc)
	}
	if err := s.end(&sc); err != nil {
		return ev, err
	}
	if s.cand >= 0 && (s.candEvent.typ == nil || s.candEvent.typAt >= 0) {
		s.prefix = append(s.prefix[:0], data[:s.cand]...)
		s.prefixEvent, s.hasSuffix = s.candEvent, false
		if t := &s.prefixEvent; t.typ != nil {
			t.typ = s.prefix[t.typAt : t.typAt+len(t.typ)]
		}
	}
	return ev, nil
}

// anthropicRest reads an event's members after one, to its end.
func (s *EventStream) anthropicRest(sc *jsonx.Scanner, ev *anthropicEvent) bool {
	return more(sc, '}', func() bool { return s.anthropicMember(sc, ev) })
}

// anthropicMember reads one member of an event.
func (s *EventStream) anthropicMember(sc *jsonx.Scanner, ev *anthropicEvent) bool {
	key, ok := s.readKey(sc)
	if !ok {
		return false
	}
	switch {
	case string(key) == "type" && sc.Peek() == '"':
		lit, f, ok := sc.ReadString()
		if !ok {
			return false
		}
		ev.typ, ev.typAt = lit[1:len(lit)-1], sc.Pos-len(lit)+1
		if f&jsonx.StrEscaped != 0 {
			ev.typ, _ = jsonx.AppendUnquote(nil, lit)
			ev.typAt = -1
		}
		return true
	case string(key) == "index" && isDigit(sc.Peek()):
		ev.index, ok = sc.Uint()
		ev.hasIndex = ok
		return ok
	case (string(key) == "delta" || string(key) == "content_block") && sc.Peek() == '{':
		delta := string(key) == "delta"
		sc.Pos++
		return members(sc, '}', func() bool { return s.textMember(sc, ev, delta) })
	}
	return sc.Skip(jsonx.MaxDepth)
}

// textRest reads a delta's (or content_block's) members after one, to
// its end.
func (s *EventStream) textRest(sc *jsonx.Scanner, ev *anthropicEvent, delta bool) bool {
	return more(sc, '}', func() bool { return s.textMember(sc, ev, delta) })
}

// textMember reads one member of a delta (or a content_block): its type,
// which makes textType true when it is text_delta (text), and its text.
func (s *EventStream) textMember(sc *jsonx.Scanner, ev *anthropicEvent, delta bool) bool {
	key, ok := s.readKey(sc)
	if !ok {
		return false
	}
	switch {
	case string(key) == "type" && sc.Peek() == '"':
		lit, f, ok := sc.ReadString()
		if !ok {
			return false
		}
		want := "text"
		if delta {
			want = "text_delta"
		}
		if f&jsonx.StrEscaped == 0 {
			ev.textType = string(lit[1:len(lit)-1]) == want
		} else {
			v, _ := jsonx.Unquote(lit)
			ev.textType = v == want
		}
		return true
	case string(key) == "text" && sc.Peek() == '"':
		if delta && s.cand == -1 {
			s.cand, s.candEvent = sc.Pos, *ev
		}
		return s.textValue(sc, ev)
	}
	return sc.Skip(jsonx.MaxDepth)
}

// textValue reads the value of a text member: a string, or (where a
// parse resumes at the value) something else, skipped as textMember
// skips it.
func (s *EventStream) textValue(sc *jsonx.Scanner, ev *anthropicEvent) bool {
	if sc.Peek() != '"' {
		return sc.Skip(jsonx.MaxDepth)
	}
	lit, f, ok := sc.ReadString()
	ev.lit, ev.flags, ev.at = lit, f, sc.Pos-len(lit)
	return ok
}

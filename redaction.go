package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/llmgate/gateway/internal/sse"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/redaction"
)

// WithRedaction makes the gateway find and replace text (email addresses,
// keys, patterns of one's own: see package redaction) in what passes
// through it: each request body before it is routed, so that no upstream
// and no selection strategy sees the original, and each answer as the
// client receives it (after translation, in the client's dialect): a JSON
// body whole, a chat completions or Messages stream event by event in
// mode m, and the events of any other stream (the Responses API) each on
// its own, as PerChunk does. In the AcrossChunks mode text that could
// begin a match split across two events is held back until the next one;
// what a stream still holds when its upstream ends is sent before the
// stream's closing events, or before an in-stream error.
//
// The rules are compiled by New: every problem is an *OptionError whose
// Field is the rule's position ("[i]"). Event.Redactions counts the
// replacements per rule name. No rules (the default) redacts nothing and
// costs nothing. The last call wins; the rules are copied.
func WithRedaction(rules []redaction.Rule, m redaction.Mode) Option {
	rules = slices.Clone(rules)
	return optionFunc(func(c *config) error {
		var errs []error
		if m != redaction.AcrossChunks && m != redaction.PerChunk {
			errs = append(errs, fieldErr("WithRedaction", "Mode", "unknown mode %d", m))
		}
		r, err := redaction.Compile(rules)
		if err != nil {
			for _, e := range unwrapAll(err) {
				var re *redaction.RuleError
				if errors.As(e, &re) {
					errs = append(errs, elemErr("WithRedaction", re.Index, "%w", re))
				} else {
					errs = append(errs, &OptionError{Option: "WithRedaction", Err: e})
				}
			}
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		c.redactor, c.redactMode = nil, m
		if len(rules) > 0 {
			c.redactor = r
		}
		return nil
	})
}

// unwrapAll returns the errors err joins, or err alone.
func unwrapAll(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// redactRequest applies the redaction rules to the request body, before
// it is parsed. A body the redactor cannot read as JSON is left for
// parseBody to reject; one parseBody would accept anyway is refused, so
// that no body reaches an upstream unredacted.
func (c *call) redactRequest() *Error {
	r := c.cfg.redactor
	if r == nil {
		return nil
	}
	out, counts, err := r.JSON(c.body)
	if err != nil {
		if _, perr := parseBody(c.body); perr != nil {
			return perr
		}
		return &Error{Kind: KindInvalidJSON, Message: "request body is not valid JSON", Err: err}
	}
	c.body, c.reqRedactions = out, counts
	return nil
}

// redactions returns the request's replacements per rule name, or nil.
func (c *call) redactions() map[string]int {
	r := c.cfg.redactor
	if r == nil {
		return nil
	}
	total := redaction.Counts(nil).Add(c.reqRedactions).Add(c.respRedactions)
	if total.Total() == 0 {
		return nil
	}
	m := map[string]int{}
	for i, name := range r.Names() {
		if n := total.Get(i); n > 0 {
			m[name] = n
		}
	}
	return m
}

// redactFilter applies the redaction rules to what the client receives:
// it runs last in the chain, on the client's dialect. Chat completions and
// Messages streams go through an EventStream (which may hold text back,
// finish writes it); other streams have each event's data redacted as a
// JSON document.
type redactFilter struct {
	r          *redaction.Redactor
	es         *redaction.EventStream // nil for a JSON answer or a stream of another surface
	name       string                 // the name of the EventStream's own events
	translated bool                   // b holds the translator's events, not the upstream's
	counts     redaction.Counts       // without es
	out        []byte
	data       []byte // joined data lines of a translated event
}

func (f *redactFilter) init(c *call, p *prepared) {
	*f = redactFilter{r: c.cfg.redactor, translated: p.route.translate}
	if !c.parsed.stream {
		return
	}
	var format redaction.Format
	switch c.surface {
	case providers.SurfaceChatCompletions:
		format = redaction.OpenAIChat
	case providers.SurfaceMessages:
		format = redaction.Anthropic
	default:
		return
	}
	f.es = f.r.NewEventStream(format, c.cfg.redactMode)
	f.name = format.DeltaEvent()
}

func (f *redactFilter) event(ev *sse.Event, _ eventClass, b []byte) ([]byte, error) {
	f.out = f.out[:0]
	if !f.translated {
		// b is the upstream's event, in the client's dialect.
		if ev.IsComment() || len(ev.Data) == 0 && len(ev.Name) == 0 {
			return b, nil
		}
		changed, err := f.one(ev.Name, ev.Data)
		if err != nil || !changed {
			return b, err
		}
		return f.out, nil
	}
	// b holds whole events written by sse.AppendEvent.
	changed := false
	for rest := b; len(rest) > 0; {
		end := bytes.Index(rest, []byte("\n\n"))
		if end < 0 {
			end = len(rest)
		} else {
			end += 2
		}
		block := rest[:end]
		rest = rest[end:]
		name, data, ok := f.parse(block)
		start := len(f.out)
		c := false
		if ok {
			var err error
			if c, err = f.one(name, data); err != nil {
				return nil, err
			}
		}
		if !c {
			f.out = append(f.out[:start], block...)
		}
		changed = changed || c
	}
	if !changed {
		return b, nil
	}
	return f.out, nil
}

// parse reads the name and data of one event written by sse.AppendEvent;
// ok is false when it has no data (a comment).
func (f *redactFilter) parse(block []byte) (name, data []byte, ok bool) {
	f.data = f.data[:0]
	lines := 0
	for len(block) > 0 {
		i := bytes.IndexByte(block, '\n')
		if i < 0 {
			i = len(block)
		}
		line := block[:i]
		block = block[min(i+1, len(block)):]
		switch {
		case bytes.HasPrefix(line, []byte("event: ")):
			name = line[len("event: "):]
		case bytes.HasPrefix(line, []byte("data: ")):
			if lines > 0 {
				f.data = append(f.data, '\n')
			}
			f.data = append(f.data, line[len("data: "):]...)
			lines++
		}
	}
	return name, f.data, lines > 0
}

// one redacts the data of one event named name, appending the events to
// send in its place to f.out when they differ from it.
func (f *redactFilter) one(name, data []byte) (changed bool, err error) {
	if f.es == nil {
		out, counts, err := f.r.JSON(data)
		if err != nil {
			if bytes.Equal(bytes.TrimSpace(data), []byte("[DONE]")) {
				return false, nil
			}
			return false, &redactError{err}
		}
		f.counts = f.counts.Add(counts)
		if counts == nil {
			return false, nil
		}
		f.out = sse.AppendEvent(f.out, string(name), out)
		return true, nil
	}
	pre, out, err := f.es.Event(data)
	if err != nil {
		return false, &redactError{err}
	}
	if pre == nil && len(out) == len(data) && (len(out) == 0 || &out[0] == &data[0]) {
		return false, nil
	}
	if pre != nil {
		f.out = sse.AppendEvent(f.out, f.name, pre)
	}
	f.out = sse.AppendEvent(f.out, string(name), out)
	return true, nil
}

func (f *redactFilter) body(b []byte) ([]byte, error) {
	out, counts, err := f.r.JSON(b)
	if err != nil {
		return nil, &redactError{err}
	}
	f.counts = counts
	return out, nil
}

// finish appends to dst an event with the text the stream still holds
// back, if any: call it when the upstream's stream ends, before the
// gateway writes closing or error events of its own.
func (f *redactFilter) finish(dst []byte) []byte {
	if f.es == nil {
		return dst
	}
	if d := f.es.Finish(); d != nil {
		dst = sse.AppendEvent(dst, f.name, d)
	}
	return dst
}

// result returns the replacements made in the answer.
func (f *redactFilter) result() redaction.Counts {
	if f.es != nil {
		return f.es.Counts()
	}
	return f.counts
}

type redactError struct{ err error }

func (e *redactError) Error() string { return fmt.Sprintf("redacting the response: %v", e.err) }
func (e *redactError) Unwrap() error { return e.err }

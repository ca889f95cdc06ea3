package gateway

import (
	"github.com/llmgate/gateway/internal/sse"
	"github.com/llmgate/gateway/internal/translate"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/tokens"
)

// A filter is one step of the path an upstream answer takes to the client,
// written once for JSON bodies and event streams. The chain is built per
// request, in order; each filter sees what the previous one produced. A new
// concern on answers (redaction, caching, ...) becomes a filter, not a
// branch in the relay.
type filter interface {
	// event handles one stream event. ev is the upstream's event (its
	// dialect, classified as class); b is the client bytes so far (ev.Raw
	// at the start of the chain). It returns the bytes to pass on, which
	// may alias b or ev, or nil to drop the event.
	event(ev *sse.Event, class eventClass, b []byte) ([]byte, error)
	// body handles a complete JSON body the same way.
	body(b []byte) ([]byte, error)
}

// chain is a request's filters, in order, with direct access to the two
// whose state the relay also needs (the usage seen, the translator's
// closing and error events). It lives inside the relay, so building it
// allocates only the filters' own state.
type chain struct {
	filters []filter
	buf     [4]filter
	tap     usageTap
	drop    dropUsageChunk
	tr      *translator // nil when the formats match
	redact  redactFilter
	red     *redactFilter // &redact, or nil without redaction
}

// build assembles the chain for candidate p: the usage tap (reading the
// upstream's dialect), the drop of the usage chunk the gateway injected,
// the translation into the client's format, and the redaction of what the
// client receives (WithRedaction).
func (ch *chain) build(c *call, p *prepared) {
	ch.filters = ch.buf[:0]
	ch.tap.format = p.cand.up.format
	anthropic := dialectOf(p.route.surface) == dialectAnthropic
	if c.parsed.stream {
		if anthropic {
			ch.tap.stream = tokens.NewAnthropicTap()
		} else {
			ch.tap.stream = tokens.NewOpenAITap()
		}
	}
	if c.rt.meter != nil {
		if anthropic {
			ch.tap.out = tokens.NewAnthropicOutput()
		} else {
			ch.tap.out = tokens.NewOpenAIOutput()
		}
	}
	ch.filters = append(ch.filters, &ch.tap)
	if !p.route.translate && c.injectUsage(p.cand) && !c.parsed.wantsUsage {
		ch.filters = append(ch.filters, &ch.drop)
	}
	if p.route.translate {
		ch.tr = newTranslator(c, p)
		ch.filters = append(ch.filters, ch.tr)
	}
	if c.cfg.redactor != nil {
		ch.redact.init(c, p)
		ch.red = &ch.redact
		ch.filters = append(ch.filters, ch.red)
	}
}

// event runs one event through the chain.
func (ch *chain) event(ev *sse.Event, class eventClass) ([]byte, error) {
	b := ev.Raw
	for _, f := range ch.filters {
		var err error
		if b, err = f.event(ev, class, b); err != nil || b == nil {
			return nil, err
		}
	}
	return b, nil
}

// body runs a JSON body through the chain.
func (ch *chain) body(b []byte) ([]byte, error) {
	for _, f := range ch.filters {
		var err error
		if b, err = f.body(b); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// usageTap reads the usage the provider reports, in the upstream's
// dialect, without changing a byte.
//
// When the request is metered it also keeps the answer's text (out), so
// that an answer without a usage report (or a stream cut short) can be
// counted once it is over.
type usageTap struct {
	format providers.Format
	stream *tokens.StreamTap
	usage  tokens.Usage
	known  bool
	out    *tokens.OutputCounter // nil when not metered
}

func (t *usageTap) event(ev *sse.Event, _ eventClass, b []byte) ([]byte, error) {
	if !ev.IsComment() {
		t.stream.Observe(ev.Data)
		if t.out != nil {
			t.out.Observe(ev.Data)
		}
	}
	return b, nil
}

func (t *usageTap) body(b []byte) ([]byte, error) {
	if t.format == providers.FormatAnthropic {
		t.usage, t.known = tokens.AnthropicUsage(b)
	} else {
		t.usage, t.known = tokens.OpenAIUsage(b)
	}
	if t.out != nil && !t.known {
		t.out.ObserveResponse(b)
	}
	return b, nil
}

// outputReported reports that the provider's usage includes the final
// output count (a stream's usage can arrive before its end).
func (t *usageTap) outputReported() bool {
	if t.stream != nil {
		return t.stream.OutputReported()
	}
	return t.known
}

// result returns the usage reported so far.
func (t *usageTap) result() (tokens.Usage, bool) {
	if t.stream != nil {
		return t.stream.Usage()
	}
	return t.usage, t.known
}

// dropUsageChunk removes OpenAI's usage-only chunk when the gateway asked
// for it (stream_options.include_usage, to meter the stream) and the client
// did not.
type dropUsageChunk struct{}

func (dropUsageChunk) event(_ *sse.Event, class eventClass, b []byte) ([]byte, error) {
	if class == evUsageOnly {
		return nil, nil
	}
	return b, nil
}

func (dropUsageChunk) body(b []byte) ([]byte, error) { return b, nil }

// translator turns the upstream's answer into the client's format (OpenAI
// chat completions ⇄ Anthropic messages).
type translator struct {
	from, to providers.Format
	stream   *translate.Stream
	opts     translate.ResponseOptions
	out      []byte // client bytes of the current event
}

func newTranslator(c *call, p *prepared) *translator {
	t := &translator{from: p.cand.up.format, to: c.format, opts: translate.ResponseOptions{Now: c.cfg.now}}
	if c.parsed.stream {
		opts := translate.StreamOptions{Now: c.cfg.now, IncludeUsage: c.parsed.wantsUsage}
		if c.estimate != nil {
			// Only when the upstream has not reported usage by its first
			// event (OpenAI streams never have): Anthropic clients read
			// message_start's input_tokens.
			opts.InputTokens = c.estimate.wait
		}
		t.stream = translate.NewStream(t.from, t.to, opts)
	}
	return t
}

func (t *translator) event(ev *sse.Event, _ eventClass, _ []byte) ([]byte, error) {
	if ev.IsComment() {
		return nil, nil // the client's keep-alives are the gateway's own
	}
	var err error
	t.out, err = t.stream.Event(t.out[:0], ev.Name, ev.Data)
	if err != nil {
		// The upstream sent something invalid for its own format.
		return nil, err
	}
	if len(t.out) == 0 {
		return nil, nil
	}
	return t.out, nil
}

func (t *translator) body(b []byte) ([]byte, error) {
	out, err := translate.Response(t.from, t.to, b, t.opts)
	if err != nil {
		return nil, &translateError{err}
	}
	return out, nil
}

// finish appends the closing events of the client's stream: complete, or
// cut short before an error event.
func (t *translator) finish(dst []byte, complete bool) []byte { return t.stream.Finish(dst, complete) }

// errorEvent returns the closing events and an error event in the client's
// dialect.
func (t *translator) errorEvent(status int, msg, code string) []byte {
	t.out = t.stream.Finish(t.out[:0], false)
	t.out = t.stream.ErrorEvent(t.out, status, msg, code)
	return t.out
}

// ping returns a keep-alive in the client's dialect.
func (t *translator) ping() []byte { return t.stream.Ping(nil) }

type translateError struct{ err error }

func (e *translateError) Error() string { return "translating the response: " + e.err.Error() }
func (e *translateError) Unwrap() error { return e.err }

// inputEstimate is the estimate of the client's prompt tokens that an
// Anthropic client's translated stream reports in message_start. It is
// counted while the upstream call is in flight, without tiktoken
// (tokens.QuickEstimate*: within a few percent on whole requests, a fixed
// cost for large ones), so that counting never delays the first byte; the
// provider's own count still arrives with the usage at the end.
type inputEstimate struct {
	encoding string
	done     chan struct{}
	n        int64
}

// estimateInput starts estimating the prompt in the encoding of cand's
// model, unless an estimate in that encoding is under way.
func (c *call) estimateInput(cand *candidate) {
	encoding := ""
	if cand.model != nil {
		encoding = cand.model.Encoding
	}
	if c.estimate != nil && c.estimate.encoding == encoding {
		return
	}
	e := &inputEstimate{encoding: encoding, done: make(chan struct{})}
	c.estimate = e
	body := c.body
	lease := c.bodyLease
	if lease != nil {
		lease.Retain() // the count may outlive the request
	}
	go func() {
		defer close(e.done)
		if lease != nil {
			defer lease.Release()
		}
		defer func() { _ = recover() }() // an estimate is never worth a crash: 0 then
		e.n = tokens.QuickEstimateAnthropicMessages(encoding, body)
	}()
}

// wait returns the estimate once it is counted.
func (e *inputEstimate) wait() int64 {
	<-e.done
	return e.n
}

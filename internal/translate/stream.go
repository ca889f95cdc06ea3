package translate

import (
	"time"

	"github.com/llmgate/gateway/internal/sse"
	"github.com/llmgate/gateway/internal/wire"
	"github.com/llmgate/gateway/providers"
)

// StreamOptions configures a stream translation. The zero value keeps the
// upstream's model, uses the current time, omits the OpenAI usage chunk and
// reports 0 input tokens in a translated message_start.
type StreamOptions struct {
	// ClientModel is the model name to report to the client; "" keeps the
	// upstream's.
	ClientModel string
	// Now gives the time written as OpenAI's "created" (read once, at the
	// first chunk); nil means time.Now.
	Now func() time.Time
	// IncludeUsage reports that an OpenAI client asked for
	// stream_options.include_usage: the usage chunk (with "choices": [])
	// is emitted before [DONE].
	IncludeUsage bool
	// InputTokens, when translating OpenAI→Anthropic, estimates the prompt
	// tokens for message_start.usage.input_tokens when the provider has not
	// reported usage in the first chunk. It is called at most once, while
	// the first event is translated, so it must be cheap: the gateway
	// passes tokens.QuickEstimateAnthropicMessages of the client's body
	// (or a value it computed while waiting for the upstream), never an
	// exact tiktoken count. nil means 0. The package itself never counts
	// tokens.
	InputTokens func() int64
}

// Stream translates one upstream server-sent event stream into the
// client's stream format. It is an explicit state machine: events go in
// one at a time through Event, and complete client events come out,
// appended to the caller's buffer; Finish appends what is still owed when
// the upstream ends. A Stream belongs to one request and is not safe for
// concurrent use.
//
// Create one with NewStream; the zero Stream is not usable.
type Stream struct {
	from, to providers.Format
	a2o      *anthropicToOpenAI
	o2a      *openAIToAnthropic
	failed   bool // an error event was written: nothing follows
}

// NewStream returns a Stream translating from the upstream format from into
// the client format to. For from == to it returns a Stream that re-encodes
// events unchanged (the gateway passes same-format streams through without
// one).
func NewStream(from, to providers.Format, opt StreamOptions) *Stream {
	s := &Stream{from: from, to: to}
	switch {
	case from == providers.FormatAnthropic && to == providers.FormatOpenAI:
		s.a2o = newAnthropicToOpenAI(opt)
	case from == providers.FormatOpenAI && to == providers.FormatAnthropic:
		s.o2a = newOpenAIToAnthropic(opt)
	}
	return s
}

// Event consumes one upstream event (its name and data, as read by
// internal/sse; comment-only events have nil data and are ignored) and
// appends the client's SSE bytes to dst: zero or more complete events,
// never a partial one. The data decides what an event is; the name is used
// only for Anthropic data without a "type" and for OpenAI-compatible
// providers that send errors as "event: error". On error dst is returned unchanged and the stream
// should be ended with ErrorEvent: the upstream sent something that is not
// valid for its format (malformed JSON, an impossible index), which is
// never skipped silently. Events after the upstream's terminal event or
// after an error event are ignored.
func (s *Stream) Event(dst []byte, name, data []byte) ([]byte, error) {
	if s.failed {
		return dst, nil
	}
	switch {
	case s.a2o != nil:
		return s.a2o.event(dst, name, data)
	case s.o2a != nil:
		return s.o2a.event(dst, name, data)
	}
	if data == nil {
		return dst, nil
	}
	return sse.AppendEvent(dst, string(name), data), nil
}

// Finish is called when the upstream stream has ended. complete reports
// whether the upstream's terminal event was seen (see Done). With complete,
// Finish appends the closing events still owed to the client: for an
// OpenAI client the finish chunk, the usage chunk (with IncludeUsage) and
// "data: [DONE]"; for an Anthropic client the open blocks' stops,
// message_delta and message_stop. Without complete it appends nothing that
// would look like a normal end (the gateway appends an error event itself
// with ErrorEvent). Finish after an error event appends nothing.
func (s *Stream) Finish(dst []byte, complete bool) []byte {
	if s.failed || !complete {
		return dst
	}
	switch {
	case s.a2o != nil:
		return s.a2o.finish(dst)
	case s.o2a != nil:
		return s.o2a.finishStream(dst)
	}
	return dst
}

// Done reports whether the upstream's terminal event has been consumed:
// Anthropic message_stop or error, OpenAI "data: [DONE]" or an error chunk.
// The gateway passes it to Finish as complete. A same-format Stream does not
// track events and always reports false.
func (s *Stream) Done() bool {
	switch {
	case s.a2o != nil:
		return s.a2o.done
	case s.o2a != nil:
		return s.o2a.done
	}
	return false
}

// ErrorEvent appends an in-stream error event in the client's format and
// ends the stream: nothing is appended by later calls except Ping. For an
// OpenAI client it is an unnamed data event {"error":{"message","type",
// "param":null,"code"}} (type from status, code as given or null); for an
// Anthropic client "event: error" with {"type":"error","error":{"type",
// "message","code"}} (type from status, code left out when empty). Open Anthropic content blocks are left
// open, as the Messages API itself does, so that SDK accumulators report
// this error rather than a JSON error for a cut-off tool input.
func (s *Stream) ErrorEvent(dst []byte, status int, message, code string) []byte {
	if s.failed || s.a2o != nil && s.a2o.failed || s.o2a != nil && s.o2a.failed {
		return dst // an error event was written already
	}
	s.failed = true
	if s.to == providers.FormatAnthropic {
		return appendAnthropicErrorEvent(dst, wire.AnthropicErrorType(status), message, code)
	}
	return appendOpenAIErrorEvent(dst, message, wire.OpenAIErrorType(status), code)
}

// Ping appends a keep-alive in the client's format, so the gateway can keep
// an idle translated stream alive: "event: ping" with {"type":"ping"} for
// Anthropic clients, the SSE comment ": ping" for OpenAI clients.
func (s *Stream) Ping(dst []byte) []byte {
	if s.to == providers.FormatAnthropic {
		return append(dst, "event: ping\ndata: {\"type\":\"ping\"}\n\n"...)
	}
	return append(dst, ": ping\n\n"...)
}

// HasContent reports whether a client-visible content event has been
// produced: text, reasoning or a tool call (for Anthropic clients a
// content_block_start), or the final stop (finish chunk, message_delta).
// Events before that (role chunk, message_start) are preamble that the
// gateway may hold back and discard on failover.
func (s *Stream) HasContent() bool {
	switch {
	case s.a2o != nil:
		return s.a2o.content
	case s.o2a != nil:
		return s.o2a.content
	}
	return false
}

func appendOpenAIErrorEvent(dst []byte, msg, typ, code string) []byte {
	dst = append(dst, "data: "...)
	dst = appendOpenAIError(dst, msg, typ, code)
	return append(dst, "\n\n"...)
}

func appendAnthropicErrorEvent(dst []byte, typ, msg, code string) []byte {
	dst = append(dst, "event: error\ndata: "...)
	dst = appendAnthropicError(dst, typ, msg, code)
	return append(dst, "\n\n"...)
}

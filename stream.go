package gateway

import (
	"bytes"
	"mime"

	"github.com/llmgate/gateway/internal/jsonx"
	"github.com/llmgate/gateway/internal/sse"
	"github.com/llmgate/gateway/internal/wire"
	"github.com/llmgate/gateway/providers"
)

// eventClass is what an upstream stream event means for the commit point.
type eventClass uint8

const (
	evPreamble  eventClass = iota // carries no content yet (role-only chunk, message_start, ping, comments)
	evContent                     // content: commits the response
	evEnd                         // the stream's terminal event ([DONE], message_stop, response.completed)
	evError                       // an in-stream error from the upstream
	evUsageOnly                   // OpenAI's usage-only chunk (choices: [])
)

// streamDialect knows how to read the events of one upstream stream shape.
type streamDialect uint8

const (
	dialectOpenAIChat streamDialect = iota
	dialectOpenAIResponses
	dialectAnthropic
)

func dialectOf(surface providers.Surface) streamDialect {
	switch surface {
	case providers.SurfaceMessages:
		return dialectAnthropic
	case providers.SurfaceResponses:
		return dialectOpenAIResponses
	}
	return dialectOpenAIChat
}

func isEventStream(ct string) bool {
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "text/event-stream"
}

// classifyEvent decides what an upstream event means. Before the commit
// point it inspects the event fully; after it, only cheap byte checks run.
func classifyEvent(d streamDialect, ev *sse.Event, committed bool) eventClass {
	if ev.IsComment() {
		return evPreamble
	}
	switch d {
	case dialectAnthropic:
		name := ev.Name
		if len(name) == 0 {
			name = dataType(ev.Data)
		}
		switch string(name) {
		case "message_start", "ping", "content_block_start":
			return evPreamble
		case "error":
			return evError
		case "message_stop":
			return evEnd
		}
		return evContent
	case dialectOpenAIResponses:
		name := ev.Name
		if len(name) == 0 {
			name = dataType(ev.Data)
		}
		switch string(name) {
		case "response.created", "response.in_progress", "response.queued", "response.output_item.added", "response.content_part.added":
			return evPreamble
		case "error", "response.failed":
			return evError
		case "response.completed", "response.incomplete":
			return evEnd
		}
		return evContent
	}
	data := bytes.TrimSpace(ev.Data)
	if bytes.Equal(data, []byte("[DONE]")) {
		return evEnd
	}
	if bytes.HasPrefix(data, []byte(`{"error"`)) {
		return evError
	}
	if committed {
		if isUsageOnlyChunk(data) {
			return evUsageOnly
		}
		return evContent
	}
	return classifyOpenAIChunk(data)
}

// classifyOpenAIChunk inspects a chat.completion.chunk before the commit
// point: a chunk whose deltas carry only a role (and empty content) and no
// finish reason is preamble.
func classifyOpenAIChunk(data []byte) eventClass {
	class := evPreamble
	hasChoices := false
	usage := false
	err := jsonx.Members(data, func(m jsonx.Member) bool {
		switch {
		case m.KeyIs("error"):
			if jsonx.KindOf(m.Value) != jsonx.Null {
				class = evError
				return false
			}
		case m.KeyIs("usage"):
			usage = jsonx.KindOf(m.Value) == jsonx.Object
		case m.KeyIs("choices"):
			_ = jsonx.Elements(m.Value, func(choice []byte) bool {
				hasChoices = true
				_ = jsonx.Members(choice, func(cm jsonx.Member) bool {
					switch {
					case cm.KeyIs("finish_reason"):
						if jsonx.KindOf(cm.Value) != jsonx.Null {
							class = evContent
						}
					case cm.KeyIs("delta"):
						_ = jsonx.Members(cm.Value, func(dm jsonx.Member) bool {
							if dm.KeyIs("role") {
								return true
							}
							switch string(dm.Value) {
							case `""`, "null", "[]", "{}":
							default:
								class = evContent
							}
							return true
						})
					}
					return true
				})
				return true
			})
		}
		return true
	})
	if err != nil {
		// Not JSON: let the client see it; it is content as far as we know.
		return evContent
	}
	if class == evPreamble && !hasChoices && usage {
		return evUsageOnly
	}
	return class
}

// isUsageOnlyChunk reports an OpenAI chunk with an empty choices array and a
// usage object, the chunk stream_options.include_usage adds.
func isUsageOnlyChunk(data []byte) bool {
	i := bytes.Index(data, []byte(`"choices"`))
	if i < 0 {
		return false
	}
	rest := data[i+len(`"choices"`):]
	rest = bytes.TrimLeft(rest, " \t\r\n")
	if len(rest) == 0 || rest[0] != ':' {
		return false
	}
	rest = bytes.TrimLeft(rest[1:], " \t\r\n")
	if len(rest) == 0 || rest[0] != '[' {
		return false
	}
	rest = bytes.TrimLeft(rest[1:], " \t\r\n")
	return len(rest) > 0 && rest[0] == ']' && bytes.Contains(data, []byte(`"usage"`))
}

// dataType returns the "type" member of a JSON event payload.
func dataType(data []byte) []byte {
	var out []byte
	_ = jsonx.Members(data, func(m jsonx.Member) bool {
		if m.KeyIs("type") && jsonx.KindOf(m.Value) == jsonx.String {
			out = m.Value[1 : len(m.Value)-1]
			return false
		}
		return true
	})
	return out
}

// streamErrorMessage extracts the message of an in-stream error event.
func streamErrorMessage(d streamDialect, ev *sse.Event) string {
	msg := upstreamErrorMessage(ev.Data)
	if d == dialectOpenAIResponses && msg == "" {
		msg = truncate(string(ev.Data), 256)
	}
	if msg == "" {
		msg = "upstream reported an error in the stream"
	}
	return msg
}

// upstreamErrorMessage extracts the message of an upstream error body in
// either format (or of the looser shapes compatible providers use), or a
// short prefix of a body that is not JSON.
func upstreamErrorMessage(body []byte) string {
	msg, _ := wire.ErrorMessage(body)
	return truncate(msg, 512)
}

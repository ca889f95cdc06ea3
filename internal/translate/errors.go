package translate

import (
	"net/http"

	"github.com/llmgate/gateway/internal/jsonx"
	"github.com/llmgate/gateway/internal/wire"
	"github.com/llmgate/gateway/providers"
)

// statusOverloaded is Anthropic's non-standard "overloaded" status.
const statusOverloaded = 529

// ErrorResponse translates an upstream error response (status and body in
// format from) into the status and body the client's SDK (format to)
// expects, carrying the upstream's message. The table is in the package
// documentation; in short, the status is kept except Anthropic 529
// overloaded → OpenAI 503 and OpenAI 503 → Anthropic 529 overloaded_error,
// and a status below 400 (an upstream that failed without saying so)
// becomes 502. The OpenAI body is {"error":{"message","type","param":null,
// "code"}} with the Anthropic error type as code; the Anthropic body is
// {"type":"error","error":{"type","message"}}. Bodies that are not JSON
// are quoted (up to 512 bytes) as the message. from == to returns the
// input unchanged.
func ErrorResponse(from, to providers.Format, status int, body []byte) (int, []byte) {
	if from == to {
		return status, body
	}
	if status < 400 || status > 599 {
		status = http.StatusBadGateway
	}
	msg, upstreamType := wire.ErrorMessage(body)
	if msg == "" {
		msg = http.StatusText(status)
		if msg == "" {
			msg = "upstream error"
		}
	}
	if to == providers.FormatOpenAI {
		code := upstreamType
		if from == providers.FormatAnthropic && code == "" {
			code = wire.AnthropicErrorType(status)
		}
		if status == statusOverloaded {
			status = http.StatusServiceUnavailable
		}
		return status, appendOpenAIError(nil, msg, wire.OpenAIErrorType(status), code)
	}
	if status == http.StatusServiceUnavailable {
		status = statusOverloaded
	}
	return status, appendAnthropicError(nil, wire.AnthropicErrorType(status), msg, "")
}

// appendOpenAIError appends {"error":{"message","type","param":null,
// "code"}}; an empty code is written as null.
func appendOpenAIError(dst []byte, msg, typ, code string) []byte {
	dst = append(dst, `{"error":{"message":`...)
	dst = jsonx.AppendQuote(dst, msg)
	dst = append(dst, `,"type":`...)
	dst = jsonx.AppendQuote(dst, typ)
	dst = append(dst, `,"param":null,"code":`...)
	if code == "" {
		dst = append(dst, "null"...)
	} else {
		dst = jsonx.AppendQuote(dst, code)
	}
	return append(dst, "}}"...)
}

// appendAnthropicError appends {"type":"error","error":{"type","message"}}.
func appendAnthropicError(dst []byte, typ, msg, code string) []byte {
	dst = append(dst, `{"type":"error","error":{"type":`...)
	dst = jsonx.AppendQuote(dst, typ)
	dst = append(dst, `,"message":`...)
	dst = jsonx.AppendQuote(dst, msg)
	if code != "" {
		// The gateway's stable code, as in its own Anthropic-shaped errors.
		dst = append(dst, `,"code":`...)
		dst = jsonx.AppendQuote(dst, code)
	}
	return append(dst, "}}"...)
}

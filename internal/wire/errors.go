package wire

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/llmgate/gateway/internal/jsonx"
)

// OpenAIErrorType returns the OpenAI error "type" for an HTTP status, as the
// OpenAI API and SDKs use it. The gateway's own errors and translated
// upstream errors share this table.
func OpenAIErrorType(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusForbidden:
		return "permission_error"
	case status == http.StatusNotFound:
		return "not_found_error"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status >= 500:
		return "server_error"
	}
	return "invalid_request_error"
}

// AnthropicErrorType returns the Anthropic error "type" for an HTTP status
// (529 is Anthropic's "overloaded").
func AnthropicErrorType(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusPaymentRequired:
		return "billing_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestTimeout, http.StatusGatewayTimeout:
		return "timeout_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case 529, http.StatusServiceUnavailable:
		return "overloaded_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

// MaxErrorText caps the bytes of a non-JSON upstream error body quoted in
// the translated message.
const MaxErrorText = 512

// ErrorMessage extracts the message and error type (Anthropic type, or
// OpenAI code/type) of an error body in either format, or of the
// {"error":"text"} and {"message":"text"} shapes some compatible providers
// use. A body that is not JSON is returned as text, truncated.
func ErrorMessage(body []byte) (msg, typ string) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return "", ""
	}
	if jsonx.KindOf(body) != jsonx.Object || jsonx.Valid(body) != nil {
		return TruncateText(body), ""
	}
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(body, &v) != nil {
		return TruncateText(body), ""
	}
	e := bytes.TrimSpace(v.Error)
	switch jsonx.KindOf(e) {
	case jsonx.String:
		_ = json.Unmarshal(e, &msg)
		return msg, ""
	case jsonx.Object:
		var eo struct {
			OpenAIError
			Message json.RawMessage `json:"message"`
		}
		if json.Unmarshal(e, &eo) == nil {
			msg = RawText(eo.Message)
			typ = eo.Type
			if c := RawText(eo.Code); c != "" {
				typ = c
			}
			return msg, typ
		}
	}
	return v.Message, ""
}

// RawText returns a JSON string's value, or the raw JSON of other values
// (numbers), or "" for null.
func RawText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	switch jsonx.KindOf(raw) {
	case jsonx.String:
		var s string
		_ = json.Unmarshal(raw, &s)
		return s
	case jsonx.Number, jsonx.Bool:
		return string(raw)
	}
	return ""
}

// TruncateText returns b as valid UTF-8 text, cut to MaxErrorText bytes on
// a rune boundary.
func TruncateText(b []byte) string {
	if len(b) > MaxErrorText {
		b = b[:MaxErrorText]
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

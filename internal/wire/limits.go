package wire

import (
	"bytes"
	"encoding/json"
	"strings"
)

// modelMarkers are words of upstream 400/422 errors that reject a request
// for the model it was sent to rather than for the request itself: its
// context window, its output limit, a parameter, tool or modality it does
// not support, or the model itself. Another model may well accept the same
// request, so such errors fail over.
var modelMarkers = [...]string{
	"context_length", "context length", "context window", "maximum context", "too many tokens",
	"prompt is too long", "reduce the length", "too long", "max_tokens", "max_completion_tokens",
	"output tokens", "unsupported", "not supported", "does not support", "not available",
	"image", "vision", "audio", "pdf", "modalit", "model", "tool use", "tools are not",
}

// accountMarkers are words of upstream 429 errors that mean the limit is
// the account's (quota, billing, credits), not one model's.
var accountMarkers = [...]string{"insufficient_quota", "quota", "billing", "credit", "spend limit", "spending limit"}

// ModelSpecific reports whether an upstream 400 or 422 error body rejects
// the request because of the model it was sent to (context length, output
// tokens, an unsupported parameter, tool or modality, the model itself), so
// that another model may accept it, as opposed to a mistake in the request
// itself, which every model would refuse. Unknown shapes count as
// model-specific: failing over is the safe default.
func ModelSpecific(body []byte) bool {
	msg, typ := ErrorMessage(body)
	if msg == "" && typ == "" {
		return true
	}
	if p := errorParam(body); p == "model" || p == "max_tokens" || p == "max_completion_tokens" {
		return true
	}
	return containsAny(strings.ToLower(typ+" "+msg), modelMarkers[:])
}

// AccountWide reports whether an upstream 429 error body says the limit is
// the whole account's (an exhausted quota or credit balance) rather than a
// per-model rate limit.
func AccountWide(body []byte) bool {
	msg, typ := ErrorMessage(body)
	return containsAny(strings.ToLower(typ+" "+msg), accountMarkers[:])
}

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// errorParam returns the "param" of an OpenAI error body, or "".
func errorParam(body []byte) string {
	if !bytes.Contains(body, []byte(`"param"`)) {
		return ""
	}
	var v struct {
		Error struct {
			Param json.RawMessage `json:"param"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	return strings.ToLower(RawText(v.Error.Param))
}

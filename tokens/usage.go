// Package tokens counts and collects token usage: it reads the usage that
// providers report in JSON responses and streams, and (in counter.go)
// estimates token counts locally with tiktoken when no report is available.
//
// The package imports nothing else from llmgate.
package tokens

import (
	"bytes"
	"encoding/json"
)

// Usage is the token usage of one request. All counts are tokens. The zero
// value means nothing was used (or nothing is known; see Known).
//
// InputTokens is the whole prompt, including the tokens read from or
// written to a prompt cache, so that billing can charge
// InputTokens-CacheReadTokens-CacheWriteTokens at the input price and the
// cached parts at their own prices. OutputTokens includes reasoning tokens;
// ReasoningTokens is the part of OutputTokens spent on hidden reasoning.
type Usage struct {
	InputTokens      int64 `json:"input_tokens"`
	OutputTokens     int64 `json:"output_tokens"`
	CacheReadTokens  int64 `json:"cache_read_tokens,omitempty"`
	CacheWriteTokens int64 `json:"cache_write_tokens,omitempty"`
	ReasoningTokens  int64 `json:"reasoning_tokens,omitempty"`
}

// IsZero reports whether every count is zero.
func (u Usage) IsZero() bool { return u == Usage{} }

// UncachedInputTokens returns the prompt tokens billed at the plain input
// price (never negative).
func (u Usage) UncachedInputTokens() int64 {
	n := u.InputTokens - u.CacheReadTokens - u.CacheWriteTokens
	if n < 0 {
		return 0
	}
	return n
}

// openAIUsage is the usage object of OpenAI chat completions, the responses
// API (input_tokens/output_tokens) and embeddings.
type openAIUsage struct {
	PromptTokens        int64 `json:"prompt_tokens"`
	CompletionTokens    int64 `json:"completion_tokens"`
	InputTokens         int64 `json:"input_tokens"`
	OutputTokens        int64 `json:"output_tokens"`
	PromptTokensDetails *struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	InputTokensDetails *struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	CompletionTokensDetails *struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
	OutputTokensDetails *struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
}

func (o *openAIUsage) usage() Usage {
	u := Usage{InputTokens: o.PromptTokens + o.InputTokens, OutputTokens: o.CompletionTokens + o.OutputTokens}
	if d := o.PromptTokensDetails; d != nil {
		u.CacheReadTokens = d.CachedTokens
	}
	if d := o.InputTokensDetails; d != nil {
		u.CacheReadTokens = d.CachedTokens
	}
	if d := o.CompletionTokensDetails; d != nil {
		u.ReasoningTokens = d.ReasoningTokens
	}
	if d := o.OutputTokensDetails; d != nil {
		u.ReasoningTokens = d.ReasoningTokens
	}
	return u
}

// anthropicUsage is the usage object of Anthropic messages. input_tokens
// there excludes cache reads and writes.
type anthropicUsage struct {
	InputTokens              *int64 `json:"input_tokens"`
	OutputTokens             *int64 `json:"output_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
}

// apply sets the counts present in a, keeping the others: Anthropic stream
// usage is cumulative, so later reports replace earlier ones field by field.
func (a *anthropicUsage) apply(u *Usage) {
	in := u.InputTokens - u.CacheReadTokens - u.CacheWriteTokens
	if a.InputTokens != nil {
		in = *a.InputTokens
	}
	if a.CacheReadInputTokens != nil {
		u.CacheReadTokens = *a.CacheReadInputTokens
	}
	if a.CacheCreationInputTokens != nil {
		u.CacheWriteTokens = *a.CacheCreationInputTokens
	}
	if a.OutputTokens != nil {
		u.OutputTokens = *a.OutputTokens
	}
	u.InputTokens = in + u.CacheReadTokens + u.CacheWriteTokens
}

// hasUsageObject reports whether data contains a "usage" key whose value is
// an object. A quote inside a JSON string is always escaped, so the literal
// bytes `"usage"` followed by ':' can only be a key.
func hasUsageObject(data []byte) bool {
	for {
		i := bytes.Index(data, []byte(`"usage"`))
		if i < 0 {
			return false
		}
		data = data[i+len(`"usage"`):]
		j := 0
		for j < len(data) && (data[j] == ' ' || data[j] == '\t' || data[j] == '\n' || data[j] == '\r') {
			j++
		}
		if j < len(data) && data[j] == ':' {
			j++
			for j < len(data) && (data[j] == ' ' || data[j] == '\t' || data[j] == '\n' || data[j] == '\r') {
				j++
			}
			if j < len(data) && data[j] == '{' {
				return true
			}
		}
	}
}

// OpenAIUsage extracts the usage from an OpenAI-format JSON body (a chat
// completion, a chat.completion.chunk, a responses API response or an
// embeddings response). ok is false when the body reports no usage.
func OpenAIUsage(body []byte) (u Usage, ok bool) {
	if !hasUsageObject(body) {
		return Usage{}, false
	}
	var v struct {
		Usage    *openAIUsage `json:"usage"`
		Response *struct {
			Usage *openAIUsage `json:"usage"`
		} `json:"response"`
		XGroq *struct {
			Usage *openAIUsage `json:"usage"`
		} `json:"x_groq"`
	}
	if json.Unmarshal(body, &v) != nil {
		return Usage{}, false
	}
	switch {
	case v.Usage != nil:
		return v.Usage.usage(), true
	case v.Response != nil && v.Response.Usage != nil:
		return v.Response.Usage.usage(), true
	case v.XGroq != nil && v.XGroq.Usage != nil:
		return v.XGroq.Usage.usage(), true
	}
	return Usage{}, false
}

// AnthropicUsage extracts the usage from an Anthropic Message JSON body.
func AnthropicUsage(body []byte) (u Usage, ok bool) {
	if !hasUsageObject(body) {
		return Usage{}, false
	}
	var v struct {
		Usage *anthropicUsage `json:"usage"`
	}
	if json.Unmarshal(body, &v) != nil || v.Usage == nil {
		return Usage{}, false
	}
	v.Usage.apply(&u)
	return u, true
}

// StreamTap collects the usage reported in a server-sent event stream. It
// is fed every event of one stream, in order, and is not safe for concurrent
// use. The zero value is not usable: construct one with NewOpenAITap or
// NewAnthropicTap.
type StreamTap struct {
	anthropic bool
	usage     Usage
	known     bool
}

// NewOpenAITap returns a tap for OpenAI chat completion and responses API
// streams: usage arrives in a usage chunk (stream_options.include_usage) or
// in response.completed.
func NewOpenAITap() *StreamTap { return &StreamTap{} }

// NewAnthropicTap returns a tap for Anthropic message streams: usage arrives
// in message_start and, cumulatively, in message_delta.
func NewAnthropicTap() *StreamTap { return &StreamTap{anthropic: true} }

// Observe inspects one event's data. It costs one substring search for
// events that carry no usage.
func (t *StreamTap) Observe(data []byte) {
	if !hasUsageObject(data) {
		return
	}
	if !t.anthropic {
		if u, ok := OpenAIUsage(data); ok {
			t.usage, t.known = u, true
		}
		return
	}
	var v struct {
		Usage   *anthropicUsage `json:"usage"`
		Message *struct {
			Usage *anthropicUsage `json:"usage"`
		} `json:"message"`
	}
	if json.Unmarshal(data, &v) != nil {
		return
	}
	if v.Message != nil && v.Message.Usage != nil {
		v.Message.Usage.apply(&t.usage)
		t.known = true
	}
	if v.Usage != nil {
		v.Usage.apply(&t.usage)
		t.known = true
	}
}

// Usage returns the usage seen so far and whether any was reported.
func (t *StreamTap) Usage() (Usage, bool) { return t.usage, t.known }

package tokens

import (
	"bytes"
	"strconv"

	"github.com/llmgate/gateway/internal/jsonx"
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

// jsonInt parses a JSON number holding a token count. Fractions are
// truncated; anything else counts as 0.
func jsonInt(v []byte) int64 {
	var n int64
	for i, c := range v {
		if c < '0' || c > '9' {
			if i > 0 && (c == '.' || c == 'e' || c == 'E') {
				if f, err := strconv.ParseFloat(string(v), 64); err == nil && f >= 0 && f < 1<<62 {
					return int64(f)
				}
			}
			if i == 0 {
				return 0
			}
			return n
		}
		if n > (1<<62)/10 {
			return n
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// isObject reports whether a raw JSON value is an object.
func isObject(v []byte) bool { return len(v) > 0 && v[0] == '{' }

// openAIUsageObject reads an OpenAI usage object: chat completions
// (prompt_tokens, completion_tokens, *_details) and the responses API
// (input_tokens, output_tokens, *_details). It does not allocate.
func openAIUsageObject(v []byte) Usage {
	var u Usage
	_ = jsonx.Members(v, func(m jsonx.Member) bool {
		switch {
		case m.KeyIs("prompt_tokens"), m.KeyIs("input_tokens"):
			u.InputTokens = jsonInt(m.Value)
		case m.KeyIs("completion_tokens"), m.KeyIs("output_tokens"):
			u.OutputTokens = jsonInt(m.Value)
		case m.KeyIs("prompt_tokens_details"), m.KeyIs("input_tokens_details"):
			if isObject(m.Value) {
				_ = jsonx.Members(m.Value, func(d jsonx.Member) bool {
					if d.KeyIs("cached_tokens") {
						u.CacheReadTokens = jsonInt(d.Value)
					}
					return true
				})
			}
		case m.KeyIs("completion_tokens_details"), m.KeyIs("output_tokens_details"):
			if isObject(m.Value) {
				_ = jsonx.Members(m.Value, func(d jsonx.Member) bool {
					if d.KeyIs("reasoning_tokens") {
						u.ReasoningTokens = jsonInt(d.Value)
					}
					return true
				})
			}
		}
		return true
	})
	return u
}

// applyAnthropicUsage sets the counts present in an Anthropic usage object,
// keeping the others: Anthropic stream usage is cumulative, so later
// reports replace earlier ones field by field. input_tokens there excludes
// cache reads and writes.
func applyAnthropicUsage(v []byte, u *Usage) {
	in := u.InputTokens - u.CacheReadTokens - u.CacheWriteTokens
	_ = jsonx.Members(v, func(m jsonx.Member) bool {
		if jsonx.KindOf(m.Value) != jsonx.Number {
			return true
		}
		switch {
		case m.KeyIs("input_tokens"):
			in = jsonInt(m.Value)
		case m.KeyIs("output_tokens"):
			u.OutputTokens = jsonInt(m.Value)
		case m.KeyIs("cache_read_input_tokens"):
			u.CacheReadTokens = jsonInt(m.Value)
		case m.KeyIs("cache_creation_input_tokens"):
			u.CacheWriteTokens = jsonInt(m.Value)
		}
		return true
	})
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
// completion, a chat.completion.chunk, a responses API response or event,
// or an embeddings response). ok is false when the body reports no usage.
// It does not allocate.
func OpenAIUsage(body []byte) (u Usage, ok bool) {
	if !hasUsageObject(body) {
		return Usage{}, false
	}
	_ = jsonx.Members(body, func(m jsonx.Member) bool {
		switch {
		case m.KeyIs("usage"):
			if isObject(m.Value) {
				u, ok = openAIUsageObject(m.Value), true
				return false
			}
		case m.KeyIs("response"), m.KeyIs("x_groq"):
			if isObject(m.Value) {
				_ = jsonx.Members(m.Value, func(r jsonx.Member) bool {
					if r.KeyIs("usage") && isObject(r.Value) {
						u, ok = openAIUsageObject(r.Value), true
						return false
					}
					return true
				})
			}
		}
		return true
	})
	return u, ok
}

// AnthropicUsage extracts the usage from an Anthropic Message JSON body.
func AnthropicUsage(body []byte) (u Usage, ok bool) {
	if !hasUsageObject(body) {
		return Usage{}, false
	}
	_ = jsonx.Members(body, func(m jsonx.Member) bool {
		if m.KeyIs("usage") && isObject(m.Value) {
			applyAnthropicUsage(m.Value, &u)
			ok = true
			return false
		}
		return true
	})
	return u, ok
}

// StreamTap collects the usage reported in a server-sent event stream. It
// is fed every event of one stream, in order, and is not safe for concurrent
// use. The zero value is not usable: construct one with NewOpenAITap or
// NewAnthropicTap.
type StreamTap struct {
	anthropic bool
	usage     Usage
	known     bool
	final     bool // the output count is the provider's last word
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
			t.usage, t.known, t.final = u, true, true
		}
		return
	}
	_ = jsonx.Members(data, func(m jsonx.Member) bool {
		switch {
		case m.KeyIs("usage"):
			if isObject(m.Value) {
				applyAnthropicUsage(m.Value, &t.usage)
				t.known, t.final = true, true
			}
		case m.KeyIs("message"):
			if isObject(m.Value) {
				_ = jsonx.Members(m.Value, func(mm jsonx.Member) bool {
					if mm.KeyIs("usage") && isObject(mm.Value) {
						applyAnthropicUsage(mm.Value, &t.usage)
						t.known = true
					}
					return true
				})
			}
		}
		return true
	})
}

// Usage returns the usage seen so far and whether any was reported.
func (t *StreamTap) Usage() (Usage, bool) { return t.usage, t.known }

// OutputReported reports whether the stream reported its output count:
// OpenAI's usage chunk or response.completed (input and output come
// together), or Anthropic's message_delta. An Anthropic stream reports its
// input in message_start with a placeholder output count (1 or so), so
// after a stream that stopped before message_delta, Usage is known but
// OutputReported is false: the output is then counted from the text
// delivered (OutputCounter).
func (t *StreamTap) OutputReported() bool { return t.final }

package wire

import "encoding/json"

// MessagesRequest is the body of POST /v1/messages. Only the fields llmgate
// translates are typed; the top-level keys are also scanned separately so
// that fields without a counterpart can be reported.
type MessagesRequest struct {
	Model         string          `json:"model"`
	MaxTokens     *int64          `json:"max_tokens,omitempty"`
	System        json.RawMessage `json:"system,omitempty"` // string | []ContentBlock
	Messages      []Message       `json:"messages"`
	Metadata      *Metadata       `json:"metadata,omitempty"`
	StopSequences []string        `json:"stop_sequences,omitempty"`
	Stream        bool            `json:"stream,omitempty"`
	Temperature   *float64        `json:"temperature,omitempty"`
	TopP          *float64        `json:"top_p,omitempty"`
	TopK          *int64          `json:"top_k,omitempty"`
	Tools         []Tool          `json:"tools,omitempty"`
	ToolChoice    *ToolChoice     `json:"tool_choice,omitempty"`
	Thinking      *Thinking       `json:"thinking,omitempty"`
	OutputConfig  *OutputConfig   `json:"output_config,omitempty"`
}

// Metadata is the metadata object of a Messages request.
type Metadata struct {
	UserID string `json:"user_id,omitempty"`
}

// Message is one entry of a Messages request's messages. Content is a
// string or an array of ContentBlock.
type Message struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// ContentBlock is one content block of any type, as a flat union: text,
// image, document, tool_use, tool_result, thinking, redacted_thinking and
// the server-tool blocks. Which fields are meaningful depends on Type.
// Pointer fields are written even when they point to "" (a thinking block
// always carries its signature).
type ContentBlock struct {
	Type string `json:"type"`

	// text
	Text      *string         `json:"text,omitempty"`
	Citations json.RawMessage `json:"citations,omitempty"`

	// image, document
	Source  *Source `json:"source,omitempty"`
	Title   string  `json:"title,omitempty"`
	Context string  `json:"context,omitempty"`

	// tool_use (and server_tool_use)
	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`

	// tool_result: Content is a string or an array of blocks.
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   json.RawMessage `json:"content,omitempty"`
	IsError   *bool           `json:"is_error,omitempty"`

	// thinking, redacted_thinking
	Thinking  *string `json:"thinking,omitempty"`
	Signature *string `json:"signature,omitempty"`
	Data      string  `json:"data,omitempty"`

	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

// Source is the source of an image or document block: {"type":"base64",
// "media_type","data"}, {"type":"url","url"}, {"type":"text","media_type",
// "data"} or {"type":"file","file_id"}.
type Source struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
	FileID    string `json:"file_id,omitempty"`
}

// Tool is one entry of a Messages request's tools. Client tools have no Type
// (or "custom"); server tools (web search, code execution, ...) have a
// versioned Type.
type Tool struct {
	Type         string          `json:"type,omitempty"`
	Name         string          `json:"name"`
	Description  string          `json:"description,omitempty"`
	InputSchema  json.RawMessage `json:"input_schema,omitempty"`
	Strict       *bool           `json:"strict,omitempty"`
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

// ToolChoice is a Messages request's tool_choice: auto, any, tool (with
// Name) or none.
type ToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse *bool  `json:"disable_parallel_tool_use,omitempty"`
}

// Thinking is a Messages request's extended thinking configuration:
// {"type":"enabled","budget_tokens":N}, {"type":"disabled"} or
// {"type":"adaptive"}.
type Thinking struct {
	Type         string `json:"type"`
	BudgetTokens *int64 `json:"budget_tokens,omitempty"`
}

// OutputConfig is a Messages request's output_config: the effort level and
// the structured output format.
type OutputConfig struct {
	Effort string        `json:"effort,omitempty"`
	Format *OutputFormat `json:"format,omitempty"`
}

// OutputFormat is the structured output format of output_config:
// {"type":"json_schema","schema":{...}}.
type OutputFormat struct {
	Type   string          `json:"type"`
	Schema json.RawMessage `json:"schema,omitempty"`
}

// MessageResponse is a Message: the non-streaming response of the Messages
// API, and the message of a stream's message_start event.
type MessageResponse struct {
	ID           string         `json:"id"`
	Type         string         `json:"type"`
	Role         string         `json:"role"`
	Model        string         `json:"model"`
	Content      []ContentBlock `json:"content"`
	StopReason   *string        `json:"stop_reason"`
	StopSequence *string        `json:"stop_sequence"`
	Usage        Usage          `json:"usage"`
}

// Usage is the usage of a Message. InputTokens excludes the tokens read from
// or written to the prompt cache.
type Usage struct {
	InputTokens              int64 `json:"input_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
}

// StreamUsage is the usage of a message_delta event: cumulative totals, of
// which only OutputTokens is always present.
type StreamUsage struct {
	InputTokens              *int64 `json:"input_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
	OutputTokens             *int64 `json:"output_tokens"`
}

// StreamEvent is the data of one Messages stream event, as a flat union of
// message_start, content_block_start, content_block_delta,
// content_block_stop, message_delta, message_stop, ping and error.
type StreamEvent struct {
	Type         string          `json:"type"`
	Message      *StreamMessage  `json:"message"`
	Index        int64           `json:"index"`
	ContentBlock *ContentBlock   `json:"content_block"`
	Delta        *StreamDelta    `json:"delta"`
	Usage        *StreamUsage    `json:"usage"`
	Error        *AnthropicError `json:"error"`
}

// StreamMessage is the message of a message_start event.
type StreamMessage struct {
	ID    string       `json:"id"`
	Model string       `json:"model"`
	Usage *StreamUsage `json:"usage"`
}

// StreamDelta is the delta of a content_block_delta (text_delta,
// input_json_delta, thinking_delta, signature_delta, citations_delta) or of
// a message_delta (StopReason, StopSequence).
type StreamDelta struct {
	Type         string  `json:"type"`
	Text         *string `json:"text"`
	PartialJSON  *string `json:"partial_json"`
	Thinking     *string `json:"thinking"`
	Signature    *string `json:"signature"`
	StopReason   *string `json:"stop_reason"`
	StopSequence *string `json:"stop_sequence"`
}

// AnthropicErrorBody is an Anthropic error response or the data of an error
// stream event: {"type":"error","error":{"type","message"}}.
type AnthropicErrorBody struct {
	Type  string         `json:"type"`
	Error AnthropicError `json:"error"`
}

// AnthropicError is the error object of an Anthropic error.
type AnthropicError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

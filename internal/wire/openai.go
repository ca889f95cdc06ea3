package wire

import "encoding/json"

// ChatRequest is the body of POST /v1/chat/completions. Only the fields
// llmgate translates or inspects are typed; the top-level keys of a request
// are also scanned separately so that fields without a counterpart can be
// reported. Numeric and boolean fields are pointers so that "absent" and
// "zero" differ.
type ChatRequest struct {
	Model               string          `json:"model"`
	Messages            []ChatMessage   `json:"messages"`
	MaxCompletionTokens *int64          `json:"max_completion_tokens,omitempty"`
	MaxTokens           *int64          `json:"max_tokens,omitempty"`
	Temperature         *float64        `json:"temperature,omitempty"`
	TopP                *float64        `json:"top_p,omitempty"`
	Stop                json.RawMessage `json:"stop,omitempty"` // string | []string | null
	Stream              bool            `json:"stream,omitempty"`
	StreamOptions       *StreamOptions  `json:"stream_options,omitempty"`
	Tools               []ChatTool      `json:"tools,omitempty"`
	ToolChoice          json.RawMessage `json:"tool_choice,omitempty"` // string | object
	ParallelToolCalls   *bool           `json:"parallel_tool_calls,omitempty"`
	ReasoningEffort     string          `json:"reasoning_effort,omitempty"`
	ResponseFormat      *ResponseFormat `json:"response_format,omitempty"`
	User                string          `json:"user,omitempty"`
	SafetyIdentifier    string          `json:"safety_identifier,omitempty"`

	// Fields read only to refuse requests that cannot be translated.
	N           *int64          `json:"n,omitempty"`
	Logprobs    *bool           `json:"logprobs,omitempty"`
	TopLogprobs *int64          `json:"top_logprobs,omitempty"`
	Modalities  []string        `json:"modalities,omitempty"`
	Audio       json.RawMessage `json:"audio,omitempty"`
}

// StreamOptions is the stream_options object of a chat request.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// ChatMessage is one entry of a chat request's messages. Content is a
// string, an array of ChatContentPart, or null.
type ChatMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content,omitempty"`
	Name       string          `json:"name,omitempty"`
	ToolCalls  []ChatToolCall  `json:"tool_calls,omitempty"`
	ToolCallID string          `json:"tool_call_id,omitempty"`
	Refusal    *string         `json:"refusal,omitempty"`

	// ReasoningContent and Reasoning are the reasoning text some
	// OpenAI-compatible providers (DeepSeek, OpenRouter) return and some
	// clients echo back in assistant history.
	ReasoningContent *string `json:"reasoning_content,omitempty"`
	Reasoning        *string `json:"reasoning,omitempty"`

	// FunctionCall is the deprecated assistant function call; Audio refers
	// to an earlier audio response. Both are read only to refuse them.
	FunctionCall json.RawMessage `json:"function_call,omitempty"`
	Audio        json.RawMessage `json:"audio,omitempty"`
}

// ChatContentPart is one part of an array-valued message content: text,
// image_url, file, input_audio or (in assistant messages) refusal.
type ChatContentPart struct {
	Type       string          `json:"type"`
	Text       *string         `json:"text,omitempty"`
	ImageURL   *ImageURL       `json:"image_url,omitempty"`
	File       *FilePart       `json:"file,omitempty"`
	InputAudio json.RawMessage `json:"input_audio,omitempty"`
	Refusal    *string         `json:"refusal,omitempty"`
	// CacheControl is OpenRouter's extension carrying an Anthropic
	// cache_control marker on a text or image part.
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

// ImageURL is the image_url of an image part: an http(s) URL or a data: URL.
type ImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"`
}

// FilePart is the file of a file part: inline base64 data (as a data: URL)
// or the ID of an uploaded file.
type FilePart struct {
	Filename string `json:"filename,omitempty"`
	FileData string `json:"file_data,omitempty"`
	FileID   string `json:"file_id,omitempty"`
}

// ChatTool is one entry of a chat request's tools.
type ChatTool struct {
	Type     string        `json:"type"`
	Function *ChatFunction `json:"function,omitempty"`
	// CacheControl is OpenRouter's extension carrying an Anthropic
	// cache_control marker.
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

// ChatFunction is a function tool definition. Parameters is a JSON Schema
// object.
type ChatFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// ChatToolChoiceFunction is the object form of tool_choice:
// {"type":"function","function":{"name":...}}.
type ChatToolChoiceFunction struct {
	Type     string `json:"type"`
	Function struct {
		Name string `json:"name"`
	} `json:"function"`
}

// ChatToolCall is a tool call of an assistant message. Arguments is a JSON
// document encoded as a string.
type ChatToolCall struct {
	ID       string           `json:"id"`
	Type     string           `json:"type"`
	Function ChatFunctionCall `json:"function"`
}

// ChatFunctionCall is the function of a tool call.
type ChatFunctionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// ResponseFormat is a chat request's response_format: {"type":"text"},
// {"type":"json_object"} or {"type":"json_schema","json_schema":{...}}.
type ResponseFormat struct {
	Type       string      `json:"type"`
	JSONSchema *JSONSchema `json:"json_schema,omitempty"`
}

// JSONSchema is the json_schema of a response_format.
type JSONSchema struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Schema      json.RawMessage `json:"schema,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// ChatCompletion is a non-streaming chat completion response.
type ChatCompletion struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []ChatChoice `json:"choices"`
	Usage   *ChatUsage   `json:"usage,omitempty"`
}

// ChatChoice is one choice of a chat completion. Logprobs is always null
// when llmgate writes it.
type ChatChoice struct {
	Index        int64               `json:"index"`
	Message      ChatResponseMessage `json:"message"`
	Logprobs     json.RawMessage     `json:"logprobs"`
	FinishReason string              `json:"finish_reason"`
	// StopReason is vLLM's extension naming the stop string that ended the
	// choice (a string, a token id, or null). Read only.
	StopReason json.RawMessage `json:"stop_reason,omitempty"`
}

// ChatResponseMessage is the assistant message of a chat completion choice.
// Content is a JSON string or null (some compatible providers send an array
// of text parts); Refusal is null unless the model refused.
type ChatResponseMessage struct {
	Role             string          `json:"role"`
	Content          json.RawMessage `json:"content"`
	ReasoningContent *string         `json:"reasoning_content,omitempty"`
	Reasoning        *string         `json:"reasoning,omitempty"`
	ToolCalls        []ChatToolCall  `json:"tool_calls,omitempty"`
	Refusal          *string         `json:"refusal"`
}

// ChatUsage is the usage of a chat completion or of a stream's usage chunk.
// PromptTokens includes cached tokens.
type ChatUsage struct {
	PromptTokens            int64                    `json:"prompt_tokens"`
	CompletionTokens        int64                    `json:"completion_tokens"`
	TotalTokens             int64                    `json:"total_tokens"`
	PromptTokensDetails     *PromptTokensDetails     `json:"prompt_tokens_details,omitempty"`
	CompletionTokensDetails *CompletionTokensDetails `json:"completion_tokens_details,omitempty"`
	// PromptCacheHitTokens is DeepSeek's count of prompt tokens read from
	// its cache, sent instead of (or besides) prompt_tokens_details.
	PromptCacheHitTokens int64 `json:"prompt_cache_hit_tokens,omitempty"`
}

// PromptTokensDetails breaks prompt_tokens down: CachedTokens were read from
// the prompt cache, CacheWriteTokens written to it (omitted when zero).
type PromptTokensDetails struct {
	CachedTokens     int64 `json:"cached_tokens"`
	CacheWriteTokens int64 `json:"cache_write_tokens,omitempty"`
}

// CompletionTokensDetails breaks completion_tokens down.
type CompletionTokensDetails struct {
	ReasoningTokens int64 `json:"reasoning_tokens"`
}

// ChatCompletionChunk is one chat.completion.chunk of a stream, or the
// {"error":...} object providers send in a stream when they fail.
type ChatCompletionChunk struct {
	ID      string            `json:"id"`
	Model   string            `json:"model"`
	Choices []ChatChunkChoice `json:"choices"`
	Usage   *ChatUsage        `json:"usage"`
	// Error is set when the provider reports an error in the stream: an
	// OpenAIError object or, from some providers, a plain string.
	Error json.RawMessage `json:"error"`
}

// ChatChunkChoice is one choice of a stream chunk.
type ChatChunkChoice struct {
	Index        int64           `json:"index"`
	Delta        ChatChunkDelta  `json:"delta"`
	FinishReason *string         `json:"finish_reason"`
	StopReason   json.RawMessage `json:"stop_reason"`
}

// ChatChunkDelta is the delta of a stream chunk choice.
type ChatChunkDelta struct {
	Role             string              `json:"role"`
	Content          *string             `json:"content"`
	ReasoningContent *string             `json:"reasoning_content"`
	Reasoning        *string             `json:"reasoning"`
	Refusal          *string             `json:"refusal"`
	ToolCalls        []ChatChunkToolCall `json:"tool_calls"`
}

// ChatChunkToolCall is a tool call fragment of a stream chunk. Index says
// which call of the message it belongs to; ID, Type and Name come with the
// first fragment, Arguments with any.
type ChatChunkToolCall struct {
	Index    *int64 `json:"index"`
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// OpenAIErrorBody is an OpenAI error response: {"error":{...}}.
type OpenAIErrorBody struct {
	Error OpenAIError `json:"error"`
}

// OpenAIError is the error object of an OpenAI error response. Code is a
// string, a number or null; Param a string or null.
type OpenAIError struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Param   *string         `json:"param"`
	Code    json.RawMessage `json:"code"`
}

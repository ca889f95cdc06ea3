// Package translate converts between the OpenAI chat completions format and
// the Anthropic Messages format, in both directions, for requests, JSON
// responses, error responses and server-sent event streams. The gateway
// uses it only when the model it chose cannot serve the client's format;
// same-format traffic is passed through byte for byte and never reaches
// this package (Request, Response and ErrorResponse refuse or return
// same-format input unchanged, see each).
//
// Translation is exact and deterministic: the same input always gives the
// same bytes (struct field order, no map iteration), nothing is guessed,
// and whatever has no counterpart is either reported (Request's removed
// list, for the Llmgate-Removed-Params header) or refused with an *Error
// naming the field, never dropped silently when dropping would change the
// answer.
//
// # Cost
//
// Request copies what it does not change: the messages, the system prompt
// and the tools are converted by a fast pass over internal/jsonx's Scanner
// that copies string literals and JSON values (tool schemas and inputs,
// cache_control) instead of decoding and re-encoding them, in the same pass
// that validates the body; only the small top-level fields go through
// encoding/json. Shapes the fast pass does not handle exactly, and every
// request it would refuse, go to the encoding/json path, which decides
// (see request_fast.go). A 400 KB conversation translates in under a
// millisecond, three to four times what validating it costs (see
// BenchmarkRequest400K). The package never counts tokens itself: the
// message_start input_tokens estimate of an OpenAI → Anthropic stream comes
// from StreamOptions.InputTokens.
//
// # Concurrency
//
// Request, Response and ErrorResponse are safe for concurrent use. A
// Stream is per request and not safe for concurrent use.
//
// # Requests: OpenAI chat completions → Anthropic messages
//
//	OpenAI                                   Anthropic
//	model                                    model (RequestOptions.Model when set)
//	messages[role=system|developer]          system: one text block per message or text part, in order,
//	  (string or text parts, anywhere)         wherever the message was; a single plain text becomes a string
//	messages[role=user]                      user turn; string content stays a string when it is the turn's only block
//	  text part                              text block (empty text parts are skipped: Anthropic rejects them)
//	  image_url http(s) URL                  image {source:{type:url,url}}; detail other than auto: reported
//	  image_url data:<mt>;base64,<d>         image {source:{type:base64,media_type:<mt>,data:<d>}}
//	  file {file_data: PDF data URL}         document {source:{type:base64,...}, title: filename}
//	  file {file_id}, input_audio            refused (*Error)
//	  cache_control (OpenRouter extension)   cache_control on the block (also on tools)
//	messages[role=assistant]                 assistant turn: text blocks, then tool_use blocks, in order
//	  content / refusal / refusal parts      text blocks
//	  tool_calls[{id,function:{name,         tool_use {id,name,input}: the arguments string parsed; empty → {};
//	    arguments}}]                           not a JSON object → {} and "messages.tool_calls.function.arguments" reported
//	  reasoning_content, reasoning           dropped and reported (no signature, so no thinking block)
//	messages[role=tool]                      tool_result {tool_use_id, content} in a user turn; string stays a
//	                                           string, parts become text blocks, empty content is omitted
//	consecutive same-role turns              merged into one turn (tool results, then the user text that follows)
//	messages[].name                          dropped and reported ("messages.name")
//	role function, functions, function_call  refused (deprecated API)
//	max_completion_tokens, else max_tokens   max_tokens; neither: RequestOptions.MaxOutputTokens, else 4096
//	temperature                              temperature clamped to Anthropic's 0–1 (values above 1 become 1)
//	top_p                                    top_p
//	stop (string or array)                   stop_sequences
//	stream                                   stream (stream_options is the gateway's business, not reported)
//	tools[{type:function,function:{name,     tools[{name,description,input_schema,strict}]; missing parameters →
//	  description,parameters,strict}}]         {"type":"object","properties":{}}; other tool types refused
//	tool_choice "auto"|"none"|"required"     {type:auto}|{type:none}|{type:any}
//	tool_choice {type:function,function:     {type:tool,name}; other object forms refused
//	  {name}}
//	parallel_tool_calls: false               tool_choice.disable_parallel_tool_use: true (tool_choice auto when
//	                                           absent; nothing when there are no tools or the choice is none)
//	user, else safety_identifier             metadata.user_id (safety_identifier reported when both are set)
//	reasoning_effort                         thinking {type:enabled, budget_tokens}: minimal 1024, low 2048,
//	                                           medium 8192, high 32768, xhigh 65536, capped at max_tokens/2;
//	                                           none → no thinking. When the budget would fall below Anthropic's
//	                                           minimum (1024) or tool_choice forces a tool (which Anthropic does
//	                                           not allow with thinking), reasoning_effort is dropped and
//	                                           reported; so is any reasoning_effort with
//	                                           RequestOptions.NoReasoning. With thinking on, temperature ≠ 1 and
//	                                           top_p < 0.95 are dropped and reported (Anthropic rejects them).
//	response_format json_schema              output_config.format {type:json_schema, schema} (Anthropic
//	                                           structured outputs; models without them answer 400, which the
//	                                           gateway treats as any upstream error)
//	response_format json_object              dropped and reported (no schema-less JSON mode)
//	n > 1, logprobs: true, top_logprobs > 0, refused with *Error (n = 1, logprobs false, modalities ["text"]
//	  modalities with "audio", audio           pass)
//	seed, frequency_penalty, presence_penalty, dropped and reported
//	  logit_bias, service_tier, store, metadata,
//	  prediction, web_search_options, verbosity,
//	  prompt_cache_key and any unknown field
//	models (the gateway's fallback list)     ignored, never emitted
//
// # Requests: Anthropic messages → OpenAI chat completions
//
//	Anthropic                                OpenAI
//	system (string or text blocks)           one leading system message; blocks joined with "\n\n" into a
//	                                           string (several providers accept only string system content);
//	                                           cache_control reported ("system.cache_control")
//	user string content                      user message with that string
//	user blocks                              tool messages for its tool_result blocks first (OpenAI wants them
//	                                           right after the assistant's tool calls), then one user message
//	                                           with the other blocks as parts (a lone text block stays a string)
//	  image base64 / url                     image_url data:<mt>;base64,<d> / the URL; file sources refused
//	  document base64 (PDF) / text           file {filename: title or "document.pdf", file_data} / text part;
//	                                           URL and content sources refused
//	  tool_result {tool_use_id,content,      tool message {tool_call_id, content}: text blocks joined with
//	    is_error}                              "\n\n"; is_error → content prefixed "Error: " (OpenAI has no flag);
//	                                           images and documents move into the user message that follows
//	assistant blocks                         one assistant message: text blocks concatenated (as in responses)
//	                                           into content (null when there are only tool calls)
//	  tool_use {id,name,input}               tool_calls[{id,type:function,function:{name,arguments: input as
//	                                           compact JSON}}]
//	  thinking, redacted_thinking            dropped and reported ("messages.content.thinking", ...)
//	other block types (server tools, search  refused with *Error
//	  results, ...), cache_control, citations  cache_control and citations dropped and reported
//	max_tokens                               max_completion_tokens (the current name; reasoning models reject
//	                                           max_tokens)
//	stop_sequences                           stop
//	temperature, top_p                       temperature, top_p; top_k dropped and reported
//	stream: true                             stream: true, stream_options: {include_usage: true}
//	tools[{name,description,input_schema,    tools[{type:function,function:{name,description,parameters,
//	  strict}]                                 strict}}]; server tools (typed tools) refused
//	tool_choice auto|any|tool|none           "auto"|"required"|{type:function,function:{name}}|"none"
//	disable_parallel_tool_use: true          parallel_tool_calls: false (only with tools)
//	metadata.user_id                         user
//	thinking {type:enabled,budget_tokens}    reasoning_effort: budget < 4096 low, < 16384 medium, else high
//	thinking adaptive or disabled            no reasoning_effort (the model's default)
//	output_config.effort                     reasoning_effort (low|medium|high|xhigh; max → xhigh); it wins
//	                                           over the thinking budget. With RequestOptions.NoReasoning both are
//	                                           dropped and reported ("thinking", "output_config.effort")
//	output_config.format json_schema         response_format {type:json_schema, json_schema:{name:"response",
//	                                           schema, strict:true}}
//	mcp_servers (non-empty)                  refused
//	service_tier, container, context_management, dropped and reported
//	  cache_control, unknown fields
//
// # Responses
//
//	Anthropic Message                        OpenAI chat.completion
//	id msg_X                                 id "chatcmpl-msg_X"; created from ResponseOptions.Now
//	model                                    model (ResponseOptions.ClientModel when set)
//	text blocks                              message.content (concatenated; null when there are none)
//	thinking blocks                          message.reasoning_content (the field DeepSeek and OpenRouter
//	                                           clients read); signatures and redacted_thinking are dropped
//	tool_use blocks                          message.tool_calls, arguments = input as a compact JSON string
//	stop_reason end_turn|stop_sequence|      finish_reason stop|stop|stop
//	  pause_turn|null
//	max_tokens|model_context_window_exceeded length
//	tool_use                                 tool_calls
//	refusal                                  content_filter
//	usage                                    prompt_tokens = input + cache_read + cache_creation;
//	                                           prompt_tokens_details.cached_tokens = cache_read,
//	                                           .cache_write_tokens = cache_creation (omitted when 0);
//	                                           completion_tokens = output; total_tokens = their sum
//
//	OpenAI chat.completion (choices[0])      Anthropic Message
//	id X                                     id "msg_X"
//	message.reasoning_content, else .reasoning thinking block (signature "")
//	message.content (string or text parts)   text block (none when empty)
//	message.refusal                          text block; stop_reason refusal
//	message.tool_calls                       tool_use blocks; arguments parsed, {} when empty or not a
//	                                           JSON object
//	finish_reason stop                       end_turn, or stop_sequence with its value when the provider names
//	                                           the stop string (vLLM's choice.stop_reason), or tool_use when the
//	                                           message has tool calls (Gemini finishes those with "stop")
//	length | tool_calls, function_call |     max_tokens | tool_use | refusal
//	  content_filter
//	usage                                    input_tokens = prompt_tokens − cached_tokens − cache_write_tokens,
//	                                           cache_read_input_tokens = cached_tokens,
//	                                           cache_creation_input_tokens = cache_write_tokens (0 when absent),
//	                                           output_tokens = completion_tokens; DeepSeek's
//	                                           prompt_cache_hit_tokens stands in for a missing cached_tokens
//
// # Errors
//
// ErrorResponse keeps the upstream's message (from error.message, a string
// error, or up to 512 bytes of a non-JSON body) and maps the status:
//
//	upstream status   OpenAI client (type, code)                 Anthropic client (type)
//	400               400 invalid_request_error                  400 invalid_request_error
//	401               401 authentication_error                   401 authentication_error
//	402               402 invalid_request_error                  402 billing_error
//	403               403 permission_error                       403 permission_error
//	404               404 not_found_error                        404 not_found_error
//	408               408 invalid_request_error                  408 timeout_error
//	413               413 invalid_request_error                  413 request_too_large
//	422               422 invalid_request_error                  422 invalid_request_error
//	429               429 rate_limit_error                       429 rate_limit_error
//	500               500 server_error                           500 api_error
//	502               502 server_error                           502 api_error
//	503               503 server_error                           529 overloaded_error
//	504               504 server_error                           504 timeout_error
//	529               503 server_error                           529 overloaded_error
//	other 4xx / 5xx   same, invalid_request_error / server_error same, invalid_request_error / api_error
//	< 400 or > 599    502 server_error                           502 api_error
//
// The OpenAI code is the Anthropic error type of the upstream body (or of
// the status), so clients can still tell overloaded_error from api_error.
// In streams, an Anthropic error event becomes a data event
// {"error":{...}} with the same mapping, and an OpenAI error chunk becomes
// an Anthropic error event whose type comes from the OpenAI code or type.
//
// # Streams
//
// A Stream is an explicit state machine fed one upstream event at a time
// (see the anthropicToOpenAI and openAIToAnthropic types for the event
// mapping); tool calls live in slices by index, never in maps. Output is
// appended to the caller's buffer as complete events. The hot delta events
// are read without encoding/json and without allocating: a template of the
// previous delta event, then internal/jsonx's Scanner, then encoding/json
// for everything else, pinned to identical results by differential tests
// and fuzzers.
//
// Anthropic → OpenAI: one id ("chatcmpl-" + message id) and created for
// all chunks; the role chunk ({"role":"assistant","content":""}) at
// message_start; text_delta → content, thinking_delta → reasoning_content
// (never content); each tool_use block → a tool call (index counting
// tool_use blocks) announced with id, type and name, then its
// input_json_delta fragments verbatim as arguments (a call that received
// none gets "{}" at its content_block_stop, since OpenAI clients parse
// arguments); message_stop → exactly one finish chunk, the usage chunk
// ("choices":[]) when the client asked for include_usage, then [DONE].
// ping, signature and citation deltas produce nothing.
//
// OpenAI → Anthropic: message_start at the first chunk (usage from the
// chunk if present, else StreamOptions.InputTokens); reasoning → thinking
// blocks, content and refusal → text blocks, tool calls → tool_use blocks
// with input_json_delta fragments; a block stays open until content of
// another kind arrives. Fragments that arrive for another block while a
// tool call's arguments are not yet a complete JSON object are buffered
// (Anthropic blocks cannot interleave) and written as whole blocks once it
// completes, or at the finish; see openAIToAnthropic. finish_reason closes
// the blocks; message_delta (stop reason, usage) and message_stop follow at
// [DONE], after the usage chunk.
//
// Errors: an upstream error event (Anthropic "error", an OpenAI chunk with
// "error", or an OpenAI-compatible "event: error") is translated and ends
// the stream; an event that is not valid for its format makes Event return
// an error, and the gateway ends the stream with ErrorEvent. An Anthropic client's open
// blocks are not closed before an error event, as the Messages API itself
// does not, so SDK accumulators surface the error rather than a JSON error
// for a cut-off tool input. Finish(complete=false) writes nothing that
// would look like a normal end.
package translate

package providertest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/llmgate/gateway/providers"
)

// Deterministic identifiers and timestamps used by every builder.
const (
	// Created is the Unix time in every OpenAI object ("created",
	// "created_at").
	Created = 1700000000
	// ChatID is the id of OpenAI chat completions and chunks.
	ChatID = "chatcmpl-fake-1"
	// ResponseID is the id of OpenAI Responses API objects.
	ResponseID = "resp_fake_1"
	// ResponseItemID is the id of the message output item of a Responses
	// API object.
	ResponseItemID = "msg_fake_1"
	// MessageID is the id of Anthropic messages.
	MessageID = "msg_fake_1"
	// RequestID is the request id header value (x-request-id for OpenAI,
	// request-id for Anthropic) and the request_id of Anthropic errors.
	RequestID = "req_fake_1"
	// Fingerprint is the system_fingerprint of OpenAI chat completions.
	Fingerprint = "fp_fake"
	// EmbeddingDims is the length of every fake embedding vector.
	EmbeddingDims = 8
)

// Usage is the token usage a builder reports. Input counts the uncached
// input tokens, CacheRead the input tokens read from the prompt cache and
// CacheWrite those written to it; Output counts output tokens.
//
// Each format reports them its own way. OpenAI: prompt_tokens (input_tokens
// in the Responses API) = Input+CacheRead+CacheWrite, cached_tokens =
// CacheRead, cache_write_tokens = CacheWrite (only when non-zero).
// Anthropic: input_tokens = Input, cache_read_input_tokens = CacheRead,
// cache_creation_input_tokens = CacheWrite.
type Usage struct{ Input, Output, CacheRead, CacheWrite int }

// ToolCall is one tool call a streaming builder emits: the call's ID and
// Name first, then its JSON Arguments in the given fragments. An empty ID
// means "call_fake_<n>" (OpenAI) or "toolu_fake_<n>" (Anthropic) for the
// n-th call, counting from 1.
type ToolCall struct {
	ID        string
	Name      string
	Arguments []string
}

// field and object build JSON objects whose keys keep their order, so the
// fake's output reads like the real APIs'.
type field struct {
	key string
	val any
}

type object []field

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := encode(f.key)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		v, err := encode(f.val)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// encode marshals v without HTML escaping and without a trailing newline.
func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// mustJSON marshals builder output, which only holds encodable values.
func mustJSON(v any) []byte {
	b, err := encode(v)
	if err != nil {
		panic(fmt.Sprintf("providertest: encode: %v", err))
	}
	return b
}

// ---- Replies -----------------------------------------------------------

// Reply describes one assistant answer for the builders that take one:
// OpenAIChatReply, OpenAIChatReplyStream, OpenAIResponsesReply,
// OpenAIResponsesReplyStream, AnthropicReply and AnthropicReplyStream. The
// fixed builders (OpenAIChat, AnthropicStream, ...) are those builders
// called with the package's deterministic identifiers, which the zero
// identity fields of a Reply stand for, so a Reply only needs what differs.
// Upstreams other than the scripted Server (a demo, a load benchmark's
// fake) build their answers from a Reply and play the Step.
type Reply struct {
	// Model is the model the answer names.
	Model string
	// Deltas is the answer text in the pieces a stream sends, one event
	// each; JSON builders send them joined.
	Deltas []string
	// ToolCalls, when not empty, makes the answer a call of these tools
	// instead of text (finish_reason "tool_calls", stop_reason "tool_use"),
	// and Deltas are not sent. The joined Arguments of each call must be a
	// JSON object, "" meaning {}. The Responses API builders ignore them
	// and answer with text.
	ToolCalls []ToolCall
	// Usage is the token usage reported.
	Usage Usage
	// ID is the id of the chat completion, Responses API object or
	// Anthropic message; "" means ChatID, ResponseID or MessageID.
	ID string
	// ItemID is the id of the Responses API output message; "" means
	// ResponseItemID.
	ItemID string
	// Created is the Unix time of OpenAI objects; 0 means Created.
	Created int64
	// Fingerprint is the system_fingerprint of chat completions; "" means
	// Fingerprint.
	Fingerprint string
	// Instructions is echoed in Responses API objects; nil writes null.
	Instructions *string
	// Pace is the pause before every streamed delta but the first and
	// before every tool-call argument fragment (Event.Delay), so that a
	// stream can be watched as it arrives; 0 means none.
	Pace time.Duration
}

// text returns the answer text: the deltas joined.
func (r Reply) text() string { return strings.Join(r.Deltas, "") }

// callID returns the id of the i-th tool call: its own or
// <prefix><i+1>.
func callID(c ToolCall, i int, prefix string) string {
	if c.ID != "" {
		return c.ID
	}
	return prefix + strconv.Itoa(i+1)
}

// paced returns the pause before a streamed piece: none for the first.
func (r Reply) paced(i int) time.Duration {
	if i == 0 {
		return 0
	}
	return r.Pace
}

// ---- OpenAI -----------------------------------------------------------

func openAIHeader() http.Header {
	return http.Header{"X-Request-Id": {RequestID}}
}

func jsonStep(h http.Header, body any) Step {
	h.Set("Content-Type", "application/json")
	return Step{Header: h, Body: mustJSON(body)}
}

func openAIUsage(u Usage) object {
	prompt := u.Input + u.CacheRead + u.CacheWrite
	details := object{{"cached_tokens", u.CacheRead}, {"audio_tokens", 0}}
	if u.CacheWrite > 0 {
		details = append(details, field{"cache_write_tokens", u.CacheWrite})
	}
	return object{
		{"prompt_tokens", prompt},
		{"completion_tokens", u.Output},
		{"total_tokens", prompt + u.Output},
		{"prompt_tokens_details", details},
		{"completion_tokens_details", object{
			{"reasoning_tokens", 0},
			{"audio_tokens", 0},
			{"accepted_prediction_tokens", 0},
			{"rejected_prediction_tokens", 0},
		}},
	}
}

// OpenAIChat returns a chat.completion object with one assistant choice
// holding text, finish_reason "stop" and usage u.
func OpenAIChat(model, text string, u Usage) Step {
	return OpenAIChatReply(Reply{Model: model, Deltas: []string{text}, Usage: u})
}

// OpenAIChatReply returns a chat.completion object with one assistant
// choice: the text of r with finish_reason "stop", or, when r has tool
// calls, content null, the calls (ids "call_fake_<n>" unless given) and
// finish_reason "tool_calls".
func OpenAIChatReply(r Reply) Step {
	msg := object{{"role", "assistant"}, {"content", r.text()}, {"refusal", nil}, {"annotations", []any{}}}
	finish := "stop"
	if len(r.ToolCalls) > 0 {
		calls := make([]any, len(r.ToolCalls))
		for i, c := range r.ToolCalls {
			calls[i] = object{
				{"id", callID(c, i, "call_fake_")},
				{"type", "function"},
				{"function", object{{"name", c.Name}, {"arguments", strings.Join(c.Arguments, "")}}},
			}
		}
		msg = object{{"role", "assistant"}, {"content", nil}, {"refusal", nil}, {"tool_calls", calls}, {"annotations", []any{}}}
		finish = "tool_calls"
	}
	return jsonStep(openAIHeader(), object{
		{"id", cmp.Or(r.ID, ChatID)},
		{"object", "chat.completion"},
		{"created", cmp.Or(r.Created, Created)},
		{"model", r.Model},
		{"choices", []any{object{
			{"index", 0},
			{"message", msg},
			{"logprobs", nil},
			{"finish_reason", finish},
		}}},
		{"usage", openAIUsage(r.Usage)},
		{"service_tier", "default"},
		{"system_fingerprint", cmp.Or(r.Fingerprint, Fingerprint)},
	})
}

// chunks builds the chat.completion.chunk events of one stream. With
// includeUsage, usage is written (null for every chunk but the last, as
// OpenAI does); without it the field is absent.
type chunks struct {
	r            Reply
	includeUsage bool
	events       []Event
}

func (c *chunks) add(choices []any, usage any, delay time.Duration) {
	o := object{
		{"id", cmp.Or(c.r.ID, ChatID)},
		{"object", "chat.completion.chunk"},
		{"created", cmp.Or(c.r.Created, Created)},
		{"model", c.r.Model},
		{"system_fingerprint", cmp.Or(c.r.Fingerprint, Fingerprint)},
		{"choices", choices},
	}
	if c.includeUsage {
		o = append(o, field{"usage", usage})
	}
	c.events = append(c.events, Event{Data: string(mustJSON(o)), Delay: delay})
}

// delta adds a chunk with one choice.
func (c *chunks) delta(delta object, finish any, delay time.Duration) {
	c.add([]any{object{{"index", 0}, {"delta", delta}, {"logprobs", nil}, {"finish_reason", finish}}}, nil, delay)
}

// text adds the role chunk (content "") and one chunk per delta.
func (c *chunks) text() {
	c.delta(object{{"role", "assistant"}, {"content", ""}, {"refusal", nil}}, nil, 0)
	for i, d := range c.r.Deltas {
		c.delta(object{{"content", d}}, nil, c.r.paced(i))
	}
}

// end adds the finish chunk, the usage chunk when asked for and [DONE].
func (c *chunks) end(finish string) {
	c.delta(object{}, finish, 0)
	if c.includeUsage {
		c.add([]any{}, openAIUsage(c.r.Usage), 0)
	}
	c.events = append(c.events, doneEvent())
}

// doneEvent is the OpenAI chat stream terminator.
func doneEvent() Event { return Event{Data: "[DONE]"} }

func sseStep(h http.Header, events []Event) Step {
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	return Step{Header: h, Events: events}
}

// OpenAIChatStream returns a chat completion stream: a role-only first
// chunk with content "", one chunk per delta, a finish chunk with
// finish_reason "stop", then, when includeUsage (the request's
// stream_options.include_usage), a usage-only chunk with "choices": [],
// and finally "data: [DONE]".
func OpenAIChatStream(model string, deltas []string, u Usage, includeUsage bool) Step {
	return OpenAIChatReplyStream(Reply{Model: model, Deltas: deltas, Usage: u}, includeUsage)
}

// OpenAIToolCallStream returns a chat completion stream in which the
// assistant calls tools: a role chunk, then for each call a chunk with its
// index, id, type "function" and name (arguments ""), followed by one chunk
// per argument fragment; then a finish chunk with finish_reason
// "tool_calls", the usage-only chunk when includeUsage, and "data: [DONE]".
func OpenAIToolCallStream(model string, calls []ToolCall, u Usage, includeUsage bool) Step {
	return OpenAIChatReplyStream(Reply{Model: model, ToolCalls: calls, Usage: u}, includeUsage)
}

// OpenAIChatReplyStream returns the chat completion stream of r: as
// OpenAIChatStream for a text answer, as OpenAIToolCallStream when r has
// tool calls.
func OpenAIChatReplyStream(r Reply, includeUsage bool) Step {
	c := chunks{r: r, includeUsage: includeUsage}
	if len(r.ToolCalls) == 0 {
		c.text()
		c.end("stop")
		return sseStep(openAIHeader(), c.events)
	}
	c.delta(object{{"role", "assistant"}, {"content", nil}, {"refusal", nil}}, nil, 0)
	for i, call := range r.ToolCalls {
		c.delta(object{{"tool_calls", []any{object{
			{"index", i},
			{"id", callID(call, i, "call_fake_")},
			{"type", "function"},
			{"function", object{{"name", call.Name}, {"arguments", ""}}},
		}}}}, nil, 0)
		for _, frag := range call.Arguments {
			c.delta(object{{"tool_calls", []any{object{
				{"index", i},
				{"function", object{{"arguments", frag}}},
			}}}}, nil, r.Pace)
		}
	}
	c.end("tool_calls")
	return sseStep(openAIHeader(), c.events)
}

// Embedding returns the deterministic fake embedding vector number i
// (EmbeddingDims values, exact binary fractions).
func Embedding(i int) []float32 {
	v := make([]float32, EmbeddingDims)
	for j := range v {
		v[j] = float32((i+j)%EmbeddingDims+1) / 16
		if i%2 == 1 {
			v[j] = -v[j]
		}
	}
	return v
}

// OpenAIEmbeddings returns an embeddings list with n float vectors (see
// Embedding), indexes 0..n-1, and usage of 4 prompt tokens per vector.
func OpenAIEmbeddings(model string, n int) Step {
	return openAIEmbeddings(model, n, false)
}

func openAIEmbeddings(model string, n int, base64 bool) Step {
	vectors := make([][]float32, n)
	for i := range vectors {
		vectors[i] = Embedding(i)
	}
	return OpenAIEmbeddingVectors(model, vectors, base64, 4*n)
}

// OpenAIEmbeddingVectors returns an embeddings list holding vectors, with
// indexes 0..len(vectors)-1 and usage of promptTokens. With base64 each
// vector is sent as OpenAI's encoding_format "base64" does: the
// little-endian float32 values, base64-encoded.
func OpenAIEmbeddingVectors(model string, vectors [][]float32, base64 bool, promptTokens int) Step {
	data := make([]any, len(vectors))
	for i, v := range vectors {
		var emb any = v
		if base64 {
			emb = embeddingBase64(v)
		}
		data[i] = object{{"object", "embedding"}, {"index", i}, {"embedding", emb}}
	}
	return jsonStep(openAIHeader(), object{
		{"object", "list"},
		{"data", data},
		{"model", model},
		{"usage", object{{"prompt_tokens", promptTokens}, {"total_tokens", promptTokens}}},
	})
}

// responsesUsage is the Responses API usage object.
func responsesUsage(u Usage) object {
	in := u.Input + u.CacheRead + u.CacheWrite
	return object{
		{"input_tokens", in},
		{"input_tokens_details", object{{"cached_tokens", u.CacheRead}}},
		{"output_tokens", u.Output},
		{"output_tokens_details", object{{"reasoning_tokens", 0}}},
		{"total_tokens", in + u.Output},
	}
}

func outputText(text string) object {
	return object{{"type", "output_text"}, {"annotations", []any{}}, {"logprobs", []any{}}, {"text", text}}
}

func (r Reply) outputMessage(status string, content []any) object {
	return object{
		{"id", cmp.Or(r.ItemID, ResponseItemID)},
		{"type", "message"},
		{"status", status},
		{"content", content},
		{"role", "assistant"},
	}
}

// responseObject is a Responses API response object; usage nil writes
// "usage": null (as in-progress responses do).
func (r Reply) responseObject(status string, output []any, usage any) object {
	var completedAt any
	if status == "completed" {
		completedAt = cmp.Or(r.Created, Created)
	}
	var instructions any
	if r.Instructions != nil {
		instructions = *r.Instructions
	}
	return object{
		{"id", cmp.Or(r.ID, ResponseID)},
		{"object", "response"},
		{"created_at", cmp.Or(r.Created, Created)},
		{"status", status},
		{"background", false},
		{"completed_at", completedAt},
		{"error", nil},
		{"incomplete_details", nil},
		{"instructions", instructions},
		{"max_output_tokens", nil},
		{"model", r.Model},
		{"output", output},
		{"parallel_tool_calls", true},
		{"previous_response_id", nil},
		{"reasoning", object{{"effort", nil}, {"summary", nil}}},
		{"service_tier", "default"},
		{"store", true},
		{"temperature", 1.0},
		{"text", object{{"format", object{{"type", "text"}}}}},
		{"tool_choice", "auto"},
		{"tools", []any{}},
		{"top_p", 1.0},
		{"truncation", "disabled"},
		{"usage", usage},
		{"user", nil},
		{"metadata", object{}},
	}
}

// OpenAIResponses returns a completed Responses API object whose output is
// one assistant message with one output_text part holding text.
func OpenAIResponses(model, text string, u Usage) Step {
	return OpenAIResponsesReply(Reply{Model: model, Deltas: []string{text}, Usage: u})
}

// OpenAIResponsesReply returns the completed Responses API object of r's
// text (see OpenAIResponses).
func OpenAIResponsesReply(r Reply) Step {
	out := []any{r.outputMessage("completed", []any{outputText(r.text())})}
	return jsonStep(openAIHeader(), r.responseObject("completed", out, responsesUsage(r.Usage)))
}

// OpenAIResponsesStream returns a Responses API event stream:
// response.created, response.in_progress, response.output_item.added,
// response.content_part.added, one response.output_text.delta per delta,
// response.output_text.done, response.content_part.done,
// response.output_item.done and response.completed (with usage). Every
// event is named and carries its type and a sequence_number from 0; there
// is no [DONE] terminator.
func OpenAIResponsesStream(model string, deltas []string, u Usage) Step {
	return OpenAIResponsesReplyStream(Reply{Model: model, Deltas: deltas, Usage: u})
}

// OpenAIResponsesReplyStream returns the Responses API event stream of r's
// text (see OpenAIResponsesStream).
func OpenAIResponsesReplyStream(r Reply) Step {
	text := r.text()
	itemID := cmp.Or(r.ItemID, ResponseItemID)
	var events []Event
	add := func(delay time.Duration, typ string, fields ...field) {
		o := append(object{{"type", typ}, {"sequence_number", len(events)}}, fields...)
		events = append(events, Event{Name: typ, Data: string(mustJSON(o)), Delay: delay})
	}
	add(0, "response.created", field{"response", r.responseObject("in_progress", []any{}, nil)})
	add(0, "response.in_progress", field{"response", r.responseObject("in_progress", []any{}, nil)})
	add(0, "response.output_item.added",
		field{"output_index", 0},
		field{"item", r.outputMessage("in_progress", []any{})})
	add(0, "response.content_part.added",
		field{"item_id", itemID}, field{"output_index", 0}, field{"content_index", 0},
		field{"part", outputText("")})
	for i, d := range r.Deltas {
		add(r.paced(i), "response.output_text.delta",
			field{"item_id", itemID}, field{"output_index", 0}, field{"content_index", 0},
			field{"delta", d}, field{"logprobs", []any{}})
	}
	add(0, "response.output_text.done",
		field{"item_id", itemID}, field{"output_index", 0}, field{"content_index", 0},
		field{"text", text}, field{"logprobs", []any{}})
	add(0, "response.content_part.done",
		field{"item_id", itemID}, field{"output_index", 0}, field{"content_index", 0},
		field{"part", outputText(text)})
	done := r.outputMessage("completed", []any{outputText(text)})
	add(0, "response.output_item.done", field{"output_index", 0}, field{"item", done})
	add(0, "response.completed", field{"response", r.responseObject("completed", []any{done}, responsesUsage(r.Usage))})
	return sseStep(openAIHeader(), events)
}

// ---- Anthropic --------------------------------------------------------

func anthropicHeader() http.Header {
	return http.Header{"Request-Id": {RequestID}}
}

func anthropicUsage(u Usage) object {
	return object{
		{"input_tokens", u.Input},
		{"cache_creation_input_tokens", u.CacheWrite},
		{"cache_read_input_tokens", u.CacheRead},
		{"output_tokens", u.Output},
	}
}

func (r Reply) anthropicMessage(content []any, stopReason any, usage object) object {
	return object{
		{"id", cmp.Or(r.ID, MessageID)},
		{"type", "message"},
		{"role", "assistant"},
		{"model", r.Model},
		{"content", content},
		{"stop_reason", stopReason},
		{"stop_sequence", nil},
		{"usage", usage},
	}
}

// toolInput returns the input object of a tool_use block: the call's
// joined arguments, {} when there are none.
func toolInput(c ToolCall) json.RawMessage {
	if in := strings.Join(c.Arguments, ""); in != "" {
		return json.RawMessage(in)
	}
	return json.RawMessage("{}")
}

// AnthropicMessage returns a Message object with one text block holding
// text, stop_reason "end_turn" and usage u.
func AnthropicMessage(model, text string, u Usage) Step {
	return AnthropicReply(Reply{Model: model, Deltas: []string{text}, Usage: u})
}

// AnthropicReply returns the Message object of r: one text block with
// stop_reason "end_turn", or, when r has tool calls, one tool_use block per
// call (ids "toolu_fake_<n>" unless given) with stop_reason "tool_use".
func AnthropicReply(r Reply) Step {
	content, stop := []any{object{{"type", "text"}, {"text", r.text()}}}, "end_turn"
	if len(r.ToolCalls) > 0 {
		content, stop = make([]any, len(r.ToolCalls)), "tool_use"
		for i, c := range r.ToolCalls {
			content[i] = object{{"type", "tool_use"}, {"id", callID(c, i, "toolu_fake_")}, {"name", c.Name}, {"input", toolInput(c)}}
		}
	}
	return jsonStep(anthropicHeader(), r.anthropicMessage(content, stop, anthropicUsage(r.Usage)))
}

// anthropicStream collects named Anthropic events.
type anthropicStream []Event

func (s *anthropicStream) add(typ string, fields ...field) {
	s.addAfter(0, typ, fields...)
}

// addAfter adds an event sent after delay.
func (s *anthropicStream) addAfter(delay time.Duration, typ string, fields ...field) {
	o := append(object{{"type", typ}}, fields...)
	*s = append(*s, Event{Name: typ, Data: string(mustJSON(o)), Delay: delay})
}

// start adds message_start (usage: the input counts, output 1 at most).
func (s *anthropicStream) start(r Reply) {
	startUsage := r.Usage
	startUsage.Output = min(r.Usage.Output, 1)
	s.add("message_start", field{"message", r.anthropicMessage([]any{}, nil, anthropicUsage(startUsage))})
}

// textBlock adds a text block at index holding r's deltas, with a ping
// after its start when ping is set.
func (s *anthropicStream) textBlock(r Reply, index int, ping bool) {
	s.add("content_block_start", field{"index", index}, field{"content_block", object{{"type", "text"}, {"text", ""}}})
	if ping {
		s.add("ping")
	}
	for i, d := range r.Deltas {
		s.addAfter(r.paced(i), "content_block_delta", field{"index", index}, field{"delta", object{{"type", "text_delta"}, {"text", d}}})
	}
}

// end adds message_delta (with cumulative usage: every count, as the API
// sends today) and message_stop.
func (s *anthropicStream) end(stopReason string, u Usage) {
	s.add("message_delta",
		field{"delta", object{{"stop_reason", stopReason}, {"stop_sequence", nil}}},
		field{"usage", anthropicUsage(u)})
	s.add("message_stop")
}

// AnthropicStream returns a Messages stream: message_start (input usage),
// content_block_start of a text block, ping, one content_block_delta
// text_delta per delta, content_block_stop, message_delta with stop_reason
// "end_turn" and the cumulative usage, and message_stop.
func AnthropicStream(model string, deltas []string, u Usage) Step {
	return AnthropicReplyStream(Reply{Model: model, Deltas: deltas, Usage: u})
}

// AnthropicToolUseStream returns a Messages stream in which the assistant
// calls tools: per call a content_block_start of a tool_use block (id,
// name, input {}), a content_block_delta input_json_delta with
// partial_json "" and one per argument fragment, and content_block_stop;
// then message_delta with stop_reason "tool_use" and message_stop.
func AnthropicToolUseStream(model string, calls []ToolCall, u Usage) Step {
	return AnthropicReplyStream(Reply{Model: model, ToolCalls: calls, Usage: u})
}

// AnthropicReplyStream returns the Messages stream of r: as AnthropicStream
// for a text answer, as AnthropicToolUseStream (with a ping after
// message_start) when r has tool calls.
func AnthropicReplyStream(r Reply) Step {
	var s anthropicStream
	s.start(r)
	if len(r.ToolCalls) == 0 {
		s.textBlock(r, 0, true)
		s.add("content_block_stop", field{"index", 0})
		s.end("end_turn", r.Usage)
		return sseStep(anthropicHeader(), s)
	}
	s.add("ping")
	for i, c := range r.ToolCalls {
		s.add("content_block_start", field{"index", i},
			field{"content_block", object{{"type", "tool_use"}, {"id", callID(c, i, "toolu_fake_")}, {"name", c.Name}, {"input", object{}}}})
		s.add("content_block_delta", field{"index", i},
			field{"delta", object{{"type", "input_json_delta"}, {"partial_json", ""}}})
		for _, frag := range c.Arguments {
			s.addAfter(r.Pace, "content_block_delta", field{"index", i},
				field{"delta", object{{"type", "input_json_delta"}, {"partial_json", frag}}})
		}
		s.add("content_block_stop", field{"index", i})
	}
	s.end("tool_use", r.Usage)
	return sseStep(anthropicHeader(), s)
}

// AnthropicThinkingStream returns a Messages stream with extended thinking:
// a thinking block (index 0) with one thinking_delta per thinking fragment
// and a signature_delta, then a text block (index 1) with one text_delta per
// delta, stop_reason "end_turn".
func AnthropicThinkingStream(model string, thinking, deltas []string, u Usage) Step {
	r := Reply{Model: model, Deltas: deltas, Usage: u}
	var s anthropicStream
	s.start(r)
	s.add("content_block_start", field{"index", 0},
		field{"content_block", object{{"type", "thinking"}, {"thinking", ""}, {"signature", ""}}})
	s.add("ping")
	for _, t := range thinking {
		s.add("content_block_delta", field{"index", 0}, field{"delta", object{{"type", "thinking_delta"}, {"thinking", t}}})
	}
	s.add("content_block_delta", field{"index", 0}, field{"delta", object{{"type", "signature_delta"}, {"signature", "fake-signature"}}})
	s.add("content_block_stop", field{"index", 0})
	s.textBlock(r, 1, false)
	s.add("content_block_stop", field{"index", 1})
	s.end("end_turn", u)
	return sseStep(anthropicHeader(), s)
}

// ---- Errors -----------------------------------------------------------

// OpenAIErrorType returns the error type and code OpenAI uses for an HTTP
// status (code nil when OpenAI sends null): 401 invalid_request_error /
// invalid_api_key, 403 request_forbidden /
// unsupported_country_region_territory, 429 requests / rate_limit_exceeded,
// 5xx server_error, any other status invalid_request_error.
func OpenAIErrorType(status int) (typ string, code any) {
	switch {
	case status == http.StatusUnauthorized:
		return "invalid_request_error", "invalid_api_key"
	case status == http.StatusForbidden:
		return "request_forbidden", "unsupported_country_region_territory"
	case status == http.StatusNotFound:
		return "invalid_request_error", nil
	case status == http.StatusTooManyRequests:
		return "requests", "rate_limit_exceeded"
	case status >= 500:
		return "server_error", nil
	}
	return "invalid_request_error", nil
}

// AnthropicErrorType returns the error type Anthropic uses for an HTTP
// status: 400 invalid_request_error, 401 authentication_error, 402
// billing_error, 403 permission_error, 404 not_found_error, 413
// request_too_large, 429 rate_limit_error, 500 api_error, 504
// timeout_error, 529 overloaded_error; other 4xx invalid_request_error and
// other 5xx api_error.
func AnthropicErrorType(status int) string {
	switch status {
	case 401:
		return "authentication_error"
	case 402:
		return "billing_error"
	case 403:
		return "permission_error"
	case 404:
		return "not_found_error"
	case 413:
		return "request_too_large"
	case 429:
		return "rate_limit_error"
	case 504:
		return "timeout_error"
	case 529:
		return "overloaded_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

func openAIErrorBody(status int, message string) object {
	typ, code := OpenAIErrorType(status)
	return object{{"error", object{{"message", message}, {"type", typ}, {"param", nil}, {"code", code}}}}
}

func anthropicErrorBody(status int, message string, requestID bool) object {
	o := object{
		{"type", "error"},
		{"error", object{{"type", AnthropicErrorType(status)}, {"message", message}}},
	}
	if requestID {
		o = append(o, field{"request_id", RequestID})
	}
	return o
}

// Error returns an error response in the format's exact shape: OpenAI
// {"error":{"message","type","param","code"}} (see OpenAIErrorType),
// Anthropic {"type":"error","error":{"type","message"},"request_id"} (see
// AnthropicErrorType).
func Error(format providers.Format, status int, message string) Step {
	var step Step
	if format == providers.FormatAnthropic {
		step = jsonStep(anthropicHeader(), anthropicErrorBody(status, message, true))
	} else {
		step = jsonStep(openAIHeader(), openAIErrorBody(status, message))
	}
	step.Status = status
	return step
}

// RateLimited returns a 429 error in the format's shape with a Retry-After
// header of retryAfter (no header when it is "").
func RateLimited(format providers.Format, retryAfter string) Step {
	msg := "Rate limit reached for requests. Please try again later."
	if format == providers.FormatAnthropic {
		msg = "This request would exceed the rate limit for your organization. Please try again later."
	}
	step := Error(format, http.StatusTooManyRequests, msg)
	if retryAfter != "" {
		step.Header.Set("Retry-After", retryAfter)
	}
	return step
}

// StreamErrorEvent returns an in-stream error event for the format:
// Anthropic "event: error" with {"type":"error","error":{"type","message"}}
// (type from AnthropicErrorType(status)); OpenAI an unnamed data event
// {"error":{"message","type","param","code"}} (from OpenAIErrorType).
func StreamErrorEvent(format providers.Format, status int, message string) Event {
	if format == providers.FormatAnthropic {
		return Event{Name: "error", Data: string(mustJSON(anthropicErrorBody(status, message, false)))}
	}
	return Event{Data: string(mustJSON(openAIErrorBody(status, message)))}
}

// StreamError returns a 200 stream that starts normally and fails midway:
// for Anthropic message_start, ping, a text block start and one text_delta
// per delta, then an error event; for OpenAI (chat completions) the role
// chunk and one chunk per delta, then an error data event. The stream ends
// after the error event, without the terminating events or [DONE].
func StreamError(format providers.Format, model string, deltas []string, status int, message string) Step {
	r := Reply{Model: model, Deltas: deltas}
	if format == providers.FormatAnthropic {
		var s anthropicStream
		s.start(r)
		s.textBlock(r, 0, true)
		s = append(s, StreamErrorEvent(format, status, message))
		return sseStep(anthropicHeader(), s)
	}
	c := chunks{r: r}
	c.text()
	c.events = append(c.events, StreamErrorEvent(format, status, message))
	return sseStep(openAIHeader(), c.events)
}

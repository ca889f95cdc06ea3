package translate

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/llmgate/gateway/internal/jsonx"
	"github.com/llmgate/gateway/internal/wire"
)

// Thinking budgets (Anthropic thinking.budget_tokens) for OpenAI
// reasoning_effort values, and the thresholds used in the other direction:
// a budget below effortLowMax maps to "low", below effortMediumMax to
// "medium", anything larger to "high".
const (
	budgetMinimal   = 1024
	budgetLow       = 2048
	budgetMedium    = 8192
	budgetHigh      = 32768
	budgetXHigh     = 65536
	minBudget       = 1024 // Anthropic's minimum budget_tokens
	effortLowMax    = 4096
	effortMediumMax = 16384
)

// effortBudget returns the thinking budget for an OpenAI reasoning_effort;
// ok is false for an unknown value; 0 means no thinking ("none").
func effortBudget(effort string) (budget int64, ok bool) {
	switch effort {
	case "none":
		return 0, true
	case "minimal":
		return budgetMinimal, true
	case "low":
		return budgetLow, true
	case "medium":
		return budgetMedium, true
	case "high":
		return budgetHigh, true
	case "xhigh":
		return budgetXHigh, true
	}
	return 0, false
}

// openAIRequest holds the fields of an OpenAI chat request as read member
// by member.
type openAIRequest struct {
	wire.ChatRequest
	messages []byte // raw array, nil when absent
	tools    []byte // raw array, nil when absent
}

// openAIToAnthropicRequest translates an OpenAI chat completions request
// into an Anthropic Messages request.
func openAIToAnthropicRequest(body []byte, opt RequestOptions, r *removedSet) ([]byte, error) {
	var in openAIRequest
	pre := early{at: -1}
	err := members(body, "", pre.hook(&opt, openAIMessagesFrom), func(name string, v []byte) error {
		if isNull(v) {
			return nil
		}
		c := &in.ChatRequest
		switch name {
		case "model":
			return decode(v, &c.Model, name)
		case "messages":
			in.messages = v
			return rawArray(v, name)
		case "max_completion_tokens":
			return decode(v, &c.MaxCompletionTokens, name)
		case "max_tokens":
			return decode(v, &c.MaxTokens, name)
		case "temperature":
			return decode(v, &c.Temperature, name)
		case "top_p":
			return decode(v, &c.TopP, name)
		case "stop":
			c.Stop = v
		case "stream":
			return decode(v, &c.Stream, name)
		case "tools":
			in.tools = v
			return rawArray(v, name)
		case "tool_choice":
			c.ToolChoice = v
		case "parallel_tool_calls":
			return decode(v, &c.ParallelToolCalls, name)
		case "reasoning_effort":
			return decode(v, &c.ReasoningEffort, name)
		case "response_format":
			return decode(v, &c.ResponseFormat, name)
		case "user":
			return decode(v, &c.User, name)
		case "safety_identifier":
			return decode(v, &c.SafetyIdentifier, name)
		case "n":
			return decode(v, &c.N, name)
		case "logprobs":
			return decode(v, &c.Logprobs, name)
		case "top_logprobs":
			return decode(v, &c.TopLogprobs, name)
		case "modalities":
			return decode(v, &c.Modalities, name)
		case "audio":
			c.Audio = v
		case "functions":
			var fns []json.RawMessage
			if err := decode(v, &fns, name); err != nil {
				return err
			}
			if len(fns) > 0 {
				return errorf(name, "the deprecated functions API cannot be translated for this model; use tools and tool_choice")
			}
		case "function_call":
			if jsonx.KindOf(bytes.TrimSpace(v)) != jsonx.String {
				return errorf(name, "the deprecated functions API cannot be translated for this model; use tools and tool_choice")
			}
			r.add(name) // "auto" or "none" without functions: no effect
		case "stream_options", "models":
			// stream_options is honoured by the gateway; models is the
			// gateway's own fallback list.
		default:
			r.add(name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	c := &in.ChatRequest
	if err := refuseOpenAI(c); err != nil {
		return nil, err
	}

	out := anthropicOut{}
	out.Model = c.Model
	if opt.Model != "" {
		out.Model = opt.Model
	}

	// Messages and system prompt.
	system, msgs, found, ok := pre.result(body, in.messages, r)
	err = withFallback(&opt, r, func() bool {
		if !found {
			system, msgs, ok = fastOpenAIMessages(in.messages, r)
		}
		return ok
	}, func() error {
		blocks, m, err := openAIMessages(rawElements(in.messages), r)
		if err != nil {
			return err
		}
		msgs = mustMarshal(m)
		if len(blocks) == 1 && blocks[0].CacheControl == nil {
			system = mustMarshal(*blocks[0].Text)
		} else if len(blocks) > 0 {
			system = mustMarshal(blocks)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	// max_tokens
	var maxTokens int64
	switch {
	case c.MaxCompletionTokens != nil:
		maxTokens = *c.MaxCompletionTokens
	case c.MaxTokens != nil:
		maxTokens = *c.MaxTokens
	case opt.MaxOutputTokens > 0:
		maxTokens = int64(opt.MaxOutputTokens)
	default:
		maxTokens = DefaultMaxOutputTokens
	}
	out.MaxTokens = &maxTokens

	// metadata.user_id
	switch {
	case c.User != "":
		out.Metadata = &wire.Metadata{UserID: c.User}
		if c.SafetyIdentifier != "" {
			r.add("safety_identifier")
		}
	case c.SafetyIdentifier != "":
		out.Metadata = &wire.Metadata{UserID: c.SafetyIdentifier}
	}

	// stop
	if !isNull(c.Stop) {
		s, parts, isString, err := stringOrParts(c.Stop, "stop")
		if err != nil {
			return nil, err
		}
		if isString {
			out.StopSequences = []string{s}
		} else {
			for _, p := range parts {
				var seq string
				if err := decode(p, &seq, "stop"); err != nil {
					return nil, err
				}
				out.StopSequences = append(out.StopSequences, seq)
			}
		}
	}

	out.Stream = c.Stream
	if c.Temperature != nil {
		t := min(max(*c.Temperature, 0), 1) // Anthropic's range is 0-1
		out.Temperature = &t
	}
	out.TopP = c.TopP

	// Tools and tool_choice.
	tools, err := openAITools(&opt, c, in.tools, &out, r)
	if err != nil {
		return nil, err
	}

	// reasoning_effort → thinking.
	if c.ReasoningEffort != "" {
		budget, ok := effortBudget(c.ReasoningEffort)
		if !ok {
			return nil, errorf("reasoning_effort", "unknown value %q", c.ReasoningEffort)
		}
		if budget >= maxTokens {
			budget = maxTokens / 2
		}
		forced := out.ToolChoice != nil && (out.ToolChoice.Type == "any" || out.ToolChoice.Type == "tool")
		switch {
		case budget == 0:
			// "none": no thinking.
		case budget < minBudget || forced || opt.NoReasoning:
			// Too little room for thinking, a forced tool call (which
			// Anthropic does not allow together with thinking), or a
			// model without thinking.
			r.add("reasoning_effort")
		default:
			out.Thinking = &wire.Thinking{Type: "enabled", BudgetTokens: &budget}
			if out.Temperature != nil && *out.Temperature != 1 {
				out.Temperature = nil
				r.add("temperature")
			}
			if out.TopP != nil && *out.TopP < 0.95 {
				out.TopP = nil
				r.add("top_p")
			}
		}
	}

	// response_format
	if rf := c.ResponseFormat; rf != nil {
		switch rf.Type {
		case "", "text":
		case "json_schema":
			if rf.JSONSchema == nil || isNull(rf.JSONSchema.Schema) {
				return nil, errorf("response_format.json_schema.schema", "a JSON schema is required")
			}
			out.OutputConfig = &wire.OutputConfig{Format: &wire.OutputFormat{Type: "json_schema", Schema: rf.JSONSchema.Schema}}
		default: // json_object has no Anthropic counterpart
			r.add("response_format")
		}
	}
	base, err := marshal(&out.MessagesRequest)
	if err != nil {
		return nil, err
	}
	return splice(base, messagesRequestOrder,
		spliced{key: "system", value: system}, spliced{key: "messages", value: msgs}, spliced{key: "tools", value: tools}), nil
}

// anthropicOut is the Anthropic request being built.
type anthropicOut struct {
	wire.MessagesRequest
}

// refuseOpenAI rejects OpenAI request features that have no Anthropic
// counterpart and whose removal would change the answer's shape.
func refuseOpenAI(c *wire.ChatRequest) error {
	if c.N != nil && *c.N > 1 {
		return errorf("n", "this model returns one choice; n > 1 cannot be translated")
	}
	if c.Logprobs != nil && *c.Logprobs {
		return errorf("logprobs", "log probabilities are not available for this model")
	}
	if c.TopLogprobs != nil && *c.TopLogprobs > 0 {
		return errorf("top_logprobs", "log probabilities are not available for this model")
	}
	for _, m := range c.Modalities {
		if m == "audio" {
			return errorf("modalities", "audio output is not available for this model")
		}
	}
	if !isNull(c.Audio) {
		return errorf("audio", "audio output is not available for this model")
	}
	return nil
}

var (
	openAIMessageKeys = []string{"role", "content", "name", "tool_calls", "tool_call_id", "refusal", "reasoning_content", "reasoning", "function_call", "audio"}
	openAIPartKeys    = []string{"type", "text", "image_url", "file", "input_audio", "refusal", "cache_control"}
	openAIImageKeys   = []string{"url", "detail"}
	openAIToolKeys    = []string{"type", "function", "cache_control"}
	openAIFuncKeys    = []string{"name", "description", "parameters", "strict"}
)

// openAIMessages converts the messages: system and developer messages
// become system blocks, the rest Anthropic messages with consecutive
// same-role turns (tool results included) merged.
func openAIMessages(raw []json.RawMessage, r *removedSet) (system []wire.ContentBlock, out []wire.Message, err error) {
	type turn struct {
		role   string
		blocks []wire.ContentBlock
	}
	var turns []turn
	appendTurn := func(role string, blocks []wire.ContentBlock) {
		if len(blocks) == 0 {
			return
		}
		if n := len(turns); n > 0 && turns[n-1].role == role {
			turns[n-1].blocks = append(turns[n-1].blocks, blocks...)
			return
		}
		turns = append(turns, turn{role: role, blocks: blocks})
	}
	for _, mraw := range raw {
		if jsonx.KindOf(bytes.TrimSpace(mraw)) != jsonx.Object {
			return nil, nil, errorf("messages", "each message must be a JSON object")
		}
		reportUnknown(mraw, "messages", openAIMessageKeys, r)
		var m wire.ChatMessage
		if err := decode(mraw, &m, "messages"); err != nil {
			return nil, nil, err
		}
		if m.Name != "" {
			r.add("messages.name")
		}
		if !isNull(m.FunctionCall) {
			return nil, nil, errorf("messages.function_call", "the deprecated functions API cannot be translated for this model; use tool_calls")
		}
		switch m.Role {
		case "system", "developer":
			blocks, err := openAIContent(m.Content, r, true)
			if err != nil {
				return nil, nil, err
			}
			system = append(system, blocks...)
		case "user":
			blocks, err := openAIContent(m.Content, r, false)
			if err != nil {
				return nil, nil, err
			}
			appendTurn("user", blocks)
		case "assistant":
			if !isNull(m.Audio) {
				return nil, nil, errorf("messages.audio", "audio is not available for this model")
			}
			blocks, err := openAIContent(m.Content, r, true)
			if err != nil {
				return nil, nil, err
			}
			if m.Refusal != nil && *m.Refusal != "" {
				blocks = append(blocks, textBlock(*m.Refusal))
			}
			if m.ReasoningContent != nil && *m.ReasoningContent != "" {
				r.add("messages.reasoning_content")
			}
			if m.Reasoning != nil && *m.Reasoning != "" {
				r.add("messages.reasoning")
			}
			for _, tc := range m.ToolCalls {
				if tc.Type != "" && tc.Type != "function" {
					return nil, nil, errorf("messages.tool_calls.type", "tool call type %q cannot be translated", tc.Type)
				}
				blocks = append(blocks, wire.ContentBlock{
					Type:  "tool_use",
					ID:    tc.ID,
					Name:  tc.Function.Name,
					Input: argumentsInput(tc.Function.Arguments, r),
				})
			}
			appendTurn("assistant", blocks)
		case "tool":
			block := wire.ContentBlock{Type: "tool_result", ToolUseID: m.ToolCallID}
			s, parts, isString, err := stringOrParts(m.Content, "messages.content")
			if err != nil {
				return nil, nil, err
			}
			if isString {
				if s != "" {
					block.Content = mustMarshal(s)
				}
			} else if parts != nil {
				blocks, err := openAIParts(parts, r, false)
				if err != nil {
					return nil, nil, err
				}
				if len(blocks) > 0 {
					block.Content = mustMarshal(blocks)
				}
			}
			appendTurn("user", []wire.ContentBlock{block})
		case "function":
			return nil, nil, errorf("messages.role", "the deprecated function role cannot be translated for this model; use tool messages")
		default:
			return nil, nil, errorf("messages.role", "unknown role %q", m.Role)
		}
	}
	out = make([]wire.Message, 0, len(turns))
	for _, t := range turns {
		var content json.RawMessage
		if len(t.blocks) == 1 && t.blocks[0].Type == "text" && t.blocks[0].CacheControl == nil {
			content = mustMarshal(*t.blocks[0].Text)
		} else {
			content = mustMarshal(t.blocks)
		}
		out = append(out, wire.Message{Role: t.role, Content: content})
	}
	return system, out, nil
}

func textBlock(s string) wire.ContentBlock {
	return wire.ContentBlock{Type: "text", Text: &s}
}

// argumentsInput turns a tool call's arguments string into a tool_use
// input object. Empty arguments give {}; arguments that are not a JSON
// object give {} and are reported as removed.
func argumentsInput(args string, r *removedSet) json.RawMessage {
	trimmed := strings.TrimSpace(args)
	if trimmed == "" {
		return json.RawMessage(`{}`)
	}
	if jsonx.KindOf([]byte(trimmed)) == jsonx.Object {
		if c := compactJSON([]byte(trimmed)); c != nil {
			return c
		}
	}
	r.add("messages.tool_calls.function.arguments")
	return json.RawMessage(`{}`)
}

// openAIContent converts a message content (string, parts or null) into
// blocks. textOnly restricts parts to text (and refusal) for system and
// assistant messages.
func openAIContent(raw json.RawMessage, r *removedSet, textOnly bool) ([]wire.ContentBlock, error) {
	s, parts, isString, err := stringOrParts(raw, "messages.content")
	if err != nil {
		return nil, err
	}
	if isString {
		if s == "" {
			return nil, nil
		}
		return []wire.ContentBlock{textBlock(s)}, nil
	}
	return openAIParts(parts, r, textOnly)
}

func openAIParts(parts []json.RawMessage, r *removedSet, textOnly bool) ([]wire.ContentBlock, error) {
	var blocks []wire.ContentBlock
	for _, praw := range parts {
		if jsonx.KindOf(bytes.TrimSpace(praw)) != jsonx.Object {
			return nil, errorf("messages.content", "each content part must be a JSON object")
		}
		reportUnknown(praw, "messages.content", openAIPartKeys, r)
		var p wire.ChatContentPart
		if err := decode(praw, &p, "messages.content"); err != nil {
			return nil, err
		}
		var b wire.ContentBlock
		switch p.Type {
		case "text":
			if p.Text == nil || *p.Text == "" {
				continue
			}
			b = textBlock(*p.Text)
		case "refusal":
			if p.Refusal == nil || *p.Refusal == "" {
				continue
			}
			b = textBlock(*p.Refusal)
		case "image_url":
			if textOnly {
				return nil, errorf("messages.content.type", "image parts are only allowed in user messages")
			}
			if p.ImageURL == nil {
				return nil, errorf("messages.content.image_url", "missing image_url")
			}
			imgRaw := partField(praw, "image_url")
			reportUnknown(imgRaw, "messages.content.image_url", openAIImageKeys, r)
			if d := p.ImageURL.Detail; d != "" && d != "auto" {
				r.add("messages.content.image_url.detail")
			}
			src, err := imageSource(p.ImageURL.URL)
			if err != nil {
				return nil, err
			}
			b = wire.ContentBlock{Type: "image", Source: src}
		case "file":
			if textOnly {
				return nil, errorf("messages.content.type", "file parts are only allowed in user messages")
			}
			if p.File == nil || p.File.FileData == "" {
				return nil, errorf("messages.content.file", "only inline file_data can be translated for this model, not file_id")
			}
			mt, data, ok := dataURL(p.File.FileData)
			if !ok {
				// OpenAI also accepts bare base64 for PDFs.
				mt, data = "application/pdf", p.File.FileData
			}
			if mt != "application/pdf" {
				return nil, errorf("messages.content.file", "file type %q cannot be translated; only PDF documents can", mt)
			}
			b = wire.ContentBlock{Type: "document", Source: &wire.Source{Type: "base64", MediaType: mt, Data: data}}
			if p.File.Filename != "" {
				b.Title = p.File.Filename
			}
		case "input_audio":
			return nil, errorf("messages.content.type", "audio input is not available for this model")
		default:
			return nil, errorf("messages.content.type", "content part type %q cannot be translated", p.Type)
		}
		if !isNull(p.CacheControl) {
			b.CacheControl = p.CacheControl
		}
		blocks = append(blocks, b)
	}
	return blocks, nil
}

// partField returns the raw value of key in the object raw, or nil.
func partField(raw []byte, key string) []byte {
	var v []byte
	_ = jsonx.Members(raw, func(m jsonx.Member) bool {
		if m.KeyIs(key) {
			v = m.Value
		}
		return true
	})
	return v
}

// imageSource maps an OpenAI image URL onto an Anthropic image source.
func imageSource(u string) (*wire.Source, error) {
	if strings.HasPrefix(u, "data:") {
		mt, data, ok := dataURL(u)
		if !ok {
			return nil, errorf("messages.content.image_url.url", "only base64 data: URLs can be translated")
		}
		return &wire.Source{Type: "base64", MediaType: mt, Data: data}, nil
	}
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		return &wire.Source{Type: "url", URL: u}, nil
	}
	return nil, errorf("messages.content.image_url.url", "expected an http(s) or base64 data: URL")
}

// openAITools converts tools (returning the Anthropic tools array, nil
// for none), tool_choice and parallel_tool_calls.
func openAITools(opt *RequestOptions, c *wire.ChatRequest, raw []byte, out *anthropicOut, r *removedSet) ([]byte, error) {
	var tools []byte
	n := 0
	err := withFallback(opt, r, func() bool {
		var ok bool
		tools, n, ok = fastOpenAITools(raw, r)
		return ok
	}, func() error {
		list, err := slowOpenAITools(rawElements(raw), r)
		if len(list) > 0 {
			tools, n = mustMarshal(list), len(list)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := openAIToolChoice(c, n, out); err != nil {
		return nil, err
	}
	return tools, nil
}

// slowOpenAITools converts tools with encoding/json.
func slowOpenAITools(tools []json.RawMessage, r *removedSet) ([]wire.Tool, error) {
	var out []wire.Tool
	for _, traw := range tools {
		if jsonx.KindOf(bytes.TrimSpace(traw)) != jsonx.Object {
			return nil, errorf("tools", "each tool must be a JSON object")
		}
		var t wire.ChatTool
		if err := decode(traw, &t, "tools"); err != nil {
			return nil, err
		}
		if t.Type != "function" || t.Function == nil {
			return nil, errorf("tools.type", "tool type %q cannot be translated; only function tools can", t.Type)
		}
		reportUnknown(traw, "tools", openAIToolKeys, r)
		reportUnknown(partField(traw, "function"), "tools.function", openAIFuncKeys, r)
		f := t.Function
		schema := f.Parameters
		if isNull(schema) {
			schema = json.RawMessage(defaultSchema)
		}
		tool := wire.Tool{
			Name:        f.Name,
			Description: f.Description,
			InputSchema: schema,
			Strict:      f.Strict,
		}
		if !isNull(t.CacheControl) {
			tool.CacheControl = t.CacheControl
		}
		out = append(out, tool)
	}
	return out, nil
}

// openAIToolChoice converts tool_choice and parallel_tool_calls for a
// request with ntools tools.
func openAIToolChoice(c *wire.ChatRequest, ntools int, out *anthropicOut) error {
	if !isNull(c.ToolChoice) {
		tc := bytes.TrimSpace(c.ToolChoice)
		switch jsonx.KindOf(tc) {
		case jsonx.String:
			var s string
			if err := decode(tc, &s, "tool_choice"); err != nil {
				return err
			}
			switch s {
			case "auto":
				out.ToolChoice = &wire.ToolChoice{Type: "auto"}
			case "none":
				out.ToolChoice = &wire.ToolChoice{Type: "none"}
			case "required":
				out.ToolChoice = &wire.ToolChoice{Type: "any"}
			default:
				return errorf("tool_choice", "unknown value %q", s)
			}
		case jsonx.Object:
			var f wire.ChatToolChoiceFunction
			if err := decode(tc, &f, "tool_choice"); err != nil {
				return err
			}
			if f.Type != "function" || f.Function.Name == "" {
				return errorf("tool_choice", "tool_choice type %q cannot be translated", f.Type)
			}
			out.ToolChoice = &wire.ToolChoice{Type: "tool", Name: f.Function.Name}
		default:
			return errorf("tool_choice", "expected a string or an object")
		}
	}
	if c.ParallelToolCalls != nil && !*c.ParallelToolCalls && ntools > 0 {
		if out.ToolChoice == nil {
			out.ToolChoice = &wire.ToolChoice{Type: "auto"}
		}
		if out.ToolChoice.Type != "none" {
			out.ToolChoice.DisableParallelToolUse = ptr(true)
		}
	}
	return nil
}

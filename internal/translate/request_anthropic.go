package translate

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/llmgate/gateway/internal/jsonx"
	"github.com/llmgate/gateway/internal/wire"
)

// anthropicRequest holds the fields of an Anthropic Messages request as
// read member by member.
type anthropicRequest struct {
	wire.MessagesRequest
	messages []byte // raw array, nil when absent
	tools    []byte // raw array, nil when absent
	metadata []byte
}

var (
	anthropicMessageKeys = []string{"role", "content"}
	anthropicBlockKeys   = []string{
		"type", "text", "citations", "source", "title", "context", "id", "name",
		"input", "tool_use_id", "content", "is_error", "thinking", "signature",
		"data", "cache_control",
	}
	anthropicToolKeys     = []string{"type", "name", "description", "input_schema", "strict", "cache_control"}
	anthropicMetadataKeys = []string{"user_id"}
)

// anthropicToOpenAIRequest translates an Anthropic Messages request into an
// OpenAI chat completions request.
func anthropicToOpenAIRequest(body []byte, opt RequestOptions, r *removedSet) ([]byte, error) {
	var in anthropicRequest
	pre := early{at: -1}
	err := members(body, "", pre.hook(&opt, anthropicMessagesFrom), func(name string, v []byte) error {
		if isNull(v) {
			return nil
		}
		c := &in.MessagesRequest
		switch name {
		case "model":
			return decode(v, &c.Model, name)
		case "messages":
			in.messages = v
			return rawArray(v, name)
		case "system":
			c.System = v
		case "max_tokens":
			return decode(v, &c.MaxTokens, name)
		case "metadata":
			in.metadata = v
			return decode(v, &c.Metadata, name)
		case "stop_sequences":
			return decode(v, &c.StopSequences, name)
		case "stream":
			return decode(v, &c.Stream, name)
		case "temperature":
			return decode(v, &c.Temperature, name)
		case "top_p":
			return decode(v, &c.TopP, name)
		case "tools":
			in.tools = v
			return rawArray(v, name)
		case "tool_choice":
			return decode(v, &c.ToolChoice, name)
		case "thinking":
			return decode(v, &c.Thinking, name)
		case "output_config":
			return decode(v, &c.OutputConfig, name)
		case "mcp_servers":
			var servers []json.RawMessage
			if err := decode(v, &servers, name); err != nil {
				return err
			}
			if len(servers) > 0 {
				return errorf(name, "MCP servers are not available for this model")
			}
		case "models":
			// The gateway's own fallback list.
		default: // top_k, service_tier, container, context_management, ...
			r.add(name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	c := &in.MessagesRequest
	var out wire.ChatRequest
	out.Model = c.Model
	if opt.Model != "" {
		out.Model = opt.Model
	}

	// System prompt.
	var system []byte
	err = withFallback(&opt, r, func() bool {
		var ok bool
		system, ok = fastAnthropicSystem(c.System, r)
		return ok
	}, func() error {
		var err error
		system, err = slowAnthropicSystem(c.System, r)
		return err
	})
	if err != nil {
		return nil, err
	}

	// Messages.
	msgs, _, found, ok := pre.result(body, in.messages, r)
	err = withFallback(&opt, r, func() bool {
		if !found {
			msgs, ok = fastAnthropicMessages(in.messages, r)
		}
		return ok
	}, func() error {
		var err error
		msgs, err = slowAnthropicMessages(rawElements(in.messages), r)
		return err
	})
	if err != nil {
		return nil, err
	}
	var head []byte
	if system != nil {
		head = append(append([]byte{'['}, system...), ',')
		if msgs = msgs[1:]; msgs[0] == ']' {
			head = head[:len(head)-1]
		}
	}

	out.MaxCompletionTokens = c.MaxTokens
	out.Temperature = c.Temperature
	out.TopP = c.TopP
	if len(c.StopSequences) > 0 {
		out.Stop = mustMarshal(c.StopSequences)
	}
	if c.Stream {
		out.Stream = true
		out.StreamOptions = &wire.StreamOptions{IncludeUsage: true}
	}
	if in.metadata != nil {
		reportUnknown(in.metadata, "metadata", anthropicMetadataKeys, r)
	}
	if c.Metadata != nil && c.Metadata.UserID != "" {
		out.User = c.Metadata.UserID
	}

	// Tools.
	tools, ntools := []byte(nil), 0
	err = withFallback(&opt, r, func() bool {
		var ok bool
		tools, ntools, ok = fastAnthropicTools(in.tools, r)
		return ok
	}, func() error {
		list, err := slowAnthropicTools(rawElements(in.tools), r)
		if len(list) > 0 {
			tools, ntools = mustMarshal(list), len(list)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if tc := c.ToolChoice; tc != nil {
		switch tc.Type {
		case "auto":
			out.ToolChoice = mustMarshal("auto")
		case "any":
			out.ToolChoice = mustMarshal("required")
		case "none":
			out.ToolChoice = mustMarshal("none")
		case "tool":
			var f wire.ChatToolChoiceFunction
			f.Type = "function"
			f.Function.Name = tc.Name
			out.ToolChoice = mustMarshal(f)
		default:
			return nil, errorf("tool_choice.type", "unknown tool_choice type %q", tc.Type)
		}
		if tc.DisableParallelToolUse != nil && *tc.DisableParallelToolUse && ntools > 0 {
			out.ParallelToolCalls = ptr(false)
		}
	}

	// Thinking and effort → reasoning_effort.
	effort, effortFrom := "", ""
	if t := c.Thinking; t != nil {
		switch t.Type {
		case "enabled":
			var budget int64
			if t.BudgetTokens != nil {
				budget = *t.BudgetTokens
			}
			switch {
			case budget < effortLowMax:
				effort = "low"
			case budget < effortMediumMax:
				effort = "medium"
			default:
				effort = "high"
			}
			effortFrom = "thinking"
		case "disabled", "adaptive":
			// No reasoning_effort: the model's default (adaptive) or none.
		default:
			return nil, errorf("thinking.type", "unknown thinking type %q", t.Type)
		}
	}
	if oc := c.OutputConfig; oc != nil {
		switch oc.Effort {
		case "":
		case "low", "medium", "high", "xhigh":
			effort, effortFrom = oc.Effort, "output_config.effort"
		case "max":
			effort, effortFrom = "xhigh", "output_config.effort"
		default:
			return nil, errorf("output_config.effort", "unknown effort %q", oc.Effort)
		}
		if f := oc.Format; f != nil {
			if f.Type != "json_schema" || isNull(f.Schema) {
				return nil, errorf("output_config.format", "output format type %q cannot be translated", f.Type)
			}
			out.ResponseFormat = &wire.ResponseFormat{Type: "json_schema", JSONSchema: &wire.JSONSchema{
				Name:   "response",
				Schema: f.Schema,
				Strict: ptr(true),
			}}
		}
	}
	if effort != "" && opt.NoReasoning {
		r.add(effortFrom)
		effort = ""
	}
	out.ReasoningEffort = effort
	base, err := marshal(&out)
	if err != nil {
		return nil, err
	}
	return splice(base, chatRequestOrder,
		spliced{key: "messages", head: head, value: msgs}, spliced{key: "tools", value: tools}), nil
}

// slowAnthropicSystem converts the system prompt with encoding/json into
// the OpenAI system message (nil for none).
func slowAnthropicSystem(system []byte, r *removedSet) ([]byte, error) {
	if isNull(system) {
		return nil, nil
	}
	s, parts, isString, err := stringOrParts(system, "system")
	if err != nil {
		return nil, err
	}
	if !isString {
		var texts []string
		for _, braw := range parts {
			b, err := anthropicBlock(braw, "system", r)
			if err != nil {
				return nil, err
			}
			if b.Type != "text" || b.Text == nil {
				return nil, errorf("system.type", "system block type %q cannot be translated", b.Type)
			}
			texts = append(texts, *b.Text)
		}
		s = strings.Join(texts, "\n\n")
	}
	if s == "" {
		return nil, nil
	}
	return mustMarshal(wire.ChatMessage{Role: "system", Content: mustMarshal(s)}), nil
}

// slowAnthropicMessages converts the messages with encoding/json into the
// OpenAI messages array (without the system message).
func slowAnthropicMessages(messages []json.RawMessage, r *removedSet) ([]byte, error) {
	out := []wire.ChatMessage{}
	for _, mraw := range messages {
		if jsonx.KindOf(bytes.TrimSpace(mraw)) != jsonx.Object {
			return nil, errorf("messages", "each message must be a JSON object")
		}
		reportUnknown(mraw, "messages", anthropicMessageKeys, r)
		var m wire.Message
		if err := decode(mraw, &m, "messages"); err != nil {
			return nil, err
		}
		msgs, err := anthropicMessage(m, r)
		if err != nil {
			return nil, err
		}
		out = append(out, msgs...)
	}
	return mustMarshal(out), nil
}

// slowAnthropicTools converts the tools with encoding/json.
func slowAnthropicTools(tools []json.RawMessage, r *removedSet) ([]wire.ChatTool, error) {
	var out []wire.ChatTool
	for _, traw := range tools {
		if jsonx.KindOf(bytes.TrimSpace(traw)) != jsonx.Object {
			return nil, errorf("tools", "each tool must be a JSON object")
		}
		var t wire.Tool
		if err := decode(traw, &t, "tools"); err != nil {
			return nil, err
		}
		if t.Type != "" && t.Type != "custom" {
			return nil, errorf("tools.type", "server tool %q is not available for this model", t.Type)
		}
		reportUnknown(traw, "tools", anthropicToolKeys, r)
		if !isNull(t.CacheControl) {
			r.add("tools.cache_control")
		}
		schema := t.InputSchema
		if isNull(schema) {
			schema = json.RawMessage(defaultSchema)
		}
		out = append(out, wire.ChatTool{Type: "function", Function: &wire.ChatFunction{
			Name:        t.Name,
			Description: t.Description,
			Parameters:  schema,
			Strict:      t.Strict,
		}})
	}
	return out, nil
}

// anthropicBlock decodes one content block, reporting unknown keys and
// cache_control under prefix.
func anthropicBlock(raw json.RawMessage, prefix string, r *removedSet) (wire.ContentBlock, error) {
	var b wire.ContentBlock
	if jsonx.KindOf(bytes.TrimSpace(raw)) != jsonx.Object {
		return b, errorf(prefix, "each content block must be a JSON object")
	}
	if err := decode(raw, &b, prefix); err != nil {
		return b, err
	}
	reportUnknown(raw, prefix, anthropicBlockKeys, r)
	if !isNull(b.CacheControl) {
		r.add(prefix + ".cache_control")
	}
	if !isNull(b.Citations) {
		r.add(prefix + ".citations")
	}
	return b, nil
}

// anthropicMessage converts one Anthropic message into OpenAI messages: an
// assistant message, or for a user turn the tool messages of its
// tool_result blocks followed by a user message with the other blocks.
func anthropicMessage(m wire.Message, r *removedSet) ([]wire.ChatMessage, error) {
	s, parts, isString, err := stringOrParts(m.Content, "messages.content")
	if err != nil {
		return nil, err
	}
	switch m.Role {
	case "user", "assistant":
	default:
		return nil, errorf("messages.role", "unknown role %q", m.Role)
	}
	if isString {
		return []wire.ChatMessage{{Role: m.Role, Content: mustMarshal(s)}}, nil
	}
	var (
		out      []wire.ChatMessage
		userPart []wire.ChatContentPart // user content and tool-result images
		text     strings.Builder        // assistant text
		hasText  bool
		calls    []wire.ChatToolCall
	)
	for _, braw := range parts {
		b, err := anthropicBlock(braw, "messages.content", r)
		if err != nil {
			return nil, err
		}
		switch b.Type {
		case "text":
			t := ""
			if b.Text != nil {
				t = *b.Text
			}
			if m.Role == "assistant" {
				text.WriteString(t)
				hasText = true
			} else {
				userPart = append(userPart, wire.ChatContentPart{Type: "text", Text: &t})
			}
		case "image", "document":
			if m.Role == "assistant" {
				return nil, errorf("messages.content.type", "%s blocks are only allowed in user messages", b.Type)
			}
			p, err := anthropicMediaPart(b)
			if err != nil {
				return nil, err
			}
			userPart = append(userPart, p)
		case "tool_use":
			if m.Role != "assistant" {
				return nil, errorf("messages.content.type", "tool_use blocks are only allowed in assistant messages")
			}
			args := "{}"
			if !isNull(b.Input) {
				if c := compactJSON(b.Input); c != nil {
					args = string(c)
				}
			}
			calls = append(calls, wire.ChatToolCall{ID: b.ID, Type: "function", Function: wire.ChatFunctionCall{Name: b.Name, Arguments: args}})
		case "tool_result":
			if m.Role != "user" {
				return nil, errorf("messages.content.type", "tool_result blocks are only allowed in user messages")
			}
			content, media, err := toolResultContent(b, r)
			if err != nil {
				return nil, err
			}
			out = append(out, wire.ChatMessage{Role: "tool", ToolCallID: b.ToolUseID, Content: mustMarshal(content)})
			userPart = append(media, userPart...)
		case "thinking", "redacted_thinking":
			r.add("messages.content." + b.Type)
		default:
			return nil, errorf("messages.content.type", "content block type %q cannot be translated", b.Type)
		}
	}
	if m.Role == "assistant" {
		msg := wire.ChatMessage{Role: "assistant", ToolCalls: calls}
		if hasText || len(calls) == 0 {
			msg.Content = mustMarshal(text.String())
		} else {
			msg.Content = json.RawMessage("null")
		}
		return append(out, msg), nil
	}
	if len(userPart) > 0 {
		msg := wire.ChatMessage{Role: "user"}
		if len(userPart) == 1 && userPart[0].Type == "text" {
			msg.Content = mustMarshal(*userPart[0].Text)
		} else {
			msg.Content = mustMarshal(userPart)
		}
		out = append(out, msg)
	}
	if len(out) == 0 { // an empty user turn stays an (empty) user message
		out = append(out, wire.ChatMessage{Role: "user", Content: mustMarshal("")})
	}
	return out, nil
}

// anthropicMediaPart maps an image or document block onto an OpenAI part.
func anthropicMediaPart(b wire.ContentBlock) (wire.ChatContentPart, error) {
	src := b.Source
	if src == nil {
		return wire.ChatContentPart{}, errorf("messages.content.source", "missing source")
	}
	if b.Type == "image" {
		switch src.Type {
		case "base64":
			return wire.ChatContentPart{Type: "image_url", ImageURL: &wire.ImageURL{URL: "data:" + src.MediaType + ";base64," + src.Data}}, nil
		case "url":
			return wire.ChatContentPart{Type: "image_url", ImageURL: &wire.ImageURL{URL: src.URL}}, nil
		}
		return wire.ChatContentPart{}, errorf("messages.content.source.type", "image source type %q cannot be translated", src.Type)
	}
	switch src.Type {
	case "base64":
		name := b.Title
		if name == "" {
			name = "document.pdf"
		}
		return wire.ChatContentPart{Type: "file", File: &wire.FilePart{
			Filename: name,
			FileData: "data:" + src.MediaType + ";base64," + src.Data,
		}}, nil
	case "text":
		t := src.Data
		return wire.ChatContentPart{Type: "text", Text: &t}, nil
	}
	return wire.ChatContentPart{}, errorf("messages.content.source.type", "document source type %q cannot be translated", src.Type)
}

// toolResultContent flattens a tool_result's content into the string of an
// OpenAI tool message (text blocks joined with "\n\n", prefixed "Error: "
// when is_error) and the image or document parts that OpenAI tool messages
// cannot carry, which go into the user message that follows.
func toolResultContent(b wire.ContentBlock, r *removedSet) (string, []wire.ChatContentPart, error) {
	var texts []string
	var media []wire.ChatContentPart
	if !isNull(b.Content) {
		s, parts, isString, err := stringOrParts(b.Content, "messages.content.content")
		if err != nil {
			return "", nil, err
		}
		if isString {
			texts = append(texts, s)
		}
		for _, praw := range parts {
			pb, err := anthropicBlock(praw, "messages.content.content", r)
			if err != nil {
				return "", nil, err
			}
			switch pb.Type {
			case "text":
				if pb.Text != nil {
					texts = append(texts, *pb.Text)
				}
			case "image", "document":
				p, err := anthropicMediaPart(pb)
				if err != nil {
					return "", nil, err
				}
				media = append(media, p)
			default:
				return "", nil, errorf("messages.content.content.type", "tool result block type %q cannot be translated", pb.Type)
			}
		}
	}
	content := strings.Join(texts, "\n\n")
	if b.IsError != nil && *b.IsError {
		content = "Error: " + content
	}
	return content, media, nil
}

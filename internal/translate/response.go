package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/llmgate/gateway/internal/jsonx"
	"github.com/llmgate/gateway/internal/wire"
	"github.com/llmgate/gateway/providers"
)

// Response translates a successful non-streaming upstream response body in
// format from into the client's format to. Malformed bodies give an error
// (the gateway answers 502); from == to is an error.
func Response(from, to providers.Format, body []byte, opt ResponseOptions) ([]byte, error) {
	if err := checkFormats(from, to); err != nil {
		return nil, err
	}
	if from == providers.FormatAnthropic {
		return anthropicToOpenAIResponse(body, opt)
	}
	return openAIToAnthropicResponse(body, opt)
}

// openAIFinishReason maps an Anthropic stop_reason onto an OpenAI
// finish_reason.
func openAIFinishReason(stopReason string) string {
	switch stopReason {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	}
	return "stop" // end_turn, stop_sequence, pause_turn, null, unknown
}

// anthropicStopReason maps an OpenAI finish_reason onto an Anthropic
// stop_reason; stopSeq (vLLM's choice.stop_reason string) makes "stop" a
// stop_sequence.
func anthropicStopReason(finish string, hasStopSeq bool) string {
	switch finish {
	case "length":
		return "max_tokens"
	case "tool_calls", "function_call":
		return "tool_use"
	case "content_filter":
		return "refusal"
	case "stop":
		if hasStopSeq {
			return "stop_sequence"
		}
	}
	return "end_turn"
}

// chatID and messageID derive one format's response ID from the other's.
func chatID(anthropicID string) string { return "chatcmpl-" + anthropicID }
func messageID(openAIID string) string { return "msg_" + openAIID }

// openAIUsage builds OpenAI usage from Anthropic counts.
func openAIUsage(input, cacheRead, cacheWrite, output int64) *wire.ChatUsage {
	prompt := input + cacheRead + cacheWrite
	return &wire.ChatUsage{
		PromptTokens:        prompt,
		CompletionTokens:    output,
		TotalTokens:         prompt + output,
		PromptTokensDetails: &wire.PromptTokensDetails{CachedTokens: cacheRead, CacheWriteTokens: cacheWrite},
	}
}

// anthropicUsage builds Anthropic usage from OpenAI usage: input_tokens is
// the prompt minus cache reads and writes (never negative).
func anthropicUsage(u *wire.ChatUsage) wire.Usage {
	var au wire.Usage
	if u == nil {
		return au
	}
	if d := u.PromptTokensDetails; d != nil {
		au.CacheReadInputTokens = d.CachedTokens
		au.CacheCreationInputTokens = d.CacheWriteTokens
	}
	if au.CacheReadInputTokens == 0 {
		au.CacheReadInputTokens = u.PromptCacheHitTokens // DeepSeek
	}
	au.InputTokens = max(u.PromptTokens-au.CacheReadInputTokens-au.CacheCreationInputTokens, 0)
	au.OutputTokens = u.CompletionTokens
	return au
}

func anthropicToOpenAIResponse(body []byte, opt ResponseOptions) ([]byte, error) {
	var m struct {
		wire.MessageResponse
		Usage wire.StreamUsage `json:"usage"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("translate: invalid Anthropic message: %w", err)
	}
	if m.Type != "" && m.Type != "message" {
		return nil, fmt.Errorf("translate: unexpected Anthropic response type %q", m.Type)
	}
	var (
		text, reasoning strings.Builder
		hasText         bool
		calls           []wire.ChatToolCall
	)
	for _, b := range m.Content {
		switch b.Type {
		case "text":
			if b.Text != nil {
				text.WriteString(*b.Text)
				hasText = true
			}
		case "thinking":
			if b.Thinking != nil {
				reasoning.WriteString(*b.Thinking)
			}
		case "tool_use":
			args := "{}"
			if !isNull(b.Input) {
				if c := compactJSON(b.Input); c != nil {
					args = string(c)
				}
			}
			calls = append(calls, wire.ChatToolCall{ID: b.ID, Type: "function", Function: wire.ChatFunctionCall{Name: b.Name, Arguments: args}})
		}
		// redacted_thinking and server-tool blocks have no counterpart.
	}
	msg := wire.ChatResponseMessage{Role: "assistant", ToolCalls: calls, Content: json.RawMessage("null")}
	if hasText {
		msg.Content = mustMarshal(text.String())
	}
	if reasoning.Len() > 0 {
		msg.ReasoningContent = ptr(reasoning.String())
	}
	stop := ""
	if m.StopReason != nil {
		stop = *m.StopReason
	}
	model := m.Model
	if opt.ClientModel != "" {
		model = opt.ClientModel
	}
	u := m.Usage
	out := wire.ChatCompletion{
		ID:      chatID(m.ID),
		Object:  "chat.completion",
		Created: nowFunc(opt.Now)().Unix(),
		Model:   model,
		Choices: []wire.ChatChoice{{
			Message:      msg,
			Logprobs:     json.RawMessage("null"),
			FinishReason: openAIFinishReason(stop),
		}},
		Usage: openAIUsage(val(u.InputTokens), val(u.CacheReadInputTokens), val(u.CacheCreationInputTokens), val(u.OutputTokens)),
	}
	return marshal(&out)
}

func val(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func openAIToAnthropicResponse(body []byte, opt ResponseOptions) ([]byte, error) {
	var c wire.ChatCompletion
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("translate: invalid OpenAI chat completion: %w", err)
	}
	if len(c.Choices) == 0 {
		return nil, fmt.Errorf("translate: OpenAI chat completion has no choices")
	}
	ch := c.Choices[0]
	msg := ch.Message
	var content []wire.ContentBlock
	reasoning := msg.ReasoningContent
	if reasoning == nil || *reasoning == "" {
		reasoning = msg.Reasoning
	}
	if reasoning != nil && *reasoning != "" {
		content = append(content, wire.ContentBlock{Type: "thinking", Thinking: reasoning, Signature: ptr("")})
	}
	text, err := responseText(msg.Content)
	if err != nil {
		return nil, err
	}
	if text != "" {
		content = append(content, textBlock(text))
	}
	refused := msg.Refusal != nil && *msg.Refusal != ""
	if refused {
		content = append(content, textBlock(*msg.Refusal))
	}
	for _, tc := range msg.ToolCalls {
		content = append(content, wire.ContentBlock{
			Type:  "tool_use",
			ID:    tc.ID,
			Name:  tc.Function.Name,
			Input: responseInput(tc.Function.Arguments),
		})
	}
	if content == nil {
		content = []wire.ContentBlock{}
	}
	var stopSeq *string
	if raw := bytes.TrimSpace(ch.StopReason); jsonx.KindOf(raw) == jsonx.String && ch.FinishReason == "stop" {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			stopSeq = &s
		}
	}
	stop := anthropicStopReason(ch.FinishReason, stopSeq != nil)
	switch {
	case refused && stop == "end_turn":
		stop = "refusal"
	case len(msg.ToolCalls) > 0 && stop == "end_turn":
		stop = "tool_use" // tool calls finished with "stop" (Gemini)
	}
	model := c.Model
	if opt.ClientModel != "" {
		model = opt.ClientModel
	}
	out := wire.MessageResponse{
		ID:           messageID(c.ID),
		Type:         "message",
		Role:         "assistant",
		Model:        model,
		Content:      content,
		StopReason:   &stop,
		StopSequence: stopSeq,
		Usage:        anthropicUsage(c.Usage),
	}
	return marshal(&out)
}

// responseText reads an OpenAI message content: a string, null, or (from
// some compatible providers) an array of text parts, concatenated.
func responseText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	switch jsonx.KindOf(raw) {
	case jsonx.Invalid, jsonx.Null:
		return "", nil
	case jsonx.String:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("translate: invalid message content: %w", err)
		}
		return s, nil
	case jsonx.Array:
		var parts []wire.ChatContentPart
		if err := json.Unmarshal(raw, &parts); err != nil {
			return "", fmt.Errorf("translate: invalid message content: %w", err)
		}
		var b strings.Builder
		for _, p := range parts {
			if p.Type == "text" && p.Text != nil {
				b.WriteString(*p.Text)
			}
		}
		return b.String(), nil
	}
	return "", fmt.Errorf("translate: invalid message content of type %s", jsonx.KindOf(raw))
}

// responseInput turns a tool call's arguments string into a tool_use input:
// the arguments when they are a JSON object, {} otherwise (empty or
// malformed arguments, which Anthropic clients could not use anyway).
func responseInput(args string) json.RawMessage {
	trimmed := []byte(strings.TrimSpace(args))
	if jsonx.KindOf(trimmed) == jsonx.Object {
		if c := compactJSON(trimmed); c != nil {
			return c
		}
	}
	return json.RawMessage(`{}`)
}

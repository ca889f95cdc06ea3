package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/llmgate/gateway/internal/sse"
	"github.com/llmgate/gateway/providers"
)

// streamSummary is what a client assembles from a stream: the checks below
// validate the event order rules of the format and collect it.
type streamSummary struct {
	text      string
	reasoning string
	tools     []toolSummary
	stop      string // finish_reason (OpenAI) or stop_reason (Anthropic)
	usage     *usageSummary
	errored   bool
	complete  bool // [DONE] or message_stop
	events    int
}

type toolSummary struct{ id, name, args string }

// usageSummary is usage in Anthropic terms (input excludes the cache).
type usageSummary struct{ input, cacheRead, cacheWrite, output int64 }

func validateStream(t testing.TB, f providers.Format, out []byte) streamSummary {
	t.Helper()
	var s streamSummary
	var err error
	if f == providers.FormatOpenAI {
		s, err = checkOpenAIStream(out)
	} else {
		s, err = checkAnthropicStream(out)
	}
	if err != nil {
		t.Fatalf("invalid %s stream: %v\n%s", f, err, out)
	}
	return s
}

func readEvents(out []byte, fn func(name, data []byte) error) error {
	rd := sse.NewReader(bytes.NewReader(out), 0)
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if ev.IsComment() {
			continue
		}
		if err := fn(ev.Name, ev.Data); err != nil {
			return fmt.Errorf("%w (event %q: %s)", err, ev.Name, ev.Data)
		}
	}
}

func strictUnmarshal(data []byte, v any) error {
	if !json.Valid(data) {
		return fmt.Errorf("invalid JSON")
	}
	return json.Unmarshal(data, v)
}

// checkOpenAIStream enforces: every data event is a chunk, an error or
// [DONE]; one id; role "assistant" once, in the first chunk; at most one
// finish_reason; tool calls announced (index = next free index, id, type
// function, name) before their argument fragments; the usage chunk (no
// choices) after the finish chunk; nothing after [DONE] or an error.
func checkOpenAIStream(out []byte) (streamSummary, error) {
	var s streamSummary
	var id string
	chunks, roles := 0, 0
	finished, ended := false, false
	err := readEvents(out, func(name, data []byte) error {
		s.events++
		if ended {
			return fmt.Errorf("event after the end of the stream")
		}
		if len(name) != 0 {
			return fmt.Errorf("named event")
		}
		if string(data) == "[DONE]" {
			ended, s.complete = true, true
			if !finished {
				return fmt.Errorf("[DONE] without a finish chunk")
			}
			return nil
		}
		var c struct {
			ID      *string `json:"id"`
			Object  string  `json:"object"`
			Choices *[]struct {
				Index int `json:"index"`
				Delta struct {
					Role             *string `json:"role"`
					Content          *string `json:"content"`
					ReasoningContent *string `json:"reasoning_content"`
					ToolCalls        []struct {
						Index    *int    `json:"index"`
						ID       *string `json:"id"`
						Type     *string `json:"type"`
						Function struct {
							Name      *string `json:"name"`
							Arguments *string `json:"arguments"`
						} `json:"function"`
					} `json:"tool_calls"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Usage *struct {
				PromptTokens        int64 `json:"prompt_tokens"`
				CompletionTokens    int64 `json:"completion_tokens"`
				TotalTokens         int64 `json:"total_tokens"`
				PromptTokensDetails struct {
					CachedTokens     int64 `json:"cached_tokens"`
					CacheWriteTokens int64 `json:"cache_write_tokens"`
				} `json:"prompt_tokens_details"`
			} `json:"usage"`
			Error *struct {
				Message string `json:"message"`
				Type    string `json:"type"`
			} `json:"error"`
		}
		if err := strictUnmarshal(data, &c); err != nil {
			return err
		}
		if c.Error != nil {
			ended, s.errored = true, true
			return nil
		}
		if c.ID == nil || c.Object != "chat.completion.chunk" || c.Choices == nil {
			return fmt.Errorf("not a chunk")
		}
		if chunks == 0 {
			id = *c.ID
		} else if *c.ID != id {
			return fmt.Errorf("id changed from %q to %q", id, *c.ID)
		}
		chunks++
		if c.Usage != nil {
			if len(*c.Choices) != 0 || !finished || s.usage != nil {
				return fmt.Errorf("misplaced usage chunk")
			}
			u := c.Usage
			if u.TotalTokens != u.PromptTokens+u.CompletionTokens {
				return fmt.Errorf("total_tokens mismatch")
			}
			d := u.PromptTokensDetails
			s.usage = &usageSummary{input: u.PromptTokens - d.CachedTokens - d.CacheWriteTokens, cacheRead: d.CachedTokens, cacheWrite: d.CacheWriteTokens, output: u.CompletionTokens}
			return nil
		}
		if len(*c.Choices) != 1 {
			return fmt.Errorf("want one choice")
		}
		ch := (*c.Choices)[0]
		if ch.Index != 0 {
			return fmt.Errorf("choice index %d", ch.Index)
		}
		if finished {
			return fmt.Errorf("chunk after the finish chunk")
		}
		d := ch.Delta
		if d.Role != nil {
			roles++
			if *d.Role != "assistant" || chunks != 1 || roles != 1 {
				return fmt.Errorf("role must be sent once, in the first chunk")
			}
		} else if chunks == 1 {
			return fmt.Errorf("first chunk without role")
		}
		if d.Content != nil {
			s.text += *d.Content
		}
		if d.ReasoningContent != nil {
			s.reasoning += *d.ReasoningContent
		}
		for _, tc := range d.ToolCalls {
			if tc.Index == nil {
				return fmt.Errorf("tool call without index")
			}
			i := *tc.Index
			switch {
			case i == len(s.tools):
				if tc.ID == nil || tc.Type == nil || *tc.Type != "function" || tc.Function.Name == nil {
					return fmt.Errorf("tool call %d announced without id, type or name", i)
				}
				s.tools = append(s.tools, toolSummary{id: *tc.ID, name: *tc.Function.Name})
			case i < len(s.tools):
				if tc.ID != nil || tc.Function.Name != nil {
					return fmt.Errorf("tool call %d announced twice", i)
				}
			default:
				return fmt.Errorf("tool call index %d skips %d", i, len(s.tools))
			}
			if tc.Function.Arguments != nil {
				s.tools[i].args += *tc.Function.Arguments
			}
		}
		if ch.FinishReason != nil {
			finished = true
			s.stop = *ch.FinishReason
		}
		return nil
	})
	if err == nil && chunks > 0 && roles != 1 {
		err = fmt.Errorf("no role chunk")
	}
	return s, err
}

// checkAnthropicStream enforces: message_start first (or only an error);
// content_block_start at the next index with no other block open; deltas
// and stops only for the open block, with delta types matching the block;
// one message_delta with no block open, then message_stop last; nothing
// after an error; event names equal to the data's type.
func checkAnthropicStream(out []byte) (streamSummary, error) {
	var s streamSummary
	started, ended, deltaSeen := false, false, false
	blocks := 0
	open := -1
	openType := ""
	var cur *toolSummary
	err := readEvents(out, func(name, data []byte) error {
		s.events++
		if ended {
			return fmt.Errorf("event after the end of the stream")
		}
		var e struct {
			Type    string `json:"type"`
			Message *struct {
				ID    string          `json:"id"`
				Type  string          `json:"type"`
				Role  string          `json:"role"`
				Model *string         `json:"model"`
				Usage *usageAnthropic `json:"usage"`
			} `json:"message"`
			Index        *int `json:"index"`
			ContentBlock *struct {
				Type  string          `json:"type"`
				ID    string          `json:"id"`
				Name  string          `json:"name"`
				Input json.RawMessage `json:"input"`
			} `json:"content_block"`
			Delta *struct {
				Type         string  `json:"type"`
				Text         *string `json:"text"`
				Thinking     *string `json:"thinking"`
				PartialJSON  *string `json:"partial_json"`
				StopReason   *string `json:"stop_reason"`
				StopSequence *string `json:"stop_sequence"`
			} `json:"delta"`
			Usage *usageAnthropic `json:"usage"`
			Error *struct {
				Type    string `json:"type"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := strictUnmarshal(data, &e); err != nil {
			return err
		}
		if string(name) != e.Type {
			return fmt.Errorf("event name %q differs from type %q", name, e.Type)
		}
		if e.Type == "ping" {
			return nil
		}
		if e.Type == "error" {
			if e.Error == nil || e.Error.Type == "" {
				return fmt.Errorf("error event without error")
			}
			ended, s.errored = true, true
			return nil
		}
		if !started && e.Type != "message_start" {
			return fmt.Errorf("%s before message_start", e.Type)
		}
		switch e.Type {
		case "message_start":
			if started || e.Message == nil || e.Message.Role != "assistant" || e.Message.Type != "message" || e.Message.Usage == nil || e.Message.Model == nil {
				return fmt.Errorf("bad message_start")
			}
			started = true
		case "content_block_start":
			if deltaSeen || open >= 0 || e.Index == nil || *e.Index != blocks || e.ContentBlock == nil {
				return fmt.Errorf("bad content_block_start (open %d, next %d)", open, blocks)
			}
			open, openType = blocks, e.ContentBlock.Type
			blocks++
			switch openType {
			case "text", "thinking":
			case "tool_use":
				if string(e.ContentBlock.Input) != "{}" || e.ContentBlock.ID == "" {
					return fmt.Errorf("bad tool_use start")
				}
				s.tools = append(s.tools, toolSummary{id: e.ContentBlock.ID, name: e.ContentBlock.Name})
				cur = &s.tools[len(s.tools)-1]
			default:
				return fmt.Errorf("unexpected block type %q", openType)
			}
		case "content_block_delta":
			if e.Index == nil || *e.Index != open || e.Delta == nil {
				return fmt.Errorf("delta for block %v, open %d", e.Index, open)
			}
			d := e.Delta
			switch {
			case openType == "text" && d.Type == "text_delta" && d.Text != nil:
				s.text += *d.Text
			case openType == "thinking" && d.Type == "thinking_delta" && d.Thinking != nil:
				s.reasoning += *d.Thinking
			case openType == "thinking" && d.Type == "signature_delta":
			case openType == "tool_use" && d.Type == "input_json_delta" && d.PartialJSON != nil:
				cur.args += *d.PartialJSON
			default:
				return fmt.Errorf("delta %q in %q block", d.Type, openType)
			}
		case "content_block_stop":
			if e.Index == nil || *e.Index != open {
				return fmt.Errorf("stop for block %v, open %d", e.Index, open)
			}
			open = -1
		case "message_delta":
			if deltaSeen || open >= 0 || e.Delta == nil || e.Delta.StopReason == nil || e.Usage == nil || e.Usage.OutputTokens == nil {
				return fmt.Errorf("bad message_delta")
			}
			deltaSeen = true
			s.stop = *e.Delta.StopReason
			u := e.Usage
			s.usage = &usageSummary{input: val(u.InputTokens), cacheRead: val(u.CacheReadInputTokens), cacheWrite: val(u.CacheCreationInputTokens), output: *u.OutputTokens}
		case "message_stop":
			if !deltaSeen {
				return fmt.Errorf("message_stop without message_delta")
			}
			ended, s.complete = true, true
		default:
			return fmt.Errorf("unexpected event type %q", e.Type)
		}
		return nil
	})
	return s, err
}

type usageAnthropic struct {
	InputTokens              *int64 `json:"input_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
	OutputTokens             *int64 `json:"output_tokens"`
}

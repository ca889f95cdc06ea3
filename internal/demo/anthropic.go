package demo

import (
	"encoding/json"
	"net/http"
)

type messagesRequest struct {
	Model     string `json:"model"`
	MaxTokens *int   `json:"max_tokens"`
	Messages  []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	System json.RawMessage `json:"system"`
	Stream bool            `json:"stream"`
	Tools  []struct {
		Name string `json:"name"`
	} `json:"tools"`
	ToolChoice *struct {
		Type string `json:"type"`
		Name string `json:"name"`
	} `json:"tool_choice"`
}

type message struct {
	ID           string         `json:"id"`
	Type         string         `json:"type"`
	Role         string         `json:"role"`
	Model        string         `json:"model"`
	Content      []contentBlock `json:"content"`
	StopReason   *string        `json:"stop_reason"`
	StopSequence *string        `json:"stop_sequence"`
	Usage        messageUsage   `json:"usage"`
}

type contentBlock struct {
	Type  string          `json:"type"`
	Text  *string         `json:"text,omitempty"`
	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`
}

type messageUsage struct {
	InputTokens              int `json:"input_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	OutputTokens             int `json:"output_tokens"`
}

// messageEvent is one Messages stream event; only the fields of its type
// are set.
type messageEvent struct {
	Type         string        `json:"type"`
	Message      *message      `json:"message,omitempty"`
	Index        *int          `json:"index,omitempty"`
	ContentBlock *contentBlock `json:"content_block,omitempty"`
	Delta        any           `json:"delta,omitempty"`
	Usage        *messageUsage `json:"usage,omitempty"`
}

type blockDelta struct {
	Type        string  `json:"type"`
	Text        *string `json:"text,omitempty"`
	PartialJSON *string `json:"partial_json,omitempty"`
}

type stopDelta struct {
	StopReason   string  `json:"stop_reason"`
	StopSequence *string `json:"stop_sequence"`
}

func (u *Upstream) messages(w http.ResponseWriter, r *http.Request, body []byte) {
	var req messagesRequest
	if err := json.Unmarshal(body, &req); err != nil {
		anthropic.writeError(w, http.StatusBadRequest, "invalid_request_error", badJSON(err))
		return
	}
	switch {
	case req.Model == "":
		anthropic.writeError(w, http.StatusBadRequest, "invalid_request_error", "model: Field required")
		return
	case req.MaxTokens == nil:
		anthropic.writeError(w, http.StatusBadRequest, "invalid_request_error", "max_tokens: Field required")
		return
	case len(req.Messages) == 0:
		anthropic.writeError(w, http.StatusBadRequest, "invalid_request_error", "messages: at least one message is required")
		return
	}
	inChars := len(textOf(req.System, "text"))
	lastUser, lastIsUser := "", false
	for i, m := range req.Messages {
		t := textOf(m.Content, "text")
		inChars += len(t)
		if m.Role == "user" && t != "" {
			lastUser = t
			lastIsUser = i == len(req.Messages)-1
		}
	}

	// Decide between a text answer and a tool call.
	var call *contentBlock
	if len(req.Tools) > 0 {
		first := req.Tools[0].Name
		name, forced, forbidden := first, false, false
		if tc := req.ToolChoice; tc != nil {
			forced, forbidden = tc.Type == "any" || tc.Type == "tool", tc.Type == "none"
			if tc.Type == "tool" && tc.Name != "" {
				name = tc.Name
			}
		}
		if !forbidden && name != "" && (forced || (lastIsUser && asksForTool(lastUser, first))) {
			call = &contentBlock{Type: "tool_use", ID: u.nextID("toolu_demo_"), Name: name, Input: json.RawMessage("{}")}
		}
	}
	text := Reply(lastUser)
	stop := "end_turn"
	usage := messageUsage{InputTokens: countTokens(inChars), OutputTokens: countTokens(len(text))}
	if call != nil {
		stop = "tool_use"
		usage.OutputTokens = countTokens(len(call.Name) + 2)
	}
	id := u.nextID("msg_demo_")
	w.Header().Set("Request-Id", u.nextID("req_demo_"))

	if !req.Stream {
		content := []contentBlock{{Type: "text", Text: &text}}
		if call != nil {
			content = []contentBlock{*call}
		}
		writeJSON(w, http.StatusOK, message{
			ID: id, Type: "message", Role: "assistant", Model: req.Model,
			Content: content, StopReason: &stop, Usage: usage,
		})
		return
	}

	s := startStream(w)
	send := func(ev messageEvent) bool { return s.send(ev.Type, ev) }
	zero := 0
	startUsage := usage
	startUsage.OutputTokens = 1
	if !send(messageEvent{Type: "message_start", Message: &message{
		ID: id, Type: "message", Role: "assistant", Model: req.Model,
		Content: []contentBlock{}, Usage: startUsage,
	}}) {
		return
	}
	if call != nil {
		start := *call
		start.Input = json.RawMessage("{}")
		args := "{}"
		if !send(messageEvent{Type: "content_block_start", Index: &zero, ContentBlock: &start}) ||
			!send(messageEvent{Type: "ping"}) ||
			!u.pause(r) ||
			!send(messageEvent{Type: "content_block_delta", Index: &zero, Delta: blockDelta{Type: "input_json_delta", PartialJSON: &args}}) {
			return
		}
	} else {
		empty := ""
		if !send(messageEvent{Type: "content_block_start", Index: &zero, ContentBlock: &contentBlock{Type: "text", Text: &empty}}) ||
			!send(messageEvent{Type: "ping"}) {
			return
		}
		for i, word := range Words(text) {
			if i > 0 && !u.pause(r) {
				return
			}
			if !send(messageEvent{Type: "content_block_delta", Index: &zero, Delta: blockDelta{Type: "text_delta", Text: &word}}) {
				return
			}
		}
	}
	_ = send(messageEvent{Type: "content_block_stop", Index: &zero}) &&
		send(messageEvent{Type: "message_delta", Delta: stopDelta{StopReason: stop}, Usage: &usage}) &&
		send(messageEvent{Type: "message_stop"})
}

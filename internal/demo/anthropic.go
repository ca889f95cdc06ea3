package demo

import (
	"encoding/json"
	"net/http"

	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
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

func (u *Upstream) messages(w http.ResponseWriter, r *http.Request, body []byte) {
	bad := func(message string) {
		u.fail(w, r, providers.FormatAnthropic, http.StatusBadRequest, message)
	}
	var req messagesRequest
	if err := json.Unmarshal(body, &req); err != nil {
		bad(badJSON(err))
		return
	}
	switch {
	case req.Model == "":
		bad("model: Field required")
		return
	case req.MaxTokens == nil:
		bad("max_tokens: Field required")
		return
	case len(req.Messages) == 0:
		bad("messages: at least one message is required")
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
	text := Reply(lastUser)
	reply := u.reply("msg_demo_", req.Model, text, providertest.Usage{Input: countTokens(inChars), Output: countTokens(len(text))})

	// Decide between a text answer and a tool call.
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
			reply.ToolCalls = []providertest.ToolCall{{ID: u.nextID("toolu_demo_"), Name: name, Arguments: []string{"{}"}}}
			reply.Usage.Output = countTokens(len(name) + 2)
		}
	}

	if !req.Stream {
		u.answer(w, r, providers.FormatAnthropic, providertest.AnthropicReply(reply))
		return
	}
	u.answer(w, r, providers.FormatAnthropic, providertest.AnthropicReplyStream(reply))
}

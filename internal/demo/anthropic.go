package demo

import (
	"encoding/json"
	"net/http"

	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

type messagesRequest struct {
	named
	MaxTokens *int            `json:"max_tokens"`
	Messages  []message       `json:"messages"`
	System    json.RawMessage `json:"system"`
	Stream    bool            `json:"stream"`
	Tools     []struct {
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
	if !u.decode(w, r, providers.FormatAnthropic, body, &req) {
		return
	}
	switch {
	case req.MaxTokens == nil:
		bad("max_tokens: Field required")
		return
	case len(req.Messages) == 0:
		bad("messages: at least one message is required")
		return
	}
	inChars, lastUser, lastIsUser := conversation(req.Messages)
	inChars += len(textOf(req.System, "text"))
	text := Reply(lastUser)
	reply := u.reply("msg_demo_", req.Model, text, providertest.Usage{Input: countTokens(inChars), Output: countTokens(len(text))})
	if len(req.Tools) > 0 {
		tc := toolChoice{first: req.Tools[0].Name, name: req.Tools[0].Name}
		if c := req.ToolChoice; c != nil {
			tc.forced, tc.forbidden = c.Type == "any" || c.Type == "tool", c.Type == "none"
			if c.Type == "tool" && c.Name != "" {
				tc.name = c.Name
			}
		}
		u.maybeCall(&reply, tc, "toolu_demo_", lastUser, lastIsUser)
	}

	if !req.Stream {
		u.answer(w, r, providers.FormatAnthropic, providertest.AnthropicReply(reply))
		return
	}
	u.answer(w, r, providers.FormatAnthropic, providertest.AnthropicReplyStream(reply))
}

package translate

import (
	"encoding/json"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/shared"
	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/internal/wire"
	"github.com/llmgate/gateway/providers"
)

// TestToolRoundTripOpenAIClient plays a full tool conversation of an OpenAI
// client served by an Anthropic model: request with tools, tool_use
// response, follow-up with the tool result, final answer. Client requests
// are built and responses read with the official SDK types.
func TestToolRoundTripOpenAIClient(t *testing.T) {
	params := openai.ChatCompletionNewParams{
		Model:    "claude-sonnet-4-5",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage("Weather in Paris?")},
		Tools: []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name:        "get_weather",
			Description: openai.String("Weather for a city"),
			Parameters:  shared.FunctionParameters{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []string{"city"}},
		})},
		ToolChoice: openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("auto")},
	}
	body, err := json.Marshal(params)
	require.NoError(t, err)

	// 1. The request goes to Anthropic with the tool.
	up, removed, err := Request(providers.FormatOpenAI, providers.FormatAnthropic, body, RequestOptions{Model: "claude-sonnet-4-5-20250929", MaxOutputTokens: 64000})
	require.NoError(t, err)
	require.Empty(t, removed)
	var areq wire.MessagesRequest
	require.NoError(t, json.Unmarshal(up, &areq))
	require.Equal(t, "claude-sonnet-4-5-20250929", areq.Model)
	require.EqualValues(t, 64000, *areq.MaxTokens)
	require.JSONEq(t, `"Be brief."`, string(areq.System))
	require.Len(t, areq.Tools, 1)
	require.Equal(t, "get_weather", areq.Tools[0].Name)
	require.JSONEq(t, `{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`, string(areq.Tools[0].InputSchema))
	require.Equal(t, "auto", areq.ToolChoice.Type)

	// 2. Anthropic answers with a tool_use; the client reads tool_calls.
	toolUse := `{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Checking."},{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":50,"output_tokens":20}}`
	res, err := Response(providers.FormatAnthropic, providers.FormatOpenAI, []byte(toolUse), ResponseOptions{ClientModel: "claude-sonnet-4-5", Now: fixedNow})
	require.NoError(t, err)
	var cc openai.ChatCompletion
	require.NoError(t, json.Unmarshal(res, &cc))
	require.Equal(t, "tool_calls", cc.Choices[0].FinishReason)
	calls := cc.Choices[0].Message.ToolCalls
	require.Len(t, calls, 1)
	require.Equal(t, "toolu_1", calls[0].ID)
	require.JSONEq(t, `{"city":"Paris"}`, calls[0].Function.Arguments)

	// 3. The client sends the tool result; Anthropic gets tool_use and
	// tool_result blocks.
	params.Messages = append(params.Messages, cc.Choices[0].Message.ToParam(), openai.ToolMessage("18C and sunny", calls[0].ID))
	body, err = json.Marshal(params)
	require.NoError(t, err)
	up, _, err = Request(providers.FormatOpenAI, providers.FormatAnthropic, body, RequestOptions{})
	require.NoError(t, err)
	areq = wire.MessagesRequest{}
	require.NoError(t, json.Unmarshal(up, &areq))
	require.Len(t, areq.Messages, 3)
	var blocks []wire.ContentBlock
	require.NoError(t, json.Unmarshal(areq.Messages[1].Content, &blocks))
	require.Equal(t, "assistant", areq.Messages[1].Role)
	require.Len(t, blocks, 2)
	require.Equal(t, "Checking.", *blocks[0].Text)
	require.Equal(t, "tool_use", blocks[1].Type)
	require.Equal(t, "toolu_1", blocks[1].ID)
	require.JSONEq(t, `{"city":"Paris"}`, string(blocks[1].Input))
	require.NoError(t, json.Unmarshal(areq.Messages[2].Content, &blocks))
	require.Equal(t, "user", areq.Messages[2].Role)
	require.Equal(t, "tool_result", blocks[0].Type)
	require.Equal(t, "toolu_1", blocks[0].ToolUseID)
	require.JSONEq(t, `"18C and sunny"`, string(blocks[0].Content))

	// 4. The final answer.
	final := `{"id":"msg_2","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"It is 18C and sunny."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":80,"output_tokens":9}}`
	res, err = Response(providers.FormatAnthropic, providers.FormatOpenAI, []byte(final), ResponseOptions{Now: fixedNow})
	require.NoError(t, err)
	cc = openai.ChatCompletion{}
	require.NoError(t, json.Unmarshal(res, &cc))
	require.Equal(t, "stop", cc.Choices[0].FinishReason)
	require.Equal(t, "It is 18C and sunny.", cc.Choices[0].Message.Content)
}

// TestToolRoundTripAnthropicClient plays the same conversation for an
// Anthropic client served by an OpenAI model.
func TestToolRoundTripAnthropicClient(t *testing.T) {
	params := anthropic.MessageNewParams{
		Model:     "gpt-4o",
		MaxTokens: 1024,
		System:    []anthropic.TextBlockParam{{Text: "Be brief."}},
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Weather in Paris?"))},
		Tools: []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{
			Name:        "get_weather",
			Description: anthropic.String("Weather for a city"),
			InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"city": map[string]any{"type": "string"}}, Required: []string{"city"}},
		}}},
		ToolChoice: anthropic.ToolChoiceUnionParam{OfAny: &anthropic.ToolChoiceAnyParam{}},
	}
	body, err := json.Marshal(params)
	require.NoError(t, err)

	up, removed, err := Request(providers.FormatAnthropic, providers.FormatOpenAI, body, RequestOptions{})
	require.NoError(t, err)
	require.Empty(t, removed)
	var oreq wire.ChatRequest
	require.NoError(t, json.Unmarshal(up, &oreq))
	require.Equal(t, "system", oreq.Messages[0].Role)
	require.Len(t, oreq.Tools, 1)
	require.Equal(t, "get_weather", oreq.Tools[0].Function.Name)
	require.JSONEq(t, `{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`, string(oreq.Tools[0].Function.Parameters))
	require.JSONEq(t, `"required"`, string(oreq.ToolChoice))
	require.EqualValues(t, 1024, *oreq.MaxCompletionTokens)

	toolCall := `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":50,"completion_tokens":20,"total_tokens":70}}`
	res, err := Response(providers.FormatOpenAI, providers.FormatAnthropic, []byte(toolCall), ResponseOptions{})
	require.NoError(t, err)
	var msg anthropic.Message
	require.NoError(t, json.Unmarshal(res, &msg))
	require.Equal(t, anthropic.StopReasonToolUse, msg.StopReason)
	require.Len(t, msg.Content, 1)
	require.Equal(t, "call_1", msg.Content[0].ID)

	params.Messages = append(params.Messages, msg.ToParam(),
		anthropic.NewUserMessage(anthropic.NewToolResultBlock("call_1", "18C and sunny", false)))
	body, err = json.Marshal(params)
	require.NoError(t, err)
	up, _, err = Request(providers.FormatAnthropic, providers.FormatOpenAI, body, RequestOptions{})
	require.NoError(t, err)
	oreq = wire.ChatRequest{}
	require.NoError(t, json.Unmarshal(up, &oreq))
	require.Len(t, oreq.Messages, 4)
	a := oreq.Messages[2]
	require.Equal(t, "assistant", a.Role)
	require.Len(t, a.ToolCalls, 1)
	require.Equal(t, "call_1", a.ToolCalls[0].ID)
	require.JSONEq(t, `{"city":"Paris"}`, a.ToolCalls[0].Function.Arguments)
	tm := oreq.Messages[3]
	require.Equal(t, "tool", tm.Role)
	require.Equal(t, "call_1", tm.ToolCallID)
	require.JSONEq(t, `"18C and sunny"`, string(tm.Content))

	final := `{"id":"chatcmpl-2","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"It is 18C and sunny."},"finish_reason":"stop"}],"usage":{"prompt_tokens":80,"completion_tokens":9,"total_tokens":89}}`
	res, err = Response(providers.FormatOpenAI, providers.FormatAnthropic, []byte(final), ResponseOptions{})
	require.NoError(t, err)
	msg = anthropic.Message{}
	require.NoError(t, json.Unmarshal(res, &msg))
	require.Equal(t, anthropic.StopReasonEndTurn, msg.StopReason)
	require.Equal(t, "It is 18C and sunny.", msg.Content[0].Text)
}

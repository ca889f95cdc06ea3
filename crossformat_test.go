package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	anthropicsdk "github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	openaisdk "github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/internal/sse"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

// Tests of cross-format serving: an OpenAI-format client served by an
// Anthropic provider and the reverse, through the gateway with the
// official SDKs.

var weatherTool = openaisdk.ChatCompletionToolUnionParam{
	OfFunction: &openaisdk.ChatCompletionFunctionToolParam{Function: openaisdk.FunctionDefinitionParam{
		Name:        "get_weather",
		Description: openaisdk.String("Weather for a city"),
		Parameters: openaisdk.FunctionParameters{
			"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []string{"city"},
		},
	}},
}

func TestOpenAIClientServedByAnthropic(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.an.Enqueue(providertest.AnthropicMessage("claude-sonnet-4-5", "Bonjour", providertest.Usage{Input: 9, Output: 2, CacheRead: 5}))
	var resp *http.Response
	out, err := e.openai().Chat.Completions.New(context.Background(), openaisdk.ChatCompletionNewParams{
		Model: "claude-sonnet-4-5",
		Messages: []openaisdk.ChatCompletionMessageParamUnion{
			openaisdk.SystemMessage("Be brief."), openaisdk.UserMessage("Hi"),
		},
		Seed: openaisdk.Int(7),
	}, ooption.WithResponseInto(&resp))
	require.NoError(t, err)
	require.Equal(t, "Bonjour", out.Choices[0].Message.Content)
	require.Equal(t, "stop", out.Choices[0].FinishReason)
	require.Equal(t, int64(14), out.Usage.PromptTokens, "input plus cache reads")
	require.Equal(t, int64(5), out.Usage.PromptTokensDetails.CachedTokens)
	require.Equal(t, "anthropic:claude-sonnet-4-5", resp.Header.Get(HeaderModel))
	require.Equal(t, "seed", resp.Header.Get(HeaderRemovedParams))

	r := e.an.Requests()[0]
	require.Equal(t, "/v1/messages", r.Path)
	require.Equal(t, "sk-an-1", r.Header.Get("X-Api-Key"))
	var sent struct {
		Model     string `json:"model"`
		MaxTokens int    `json:"max_tokens"`
		System    any    `json:"system"`
		Messages  []any  `json:"messages"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &sent))
	require.Equal(t, "claude-sonnet-4-5", sent.Model)
	require.Positive(t, sent.MaxTokens, "Anthropic requires max_tokens: the catalog default is used")
	require.NotNil(t, sent.System)
	require.Len(t, sent.Messages, 1)
	require.NotContains(t, string(r.Body), `"seed"`)

	ev := e.events.last(t)
	require.True(t, ev.Attempts[0].Translated)
	require.Equal(t, []string{"seed"}, ev.RemovedParams)
	require.Equal(t, int64(14), ev.Usage.InputTokens)
}

func TestOpenAIClientStreamsToolCallsFromAnthropic(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.an.Enqueue(providertest.AnthropicToolUseStream("claude-sonnet-4-5", []providertest.ToolCall{
		{ID: "toolu_1", Name: "get_weather", Arguments: []string{`{"ci`, `ty": "Par`, `is"}`}},
		{ID: "toolu_2", Name: "get_weather", Arguments: []string{`{"city":`, ` "Rome"}`}},
	}, providertest.Usage{Input: 20, Output: 12}))
	stream := e.openai().Chat.Completions.NewStreaming(context.Background(), openaisdk.ChatCompletionNewParams{
		Model:         "anthropic:claude-sonnet-4-5",
		Messages:      []openaisdk.ChatCompletionMessageParamUnion{openaisdk.UserMessage("Weather in Paris and Rome?")},
		Tools:         []openaisdk.ChatCompletionToolUnionParam{weatherTool},
		StreamOptions: openaisdk.ChatCompletionStreamOptionsParam{IncludeUsage: openaisdk.Bool(true)},
	})
	defer stream.Close()
	var acc openaisdk.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	require.NoError(t, stream.Err())
	calls := acc.Choices[0].Message.ToolCalls
	require.Len(t, calls, 2)
	require.Equal(t, "toolu_1", calls[0].ID)
	require.Equal(t, "get_weather", calls[0].Function.Name)
	require.JSONEq(t, `{"city":"Paris"}`, calls[0].Function.Arguments)
	require.JSONEq(t, `{"city":"Rome"}`, calls[1].Function.Arguments)
	require.Equal(t, "tool_calls", acc.Choices[0].FinishReason)
	require.Equal(t, int64(12), acc.Usage.CompletionTokens)

	var sent struct {
		Tools []struct {
			Name        string          `json:"name"`
			InputSchema json.RawMessage `json:"input_schema"`
		} `json:"tools"`
		Stream bool `json:"stream"`
	}
	require.NoError(t, json.Unmarshal(e.an.Requests()[0].Body, &sent))
	require.True(t, sent.Stream)
	require.Equal(t, "get_weather", sent.Tools[0].Name)
	require.Contains(t, string(sent.Tools[0].InputSchema), `"city"`)
}

func TestAnthropicClientServedByOpenAI(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.oa.Enqueue(providertest.OpenAIChat("gpt-4o", "Hello there", providertest.Usage{Input: 11, Output: 3}))
	var resp *http.Response
	msg, err := e.anthropic().Messages.New(context.Background(), anthropicsdk.MessageNewParams{
		Model: "openai:gpt-4o", MaxTokens: 100,
		System:   []anthropicsdk.TextBlockParam{{Text: "Be brief."}},
		Messages: []anthropicsdk.MessageParam{anthropicsdk.NewUserMessage(anthropicsdk.NewTextBlock("Hi"))},
	}, aoption.WithResponseInto(&resp))
	require.NoError(t, err)
	require.Equal(t, "Hello there", msg.Content[0].Text)
	require.Equal(t, anthropicsdk.StopReasonEndTurn, msg.StopReason)
	require.Equal(t, int64(11), msg.Usage.InputTokens)
	require.Equal(t, "openai:gpt-4o", resp.Header.Get(HeaderModel))
	r := e.oa.Requests()[0]
	require.Equal(t, "/v1/chat/completions", r.Path)
	require.Equal(t, "Bearer sk-oa-1", r.Header.Get("Authorization"))
	require.Contains(t, string(r.Body), `"role":"system"`)
}

func TestAnthropicClientStreamsFromOpenAI(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.oa.Enqueue(providertest.OpenAIToolCallStream("gpt-4o", []providertest.ToolCall{
		{ID: "call_1", Name: "get_weather", Arguments: []string{`{"city"`, `:"Paris"}`}},
	}, providertest.Usage{Input: 30, Output: 9}, true))
	stream := e.anthropic().Messages.NewStreaming(context.Background(), anthropicsdk.MessageNewParams{
		Model: "gpt-4o", MaxTokens: 100,
		Messages: []anthropicsdk.MessageParam{anthropicsdk.NewUserMessage(anthropicsdk.NewTextBlock("Weather in Paris?"))},
		Tools: []anthropicsdk.ToolUnionParam{{OfTool: &anthropicsdk.ToolParam{Name: "get_weather",
			InputSchema: anthropicsdk.ToolInputSchemaParam{Properties: map[string]any{"city": map[string]any{"type": "string"}}}}}},
	})
	defer stream.Close()
	var msg anthropicsdk.Message
	for stream.Next() {
		require.NoError(t, msg.Accumulate(stream.Current()))
	}
	require.NoError(t, stream.Err())
	require.Len(t, msg.Content, 1)
	require.Equal(t, "tool_use", msg.Content[0].Type)
	require.Equal(t, "get_weather", msg.Content[0].Name)
	require.JSONEq(t, `{"city":"Paris"}`, string(msg.Content[0].Input))
	require.Equal(t, anthropicsdk.StopReasonToolUse, msg.StopReason)
	require.Equal(t, int64(9), msg.Usage.OutputTokens)
	ev := e.events.last(t)
	require.True(t, ev.UsageReported)
	require.Equal(t, int64(30), ev.Usage.InputTokens)
}

func TestCrossFormatFailover(t *testing.T) {
	t.Run("openai client, openai fails, anthropic serves (stream)", func(t *testing.T) {
		e := newEnv(t, envConfig{openAIKeys: []ProviderKey{{Value: "sk-1"}}})
		e.oa.Enqueue(providertest.Error(providers.FormatOpenAI, 503, "down"))
		e.an.Enqueue(providertest.AnthropicStream("claude-sonnet-4-5", []string{"from ", "claude"}, providertest.Usage{Input: 4, Output: 2}))
		stream := e.openai().Chat.Completions.NewStreaming(context.Background(), openaisdk.ChatCompletionNewParams{
			Model:    "openai:gpt-4o",
			Messages: []openaisdk.ChatCompletionMessageParamUnion{openaisdk.UserMessage("Hi")},
		}, ooption.WithJSONSet("models", []string{"anthropic:claude-sonnet-4-5"}))
		defer stream.Close()
		var acc openaisdk.ChatCompletionAccumulator
		for stream.Next() {
			acc.AddChunk(stream.Current())
		}
		require.NoError(t, stream.Err())
		require.Equal(t, "from claude", acc.Choices[0].Message.Content)
		ev := e.events.last(t)
		require.Equal(t, "anthropic:claude-sonnet-4-5", ev.ServedBy)
		require.Len(t, ev.Attempts, 2)
	})
	t.Run("anthropic client, anthropic fails mid-preamble, openai serves", func(t *testing.T) {
		e := newEnv(t, envConfig{})
		s := providertest.AnthropicStream("claude-sonnet-4-5", []string{"lost"}, providertest.Usage{})
		s.DropAfter = 2 // message_start, content_block_start: no content yet
		e.an.Enqueue(s)
		e.oa.Enqueue(providertest.OpenAIChatStream("gpt-4o", []string{"from ", "gpt"}, providertest.Usage{Input: 3, Output: 2}, true))
		stream := e.anthropic().Messages.NewStreaming(context.Background(), anthropicsdk.MessageNewParams{
			Model: "anthropic:claude-sonnet-4-5", MaxTokens: 50,
			Messages: []anthropicsdk.MessageParam{anthropicsdk.NewUserMessage(anthropicsdk.NewTextBlock("Hi"))},
		}, aoption.WithJSONSet("models", []string{"openai:gpt-4o"}))
		defer stream.Close()
		var msg anthropicsdk.Message
		for stream.Next() {
			require.NoError(t, msg.Accumulate(stream.Current()))
		}
		require.NoError(t, stream.Err())
		require.Len(t, msg.Content, 1)
		require.Equal(t, "from gpt", msg.Content[0].Text)
		ev := e.events.last(t)
		require.Equal(t, "openai:gpt-4o", ev.ServedBy)
		require.Equal(t, AttemptStreamError, ev.Attempts[0].Error)
		require.True(t, ev.Attempts[1].Translated)
	})
	t.Run("translated stream failing after content reports in-stream", func(t *testing.T) {
		e := newEnv(t, envConfig{})
		e.an.Enqueue(providertest.StreamError(providers.FormatAnthropic, "claude-sonnet-4-5", []string{"par", "tial"}, 529, "Overloaded"))
		stream := e.openai().Chat.Completions.NewStreaming(context.Background(), openaisdk.ChatCompletionNewParams{
			Model:    "claude-sonnet-4-5",
			Messages: []openaisdk.ChatCompletionMessageParamUnion{openaisdk.UserMessage("Hi")},
		})
		defer stream.Close()
		var text strings.Builder
		for stream.Next() {
			for _, ch := range stream.Current().Choices {
				text.WriteString(ch.Delta.Content)
			}
		}
		require.Error(t, stream.Err())
		require.Equal(t, "partial", text.String())
		require.ErrorIs(t, e.events.last(t).Err, ErrStreamFailed)
	})
}

func TestTranslationRefusals(t *testing.T) {
	e := newEnv(t, envConfig{})
	// n > 1 cannot be served by Anthropic without changing the answer.
	resp, body := e.post(t, "/v1/chat/completions", chatBody("claude-sonnet-4-5", `"n":2`))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, string(body))
	v := decodeOpenAIError(t, body)
	require.Equal(t, "invalid_request", v.Error.Code)
	require.NotNil(t, v.Error.Param)
	require.Equal(t, "n", *v.Error.Param)
	require.Zero(t, e.an.Count())

	// With a native candidate first, the request is served there.
	resp, body = e.post(t, "/v1/chat/completions", `{"model":"gpt-4o","models":["claude-sonnet-4-5"],"n":2,"messages":[]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
}

func TestTranslatedFailFastError(t *testing.T) {
	e := newEnv(t, envConfig{opts: []Option{WithFailFastStatuses(400)}})
	e.an.Enqueue(providertest.Error(providers.FormatAnthropic, 400, "messages: roles must alternate"))
	_, err := e.openai().Chat.Completions.New(context.Background(), openaisdk.ChatCompletionNewParams{
		Model: "claude-sonnet-4-5", Messages: []openaisdk.ChatCompletionMessageParamUnion{openaisdk.UserMessage("Hi")},
	})
	var oerr *openaisdk.Error
	require.ErrorAs(t, err, &oerr)
	require.Equal(t, 400, oerr.StatusCode)
	require.Contains(t, oerr.Message, "roles must alternate", "the provider's message in the OpenAI shape")
}

func TestToolRoundTripAcrossFormats(t *testing.T) {
	// OpenAI client, Anthropic model: call, result, final answer.
	e := newEnv(t, envConfig{})
	e.an.Enqueue(
		providertest.Step{Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Checking."},{"type":"tool_use","id":"toolu_9","name":"get_weather","input":{"city":"Paris"}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":50,"output_tokens":20}}`)},
		providertest.AnthropicMessage("claude-sonnet-4-5", "It is sunny in Paris.", providertest.Usage{Input: 80, Output: 8}),
	)
	client := e.openai()
	params := openaisdk.ChatCompletionNewParams{
		Model:    "claude-sonnet-4-5",
		Messages: []openaisdk.ChatCompletionMessageParamUnion{openaisdk.UserMessage("Weather in Paris?")},
		Tools:    []openaisdk.ChatCompletionToolUnionParam{weatherTool},
	}
	first, err := client.Chat.Completions.New(context.Background(), params)
	require.NoError(t, err)
	require.Equal(t, "tool_calls", first.Choices[0].FinishReason)
	call := first.Choices[0].Message.ToolCalls[0]
	require.Equal(t, "toolu_9", call.ID)
	require.JSONEq(t, `{"city":"Paris"}`, call.Function.Arguments)

	params.Messages = append(params.Messages, first.Choices[0].Message.ToParam(), openaisdk.ToolMessage(`{"temp_c":24,"sky":"clear"}`, call.ID))
	final, err := client.Chat.Completions.New(context.Background(), params)
	require.NoError(t, err)
	require.Equal(t, "It is sunny in Paris.", final.Choices[0].Message.Content)

	var second struct {
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	require.NoError(t, json.Unmarshal(e.an.Requests()[1].Body, &second))
	require.Len(t, second.Messages, 3)
	require.Equal(t, "assistant", second.Messages[1].Role)
	require.Contains(t, string(second.Messages[1].Content), `"tool_use"`)
	require.Equal(t, "user", second.Messages[2].Role)
	require.Contains(t, string(second.Messages[2].Content), `"tool_result"`)
	require.Contains(t, string(second.Messages[2].Content), `toolu_9`)

	// Anthropic client, OpenAI model.
	e.oa.Enqueue(
		providertest.Step{Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"id":"chatcmpl-7","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_5","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":40,"completion_tokens":10,"total_tokens":50}}`)},
		providertest.OpenAIChat("gpt-4o", "Rome is warm.", providertest.Usage{Input: 60, Output: 5}),
	)
	ac := e.anthropic()
	aparams := anthropicsdk.MessageNewParams{
		Model: "gpt-4o", MaxTokens: 100,
		Messages: []anthropicsdk.MessageParam{anthropicsdk.NewUserMessage(anthropicsdk.NewTextBlock("Weather in Rome?"))},
		Tools: []anthropicsdk.ToolUnionParam{{OfTool: &anthropicsdk.ToolParam{Name: "get_weather",
			InputSchema: anthropicsdk.ToolInputSchemaParam{Properties: map[string]any{"city": map[string]any{"type": "string"}}}}}},
	}
	msg, err := ac.Messages.New(context.Background(), aparams)
	require.NoError(t, err)
	require.Equal(t, anthropicsdk.StopReasonToolUse, msg.StopReason)
	tu := msg.Content[0]
	require.Equal(t, "call_5", tu.ID)
	aparams.Messages = append(aparams.Messages, msg.ToParam(),
		anthropicsdk.NewUserMessage(anthropicsdk.NewToolResultBlock(tu.ID, `{"temp_c":27}`, false)))
	msg2, err := ac.Messages.New(context.Background(), aparams)
	require.NoError(t, err)
	require.Equal(t, "Rome is warm.", msg2.Content[0].Text)
	var oaSecond struct {
		Messages []struct {
			Role       string `json:"role"`
			ToolCallID string `json:"tool_call_id"`
		} `json:"messages"`
	}
	require.NoError(t, json.Unmarshal(e.oa.Requests()[1].Body, &oaSecond))
	require.Equal(t, "tool", oaSecond.Messages[len(oaSecond.Messages)-1].Role)
	require.Equal(t, "call_5", oaSecond.Messages[len(oaSecond.Messages)-1].ToolCallID)
}

func TestTranslatedStreamKeepAlive(t *testing.T) {
	e := newEnv(t, envConfig{opts: []Option{WithStreamKeepAlive(50 * time.Millisecond)}})
	step := providertest.OpenAIChatStream("gpt-4o", []string{"slow", " answer"}, providertest.Usage{Input: 3, Output: 2}, true)
	step.Events[2].Delay = 300 * time.Millisecond // silence after the first content chunk
	e.oa.Enqueue(step)
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/messages", strings.NewReader(messagesBody("gpt-4o", `"stream":true`)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	rd := sse.NewReader(resp.Body, 0)
	var names []string
	for {
		ev, err := rd.Next()
		if err != nil {
			require.ErrorIs(t, err, io.EOF)
			break
		}
		names = append(names, string(ev.Name))
	}
	require.Equal(t, "message_start", names[0])
	require.Equal(t, "message_stop", names[len(names)-1])
	pings := 0
	for _, n := range names {
		if n == "ping" {
			pings++
		}
	}
	require.GreaterOrEqual(t, pings, 2, "%v", names)
}

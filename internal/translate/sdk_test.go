package translate

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

// serve starts a server that answers every request with status and body.
func serve(t *testing.T, status int, contentType string, body []byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func openAISDK(srv *httptest.Server) openai.Client {
	return openai.NewClient(
		ooption.WithBaseURL(srv.URL+"/v1/"),
		ooption.WithAPIKey("x"),
		ooption.WithHTTPClient(srv.Client()),
		ooption.WithMaxRetries(0),
	)
}

func anthropicSDK(srv *httptest.Server) anthropic.Client {
	return anthropic.NewClient(
		aoption.WithBaseURL(srv.URL),
		aoption.WithAPIKey("x"),
		aoption.WithHTTPClient(srv.Client()),
		aoption.WithMaxRetries(0),
	)
}

func chatParams() openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:         "claude-sonnet-4-5",
		Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	}
}

func messageParams() anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     "gpt-4o",
		MaxTokens: 1024,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
	}
}

// anthropicToolStream is an Anthropic stream with text, two tool calls whose
// arguments are split at awkward points, and cache usage.
func anthropicToolStream() []byte {
	var b []byte
	add := func(typ, data string) { b = append(b, "event: "+typ+"\ndata: "+data+"\n\n"...) }
	add("message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":5,"cache_read_input_tokens":20,"output_tokens":1}}}`)
	add("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	add("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Checking."}}`)
	add("content_block_stop", `{"type":"content_block_stop","index":0}`)
	add("content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_A","name":"get_weather","input":{}}}`)
	for _, frag := range []string{``, `{"ci`, `ty": "Pa`, `ris", "unit"`, `: "c"}`} {
		add("content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":`+quote(frag)+`}}`)
	}
	add("content_block_stop", `{"type":"content_block_stop","index":1}`)
	add("ping", `{"type":"ping"}`)
	add("content_block_start", `{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_B","name":"get_time","input":{}}}`)
	add("content_block_stop", `{"type":"content_block_stop","index":2}`)
	add("message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":42}}`)
	add("message_stop", `{"type":"message_stop"}`)
	return b
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestOpenAISDKAccumulatesTranslatedAnthropicStream(t *testing.T) {
	out := runStream(t, providers.FormatAnthropic, providers.FormatOpenAI,
		StreamOptions{IncludeUsage: true, ClientModel: "claude-sonnet-4-5", Now: fixedNow}, anthropicToolStream(), 5)
	client := openAISDK(serve(t, 200, "text/event-stream", out))
	stream := client.Chat.Completions.NewStreaming(context.Background(), chatParams())
	defer stream.Close()
	var acc openai.ChatCompletionAccumulator
	var finished []openai.FinishedChatCompletionToolCall
	var cacheWrite int64 // the accumulator does not sum cache_write_tokens
	for stream.Next() {
		c := stream.Current()
		cacheWrite += c.Usage.PromptTokensDetails.CacheWriteTokens
		require.True(t, acc.AddChunk(c))
		if tc, ok := acc.JustFinishedToolCall(); ok {
			finished = append(finished, tc)
		}
	}
	require.NoError(t, stream.Err())
	require.Equal(t, "chatcmpl-msg_1", acc.ID)
	require.Equal(t, "claude-sonnet-4-5", acc.Model)
	require.Len(t, acc.Choices, 1)
	ch := acc.Choices[0]
	require.Equal(t, "tool_calls", ch.FinishReason)
	require.Equal(t, "Checking.", ch.Message.Content)
	require.Len(t, ch.Message.ToolCalls, 2)
	require.Equal(t, "toolu_A", ch.Message.ToolCalls[0].ID)
	require.Equal(t, "get_weather", ch.Message.ToolCalls[0].Function.Name)
	require.JSONEq(t, `{"city":"Paris","unit":"c"}`, ch.Message.ToolCalls[0].Function.Arguments)
	require.Equal(t, "toolu_B", ch.Message.ToolCalls[1].ID)
	require.Equal(t, "get_time", ch.Message.ToolCalls[1].Function.Name)
	require.JSONEq(t, `{}`, ch.Message.ToolCalls[1].Function.Arguments)
	require.Len(t, finished, 2)
	require.EqualValues(t, 35, acc.Usage.PromptTokens)
	require.EqualValues(t, 20, acc.Usage.PromptTokensDetails.CachedTokens)
	require.EqualValues(t, 5, cacheWrite)
	require.EqualValues(t, 42, acc.Usage.CompletionTokens)
	require.EqualValues(t, 77, acc.Usage.TotalTokens)
}

// openAIToolStream is an OpenAI stream with reasoning, text and two tool
// calls, followed by the usage chunk.
func openAIToolStream() []byte {
	var b []byte
	add := func(data string) { b = append(b, "data: "+data+"\n\n"...) }
	head := `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":`
	tail := `,"logprobs":null,"finish_reason":null}]}`
	add(head + `{"role":"assistant","content":"","refusal":null}` + tail)
	add(head + `{"reasoning_content":"Think"}` + tail)
	add(head + `{"reasoning_content":"ing."}` + tail)
	add(head + `{"content":"Calling."}` + tail)
	add(head + `{"tool_calls":[{"index":0,"id":"call_A","type":"function","function":{"name":"get_weather","arguments":""}}]}` + tail)
	add(head + `{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}` + tail)
	add(head + `{"tool_calls":[{"index":0,"function":{"arguments":" \"Paris\"}"}}]}` + tail)
	add(head + `{"tool_calls":[{"index":1,"id":"call_B","type":"function","function":{"name":"get_time","arguments":"{}"}}]}` + tail)
	add(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]}`)
	add(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":50,"completion_tokens":30,"total_tokens":80,"prompt_tokens_details":{"cached_tokens":40}}}`)
	add(`[DONE]`)
	return b
}

func TestAnthropicSDKAccumulatesTranslatedOpenAIStream(t *testing.T) {
	out := runStream(t, providers.FormatOpenAI, providers.FormatAnthropic,
		StreamOptions{Now: fixedNow, InputTokens: func() int64 { return 9 }}, openAIToolStream(), 3)
	client := anthropicSDK(serve(t, 200, "text/event-stream", out))
	stream := client.Messages.NewStreaming(context.Background(), messageParams())
	defer stream.Close()
	var msg anthropic.Message
	var types []string
	for stream.Next() {
		ev := stream.Current()
		types = append(types, ev.Type)
		require.NoError(t, msg.Accumulate(ev))
	}
	require.NoError(t, stream.Err())
	require.Equal(t, "msg_chatcmpl-1", msg.ID)
	require.Equal(t, "gpt-4o", string(msg.Model))
	require.Equal(t, anthropic.StopReasonToolUse, msg.StopReason)
	require.Len(t, msg.Content, 4)
	require.Equal(t, "thinking", msg.Content[0].Type)
	require.Equal(t, "Thinking.", msg.Content[0].Thinking)
	require.Equal(t, "text", msg.Content[1].Type)
	require.Equal(t, "Calling.", msg.Content[1].Text)
	require.Equal(t, "tool_use", msg.Content[2].Type)
	require.Equal(t, "call_A", msg.Content[2].ID)
	require.Equal(t, "get_weather", msg.Content[2].Name)
	require.JSONEq(t, `{"city":"Paris"}`, string(msg.Content[2].Input))
	require.Equal(t, "call_B", msg.Content[3].ID)
	require.JSONEq(t, `{}`, string(msg.Content[3].Input))
	require.EqualValues(t, 10, msg.Usage.InputTokens)
	require.EqualValues(t, 40, msg.Usage.CacheReadInputTokens)
	require.EqualValues(t, 30, msg.Usage.OutputTokens)
	require.Equal(t, "message_start", types[0])
	require.Equal(t, "message_stop", types[len(types)-1])
}

func TestAnthropicSDKAccumulatesProvidertestStreams(t *testing.T) {
	calls := []providertest.ToolCall{
		{Name: "get_weather", Arguments: []string{`{"ci`, `ty":"Par`, `is"}`}},
		{ID: "call_custom", Name: "get_time", Arguments: []string{`{}`}},
	}
	in := providertest.OpenAIToolCallStream("gpt-4o", calls, providertest.Usage{Input: 3, Output: 9, CacheRead: 2}, true).StreamBytes()
	out := runStream(t, providers.FormatOpenAI, providers.FormatAnthropic, StreamOptions{}, in, 11)
	client := anthropicSDK(serve(t, 200, "text/event-stream", out))
	stream := client.Messages.NewStreaming(context.Background(), messageParams())
	defer stream.Close()
	var msg anthropic.Message
	for stream.Next() {
		require.NoError(t, msg.Accumulate(stream.Current()))
	}
	require.NoError(t, stream.Err())
	require.Len(t, msg.Content, 2)
	require.Equal(t, "call_fake_1", msg.Content[0].ID)
	require.JSONEq(t, `{"city":"Paris"}`, string(msg.Content[0].Input))
	require.Equal(t, "call_custom", msg.Content[1].ID)
	require.EqualValues(t, 3, msg.Usage.InputTokens)
	require.EqualValues(t, 2, msg.Usage.CacheReadInputTokens)
	require.EqualValues(t, 9, msg.Usage.OutputTokens)
}

func TestOpenAISDKReadsProvidertestAnthropicStreams(t *testing.T) {
	in := providertest.AnthropicThinkingStream("claude-x", []string{"Hm", "m."}, []string{"Hel", "lo"}, providertest.Usage{Input: 7, Output: 5}).StreamBytes()
	out := runStream(t, providers.FormatAnthropic, providers.FormatOpenAI, StreamOptions{IncludeUsage: true}, in, 13)
	client := openAISDK(serve(t, 200, "text/event-stream", out))
	stream := client.Chat.Completions.NewStreaming(context.Background(), chatParams())
	defer stream.Close()
	var acc openai.ChatCompletionAccumulator
	reasoning := ""
	for stream.Next() {
		c := stream.Current()
		if len(c.Choices) > 0 {
			if f, ok := c.Choices[0].Delta.JSON.ExtraFields["reasoning_content"]; ok {
				var s string
				require.NoError(t, json.Unmarshal([]byte(f.Raw()), &s))
				reasoning += s
			}
		}
		require.True(t, acc.AddChunk(c))
	}
	require.NoError(t, stream.Err())
	require.Equal(t, "Hello", acc.Choices[0].Message.Content)
	require.Equal(t, "Hmm.", reasoning)
	require.Equal(t, "stop", acc.Choices[0].FinishReason)
	require.EqualValues(t, 12, acc.Usage.TotalTokens)
}

func TestSDKsReadTranslatedResponses(t *testing.T) {
	t.Run("anthropic to openai", func(t *testing.T) {
		in := `{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[{"type":"thinking","thinking":"Hm.","signature":"s"},{"type":"text","text":"Sure."},{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":3,"cache_creation_input_tokens":1,"cache_read_input_tokens":2,"output_tokens":4}}`
		out, err := Response(providers.FormatAnthropic, providers.FormatOpenAI, []byte(in), ResponseOptions{Now: fixedNow})
		require.NoError(t, err)
		client := openAISDK(serve(t, 200, "application/json", out))
		res, err := client.Chat.Completions.New(context.Background(), chatParams())
		require.NoError(t, err)
		require.Equal(t, "chatcmpl-msg_1", res.ID)
		require.EqualValues(t, 1700000000, res.Created)
		require.Equal(t, "tool_calls", res.Choices[0].FinishReason)
		require.Equal(t, "Sure.", res.Choices[0].Message.Content)
		require.Len(t, res.Choices[0].Message.ToolCalls, 1)
		tc := res.Choices[0].Message.ToolCalls[0]
		require.Equal(t, "toolu_1", tc.ID)
		require.Equal(t, "get_weather", tc.Function.Name)
		require.JSONEq(t, `{"city":"Paris"}`, tc.Function.Arguments)
		require.EqualValues(t, 6, res.Usage.PromptTokens)
		require.EqualValues(t, 2, res.Usage.PromptTokensDetails.CachedTokens)
		require.EqualValues(t, 1, res.Usage.PromptTokensDetails.CacheWriteTokens)
		require.EqualValues(t, 4, res.Usage.CompletionTokens)
		require.EqualValues(t, 10, res.Usage.TotalTokens)
		require.Contains(t, res.Choices[0].Message.RawJSON(), `"reasoning_content":"Hm."`)
	})
	t.Run("openai to anthropic", func(t *testing.T) {
		in := `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":null,"reasoning_content":"Hm.","tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}],"refusal":null},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":10,"completion_tokens":4,"total_tokens":14,"prompt_tokens_details":{"cached_tokens":6}}}`
		out, err := Response(providers.FormatOpenAI, providers.FormatAnthropic, []byte(in), ResponseOptions{ClientModel: "openai:gpt-4o"})
		require.NoError(t, err)
		client := anthropicSDK(serve(t, 200, "application/json", out))
		msg, err := client.Messages.New(context.Background(), messageParams())
		require.NoError(t, err)
		require.Equal(t, "msg_chatcmpl-1", msg.ID)
		require.Equal(t, "openai:gpt-4o", string(msg.Model))
		require.Equal(t, anthropic.StopReasonToolUse, msg.StopReason)
		require.Len(t, msg.Content, 2)
		require.Equal(t, "Hm.", msg.Content[0].Thinking)
		require.Equal(t, "call_1", msg.Content[1].ID)
		require.JSONEq(t, `{"city":"Paris"}`, string(msg.Content[1].Input))
		require.EqualValues(t, 4, msg.Usage.InputTokens)
		require.EqualValues(t, 6, msg.Usage.CacheReadInputTokens)
		require.EqualValues(t, 4, msg.Usage.OutputTokens)
	})
}

func TestSDKsReadTranslatedErrors(t *testing.T) {
	t.Run("anthropic 529 to openai", func(t *testing.T) {
		status, body := ErrorResponse(providers.FormatAnthropic, providers.FormatOpenAI, 529,
			[]byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}`))
		client := openAISDK(serve(t, status, "application/json", body))
		_, err := client.Chat.Completions.New(context.Background(), chatParams())
		var apiErr *openai.Error
		require.True(t, errors.As(err, &apiErr), "%v", err)
		require.Equal(t, 503, apiErr.StatusCode)
		require.Equal(t, "Overloaded", apiErr.Message)
		require.Equal(t, "server_error", apiErr.Type)
		require.Equal(t, "overloaded_error", apiErr.Code)
	})
	t.Run("openai 429 to anthropic", func(t *testing.T) {
		status, body := ErrorResponse(providers.FormatOpenAI, providers.FormatAnthropic, 429,
			[]byte(`{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`))
		client := anthropicSDK(serve(t, status, "application/json", body))
		_, err := client.Messages.New(context.Background(), messageParams())
		var apiErr *anthropic.Error
		require.True(t, errors.As(err, &apiErr), "%v", err)
		require.Equal(t, 429, apiErr.StatusCode)
		require.Contains(t, apiErr.Error(), "Rate limit reached")
		require.Contains(t, apiErr.RawJSON(), `"rate_limit_error"`)
	})
	t.Run("anthropic stream error to openai", func(t *testing.T) {
		in := providertest.StreamError(providers.FormatAnthropic, "claude-x", []string{"Hel"}, 529, "Overloaded").StreamBytes()
		out := runStream(t, providers.FormatAnthropic, providers.FormatOpenAI, StreamOptions{}, in, 64)
		client := openAISDK(serve(t, 200, "text/event-stream", out))
		stream := client.Chat.Completions.NewStreaming(context.Background(), chatParams())
		defer stream.Close()
		n := 0
		for stream.Next() {
			n++
		}
		require.Equal(t, 2, n)
		require.ErrorContains(t, stream.Err(), "Overloaded")
	})
	t.Run("openai stream error to anthropic", func(t *testing.T) {
		in := providertest.StreamError(providers.FormatOpenAI, "gpt-4o", []string{"Hel"}, 500, "boom").StreamBytes()
		out := runStream(t, providers.FormatOpenAI, providers.FormatAnthropic, StreamOptions{}, in, 64)
		client := anthropicSDK(serve(t, 200, "text/event-stream", out))
		stream := client.Messages.NewStreaming(context.Background(), messageParams())
		defer stream.Close()
		var msg anthropic.Message
		for stream.Next() {
			require.NoError(t, msg.Accumulate(stream.Current()))
		}
		require.ErrorContains(t, stream.Err(), "boom")
		require.Equal(t, "Hel", msg.Content[0].Text)
	})
}

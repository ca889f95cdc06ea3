package demo_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"
	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/internal/demo"
)

func openAIClient(srv *httptest.Server) openai.Client {
	return openai.NewClient(
		option.WithBaseURL(srv.URL+"/openai/v1/"),
		option.WithAPIKey("demo"),
		option.WithHTTPClient(srv.Client()),
		option.WithMaxRetries(0),
	)
}

func chat(text string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model: "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.SystemMessage("Be brief."),
			openai.UserMessage(text),
		},
	}
}

func withTool(p openai.ChatCompletionNewParams) openai.ChatCompletionNewParams {
	p.Tools = []openai.ChatCompletionToolUnionParam{
		openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{Name: "get_weather"}),
		openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{Name: "get_time"}),
	}
	return p
}

func TestOpenAISDKChat(t *testing.T) {
	client := openAIClient(start(t))
	res, err := client.Chat.Completions.New(context.Background(), chat("Hello <there>"))
	require.NoError(t, err)
	require.Equal(t, "chat.completion", string(res.Object))
	require.Equal(t, "gpt-4o-mini", res.Model)
	require.Len(t, res.Choices, 1)
	require.Equal(t, demo.Reply("Hello <there>"), res.Choices[0].Message.Content)
	require.Equal(t, "stop", res.Choices[0].FinishReason)
	require.EqualValues(t, (len("Be brief.")+len("Hello <there>"))/4, res.Usage.PromptTokens)
	require.EqualValues(t, len(demo.Reply("Hello <there>"))/4, res.Usage.CompletionTokens)
	require.Equal(t, res.Usage.PromptTokens+res.Usage.CompletionTokens, res.Usage.TotalTokens)
}

func TestOpenAISDKChatParts(t *testing.T) {
	client := openAIClient(start(t))
	p := chat("")
	p.Messages = []openai.ChatCompletionMessageParamUnion{openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{
		openai.TextContentPart("first"), openai.TextContentPart("second"),
	})}
	res, err := client.Chat.Completions.New(context.Background(), p)
	require.NoError(t, err)
	require.Equal(t, demo.Reply("first\nsecond"), res.Choices[0].Message.Content)
}

func TestOpenAISDKChatStream(t *testing.T) {
	for _, includeUsage := range []bool{false, true} {
		t.Run(map[bool]string{false: "without usage", true: "with usage"}[includeUsage], func(t *testing.T) {
			client := openAIClient(start(t))
			p := chat("Stream please")
			if includeUsage {
				p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			}
			stream := client.Chat.Completions.NewStreaming(context.Background(), p)
			defer stream.Close()
			var acc openai.ChatCompletionAccumulator
			var chunks, usageChunks int
			for stream.Next() {
				c := stream.Current()
				chunks++
				if len(c.Choices) == 0 {
					usageChunks++
				}
				require.True(t, acc.AddChunk(c))
			}
			require.NoError(t, stream.Err())
			want := demo.Reply("Stream please")
			require.Equal(t, want, acc.Choices[0].Message.Content)
			require.Equal(t, "stop", acc.Choices[0].FinishReason)
			// role chunk + one chunk per word + finish chunk (+ usage chunk)
			require.Equal(t, 1+len(demo.Words(want))+1+usageChunks, chunks)
			if includeUsage {
				require.Equal(t, 1, usageChunks)
				require.EqualValues(t, len(want)/4, acc.Usage.CompletionTokens)
				require.NotZero(t, acc.Usage.PromptTokens)
			} else {
				require.Zero(t, usageChunks)
				require.Zero(t, acc.Usage.TotalTokens)
			}
		})
	}
}

func TestOpenAISDKToolCall(t *testing.T) {
	tests := []struct {
		name     string
		params   openai.ChatCompletionNewParams
		wantTool string // "" for a text answer
	}{
		{name: "asked by name", params: withTool(chat("What is the get_weather?")), wantTool: "get_weather"},
		{name: "asked for a tool", params: withTool(chat("Use a TOOL please")), wantTool: "get_weather"},
		{name: "not asked", params: withTool(chat("Hello")), wantTool: ""},
		{name: "required", params: func() openai.ChatCompletionNewParams {
			p := withTool(chat("Hello"))
			p.ToolChoice = openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("required")}
			return p
		}(), wantTool: "get_weather"},
		{name: "named", params: func() openai.ChatCompletionNewParams {
			p := withTool(chat("Hello"))
			p.ToolChoice = openai.ToolChoiceOptionFunctionToolChoice(openai.ChatCompletionNamedToolChoiceFunctionParam{Name: "get_time"})
			return p
		}(), wantTool: "get_time"},
		{name: "none", params: func() openai.ChatCompletionNewParams {
			p := withTool(chat("use the tool"))
			p.ToolChoice = openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("none")}
			return p
		}(), wantTool: ""},
		{name: "after a tool result", params: func() openai.ChatCompletionNewParams {
			p := withTool(chat("use the tool"))
			p.Messages = append(p.Messages, openai.ToolMessage(`{"temp":20}`, "call_1"))
			return p
		}(), wantTool: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := openAIClient(start(t))
			res, err := client.Chat.Completions.New(context.Background(), tt.params)
			require.NoError(t, err)
			msg := res.Choices[0].Message
			if tt.wantTool == "" {
				require.Equal(t, "stop", res.Choices[0].FinishReason)
				require.Empty(t, msg.ToolCalls)
				require.True(t, strings.HasPrefix(msg.Content, demo.Marker))
			} else {
				require.Equal(t, "tool_calls", res.Choices[0].FinishReason)
				require.Len(t, msg.ToolCalls, 1)
				require.Equal(t, tt.wantTool, msg.ToolCalls[0].Function.Name)
				require.Equal(t, "{}", msg.ToolCalls[0].Function.Arguments)
				require.NotEmpty(t, msg.ToolCalls[0].ID)
			}

			stream := client.Chat.Completions.NewStreaming(context.Background(), tt.params)
			defer stream.Close()
			var acc openai.ChatCompletionAccumulator
			var finished []openai.FinishedChatCompletionToolCall
			for stream.Next() {
				require.True(t, acc.AddChunk(stream.Current()))
				if tc, ok := acc.JustFinishedToolCall(); ok {
					finished = append(finished, tc)
				}
			}
			require.NoError(t, stream.Err())
			if tt.wantTool == "" {
				require.Equal(t, "stop", acc.Choices[0].FinishReason)
				require.Empty(t, finished)
			} else {
				require.Equal(t, "tool_calls", acc.Choices[0].FinishReason)
				require.Len(t, finished, 1)
				require.Equal(t, tt.wantTool, finished[0].Name)
				require.Equal(t, "{}", finished[0].Arguments)
			}
		})
	}
}

func TestOpenAISDKResponses(t *testing.T) {
	client := openAIClient(start(t))
	params := responses.ResponseNewParams{
		Model:        "gpt-4.1",
		Instructions: openai.String("Be brief."),
		Input:        responses.ResponseNewParamsInputUnion{OfString: openai.String("Hi there")},
	}
	res, err := client.Responses.New(context.Background(), params)
	require.NoError(t, err)
	require.Equal(t, "gpt-4.1", res.Model)
	require.Equal(t, "completed", string(res.Status))
	require.Equal(t, demo.Reply("Hi there"), res.OutputText())
	require.EqualValues(t, (len("Hi there")+len("Be brief."))/4, res.Usage.InputTokens)
	require.Equal(t, res.Usage.InputTokens+res.Usage.OutputTokens, res.Usage.TotalTokens)

	// A list of input items: the last user message is echoed.
	params.Input = responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
		responses.ResponseInputItemParamOfMessage("first", responses.EasyInputMessageRoleUser),
		responses.ResponseInputItemParamOfMessage("reply", responses.EasyInputMessageRoleAssistant),
		responses.ResponseInputItemParamOfMessage(responses.ResponseInputMessageContentListParam{
			responses.ResponseInputContentParamOfInputText("second"),
		}, responses.EasyInputMessageRoleUser),
	}}
	res, err = client.Responses.New(context.Background(), params)
	require.NoError(t, err)
	require.Equal(t, demo.Reply("second"), res.OutputText())
}

func TestOpenAISDKResponsesStream(t *testing.T) {
	client := openAIClient(start(t))
	stream := client.Responses.NewStreaming(context.Background(), responses.ResponseNewParams{
		Model: "gpt-4.1",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Stream it")},
	})
	defer stream.Close()
	want := demo.Reply("Stream it")
	var types []string
	var text strings.Builder
	var completed *responses.Response
	for i := 0; stream.Next(); i++ {
		ev := stream.Current()
		require.EqualValues(t, i, ev.SequenceNumber)
		types = append(types, ev.Type)
		switch ev.Type {
		case "response.output_text.delta":
			text.WriteString(ev.AsResponseOutputTextDelta().Delta)
		case "response.output_text.done":
			require.Equal(t, want, ev.AsResponseOutputTextDone().Text)
		case "response.completed":
			r := ev.AsResponseCompleted().Response
			completed = &r
		}
	}
	require.NoError(t, stream.Err())
	require.Equal(t, want, text.String())
	n := len(demo.Words(want))
	require.Equal(t, []string{"response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"}, types[:4])
	require.Len(t, types, 4+n+4)
	require.Equal(t, []string{"response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"}, types[4+n:])
	require.NotNil(t, completed)
	require.Equal(t, want, completed.OutputText())
	require.NotZero(t, completed.Usage.TotalTokens)
}

func TestOpenAISDKEmbeddings(t *testing.T) {
	tests := []struct {
		name   string
		input  openai.EmbeddingNewParamsInputUnion
		format openai.EmbeddingNewParamsEncodingFormat
		dims   int64
		texts  []string
	}{
		{name: "string", input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("a")}, texts: []string{"a"}},
		{name: "strings", input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "b"}}, texts: []string{"a", "b"}},
		{name: "tokens", input: openai.EmbeddingNewParamsInputUnion{OfArrayOfTokens: []int64{1, 2}}, texts: []string{"1 2 "}},
		{name: "token arrays", input: openai.EmbeddingNewParamsInputUnion{OfArrayOfTokenArrays: [][]int64{{1}, {2}}}, texts: []string{"1 ", "2 "}},
		{name: "base64", input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "b"}}, format: openai.EmbeddingNewParamsEncodingFormatBase64, texts: []string{"a", "b"}},
		{name: "dimensions", input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("a")}, dims: 64, texts: []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := openAIClient(start(t))
			p := openai.EmbeddingNewParams{Model: "text-embedding-3-small", Input: tt.input, EncodingFormat: tt.format}
			dims := demo.DefaultEmbeddingDims
			if tt.dims != 0 {
				p.Dimensions = openai.Int(tt.dims)
				dims = int(tt.dims)
			}
			res, err := client.Embeddings.New(context.Background(), p)
			require.NoError(t, err)
			require.Equal(t, "text-embedding-3-small", res.Model)
			require.Len(t, res.Data, len(tt.texts))
			for i, d := range res.Data {
				require.EqualValues(t, i, d.Index)
				want := demo.Embedding("text-embedding-3-small", tt.texts[i], dims)
				require.Len(t, d.Embedding, dims)
				for j := range want {
					require.InDelta(t, want[j], d.Embedding[j], 1e-6)
				}
			}
			require.NotZero(t, res.Usage.PromptTokens)
		})
	}
}

func TestOpenAIErrors(t *testing.T) {
	tests := []struct {
		name, path, body, want string
	}{
		{name: "chat bad json", path: "chat/completions", body: `{"model":`, want: "not valid JSON"},
		{name: "chat not an object", path: "chat/completions", body: `[1]`, want: "not valid JSON"},
		{name: "chat no model", path: "chat/completions", body: `{"messages":[{"role":"user","content":"x"}]}`, want: "model"},
		{name: "chat no messages", path: "chat/completions", body: `{"model":"m"}`, want: "messages"},
		{name: "responses bad json", path: "responses", body: `nope`, want: "not valid JSON"},
		{name: "responses bad input", path: "responses", body: `{"model":"m","input":42}`, want: "input"},
		{name: "embeddings bad json", path: "embeddings", body: `{`, want: "not valid JSON"},
		{name: "embeddings no input", path: "embeddings", body: `{"model":"m"}`, want: "input"},
		{name: "embeddings bad format", path: "embeddings", body: `{"model":"m","input":"a","encoding_format":"hex"}`, want: "encoding_format"},
		{name: "embeddings bad dimensions", path: "embeddings", body: `{"model":"m","input":"a","dimensions":-1}`, want: "dimensions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := start(t)
			resp, body := post(t, srv, "/openai/v1/"+tt.path, tt.body)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode)
			var e struct {
				Error struct {
					Message string  `json:"message"`
					Type    string  `json:"type"`
					Param   *string `json:"param"`
					Code    *string `json:"code"`
				} `json:"error"`
			}
			require.NoError(t, json.Unmarshal(body, &e), string(body))
			require.Equal(t, "invalid_request_error", e.Error.Type)
			require.Contains(t, e.Error.Message, tt.want)
			require.Contains(t, string(body), `"param":null`)
		})
	}

	// The SDK sees the same errors as *openai.Error.
	client := openAIClient(start(t))
	_, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: "m"})
	var apiErr *openai.Error
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
	require.Equal(t, "invalid_request_error", apiErr.Type)
}

// TestChatStreamWire checks the raw SSE framing: unnamed events, usage null
// on every chunk but the last when include_usage is set, and [DONE].
func TestChatStreamWire(t *testing.T) {
	srv := start(t)
	resp, body := post(t, srv, "/openai/v1/chat/completions",
		`{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	events := strings.Split(strings.TrimSuffix(string(body), "\n\n"), "\n\n")
	require.Equal(t, "data: [DONE]", events[len(events)-1])
	for i, ev := range events[:len(events)-1] {
		require.True(t, strings.HasPrefix(ev, "data: {"), ev)
		var c map[string]any
		require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(ev, "data: ")), &c))
		require.Equal(t, "chat.completion.chunk", c["object"])
		u, ok := c["usage"]
		require.True(t, ok)
		if i < len(events)-2 {
			require.Nil(t, u)
		} else {
			require.NotNil(t, u)
			require.Empty(t, c["choices"])
		}
	}
	// The role chunk: content "" (then "refusal": null, as OpenAI sends it).
	require.Contains(t, events[0], `"delta":{"role":"assistant","content":"",`)
	require.Contains(t, events[len(events)-3], `"finish_reason":"stop"`)
}

package providertest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

// openAIClient points the official OpenAI SDK at the fake server.
func openAIClient(s *providertest.Server) *openai.Client {
	c := openai.NewClient(
		option.WithBaseURL(s.URL),
		option.WithAPIKey("x"),
		option.WithHTTPClient(s.Client()),
		option.WithMaxRetries(0),
	)
	return &c
}

func chatParams(model string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	}
}

func TestOpenAISDKChat(t *testing.T) {
	tests := []struct {
		name      string
		step      *providertest.Step // nil: auto-reply
		wantText  string
		wantUsage providertest.Usage
	}{
		{
			name:      "scripted",
			step:      ptr(providertest.OpenAIChat("gpt-4o-mini", "Hi <there> & \"you\"", providertest.Usage{Input: 7, Output: 3, CacheRead: 4, CacheWrite: 2})),
			wantText:  "Hi <there> & \"you\"",
			wantUsage: providertest.Usage{Input: 7, Output: 3, CacheRead: 4, CacheWrite: 2},
		},
		{
			name:     "auto-reply",
			wantText: providertest.AutoReplyText(providers.FormatOpenAI),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := providertest.Start(t, providers.FormatOpenAI)
			if tt.step != nil {
				s.Enqueue(*tt.step)
			}
			res, err := openAIClient(s).Chat.Completions.New(context.Background(), chatParams("gpt-4o-mini"))
			require.NoError(t, err)
			require.Equal(t, providertest.ChatID, res.ID)
			require.Equal(t, "chat.completion", string(res.Object))
			require.Equal(t, "gpt-4o-mini", res.Model)
			require.EqualValues(t, providertest.Created, res.Created)
			require.Len(t, res.Choices, 1)
			require.Equal(t, tt.wantText, res.Choices[0].Message.Content)
			require.Equal(t, "stop", res.Choices[0].FinishReason)
			if tt.step != nil {
				u := tt.wantUsage
				require.EqualValues(t, u.Input+u.CacheRead+u.CacheWrite, res.Usage.PromptTokens)
				require.EqualValues(t, u.Output, res.Usage.CompletionTokens)
				require.EqualValues(t, u.CacheRead, res.Usage.PromptTokensDetails.CachedTokens)
				require.EqualValues(t, u.CacheWrite, res.Usage.PromptTokensDetails.CacheWriteTokens)
				require.EqualValues(t, u.Input+u.CacheRead+u.CacheWrite+u.Output, res.Usage.TotalTokens)
			} else {
				reqs := s.Requests()
				require.Len(t, reqs, 1)
				want := providertest.AutoReplyUsage(providers.FormatOpenAI, reqs[0].Body)
				require.EqualValues(t, want.Input, res.Usage.PromptTokens)
				require.EqualValues(t, want.Output, res.Usage.CompletionTokens)
			}
		})
	}
}

func TestOpenAISDKChatStream(t *testing.T) {
	deltas := []string{"Hel", "lo", ", world"}
	u := providertest.Usage{Input: 10, Output: 3, CacheRead: 5}
	tests := []struct {
		name         string
		step         *providertest.Step
		includeUsage bool
		wantText     string
		wantUsage    bool
	}{
		{name: "with usage", step: ptr(providertest.OpenAIChatStream("m", deltas, u, true)), includeUsage: true, wantText: "Hello, world", wantUsage: true},
		{name: "without usage", step: ptr(providertest.OpenAIChatStream("m", deltas, u, false)), wantText: "Hello, world"},
		{name: "auto-reply with usage", includeUsage: true, wantText: providertest.AutoReplyText(providers.FormatOpenAI), wantUsage: true},
		{name: "auto-reply without usage", wantText: providertest.AutoReplyText(providers.FormatOpenAI)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := providertest.Start(t, providers.FormatOpenAI)
			if tt.step != nil {
				s.Enqueue(*tt.step)
			}
			params := chatParams("m")
			if tt.includeUsage {
				params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			}
			stream := openAIClient(s).Chat.Completions.NewStreaming(context.Background(), params)
			defer stream.Close()
			var acc openai.ChatCompletionAccumulator
			var chunks, usageOnly int
			for stream.Next() {
				c := stream.Current()
				chunks++
				if len(c.Choices) == 0 {
					usageOnly++
					require.True(t, c.JSON.Usage.Valid())
				}
				require.True(t, acc.AddChunk(c), "chunk %d rejected by the accumulator", chunks)
			}
			require.NoError(t, stream.Err())
			require.Len(t, acc.Choices, 1)
			require.Equal(t, tt.wantText, acc.Choices[0].Message.Content)
			require.Equal(t, "stop", acc.Choices[0].FinishReason)
			if tt.wantUsage {
				require.Equal(t, 1, usageOnly)
				require.NotZero(t, acc.Usage.PromptTokens)
				require.NotZero(t, acc.Usage.CompletionTokens)
				if tt.step != nil {
					require.EqualValues(t, u.Input+u.CacheRead, acc.Usage.PromptTokens)
					require.EqualValues(t, u.CacheRead, acc.Usage.PromptTokensDetails.CachedTokens)
					require.EqualValues(t, u.Output, acc.Usage.CompletionTokens)
				}
			} else {
				require.Zero(t, usageOnly)
				require.Zero(t, acc.Usage.TotalTokens)
			}
		})
	}
}

func TestOpenAISDKToolCallStream(t *testing.T) {
	calls := []providertest.ToolCall{
		{Name: "get_weather", Arguments: []string{`{"ci`, `ty":"Par`, `is"}`}},
		{ID: "call_custom", Name: "get_time", Arguments: []string{`{}`}},
	}
	s := providertest.Start(t, providers.FormatOpenAI)
	s.Enqueue(providertest.OpenAIToolCallStream("m", calls, providertest.Usage{Input: 3, Output: 9}, true))
	params := chatParams("m")
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := openAIClient(s).Chat.Completions.NewStreaming(context.Background(), params)
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
	require.Len(t, acc.Choices, 1)
	require.Equal(t, "tool_calls", acc.Choices[0].FinishReason)
	tcs := acc.Choices[0].Message.ToolCalls
	require.Len(t, tcs, 2)
	require.Equal(t, "call_fake_1", tcs[0].ID)
	require.Equal(t, "function", tcs[0].Type)
	require.Equal(t, "get_weather", tcs[0].Function.Name)
	require.JSONEq(t, `{"city":"Paris"}`, tcs[0].Function.Arguments)
	require.Equal(t, "call_custom", tcs[1].ID)
	require.Equal(t, "get_time", tcs[1].Function.Name)
	require.JSONEq(t, `{}`, tcs[1].Function.Arguments)
	require.Len(t, finished, 2)
	require.EqualValues(t, 9, acc.Usage.CompletionTokens)
}

func TestOpenAISDKResponses(t *testing.T) {
	tests := []struct {
		name     string
		step     *providertest.Step
		wantText string
	}{
		{name: "scripted", step: ptr(providertest.OpenAIResponses("gpt-4.1", "Hi there", providertest.Usage{Input: 5, Output: 2, CacheRead: 1})), wantText: "Hi there"},
		{name: "auto-reply", wantText: providertest.AutoReplyText(providers.FormatOpenAI)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := providertest.Start(t, providers.FormatOpenAI)
			if tt.step != nil {
				s.Enqueue(*tt.step)
			}
			client := openAIClient(s)
			res, err := client.Responses.New(context.Background(), responses.ResponseNewParams{
				Model: "gpt-4.1",
				Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")},
			})
			require.NoError(t, err)
			require.Equal(t, providertest.ResponseID, res.ID)
			require.Equal(t, "gpt-4.1", res.Model)
			require.Equal(t, "completed", string(res.Status))
			require.Equal(t, tt.wantText, res.OutputText())
			if tt.step != nil {
				require.EqualValues(t, 6, res.Usage.InputTokens)
				require.EqualValues(t, 1, res.Usage.InputTokensDetails.CachedTokens)
				require.EqualValues(t, 2, res.Usage.OutputTokens)
				require.EqualValues(t, 8, res.Usage.TotalTokens)
			}
		})
	}
}

func TestOpenAISDKResponsesStream(t *testing.T) {
	tests := []struct {
		name     string
		step     *providertest.Step
		wantText string
	}{
		{name: "scripted", step: ptr(providertest.OpenAIResponsesStream("gpt-4.1", []string{"Hi", " there"}, providertest.Usage{Input: 5, Output: 2})), wantText: "Hi there"},
		{name: "auto-reply", wantText: providertest.AutoReplyText(providers.FormatOpenAI)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := providertest.Start(t, providers.FormatOpenAI)
			if tt.step != nil {
				s.Enqueue(*tt.step)
			}
			stream := openAIClient(s).Responses.NewStreaming(context.Background(), responses.ResponseNewParams{
				Model: "gpt-4.1",
				Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")},
			})
			defer stream.Close()
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
					require.Equal(t, tt.wantText, ev.AsResponseOutputTextDone().Text)
				case "response.completed":
					r := ev.AsResponseCompleted().Response
					completed = &r
				}
			}
			require.NoError(t, stream.Err())
			require.Equal(t, tt.wantText, text.String())
			require.Equal(t, "response.created", types[0])
			require.Equal(t, "response.in_progress", types[1])
			require.Equal(t, "response.completed", types[len(types)-1])
			require.NotNil(t, completed)
			require.Equal(t, tt.wantText, completed.OutputText())
			require.NotZero(t, completed.Usage.TotalTokens)
		})
	}
}

func TestOpenAISDKEmbeddings(t *testing.T) {
	tests := []struct {
		name   string
		step   *providertest.Step
		input  openai.EmbeddingNewParamsInputUnion
		format openai.EmbeddingNewParamsEncodingFormat
		want   int
	}{
		{name: "scripted", step: ptr(providertest.OpenAIEmbeddings("text-embedding-3-small", 3)), input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("a")}, want: 3},
		{name: "auto string", input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("a")}, want: 1},
		{name: "auto array", input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "b"}}, want: 2},
		{name: "auto tokens", input: openai.EmbeddingNewParamsInputUnion{OfArrayOfTokens: []int64{1, 2, 3}}, want: 1},
		{name: "auto base64", input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "b"}}, format: openai.EmbeddingNewParamsEncodingFormatBase64, want: 2},
		{name: "auto float", input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("a")}, format: openai.EmbeddingNewParamsEncodingFormatFloat, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := providertest.Start(t, providers.FormatOpenAI)
			if tt.step != nil {
				s.Enqueue(*tt.step)
			}
			res, err := openAIClient(s).Embeddings.New(context.Background(), openai.EmbeddingNewParams{
				Model:          "text-embedding-3-small",
				Input:          tt.input,
				EncodingFormat: tt.format,
			})
			require.NoError(t, err)
			require.Equal(t, "text-embedding-3-small", res.Model)
			require.Len(t, res.Data, tt.want)
			for i, d := range res.Data {
				require.EqualValues(t, i, d.Index)
				want := providertest.Embedding(i)
				require.Len(t, d.Embedding, len(want))
				for j := range want {
					require.InDelta(t, want[j], d.Embedding[j], 1e-9)
				}
			}
		})
	}
}

func TestOpenAISDKErrors(t *testing.T) {
	tests := []struct {
		name     string
		step     providertest.Step
		status   int
		wantType string
		wantCode string
	}{
		{name: "400", step: providertest.Error(providers.FormatOpenAI, 400, "bad"), status: 400, wantType: "invalid_request_error"},
		{name: "401", step: providertest.Error(providers.FormatOpenAI, 401, "bad key"), status: 401, wantType: "invalid_request_error", wantCode: "invalid_api_key"},
		{name: "429", step: providertest.RateLimited(providers.FormatOpenAI, "3"), status: 429, wantType: "requests", wantCode: "rate_limit_exceeded"},
		{name: "500", step: providertest.Error(providers.FormatOpenAI, 500, "boom"), status: 500, wantType: "server_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := providertest.Start(t, providers.FormatOpenAI)
			s.Enqueue(tt.step)
			_, err := openAIClient(s).Chat.Completions.New(context.Background(), chatParams("m"))
			var apiErr *openai.Error
			require.ErrorAs(t, err, &apiErr)
			require.Equal(t, tt.status, apiErr.StatusCode)
			require.Equal(t, tt.wantType, apiErr.Type)
			require.Equal(t, tt.wantCode, apiErr.Code)
			if tt.status == 429 {
				require.Equal(t, "3", apiErr.Response.Header.Get("Retry-After"))
			}
		})
	}
}

func TestOpenAISDKStreamError(t *testing.T) {
	s := providertest.Start(t, providers.FormatOpenAI)
	s.Enqueue(providertest.StreamError(providers.FormatOpenAI, "m", []string{"par", "tial"}, 500, "The server had an error"))
	stream := openAIClient(s).Chat.Completions.NewStreaming(context.Background(), chatParams("m"))
	defer stream.Close()
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	err := stream.Err()
	require.Error(t, err)
	require.Contains(t, err.Error(), "The server had an error")
	require.Equal(t, "partial", acc.Choices[0].Message.Content)
}

func TestOpenAIUnknownPath(t *testing.T) {
	s := providertest.Start(t, providers.FormatOpenAI)
	resp, err := s.Client().Post(s.URL+"messages", "application/json", strings.NewReader(`{"model":"m"}`))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	var body struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Equal(t, "invalid_request_error", body.Error.Type)
	require.Contains(t, body.Error.Message, "/v1/messages")
}

func ptr[T any](v T) *T { return &v }

package providertest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

// anthropicClient points the official Anthropic SDK at the fake server; the
// SDK's base URL is the root without "v1/".
func anthropicClient(s *providertest.Server) *anthropic.Client {
	c := anthropic.NewClient(
		option.WithBaseURL(strings.TrimSuffix(s.URL, "v1/")),
		option.WithAPIKey("x"),
		option.WithHTTPClient(s.Client()),
		option.WithMaxRetries(0),
	)
	return &c
}

func messageParams(model string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     anthropic.Model(model),
		MaxTokens: 64,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
	}
}

func TestAnthropicSDKMessage(t *testing.T) {
	u := providertest.Usage{Input: 12, Output: 4, CacheRead: 3, CacheWrite: 5}
	tests := []struct {
		name     string
		step     *providertest.Step
		wantText string
	}{
		{name: "scripted", step: ptr(providertest.AnthropicMessage("claude-x", "Hi <b> & \"q\"", u)), wantText: "Hi <b> & \"q\""},
		{name: "auto-reply", wantText: providertest.AutoReplyText(providers.FormatAnthropic)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := providertest.Start(t, providers.FormatAnthropic)
			if tt.step != nil {
				s.Enqueue(*tt.step)
			}
			msg, err := anthropicClient(s).Messages.New(context.Background(), messageParams("claude-x"))
			require.NoError(t, err)
			require.Equal(t, providertest.MessageID, msg.ID)
			require.Equal(t, "claude-x", string(msg.Model))
			require.Equal(t, "end_turn", string(msg.StopReason))
			require.Len(t, msg.Content, 1)
			require.Equal(t, "text", msg.Content[0].Type)
			require.Equal(t, tt.wantText, msg.Content[0].Text)
			if tt.step != nil {
				require.EqualValues(t, u.Input, msg.Usage.InputTokens)
				require.EqualValues(t, u.Output, msg.Usage.OutputTokens)
				require.EqualValues(t, u.CacheRead, msg.Usage.CacheReadInputTokens)
				require.EqualValues(t, u.CacheWrite, msg.Usage.CacheCreationInputTokens)
			} else {
				reqs := s.Requests()
				require.Len(t, reqs, 1)
				require.Equal(t, "/v1/messages", reqs[0].Path)
				want := providertest.AutoReplyUsage(providers.FormatAnthropic, reqs[0].Body)
				require.EqualValues(t, want.Input, msg.Usage.InputTokens)
				require.EqualValues(t, want.Output, msg.Usage.OutputTokens)
			}
		})
	}
}

// accumulate runs a streaming request and accumulates the events.
func accumulate(t *testing.T, s *providertest.Server) (anthropic.Message, []string, error) {
	t.Helper()
	stream := anthropicClient(s).Messages.NewStreaming(context.Background(), messageParams("claude-x"))
	defer stream.Close()
	var msg anthropic.Message
	var types []string
	for stream.Next() {
		ev := stream.Current()
		types = append(types, ev.Type)
		require.NoError(t, msg.Accumulate(ev))
	}
	return msg, types, stream.Err()
}

func TestAnthropicSDKStream(t *testing.T) {
	u := providertest.Usage{Input: 20, Output: 7, CacheRead: 2, CacheWrite: 1}
	tests := []struct {
		name     string
		step     *providertest.Step
		wantText string
	}{
		{name: "scripted", step: ptr(providertest.AnthropicStream("claude-x", []string{"Hel", "lo", "!"}, u)), wantText: "Hello!"},
		{name: "auto-reply", wantText: providertest.AutoReplyText(providers.FormatAnthropic)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := providertest.Start(t, providers.FormatAnthropic)
			if tt.step != nil {
				s.Enqueue(*tt.step)
			}
			msg, types, err := accumulate(t, s)
			require.NoError(t, err)
			// ping is consumed by the SDK.
			require.Equal(t, "message_start", types[0])
			require.Equal(t, "content_block_start", types[1])
			require.Equal(t, "content_block_delta", types[2])
			require.Equal(t, []string{"content_block_stop", "message_delta", "message_stop"}, types[len(types)-3:])
			require.Equal(t, providertest.MessageID, msg.ID)
			require.Equal(t, "end_turn", string(msg.StopReason))
			require.Len(t, msg.Content, 1)
			require.Equal(t, tt.wantText, msg.Content[0].Text)
			if tt.step != nil {
				require.EqualValues(t, u.Input, msg.Usage.InputTokens)
				require.EqualValues(t, u.Output, msg.Usage.OutputTokens)
				require.EqualValues(t, u.CacheRead, msg.Usage.CacheReadInputTokens)
				require.EqualValues(t, u.CacheWrite, msg.Usage.CacheCreationInputTokens)
			} else {
				require.EqualValues(t, len(providertest.AutoReplyDeltas(providers.FormatAnthropic)), msg.Usage.OutputTokens)
			}
		})
	}
}

func TestAnthropicSDKToolUseStream(t *testing.T) {
	s := providertest.Start(t, providers.FormatAnthropic)
	s.Enqueue(providertest.AnthropicToolUseStream("claude-x", []providertest.ToolCall{
		{Name: "get_weather", Arguments: []string{`{"city":`, ` "Paris"}`}},
		{ID: "toolu_custom", Name: "get_time"},
	}, providertest.Usage{Input: 3, Output: 30}))
	msg, _, err := accumulate(t, s)
	require.NoError(t, err)
	require.Equal(t, "tool_use", string(msg.StopReason))
	require.Len(t, msg.Content, 2)
	require.Equal(t, "tool_use", msg.Content[0].Type)
	require.Equal(t, "toolu_fake_1", msg.Content[0].ID)
	require.Equal(t, "get_weather", msg.Content[0].Name)
	require.JSONEq(t, `{"city":"Paris"}`, string(msg.Content[0].Input))
	require.Equal(t, "toolu_custom", msg.Content[1].ID)
	require.Equal(t, "get_time", msg.Content[1].Name)
	require.JSONEq(t, `{}`, string(msg.Content[1].Input))
	require.EqualValues(t, 30, msg.Usage.OutputTokens)
}

func TestAnthropicSDKThinkingStream(t *testing.T) {
	s := providertest.Start(t, providers.FormatAnthropic)
	s.Enqueue(providertest.AnthropicThinkingStream("claude-x", []string{"Let me ", "think."}, []string{"Answer", "."}, providertest.Usage{Input: 3, Output: 8}))
	msg, _, err := accumulate(t, s)
	require.NoError(t, err)
	require.Len(t, msg.Content, 2)
	require.Equal(t, "thinking", msg.Content[0].Type)
	require.Equal(t, "Let me think.", msg.Content[0].Thinking)
	require.Equal(t, "fake-signature", msg.Content[0].Signature)
	require.Equal(t, "Answer.", msg.Content[1].Text)
}

func TestAnthropicSDKErrors(t *testing.T) {
	tests := []struct {
		status   int
		wantType string
	}{
		{400, "invalid_request_error"},
		{401, "authentication_error"},
		{403, "permission_error"},
		{404, "not_found_error"},
		{413, "request_too_large"},
		{429, "rate_limit_error"},
		{500, "api_error"},
		{529, "overloaded_error"},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status)+"/"+tt.wantType, func(t *testing.T) {
			s := providertest.Start(t, providers.FormatAnthropic)
			step := providertest.Error(providers.FormatAnthropic, tt.status, "nope")
			if tt.status == 429 {
				step = providertest.RateLimited(providers.FormatAnthropic, "12")
			}
			s.Enqueue(step)
			_, err := anthropicClient(s).Messages.New(context.Background(), messageParams("claude-x"))
			var apiErr *anthropic.Error
			require.ErrorAs(t, err, &apiErr)
			require.Equal(t, tt.status, apiErr.StatusCode)
			require.Equal(t, tt.wantType, string(apiErr.Type()))
			require.Equal(t, providertest.RequestID, apiErr.RequestID)
			if tt.status == 429 {
				require.Equal(t, "12", apiErr.Response.Header.Get("Retry-After"))
			}
			var body struct {
				Type  string `json:"type"`
				Error struct {
					Type    string `json:"type"`
					Message string `json:"message"`
				} `json:"error"`
				RequestID string `json:"request_id"`
			}
			require.NoError(t, json.Unmarshal(step.Body, &body))
			require.Equal(t, "error", body.Type)
			require.Equal(t, tt.wantType, body.Error.Type)
			require.Equal(t, providertest.RequestID, body.RequestID)
		})
	}
}

func TestAnthropicSDKStreamError(t *testing.T) {
	s := providertest.Start(t, providers.FormatAnthropic)
	s.Enqueue(providertest.StreamError(providers.FormatAnthropic, "claude-x", []string{"par", "tial"}, 529, "Overloaded"))
	msg, _, err := accumulate(t, s)
	require.Error(t, err)
	var apiErr *anthropic.Error
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, "overloaded_error", string(apiErr.Type()))
	require.Equal(t, "partial", msg.Content[0].Text)
}

func TestAnthropicUnknownPath(t *testing.T) {
	s := providertest.Start(t, providers.FormatAnthropic)
	resp, err := s.Client().Post(s.URL+"chat/completions", "application/json", strings.NewReader(`{"model":"m"}`))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	var body struct {
		Type  string `json:"type"`
		Error struct {
			Type string `json:"type"`
		} `json:"error"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Equal(t, "error", body.Type)
	require.Equal(t, "not_found_error", body.Error.Type)
}

package providertest_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/providers/providertest"
)

// serveStep serves step to every request, as a Step is an http.Handler.
func serveStep(t *testing.T, step providertest.Step) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(step)
	t.Cleanup(srv.Close)
	return srv
}

func openAIClientFor(srv *httptest.Server) openai.Client {
	return openai.NewClient(option.WithBaseURL(srv.URL+"/v1/"), option.WithAPIKey("x"),
		option.WithHTTPClient(srv.Client()), option.WithMaxRetries(0))
}

func anthropicClientFor(srv *httptest.Server) anthropic.Client {
	return anthropic.NewClient(aoption.WithBaseURL(srv.URL+"/"), aoption.WithAPIKey("x"),
		aoption.WithHTTPClient(srv.Client()), aoption.WithMaxRetries(0))
}

var toolCalls = []providertest.ToolCall{
	{ID: "call_a", Name: "get_weather", Arguments: []string{`{"city":`, `"Paris"}`}},
	{Name: "get_time"},
}

func TestFixedBuildersAreDefaultReplies(t *testing.T) {
	u := providertest.Usage{Input: 5, Output: 2, CacheRead: 1}
	deltas := []string{"Hi", " there"}
	r := providertest.Reply{Model: "m", Deltas: deltas, Usage: u}
	tools := providertest.Reply{Model: "m", ToolCalls: toolCalls, Usage: u}
	tests := []struct {
		name        string
		fixed, more providertest.Step
	}{
		{"chat", providertest.OpenAIChat("m", "Hi there", u), providertest.OpenAIChatReply(r)},
		{"chat stream", providertest.OpenAIChatStream("m", deltas, u, true), providertest.OpenAIChatReplyStream(r, true)},
		{"tool call stream", providertest.OpenAIToolCallStream("m", toolCalls, u, false), providertest.OpenAIChatReplyStream(tools, false)},
		{"responses", providertest.OpenAIResponses("m", "Hi there", u), providertest.OpenAIResponsesReply(r)},
		{"responses stream", providertest.OpenAIResponsesStream("m", deltas, u), providertest.OpenAIResponsesReplyStream(r)},
		{"message", providertest.AnthropicMessage("m", "Hi there", u), providertest.AnthropicReply(r)},
		{"message stream", providertest.AnthropicStream("m", deltas, u), providertest.AnthropicReplyStream(r)},
		{"tool use stream", providertest.AnthropicToolUseStream("m", toolCalls, u), providertest.AnthropicReplyStream(tools)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.fixed.Header, tt.more.Header)
			require.Equal(t, string(tt.fixed.Body), string(tt.more.Body))
			require.Equal(t, string(tt.fixed.StreamBytes()), string(tt.more.StreamBytes()))
		})
	}
}

func TestReplyIdentity(t *testing.T) {
	r := providertest.Reply{
		Model: "gpt-4o-mini", Deltas: []string{"Hello", " you"}, Usage: providertest.Usage{Input: 3, Output: 2},
		ID: "chatcmpl-x", Created: 1234, Fingerprint: "fp_x", ItemID: "msg_item",
	}
	client := openAIClientFor(serveStep(t, providertest.OpenAIChatReply(r)))
	res, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: "gpt-4o-mini"})
	require.NoError(t, err)
	require.Equal(t, "chatcmpl-x", res.ID)
	require.EqualValues(t, 1234, res.Created)
	require.Equal(t, "fp_x", res.SystemFingerprint)
	require.Equal(t, "Hello you", res.Choices[0].Message.Content)

	instructions := "Be brief."
	r.ID, r.Instructions = "resp_x", &instructions
	client = openAIClientFor(serveStep(t, providertest.OpenAIResponsesReply(r)))
	resp, err := client.Responses.New(context.Background(), responses.ResponseNewParams{Model: "gpt-4o-mini"})
	require.NoError(t, err)
	require.Equal(t, "resp_x", resp.ID)
	require.Equal(t, "Hello you", resp.OutputText())
	require.Equal(t, "msg_item", resp.Output[0].ID)
	require.Equal(t, instructions, resp.Instructions.OfString)

	r.ID = "msg_x"
	aclient := anthropicClientFor(serveStep(t, providertest.AnthropicReply(r)))
	msg, err := aclient.Messages.New(context.Background(), anthropic.MessageNewParams{Model: "claude", MaxTokens: 9})
	require.NoError(t, err)
	require.Equal(t, "msg_x", msg.ID)
	require.Equal(t, "Hello you", msg.Content[0].Text)
}

func TestToolCallReplies(t *testing.T) {
	r := providertest.Reply{Model: "m", Deltas: []string{"not sent"}, ToolCalls: toolCalls}
	t.Run("openai", func(t *testing.T) {
		client := openAIClientFor(serveStep(t, providertest.OpenAIChatReply(r)))
		res, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: "m"})
		require.NoError(t, err)
		require.Equal(t, "tool_calls", res.Choices[0].FinishReason)
		require.Empty(t, res.Choices[0].Message.Content)
		calls := res.Choices[0].Message.ToolCalls
		require.Len(t, calls, 2)
		require.Equal(t, "call_a", calls[0].ID)
		require.Equal(t, "get_weather", calls[0].Function.Name)
		require.JSONEq(t, `{"city":"Paris"}`, calls[0].Function.Arguments)
		require.Equal(t, "call_fake_2", calls[1].ID)
		require.Empty(t, calls[1].Function.Arguments)
	})
	t.Run("anthropic", func(t *testing.T) {
		client := anthropicClientFor(serveStep(t, providertest.AnthropicReply(r)))
		msg, err := client.Messages.New(context.Background(), anthropic.MessageNewParams{Model: "m", MaxTokens: 9})
		require.NoError(t, err)
		require.Equal(t, anthropic.StopReasonToolUse, msg.StopReason)
		require.Len(t, msg.Content, 2)
		require.Equal(t, "tool_use", msg.Content[0].Type)
		require.Equal(t, "call_a", msg.Content[0].ID)
		require.JSONEq(t, `{"city":"Paris"}`, string(msg.Content[0].Input))
		require.Equal(t, "toolu_fake_2", msg.Content[1].ID)
		require.JSONEq(t, `{}`, string(msg.Content[1].Input))
	})
}

// TestReplyPace checks where Pace puts its pauses: before every delta but
// the first and before every argument fragment, nowhere else.
func TestReplyPace(t *testing.T) {
	const pace = 7 * time.Millisecond
	r := providertest.Reply{Model: "m", Deltas: []string{"a", "b", "c"}, Pace: pace}
	tools := providertest.Reply{Model: "m", ToolCalls: toolCalls, Pace: pace}
	delays := func(s providertest.Step) (n int) {
		for _, ev := range s.Events {
			if ev.Delay != 0 {
				require.Equal(t, pace, ev.Delay)
				n++
			}
		}
		return n
	}
	require.Equal(t, 2, delays(providertest.OpenAIChatReplyStream(r, true)))
	require.Equal(t, 2, delays(providertest.OpenAIResponsesReplyStream(r)))
	require.Equal(t, 2, delays(providertest.AnthropicReplyStream(r)))
	require.Equal(t, 2, delays(providertest.OpenAIChatReplyStream(tools, false)))
	require.Equal(t, 2, delays(providertest.AnthropicReplyStream(tools)))
	require.Zero(t, delays(providertest.OpenAIChatStream("m", r.Deltas, providertest.Usage{}, true)))
}

func TestOpenAIEmbeddingVectors(t *testing.T) {
	vectors := [][]float32{{0.5, -0.25}, {1, 2}}
	for _, b64 := range []bool{false, true} {
		step := providertest.OpenAIEmbeddingVectors("emb", vectors, b64, 11)
		var list struct {
			Data []struct {
				Index     int             `json:"index"`
				Embedding json.RawMessage `json:"embedding"`
			} `json:"data"`
			Usage struct {
				PromptTokens int `json:"prompt_tokens"`
			} `json:"usage"`
		}
		require.NoError(t, json.Unmarshal(step.Body, &list))
		require.Equal(t, 11, list.Usage.PromptTokens)
		require.Len(t, list.Data, 2)
		for i, d := range list.Data {
			require.Equal(t, i, d.Index)
			var got []float32
			if b64 {
				var s string
				require.NoError(t, json.Unmarshal(d.Embedding, &s))
				raw, err := base64.StdEncoding.DecodeString(s)
				require.NoError(t, err)
				for j := 0; j < len(raw); j += 4 {
					got = append(got, math.Float32frombits(binary.LittleEndian.Uint32(raw[j:])))
				}
			} else {
				require.NoError(t, json.Unmarshal(d.Embedding, &got))
			}
			require.Equal(t, vectors[i], got)
		}
	}
}

package demo_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/internal/demo"
)

func anthropicClient(srv *httptest.Server) anthropic.Client {
	return anthropic.NewClient(
		option.WithBaseURL(srv.URL+"/anthropic/"),
		option.WithAPIKey("demo"),
		option.WithHTTPClient(srv.Client()),
		option.WithMaxRetries(0),
	)
}

func messageParams(text string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     "claude-haiku-4-5",
		MaxTokens: 256,
		System:    []anthropic.TextBlockParam{{Text: "Be brief."}},
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(text))},
	}
}

func withTools(p anthropic.MessageNewParams) anthropic.MessageNewParams {
	schema := anthropic.ToolInputSchemaParam{Properties: map[string]any{}}
	p.Tools = []anthropic.ToolUnionParam{
		anthropic.ToolUnionParamOfTool(schema, "get_weather"),
		anthropic.ToolUnionParamOfTool(schema, "get_time"),
	}
	return p
}

// accumulate streams p and accumulates the events.
func accumulate(t *testing.T, client anthropic.Client, p anthropic.MessageNewParams) (anthropic.Message, []string) {
	t.Helper()
	stream := client.Messages.NewStreaming(context.Background(), p)
	defer stream.Close()
	var msg anthropic.Message
	var types []string
	for stream.Next() {
		ev := stream.Current()
		types = append(types, ev.Type)
		require.NoError(t, msg.Accumulate(ev))
	}
	require.NoError(t, stream.Err())
	return msg, types
}

func TestAnthropicSDKMessage(t *testing.T) {
	client := anthropicClient(start(t))
	msg, err := client.Messages.New(context.Background(), messageParams("Hello Claude"))
	require.NoError(t, err)
	require.Equal(t, "claude-haiku-4-5", string(msg.Model))
	require.Equal(t, "assistant", string(msg.Role))
	require.Equal(t, "end_turn", string(msg.StopReason))
	require.Len(t, msg.Content, 1)
	require.Equal(t, "text", msg.Content[0].Type)
	require.Equal(t, demo.Reply("Hello Claude"), msg.Content[0].Text)
	require.EqualValues(t, (len("Be brief.")+len("Hello Claude"))/4, msg.Usage.InputTokens)
	require.EqualValues(t, len(demo.Reply("Hello Claude"))/4, msg.Usage.OutputTokens)
}

func TestAnthropicSDKStream(t *testing.T) {
	client := anthropicClient(start(t))
	msg, types := accumulate(t, client, messageParams("Stream, Claude"))
	want := demo.Reply("Stream, Claude")
	n := len(demo.Words(want))
	// The SDK consumes ping.
	require.Equal(t, "message_start", types[0])
	require.Equal(t, "content_block_start", types[1])
	require.Len(t, types, 2+n+3)
	for _, typ := range types[2 : 2+n] {
		require.Equal(t, "content_block_delta", typ)
	}
	require.Equal(t, []string{"content_block_stop", "message_delta", "message_stop"}, types[2+n:])
	require.Equal(t, "end_turn", string(msg.StopReason))
	require.Len(t, msg.Content, 1)
	require.Equal(t, want, msg.Content[0].Text)
	require.EqualValues(t, len(want)/4, msg.Usage.OutputTokens)
	require.EqualValues(t, (len("Be brief.")+len("Stream, Claude"))/4, msg.Usage.InputTokens)
}

func TestAnthropicStreamWire(t *testing.T) {
	srv := start(t)
	resp, body := post(t, srv, "/anthropic/v1/messages",
		`{"model":"m","max_tokens":9,"stream":true,"messages":[{"role":"user","content":"x y"}]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	var names []string
	for _, ev := range strings.Split(strings.TrimSuffix(string(body), "\n\n"), "\n\n") {
		lines := strings.Split(ev, "\n")
		require.Len(t, lines, 2, ev)
		name := strings.TrimPrefix(lines[0], "event: ")
		names = append(names, name)
		var data struct {
			Type string `json:"type"`
		}
		require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(lines[1], "data: ")), &data))
		require.Equal(t, name, data.Type)
	}
	n := len(demo.Words(demo.Reply("x y")))
	require.Equal(t, []string{"message_start", "content_block_start", "ping"}, names[:3])
	require.Equal(t, []string{"content_block_stop", "message_delta", "message_stop"}, names[3+n:])
	require.Contains(t, string(body), `"delta":{"stop_reason":"end_turn","stop_sequence":null}`)
}

func TestAnthropicSDKToolUse(t *testing.T) {
	tests := []struct {
		name     string
		params   anthropic.MessageNewParams
		wantTool string
	}{
		{name: "asked by name", params: withTools(messageParams("call get_weather")), wantTool: "get_weather"},
		{name: "asked for a tool", params: withTools(messageParams("use your tool")), wantTool: "get_weather"},
		{name: "not asked", params: withTools(messageParams("Hello")), wantTool: ""},
		{name: "any", params: func() anthropic.MessageNewParams {
			p := withTools(messageParams("Hello"))
			p.ToolChoice = anthropic.ToolChoiceUnionParam{OfAny: &anthropic.ToolChoiceAnyParam{}}
			return p
		}(), wantTool: "get_weather"},
		{name: "named", params: func() anthropic.MessageNewParams {
			p := withTools(messageParams("Hello"))
			p.ToolChoice = anthropic.ToolChoiceParamOfTool("get_time")
			return p
		}(), wantTool: "get_time"},
		{name: "none", params: func() anthropic.MessageNewParams {
			p := withTools(messageParams("use the tool"))
			p.ToolChoice = anthropic.ToolChoiceUnionParam{OfNone: &anthropic.ToolChoiceNoneParam{}}
			return p
		}(), wantTool: ""},
		{name: "after a tool result", params: func() anthropic.MessageNewParams {
			p := withTools(messageParams("use the tool"))
			p.Messages = append(p.Messages,
				anthropic.NewAssistantMessage(anthropic.NewToolUseBlock("toolu_1", map[string]any{}, "get_weather")),
				anthropic.NewUserMessage(anthropic.NewToolResultBlock("toolu_1", "sunny tool", false)))
			return p
		}(), wantTool: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := anthropicClient(start(t))
			msg, err := client.Messages.New(context.Background(), tt.params)
			require.NoError(t, err)
			streamed, _ := accumulate(t, client, tt.params)
			for _, m := range []anthropic.Message{*msg, streamed} {
				require.Len(t, m.Content, 1)
				if tt.wantTool == "" {
					require.Equal(t, "end_turn", string(m.StopReason))
					require.Equal(t, "text", m.Content[0].Type)
					require.True(t, strings.HasPrefix(m.Content[0].Text, demo.Marker))
					continue
				}
				require.Equal(t, "tool_use", string(m.StopReason))
				require.Equal(t, "tool_use", m.Content[0].Type)
				require.Equal(t, tt.wantTool, m.Content[0].Name)
				require.NotEmpty(t, m.Content[0].ID)
				require.JSONEq(t, `{}`, string(m.Content[0].Input))
			}
		})
	}
}

func TestAnthropicErrors(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{name: "bad json", body: `{"model":`, want: "not valid JSON"},
		{name: "no model", body: `{"max_tokens":1,"messages":[{"role":"user","content":"x"}]}`, want: "model"},
		{name: "no max_tokens", body: `{"model":"m","messages":[{"role":"user","content":"x"}]}`, want: "max_tokens"},
		{name: "no messages", body: `{"model":"m","max_tokens":1}`, want: "messages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(t, start(t), "/anthropic/v1/messages", tt.body)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode)
			var e struct {
				Type  string `json:"type"`
				Error struct {
					Type    string `json:"type"`
					Message string `json:"message"`
				} `json:"error"`
			}
			require.NoError(t, json.Unmarshal(body, &e), string(body))
			require.Equal(t, "error", e.Type)
			require.Equal(t, "invalid_request_error", e.Error.Type)
			require.Contains(t, e.Error.Message, tt.want)
		})
	}

	// The SDK sees them as *anthropic.Error.
	client := anthropicClient(start(t))
	p := messageParams("x")
	p.Model = ""
	_, err := client.Messages.New(context.Background(), p)
	var apiErr *anthropic.Error
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
	require.Equal(t, "invalid_request_error", string(apiErr.Type()))
}

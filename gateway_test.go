package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	anthropicsdk "github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	openaisdk "github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	// The SDK clients and http.DefaultClient keep idle connections to the
	// test servers; they are not the gateway's goroutines.
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func TestOpenAIChatThroughSDK(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.oa.Enqueue(providertest.OpenAIChat("gpt-4o", "Hello there", providertest.Usage{Input: 11, Output: 3}))
	var resp *http.Response
	out, err := e.openai().Chat.Completions.New(context.Background(), openaisdk.ChatCompletionNewParams{
		Model:    "gpt-4o",
		Messages: []openaisdk.ChatCompletionMessageParamUnion{openaisdk.UserMessage("Hi")},
	}, ooption.WithResponseInto(&resp))
	require.NoError(t, err)
	require.Equal(t, "Hello there", out.Choices[0].Message.Content)
	require.Equal(t, int64(11), out.Usage.PromptTokens)
	require.Equal(t, "openai:gpt-4o", resp.Header.Get(HeaderModel))
	require.Equal(t, "1", resp.Header.Get(HeaderAttempts))
	require.True(t, strings.HasPrefix(resp.Header.Get(HeaderRequestID), "req_"))

	reqs := e.oa.Requests()
	require.Len(t, reqs, 1)
	require.Equal(t, "/v1/chat/completions", reqs[0].Path)
	require.Equal(t, "Bearer sk-oa-1", reqs[0].Header.Get("Authorization"), "the configured key, not the client's")
	require.Equal(t, "gpt-4o", upstreamModel(t, reqs[0]))

	ev := e.events.last(t)
	require.Equal(t, "openai:gpt-4o", ev.ServedBy)
	require.Equal(t, http.StatusOK, ev.Status)
	require.True(t, ev.UsageReported)
	require.Equal(t, int64(11), ev.Usage.InputTokens)
	require.Equal(t, int64(3), ev.Usage.OutputTokens)
	require.Len(t, ev.Attempts, 1)
	require.Equal(t, "key-1", ev.Attempts[0].KeyID)
	require.Equal(t, []string{"openai:gpt-4o"}, ev.Candidates)
}

func TestOpenAIChatStreamThroughSDK(t *testing.T) {
	for _, includeUsage := range []bool{false, true} {
		t.Run(map[bool]string{false: "usage chunk hidden", true: "usage chunk requested"}[includeUsage], func(t *testing.T) {
			e := newEnv(t, envConfig{})
			e.oa.Enqueue(providertest.OpenAIChatStream("gpt-4o", []string{"Hel", "lo", " world"}, providertest.Usage{Input: 7, Output: 3}, true))
			params := openaisdk.ChatCompletionNewParams{
				Model:    "gpt-4o",
				Messages: []openaisdk.ChatCompletionMessageParamUnion{openaisdk.UserMessage("Hi")},
			}
			if includeUsage {
				params.StreamOptions = openaisdk.ChatCompletionStreamOptionsParam{IncludeUsage: openaisdk.Bool(true)}
			}
			stream := e.openai().Chat.Completions.NewStreaming(context.Background(), params)
			defer stream.Close()
			var acc openaisdk.ChatCompletionAccumulator
			sawUsageChunk := false
			for stream.Next() {
				chunk := stream.Current()
				acc.AddChunk(chunk)
				if len(chunk.Choices) == 0 {
					sawUsageChunk = true
				}
			}
			require.NoError(t, stream.Err())
			require.Equal(t, "Hello world", acc.Choices[0].Message.Content)
			require.Equal(t, includeUsage, sawUsageChunk)

			// The gateway always asks the upstream for usage, so it can meter.
			var sent struct {
				StreamOptions struct {
					IncludeUsage bool `json:"include_usage"`
				} `json:"stream_options"`
			}
			require.NoError(t, json.Unmarshal(e.oa.Requests()[0].Body, &sent))
			require.True(t, sent.StreamOptions.IncludeUsage)
			ev := e.events.last(t)
			require.True(t, ev.UsageReported)
			require.Equal(t, int64(7), ev.Usage.InputTokens)
			require.Equal(t, int64(3), ev.Usage.OutputTokens)
			require.True(t, ev.Stream)
		})
	}
}

func TestAnthropicMessagesThroughSDK(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.an.Enqueue(providertest.AnthropicMessage("claude-sonnet-4-5", "Bonjour", providertest.Usage{Input: 9, Output: 2, CacheRead: 4}))
	var resp *http.Response
	msg, err := e.anthropic().Messages.New(context.Background(), anthropicsdk.MessageNewParams{
		Model:     "claude-sonnet-4-5",
		MaxTokens: 64,
		Messages:  []anthropicsdk.MessageParam{anthropicsdk.NewUserMessage(anthropicsdk.NewTextBlock("Hi"))},
	}, aoption.WithResponseInto(&resp))
	require.NoError(t, err)
	require.Equal(t, "Bonjour", msg.Content[0].Text)
	require.Equal(t, "anthropic:claude-sonnet-4-5", resp.Header.Get(HeaderModel))
	r := e.an.Requests()[0]
	require.Equal(t, "/v1/messages", r.Path)
	require.Equal(t, "sk-an-1", r.Header.Get("X-Api-Key"))
	require.Empty(t, r.Header.Get("Authorization"))
	require.NotEmpty(t, r.Header.Get("Anthropic-Version"))
	ev := e.events.last(t)
	require.Equal(t, int64(9+4), ev.Usage.InputTokens, "input includes cache reads")
	require.Equal(t, int64(4), ev.Usage.CacheReadTokens)
}

func TestAnthropicStreamThroughSDK(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.an.Enqueue(providertest.AnthropicStream("claude-sonnet-4-5", []string{"Bon", "jour"}, providertest.Usage{Input: 9, Output: 2}))
	stream := e.anthropic().Messages.NewStreaming(context.Background(), anthropicsdk.MessageNewParams{
		Model:     "claude-sonnet-4-5",
		MaxTokens: 64,
		Messages:  []anthropicsdk.MessageParam{anthropicsdk.NewUserMessage(anthropicsdk.NewTextBlock("Hi"))},
	}, aoption.WithHeader("anthropic-beta", "prompt-caching-2024-07-31"))
	defer stream.Close()
	var msg anthropicsdk.Message
	for stream.Next() {
		require.NoError(t, msg.Accumulate(stream.Current()))
	}
	require.NoError(t, stream.Err())
	require.Equal(t, "Bonjour", msg.Content[0].Text)
	require.Equal(t, anthropicsdk.StopReasonEndTurn, msg.StopReason)
	require.Equal(t, "prompt-caching-2024-07-31", e.an.Requests()[0].Header.Get("Anthropic-Beta"))
	ev := e.events.last(t)
	require.True(t, ev.UsageReported)
	require.Equal(t, int64(9), ev.Usage.InputTokens)
	require.Equal(t, int64(2), ev.Usage.OutputTokens)
}

func TestRoutesAndErrorShapes(t *testing.T) {
	e := newEnv(t, envConfig{})
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code                     string
		anthropic                bool
	}{
		{name: "unknown path", method: "POST", path: "/v1/nope", body: "{}", status: 404, code: "not_found"},
		{name: "root", method: "GET", path: "/", status: 404, code: "not_found"},
		{name: "wrong method", method: "GET", path: "/v1/chat/completions", status: 405, code: "method_not_allowed"},
		{name: "wrong method anthropic", method: "PUT", path: "/v1/messages", status: 405, code: "method_not_allowed", anthropic: true},
		{name: "anthropic subpath", method: "POST", path: "/v1/messages/count_tokens", body: "{}", status: 404, code: "not_found", anthropic: true},
		{name: "bad json", method: "POST", path: "/v1/chat/completions", body: "{nope", status: 400, code: "invalid_json"},
		{name: "bad json anthropic", method: "POST", path: "/v1/messages", body: "[]", status: 400, code: "invalid_json", anthropic: true},
		{name: "model not string", method: "POST", path: "/v1/chat/completions", body: `{"model":1}`, status: 400, code: "invalid_request"},
		{name: "models not array", method: "POST", path: "/v1/messages", body: `{"models":"a"}`, status: 400, code: "invalid_request", anthropic: true},
		{name: "unknown model", method: "POST", path: "/v1/chat/completions", body: chatBody("gpt-nonexistent"), status: 422, code: "model_unknown"},
		{name: "unknown provider", method: "POST", path: "/v1/chat/completions", body: chatBody("nope:gpt-4o"), status: 422, code: "provider_unknown"},
		{name: "stream embeddings", method: "POST", path: "/v1/embeddings", body: `{"model":"text-embedding-3-small","input":"x","stream":true}`, status: 400, code: "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, e.srv.URL+tc.path, strings.NewReader(tc.body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			var b []byte
			b, err = readAll(resp.Body, 1<<20)
			require.NoError(t, err)
			require.Equal(t, tc.status, resp.StatusCode, string(b))
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			require.NotEmpty(t, resp.Header.Get(HeaderRequestID))
			require.Equal(t, "0", resp.Header.Get(HeaderAttempts))
			if tc.anthropic {
				v := decodeAnthropicError(t, b)
				require.Equal(t, tc.code, v.Error.Code)
				require.NotEmpty(t, v.Error.Message)
				require.Equal(t, resp.Header.Get(HeaderRequestID), v.RequestID)
				return
			}
			v := decodeOpenAIError(t, b)
			require.Equal(t, tc.code, v.Error.Code)
			require.NotEmpty(t, v.Error.Message)
		})
	}
	require.Zero(t, e.oa.Count()+e.an.Count(), "no bad request reached an upstream")
}

func TestSDKSeesTypedErrors(t *testing.T) {
	e := newEnv(t, envConfig{})
	_, err := e.openai().Chat.Completions.New(context.Background(), openaisdk.ChatCompletionNewParams{
		Model:    "gpt-nonexistent",
		Messages: []openaisdk.ChatCompletionMessageParamUnion{openaisdk.UserMessage("Hi")},
	})
	var oerr *openaisdk.Error
	require.ErrorAs(t, err, &oerr)
	require.Equal(t, 422, oerr.StatusCode)
	require.Equal(t, "model_unknown", oerr.Code)
	require.Contains(t, oerr.Message, "gpt-nonexistent")

	_, err = e.anthropic().Messages.New(context.Background(), anthropicsdk.MessageNewParams{
		Model: "claude-nonexistent", MaxTokens: 5,
		Messages: []anthropicsdk.MessageParam{anthropicsdk.NewUserMessage(anthropicsdk.NewTextBlock("Hi"))},
	})
	var aerr *anthropicsdk.Error
	require.ErrorAs(t, err, &aerr)
	require.Equal(t, 422, aerr.StatusCode)
	require.Contains(t, aerr.Error(), "claude-nonexistent")
}

func TestMountedUnderPrefix(t *testing.T) {
	oa := providertest.Start(t, providers.FormatOpenAI)
	gw, err := New(WithProvider(ProviderConfig{ID: "openai", BaseURL: oa.URL, Keys: []ProviderKey{{Value: "sk-x"}}}))
	require.NoError(t, err)
	defer gw.Close()
	mux := http.NewServeMux()
	mux.Handle("/ai/", http.StripPrefix("/ai", gw))
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := openaisdk.NewClient(ooption.WithBaseURL(srv.URL+"/ai/v1/"), ooption.WithAPIKey("x"), ooption.WithMaxRetries(0))
	out, err := client.Chat.Completions.New(context.Background(), openaisdk.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openaisdk.ChatCompletionMessageParamUnion{openaisdk.UserMessage("Hi")},
	})
	require.NoError(t, err)
	require.Equal(t, providertest.AutoReplyText(providers.FormatOpenAI), out.Choices[0].Message.Content)
	page, err := client.Models.List(context.Background())
	require.NoError(t, err)
	require.NotEmpty(t, page.Data)
}

func TestModelsList(t *testing.T) {
	e := newEnv(t, envConfig{})
	resp, body := e.post(t, "/v1/models", "")
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	r, err := http.Get(e.srv.URL + "/v1/models")
	require.NoError(t, err)
	defer r.Body.Close()
	body, err = readAll(r.Body, 10<<20)
	require.NoError(t, err)
	var list struct {
		Object string `json:"object"`
		Data   []struct {
			ID       string `json:"id"`
			Object   string `json:"object"`
			OwnedBy  string `json:"owned_by"`
			Provider string `json:"provider"`
			Pricing  *struct {
				Input int64 `json:"input"`
			} `json:"pricing"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &list))
	require.Equal(t, "list", list.Object)
	ids := map[string]bool{}
	for _, m := range list.Data {
		require.Equal(t, "model", m.Object)
		ids[m.ID] = true
	}
	require.True(t, ids["openai:gpt-4o"])
	require.True(t, ids["anthropic:claude-sonnet-4-5"])
	require.True(t, ids["groq:meta-llama/llama-3.3-70b-versatile"] || len(ids) > 20)

	// Restricted gateways list only what the caller may use.
	e2 := newEnv(t, envConfig{opts: []Option{WithOnlyConfiguredProviders(true)}})
	r2, err := http.Get(e2.srv.URL + "/v1/models")
	require.NoError(t, err)
	defer r2.Body.Close()
	require.NoError(t, json.NewDecoder(r2.Body).Decode(&list))
	for _, m := range list.Data {
		require.Contains(t, []string{"openai", "anthropic"}, m.Provider)
	}
}

func TestModelsListForAnthropicSDK(t *testing.T) {
	e := newEnv(t, envConfig{opts: []Option{WithOnlyConfiguredProviders(true)}})
	page, err := e.anthropic().Models.List(context.Background(), anthropicsdk.ModelListParams{})
	require.NoError(t, err)
	require.NotEmpty(t, page.Data)
	ids := map[string]bool{}
	for _, m := range page.Data {
		ids[m.ID] = true
	}
	require.True(t, ids["anthropic:claude-sonnet-4-5"])
	require.False(t, page.HasMore)
	page2, err := e.openai().Models.List(context.Background())
	require.NoError(t, err)
	require.Len(t, page2.Data, len(page.Data))
}

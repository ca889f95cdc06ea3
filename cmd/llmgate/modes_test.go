package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/stretchr/testify/require"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/internal/demo"
)

func (r *running) openAI() *openai.Client {
	c := openai.NewClient(
		option.WithBaseURL(r.base+"/v1/"),
		option.WithAPIKey("demo"),
		option.WithHTTPClient(r.client),
		option.WithMaxRetries(0),
	)
	return &c
}

func (r *running) anthropic() *anthropic.Client {
	c := anthropic.NewClient(
		aoption.WithBaseURL(r.base+"/"),
		aoption.WithAPIKey("demo"),
		aoption.WithHTTPClient(r.client),
		aoption.WithMaxRetries(0),
	)
	return &c
}

func userChat(model, text string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(text)},
	}
}

func TestDemoModeSDKs(t *testing.T) {
	r := startServer(t, nil, nil)
	ctx := context.Background()
	oai := r.openAI()

	t.Run("openai chat", func(t *testing.T) {
		res, err := oai.Chat.Completions.New(ctx, userChat("gpt-4o-mini", "Hello from Go"))
		require.NoError(t, err)
		require.Equal(t, demo.Reply("Hello from Go"), res.Choices[0].Message.Content)
		require.Equal(t, "gpt-4o-mini", res.Model)
		require.NotZero(t, res.Usage.TotalTokens)
	})
	t.Run("openai chat stream", func(t *testing.T) {
		p := userChat("gpt-4o-mini", "Stream from Go")
		p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		stream := oai.Chat.Completions.NewStreaming(ctx, p)
		defer stream.Close()
		var acc openai.ChatCompletionAccumulator
		for stream.Next() {
			require.True(t, acc.AddChunk(stream.Current()))
		}
		require.NoError(t, stream.Err())
		require.Equal(t, demo.Reply("Stream from Go"), acc.Choices[0].Message.Content)
		require.Equal(t, "stop", acc.Choices[0].FinishReason)
		require.NotZero(t, acc.Usage.CompletionTokens)
	})
	t.Run("openai responses", func(t *testing.T) {
		res, err := oai.Responses.New(ctx, responses.ResponseNewParams{
			Model: "gpt-4.1-mini",
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Respond")},
		})
		require.NoError(t, err)
		require.Equal(t, demo.Reply("Respond"), res.OutputText())

		stream := oai.Responses.NewStreaming(ctx, responses.ResponseNewParams{
			Model: "gpt-4.1-mini",
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Respond streaming")},
		})
		defer stream.Close()
		var text strings.Builder
		for stream.Next() {
			if ev := stream.Current(); ev.Type == "response.output_text.delta" {
				text.WriteString(ev.AsResponseOutputTextDelta().Delta)
			}
		}
		require.NoError(t, stream.Err())
		require.Equal(t, demo.Reply("Respond streaming"), text.String())
	})
	t.Run("openai embeddings", func(t *testing.T) {
		res, err := oai.Embeddings.New(ctx, openai.EmbeddingNewParams{
			Model: "text-embedding-3-small",
			Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "b"}},
		})
		require.NoError(t, err)
		require.Len(t, res.Data, 2)
		want := demo.Embedding("text-embedding-3-small", "b", demo.DefaultEmbeddingDims)
		require.Len(t, res.Data[1].Embedding, len(want))
		require.InDelta(t, want[0], res.Data[1].Embedding[0], 1e-6)
	})
	t.Run("anthropic messages", func(t *testing.T) {
		msg, err := r.anthropic().Messages.New(ctx, anthropic.MessageNewParams{
			Model: "claude-haiku-4-5", MaxTokens: 64,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Hello Claude"))},
		})
		require.NoError(t, err)
		require.Equal(t, demo.Reply("Hello Claude"), msg.Content[0].Text)
		require.Equal(t, "end_turn", string(msg.StopReason))
	})
	t.Run("anthropic messages stream", func(t *testing.T) {
		stream := r.anthropic().Messages.NewStreaming(ctx, anthropic.MessageNewParams{
			Model: "claude-sonnet-4-5", MaxTokens: 64,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Stream, Claude"))},
		})
		defer stream.Close()
		var msg anthropic.Message
		for stream.Next() {
			require.NoError(t, msg.Accumulate(stream.Current()))
		}
		require.NoError(t, stream.Err())
		require.Equal(t, demo.Reply("Stream, Claude"), msg.Content[0].Text)
		require.Equal(t, "end_turn", string(msg.StopReason))
		require.NotZero(t, msg.Usage.OutputTokens)
	})
	t.Run("tool call", func(t *testing.T) {
		p := userChat("gpt-4o", "please use the tool")
		p.Tools = []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{Name: "lookup"})}
		res, err := oai.Chat.Completions.New(ctx, p)
		require.NoError(t, err)
		require.Equal(t, "tool_calls", res.Choices[0].FinishReason)
		require.Equal(t, "lookup", res.Choices[0].Message.ToolCalls[0].Function.Name)
	})
	t.Run("only the demo providers", func(t *testing.T) {
		status, body := r.get(t, "/v1/models")
		require.Equal(t, http.StatusOK, status)
		ids := modelIDs(t, body)
		require.Equal(t, map[string]bool{"openai": true, "anthropic": true}, providersOf(ids))
		require.Contains(t, ids, "openai:gpt-4o-mini")
		require.Contains(t, ids, "anthropic:claude-haiku-4-5")

		_, err := oai.Chat.Completions.New(ctx, userChat("groq:llama-3.1-8b-instant", "hi"))
		var apiErr *openai.Error
		require.ErrorAs(t, err, &apiErr)
		require.Equal(t, http.StatusForbidden, apiErr.StatusCode)
	})
	t.Run("healthz", func(t *testing.T) {
		status, body := r.get(t, "/healthz")
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, "ok\n", body)
	})

	require.NoError(t, r.stop())
	logs := r.stderr.String()
	require.Contains(t, logs, "DEMO MODE")
	require.Contains(t, logs, "msg=\"llmgate request\"")
	require.NotContains(t, logs, string(demoKey))
}

// TestDemoModeStreamIsPaced checks that a streamed answer reaches the client
// word by word through the gateway, not all at once at the end.
func TestDemoModeStreamIsPaced(t *testing.T) {
	r := startServer(t, nil, nil)
	resp, err := r.client.Post(r.base+"/v1/messages", "application/json", strings.NewReader(
		`{"model":"claude-haiku-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"one two three four"}]}`))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var first, last time.Time
	deltas := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if sc.Text() == "event: content_block_delta" {
			deltas++
			last = time.Now()
			if first.IsZero() {
				first = last
			}
		}
	}
	require.NoError(t, sc.Err())
	require.Equal(t, len(demo.Words(demo.Reply("one two three four"))), deltas)
	require.GreaterOrEqual(t, last.Sub(first), time.Duration(deltas-2)*demo.DefaultStreamDelay)
}

// TestDemoModeGracefulShutdown stops the server during a stream: the stream
// still completes.
func TestDemoModeGracefulShutdown(t *testing.T) {
	r := startServer(t, nil, nil)
	resp, err := r.client.Post(r.base+"/v1/chat/completions", "application/json", strings.NewReader(
		`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"keep going"}]}`))
	require.NoError(t, err)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(line, "data: "))

	stopped := make(chan error, 1)
	go func() { stopped <- r.stop() }()
	rest, err := io.ReadAll(br)
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(string(rest), "data: [DONE]\n\n"), string(rest))
	require.NoError(t, <-stopped)
	require.Contains(t, r.stderr.String(), "llmgate shutting down")
}

// TestDemoBanner checks the banner and runs each curl command it prints.
func TestDemoBanner(t *testing.T) {
	r := startServer(t, nil, nil)
	banner := r.stdout.String()
	for _, want := range []string{
		"DEMO MODE on " + r.base,
		"NO REAL MODEL IS CALLED",
		demo.Marker,
		"export OPENAI_API_KEY=",
		"llmgate -config llmgate.yaml",
		`OpenAI(base_url="` + r.base + `/v1"`,
		`new OpenAI({baseURL: "` + r.base + `/v1"`,
	} {
		require.Contains(t, banner, want)
	}
	var curls []string
	for _, line := range strings.Split(banner, "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "curl ") {
			curls = append(curls, line)
		}
	}
	require.Len(t, curls, 4)
	for _, cmd := range curls {
		t.Run(cmd, func(t *testing.T) {
			req := curlRequest(t, cmd)
			resp, err := r.client.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			switch {
			case strings.HasSuffix(req.URL.Path, "/models"):
				require.Contains(t, string(body), `"id":"openai:gpt-4o-mini"`)
			case strings.Contains(cmd, `"stream":true`):
				require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
				require.True(t, strings.HasSuffix(string(body), "data: [DONE]\n\n"))
				require.Contains(t, string(body), `"content":"[llmgate "`)
			default:
				require.Contains(t, string(body), demo.Reply("Hello"))
			}
		})
	}
}

// curlRequest turns a curl command line of the banner (curl [-s|-sN] URL
// [-H 'header']... [-d 'body']) into the request it sends.
func curlRequest(t *testing.T, cmd string) *http.Request {
	t.Helper()
	args := shellWords(t, cmd)
	require.Equal(t, "curl", args[0])
	var url, body string
	var hasBody bool
	header := http.Header{}
	for i := 1; i < len(args); i++ {
		switch a := args[i]; a {
		case "-s", "-sN", "-N":
		case "-H":
			i++
			k, v, ok := strings.Cut(args[i], ":")
			require.True(t, ok, args[i])
			header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		case "-d":
			i++
			body, hasBody = args[i], true
		default:
			require.False(t, strings.HasPrefix(a, "-"), "unexpected curl option %q", a)
			url = a
		}
	}
	method := http.MethodGet
	if hasBody {
		method = http.MethodPost
	}
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header = header
	return req
}

// shellWords splits a command line as a POSIX shell would for the subset
// the banner uses: blanks separate words, single quotes quote literally.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for _, c := range s {
		switch {
		case quoted && c == '\'':
			quoted = false
		case quoted:
			cur.WriteRune(c)
		case c == '\'':
			quoted, inWord = true, true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			require.NotContains(t, `"\$`+"`", string(c), "unsupported shell syntax in %q", s)
			cur.WriteRune(c)
			inWord = true
		}
	}
	require.False(t, quoted, "unterminated quote in %q", s)
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// TestConfigMode runs the server from a configuration file whose custom
// provider is a demo upstream.
func TestConfigMode(t *testing.T) {
	up := httptest.NewServer(demo.New(demo.Options{StreamDelay: -1}))
	defer up.Close()
	path := filepath.Join(t.TempDir(), "llmgate.yaml")
	require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf(`
listen: "127.0.0.1:1"   # overridden by -listen
per_request_timeout: 20s
total_timeout: 40s
only_allow_configured_providers: true
log: {level: info, format: json}
providers:
  - id: lab
    base_url: %s/openai/v1/
    api_keys: [{value: "${env:LAB_KEY}", id: lab-primary}]
    models:
      - id: qwen3
        aliases: [qwen]
  - id: claude-lab
    format: anthropic
    base_url: %s/anthropic/v1/
    models: [{id: my-claude}]
`, up.URL, up.URL)), 0o600))
	r := startServer(t, []string{"-config", path}, map[string]string{"LAB_KEY": "lab-secret-key"})

	res, err := r.openAI().Chat.Completions.New(context.Background(), userChat("qwen", "hi lab"))
	require.NoError(t, err)
	require.Equal(t, demo.Reply("hi lab"), res.Choices[0].Message.Content)

	msg, err := r.anthropic().Messages.New(context.Background(), anthropic.MessageNewParams{
		Model: "claude-lab:my-claude", MaxTokens: 64,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi claude lab"))},
	})
	require.NoError(t, err)
	require.Equal(t, demo.Reply("hi claude lab"), msg.Content[0].Text)

	resp, body := r.post(t, "/v1/chat/completions", `{"model":"openai:gpt-4o","messages":[{"role":"user","content":"x"}]}`)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, body)
	require.Equal(t, "0", resp.Header.Get(gateway.HeaderAttempts))

	require.NoError(t, r.stop())
	logs := r.stderr.String()
	require.Contains(t, logs, `"msg":"llmgate request"`, "json log format")
	require.Contains(t, logs, `"served_by":"lab:qwen3"`)
	require.NotContains(t, logs, "lab-secret-key")
	require.Empty(t, r.stdout.String(), "no banner outside demo mode")
}

package gateway

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	anthropicsdk "github.com/anthropics/anthropic-sdk-go/v2"
	openaisdk "github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/internal/sse"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

func openAIStreamParams(model string) openaisdk.ChatCompletionNewParams {
	return openaisdk.ChatCompletionNewParams{Model: model, Messages: []openaisdk.ChatCompletionMessageParamUnion{openaisdk.UserMessage("Hi")}}
}

func anthropicStreamParams(model string) anthropicsdk.MessageNewParams {
	return anthropicsdk.MessageNewParams{Model: anthropicsdk.Model(model), MaxTokens: 64,
		Messages: []anthropicsdk.MessageParam{anthropicsdk.NewUserMessage(anthropicsdk.NewTextBlock("Hi"))}}
}

func collectOpenAI(t *testing.T, e *testEnv, model string) (string, error) {
	t.Helper()
	stream := e.openai().Chat.Completions.NewStreaming(context.Background(), openAIStreamParams(model))
	defer stream.Close()
	var acc openaisdk.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if len(acc.Choices) == 0 {
		return "", stream.Err()
	}
	return acc.Choices[0].Message.Content, stream.Err()
}

func collectAnthropic(t *testing.T, e *testEnv, model string) (string, error) {
	t.Helper()
	stream := e.anthropic().Messages.NewStreaming(context.Background(), anthropicStreamParams(model))
	defer stream.Close()
	var msg anthropicsdk.Message
	for stream.Next() {
		require.NoError(t, msg.Accumulate(stream.Current()))
	}
	var text string
	for _, b := range msg.Content {
		text += b.Text
	}
	return text, stream.Err()
}

func TestStreamFailsOverBeforeFirstContent(t *testing.T) {
	openAIOK := providertest.OpenAIChatStream("gpt-4o", []string{"good ", "answer"}, providertest.Usage{Input: 3, Output: 2}, true)
	anthropicOK := providertest.AnthropicStream("claude-sonnet-4-5", []string{"good ", "answer"}, providertest.Usage{Input: 3, Output: 2})
	dropAfterPreamble := func(s providertest.Step, n int) providertest.Step { s.DropAfter = n; return s }
	for _, tc := range []struct {
		name      string
		format    providers.Format
		first     providertest.Step
		wantError AttemptError
	}{
		{name: "openai dropped after role chunk", format: providers.FormatOpenAI, first: dropAfterPreamble(openAIOK, 1), wantError: AttemptStreamError},
		{name: "openai dropped before any event", format: providers.FormatOpenAI, first: dropAfterPreamble(openAIOK, -1), wantError: AttemptStreamError},
		{name: "openai error event first", format: providers.FormatOpenAI, first: providertest.StreamError(providers.FormatOpenAI, "gpt-4o", nil, 500, "upstream exploded"), wantError: AttemptStreamError},
		{name: "openai json instead of stream", format: providers.FormatOpenAI, first: providertest.OpenAIChat("gpt-4o", "not streamed", providertest.Usage{}), wantError: AttemptBadResponse},
		{name: "anthropic dropped after message_start and ping", format: providers.FormatAnthropic, first: dropAfterPreamble(anthropicOK, 3), wantError: AttemptStreamError},
		{name: "anthropic overloaded event", format: providers.FormatAnthropic, first: providertest.StreamError(providers.FormatAnthropic, "claude-sonnet-4-5", nil, 529, "Overloaded"), wantError: AttemptStreamError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envConfig{anthropicKeys: []ProviderKey{{Value: "sk-an-1"}, {Value: "sk-an-2"}}})
			var text string
			var err error
			if tc.format == providers.FormatOpenAI {
				e.oa.Enqueue(tc.first, openAIOK)
				text, err = collectOpenAI(t, e, "gpt-4o")
			} else {
				e.an.Enqueue(tc.first, anthropicOK)
				text, err = collectAnthropic(t, e, "claude-sonnet-4-5")
			}
			require.NoError(t, err)
			require.Equal(t, "good answer", text, "nothing of the failed attempt reached the client")
			ev := e.events.last(t)
			require.Len(t, ev.Attempts, 2)
			require.Equal(t, tc.wantError, ev.Attempts[0].Error)
			require.Equal(t, AttemptOK, ev.Attempts[1].Error)
			require.Nil(t, ev.Err, "%+v", ev.Attempts)
			require.True(t, ev.UsageReported)
			require.Equal(t, int64(2), ev.Usage.OutputTokens)
		})
	}
}

func TestStreamFailureAfterContentIsReportedInStream(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format providers.Format
		step   providertest.Step
	}{
		{name: "openai dropped", format: providers.FormatOpenAI,
			step: func() providertest.Step {
				s := providertest.OpenAIChatStream("gpt-4o", []string{"par", "tial", "never"}, providertest.Usage{}, true)
				s.DropAfter = 3
				return s
			}()},
		{name: "openai error event", format: providers.FormatOpenAI, step: providertest.StreamError(providers.FormatOpenAI, "gpt-4o", []string{"par", "tial"}, 500, "died")},
		{name: "anthropic dropped", format: providers.FormatAnthropic,
			step: func() providertest.Step {
				s := providertest.AnthropicStream("claude-sonnet-4-5", []string{"par", "tial", "never"}, providertest.Usage{})
				s.DropAfter = 5
				return s
			}()},
		{name: "anthropic error event", format: providers.FormatAnthropic, step: providertest.StreamError(providers.FormatAnthropic, "claude-sonnet-4-5", []string{"par", "tial"}, 529, "Overloaded")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envConfig{})
			var text string
			var err error
			if tc.format == providers.FormatOpenAI {
				e.oa.Enqueue(tc.step, providertest.OpenAIChatStream("gpt-4o", []string{"must not be used"}, providertest.Usage{}, true))
				text, err = collectOpenAI(t, e, "gpt-4o")
			} else {
				e.an.Enqueue(tc.step)
				text, err = collectAnthropic(t, e, "claude-sonnet-4-5")
			}
			require.Error(t, err, "the SDK sees the in-stream error")
			require.Contains(t, text, "par")
			require.NotContains(t, text, "must not be used", "no failover after commit")
			ev := e.events.last(t)
			require.Equal(t, 1, countSent(ev.Attempts))
			require.Equal(t, AttemptStreamFailed, ev.Attempts[0].Error)
			require.ErrorIs(t, ev.Err, ErrStreamFailed)
			require.Equal(t, http.StatusOK, ev.Status)
		})
	}
}

// TestStreamEventsAreFlushedAsTheyArrive checks that each upstream event
// reaches the client before the upstream sends the next one.
func TestStreamEventsAreFlushedAsTheyArrive(t *testing.T) {
	e := newEnv(t, envConfig{})
	step := providertest.OpenAIChatStream("gpt-4o", []string{"one", "two", "three"}, providertest.Usage{}, true)
	gates := make([]chan struct{}, len(step.Events))
	for i := 2; i < len(step.Events); i++ { // events 0 (role) and 1 ("one") flow; then each waits
		gates[i] = make(chan struct{})
		step.Events[i].Wait = gates[i]
	}
	e.oa.Enqueue(step)
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/chat/completions", strings.NewReader(chatBody("gpt-4o", `"stream":true`)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	require.Equal(t, "openai:gpt-4o", resp.Header.Get(HeaderModel))
	rd := sse.NewReader(resp.Body, 0)
	want := []string{"one", "two", "three"}
	seen := 0
	for seen < len(want) {
		ev, err := rd.Next()
		require.NoError(t, err)
		if strings.Contains(string(ev.Data), `"content":"`+want[seen]+`"`) {
			seen++
			if seen+1 < len(gates) && gates[seen+1] != nil {
				close(gates[seen+1]) // release the next event only now
			}
		}
	}
	for i := range gates {
		if gates[i] != nil {
			select {
			case <-gates[i]:
			default:
				close(gates[i])
			}
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
}

func TestClientDisconnectCancelsUpstream(t *testing.T) {
	canceled := make(chan struct{})
	var started atomic.Bool
	up := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Store(true)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		_, _ = w.Write([]byte("data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(canceled)
	}))
	gw, err := New(WithProvider(ProviderConfig{ID: "openai", BaseURL: up.URL + "/v1/"}))
	require.NoError(t, err)
	defer gw.Close()
	srv := newServer(t, gw)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(chatBody("gpt-4o", `"stream":true`)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	require.NoError(t, err)
	require.Contains(t, line, "hi")
	cancel()
	resp.Body.Close()
	select {
	case <-canceled:
	case <-time.After(5 * time.Second):
		t.Fatal("upstream request was not canceled after the client left")
	}
}

func TestStreamIdleTimeoutAfterCommit(t *testing.T) {
	e := newEnv(t, envConfig{opts: []Option{WithStreamIdleTimeout(200 * time.Millisecond)}})
	step := providertest.OpenAIChatStream("gpt-4o", []string{"a", "b"}, providertest.Usage{}, true)
	step.Events[2].Delay = time.Hour // stalls after the first content chunk
	e.oa.Enqueue(step)
	text, err := collectOpenAI(t, e, "gpt-4o")
	require.Error(t, err)
	require.Equal(t, "a", text)
	ev := e.events.last(t)
	require.Equal(t, AttemptStreamFailed, ev.Attempts[0].Error)
	require.Contains(t, ev.Attempts[0].Reason, "idle")
}

func TestLongStreamOutlivesTotalTimeout(t *testing.T) {
	e := newEnv(t, envConfig{opts: []Option{WithTimeouts(200*time.Millisecond, 300*time.Millisecond), WithStreamIdleTimeout(time.Second)}})
	deltas := make([]string, 8)
	for i := range deltas {
		deltas[i] = "x"
	}
	step := providertest.OpenAIChatStream("gpt-4o", deltas, providertest.Usage{}, true)
	for i := 2; i < len(step.Events); i++ {
		step.Events[i].Delay = 80 * time.Millisecond // ~0.6 s in all, longer than both timeouts
	}
	e.oa.Enqueue(step)
	text, err := collectOpenAI(t, e, "gpt-4o")
	require.NoError(t, err, "a committed, live stream is not cut by the attempt or total timeout")
	require.Equal(t, strings.Repeat("x", 8), text)
}

func TestEmptyStreamIsCommitted(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.oa.Enqueue(providertest.Step{Header: http.Header{"Content-Type": {"text/event-stream"}}, Events: []providertest.Event{
		{Data: `{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`},
		{Data: "[DONE]"},
	}})
	text, err := collectOpenAI(t, e, "gpt-4o")
	require.NoError(t, err)
	require.Empty(t, text)
	require.Equal(t, 1, e.oa.Count())
}

func TestStreamHoldbackBudget(t *testing.T) {
	// With no holdback the first event commits, so a drop right after the
	// role chunk can no longer fail over.
	e := newEnv(t, envConfig{opts: []Option{WithStreamHoldback(0, 0)}})
	s := providertest.OpenAIChatStream("gpt-4o", []string{"x"}, providertest.Usage{}, true)
	s.DropAfter = 1
	e.oa.Enqueue(s)
	_, err := collectOpenAI(t, e, "gpt-4o")
	require.Error(t, err)
	require.Equal(t, 1, e.oa.Count())
}

func TestLargeEventsAndLineEndings(t *testing.T) {
	big := strings.Repeat("abcdefghij", 30_000) // 300 KB of content in one event
	chunk := func(content string) string {
		return `{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"` + content + `"},"finish_reason":null}]}`
	}
	finish := `{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`
	for _, eol := range []string{"\n", "\r\n", "\r"} {
		t.Run(strings.ReplaceAll(strings.ReplaceAll(eol, "\r", "CR"), "\n", "LF"), func(t *testing.T) {
			e := newEnv(t, envConfig{})
			raw := "data: " + chunk("start ") + eol + eol + "data: " + chunk(big) + eol + eol + "data: " + finish + eol + eol + "data: [DONE]" + eol + eol
			e.oa.Enqueue(providertest.Step{Header: http.Header{"Content-Type": {"text/event-stream"}}, Events: []providertest.Event{{Raw: raw}}})
			text, err := collectOpenAI(t, e, "gpt-4o")
			require.NoError(t, err)
			require.Equal(t, "start "+big, text)
		})
	}
	t.Run("over the configured cap fails over", func(t *testing.T) {
		e := newEnv(t, envConfig{opts: []Option{WithMaxEventBytes(64 << 10)}})
		raw := "data: " + chunk(big) + "\n\n"
		e.oa.Enqueue(providertest.Step{Header: http.Header{"Content-Type": {"text/event-stream"}}, Events: []providertest.Event{{Raw: raw}}},
			providertest.OpenAIChatStream("gpt-4o", []string{"small"}, providertest.Usage{}, true))
		text, err := collectOpenAI(t, e, "gpt-4o")
		require.NoError(t, err)
		require.Equal(t, "small", text)
		ev := e.events.last(t)
		require.Equal(t, AttemptBadResponse, ev.Attempts[0].Error)
		require.Contains(t, ev.Attempts[0].Reason, "too large")
	})
}

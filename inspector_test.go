package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
	"github.com/llmgate/gateway/redaction"
)

// captureLog is an InspectorSink that keeps every capture.
type captureLog struct {
	mu   sync.Mutex
	caps []*Capture
}

func (l *captureLog) Capture(_ context.Context, c *Capture) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.caps = append(l.caps, c)
}

// find waits for the capture of request id.
func (l *captureLog) find(t *testing.T, id string) *Capture {
	t.Helper()
	return waitFor(t, &l.mu, &l.caps, func(c *Capture) bool { return c.RequestID == id }, "no capture for request "+id)
}

func (l *captureLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.caps)
}

func inspectorEnv(t *testing.T, maxBytes int, redact bool) (*testEnv, *captureLog) {
	t.Helper()
	log := &captureLog{}
	opts := []Option{WithInspector(log, InspectorOptions{MaxBytes: maxBytes})}
	if redact {
		opts = append(opts, WithRedaction([]redaction.Rule{{Preset: redaction.PresetEmail}}, redaction.AcrossChunks))
	}
	return newEnv(t, envConfig{opts: opts}), log
}

func TestWithInspectorValidatesMaxBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		max  int
		ok   bool
	}{
		{"default", 0, true},
		{"one", 1, true},
		{"largest", MaxInspectorMaxBytes, true},
		{"negative", -1, false},
		{"too large", MaxInspectorMaxBytes + 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(WithInspector(&captureLog{}, InspectorOptions{MaxBytes: tc.max}))
			if tc.ok {
				require.NoError(t, err)
				return
			}
			oes := OptionErrors(err)
			require.Len(t, oes, 1, "%v", err)
			require.Equal(t, "WithInspector", oes[0].Option)
			require.Equal(t, "MaxBytes", oes[0].Field)
		})
	}
}

func TestInspectorCapturesJSONAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		redact bool
	}{
		{"plain", false},
		{"redacted", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, log := inspectorEnv(t, 0, tc.redact)
			e.oa.Enqueue(providertest.OpenAIChat("gpt-4o", "write to bob@example.com", providertest.Usage{Input: 1, Output: 1}))
			body := `{"model":"gpt-4o","messages":[{"role":"user","content":"I am jane@example.com"}]}`
			resp, out := e.post(t, "/v1/chat/completions", body)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
			c := log.find(t, resp.Header.Get(HeaderRequestID))
			require.Equal(t, string(out), string(c.Response), "the bytes the client received")
			require.False(t, c.Stream)
			require.False(t, c.RequestTruncated)
			require.False(t, c.ResponseTruncated)
			if tc.redact {
				require.NotContains(t, string(c.Request), "example.com")
				require.Contains(t, string(c.Request), "I am [EMAIL]")
				require.Contains(t, string(c.Response), "write to [EMAIL]")
				require.NotContains(t, string(c.Response), "bob@")
			} else {
				require.Equal(t, body, string(c.Request))
			}
		})
	}
}

func TestInspectorCapturesStreams(t *testing.T) {
	usage := providertest.Usage{Input: 3, Output: 2}
	for _, tc := range []struct {
		name, path, body string
		step             providertest.Step
		anthropic        bool
	}{
		{name: "openai", path: "/v1/chat/completions", body: chatBody("gpt-4o", `"stream":true`),
			step: providertest.OpenAIChatStream("gpt-4o", []string{"mail bob@exa", "mple.com now"}, usage, true)},
		{name: "anthropic", path: "/v1/messages", body: messagesBody("claude-sonnet-4-5", `"stream":true`), anthropic: true,
			step: providertest.AnthropicStream("claude-sonnet-4-5", []string{"mail bob@exa", "mple.com now"}, usage)},
		{name: "translated", path: "/v1/messages", body: messagesBody("gpt-4o", `"stream":true`),
			step: providertest.OpenAIChatStream("gpt-4o", []string{"mail bob@exa", "mple.com now"}, usage, true)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, log := inspectorEnv(t, 0, true)
			if tc.anthropic {
				e.an.Enqueue(tc.step)
			} else {
				e.oa.Enqueue(tc.step)
			}
			resp, out := e.post(t, tc.path, tc.body)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
			c := log.find(t, resp.Header.Get(HeaderRequestID))
			require.True(t, c.Stream)
			require.Equal(t, string(out), string(c.Response), "every event the client received, closing events included")
			require.Contains(t, string(c.Response), "[EMAIL]")
			require.NotContains(t, string(c.Response), "bob@")
			require.Equal(t, tc.body, string(c.Request))
		})
	}
}

func TestInspectorTruncatesAtMaxBytes(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "json", true: "stream"}[stream], func(t *testing.T) {
			e, log := inspectorEnv(t, 20, false)
			body := chatBody("gpt-4o")
			if stream {
				body = chatBody("gpt-4o", `"stream":true`)
				e.oa.Enqueue(providertest.OpenAIChatStream("gpt-4o", []string{"a", "b", "c"}, providertest.Usage{Input: 1, Output: 1}, true))
			} else {
				e.oa.Enqueue(providertest.OpenAIChat("gpt-4o", "a long enough answer", providertest.Usage{Input: 1, Output: 1}))
			}
			resp, out := e.post(t, "/v1/chat/completions", body)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
			c := log.find(t, resp.Header.Get(HeaderRequestID))
			require.Equal(t, body[:20], string(c.Request))
			require.True(t, c.RequestTruncated)
			require.Equal(t, string(out[:20]), string(c.Response))
			require.True(t, c.ResponseTruncated)
			require.Equal(t, stream, c.Stream)
		})
	}
}

func TestInspectorKeepsOnlyWhatTheClientReceived(t *testing.T) {
	t.Run("failed over attempt", func(t *testing.T) {
		e, log := inspectorEnv(t, 0, false)
		e.oa.Enqueue(providertest.StreamError(providers.FormatOpenAI, "gpt-4o", nil, 500, "first attempt"))
		e.oa.Enqueue(providertest.OpenAIChatStream("gpt-4o", []string{"second"}, providertest.Usage{Input: 1, Output: 1}, true))
		resp, out := e.post(t, "/v1/chat/completions", chatBody("gpt-4o", `"stream":true`))
		require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
		require.Len(t, e.oa.Requests(), 2, "the first attempt failed over")
		c := log.find(t, resp.Header.Get(HeaderRequestID))
		require.Equal(t, string(out), string(c.Response))
		require.NotContains(t, string(c.Response), "first attempt")
	})
	t.Run("error answer", func(t *testing.T) {
		e, log := inspectorEnv(t, 0, false)
		body := `{"model":`
		resp, out := e.post(t, "/v1/chat/completions", body)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, string(out))
		c := log.find(t, resp.Header.Get(HeaderRequestID))
		require.Equal(t, string(out), string(c.Response))
		require.Equal(t, body, string(c.Request))
		require.False(t, c.Stream)
	})
	t.Run("unredactable request", func(t *testing.T) {
		e, log := inspectorEnv(t, 0, true)
		resp, out := e.post(t, "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"content":"jane@example.com"`)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, string(out))
		c := log.find(t, resp.Header.Get(HeaderRequestID))
		require.Nil(t, c.Request, "an unredacted body is never captured")
		require.Equal(t, string(out), string(c.Response))
	})
}

func TestInspectorIsOffUnlessConfigured(t *testing.T) {
	log := &captureLog{}
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"not configured", nil},
		{"turned off", []Option{WithInspector(log, InspectorOptions{}), WithInspector(nil, InspectorOptions{})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envConfig{opts: tc.opts})
			e.oa.Enqueue(providertest.OpenAIChat("gpt-4o", "ok", providertest.Usage{Input: 1, Output: 1}))
			resp, out := e.post(t, "/v1/chat/completions", chatBody("gpt-4o"))
			require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
			c := e.gw.newCall(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader("{}")))
			require.Nil(t, c.insp, "no capture state on the request path")
			require.Zero(t, log.len())
		})
	}
}

func TestCaptureJSON(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Capture
		want string
	}{
		{"empty", Capture{RequestID: "req-1"}, `{"request_id":"req-1"}`},
		{"full", Capture{RequestID: "req-2", Stream: true, Request: []byte(`{"x":"é"}`), RequestTruncated: true,
			Response: []byte("data: {}\n\n\xe2\x82"), ResponseTruncated: true},
			`{"request_id":"req-2","stream":true,"request":"{\"x\":\"é\"}","request_truncated":true,"response":"data: {}\n\n\ufffd\ufffd","response_truncated":true}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(&tc.c)
			require.NoError(t, err)
			require.JSONEq(t, tc.want, string(b))
		})
	}
}

package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
	"github.com/llmgate/gateway/redaction"
)

// TestSecretsNeverLeak drives failures whose upstream errors quote the keys
// and checks that no key appears in responses, events, logs or errors.
func TestSecretsNeverLeak(t *testing.T) {
	const k1, k2, clientKey = "sk-proj-SECRET-ONE-1234567890", "sk-proj-SECRET-TWO-0987654321", "sk-client-SECRET-5555"
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := newEnv(t, envConfig{
		openAIKeys: []ProviderKey{{Value: k1}, {Value: k2}},
		// With error detail, so the upstream reasons (redacted) reach the body.
		opts: []Option{WithEventSink(SlogSink{Logger: logger, Level: slog.LevelInfo}), WithLogger(logger), WithErrorDetail(true)},
	})
	e.oa.Enqueue(
		providertest.Error(providers.FormatOpenAI, 401, "Incorrect API key provided: "+k1),
		providertest.Error(providers.FormatOpenAI, 500, "internal error for key "+k2),
	)
	resp, body := e.post(t, "/v1/chat/completions", chatBody("gpt-4o"), "Authorization", "Bearer "+clientKey)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)

	// A pass-through client key quoted back by the upstream.
	e2 := newEnv(t, envConfig{noKeys: true, opts: []Option{WithEventSink(SlogSink{Logger: logger}), WithErrorDetail(true)}})
	e2.oa.Enqueue(providertest.Error(providers.FormatOpenAI, 401, "Incorrect API key provided: "+clientKey))
	_, body2 := e2.post(t, "/v1/chat/completions", chatBody("gpt-4o"), "Authorization", "Bearer "+clientKey)

	ev := e.events.last(t)
	evJSON, err := json.Marshal(ev)
	require.NoError(t, err)
	var headers strings.Builder
	for k, v := range resp.Header {
		fmt.Fprintln(&headers, k, v)
	}
	gw := fmt.Sprintf("%+v %#v %v", e.gw.routing.Load().upstreams["openai"].keys[0].key, e.gw.routing.Load().upstreams["openai"].keys[0].key, ev.Err)
	for name, text := range map[string]string{
		"response body": string(body), "pass-through body": string(body2), "headers": headers.String(),
		"event": string(evJSON), "logs": logs.String(), "error": ev.Err.Error(), "formatted key": gw,
	} {
		for _, secret := range []string{k1, k2, clientKey} {
			require.NotContains(t, text, secret, "%s leaks a secret", name)
		}
	}
	require.Contains(t, logs.String(), "llmgate request")
	require.Contains(t, string(body), "[redacted]")
}

func TestSlogSink(t *testing.T) {
	var buf bytes.Buffer
	sink := SlogSink{Logger: slog.New(slog.NewTextHandler(&buf, nil))}
	e := newEnv(t, envConfig{opts: []Option{WithEventSink(sink)}})
	e.oa.Enqueue(providertest.Error(providers.FormatOpenAI, 500, "x"))
	resp, _ := e.post(t, "/v1/chat/completions", chatBody("gpt-4o"))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	out := buf.String()
	for _, want := range []string{"llmgate request", "served_by=openai:gpt-4o", "status=200", "attempts=2", "attempt.1.status=500", "usage.input_tokens="} {
		require.Contains(t, out, want)
	}

	require.NotContains(t, out, "redactions")

	// Disabled levels cost nothing and log nothing.
	buf.Reset()
	quiet := SlogSink{Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError}))}
	quiet.HandleEvent(t.Context(), &Event{RequestID: "r"})
	require.Empty(t, buf.String())
}

func TestEventForEveryRequest(t *testing.T) {
	e := newEnv(t, envConfig{})
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/v1/chat/completions", chatBody("gpt-4o"), 200},
		{"POST", "/v1/chat/completions", "{", 400},
		{"GET", "/nope", "", 404},
		{"GET", "/v1/models", "", 200},
	} {
		req, _ := http.NewRequest(tc.method, e.srv.URL+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		ev := e.events.find(t, resp.Header.Get(HeaderRequestID))
		require.Equal(t, tc.status, ev.Status, tc.path)
		require.Equal(t, tc.path, ev.Path)
		require.Equal(t, resp.Header.Get(HeaderRequestID), ev.RequestID)
		require.GreaterOrEqual(t, ev.Latency, ev.GatewayLatency)
	}
}

func TestSlogSinkLogsRedactionCounts(t *testing.T) {
	t.Run("attributes", func(t *testing.T) {
		var buf bytes.Buffer
		sink := SlogSink{Logger: slog.New(slog.NewJSONHandler(&buf, nil))}
		sink.HandleEvent(t.Context(), &Event{RequestID: "r", Status: 200, Redactions: map[string]int{"phone": 1, "email": 2, "ticket": 3}})
		var rec struct {
			Redactions map[string]int `json:"redactions"`
		}
		require.NoError(t, json.Unmarshal(buf.Bytes(), &rec), buf.String())
		require.Equal(t, map[string]int{"email": 2, "phone": 1, "ticket": 3}, rec.Redactions)
		require.Contains(t, buf.String(), `"redactions":{"email":2,"phone":1,"ticket":3}`, "sorted by rule name")
	})
	t.Run("through the gateway", func(t *testing.T) {
		var buf bytes.Buffer
		e := newEnv(t, envConfig{opts: []Option{
			WithEventSink(SlogSink{Logger: slog.New(slog.NewTextHandler(&buf, nil))}),
			WithRedaction([]redaction.Rule{{Preset: redaction.PresetEmail}, {Name: "ticket", From: `TICKET-\d+`, To: "[TICKET]"}}, redaction.AcrossChunks),
		}})
		e.oa.Enqueue(providertest.OpenAIChat("gpt-4o", "write to bob@example.com", providertest.Usage{Input: 1, Output: 1}))
		resp, out := e.post(t, "/v1/chat/completions",
			`{"model":"gpt-4o","messages":[{"role":"user","content":"I am jane@example.org, see TICKET-7 and TICKET-8"}]}`)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
		log := buf.String()
		require.Contains(t, log, "redactions.email=2 redactions.ticket=2")
		for _, secret := range []string{"example.org", "example.com", "TICKET-7", "jane", "bob"} {
			require.NotContains(t, log, secret)
		}
	})
}

package demo_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/internal/demo"
)

// start serves a demo upstream with no streaming pause.
func start(t *testing.T) *httptest.Server {
	t.Helper()
	return startWith(t, demo.Options{StreamDelay: -1})
}

func startWith(t *testing.T, opts demo.Options) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(demo.New(opts))
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, srv *httptest.Server, path, body string) (*http.Response, []byte) {
	t.Helper()
	resp, err := srv.Client().Post(srv.URL+path, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

func TestReply(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "plain", in: "Hello", want: demo.Marker + " You said: Hello"},
		{name: "trimmed", in: "  Hi \n", want: demo.Marker + " You said: Hi"},
		{name: "empty", in: "", want: demo.Marker + " You said nothing."},
		{name: "exactly 200", in: strings.Repeat("é", 200), want: demo.Marker + " You said: " + strings.Repeat("é", 200)},
		{name: "truncated", in: strings.Repeat("é", 201), want: demo.Marker + " You said: " + strings.Repeat("é", 200) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, demo.Reply(tt.in))
		})
	}
	require.Contains(t, demo.Marker, "no real model was called")
}

func TestWords(t *testing.T) {
	text := demo.Reply("one two  three")
	words := demo.Words(text)
	require.Greater(t, len(words), 5)
	require.Equal(t, text, strings.Join(words, ""))
}

func TestEmbeddingDeterministic(t *testing.T) {
	a := demo.Embedding("m", "hello", 32)
	require.Len(t, a, 32)
	require.Equal(t, a, demo.Embedding("m", "hello", 32))
	require.NotEqual(t, a, demo.Embedding("m", "hellO", 32))
	require.NotEqual(t, a, demo.Embedding("n", "hello", 32))
	var norm float64
	for _, x := range a {
		norm += float64(x) * float64(x)
	}
	require.InDelta(t, 1, norm, 1e-5)
}

func TestRoutes(t *testing.T) {
	srv := start(t)
	tests := []struct {
		name, method, path string
		status             int
		anthropic          bool
	}{
		{name: "openai unknown path", method: http.MethodPost, path: "/openai/v1/completions", status: 404},
		{name: "root", method: http.MethodGet, path: "/", status: 404},
		{name: "anthropic unknown path", method: http.MethodPost, path: "/anthropic/v1/complete", status: 404, anthropic: true},
		{name: "openai wrong method", method: http.MethodGet, path: "/openai/v1/chat/completions", status: 405},
		{name: "anthropic wrong method", method: http.MethodGet, path: "/anthropic/v1/messages", status: 405, anthropic: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			require.NoError(t, err)
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, tt.status, resp.StatusCode)
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var body map[string]any
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			if tt.anthropic {
				require.Equal(t, "error", body["type"])
				require.NotEmpty(t, body["error"].(map[string]any)["type"])
			} else {
				require.NotEmpty(t, body["error"].(map[string]any)["message"])
			}
		})
	}
}

func TestBodyTooLarge(t *testing.T) {
	srv := start(t)
	big := `{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("x", 9<<20) + `"}]}`
	resp, body := post(t, srv, "/openai/v1/chat/completions", big)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	require.Contains(t, string(body), `"error"`)
}

// TestStreamDelay checks that words are paced and that a client going away
// ends the stream.
func TestStreamDelay(t *testing.T) {
	const delay = 20 * time.Millisecond
	srv := startWith(t, demo.Options{StreamDelay: delay})
	begin := time.Now()
	resp, body := post(t, srv, "/openai/v1/chat/completions", `{"model":"m","stream":true,"messages":[{"role":"user","content":"a b c"}]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	words := len(demo.Words(demo.Reply("a b c")))
	require.GreaterOrEqual(t, time.Since(begin), time.Duration(words-1)*delay)
	require.True(t, strings.HasSuffix(string(body), "data: [DONE]\n\n"))

	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/anthropic/v1/messages",
		strings.NewReader(`{"model":"m","max_tokens":9,"stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	require.NoError(t, err)
	resp2, err := srv.Client().Do(req)
	require.NoError(t, err)
	buf := make([]byte, 64)
	_, err = resp2.Body.Read(buf)
	require.NoError(t, err)
	cancel()
	_, _ = io.Copy(io.Discard, resp2.Body)
	resp2.Body.Close()
}

func TestDefaultDelay(t *testing.T) {
	require.Equal(t, 15*time.Millisecond, demo.DefaultStreamDelay)
}

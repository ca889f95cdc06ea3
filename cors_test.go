package gateway

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCORS(t *testing.T) {
	e := newEnv(t, envConfig{opts: []Option{WithCORS("https://app.example")}})
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, e.srv.URL+"/v1/chat/completions", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type, x-stainless-os")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	resp := preflight("https://app.example")
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Equal(t, "https://app.example", resp.Header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "POST")
	require.Equal(t, "authorization, content-type, x-stainless-os", resp.Header.Get("Access-Control-Allow-Headers"))
	require.NotEmpty(t, resp.Header.Get(HeaderRequestID))

	resp = preflight("https://evil.example")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))

	// The request itself carries the CORS headers the browser needs.
	resp, body := e.post(t, "/v1/chat/completions", chatBody("gpt-4o"), "Origin", "https://app.example")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, "https://app.example", resp.Header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, resp.Header.Get("Access-Control-Expose-Headers"), HeaderModel)
	resp, body = e.post(t, "/v1/chat/completions", chatBody("gpt-4o"), "Origin", "https://evil.example")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Equal(t, "origin_not_allowed", decodeOpenAIError(t, body).Error.Code)
	// Same-origin requests are always allowed.
	resp, _ = e.post(t, "/v1/chat/completions", chatBody("gpt-4o"), "Origin", "http://"+strings.TrimPrefix(e.srv.URL, "http://"))
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// Without WithCORS, OPTIONS is a method the API does not have.
	plain := newEnv(t, envConfig{})
	req, _ := http.NewRequest(http.MethodOptions, plain.srv.URL+"/v1/chat/completions", nil)
	req.Header.Set("Origin", "https://app.example")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	_, err = New(WithCORS("app.example/path"))
	require.ErrorContains(t, err, "WithCORS")
}

func TestAllowedHosts(t *testing.T) {
	e := newEnv(t, envConfig{opts: []Option{WithAllowedHosts("localhost", "127.0.0.1", "::1")}})
	resp, _ := e.post(t, "/v1/chat/completions", chatBody("gpt-4o"))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/messages", strings.NewReader(messagesBody("claude-sonnet-4-5")))
	req.Header.Set("Content-Type", "application/json")
	req.Host = "rebound.evil.example:8080"
	r, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b := make([]byte, 4096)
	n, _ := r.Body.Read(b)
	r.Body.Close()
	require.Equal(t, http.StatusForbidden, r.StatusCode)
	require.Equal(t, "host_not_allowed", decodeAnthropicError(t, b[:n]).Error.Code)
	require.Zero(t, e.an.Count())

	_, err = New(WithAllowedHosts("http://x"))
	require.ErrorContains(t, err, "WithAllowedHosts")
}

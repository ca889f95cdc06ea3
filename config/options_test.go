package config

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/internal/demo"
)

// recorder is an OpenAI-compatible upstream (the demo upstream) that
// records the last request it received.
type recorder struct {
	mu   sync.Mutex
	last *http.Request
	srv  *httptest.Server
}

func newRecorder(t *testing.T, respond http.Handler) *recorder {
	t.Helper()
	if respond == nil {
		up := demo.New(demo.Options{StreamDelay: -1})
		respond = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.URL.Path = "/openai" + r.URL.Path
			up.ServeHTTP(w, r)
		})
	}
	rec := &recorder{}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.last = r.Clone(context.Background())
		rec.mu.Unlock()
		respond.ServeHTTP(w, r)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) request() *http.Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.last
}

// gatewayFor builds a gateway from a configuration; %s in doc is the
// upstream's URL.
func gatewayFor(t *testing.T, doc string, env map[string]string) *gateway.Gateway {
	t.Helper()
	f, err := Parse([]byte(doc), mapEnv(env))
	require.NoError(t, err)
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	gw, err := gateway.New(append(f.Options(), gateway.WithHTTPClient(hc), gateway.WithLogger(slog.New(slog.DiscardHandler)))...)
	require.NoError(t, f.Explain(err))
	t.Cleanup(func() { _ = gw.Close() })
	return gw
}

func serve(gw http.Handler, method, path, body string, header ...string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	gw.ServeHTTP(rec, req)
	return rec
}

const chatBody = `{"model":"lab:qwen","messages":[{"role":"user","content":"hi lab"}]}`

// TestConfigReachesUpstream sends a request through a gateway built from a
// configuration and checks what the upstream received: the key in the
// configured auth header, extra headers and query parameters.
func TestConfigReachesUpstream(t *testing.T) {
	up := newRecorder(t, nil)
	f, err := Parse([]byte(fullConfig), mapEnv(fullEnv(up.srv.URL+"/v1/")))
	require.NoError(t, err)
	f.AllowedHosts = nil
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	gw, err := gateway.New(append(f.Options(), gateway.WithHTTPClient(hc), gateway.WithLogger(slog.New(slog.DiscardHandler)))...)
	require.NoError(t, err)
	defer gw.Close()

	rec := serve(gw, http.MethodPost, "/v1/chat/completions", chatBody)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), demo.Reply("hi lab"))
	require.Equal(t, "lab:qwen3", rec.Header().Get(gateway.HeaderModel))

	got := up.request()
	require.NotNil(t, got)
	require.Equal(t, "/v1/chat/completions", got.URL.Path)
	require.Equal(t, "lab-key-123", got.Header.Get("Api-Key"))
	require.Empty(t, got.Header.Get("Authorization"))
	require.Equal(t, "v-eu", got.Header.Get("X-Custom"))
	require.Equal(t, "2024-10-21", got.URL.Query().Get("api-version"))
}

// TestOptionsTakeEffect checks, through the gateway's behaviour, that the
// fields reach their options.
func TestOptionsTakeEffect(t *testing.T) {
	up := newRecorder(t, nil)
	lab := fmt.Sprintf(`
providers:
  - id: lab
    base_url: %s/v1/
    models: [{id: qwen3, aliases: [qwen]}]
`, up.srv.URL)

	t.Run("max_models", func(t *testing.T) {
		gw := gatewayFor(t, "max_models: 1\n"+lab, nil)
		rec := serve(gw, http.MethodPost, "/v1/chat/completions", `{"model":"lab:qwen","models":["lab:qwen3"],"messages":[]}`)
		require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
		require.Contains(t, rec.Body.String(), "invalid_request")
	})
	t.Run("max_request_bytes", func(t *testing.T) {
		gw := gatewayFor(t, "max_request_bytes: 16\n"+lab, nil)
		rec := serve(gw, http.MethodPost, "/v1/chat/completions", chatBody)
		require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code, rec.Body.String())
	})
	t.Run("allowed_hosts", func(t *testing.T) {
		gw := gatewayFor(t, "allowed_hosts: [gw.internal]\n"+lab, nil)
		rec := serve(gw, http.MethodGet, "/v1/models", "", "Host", "evil.example")
		require.Equal(t, http.StatusForbidden, rec.Code)
		require.Contains(t, rec.Body.String(), `"code":"host_not_allowed"`)
		rec = serve(gw, http.MethodGet, "/v1/models", "", "Host", "GW.internal:8080")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	})
	t.Run("allowed_hosts star", func(t *testing.T) {
		gw := gatewayFor(t, "allowed_hosts: ['*']\n"+lab, nil)
		rec := serve(gw, http.MethodGet, "/v1/models", "", "Host", "evil.example")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	})
	t.Run("cors_origins", func(t *testing.T) {
		gw := gatewayFor(t, "cors_origins: ['https://app.example.com']\n"+lab, nil)
		rec := serve(gw, http.MethodOptions, "/v1/chat/completions", "",
			"Origin", "https://app.example.com", "Access-Control-Request-Method", "POST")
		require.Equal(t, http.StatusNoContent, rec.Code)
		require.Equal(t, "https://app.example.com", rec.Header().Get("Access-Control-Allow-Origin"))
	})
	t.Run("redaction", func(t *testing.T) {
		gw := gatewayFor(t, "redaction:\n  mode: per_chunk\n  rules:\n    - preset: email\n    - {name: ticket, from: 'TICKET-(\\d+)', to: 'ticket $1'}\n"+lab, nil)
		rec := serve(gw, http.MethodPost, "/v1/chat/completions", `{"model":"lab:qwen","messages":[{"role":"user","content":"hi bob@example.com TICKET-9"}]}`)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		require.NotContains(t, rec.Body.String(), "bob@")
		require.Contains(t, rec.Body.String(), "[EMAIL] ticket 9")
	})
	t.Run("pass_through off and on a provider", func(t *testing.T) {
		gw := gatewayFor(t, lab+"    pass_through: true\n", nil)
		rec := serve(gw, http.MethodPost, "/v1/chat/completions", chatBody, "Authorization", "Bearer client-key")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		require.Equal(t, "Bearer client-key", up.request().Header.Get("Authorization"))

		gw = gatewayFor(t, "pass_through: \"off\"\n"+lab+"    pass_through: true\n", nil)
		require.Equal(t, gateway.PassThroughOff, gw.PassThrough())
		rec = serve(gw, http.MethodPost, "/v1/chat/completions", chatBody, "Authorization", "Bearer client-key")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		require.Empty(t, up.request().Header.Get("Authorization"))
	})
}

// TestOptionsFailures checks the options that shape failures.
func TestOptionsFailures(t *testing.T) {
	refuse := newRecorder(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"error":{"message":"no","type":"server_error"}}`)
	}))
	lab := fmt.Sprintf(`
providers:
  - id: lab
    base_url: %s/v1/
    api_keys: [{value: k1, id: alpha-key}, {value: k2}, {value: k3}]
    models: [{id: qwen3, aliases: [qwen]}]
`, refuse.srv.URL)

	t.Run("max_attempts and error_detail", func(t *testing.T) {
		gw := gatewayFor(t, "max_attempts: 2\nerror_detail: true\n"+lab, nil)
		rec := serve(gw, http.MethodPost, "/v1/chat/completions", chatBody)
		require.Equal(t, "2", rec.Header().Get(gateway.HeaderAttempts), rec.Body.String())
		require.Contains(t, rec.Body.String(), "alpha-key", "key IDs in the error body")
	})
	t.Run("fail_fast_statuses", func(t *testing.T) {
		gw := gatewayFor(t, "fail_fast_statuses: [500]\n"+lab, nil)
		rec := serve(gw, http.MethodPost, "/v1/chat/completions", chatBody)
		require.Equal(t, http.StatusInternalServerError, rec.Code, rec.Body.String())
		require.Equal(t, "1", rec.Header().Get(gateway.HeaderAttempts))
	})
	t.Run("max_response_bytes", func(t *testing.T) {
		up := newRecorder(t, nil)
		gw := gatewayFor(t, fmt.Sprintf("max_response_bytes: 10\nproviders: [{id: lab, base_url: '%s/v1/', models: [{id: qwen}]}]", up.srv.URL), nil)
		rec := serve(gw, http.MethodPost, "/v1/chat/completions", chatBody)
		require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
	})
}

package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/config"
	"github.com/llmgate/gateway/keys"
)

// startWithMetrics starts the server with hooks h and returns it with the
// address of its metrics listener.
func startWithMetrics(t *testing.T, args []string, env map[string]string, h hooks) (*running, string) {
	t.Helper()
	addr := make(chan string, 1)
	h.metricsReady = func(a string) { addr <- a }
	r := startServerHooks(t, args, env, h)
	select {
	case a := <-addr:
		return r, "http://" + a
	default:
		t.Fatal("no metrics listener")
		return nil, ""
	}
}

// getURL GETs url with the server's client.
func (r *running) getURL(t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	return do(t, r.client, req)
}

// labConfig writes a configuration with a lab provider at upstream, plus
// extra top-level lines, and returns its path.
func labConfig(t *testing.T, upstream, extra string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "llmgate.yaml")
	writeFile(t, path, fmt.Sprintf("%s\nproviders:\n  - id: lab\n    base_url: %s/v1/\n    api_keys: [{id: lab-key, value: sk-upstream}]\n    models: [{id: qwen3}]\n",
		extra, upstream))
	return path
}

const qwenChat = `{"model":"lab:qwen3","messages":[{"role":"user","content":"Hi"}]}`

func TestMetricsListener(t *testing.T) {
	up := newDemoUpstream(t)
	path := labConfig(t, up.URL, "metrics: {listen: '127.0.0.1:0'}")
	r, metrics := startWithMetrics(t, []string{"-config", path}, nil, hooks{})
	resp, body := r.post(t, "/v1/chat/completions", qwenChat)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)

	status, body := r.getURL(t, metrics+"/metrics")
	require.Equal(t, http.StatusOK, status)
	// The request's event reached the exporter before its response ended.
	require.Contains(t, body, `llmgate_requests_total{code="",status="200"} 1`)
	require.Contains(t, body, `llmgate_attempts_total{model="qwen3",provider="lab",result="ok"} 1`)
	require.Contains(t, body, `llmgate_provider_keys{provider="lab"} 1`)
	require.Contains(t, body, `llmgate_inflight_streams 0`)
	require.Contains(t, body, "go_goroutines ")
	require.Contains(t, body, "process_start_time_seconds ")

	for _, tc := range []struct {
		name, url string
		status    int
		body      string
	}{
		{"healthz", metrics + "/healthz", http.StatusOK, "ok\n"},
		{"readyz", metrics + "/readyz", http.StatusOK, "ready\n"},
		{"other paths", metrics + "/v1/models", http.StatusNotFound, "404 page not found\n"},
		{"readyz on the API listener", r.base + "/readyz", http.StatusOK, "ready\n"},
		{"no metrics on the API listener", r.base + "/metrics", http.StatusNotFound, `"code":"not_found"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := r.getURL(t, tc.url)
			require.Equal(t, tc.status, status, body)
			require.Contains(t, body, tc.body)
		})
	}
	require.Contains(t, lastLine(r.stderr.String(), "llmgate listening"), "metrics=127.0.0.1:")
}

// TestMetricsListenFlag serves the metrics of environment mode, which has
// no file, on -metrics-listen; a reload keeps the exporter.
func TestMetricsListenFlag(t *testing.T) {
	up := newDemoUpstream(t)
	path := labConfig(t, up.URL, "")
	r, metrics := startWithMetrics(t, []string{"-config", path, "-metrics-listen", "127.0.0.1:0"}, nil, hooks{})
	resp, body := r.post(t, "/v1/chat/completions", qwenChat)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.NoError(t, r.srv.reload())
	resp, body = r.post(t, "/v1/chat/completions", qwenChat)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	_, body = r.getURL(t, metrics+"/metrics")
	require.Contains(t, body, `llmgate_requests_total{code="",status="200"} 2`)
}

// TestMetricsOnAdminListener serves the metrics and probes on the admin
// listener, without the admin token, when metrics.listen is not set.
func TestMetricsOnAdminListener(t *testing.T) {
	up := newDemoUpstream(t)
	path := keysConfig(t, t.TempDir(), up.URL, adminLines+"\ngateway_keys: optional")
	r := startServer(t, []string{"-config", path}, keysEnv())
	resp, body := r.post(t, "/v1/chat/completions", qwenChat)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)

	status, body := r.adminDo(t, http.MethodGet, "/metrics", "", "")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, `llmgate_requests_total{code="",status="200"} 1`)
	status, body = r.adminDo(t, http.MethodGet, "/readyz", "", "")
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, "ready\n", body)
	require.Contains(t, lastLine(r.stderr.String(), "llmgate listening"), "(admin)")
}

// pingFails is a store whose Ping fails, as a database that went away.
type pingFails struct{ keyStore }

func (pingFails) Ping(context.Context) error {
	return fmt.Errorf("sqlite: ping: %w: disk I/O error", keys.ErrUnavailable)
}

func TestReadiness(t *testing.T) {
	up := newDemoUpstream(t)
	t.Run("store does not answer", func(t *testing.T) {
		path := keysConfig(t, t.TempDir(), up.URL, "metrics: {listen: '127.0.0.1:0'}")
		open := func(ctx context.Context, f *config.File, logger *slog.Logger) (keyStore, error) {
			st, err := openStore(ctx, f, logger)
			if err != nil {
				return nil, err
			}
			return pingFails{st}, nil
		}
		r, metrics := startWithMetrics(t, []string{"-config", path}, keysEnv(), hooks{open: open})
		status, body := r.getURL(t, metrics+"/readyz")
		require.Equal(t, http.StatusServiceUnavailable, status)
		require.Equal(t, "not ready: the store sqlite:"+filepath.Join(filepath.Dir(path), "llmgate.db")+" does not answer\n", body)
		require.Contains(t, lastLine(r.stderr.String(), "readiness"), "disk I/O error")
		status, _ = r.getURL(t, metrics+"/healthz")
		require.Equal(t, http.StatusOK, status, "the process is alive")
	})
	t.Run("no provider", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "llmgate.yaml")
		writeFile(t, path, "only_allow_configured_providers: true\nmetrics: {listen: '127.0.0.1:0'}\n"+
			"providers:\n  - {id: openai, disabled: true, api_keys: [{value: '${env:NOPE}'}]}\n")
		r, metrics := startWithMetrics(t, []string{"-config", path}, nil, hooks{})
		status, body := r.getURL(t, metrics+"/readyz")
		require.Equal(t, http.StatusServiceUnavailable, status)
		require.Equal(t, "not ready: no provider is configured\n", body)
	})
	t.Run("starting and shutting down", func(t *testing.T) {
		srv := &server{gw: nil, ops: newOps()}
		require.EqualError(t, srv.ready(context.Background()), "starting")
		srv.draining.Store(true)
		require.EqualError(t, srv.ready(context.Background()), "shutting down")
	})
}

// TestMetricsListenerInUse fails the start when the metrics address is
// taken.
func TestMetricsListenerInUse(t *testing.T) {
	up := newDemoUpstream(t)
	taken := newDemoUpstream(t) // a listener on a port
	path := labConfig(t, up.URL, "metrics: {listen: '"+strings.TrimPrefix(taken.URL, "http://")+"'}")
	var stdout, stderr syncBuffer
	err := serve(context.Background(), []string{"-config", path, "-listen", "127.0.0.1:0"}, mapEnv(nil), &stdout, &stderr, hooks{})
	require.ErrorContains(t, err, "metrics listener: listen tcp")
}

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

// gatedStream starts a fake OpenAI upstream whose next answer is a stream
// that holds its last events until the returned channel is closed, and a
// configuration serving it as provider lab with extra top-level lines.
func gatedStream(t *testing.T, extra string) (path string, gate chan struct{}) {
	t.Helper()
	up := providertest.Start(t, providers.FormatOpenAI)
	gate = make(chan struct{})
	step := providertest.OpenAIChatStream("qwen3", []string{"one", "two"}, providertest.Usage{Input: 3, Output: 2}, false)
	step.Events[len(step.Events)-2].Wait = gate
	up.Enqueue(step)
	path = filepath.Join(t.TempDir(), "llmgate.yaml")
	writeFile(t, path, fmt.Sprintf("%s\nproviders:\n  - id: lab\n    base_url: %s\n    api_keys: [{value: sk-upstream}]\n    models: [{id: qwen3}]\n",
		extra, up.URL))
	return path, gate
}

// openStream starts a stream and reads its first event.
func (r *running) openStream(t *testing.T) (*http.Response, *bufio.Reader) {
	t.Helper()
	resp, err := r.client.Post(r.base+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"lab:qwen3","stream":true,"messages":[{"role":"user","content":"Hi"}]}`))
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	require.Equal(t, http.StatusOK, resp.StatusCode)
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(line, "data: "), line)
	return resp, br
}

// TestShutdownDrainsStreams stops the server during a stream: it reports
// not ready and refuses new connections at once, and the stream still
// completes, within shutdown_timeout.
func TestShutdownDrainsStreams(t *testing.T) {
	path, gate := gatedStream(t, "shutdown_timeout: 1m\nmetrics: {listen: '127.0.0.1:0'}")
	r, metrics := startWithMetrics(t, []string{"-config", path}, nil, hooks{})
	_, br := r.openStream(t)

	stopped := make(chan error, 1)
	go func() { stopped <- r.stop() }()
	require.Eventually(t, func() bool {
		status, _ := r.getURL(t, metrics+"/readyz")
		return status == http.StatusServiceUnavailable
	}, 10*time.Second, 5*time.Millisecond)
	_, body := r.getURL(t, metrics+"/readyz")
	require.Equal(t, "not ready: shutting down\n", body)
	_, body = r.getURL(t, metrics+"/metrics")
	require.Contains(t, body, "llmgate_inflight_streams 1")
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", strings.TrimPrefix(r.base, "http://"))
		if err == nil {
			c.Close()
		}
		return err != nil
	}, 10*time.Second, 5*time.Millisecond, "the API listener is closed")
	require.Contains(t, lastLine(r.stderr.String(), "llmgate shutting down"), "in_flight_streams=1")
	require.Contains(t, lastLine(r.stderr.String(), "llmgate shutting down"), "shutdown_timeout=1m0s")

	close(gate)
	rest, err := io.ReadAll(br)
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(string(rest), "data: [DONE]\n\n"), string(rest))
	require.NoError(t, <-stopped)
	require.NotContains(t, r.stderr.String(), "graceful shutdown incomplete")
	require.Contains(t, r.stderr.String(), "llmgate stopped")
}

// TestShutdownTimeout cuts a stream that outlives shutdown_timeout.
func TestShutdownTimeout(t *testing.T) {
	path, gate := gatedStream(t, "shutdown_timeout: 100ms")
	defer close(gate)
	r := startServer(t, []string{"-config", path}, nil)
	_, br := r.openStream(t)

	require.NoError(t, r.stop())
	rest, err := io.ReadAll(br)
	require.Error(t, err, "the connection was closed mid-stream")
	require.NotContains(t, string(rest), "[DONE]")
	line := lastLine(r.stderr.String(), "graceful shutdown incomplete")
	require.Contains(t, line, "in_flight_streams=1")
	require.Contains(t, line, "shutdown_timeout=100ms")
}

// TestShutdownTimeoutReloaded applies a shutdown_timeout changed by a
// reload.
func TestShutdownTimeoutReloaded(t *testing.T) {
	path, gate := gatedStream(t, "shutdown_timeout: 1h")
	defer close(gate)
	r := startServer(t, []string{"-config", path}, nil)
	require.Equal(t, time.Hour, r.srv.shutdownTimeout())
	data := readFile(t, path)
	writeFile(t, path, strings.Replace(data, "shutdown_timeout: 1h", "shutdown_timeout: 50ms", 1))
	require.NoError(t, r.srv.reload())
	require.Equal(t, 50*time.Millisecond, r.srv.shutdownTimeout())
	_, br := r.openStream(t)
	require.NoError(t, r.stop())
	_, err := io.ReadAll(br)
	require.Error(t, err)
	require.Contains(t, lastLine(r.stderr.String(), "graceful shutdown incomplete"), "shutdown_timeout=50ms")
}

//go:build unix

package main

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestReloadOnSIGHUP sends SIGHUP to the test process, which the running
// server handles by reloading its file.
func TestReloadOnSIGHUP(t *testing.T) {
	up := newDemoUpstream(t)
	path := filepath.Join(t.TempDir(), "llmgate.yaml")
	writeFile(t, path, fmt.Sprintf("providers:\n  - id: lab\n    base_url: %s/v1/\n    models: [{id: qwen3}]\n", up.URL))
	r := startServer(t, []string{"-config", path}, nil)
	status, body := r.get(t, "/v1/models")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, []string{"lab:qwen3"}, modelIDs(t, body))

	writeFile(t, path, fmt.Sprintf("providers:\n  - id: lab\n    base_url: %s/v1/\n    models: [{id: qwen3}, {id: qwen3-mini}]\n", up.URL))
	require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool {
		_, body := r.get(t, "/v1/models")
		return len(modelIDs(t, body)) == 2
	}, 10*time.Second, 5*time.Millisecond)

	// A refused file keeps the configuration; the server goes on.
	writeFile(t, path, "providers: [{id: lab, colour: blue}]\n")
	require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool { return lastLine(r.stderr.String(), "configuration reload refused") != "" }, 10*time.Second, 5*time.Millisecond)
	require.Contains(t, lastLine(r.stderr.String(), "configuration reload refused"), "providers[0].colour: unknown field (line 1)")
	_, body = r.get(t, "/v1/models")
	require.Equal(t, []string{"lab:qwen3", "lab:qwen3-mini"}, modelIDs(t, body))
}

// TestDrainOnSIGTERM sends SIGTERM to the test process, which main's
// signal context turns into a graceful shutdown: the stream in flight
// completes, then serve returns.
func TestDrainOnSIGTERM(t *testing.T) {
	path, gate := gatedStream(t, "shutdown_timeout: 1m")
	ctx, stop := shutdownSignals()
	defer stop()
	var stdout, stderr syncBuffer
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, []string{"-config", path, "-listen", "127.0.0.1:0"}, mapEnv(nil), &stdout, &stderr,
			hooks{ready: func(addr string, _ *server) { ready <- addr }})
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve returned before listening: %v\n%s", err, stderr.String())
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	r := &running{base: "http://" + addr, client: &http.Client{Transport: tr}}
	_, br := r.openStream(t)

	require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGTERM))
	require.Eventually(t, func() bool { return lastLine(stderr.String(), "llmgate shutting down") != "" }, 10*time.Second, 5*time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("serve returned with a stream in flight: %v", err)
	default:
	}
	close(gate)
	rest, err := io.ReadAll(br)
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(string(rest), "data: [DONE]\n\n"), string(rest))
	require.NoError(t, <-done)
	require.Contains(t, stderr.String(), "llmgate stopped")
}

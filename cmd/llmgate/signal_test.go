//go:build unix

package main

import (
	"fmt"
	"net/http"
	"path/filepath"
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

//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/credits"
	"github.com/llmgate/gateway/keys"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
	"github.com/llmgate/gateway/store/sqlite"
)

// child is llmgate running in a process of its own: the test binary
// re-executed with runMainEnv set, whose TestMain runs main.
type child struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan struct{} // closed once Wait has returned
	err    error         // Wait's, once exited is closed
}

// startChild starts llmgate with args in a child process; it is killed,
// if still running, when the test ends.
func startChild(t *testing.T, args ...string) *child {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	c := &child{cmd: exec.Command(exe, args...), stderr: &syncBuffer{}, exited: make(chan struct{})}
	c.cmd.Env = append(os.Environ(), runMainEnv+"=1")
	c.cmd.Stdout, c.cmd.Stderr = c.stderr, c.stderr
	require.NoError(t, c.cmd.Start())
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		<-c.exited
	})
	return c
}

// wait waits for the child to exit and returns its stdout and stderr.
func (c *child) wait(t *testing.T) (string, error) {
	t.Helper()
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("llmgate %q did not exit:\n%s", c.cmd.Args[1:], c.stderr.String())
	}
	return c.stderr.String(), c.err
}

// kill sends SIGKILL to the child and waits for it to die of it.
func (c *child) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGKILL))
	_, err := c.wait(t)
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	ws, ok := ee.Sys().(syscall.WaitStatus)
	require.True(t, ok)
	require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "%v", err)
}

// logged waits until the child's JSON log has a record with message msg
// whose fields match want, and returns it.
func (c *child) logged(t *testing.T, timeout time.Duration, msg string, want map[string]any) map[string]any {
	t.Helper()
	var found map[string]any
	deadline := time.Now().Add(timeout)
	for found == nil {
		sc := bufio.NewScanner(strings.NewReader(c.stderr.String()))
		for sc.Scan() && found == nil {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) != nil || rec["msg"] != msg {
				continue
			}
			found = rec
			for k, v := range want {
				if fmt.Sprint(rec[k]) != fmt.Sprint(v) {
					found = nil
				}
			}
		}
		if found != nil {
			break
		}
		select {
		case <-c.exited:
			t.Fatalf("llmgate exited (%v) before logging %q %v:\n%s", c.err, msg, want, c.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("llmgate did not log %q %v within %v:\n%s", msg, want, timeout, c.stderr.String())
		}
	}
	return found
}

// llmgateCLI runs an llmgate subcommand in a child process and returns its
// stdout.
func llmgateCLI(t *testing.T, args ...string) string {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "llmgate %q:\n%s", args, stderr.String())
	return string(out)
}

// TestKilledGatewayLeavesNoHold kills llmgate (a real child process,
// SIGKILL) while a credit-paid stream is in flight: the request's hold
// stays behind in the SQLite store, orphaned, until llmgate starts again
// and its sweeper, once the hold's TTL has passed, gives the money back.
// With $5 the account is too poor to lease, and the request holds in the
// store; with $50 the request holds in the replica's lease, which is what
// stays behind.
func TestKilledGatewayLeavesNoHold(t *testing.T) {
	t.Run("store hold", func(t *testing.T) { testKilledGateway(t, "5.00", "") })
	t.Run("lease", func(t *testing.T) { testKilledGateway(t, "50.00", "lease: {flush_interval: 100ms, ttl: 2s}") })
}

func testKilledGateway(t *testing.T, amount, lease string) {
	ctx := context.Background()
	dir := t.TempDir()
	db := filepath.Join(dir, "llmgate.db")
	path := filepath.Join(dir, "llmgate.yaml")

	// The upstream sends the stream's headers and first words, then
	// nothing until the test ends.
	up := providertest.Start(t, providers.FormatOpenAI)
	never := make(chan struct{})
	t.Cleanup(func() { close(never) })
	step := providertest.OpenAIChatStream("slow-chat", []string{"Hel", "lo"}, providertest.Usage{Input: 10, Output: 2}, true)
	step.Events[2].Wait = never // after the role chunk and "Hel"
	up.Enqueue(step)

	// hold_ttl must be at least twice total_timeout, which bounds a
	// request until its answer is committed; a committed stream lives on
	// (stream_idle_timeout).
	writeFile(t, path, fmt.Sprintf(`
store: sqlite:%s
log: {format: json}
per_request_timeout: 1s
total_timeout: 1s
stream_idle_timeout: 1m
credits: {enabled: true, hold_ttl: 2s, sweep_interval: 250ms, %s}
providers:
  - id: lab
    base_url: %s
    api_keys: [{value: sk-lab-1}]
    models:
      - {id: slow-chat, max_output_tokens: 1000, pricing: {input: 2000000, output: 8000000}}
`, db, lease, up.URL))

	out := strings.Split(strings.TrimSpace(llmgateCLI(t, "keys", "create", "-config", path, "-account", "acme")), "\n")
	token := out[len(out)-1]
	require.True(t, strings.HasPrefix(token, keys.TokenPrefix), token)
	llmgateCLI(t, "credits", "buy", "-config", path, "-account", "acme", "-amount", amount, "-id", "order-1")

	gw := startChild(t, "-config", path, "-listen", "127.0.0.1:0")
	addr := gw.logged(t, 30*time.Second, "llmgate listening", map[string]any{"metering": "credits"})["addr"].(string)

	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/chat/completions",
		strings.NewReader(`{"model":"lab:slow-chat","stream":true,"messages":[{"role":"user","content":"Hi"}]}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var got strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(got.String(), `"Hel"`) {
		n, err := resp.Body.Read(buf)
		got.Write(buf[:n])
		require.NoError(t, err, "the stream ended before its first words: %s", got.String())
	}
	require.Equal(t, 1, up.Count(), "the request is upstream")

	gw.kill(t)
	_, err = io.ReadAll(resp.Body)
	require.Error(t, err, "the stream was cut, not ended")

	st, err := sqlite.Open(ctx, db, sqlite.Options{})
	require.NoError(t, err)
	defer st.Close()
	balance := func() credits.Balance {
		t.Helper()
		b, err := st.Balance(ctx, "acme")
		require.NoError(t, err)
		require.Equal(t, b.Purchased, b.Available+b.Held+b.Spent+b.Expired, "the accounting identity")
		return b
	}
	purchased, err := credits.ParseAmount(amount)
	require.NoError(t, err)
	b := balance()
	require.Equal(t, purchased, b.Purchased)
	require.Positive(t, b.Held, "the killed gateway's hold is orphaned")
	require.Zero(t, b.Spent)
	held := b.Held
	if lease != "" {
		require.Equal(t, credits.DefaultLeaseSize, held, "the replica's lease stays behind, not the request's hold")
	}
	page, err := st.Usage(ctx, credits.UsageQuery{Account: "acme"})
	require.NoError(t, err)
	require.Empty(t, page.Records, "the request never ended")

	// Started again, llmgate sweeps at once and then every
	// sweep_interval: the hold goes once its TTL has passed.
	gw = startChild(t, "-config", path, "-listen", "127.0.0.1:0")
	gw.logged(t, 30*time.Second, "llmgate listening", nil)
	rec := gw.logged(t, 15*time.Second, "llmgate: credits sweep", map[string]any{"holds_released": 1})
	require.Equal(t, held.String(), rec["released"])
	b = balance()
	require.Zero(t, b.Held, "no hold is left")
	require.Equal(t, purchased, b.Available, "the money is back")
	require.Zero(t, b.Spent)
	require.Zero(t, b.Expired)

	// Stopped gracefully, the restarted gateway exits cleanly.
	require.NoError(t, gw.cmd.Process.Signal(syscall.SIGTERM))
	logs, err := gw.wait(t)
	require.NoError(t, err, logs)
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// syncBuffer is an io.Writer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// running is a server started by startServer.
type running struct {
	base           string // "http://127.0.0.1:port"
	stdout, stderr *syncBuffer
	client         *http.Client // its own transport, closed at cleanup
	stop           func() error // cancels run and waits for it
}

// mapEnv returns a getenv function over m.
func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// startServer runs serve with args (plus -listen 127.0.0.1:0) and env until
// the test ends; run must return nil then.
func startServer(t *testing.T, args []string, env map[string]string) *running {
	t.Helper()
	return startServerWith(t, args, env, nil)
}

// startServerWith is startServer with the server's limits replaced by lim
// (unless nil).
func startServerWith(t *testing.T, args []string, env map[string]string, lim *limits) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	args = append([]string{"-listen", "127.0.0.1:0"}, args...)
	go func() {
		done <- serve(ctx, args, mapEnv(env), r.stdout, r.stderr, hooks{ready: func(addr string) { ready <- addr }, limits: lim})
	}()
	select {
	case addr := <-ready:
		r.base = "http://" + addr
	case err := <-done:
		cancel()
		t.Fatalf("run returned before listening: %v\nstderr:\n%s", err, r.stderr.String())
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("run did not start")
	}
	tr := &http.Transport{}
	r.client = &http.Client{Transport: tr}
	var once sync.Once
	var stopErr error
	r.stop = func() error {
		once.Do(func() {
			tr.CloseIdleConnections()
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(40 * time.Second):
				stopErr = context.DeadlineExceeded
			}
		})
		return stopErr
	}
	t.Cleanup(func() {
		require.NoError(t, r.stop())
		tr.CloseIdleConnections()
	})
	return r
}

func (r *running) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := r.client.Get(r.base + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func (r *running) post(t *testing.T, path, body string) (*http.Response, string) {
	t.Helper()
	resp, err := r.client.Post(r.base+path, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// modelIDs returns the ids of a GET /v1/models answer.
func modelIDs(t *testing.T, body string) []string {
	t.Helper()
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &list))
	ids := make([]string, len(list.Data))
	for i, m := range list.Data {
		ids[i] = m.ID
	}
	return ids
}

func providersOf(ids []string) map[string]bool {
	out := map[string]bool{}
	for _, id := range ids {
		p, _, _ := strings.Cut(id, ":")
		out[p] = true
	}
	return out
}

func TestRunFlags(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantErr    string
		wantStdout string
		wantStderr string
	}{
		{name: "version", args: []string{"-version"}, wantStdout: "llmgate "},
		{name: "help", args: []string{"-h"}, wantStderr: "Usage: llmgate [-config FILE] [-listen ADDR] [-version]"},
		{name: "unknown flag", args: []string{"-nope"}, wantErr: "flag provided but not defined: -nope"},
		{name: "extra argument", args: []string{"serve"}, wantErr: `unexpected arguments ["serve"]`},
		{name: "missing config file", args: []string{"-config", filepath.Join(t.TempDir(), "none.yaml")}, wantErr: "none.yaml: no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr syncBuffer
			err := run(context.Background(), tt.args, mapEnv(nil), &stdout, &stderr)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
			}
			require.Contains(t, stdout.String(), tt.wantStdout)
			require.Contains(t, stderr.String(), tt.wantStderr)
		})
	}
}

func TestRunConfigErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
per_request_timeout: "3 minutes"
providers:
  - id: groq
    api_keys: [{value: "${env:GROQ_KEY}"}]
  - id: x
    base_url: https://x.example/v1/
    format: grpc
`), 0o600))
	var stdout, stderr syncBuffer
	err := run(context.Background(), []string{"-config", path}, mapEnv(nil), &stdout, &stderr)
	require.Error(t, err)
	for _, want := range []string{
		path + ": invalid configuration (4 problems):", // the catalog adds "no API surfaces" for the unknown format
		`per_request_timeout: "3 minutes" is not a duration`,
		`providers[0].api_keys[0].value: ${env:GROQ_KEY} is not set`,
		`providers[1].format: unknown format "grpc" (line 8)`,
	} {
		require.Contains(t, err.Error(), want)
	}
	require.Empty(t, stdout.String())
}

func TestRunListenInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	err = run(context.Background(), []string{"-listen", ln.Addr().String()}, mapEnv(nil), io.Discard, io.Discard)
	require.ErrorContains(t, err, "address already in use")
}

func TestEnvProviders(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string // "provider=VAR"
	}{
		{name: "none", env: nil, want: nil},
		{name: "blank is unset", env: map[string]string{"OPENAI_API_KEY": "  "}, want: nil},
		{name: "openai", env: map[string]string{"OPENAI_API_KEY": "a"}, want: []string{"openai=OPENAI_API_KEY"}},
		{name: "gemini wins over google", env: map[string]string{"GOOGLE_API_KEY": "g", "GEMINI_API_KEY": "m"}, want: []string{"google=GEMINI_API_KEY"}},
		{name: "google", env: map[string]string{"GOOGLE_API_KEY": "g"}, want: []string{"google=GOOGLE_API_KEY"}},
		{name: "all, in catalog order", env: map[string]string{
			"INFERENCE_API_KEY": "i", "INCEPTION_API_KEY": "c", "HYPERBOLIC_API_KEY": "h", "OPENROUTER_API_KEY": "o",
			"DEEPSEEK_API_KEY": "d", "GROQ_API_KEY": "q", "GEMINI_API_KEY": "m", "ANTHROPIC_API_KEY": "a", "OPENAI_API_KEY": "x",
		}, want: []string{
			"openai=OPENAI_API_KEY", "anthropic=ANTHROPIC_API_KEY", "google=GEMINI_API_KEY", "groq=GROQ_API_KEY",
			"deepseek=DEEPSEEK_API_KEY", "openrouter=OPENROUTER_API_KEY", "hyperbolic=HYPERBOLIC_API_KEY",
			"inceptionlabs=INCEPTION_API_KEY", "inference-net=INFERENCE_API_KEY",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, p := range envProviders(mapEnv(tt.env)) {
				got = append(got, p.ID+"="+p.Var)
				require.Equal(t, strings.TrimSpace(tt.env[p.Var]), p.Key.Reveal())
			}
			require.Equal(t, tt.want, got)
		})
	}
}

func TestRunEnvMode(t *testing.T) {
	const secret = "sk-env-secret-value-42"
	r := startServer(t, nil, map[string]string{"OPENAI_API_KEY": secret, "GROQ_API_KEY": "gsk-another-secret"})
	status, body := r.get(t, "/v1/models")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, map[string]bool{"openai": true, "groq": true}, providersOf(modelIDs(t, body)))

	// Other providers are refused without any upstream call.
	resp, body := r.post(t, "/v1/messages", `{"model":"anthropic:claude-haiku-4-5","max_tokens":9,"messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, body)

	status, body = r.get(t, "/healthz")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "ok\n", body)

	require.NoError(t, r.stop())
	logs := r.stderr.String()
	require.Contains(t, logs, "providers=openai,groq")
	require.Contains(t, logs, "from=OPENAI_API_KEY,GROQ_API_KEY")
	require.Contains(t, logs, "mode=env")
	require.NotContains(t, logs, secret)
	require.NotContains(t, logs, "gsk-another-secret")
	require.NotContains(t, r.stdout.String(), "DEMO MODE")
}

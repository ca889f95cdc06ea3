package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/config"
)

// runMainEnv, set to 1 in a child process of a test, makes the test
// binary llmgate itself: TestMain runs main with the child's arguments
// instead of the tests (see startChild).
const runMainEnv = "LLMGATE_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
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
	srv            *server
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
	return startServerHooks(t, args, env, hooks{limits: lim})
}

// startServerHooks is startServer with hooks (its ready hook is the
// test's own).
func startServerHooks(t *testing.T, args []string, env map[string]string, h hooks) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	ready := make(chan *server, 1)
	var addr string
	done := make(chan error, 1)
	args = append([]string{"-listen", "127.0.0.1:0"}, args...)
	go func() {
		h.ready = func(a string, s *server) { addr = a; ready <- s }
		done <- serve(ctx, args, mapEnv(env), r.stdout, r.stderr, h)
	}()
	select {
	case r.srv = <-ready:
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
		{name: "help", args: []string{"-h"}, wantStderr: "Usage: llmgate [-config FILE] [-listen ADDR] [-metrics-listen ADDR] [-explain] [-version]"},
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
		path + ": invalid configuration (",
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

// rawRequest sends a request exactly as written (no client-side path
// cleaning) and returns the response with its body read.
func rawRequest(t *testing.T, base, method, target string, header map[string]string, body string) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Length: %d\r\n", method, target, strings.TrimPrefix(base, "http://"), len(body))
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	_, err = io.WriteString(conn, b.String())
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(data)
}

// TestUncleanPaths checks that paths http.ServeMux would redirect reach
// the gateway, which answers in the client's dialect with its headers.
func TestUncleanPaths(t *testing.T) {
	r := startServer(t, nil, nil)
	chat := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	tests := []struct {
		method, target string
		anthropic      bool
	}{
		{"POST", "//v1/chat/completions", false},
		{"POST", "/v1/x/../chat/completions", false},
		{"POST", "/v1/./chat/completions", false},
		{"GET", "/v1//models", false},
		{"POST", "/v1/messages/../messages", true},
		{"GET", "/healthz/", false},
		{"GET", "//healthz", false},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			resp, body := rawRequest(t, r.base, tt.method, tt.target, map[string]string{"Content-Type": "application/json"}, chat)
			require.Equal(t, http.StatusNotFound, resp.StatusCode, body)
			require.Empty(t, resp.Header.Get("Location"))
			require.True(t, strings.HasPrefix(resp.Header.Get(gateway.HeaderRequestID), "req_"), resp.Header)
			require.Equal(t, "0", resp.Header.Get(gateway.HeaderAttempts))
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var e struct {
				Type  string `json:"type"`
				Error struct {
					Type string `json:"type"`
					Code string `json:"code"`
				} `json:"error"`
			}
			require.NoError(t, json.Unmarshal([]byte(body), &e), body)
			require.Equal(t, "not_found", e.Error.Code)
			if tt.anthropic {
				require.Equal(t, "error", e.Type, "Anthropic's shape")
				require.Equal(t, "not_found_error", e.Error.Type)
			} else {
				require.Empty(t, e.Type, "OpenAI's shape")
			}
		})
	}
	resp, body := rawRequest(t, r.base, "HEAD", "/healthz", nil, "")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	resp, body = rawRequest(t, r.base, "POST", "/healthz", nil, "")
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "only GET and HEAD /healthz are the server's")
	require.Contains(t, body, `"code":"not_found"`)
}

// TestAllowedHostsOnLoopback checks the default Host restriction of a
// loopback listener, and that allowed_hosts replaces it.
func TestAllowedHostsOnLoopback(t *testing.T) {
	hostGet := func(t *testing.T, r *running, host, path string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, r.base+path, nil)
		require.NoError(t, err)
		req.Host = host
		resp, err := r.client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		if resp.StatusCode != http.StatusOK {
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			require.NotEmpty(t, resp.Header.Get(gateway.HeaderRequestID))
		}
		return resp.StatusCode, string(b)
	}
	port := func(r *running) string { _, p, _ := net.SplitHostPort(strings.TrimPrefix(r.base, "http://")); return p }

	t.Run("default", func(t *testing.T) {
		r := startServer(t, nil, nil)
		status, body := hostGet(t, r, "evil.example", "/v1/models")
		require.Equal(t, http.StatusForbidden, status, body)
		require.Contains(t, body, `"code":"host_not_allowed"`)
		status, body = hostGet(t, r, "evil.example:"+port(r), "/v1/chat/completions")
		require.Equal(t, http.StatusForbidden, status, body)
		for _, host := range []string{"localhost:" + port(r), "LOCALHOST", "127.0.0.1:" + port(r), "[::1]:" + port(r)} {
			status, body = hostGet(t, r, host, "/v1/models")
			require.Equal(t, http.StatusOK, status, host+": "+body)
		}
		status, _ = hostGet(t, r, "evil.example", "/healthz")
		require.Equal(t, http.StatusOK, status, "health checks are not the gateway's")
	})
	t.Run("file replaces the default", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "llmgate.yaml")
		require.NoError(t, os.WriteFile(path, []byte("allowed_hosts: [gw.internal]\nproviders: [{id: openai}]\n"), 0o600))
		r := startServer(t, []string{"-config", path}, nil)
		status, body := hostGet(t, r, "localhost", "/v1/models")
		require.Equal(t, http.StatusForbidden, status, body)
		status, body = hostGet(t, r, "gw.internal:"+port(r), "/v1/models")
		require.Equal(t, http.StatusOK, status, body)
	})
	t.Run("every host", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "llmgate.yaml")
		require.NoError(t, os.WriteFile(path, []byte("allowed_hosts: ['*']\nproviders: [{id: openai}]\n"), 0o600))
		r := startServer(t, []string{"-config", path}, nil)
		status, body := hostGet(t, r, "evil.example", "/v1/models")
		require.Equal(t, http.StatusOK, status, body)
	})
}

func TestLoopbackHosts(t *testing.T) {
	tcp := func(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 8080} }
	loop := []string{"localhost", "127.0.0.1", "::1"}
	tests := []struct {
		addr  string
		bound net.Addr
		want  []string
	}{
		{"127.0.0.1:8080", tcp("127.0.0.1"), loop},
		{"localhost:8080", tcp("127.0.0.1"), loop},
		{"[::1]:8080", tcp("::1"), loop},
		{"127.0.0.2:8080", tcp("127.0.0.2"), append(loop[:3:3], "127.0.0.2")},
		{"me.localhost:8080", tcp("127.0.0.1"), append(loop[:3:3], "me.localhost")},
		{"0.0.0.0:8080", tcp("0.0.0.0"), nil},
		{":8080", tcp("::"), nil},
		{"10.0.0.1:8080", tcp("10.0.0.1"), nil},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, loopbackHosts(tt.addr, tt.bound), tt.addr)
	}
}

// TestStreamOutlivesReadTimeout runs streams that last longer than the
// server's ReadTimeout: the read deadline is cleared once the body has
// been read (by the gateway and by net/http), so they complete.
func TestStreamOutlivesReadTimeout(t *testing.T) {
	lim := defaultLimits()
	lim.read = 100 * time.Millisecond
	r := startServerWith(t, nil, nil, &lim)
	words := strings.Repeat("word ", 20) // 20+ words, demo.DefaultStreamDelay apart
	start := time.Now()
	for _, tt := range []struct{ path, body, end string }{
		{"/v1/chat/completions", `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"` + words + `"}]}`, "data: [DONE]\n\n"},
		{"/v1/messages", `{"model":"claude-haiku-4-5","max_tokens":500,"stream":true,"messages":[{"role":"user","content":"` + words + `"}]}`, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"},
	} {
		resp, body := r.post(t, tt.path, tt.body)
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		require.True(t, strings.HasSuffix(body, tt.end), body)
		require.Equal(t, 20, strings.Count(body, "word"), "every word arrived")
	}
	require.Greater(t, time.Since(start), 2*lim.read, "the streams outlived ReadTimeout")
}

func TestMaxHeaderBytes(t *testing.T) {
	r := startServer(t, nil, nil)
	req, err := http.NewRequest(http.MethodGet, r.base+"/v1/models", nil)
	require.NoError(t, err)
	req.Header.Set("X-Big", strings.Repeat("a", 100<<10))
	resp, err := r.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
}

// TestConfigModeReachable checks the default of
// only_allow_configured_providers in a file and the start log line.
func TestConfigModeReachable(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "llmgate.yaml")
	require.NoError(t, os.WriteFile(path, []byte("providers:\n  - id: openai\n    api_keys: [{value: sk-x}]\n"), 0o600))
	r := startServer(t, []string{"-config", path}, nil)
	resp, body := r.post(t, "/v1/messages", `{"model":"anthropic:claude-haiku-4-5","max_tokens":9,"messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, body)
	require.Contains(t, body, "provider_not_allowed")
	require.NoError(t, r.stop())
	require.Contains(t, r.stderr.String(), `msg="llmgate listening"`)
	require.Contains(t, r.stderr.String(), "providers=openai pass_through=scoped")

	require.NoError(t, os.WriteFile(path, []byte("only_allow_configured_providers: false\npass_through: any\nproviders:\n  - id: openai\n"), 0o600))
	r = startServer(t, []string{"-config", path}, nil)
	status, body := r.get(t, "/v1/models")
	require.Equal(t, http.StatusOK, status)
	require.True(t, providersOf(modelIDs(t, body))["anthropic"], "every catalog provider")
	require.NoError(t, r.stop())
	require.Contains(t, r.stderr.String(), "providers=openai,anthropic,")
	require.Contains(t, r.stderr.String(), "pass_through=any")
}

// TestExampleConfig keeps llmgate.example.yaml valid.
func TestExampleConfig(t *testing.T) {
	_, err := config.ReadFile("llmgate.example.yaml", mapEnv(nil))
	require.ErrorContains(t, err, "${env:OPENAI_API_KEY} is not set", "variables are required")

	f, err := config.ReadFile("llmgate.example.yaml", mapEnv(map[string]string{"OPENAI_API_KEY": "a", "ANTHROPIC_API_KEY": "b"}))
	require.NoError(t, err, "the disabled provider's variable need not be set")
	require.NoError(t, f.Check())
}

func TestExplainEndpoint(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "llmgate.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
model_selection:
  strategy: ["ai.models.ignore(['gpt-4o'])"]
providers:
  - id: openai
    api_keys: [{value: sk-x}, {value: sk-y}]
    api_key_selection: {strategy: [round_robin]}
  - id: anthropic
    api_keys: [{value: sk-ant-z}]
`), 0o600))

	// Off by default: the path is the gateway's, which has no such route.
	r := startServer(t, []string{"-config", path}, nil)
	resp, body := r.post(t, "/v1/explain", `{"model":"gpt-4o-mini","messages":[]}`)
	require.Equal(t, http.StatusNotFound, resp.StatusCode, body)
	require.NoError(t, r.stop())

	r = startServer(t, []string{"-config", path, "-explain"}, nil)
	resp, body = r.post(t, "/v1/explain", `{"model":"gpt-4o","models":["gpt-4o-mini","claude-haiku-4-5"],"messages":[]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	var out struct {
		Plan gateway.Plan `json:"plan"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &out), body)
	require.Len(t, out.Plan.Candidates, 2)
	require.Equal(t, "gpt-4o-mini", out.Plan.Candidates[0].Model)
	require.Equal(t, []gateway.PlanKey{{ID: "key-1"}, {ID: "key-2"}}, out.Plan.Candidates[0].Keys)
	require.True(t, out.Plan.Candidates[1].Translated)
	require.Equal(t, "openai:gpt-4o", out.Plan.Rejected[0].Model)
	require.NotContains(t, body, "sk-x", "never a secret")

	resp, body = r.post(t, "/v1/explain?path=/v1/messages", `{"model":"nope-model","max_tokens":5,"messages":[]}`)
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, body)
	require.Contains(t, body, `"code": "model_unknown"`)
	status, body := r.get(t, "/v1/explain")
	require.Equal(t, http.StatusMethodNotAllowed, status, body)
	require.NoError(t, r.stop())
}

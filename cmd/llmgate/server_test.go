package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/config"
	"github.com/llmgate/gateway/internal/demo"
)

// demoUpstream is a demo upstream that counts the requests it serves and
// records the credentials it received.
type demoUpstream struct {
	*httptest.Server
	calls atomic.Int64
	mu    sync.Mutex
	keys  map[string]bool
}

func newDemoUpstream(t *testing.T) *demoUpstream {
	t.Helper()
	d := demo.New(demo.Options{StreamDelay: -1})
	u := &demoUpstream{keys: map[string]bool{}}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.calls.Add(1)
		u.mu.Lock()
		u.keys[r.Header.Get("Authorization")] = true
		u.mu.Unlock()
		r.URL.Path = "/openai" + r.URL.Path
		d.ServeHTTP(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *demoUpstream) sawKey(k string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.keys["Bearer "+k]
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
}

// setupFor builds the server of a configuration file as serve does, without
// listening.
func setupFor(t *testing.T, path string, env map[string]string) (*server, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	s, err := setup(path, mapEnv(env), logs)
	require.NoError(t, err)
	require.NoError(t, s.start(context.Background()))
	t.Cleanup(s.close)
	return s, logs
}

// lastLine returns the last log line containing msg.
func lastLine(logs, msg string) string {
	var out string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, msg) {
			out = l
		}
	}
	return out
}

func TestReload(t *testing.T) {
	up := newDemoUpstream(t)
	path := filepath.Join(t.TempDir(), "llmgate.yaml")
	writeFile(t, path, fmt.Sprintf(`
max_attempts: 5
providers:
  - id: lab
    base_url: %[1]s/v1/
    api_keys: [{value: "${env:LAB_KEY}", id: lab-a}]
    models: [{id: qwen3}]
  - id: old
    base_url: %[1]s/v1/
    models: [{id: m}]
  - id: same
    base_url: %[1]s/v1/
    models: [{id: m}]
`, up.URL))
	env := map[string]string{"LAB_KEY": "sk-lab-secret-1", "LAB_KEY_2": "sk-lab-secret-2"}
	s, logs := setupFor(t, path, env)
	require.Equal(t, []string{"lab", "old", "same"}, s.gw.Providers())

	t.Run("applied", func(t *testing.T) {
		writeFile(t, path, fmt.Sprintf(`
max_attempts: 3
default_models: [lab:qwen3]
log: {level: debug}
providers:
  - id: lab
    base_url: %[1]s/v1/
    api_keys: [{value: "${env:LAB_KEY}", id: lab-a}, {value: "${env:LAB_KEY_2}", id: lab-b}]
    models: [{id: qwen3}]
  - id: new
    base_url: %[1]s/v1/
    models: [{id: m}]
  - id: same
    base_url: %[1]s/v1/
    models: [{id: m}]
  - id: old
    disabled: true
`, up.URL))
		require.NoError(t, s.reload())
		require.Equal(t, []string{"lab", "new", "same"}, s.gw.Providers())
		line := lastLine(logs.String(), "configuration reloaded")
		for _, want := range []string{
			"providers_added=new", "providers_removed=old", "providers_changed=lab ",
			`keys="lab=2,new=0,same=0"`, "settings_changed=log,default_models,max_attempts",
			"default_models=lab:qwen3", "reachable=lab,new,same", "pass_through=scoped",
		} {
			require.Contains(t, line, want)
		}
		require.NotContains(t, logs.String(), "sk-lab-secret")
		s.logger.Debug("debug after reload")
		require.Contains(t, logs.String(), "debug after reload", "log.level applies at once")
	})

	t.Run("refused", func(t *testing.T) {
		before := s.file
		writeFile(t, path, fmt.Sprintf(`
listen: 127.0.0.1:1
max_attempts: 0
providers:
  - id: lab
    base_url: %s/v1/
    api_keys:
      - {value: "${env:LAB_KEY}", id: lab-a}
      - {value: "${env:NOPE}", id: lab-b}
`, up.URL))
		err := s.reload()
		require.Error(t, err)
		require.Contains(t, err.Error(), path+": invalid configuration (2 problems):")
		require.Contains(t, err.Error(), "max_attempts: must be at least 1, got 0 (line 3)")
		require.Contains(t, err.Error(), "providers[0].api_keys[1].value: ${env:NOPE} is not set (line 9)")
		line := lastLine(logs.String(), "configuration reload refused")
		require.Contains(t, line, "max_attempts: must be at least 1, got 0 (line 3)")
		require.Equal(t, []string{"lab", "new", "same"}, s.gw.Providers(), "the configuration in force stays")
		require.Same(t, before, s.file)

		// A problem only Reload finds.
		writeFile(t, path, "providers:\n  - id: openai\n    api_keys:\n      - {value: a, id: k}\n      - {value: b, id: k}\n")
		err = s.reload()
		require.EqualError(t, err, path+`: invalid configuration: providers[0].api_keys[1].id: key ID "k" used twice (line 5)`)
		require.Equal(t, []string{"lab", "new", "same"}, s.gw.Providers())

		writeFile(t, path, "providers: [")
		require.ErrorContains(t, s.reload(), "yaml:")
		require.NoError(t, os.Remove(path))
		require.ErrorIs(t, s.reload(), os.ErrNotExist)
		require.Equal(t, []string{"lab", "new", "same"}, s.gw.Providers())
		require.NotContains(t, logs.String(), "sk-lab-secret")
	})

	t.Run("restart settings", func(t *testing.T) {
		writeFile(t, path, "listen: 127.0.0.1:1\nmax_connections: 3\nlog: {format: json}\nproviders: [{id: openai}]\n")
		require.NoError(t, s.reload())
		require.Equal(t, []string{"openai"}, s.gw.Providers())
		for _, want := range []string{"listen changed", "max_connections changed", "log.format changed"} {
			require.Contains(t, logs.String(), want)
		}
	})
}

func TestReloadWithoutFile(t *testing.T) {
	for name, env := range map[string]map[string]string{"env": {"OPENAI_API_KEY": "sk-x"}, "demo": nil} {
		t.Run(name, func(t *testing.T) {
			s, logs := setupFor(t, "", env)
			require.Equal(t, name, s.mode)
			providers := s.gw.Providers()
			require.NoError(t, s.reload())
			require.Contains(t, logs.String(), "there is no configuration file to reload")
			require.Equal(t, providers, s.gw.Providers())
		})
	}
}

// TestReloadUnderLoad reloads a running server several times, changing
// upstreams, providers and keys, while clients keep sending requests: no
// request fails, and the new configuration takes effect each time.
func TestReloadUnderLoad(t *testing.T) {
	a, b := newDemoUpstream(t), newDemoUpstream(t)
	path := filepath.Join(t.TempDir(), "llmgate.yaml")
	versions := []string{
		fmt.Sprintf("providers:\n  - id: lab\n    base_url: %s/v1/\n    api_keys: [{value: key-a1}]\n    models: [{id: qwen3}]\n", a.URL),
		fmt.Sprintf("providers:\n  - id: lab\n    base_url: %s/v1/\n    api_keys: [{value: key-b1}, {value: key-b2}]\n    models: [{id: qwen3}]\n  - id: extra\n    base_url: %s/v1/\n    models: [{id: m}]\n", b.URL, a.URL),
		fmt.Sprintf("max_attempts: 4\nproviders:\n  - id: lab\n    base_url: %s/v1/\n    api_keys: [{value: key-a2, id: second}]\n    models: [{id: qwen3}, {id: qwen3-mini}]\n", a.URL),
	}
	writeFile(t, path, versions[0])
	r := startServer(t, []string{"-config", path}, nil)

	const clients = 8
	var done atomic.Int64
	var failures []string
	var mu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				text := fmt.Sprintf("client %d request %d", i, n)
				stream := n%2 == 1
				body := fmt.Sprintf(`{"model":"lab:qwen3","stream":%t,"messages":[{"role":"user","content":%q}]}`, stream, text)
				resp, err := r.client.Post(r.base+"/v1/chat/completions", "application/json", strings.NewReader(body))
				var got []byte
				if err == nil {
					got, err = io.ReadAll(resp.Body)
					_ = resp.Body.Close()
				}
				switch {
				case err != nil:
				case resp.StatusCode != http.StatusOK:
					err = fmt.Errorf("status %d: %s", resp.StatusCode, got)
				case stream && !strings.HasSuffix(string(got), "data: [DONE]\n\n"):
					err = fmt.Errorf("stream cut: %s", got)
				case !stream && !strings.Contains(string(got), demo.Reply(text)):
					err = fmt.Errorf("unexpected body: %s", got)
				}
				if err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
				}
				done.Add(1)
			}
		}()
	}
	// Each reload happens after the clients made progress under the
	// configuration before it.
	progress := func() {
		from := done.Load()
		require.Eventually(t, func() bool { return done.Load() >= from+3*clients }, 20e9, 1e6)
	}
	for i := 1; i <= 6; i++ {
		progress()
		writeFile(t, path, versions[i%len(versions)])
		require.NoError(t, r.srv.reload())
	}
	progress()
	close(stop)
	wg.Wait()

	require.Empty(t, failures)
	require.Positive(t, a.calls.Load())
	require.Positive(t, b.calls.Load())
	for _, k := range []string{"key-a1", "key-b1", "key-a2"} {
		require.True(t, a.sawKey(k) || b.sawKey(k), k)
	}
	require.NoError(t, r.stop())
	require.Equal(t, 6, strings.Count(r.stderr.String(), "configuration reloaded"))
}

// TestExampleConfigOptions checks that the example file shows every
// top-level field (set, or commented out), so that it stays complete.
func TestExampleConfigOptions(t *testing.T) {
	data, err := os.ReadFile("llmgate.example.yaml")
	require.NoError(t, err)
	f, err := config.Parse(data, mapEnv(map[string]string{"OPENAI_API_KEY": "a", "ANTHROPIC_API_KEY": "b"}))
	require.NoError(t, err)
	gw, err := gateway.New(f.Options()...)
	require.NoError(t, err)
	defer gw.Close()
	// Every field commented out is valid too.
	uncommented := regexp.MustCompile(`(?m)^# ([a-z_]+:|  - |  [a-z_]+:)`).ReplaceAllString(string(data), "$1")
	f, err = config.Parse([]byte(uncommented), mapEnv(map[string]string{"OPENAI_API_KEY": "a", "ANTHROPIC_API_KEY": "b",
		"LLMGATE_KEK": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "LLMGATE_ADMIN_TOKEN": "0123456789abcdef", "COLLECTOR_TOKEN": "t"}))
	require.NoError(t, err)
	require.NoError(t, f.Check())
	require.Equal(t, "sqlite:./llmgate.db", f.StoreName())
	require.Equal(t, "127.0.0.1:9090", f.Admin.Listen)
	require.Len(t, f.Events, 2)
	require.Equal(t, "127.0.0.1:9464", f.Metrics.Listen)
	require.Equal(t, 30*time.Second, f.ShutdownTimeoutOrDefault())
	s, err := f.Sealer()
	require.NoError(t, err)
	require.Equal(t, "kek-2026-12", s.Current())
	for _, field := range []string{
		"listen", "max_connections", "per_request_timeout", "total_timeout", "stream_idle_timeout",
		"stream_keep_alive", "body_read_timeout", "write_timeout", "only_allow_configured_providers",
		"only_allow_configured_models", "default_models", "max_request_bytes", "max_response_bytes",
		"max_event_bytes", "stream_holdback", "fail_fast_statuses", "key_cooldowns", "max_models",
		"max_attempts", "pass_through", "error_detail", "cors_origins", "forward_headers", "allowed_hosts", "log",
		"store", "endpoint", "gateway_keys", "key_encryption_keys", "admin", "events", "metrics", "shutdown_timeout",
	} {
		require.True(t, strings.Contains(string(data), "\n"+field+":") || strings.Contains(string(data), "\n# "+field+":"), field)
	}
}

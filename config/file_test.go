package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/providers"
)

// mapEnv returns a getenv function over m.
func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// requireOneProblem parses yaml and requires exactly one problem, whose
// text holds want and no "s3cret"; Check on what was parsed must report
// that one problem again, and nothing else.
func requireOneProblem(t *testing.T, yaml, want string) {
	t.Helper()
	f, err := Parse([]byte(yaml), mapEnv(nil))
	require.Error(t, err)
	var ce *Error
	require.ErrorAs(t, err, &ce)
	require.Len(t, ce.Problems, 1, err.Error())
	require.Contains(t, err.Error(), want)
	require.NotContains(t, err.Error(), "s3cret")
	err = f.Check()
	require.ErrorAs(t, err, &ce)
	require.Len(t, ce.Problems, 1, err.Error())
}

// trickySecret has every character that would break YAML if it were
// substituted before parsing.
const trickySecret = `sk-a: b # c 'd' "e" {f} [g] &h *i !j |k >l %m @n` + "`o`"

const fullConfig = `
listen: "127.0.0.1:9999"
max_connections: 100
per_request_timeout: 45s
total_timeout: 2m
stream_idle_timeout: 30s
stream_keep_alive: 5s
body_read_timeout: 20s
write_timeout: 10s
only_allow_configured_providers: true
only_allow_configured_models: false
default_models: ["lab:qwen3", "openai:gpt-4o-mini"]
max_request_bytes: 1048576
max_response_bytes: 2097152
max_event_bytes: 65536
stream_holdback: {events: 8, bytes: 4096}
fail_fast_statuses: [400, 422]
key_cooldowns: {auth: 1m, rate_limit: 5s, max_retry_after: 30s}
max_models: 4
max_attempts: 6
pass_through: "off"
error_detail: true
cors_origins: ["https://app.example.com"]
forward_headers: [X-Trace-Id]
allowed_hosts: [gateway.internal]
log: {level: debug, format: json}
model_selection:
  strategy:
    - "request.header('x-tier') == 'cheap' ? ai.models.onlyProviders(['lab']) : ai.models"
    - ai.models
api_key_selection: {strategy: [least_latency]}
providers:
  - id: openai
    aliases: [oai]
    api_keys:
      - value: ${env:OPENAI_API_KEY}
        id: primary
        weight: 3
      - value: "sk-second"
    api_key_selection: {strategy: [weighted]}
    stream_usage: false
    default_model: gpt-4o-mini
    models:
      - id: gpt-4o
        metadata: {tier: premium}
  - id: lab
    base_url: ${env:LAB_URL}
    format: openai
    surfaces: [chat-completions, embeddings]
    api_keys: [{value: "${env:LAB_KEY}"}]
    headers: {X-Custom: "v-${env:REGION}"}
    query_params: {api-version: "2024-10-21"}
    auth_header: api-key
    default_model: qwen3
    disabled: false
    pass_through: true
    models:
      - id: qwen3
        aliases: [qwen]
        author: alibaba
        display_name: Qwen 3
        context_window: 128000
        max_output_tokens: 16384
        input_modalities: [text, image]
        output_modalities: [text]
        features: [tool-calling]
        metadata: {tier: cheap, owner: "${env:OWNER}", gpus: 8, nested: {list: [1, "${env:REGION}"]}}
        pricing: {input: 2500000, output: 10000000, cache_read: 1250000, cache_write: 0}
  - id: anthropic
    disabled: true
    api_keys: [{value: "${env:ANTHROPIC_API_KEY}"}]
`

func fullEnv(labURL string) map[string]string {
	return map[string]string{
		"OPENAI_API_KEY": trickySecret,
		"LAB_URL":        labURL,
		"LAB_KEY":        "lab-key-123",
		"REGION":         "eu",
		"OWNER":          "ml-team",
	}
}

func ptr[T any](v T) *T { return &v }

func TestParseEveryField(t *testing.T) {
	cfg, err := Parse([]byte(fullConfig), mapEnv(fullEnv("http://127.0.0.1:1/v1/")))
	require.NoError(t, err)

	require.Equal(t, "127.0.0.1:9999", cfg.Listen)
	require.Equal(t, 100, *cfg.MaxConnections)
	require.Equal(t, 45*time.Second, *cfg.PerRequestTimeout)
	require.Equal(t, 2*time.Minute, *cfg.TotalTimeout)
	require.Equal(t, 30*time.Second, *cfg.StreamIdleTimeout)
	require.Equal(t, 5*time.Second, *cfg.StreamKeepAlive)
	require.Equal(t, 20*time.Second, *cfg.BodyReadTimeout)
	require.Equal(t, 10*time.Second, *cfg.WriteTimeout)
	require.True(t, *cfg.OnlyAllowConfiguredProviders)
	require.False(t, cfg.OnlyAllowConfiguredModels)
	require.Equal(t, []string{"lab:qwen3", "openai:gpt-4o-mini"}, cfg.DefaultModels)
	require.EqualValues(t, 1<<20, *cfg.MaxRequestBytes)
	require.EqualValues(t, 2<<20, *cfg.MaxResponseBytes)
	require.Equal(t, 65536, *cfg.MaxEventBytes)
	require.Equal(t, Holdback{Events: ptr(8), Bytes: ptr(4096)}, cfg.StreamHoldback)
	require.Equal(t, []int{400, 422}, cfg.FailFastStatuses)
	require.Equal(t, KeyCooldowns{Auth: ptr(time.Minute), RateLimit: ptr(5 * time.Second), MaxRetryAfter: ptr(30 * time.Second)}, cfg.KeyCooldowns)
	require.Equal(t, 4, *cfg.MaxModels)
	require.Equal(t, 6, *cfg.MaxAttempts)
	require.Equal(t, "off", cfg.PassThrough)
	require.True(t, cfg.ErrorDetail)
	require.Equal(t, []string{"https://app.example.com"}, cfg.CORSOrigins)
	require.Equal(t, []string{"X-Trace-Id"}, cfg.ForwardHeaders)
	require.Equal(t, []string{"gateway.internal"}, cfg.AllowedHosts)
	require.Equal(t, Log{Level: "debug", Format: "json"}, cfg.Log)
	require.Equal(t, Selection{Strategy: []string{"request.header('x-tier') == 'cheap' ? ai.models.onlyProviders(['lab']) : ai.models", "ai.models"}}, cfg.ModelSelection)
	require.Equal(t, Selection{Strategy: []string{"least_latency"}}, cfg.APIKeySelection)
	require.Len(t, cfg.Providers, 3)

	oai := cfg.Providers[0]
	require.Equal(t, "openai", oai.ID)
	require.Equal(t, []string{"oai"}, oai.Aliases)
	require.Equal(t, []APIKey{
		{Value: providers.Secret(trickySecret), ID: "primary", Weight: 3},
		{Value: "sk-second"},
	}, oai.APIKeys)
	require.Equal(t, []string{"weighted"}, oai.APIKeySelection.Strategy)
	require.Equal(t, trickySecret, oai.APIKeys[0].Value.Reveal(), "expanded after parsing, byte for byte")
	require.NotNil(t, oai.StreamUsage)
	require.False(t, *oai.StreamUsage)
	require.Equal(t, "gpt-4o-mini", oai.DefaultModel)
	require.Equal(t, map[string]any{"tier": "premium"}, oai.Models[0].Metadata)

	lab := cfg.Providers[1]
	require.Equal(t, Provider{
		ID:           "lab",
		BaseURL:      "http://127.0.0.1:1/v1/",
		Format:       "openai",
		Surfaces:     []string{"chat-completions", "embeddings"},
		APIKeys:      []APIKey{{Value: "lab-key-123"}},
		Headers:      map[string]string{"X-Custom": "v-eu"},
		QueryParams:  map[string]string{"api-version": "2024-10-21"},
		AuthHeader:   "api-key",
		DefaultModel: "qwen3",
		PassThrough:  true,
		Models: []Model{{
			ID: "qwen3", Aliases: []string{"qwen"}, Author: "alibaba", DisplayName: "Qwen 3",
			ContextWindow: 128000, MaxOutputTokens: 16384,
			InputModalities: []string{"text", "image"}, OutputModalities: []string{"text"},
			Features: []string{"tool-calling"},
			Metadata: map[string]any{"tier": "cheap", "owner": "ml-team", "gpus": 8,
				"nested": map[string]any{"list": []any{1, "eu"}}},
			Pricing: Pricing{Input: 2500000, Output: 10000000, CacheRead: 1250000},
		}},
	}, lab)
	require.True(t, cfg.Providers[2].Disabled)
	require.Empty(t, cfg.Providers[2].APIKeys[0].Value, "a disabled provider's variables need not be set")

	// The options build a gateway with the configured catalog.
	gw, err := gateway.New(cfg.Options()...)
	require.NoError(t, err)
	defer gw.Close()
	p, ok := gw.Catalog().Provider("lab")
	require.True(t, ok)
	require.Len(t, p.Surfaces, 2)
	require.EqualValues(t, "chat-completions", p.Surfaces[0])
	require.EqualValues(t, "embeddings", p.Surfaces[1])
	m, ok := p.Model("qwen")
	require.True(t, ok)
	require.Equal(t, catalog.Pricing{Input: 2500000, Output: 10000000, CacheRead: 1250000}, m.Pricing)
	require.Equal(t, 128000, m.ContextWindow)
	require.Equal(t, "Qwen 3", m.DisplayName)
	_, ok = gw.Catalog().Provider("oai")
	require.True(t, ok, "alias")
	_, ok = gw.Catalog().Provider("anthropic")
	require.False(t, ok, "disabled")
	require.Equal(t, []string{"openai", "lab"}, gw.Providers())
	require.Equal(t, gateway.PassThroughOff, gw.PassThrough())
}

func TestParseEmpty(t *testing.T) {
	for _, doc := range []string{"", "# only a comment\n", "{}"} {
		cfg, err := Parse([]byte(doc), mapEnv(nil))
		require.NoError(t, err, "%q", doc)
		require.Empty(t, cfg.Listen)
		require.False(t, cfg.OnlyConfiguredProviders(), "nothing configured: the catalog in pass-through mode")
		gw, err := gateway.New(cfg.Options()...)
		require.NoError(t, err, "an empty configuration is pass-through mode with the full catalog")
		require.Greater(t, len(gw.Providers()), 2)
		require.NoError(t, gw.Close())
	}
}

func TestOnlyConfiguredProvidersDefault(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want bool
	}{
		{"no providers", "listen: 127.0.0.1:1", false},
		{"a provider", "providers: [{id: openai}]", true},
		{"only disabled providers", "providers: [{id: openai, disabled: true}]", false},
		{"set false", "only_allow_configured_providers: false\nproviders: [{id: openai}]", false},
		{"set true", "only_allow_configured_providers: true\nproviders: [{id: openai}]", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse([]byte(tt.yaml), mapEnv(nil))
			require.NoError(t, err)
			require.Equal(t, tt.want, f.OnlyConfiguredProviders())
			gw, err := gateway.New(f.Options()...)
			require.NoError(t, err)
			defer gw.Close()
			if tt.want {
				require.Equal(t, []string{"openai"}, gw.Providers())
			} else {
				require.Greater(t, len(gw.Providers()), 2)
			}
		})
	}
}

func TestLogNewLogger(t *testing.T) {
	var b strings.Builder
	l := Log{Level: "warn", Format: "json"}.NewLogger(&b, nil)
	l.Info("hidden")
	l.Warn("shown")
	require.NotContains(t, b.String(), "hidden")
	require.Contains(t, b.String(), `"msg":"shown"`)

	b.Reset()
	l = Log{}.NewLogger(&b, nil)
	l.Debug("hidden")
	l.Info("shown")
	require.Equal(t, 1, strings.Count(b.String(), "\n"))
	require.Contains(t, b.String(), "msg=shown")
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "llmgate.yaml")
	t.Setenv("LLMGATE_TEST_KEY", "sk-load-test")
	require.NoError(t, os.WriteFile(path, []byte("max_attempts: 3\nproviders:\n  - id: openai\n    api_keys: [{value: '${env:LLMGATE_TEST_KEY}'}]\n"), 0o600))
	opts, err := Load(path)
	require.NoError(t, err)
	gw, err := gateway.New(opts...)
	require.NoError(t, err)
	require.Equal(t, []string{"openai"}, gw.Providers())
	require.NoError(t, gw.Close())

	// Problems of the file and of gateway.New, together, with the file's
	// name, paths and lines.
	require.NoError(t, os.WriteFile(path, []byte(`
total_timeout: forever
providers:
  - id: openai
    default_model: no-such-model
`), 0o600))
	_, err = Load(path)
	require.Error(t, err)
	msg := err.Error()
	require.Contains(t, msg, path+": invalid configuration (2 problems):")
	require.Contains(t, msg, `total_timeout: "forever" is not a duration`)
	require.Contains(t, msg, `providers[0].default_model: default_model "no-such-model" is not a model of this provider (line 5)`)
	var ce *Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, path, ce.File)

	// Only a gateway problem.
	require.NoError(t, os.WriteFile(path, []byte("only_allow_configured_models: true\n"), 0o600))
	_, err = Load(path)
	require.EqualError(t, err, path+": invalid configuration: only_allow_configured_models: only configured models are allowed but no provider lists any model (line 1)")
	var oe *gateway.OptionError
	require.ErrorAs(t, err, &oe)
	require.Equal(t, "WithOnlyConfiguredModels", oe.Option)

	_, err = Load(filepath.Join(dir, "none.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestREADMEExample keeps the configuration shown in the README's
// Configuration section valid.
func TestREADMEExample(t *testing.T) {
	f, err := Parse(readmeYAML(t, "## Configuration"), mapEnv(map[string]string{"OPENAI_API_KEY": "sk-a"}))
	require.NoError(t, err)
	require.NoError(t, f.Check())
	require.True(t, f.Providers[1].PassThrough)
}

// TestREADMEModelSelection keeps the strategies shown in the README's
// Model selection section valid.
func TestREADMEModelSelection(t *testing.T) {
	f, err := Parse(readmeYAML(t, "## Model selection"), mapEnv(nil))
	require.NoError(t, err)
	require.Len(t, f.ModelSelection.Strategy, 4)
	require.NoError(t, f.Check())
}

// readmeYAML returns the first YAML block of the README's section whose
// heading line is heading ("## Configuration").
func readmeYAML(t *testing.T, heading string) []byte {
	t.Helper()
	data, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	_, text, ok := strings.Cut(string(data), "\n"+heading+"\n")
	require.True(t, ok)
	_, block, ok := strings.Cut(text, "```yaml\n")
	require.True(t, ok)
	block, _, ok = strings.Cut(block, "```")
	require.True(t, ok)
	return []byte(block)
}

// TestREADMEKeysExample keeps the README's "Running with keys" file
// valid.
func TestREADMEKeysExample(t *testing.T) {
	f, err := Parse(readmeYAML(t, "### Running with keys"), mapEnv(map[string]string{
		"LLMGATE_KEK":         "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"LLMGATE_ADMIN_TOKEN": "0123456789abcdef0123456789abcdef",
	}))
	require.NoError(t, err)
	require.Equal(t, "prod", f.Endpoint)
	require.Equal(t, "127.0.0.1:9090", f.Admin.Listen)
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/internal/demo"
	"github.com/llmgate/gateway/providers"
)

// mapEnv returns a getenv function over m.
func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// trickySecret has every character that would break YAML if it were
// substituted before parsing.
const trickySecret = `sk-a: b # c 'd' "e" {f} [g] &h *i !j |k >l %m @n` + "`o`"

const fullConfig = `
listen: "127.0.0.1:9999"
per_request_timeout: 45s
total_timeout: 2m
stream_idle_timeout: 30s
only_allow_configured_providers: true
only_allow_configured_models: false
default_models: ["lab:qwen3", "openai:gpt-4o-mini"]
max_request_bytes: 1048576
fail_fast_statuses: [400, 422]
log: {level: debug, format: json}
providers:
  - id: openai
    aliases: [oai]
    api_keys:
      - value: ${env:OPENAI_API_KEY}
        id: primary
      - value: "sk-second"
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

func TestLoadConfigEveryField(t *testing.T) {
	cfg, err := LoadConfig([]byte(fullConfig), mapEnv(fullEnv("http://127.0.0.1:1/v1/")))
	require.NoError(t, err)

	require.Equal(t, "127.0.0.1:9999", cfg.ListenAddr())
	require.Equal(t, 45*time.Second, *cfg.PerRequestTimeout)
	require.Equal(t, 2*time.Minute, *cfg.TotalTimeout)
	require.Equal(t, 30*time.Second, *cfg.StreamIdleTimeout)
	require.True(t, cfg.OnlyAllowConfiguredProviders)
	require.False(t, cfg.OnlyAllowConfiguredModels)
	require.Equal(t, []string{"lab:qwen3", "openai:gpt-4o-mini"}, cfg.DefaultModels)
	require.EqualValues(t, 1<<20, *cfg.MaxRequestBytes)
	require.Equal(t, []int{400, 422}, cfg.FailFastStatuses)
	require.Equal(t, LogConfig{Level: "debug", Format: "json"}, cfg.Log)
	require.Len(t, cfg.Providers, 3)

	oai := cfg.Providers[0]
	require.Equal(t, "openai", oai.ID)
	require.Equal(t, []string{"oai"}, oai.Aliases)
	require.Equal(t, []APIKeyConfig{
		{Value: providers.Secret(trickySecret), ID: "primary"},
		{Value: "sk-second"},
	}, oai.APIKeys)
	require.Equal(t, trickySecret, oai.APIKeys[0].Value.Reveal(), "expanded after parsing, byte for byte")
	require.NotNil(t, oai.StreamUsage)
	require.False(t, *oai.StreamUsage)
	require.Equal(t, "gpt-4o-mini", oai.DefaultModel)
	require.Equal(t, map[string]any{"tier": "premium"}, oai.Models[0].Metadata)

	lab := cfg.Providers[1]
	require.Equal(t, ProviderConfig{
		ID:           "lab",
		BaseURL:      "http://127.0.0.1:1/v1/",
		Format:       "openai",
		Surfaces:     []string{"chat-completions", "embeddings"},
		APIKeys:      []APIKeyConfig{{Value: "lab-key-123"}},
		Headers:      map[string]string{"X-Custom": "v-eu"},
		QueryParams:  map[string]string{"api-version": "2024-10-21"},
		AuthHeader:   "api-key",
		DefaultModel: "qwen3",
		Models: []ModelConfig{{
			ID: "qwen3", Aliases: []string{"qwen"}, Author: "alibaba", DisplayName: "Qwen 3",
			ContextWindow: 128000, MaxOutputTokens: 16384,
			InputModalities: []string{"text", "image"}, OutputModalities: []string{"text"},
			Features: []string{"tool-calling"},
			Metadata: map[string]any{"tier": "cheap", "owner": "ml-team", "gpus": 8,
				"nested": map[string]any{"list": []any{1, "eu"}}},
			Pricing: PricingConfig{Input: 2500000, Output: 10000000, CacheRead: 1250000},
		}},
	}, lab)
	require.True(t, cfg.Providers[2].Disabled)

	// The options build a gateway with the configured catalog.
	gw, err := gateway.New(cfg.Options()...)
	require.NoError(t, err)
	defer gw.Close()
	p, ok := gw.Catalog().Provider("lab")
	require.True(t, ok)
	require.Equal(t, []providers.Surface{"chat-completions", "embeddings"}, p.Surfaces)
	m, ok := p.Model("qwen")
	require.True(t, ok)
	require.Equal(t, catalog.Pricing{Input: 2500000, Output: 10000000, CacheRead: 1250000}, m.Pricing)
	require.Equal(t, 128000, m.ContextWindow)
	require.Equal(t, "Qwen 3", m.DisplayName)
	_, ok = gw.Catalog().Provider("oai")
	require.True(t, ok, "alias")
	_, ok = gw.Catalog().Provider("anthropic")
	require.False(t, ok, "disabled")
}

// TestConfigReachesUpstream sends a request through a gateway built from a
// configuration and checks what the upstream received: the key in the
// configured auth header, extra headers and query parameters.
func TestConfigReachesUpstream(t *testing.T) {
	var mu sync.Mutex
	var got *http.Request
	up := demo.New(demo.Options{StreamDelay: -1})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Clone(context.Background())
		mu.Unlock()
		r.URL.Path = "/openai" + r.URL.Path
		up.ServeHTTP(w, r)
	}))
	defer srv.Close()

	cfg, err := LoadConfig([]byte(fullConfig), mapEnv(fullEnv(srv.URL+"/v1/")))
	require.NoError(t, err)
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	gw, err := gateway.New(append(cfg.Options(), gateway.WithHTTPClient(hc), gateway.WithLogger(slog.New(slog.DiscardHandler)))...)
	require.NoError(t, err)
	defer gw.Close()

	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions",
		strings.NewReader(`{"model":"lab:qwen","messages":[{"role":"user","content":"hi lab"}]}`))
	req.Header.Set("Content-Type", "application/json")
	gw.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), demo.Reply("hi lab"))
	require.Equal(t, "lab:qwen3", rec.Header().Get(gateway.HeaderModel))

	mu.Lock()
	defer mu.Unlock()
	require.NotNil(t, got)
	require.Equal(t, "/v1/chat/completions", got.URL.Path)
	require.Equal(t, "lab-key-123", got.Header.Get("Api-Key"))
	require.Empty(t, got.Header.Get("Authorization"))
	require.Equal(t, "v-eu", got.Header.Get("X-Custom"))
	require.Equal(t, "2024-10-21", got.URL.Query().Get("api-version"))
}

func TestLoadConfigEmpty(t *testing.T) {
	for _, doc := range []string{"", "# only a comment\n", "{}"} {
		cfg, err := LoadConfig([]byte(doc), mapEnv(nil))
		require.NoError(t, err, "%q", doc)
		require.Equal(t, DefaultListen, cfg.ListenAddr())
		gw, err := gateway.New(cfg.Options()...)
		require.NoError(t, err, "an empty configuration is pass-through mode with the full catalog")
		require.NoError(t, gw.Close())
	}
}

func TestLoadConfigEnvExpansion(t *testing.T) {
	env := mapEnv(map[string]string{"A": "alpha", "B": "beta", "N": "2048", "T": "90s", "YES": "true"})
	cfg, err := LoadConfig([]byte(`
listen: "${env:A}.local:80${env:B}"
per_request_timeout: ${env:T}
max_request_bytes: ${env:N}
only_allow_configured_models: ${env:YES}
providers:
  - id: openai
    headers: {X-Both: "${env:A}/${env:B}", X-Literal: "$HOME ${not-env} $${env"}
    models: [{id: gpt-4o}]
`), env)
	// listen is not a valid host:port once expanded; everything else is.
	require.Error(t, err)
	require.Equal(t, "alpha.local:80beta", cfg.Listen)
	require.Equal(t, 90*time.Second, *cfg.PerRequestTimeout)
	require.EqualValues(t, 2048, *cfg.MaxRequestBytes)
	require.True(t, cfg.OnlyAllowConfiguredModels)
	require.Equal(t, map[string]string{"X-Both": "alpha/beta", "X-Literal": "$HOME ${not-env} $${env"}, cfg.Providers[0].Headers)
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	require.Len(t, ce.Problems, 1)
	require.Contains(t, ce.Problems[0].Error(), `listen: "${env:A}.local:80${env:B}" is not a host:port address`)
}

func TestLoadConfigErrors(t *testing.T) {
	env := mapEnv(map[string]string{"NL": "a\nb", "SET": "x"})
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"unknown top-level field", "listen_addr: x", `listen_addr: unknown field; did you mean "listen"? (line 1)`},
		{"unknown nested field", "providers:\n  - id: openai\n    api_key: sk", `providers[0].api_key: unknown field; did you mean "api_keys"? (line 3)`},
		{"unknown field, no suggestion", "providers:\n  - id: openai\n    models: [{id: m, weight: 3}]", `providers[0].models[0].weight: unknown field (line 3)`},
		{"unset variable", "providers:\n  - id: openai\n  - id: groq\n    api_keys:\n      - value: ${env:GROQ_KEY}", `providers[1].api_keys[0].value: ${env:GROQ_KEY} is not set (line 5)`},
		{"unset variable in a map", "providers:\n  - id: openai\n    headers: {X-A: '${env:NOPE}'}", `providers[0].headers.X-A: ${env:NOPE} is not set`},
		{"unset variable in metadata", "providers:\n  - id: openai\n    models: [{id: m, metadata: {a: [x, '${env:NOPE}']}}]", `providers[0].models[0].metadata.a[1]: ${env:NOPE} is not set`},
		{"unterminated reference", "listen: '${env:SET'", `listen: unterminated ${env:...} reference`},
		{"invalid variable name", "listen: '${env:1X}'", `listen: ${env:1X} is not a valid variable reference`},
		{"bad duration", `per_request_timeout: "3 minutes"`, `per_request_timeout: "3 minutes" is not a duration`},
		{"duration as a list", `total_timeout: [3m]`, `total_timeout: expected a duration, got a list`},
		{"zero duration", `stream_idle_timeout: 0s`, `stream_idle_timeout: must be positive, got 0s`},
		{"negative duration", `total_timeout: -1m`, `total_timeout: must be positive, got -1m0s`},
		{"per request above total", `per_request_timeout: 10m`, `per_request_timeout: 10m0s exceeds total_timeout 6m0s`},
		{"total below per request", `total_timeout: 1m`, `total_timeout: 1m0s is less than per_request_timeout 3m0s`},
		{"bad boolean", `only_allow_configured_models: maybe`, `only_allow_configured_models: "maybe" is not a boolean`},
		{"bad integer", `max_request_bytes: big`, `max_request_bytes: "big" is not an integer`},
		{"non-positive integer", `max_request_bytes: 0`, `max_request_bytes: must be positive, got 0`},
		{"bad status", `fail_fast_statuses: [400, 302]`, `fail_fast_statuses[1]: 302 is not a 4xx or 5xx status`},
		{"status not an integer", `fail_fast_statuses: [four]`, `fail_fast_statuses[0]: "four" is not an integer`},
		{"empty default model", `default_models: [""]`, `default_models[0]: is empty`},
		{"bad listen", `listen: "8080"`, `listen: "8080" is not a host:port address`},
		{"bad log level", `log: {level: loud}`, `log.level: "loud" is not one of debug, info, warn, error`},
		{"bad log format", `log: {format: xml}`, `log.format: "xml" is not one of text, json`},
		{"providers not a list", "providers: {id: openai}", `providers: expected a list, got a mapping`},
		{"provider not a mapping", "providers: [openai]", `providers[0]: expected a mapping, got a scalar`},
		{"missing id", "providers:\n  - base_url: https://x/v1/", `providers[0].id: is required (line 2)`},
		{"id with colon", "providers: [{id: 'a:b'}]", `providers[0].id: "a:b" must not contain`},
		{"duplicate id", "providers:\n  - id: openai\n  - id: OpenAI", `providers[1].id: "OpenAI" is already configured by providers[0]`},
		{"bad format", "providers:\n  - id: x\n    base_url: https://x/v1/\n    format: grpc", `providers[0].format: "grpc" is not one of openai, anthropic`},
		{"bad surface", "providers: [{id: openai, surfaces: [chat-completions, completions]}]", `providers[0].surfaces[1]: "completions" is not one of chat-completions, responses, embeddings, messages`},
		{"bad base_url", "providers: [{id: x, base_url: 'localhost:11434'}]", `providers[0].base_url: "localhost:11434" is not an absolute http:// or https:// URL`},
		{"missing key value", "providers: [{id: openai, api_keys: [{id: a}]}]", `providers[0].api_keys[0].value: is required`},
		{"duplicate key id", "providers: [{id: openai, api_keys: [{value: a, id: k}, {value: b, id: k}]}]", `providers[0].api_keys[1].id: "k" is already used by api_keys[0]`},
		{"duplicate implicit key id", "providers: [{id: openai, api_keys: [{value: a, id: key-2}, {value: b}]}]", `providers[0].api_keys[1].id: "key-2" is already used by api_keys[0]`},
		{"reserved key id", "providers: [{id: openai, api_keys: [{value: a, id: client}]}]", `providers[0].api_keys[0].id: "client" is reserved`},
		{"bad header name", "providers: [{id: openai, headers: {'X Bad': v}}]", `providers[0].headers.X Bad: "X Bad" is not a valid header name`},
		{"header value with a newline", "providers: [{id: openai, headers: {X-A: '${env:NL}'}}]", `providers[0].headers.X-A: header values must not contain line breaks`},
		{"bad auth header", "providers: [{id: openai, auth_header: 'api key'}]", `providers[0].auth_header: "api key" is not a valid header name`},
		{"empty alias", "providers: [{id: openai, aliases: ['']}]", `providers[0].aliases[0]: is empty`},
		{"model without id", "providers: [{id: openai, models: [{author: me}]}]", `providers[0].models[0].id: is required`},
		{"negative price", "providers: [{id: openai, models: [{id: m, pricing: {output: -1}}]}]", `providers[0].models[0].pricing.output: must not be negative, got -1`},
		{"negative context window", "providers: [{id: openai, models: [{id: m, context_window: -5}]}]", `providers[0].models[0].context_window: must not be negative, got -5`},
		{"bad modality", "providers: [{id: openai, models: [{id: m, input_modalities: [text, smell]}]}]", `providers[0].models[0].input_modalities[1]: "smell" is not one of text, image, audio, video, file, embedding`},
		{"stream_usage not a bool", "providers: [{id: openai, stream_usage: sometimes}]", `providers[0].stream_usage: "sometimes" is not a boolean`},
		{"top level not a mapping", "- a\n- b", `expected a mapping, got a list`},
		{"yaml syntax", "listen: [", `yaml:`},
		{"two documents", "listen: a:1\n---\nlisten: b:2", `exactly one YAML document`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig([]byte(tt.yaml), env)
			require.Error(t, err)
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			require.Len(t, ce.Problems, 1, err.Error())
			require.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestLoadConfigAllErrorsAtOnce(t *testing.T) {
	_, err := LoadConfig([]byte(`
per_request_timeout: "3 minutes"
providers:
  - id: openai
    api_keys: [{value: "${env:MISSING_A}"}]
    colour: blue
  - id: custom
    format: grpc
    base_url: https://custom.example/v1/
    api_keys: [{value: "${env:MISSING_B}"}]
fail_fast_statuses: [200]
log: {level: chatty}
`), mapEnv(nil))
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	want := []string{
		`per_request_timeout: "3 minutes" is not a duration (use Go syntax such as 90s, 3m or 1h30m) (line 2)`,
		`providers[0].api_keys[0].value: ${env:MISSING_A} is not set (line 5)`,
		`providers[0].colour: unknown field (line 6)`,
		`providers[1].format: "grpc" is not one of openai, anthropic (line 8)`,
		`providers[1].api_keys[0].value: ${env:MISSING_B} is not set (line 10)`,
		`fail_fast_statuses[0]: 200 is not a 4xx or 5xx status (line 11)`,
		`log.level: "chatty" is not one of debug, info, warn, error (line 12)`,
	}
	got := make([]string, len(ce.Problems))
	for i, p := range ce.Problems {
		got[i] = p.Error()
	}
	require.Equal(t, want, got)
	require.True(t, strings.HasPrefix(err.Error(), "invalid configuration (7 problems):\n  per_request_timeout:"), err.Error())
}

// TestSecretsNeverPrinted puts a secret where it does not belong and checks
// that no error and no formatting of the Config shows it.
func TestSecretsNeverPrinted(t *testing.T) {
	const secret = "sk-topsecret-0123456789"
	env := mapEnv(map[string]string{"KEY": secret})
	cfg, err := LoadConfig([]byte(`
listen: ${env:KEY}
per_request_timeout: ${env:KEY}
log: {level: "${env:KEY}"}
providers:
  - id: openai
    format: ${env:KEY}
    auth_header: "${env:KEY} x"
    surfaces: ["${env:KEY}"]
    api_keys: [{value: "${env:KEY}", id: "${env:KEY}"}, {value: "${env:KEY}", id: "${env:KEY}"}]
    models: [{id: m, input_modalities: ["${env:KEY}"]}]
`), env)
	require.Error(t, err)
	require.NotContains(t, err.Error(), secret)
	require.NotContains(t, err.Error(), "topsecret")
	require.Contains(t, err.Error(), "${env:KEY}")
	require.NotNil(t, cfg)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		v := cfg.Providers[0].APIKeys[0].Value
		require.Equal(t, secret, v.Reveal())
		require.NotContains(t, fmt.Sprintf(verb, v), "topsecret", verb)
		require.NotContains(t, fmt.Sprintf(verb, APIKeyConfig{Value: v}), "topsecret", verb)
	}
}

// TestGatewayErrorsReportedToo checks that problems only gateway.New finds
// are reported along with the field problems.
func TestGatewayErrorsReportedToo(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "llmgate.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
total_timeout: forever
providers:
  - id: openai
    default_model: no-such-model
`), 0o600))
	_, err := setupConfig(path, mapEnv(nil), io.Discard)
	require.Error(t, err)
	msg := err.Error()
	require.Contains(t, msg, path+": invalid configuration: total_timeout: \"forever\" is not a duration")
	require.Contains(t, msg, "with the invalid fields above left out, llmgate: invalid configuration:")
	require.Contains(t, msg, "no-such-model")
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, path, ce.File)

	// Only a gateway problem.
	require.NoError(t, os.WriteFile(path, []byte("only_allow_configured_models: true\n"), 0o600))
	_, err = setupConfig(path, mapEnv(nil), io.Discard)
	require.Error(t, err)
	require.False(t, errors.As(err, &ce))
	require.Contains(t, err.Error(), "no provider lists any model")
}

func TestNewLogger(t *testing.T) {
	var b strings.Builder
	l := newLogger(LogConfig{Level: "warn", Format: "json"}, &b)
	l.Info("hidden")
	l.Warn("shown")
	require.NotContains(t, b.String(), "hidden")
	require.Contains(t, b.String(), `"msg":"shown"`)

	b.Reset()
	l = newLogger(LogConfig{}, &b)
	l.Debug("hidden")
	l.Info("shown")
	require.Equal(t, 1, strings.Count(b.String(), "\n"))
	require.Contains(t, b.String(), "msg=shown")
}

// TestExampleConfig keeps llmgate.example.yaml valid.
func TestExampleConfig(t *testing.T) {
	data, err := os.ReadFile("llmgate.example.yaml")
	require.NoError(t, err)
	_, err = LoadConfig(data, mapEnv(nil))
	require.ErrorContains(t, err, "${env:OPENAI_API_KEY} is not set", "variables are required")

	cfg, err := LoadConfig(data, mapEnv(map[string]string{"OPENAI_API_KEY": "a", "ANTHROPIC_API_KEY": "b", "AZURE_OPENAI_KEY": "c"}))
	require.NoError(t, err)
	gw, err := gateway.New(cfg.Options()...)
	require.NoError(t, err)
	require.NoError(t, gw.Close())
}

func TestLoadConfigAnchorsAndMerge(t *testing.T) {
	cfg, err := LoadConfig([]byte(`
x-common: &common
  headers: {X-Team: ml, X-Env: prod}
  query_params: {a: "1"}
providers:
  - id: lab-a
    base_url: https://a.example/v1/
    <<: *common
  - id: lab-b
    headers: {X-Team: other}
    base_url: https://b.example/v1/
    <<: *common
    query_params:
      <<: {a: "2", b: "3"}
      b: "4"
`), mapEnv(nil))
	// x-common is not a field: the anchor must live somewhere, and
	// unknown fields are errors, so it is reported.
	require.ErrorContains(t, err, "x-common: unknown field")
	require.Equal(t, map[string]string{"X-Team": "ml", "X-Env": "prod"}, cfg.Providers[0].Headers)
	require.Equal(t, map[string]string{"a": "1"}, cfg.Providers[0].QueryParams)
	// Explicit keys replace merged ones as a whole, wherever the merge key is.
	require.Equal(t, map[string]string{"X-Team": "other"}, cfg.Providers[1].Headers)
	require.Equal(t, map[string]string{"a": "2", "b": "4"}, cfg.Providers[1].QueryParams)

	cfg, err = LoadConfig([]byte(`
providers:
  - &base
    id: openai
    api_keys: [{value: k}]
  - <<: *base
    id: lab
    base_url: https://lab.example/v1/
    models: [{id: m, metadata: {<<: {a: 1, b: 2}, b: 3}}]
`), mapEnv(nil))
	require.NoError(t, err)
	require.Equal(t, map[string]any{"a": 1, "b": 3}, cfg.Providers[1].Models[0].Metadata)
	require.Equal(t, "lab", cfg.Providers[1].ID)
	require.Equal(t, []APIKeyConfig{{Value: "k"}}, cfg.Providers[1].APIKeys)
}

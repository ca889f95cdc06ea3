package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	gateway "github.com/llmgate/gateway"
)

// TestCheckErrors lists problems gateway.New finds, placed in the file.
func TestCheckErrors(t *testing.T) {
	env := mapEnv(map[string]string{"NL": "a\nb"})
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"zero duration", `stream_idle_timeout: 0s`, `stream_idle_timeout: must be positive, got 0s (line 1)`},
		{"negative duration", "per_request_timeout: 1m\ntotal_timeout: -1m", `total_timeout: must be positive, got -1m0s (line 2)`},
		{"per request above total", `per_request_timeout: 10m`, `per_request_timeout: per-attempt timeout 10m0s exceeds total timeout 6m0s (line 1)`},
		{"total below per request", `total_timeout: 1m`, `total_timeout: per-attempt timeout 3m0s exceeds total timeout 1m0s (line 1)`},
		{"zero body read timeout", "write_timeout: 5s\nbody_read_timeout: 0s", `body_read_timeout: must be positive, got 0s (line 2)`},
		{"zero write timeout", "write_timeout: 0s", `write_timeout: must be positive, got 0s (line 1)`},
		{"negative keep-alive", `stream_keep_alive: -1s`, `stream_keep_alive: must not be negative, got -1s (line 1)`},
		{"non-positive integer", `max_request_bytes: 0`, `max_request_bytes: must be positive, got 0 (line 1)`},
		{"non-positive response limit", `max_response_bytes: -1`, `max_response_bytes: must be positive, got -1 (line 1)`},
		{"small event limit", `max_event_bytes: 10`, `max_event_bytes: must be at least 1024, got 10 (line 1)`},
		{"negative holdback", "stream_holdback:\n  events: 3\n  bytes: -1", `stream_holdback.bytes: must not be negative, got -1 (line 3)`},
		{"negative cooldown", "key_cooldowns:\n  rate_limit: -1s", `key_cooldowns.rate_limit: durations must not be negative, got -1s (line 2)`},
		{"max models", `max_models: 0`, `max_models: must be at least 1, got 0 (line 1)`},
		{"max attempts", `max_attempts: -2`, `max_attempts: must be at least 1, got -2 (line 1)`},
		{"bad status", `fail_fast_statuses: [400, 302]`, `fail_fast_statuses[1]: 302 is not a 4xx or 5xx status (line 1)`},
		{"empty default model", `default_models: [""]`, `default_models[0]: empty model name (line 1)`},
		{"unknown default model", "default_models:\n  - gpt-4o\n  - nosuch", `default_models[1]: default model "nosuch": `},
		{"bad origin", `cors_origins: [example.com]`, `cors_origins[0]: origin "example.com" must be "*" or scheme://host[:port] (line 1)`},
		{"bad forwarded header", `forward_headers: [Authorization]`, `forward_headers[0]: Authorization is never forwarded (line 1)`},
		{"bad host", `allowed_hosts: ["localhost:8080"]`, `allowed_hosts[0]: "localhost:8080" is not a host name or IP address`},
		{"models required", `only_allow_configured_models: true`, `only_allow_configured_models: only configured models are allowed but no provider lists any model (line 1)`},
		{"providers required", `only_allow_configured_providers: true`, `only_allow_configured_providers: only configured providers are allowed but no provider is configured (line 1)`},
		{"missing id", "providers:\n  - base_url: https://x/v1/", `providers[0].id: provider ID is empty (line 2)`},
		{"id with colon", "providers: [{id: 'a:b', base_url: 'https://x/v1/'}]", `providers[0].id: id "a:b": contains ':' (line 1)`},
		{"duplicate id", "providers:\n  - id: openai\n  - id: OpenAI", `providers[1].id: provider configured twice (line 3)`},
		{"duplicate id by alias", "providers:\n  - id: open-ai\n  - id: openai", `providers[1].id: provider spec 1: provider already configured by spec 0 (line 3)`},
		{"bad format", "providers:\n  - id: openai\n    format: grpc", `providers[0].format: unknown format "grpc" (line 3)`},
		{"bad surface", "providers: [{id: openai, surfaces: [chat-completions, completions]}]", `providers[0].surfaces[1]: unknown surface "completions" (line 1)`},
		{"bad base_url", "providers:\n  - id: x\n    base_url: 'localhost:11434'", `providers[0].base_url: base URL "localhost:11434": scheme must be http or https`},
		{"missing key value", "providers:\n  - id: openai\n    api_keys:\n      - id: a", `providers[0].api_keys[0].value: key 1 has an empty value (line 4)`},
		{"duplicate key id", "providers:\n  - id: openai\n    api_keys:\n      - {value: a, id: k}\n      - {value: b, id: k}", `providers[0].api_keys[1].id: key ID "k" used twice (line 5)`},
		{"duplicate implicit key id", "providers: [{id: openai, api_keys: [{value: a, id: key-2}, {value: b}]}]", `providers[0].api_keys[1].id: key ID "key-2" used twice (line 1)`},
		{"reserved key id", "providers: [{id: openai, api_keys: [{value: a, id: client}]}]", `providers[0].api_keys[0].id: key ID "client" is reserved`},
		{"bad header name", "providers: [{id: openai, headers: {'X Bad': v}}]", `providers[0]: openai: header name "X Bad" is not a valid token (line 1)`},
		{"header value with a newline", "providers: [{id: openai, headers: {X-A: '${env:NL}'}}]", `providers[0]: openai: header "X-A" has a value with control characters (line 1)`},
		{"bad auth header", "providers: [{id: anthropic, auth_header: 'api key'}]", `providers[0]: anthropic: auth header "api key" is not a valid header name (line 1)`},
		{"empty alias", "providers:\n  - id: openai\n    aliases: ['']", `providers[0].aliases[0]: alias "": empty (line 3)`},
		{"model without id", "providers:\n  - id: openai\n    models:\n      - author: me", `providers[0].models[0].id: id "": empty (line 4)`},
		{"negative price", "providers:\n  - id: openai\n    models:\n      - id: m\n      - id: n\n        pricing: {output: -1}", `providers[0].models[1].pricing.output: model "n": negative output price -1 (line 6)`},
		{"duplicate model", "providers:\n  - id: lab\n    base_url: https://lab/v1/\n    models:\n      - id: m\n      - id: M", `providers[0].models[1].id: model "M" is listed twice (also Models[0]) (line 6)`},
		{"bad model strategy", "model_selection:\n  strategy:\n    - ai.models\n    - ai.models.filter(m, m.nope)", `model_selection.strategy[1]: strategy 1 "ai.models.filter(m, m.nope)" at 1:`},
		{"bad key strategy", "api_key_selection:\n  strategy: [round_robin, ai.keys]", `api_key_selection.strategy[0]: built-in key selection "round_robin" must be the only entry (line 2)`},
		{"bad provider key strategy", "providers:\n  - id: openai\n    api_key_selection:\n      strategy: ['ai.keys.filter(k, k.x)']", `providers[0].api_key_selection.strategy[0]: strategy 0`},
		{"negative key weight", "providers:\n  - id: openai\n    api_keys:\n      - {value: a, weight: -1}", `providers[0].api_keys[0].weight: key weight -1 is negative (line 4)`},
		{"bad redaction rule", "redaction:\n  rules:\n    - preset: email\n    - {from: 'x*'}", `redaction.rules[1]: redaction: rule 1 (rule 1): pattern matches the empty string (line 4)`},
		{"unknown redaction preset", "redaction:\n  rules:\n    - preset: passport", `redaction.rules[0]: redaction: rule 0 (passport): unknown preset "passport"`},
		{"unknown default model of a provider", "providers:\n  - id: openai\n    default_model: nope", `providers[0].default_model: default_model "nope" is not a model of this provider (line 3)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse([]byte(tt.yaml), env)
			require.NoError(t, err, "a problem for gateway.New, not for Parse")
			err = f.Check()
			require.Error(t, err)
			var ce *Error
			require.ErrorAs(t, err, &ce)
			// One place; gateway.New may describe it twice (its own rules
			// and the catalog's), and adds "no API surfaces" to a bad
			// format.
			places := map[string]bool{}
			for _, p := range ce.Problems {
				if !strings.Contains(p.Error(), "no API surfaces") {
					places[p.Path] = true
				}
			}
			require.Len(t, places, 1, err.Error())
			require.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestCheckAllErrorsAtOnce(t *testing.T) {
	f, err := Parse([]byte(`
per_request_timeout: "3 minutes"
providers:
  - id: openai
    api_keys: [{value: "${env:MISSING_A}"}]
    colour: blue
  - id: custom
    format: grpc
    base_url: https://custom.example/v1/
    api_keys: [{value: "${env:MISSING_B}"}, {value: b, id: key-1}]
fail_fast_statuses: [200]
log: {level: chatty}
`), mapEnv(nil))
	var ce *Error
	require.ErrorAs(t, err, &ce)
	require.Len(t, ce.Problems, 5, "Parse's own problems")

	err = f.Check()
	require.ErrorAs(t, err, &ce)
	want := []string{
		`per_request_timeout: "3 minutes" is not a duration (use Go syntax such as 90s, 3m or 1h30m) (line 2)`,
		`providers[0].api_keys[0].value: ${env:MISSING_A} is not set (line 5)`,
		`providers[0].colour: unknown field (line 6)`,
		`providers[1].format: unknown format "grpc" (line 8)`,
		`providers[1].api_keys[0].value: ${env:MISSING_B} is not set (line 10)`,
		`providers[1].api_keys[1].id: key ID "key-1" used twice (line 10)`,
		`fail_fast_statuses[0]: 200 is not a 4xx or 5xx status (line 11)`,
		`log.level: "chatty" is not one of debug, info, warn, error (line 12)`,
	}
	var got []string
	for _, p := range ce.Problems {
		if !strings.Contains(p.Error(), "no API surfaces") && !strings.Contains(p.Error(), "(want ") { // the catalog's echoes of the bad format
			got = append(got, p.Error())
		}
	}
	require.Equal(t, want, got)
	require.True(t, strings.HasPrefix(err.Error(), fmt.Sprintf("invalid configuration (%d problems):\n  per_request_timeout:", len(ce.Problems))), err.Error())

	// The problems of New keep their *gateway.OptionError.
	var oe *gateway.OptionError
	require.ErrorAs(t, err, &oe)
	require.Equal(t, "WithProvider", oe.Option)
	require.Equal(t, "custom", oe.Provider)
}

// TestSecretsNeverPrinted puts a secret where it does not belong and checks
// that no error and no formatting of the File shows it.
func TestSecretsNeverPrinted(t *testing.T) {
	const secret = "sk-topsecret-0123456789"
	env := mapEnv(map[string]string{"KEY": secret})
	cfg, err := Parse([]byte(`
listen: ${env:KEY}
per_request_timeout: ${env:KEY}
log: {level: "${env:KEY}"}
pass_through: ${env:KEY}
cors_origins: ["${env:KEY}"]
providers:
  - id: openai
    format: ${env:KEY}
    auth_header: "${env:KEY} x"
    surfaces: ["${env:KEY}"]
    headers: {"X-A": "${env:KEY}\u0001"}
    api_keys: [{value: "${env:KEY}", id: "${env:KEY}"}, {value: "${env:KEY}", id: "${env:KEY}"}]
    models: [{id: m, input_modalities: ["${env:KEY}"]}]
  - id: ${env:KEY}
    base_url: ${env:KEY}
`), env)
	require.Error(t, err)
	require.NotNil(t, cfg)
	err = cfg.Check()
	require.Error(t, err)
	require.Greater(t, strings.Count(err.Error(), "\n"), 8, err.Error())
	require.NotContains(t, err.Error(), secret)
	require.NotContains(t, err.Error(), "topsecret")
	require.Contains(t, err.Error(), "${env:KEY}")
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		v := cfg.Providers[0].APIKeys[0].Value
		require.Equal(t, secret, v.Reveal())
		require.NotContains(t, fmt.Sprintf(verb, v), "topsecret", verb)
		require.NotContains(t, fmt.Sprintf(verb, APIKey{Value: v}), "topsecret", verb)
	}
}

// TestExplainReload places the problems of Gateway.Reload, with options of
// the host appended.
func TestExplainReload(t *testing.T) {
	f, err := Parse([]byte("providers:\n  - id: openai\n    api_keys: [{value: a}]\n"), mapEnv(nil))
	require.NoError(t, err)
	gw, err := gateway.New(f.Options()...)
	require.NoError(t, f.Explain(err))
	defer gw.Close()

	g, err := Parse([]byte("max_attempts: 2\nproviders:\n  - id: openai\n    api_keys:\n      - value: a\n      - value: b\n        id: key-1\n"), mapEnv(nil))
	require.NoError(t, err)
	err = g.Explain(gw.Reload(append(g.Options(), gateway.WithMaxModels(0))...))
	require.EqualError(t, err, "invalid configuration (2 problems):\n"+
		"  providers[0].api_keys[1].id: key ID \"key-1\" used twice (line 7)\n"+
		"  WithMaxModels: must be at least 1, got 0")
	require.Equal(t, []string{"openai"}, gw.Providers(), "the configuration is kept")

	require.NoError(t, g.Explain(nil))
	other := errors.New("llmgate: reload of a closed gateway")
	require.EqualError(t, g.Explain(other), "invalid configuration: llmgate: reload of a closed gateway")
	require.ErrorIs(t, g.Explain(other), other)
}

// TestExplainSameID places the problems of entries that share an ID.
func TestExplainSameID(t *testing.T) {
	f, err := Parse([]byte(`
providers:
  - id: lab
    base_url: https://a/v1/
    api_keys: [{value: ""}]
  - id: lab
    base_url: https://b/v1/
    api_keys: [{value: ""}]
  - id: lab
    base_url: https://c/v1/
`), mapEnv(nil))
	require.NoError(t, err)
	var got []string
	var ce *Error
	require.ErrorAs(t, f.Check(), &ce)
	for _, p := range ce.Problems {
		got = append(got, p.Error())
	}
	require.Subset(t, got, []string{
		"providers[0].api_keys[0].value: key 1 has an empty value (line 5)",
		"providers[1].id: provider configured twice (line 6)",
		"providers[1].api_keys[0].value: key 1 has an empty value (line 8)",
		"providers[2].id: provider configured twice (line 9)",
	})
}

func TestYAMLPath(t *testing.T) {
	for in, want := range map[string]string{
		"ID":                        "id",
		"BaseURL":                   "base_url",
		"Keys[1].Value":             "api_keys[1].value",
		"Keys[0].ID":                "api_keys[0].id",
		"Models[2].ID":              "models[2].id",
		"Models[0].Pricing.Input":   "models[0].pricing.input",
		"Models[3].MaxOutputTokens": "models[3].max_output_tokens",
		"QueryParams":               "query_params",
		`Headers["X-A"]`:            "headers.X-A",
		"Surfaces[1]":               "surfaces[1]",
		"StreamUsage":               "stream_usage",
		"PassThrough":               "pass_through",
	} {
		require.Equal(t, want, yamlPath(in), in)
	}
}

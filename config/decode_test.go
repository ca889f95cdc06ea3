package config

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseEnvExpansion(t *testing.T) {
	env := mapEnv(map[string]string{"A": "alpha", "B": "beta", "N": "2048", "T": "90s", "YES": "true"})
	cfg, err := Parse([]byte(`
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
	var ce *Error
	require.ErrorAs(t, err, &ce)
	require.Len(t, ce.Problems, 1)
	require.Contains(t, ce.Problems[0].Error(), `listen: "${env:A}.local:80${env:B}" is not a host:port address`)
}

// TestParseErrors lists the problems Parse itself finds: those of the YAML
// and of the fields no gateway option takes.
func TestParseErrors(t *testing.T) {
	env := mapEnv(map[string]string{"NL": "a\nb", "SET": "x"})
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"unknown top-level field", "listen_addr: x", `listen_addr: unknown field; did you mean "listen"? (line 1)`},
		{"unknown nested field", "providers:\n  - id: openai\n    api_key: sk", `providers[0].api_key: unknown field; did you mean "api_keys"? (line 3)`},
		{"unknown field, no suggestion", "providers:\n  - id: openai\n    models: [{id: m, weight: 3}]", `providers[0].models[0].weight: unknown field (line 3)`},
		{"unknown holdback field", "stream_holdback: {event: 3}", `stream_holdback.event: unknown field; did you mean "events"? (line 1)`},
		{"unset variable", "providers:\n  - id: openai\n  - id: groq\n    api_keys:\n      - value: ${env:GROQ_KEY}", `providers[1].api_keys[0].value: ${env:GROQ_KEY} is not set (line 5)`},
		{"unset variable in a map", "providers:\n  - id: openai\n    headers: {X-A: '${env:NOPE}'}", `providers[0].headers.X-A: ${env:NOPE} is not set`},
		{"unset variable in metadata", "providers:\n  - id: openai\n    models: [{id: m, metadata: {a: [x, '${env:NOPE}']}}]", `providers[0].models[0].metadata.a[1]: ${env:NOPE} is not set`},
		{"unset variable of an enabled provider", "providers:\n  - id: groq\n    disabled: false\n    api_keys: [{value: '${env:NOPE}'}]", `providers[0].api_keys[0].value: ${env:NOPE} is not set (line 4)`},
		{"unterminated reference", "listen: '${env:SET'", `listen: unterminated ${env:...} reference`},
		{"invalid variable name", "listen: '${env:1X}'", `listen: ${env:1X} is not a valid variable reference`},
		{"bad duration", `per_request_timeout: "3 minutes"`, `per_request_timeout: "3 minutes" is not a duration`},
		{"duration as a list", `total_timeout: [3m]`, `total_timeout: expected a duration, got a list`},
		{"bad cooldown", `key_cooldowns: {auth: soon}`, `key_cooldowns.auth: "soon" is not a duration`},
		{"bad boolean", `only_allow_configured_models: maybe`, `only_allow_configured_models: "maybe" is not a boolean`},
		{"bad integer", `max_request_bytes: big`, `max_request_bytes: "big" is not an integer`},
		{"status not an integer", `fail_fast_statuses: [four]`, `fail_fast_statuses[0]: "four" is not an integer`},
		{"list as a string", `allowed_hosts: localhost`, `allowed_hosts: expected a list, got a scalar`},
		{"bad listen", `listen: "8080"`, `listen: "8080" is not a host:port address`},
		{"bad max_connections", `max_connections: 0`, `max_connections: must be at least 1, got 0`},
		{"bad log level", `log: {level: loud}`, `log.level: "loud" is not one of debug, info, warn, error`},
		{"bad log format", `log: {format: xml}`, `log.format: "xml" is not one of text, json`},
		{"bad redaction mode", "redaction:\n  mode: sometimes\n  rules: [{preset: email}]", `redaction.mode: "sometimes" is not one of across_chunks, per_chunk (line 2)`},
		{"bad pass-through mode", `pass_through: sometimes`, `pass_through: "sometimes" is not one of scoped, off, any (line 1)`},
		{"star among hosts", `allowed_hosts: [localhost, "*"]`, `allowed_hosts[1]: "*" (every host) must be the only entry`},
		{"providers not a list", "providers: {id: openai}", `providers: expected a list, got a mapping`},
		{"provider not a mapping", "providers: [openai]", `providers[0]: expected a mapping, got a scalar`},
		{"bad modality", "providers: [{id: openai, models: [{id: m, input_modalities: [text, smell]}]}]", `providers[0].models[0].input_modalities[1]: "smell" is not one of text, image, audio, video, file, embedding`},
		{"stream_usage not a bool", "providers: [{id: openai, stream_usage: sometimes}]", `providers[0].stream_usage: "sometimes" is not a boolean`},
		{"pass_through not a bool", "providers: [{id: lab, pass_through: scoped}]", `providers[0].pass_through: "scoped" is not a boolean`},
		{"top level not a mapping", "- a\n- b", `expected a mapping, got a list`},
		{"yaml syntax", "listen: [", `yaml:`},
		{"two documents", "listen: a:1\n---\nlisten: b:2", `exactly one YAML document`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), env)
			require.Error(t, err)
			var ce *Error
			require.ErrorAs(t, err, &ce)
			require.Len(t, ce.Problems, 1, err.Error())
			require.Contains(t, err.Error(), tt.want)
		})
	}
}

// TestParseDisabledProviderVariables checks that a disabled provider needs
// none of its variables, while its other problems are still reported.
func TestParseDisabledProviderVariables(t *testing.T) {
	f, err := Parse([]byte(`
providers:
  - id: openai
    api_keys: [{value: "${env:OPENAI_KEY}"}]
  - id: azure
    disabled: true
    base_url: ${env:AZURE_URL}
    headers: {X-A: "${env:AZURE_HEADER}"}
    api_keys: [{value: "${env:AZURE_KEY}"}]
`), mapEnv(map[string]string{"OPENAI_KEY": "sk-a"}))
	require.NoError(t, err)
	require.Empty(t, f.Providers[1].APIKeys[0].Value)
	require.NoError(t, f.Check())

	_, err = Parse([]byte(`
providers:
  - id: azure
    disabled: true
    api_keys: [{value: "${env:AZURE_KEY}", colour: blue}]
`), mapEnv(nil))
	require.EqualError(t, err, `invalid configuration: providers[0].api_keys[0].colour: unknown field (line 5)`)
}

func TestParseAnchorsAndMerge(t *testing.T) {
	cfg, err := Parse([]byte(`
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

	cfg, err = Parse([]byte(`
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
	require.Equal(t, []APIKey{{Value: "k"}}, cfg.Providers[1].APIKeys)
}

func TestSuggest(t *testing.T) {
	fields := yamlFields(reflect.TypeFor[File]())
	require.Equal(t, "max_attempts", suggest("max_attempt", fields))
	require.Equal(t, "cors_origins", suggest("CORS_origins", fields))
	require.Equal(t, "", suggest("colour", fields))
	require.True(t, strings.HasPrefix(suggest("stream_hold", fields), "stream_"))
}

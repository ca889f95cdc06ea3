package config

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

const policyYAML = `
request_policy:
  allow:
    embeddings: [dimensions]
providers:
  - id: openai
    base_url: %s
    api_keys: [{value: sk-1}]
    headers: {X-Config: config}
    policy:
      headers: {X-Team: platform}
      query_params: {api-version: "2024"}
      set: {temperature: 0.2, metadata: {tier: [gold, 1]}}
      deny: [logit_bias]
      max_output_tokens: 4096
    models:
      - id: gpt-4o
        policy:
          headers: {X-Team: research}
          set: {temperature: 0}
          deny: [seed]
          max_output_tokens: 100
`

func TestPolicyFields(t *testing.T) {
	f, err := Parse([]byte(fmt.Sprintf(policyYAML, "http://127.0.0.1:1/v1/")), mapEnv(nil))
	require.NoError(t, err)
	require.Equal(t, map[string][]string{"embeddings": {"dimensions"}}, f.RequestPolicy.Allow)
	pc := f.Providers[0].config()
	require.Equal(t, map[string]string{"X-Team": "platform"}, pc.Policy.Headers)
	require.Equal(t, map[string]string{"api-version": "2024"}, pc.Policy.QueryParams)
	require.Equal(t, map[string]json.RawMessage{"temperature": json.RawMessage("0.2"), "metadata": json.RawMessage(`{"tier":["gold",1]}`)}, pc.Policy.Set)
	require.Equal(t, []string{"logit_bias"}, pc.Policy.Deny)
	require.Equal(t, 4096, pc.Policy.MaxOutputTokens)
	require.Equal(t, map[string]gateway.RequestPolicy{"gpt-4o": {
		Headers: map[string]string{"X-Team": "research"}, Set: map[string]json.RawMessage{"temperature": json.RawMessage("0")},
		Deny: []string{"seed"}, MaxOutputTokens: 100,
	}}, pc.ModelPolicies)
}

// TestPolicyReachesUpstream: the file's policies change what the upstream
// receives.
func TestPolicyReachesUpstream(t *testing.T) {
	up := providertest.Start(t, providers.FormatOpenAI)
	gw := gatewayFor(t, fmt.Sprintf(policyYAML, up.URL), nil)
	for _, tc := range []struct {
		name, body, team, removed string
		want                      map[string]any
	}{
		{"provider", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"temperature":1,"logit_bias":{"1":1},"seed":1}`,
			"platform", "logit_bias", map[string]any{"temperature": 0.2, "seed": 1.0, "max_completion_tokens": 4096.0, "metadata": map[string]any{"tier": []any{"gold", 1.0}}}},
		{"model", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":1,"logit_bias":{"1":1},"seed":1}`,
			"research", "logit_bias, seed", map[string]any{"temperature": 0.0, "max_completion_tokens": 100.0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(gw, http.MethodPost, "/v1/chat/completions", tc.body)
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			require.Equal(t, tc.removed, rec.Header().Get(gateway.HeaderRemovedParams))
			reqs := up.Requests()
			last := reqs[len(reqs)-1]
			require.Equal(t, tc.team, last.Header.Get("X-Team"))
			require.Equal(t, "config", last.Header.Get("X-Config"))
			require.Equal(t, "api-version=2024", last.RawQuery)
			var sent map[string]any
			require.NoError(t, json.Unmarshal(last.Body, &sent))
			for k, v := range tc.want {
				require.Equal(t, v, sent[k], k)
			}
			require.NotContains(t, sent, "logit_bias")
		})
	}
	rec := serve(gw, http.MethodPost, "/v1/embeddings", `{"model":"text-embedding-3-small","input":"x","dimensions":8,"user":"u"}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "user", rec.Header().Get(gateway.HeaderRemovedParams))
}

// TestPolicyErrors: problems with policies are placed at their field and
// line, those of a model's policy under the model's entry.
func TestPolicyErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
		parse            bool // a problem Parse finds
	}{
		{name: "managed header", yaml: "providers:\n  - id: openai\n    policy:\n      headers: {Content-Type: text/plain}",
			want: `providers[0].policy.headers.Content-Type: header Content-Type is managed by the provider and cannot be set (line 4)`},
		{name: "negative clamp", yaml: "providers:\n  - id: openai\n    policy:\n      max_output_tokens: -1",
			want: `providers[0].policy.max_output_tokens: must not be negative, got -1 (line 4)`},
		{name: "deny", yaml: "providers:\n  - id: openai\n    policy:\n      deny:\n        - seed\n        - messages",
			want: `providers[0].policy.deny[1]: messages cannot be denied: the gateway needs it (line 6)`},
		{name: "empty query name", yaml: "providers:\n  - id: openai\n    policy:\n      query_params: {'': v}",
			want: `providers[0].policy.query_params: query parameter names must not be empty (line 4)`},
		{name: "model set", yaml: "providers:\n  - id: openai\n    models:\n      - id: gpt-5\n      - id: gpt-4o\n        policy:\n          set:\n            model: x",
			want: `providers[0].models[1].policy.set.model: model cannot be set: the gateway routes on it or bounds the request with it (line 8)`},
		{name: "model clamp", yaml: "providers:\n  - id: openai\n    models:\n      - id: gpt-4o\n        policy: {max_output_tokens: -3}",
			want: `providers[0].models[0].policy.max_output_tokens: must not be negative, got -3 (line 5)`},
		{name: "unknown surface", yaml: "request_policy:\n  allow:\n    chat_completions: [temperature]",
			want: `request_policy.allow.chat_completions: unknown API surface "chat_completions" (want chat-completions, responses, embeddings or messages) (line 3)`},
		{name: "empty parameter", yaml: "request_policy:\n  allow:\n    messages:\n      - temperature\n      - ''",
			want: `request_policy.allow.messages[1]: parameter name is empty (line 5)`},
		{name: "infinite value", parse: true, yaml: "providers:\n  - id: openai\n    policy:\n      set:\n        temperature: .inf",
			want: `providers[0].policy.set.temperature: the value cannot be sent as JSON: json: unsupported value: +Inf (line 5)`},
		{name: "wrong type", parse: true, yaml: "providers:\n  - id: openai\n    policy:\n      deny: seed",
			want: `providers[0].policy.deny: expected a list, got a scalar (line 4)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte(tc.yaml), mapEnv(nil))
			if tc.parse {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
			}
			require.NotNil(t, f)
			err = f.Check()
			var ce *Error
			require.ErrorAs(t, err, &ce)
			var got []string
			for _, p := range ce.Problems {
				got = append(got, p.Error())
			}
			require.Equal(t, []string{tc.want}, got)
		})
	}
}

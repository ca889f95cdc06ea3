package config

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/providers"
)

func TestParseTracing(t *testing.T) {
	tests := []struct {
		name       string
		yaml       string
		want       Tracing
		tracesURL  string
		service    string
		ratio      float64
		wantHeader map[string]string
	}{
		{name: "off", yaml: "listen: 127.0.0.1:8080", service: "llmgate", ratio: 1},
		{name: "endpoint only", yaml: "tracing:\n  otlp_endpoint: http://127.0.0.1:4318",
			want:      Tracing{OTLPEndpoint: "http://127.0.0.1:4318"},
			tracesURL: "http://127.0.0.1:4318/v1/traces", service: "llmgate", ratio: 1},
		{name: "every field", yaml: `
tracing:
  otlp_endpoint: https://collector.example/otlp/
  service_name: gateway-eu
  sample_ratio: 0.25
  headers: {Authorization: "Bearer ${env:OTLP_TOKEN}"}
  public_endpoint: true
`,
			want: Tracing{OTLPEndpoint: "https://collector.example/otlp/", ServiceName: "gateway-eu", SampleRatio: ptr(0.25),
				Headers: map[string]providers.Secret{"Authorization": "Bearer s3cret"}, PublicEndpoint: true},
			tracesURL: "https://collector.example/otlp/v1/traces", service: "gateway-eu", ratio: 0.25,
			wantHeader: map[string]string{"Authorization": "Bearer s3cret"}},
		{name: "ratio zero", yaml: "tracing: {otlp_endpoint: 'http://c:4318', sample_ratio: 0}",
			want: Tracing{OTLPEndpoint: "http://c:4318", SampleRatio: ptr(0.0)}, tracesURL: "http://c:4318/v1/traces", service: "llmgate"},
		{name: "ratio integer", yaml: "tracing: {otlp_endpoint: 'http://c:4318', sample_ratio: 1}",
			want: Tracing{OTLPEndpoint: "http://c:4318", SampleRatio: ptr(1.0)}, tracesURL: "http://c:4318/v1/traces", service: "llmgate", ratio: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse([]byte(tt.yaml), mapEnv(map[string]string{"OTLP_TOKEN": "s3cret"}))
			require.NoError(t, err)
			require.Equal(t, tt.want, f.Tracing)
			require.Equal(t, tt.tracesURL != "", f.Tracing.Enabled())
			require.Equal(t, tt.tracesURL, f.Tracing.TracesURL())
			require.Equal(t, tt.service, f.Tracing.ServiceNameOrDefault())
			require.Equal(t, tt.ratio, f.Tracing.SampleRatioOrDefault())
			require.Equal(t, tt.wantHeader, f.Tracing.HeaderValues())
			require.NotContains(t, fmt.Sprintf("%v %+v", f.Tracing, f.Tracing), "s3cret", "header values print redacted")
			// Tracing is not an option: the caller builds the exporter.
			require.NoError(t, f.Check())
		})
	}
}

// TestParseTracingErrors places every problem of tracing.
func TestParseTracingErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"bad scheme", "tracing:\n  otlp_endpoint: ftp://c.example", `tracing.otlp_endpoint: must be an absolute http or https URL, for example http://127.0.0.1:4318 (line 2)`},
		{"relative", "tracing: {otlp_endpoint: /v1/traces}", `tracing.otlp_endpoint: must be an absolute http or https URL`},
		{"not a url", "tracing: {otlp_endpoint: 'http://c.example:port'}", `tracing.otlp_endpoint: is not a URL (line 1)`},
		{"credentials", "tracing: {otlp_endpoint: 'https://user:s3cret@c.example'}", `tracing.otlp_endpoint: must not hold credentials: send them in tracing.headers`},
		{"query", "tracing: {otlp_endpoint: 'https://c.example/?token=s3cret'}", `tracing.otlp_endpoint: must have no query or fragment`},
		{"ratio above one", "tracing:\n  otlp_endpoint: http://c:4318\n  sample_ratio: 1.5", `tracing.sample_ratio: must be from 0 to 1, got 1.5 (line 3)`},
		{"negative ratio", "tracing: {otlp_endpoint: 'http://c:4318', sample_ratio: -0.1}", `tracing.sample_ratio: must be from 0 to 1, got -0.1`},
		{"ratio not a number", "tracing: {otlp_endpoint: 'http://c:4318', sample_ratio: half}", `tracing.sample_ratio: "half" is not a number (line 1)`},
		{"ratio NaN", "tracing: {otlp_endpoint: 'http://c:4318', sample_ratio: .nan}", `tracing.sample_ratio: ".nan" is not a number`},
		{"fields without endpoint", "tracing:\n  service_name: x", `tracing.service_name: needs tracing.otlp_endpoint (tracing is off without it) (line 2)`},
		{"bad header name", "tracing: {otlp_endpoint: 'http://c:4318', headers: {'a b': s3cret}}", `tracing.headers.a b: "a b" is not a valid header name`},
		{"reserved header", "tracing: {otlp_endpoint: 'http://c:4318', headers: {content-type: s3cret}}", `tracing.headers.content-type: Content-Type is set by the exporter`},
		{"header twice", "tracing:\n  otlp_endpoint: http://c:4318\n  headers:\n    authorization: s3cret\n    Authorization: s3cret", `tracing.headers.authorization: is also headers.Authorization (header names are case-insensitive) (line 4)`},
		{"header control characters", "tracing: {otlp_endpoint: 'http://c:4318', headers: {X-Token: \"s3cret\\nInjected: 1\"}}", `tracing.headers.X-Token: the value must not contain control characters`},
		{"misspelt field", "tracing: {otlp_endpoint: 'http://c:4318', sample_rate: 0.5}", `tracing.sample_rate: unknown field; did you mean "sample_ratio"?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { requireOneProblem(t, tt.yaml, tt.want) })
	}
}

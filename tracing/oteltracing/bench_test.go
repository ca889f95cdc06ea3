package oteltracing_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/providers/providertest"
	"github.com/llmgate/gateway/tracing/oteltracing"
)

// discardExporter drops every span: the benchmark measures the spans'
// recording, not an export.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// BenchmarkTracing measures one JSON chat request through the whole
// handler without a tracer, with a tracer on a nil (no-op) provider, which
// only propagates the context, and with the SDK sampling every request
// and exporting each span as it ends (to nowhere), in the same run:
// compare the sub-benchmarks.
func BenchmarkTracing(b *testing.B) {
	answer := providertest.OpenAIChat("gpt-4o-mini", "Hello! How can I help you today?", providertest.Usage{Input: 25, Output: 9}).Body
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	}))
	b.Cleanup(up.Close)
	transport := &http.Transport{MaxIdleConnsPerHost: 16}
	b.Cleanup(transport.CloseIdleConnections)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSyncer(discardExporter{}))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Tell me something interesting about Go."}]}`)
	for _, tc := range []struct {
		name   string
		tracer gateway.Tracer
	}{
		{"none", nil},
		{"noop", oteltracing.New(nil, oteltracing.Options{})},
		{"sdk", oteltracing.New(tp, oteltracing.Options{})},
	} {
		opts := []gateway.Option{gateway.WithHTTPClient(&http.Client{Transport: transport}),
			gateway.WithProvider(gateway.ProviderConfig{ID: "openai", BaseURL: up.URL + "/v1/", Keys: []gateway.ProviderKey{{Value: "sk-bench"}}})}
		if tc.tracer != nil {
			opts = append(opts, gateway.WithTracer(tc.tracer))
		}
		gw, err := gateway.New(opts...)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = gw.Close() })
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				r.Header.Set("Traceparent", clientTP)
				gw.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}

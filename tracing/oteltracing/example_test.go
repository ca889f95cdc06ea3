package oteltracing_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
	"github.com/llmgate/gateway/tracing/oteltracing"
)

// A gateway traced with the OpenTelemetry SDK: a request whose first
// upstream attempt fails has a span, and a child span per attempt. A
// real host exports with sdktrace.WithBatcher and an OTLP exporter, and
// shuts the provider down on exit.
func Example() {
	upstream := providertest.NewServer(providers.FormatOpenAI) // a fake OpenAI API
	defer upstream.Close()
	upstream.Enqueue(providertest.Error(providers.FormatOpenAI, 503, "overloaded"),
		providertest.OpenAIChat("gpt-4o", "Hello!", providertest.Usage{Input: 9, Output: 2}))

	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())

	gw, err := gateway.New(
		gateway.WithProvider(gateway.ProviderConfig{ID: "openai", BaseURL: upstream.URL,
			Keys: []gateway.ProviderKey{{ID: "primary", Value: "sk-1"}, {ID: "backup", Value: "sk-2"}}}),
		gateway.WithTracer(oteltracing.New(tp, oteltracing.Options{})),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer gw.Close()

	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	gw.ServeHTTP(httptest.NewRecorder(), r)

	for _, s := range exp.GetSpans() { // in the order they ended
		status := "ok"
		for _, kv := range s.Attributes {
			if kv.Key == "error.type" {
				status = "error.type=" + kv.Value.AsString()
			}
		}
		fmt.Printf("%-6s %-12s trace %s  %s\n", s.SpanKind, s.Name, s.SpanContext.TraceID(), status)
	}
	// Output:
	// client chat gpt-4o  trace 4bf92f3577b34da6a3ce929d0e0e4736  error.type=503
	// client chat gpt-4o  trace 4bf92f3577b34da6a3ce929d0e0e4736  ok
	// server chat gpt-4o  trace 4bf92f3577b34da6a3ce929d0e0e4736  ok
}

package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/tracing/oteltracing"
)

// tracingCloseTimeout bounds the flush of the spans still queued at
// shutdown.
const tracingCloseTimeout = eventsCloseTimeout

// exportTimeout bounds one export request (OTLP's default).
const exportTimeout = 10 * time.Second

// openTracing builds the file's tracing, when it has some: an OTLP/HTTP
// exporter behind a batch span processor, in a TracerProvider that is
// shut down (flushing what it queued, for at most tracingCloseTimeout)
// after the gateway. The tracer is kept across reloads.
func (s *server) openTracing() error {
	t := &s.file.Tracing
	if !t.Enabled() {
		return nil
	}
	// A client of its own, whose idle connections shutdown closes.
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: exportTimeout}
	exp, err := otlptracehttp.New(context.Background(),
		otlptracehttp.WithEndpointURL(t.TracesURL()),
		otlptracehttp.WithHeaders(t.HeaderValues()),
		otlptracehttp.WithHTTPClient(hc))
	if err != nil {
		// The URL was checked: this is not expected. Its text could hold
		// the URL, which is not secret (credentials are refused).
		return fmt.Errorf("%s: tracing: %w", s.path, err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", t.ServiceNameOrDefault()),
		attribute.String("service.version", buildVersion()))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(loggingExporter{SpanExporter: exp, logger: s.logger}),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(t.SampleRatioOrDefault()))),
	)
	s.tracer = oteltracing.New(tp, oteltracing.Options{PublicEndpoint: t.PublicEndpoint})
	s.closes = append(s.closes, func() {
		ctx, cancel := context.WithTimeout(context.Background(), tracingCloseTimeout)
		defer cancel()
		if err := tp.Shutdown(ctx); err != nil {
			s.logger.Warn("tracing: flushing the last spans failed", "err", err)
		}
		hc.CloseIdleConnections()
	})
	return nil
}

// loggingExporter logs the failures of the exporter it wraps (a
// collector down or refusing) in the server's log, and reports none to the
// span processor, which would hand them to OpenTelemetry's global error
// handler (the standard logger).
type loggingExporter struct {
	sdktrace.SpanExporter
	logger *slog.Logger
}

// ExportSpans exports spans, logging a failure.
func (e loggingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if err := e.SpanExporter.ExportSpans(ctx, spans); err != nil {
		e.logger.Warn("tracing: exporting spans failed; they are dropped", "spans", len(spans), "err", err)
	}
	return nil
}

// tracerOptions returns gateway.WithTracer with the tracer built at start,
// if any.
func (s *server) tracerOptions() []gateway.Option {
	if s.tracer == nil {
		return nil
	}
	return []gateway.Option{gateway.WithTracer(s.tracer)}
}

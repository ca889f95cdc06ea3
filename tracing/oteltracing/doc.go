// Package oteltracing traces an llmgate gateway's requests with
// OpenTelemetry. It is the only part of llmgate that imports the
// OpenTelemetry API: a host that does not import it pays nothing for it.
//
// A [Tracer] is a gateway.Tracer built on the host's trace.TracerProvider:
//
//	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter))
//	defer tp.Shutdown(ctx)
//	gw, err := gateway.New(..., gateway.WithTracer(oteltracing.New(tp, oteltracing.Options{})))
//
// # Spans
//
// Every client request gets a span of kind SERVER. Its parent is the
// client's span, extracted from the request's headers by the propagator
// (W3C traceparent and tracestate by default; see Options.Propagator), unless
// Options.PublicEndpoint makes it a new root linked to the client's. Its
// name follows the OpenTelemetry semantic conventions for generative AI,
// "{gen_ai.operation.name} {gen_ai.request.model}" (for example
// "chat gpt-4o"), and falls back to the HTTP method and route ("GET
// /v1/models", or the method alone for a path with no route) when the
// request names no model.
//
// Every upstream attempt sent gets a child span of kind CLIENT, named
// "{gen_ai.operation.name} {upstream model}". The attempt's propagation
// headers are sent upstream with it, so the upstream sees the attempt's
// span as its parent, in the client's trace. Candidates skipped without a
// request (a key cooling down, a translation refused, ...) are events
// named "llmgate.candidate_skipped" on the request's span.
//
// gen_ai.operation.name is "chat" for chat completions, messages and
// responses, "embeddings" for embeddings (as in package
// metrics/prommetrics).
//
// # Attributes
//
// The request's span:
//
//	gen_ai.operation.name, gen_ai.request.model (the first model the client named),
//	gen_ai.request.stream, gen_ai.provider.name and gen_ai.response.model (the
//	provider and upstream model that answered), gen_ai.usage.input_tokens,
//	gen_ai.usage.output_tokens, gen_ai.usage.cache_read.input_tokens,
//	gen_ai.usage.cache_creation.input_tokens (the provider's usage, when reported),
//	http.request.method, http.route, url.path, http.response.status_code,
//	error.type (the gateway's stable error code, on failure),
//	llmgate.request_id, llmgate.attempts (upstream requests sent),
//	llmgate.served_by ("provider:model"), llmgate.principal.key_id,
//	llmgate.principal.account
//
// An attempt's span:
//
//	gen_ai.operation.name, gen_ai.provider.name, gen_ai.request.model (the
//	upstream model), gen_ai.request.stream, server.address, server.port,
//	http.response.status_code, error.type (the upstream status of an HTTP
//	error, such as "429", else the attempt's error class, such as "timeout"),
//	llmgate.key_id, llmgate.key_source, llmgate.translated, and on the attempt
//	that answered gen_ai.response.model and the gen_ai.usage.* counts
//
// A failed request or attempt has status Error, with the gateway's
// message (secrets removed, as in its events); a successful one leaves
// the status unset, as the conventions ask. No attribute holds a secret,
// a credential, a request or response body, or a query string: only what
// the gateway's events hold.
//
// # Cost
//
// A request costs its two spans (one per attempt beyond the first) and
// their attributes, in the host's TracerProvider; a gateway without a
// tracer calls nothing. BenchmarkTracing measures a request with and
// without an SDK TracerProvider that samples everything.
package oteltracing

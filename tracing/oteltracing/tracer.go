package oteltracing

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/tokens"
)

// ScopeName is the instrumentation scope of the spans: the name the
// Tracer asks its TracerProvider for.
const ScopeName = "github.com/llmgate/gateway/tracing/oteltracing"

// maxStatusDescription bounds the length of a span's status description
// (the gateway's error message), in bytes.
const maxStatusDescription = 512

// maxPath bounds the length of url.path, in bytes: a path with no route
// is the client's to choose.
const maxPath = 1024

// Attribute keys: the OpenTelemetry semantic conventions' (HTTP, server
// and generative AI), and llmgate's own.
const (
	keyOperation       = attribute.Key("gen_ai.operation.name")
	keyProvider        = attribute.Key("gen_ai.provider.name")
	keyRequestModel    = attribute.Key("gen_ai.request.model")
	keyResponseModel   = attribute.Key("gen_ai.response.model")
	keyStream          = attribute.Key("gen_ai.request.stream")
	keyInputTokens     = attribute.Key("gen_ai.usage.input_tokens")
	keyOutputTokens    = attribute.Key("gen_ai.usage.output_tokens")
	keyCacheRead       = attribute.Key("gen_ai.usage.cache_read.input_tokens")
	keyCacheCreation   = attribute.Key("gen_ai.usage.cache_creation.input_tokens")
	keyMethod          = attribute.Key("http.request.method")
	keyRoute           = attribute.Key("http.route")
	keyPath            = attribute.Key("url.path")
	keyStatus          = attribute.Key("http.response.status_code")
	keyErrorType       = attribute.Key("error.type")
	keyServerAddress   = attribute.Key("server.address")
	keyServerPort      = attribute.Key("server.port")
	keyRequestID       = attribute.Key("llmgate.request_id")
	keyAttempts        = attribute.Key("llmgate.attempts")
	keyServedBy        = attribute.Key("llmgate.served_by")
	keyPrincipalKeyID  = attribute.Key("llmgate.principal.key_id")
	keyAccount         = attribute.Key("llmgate.principal.account")
	keyKeyID           = attribute.Key("llmgate.key_id")
	keyKeySource       = attribute.Key("llmgate.key_source")
	keyTranslated      = attribute.Key("llmgate.translated")
	keySkipReason      = attribute.Key("llmgate.skip.reason")
	keySkipDetail      = attribute.Key("llmgate.skip.detail")
	eventSkipped       = "llmgate.candidate_skipped"
	operationChat      = "chat"
	operationEmbedding = "embeddings"
)

// Options configures a Tracer. The zero value is ready to use.
type Options struct {
	// Propagator extracts the client's trace context from the request's
	// headers and injects each attempt's into the headers sent upstream.
	// Default: W3C Trace Context alone (propagation.TraceContext). The
	// client's W3C Baggage is not sent on by default: the upstreams are
	// often third parties, and baggage is whatever a client put in it; a
	// host that wants it forwarded sets
	// propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}).
	Propagator propagation.TextMapPropagator
	// PublicEndpoint starts every request's span as a new trace, with a
	// link to the client's span, instead of as its child: for clients that
	// are not trusted to choose the trace ID or the sampling decision (a
	// gateway on the internet). The upstreams then see the gateway's trace.
	PublicEndpoint bool
	// OmitSkipped leaves out the "llmgate.candidate_skipped" events of the
	// candidates passed over without a request. Default: recorded.
	OmitSkipped bool
}

// Tracer is a gateway.Tracer that records requests as OpenTelemetry
// spans. Create it with New; it is safe for concurrent use.
type Tracer struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	opts   Options
}

var _ gateway.Tracer = (*Tracer)(nil)

// New returns a Tracer whose spans come from tp's tracer named ScopeName.
// A nil tp uses a no-op provider: the trace context is still propagated
// upstream, but no span is recorded.
func New(tp trace.TracerProvider, o Options) *Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	prop := o.Propagator
	if prop == nil {
		prop = propagation.TraceContext{}
	}
	return &Tracer{tracer: tp.Tracer(ScopeName), prop: prop, opts: o}
}

// StartRequest starts the span of a client request, of kind SERVER, as a
// child of the client's span (see Options.PublicEndpoint), and returns
// the context that carries it. Part of gateway.Tracer.
func (t *Tracer) StartRequest(ctx context.Context, r *http.Request) (context.Context, gateway.RequestSpan) {
	ctx = t.prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
	method := methodOf(r.Method)
	route := routeOf(r.URL.EscapedPath())
	name := method
	if route != "" {
		name = method + " " + route
	}
	attrs := make([]attribute.KeyValue, 0, 3)
	attrs = append(attrs, keyMethod.String(method), keyPath.String(truncate(r.URL.Path, maxPath)))
	if route != "" {
		attrs = append(attrs, keyRoute.String(route))
	}
	opts := make([]trace.SpanStartOption, 0, 4)
	opts = append(opts, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	if t.opts.PublicEndpoint {
		opts = append(opts, trace.WithNewRoot())
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
		}
	}
	ctx, span := t.tracer.Start(ctx, name, opts...)
	return ctx, &requestSpan{t: t, span: span}
}

// requestSpan is the span of one client request.
type requestSpan struct {
	t    *Tracer
	span trace.Span
}

// StartAttempt starts the span of an upstream attempt, of kind CLIENT, as
// a child of the request's span, and injects its context into the
// headers sent upstream. Part of gateway.RequestSpan.
func (s *requestSpan) StartAttempt(ctx context.Context, as *gateway.AttemptStart) (context.Context, gateway.AttemptSpan) {
	a := as.Attempt
	op := operationOf(as.Surface)
	attrs := make([]attribute.KeyValue, 0, 9)
	if op != "" {
		attrs = append(attrs, keyOperation.String(op))
	}
	attrs = append(attrs, keyProvider.String(a.Provider), keyRequestModel.String(a.Model), keyStream.Bool(as.Stream),
		keyTranslated.Bool(a.Translated))
	if as.ServerAddress != "" {
		attrs = append(attrs, keyServerAddress.String(as.ServerAddress))
		if as.ServerPort > 0 {
			attrs = append(attrs, keyServerPort.Int(as.ServerPort))
		}
	}
	if a.KeyID != "" {
		attrs = append(attrs, keyKeyID.String(a.KeyID))
	}
	if a.KeySource != "" {
		attrs = append(attrs, keyKeySource.String(a.KeySource))
	}
	name := a.Model
	if op != "" {
		name = op + " " + a.Model
	}
	ctx, span := s.t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	s.t.prop.Inject(ctx, propagation.HeaderCarrier(as.Header))
	return ctx, attemptSpan{span}
}

// End records the request's outcome (see the package documentation) and
// ends its span. Part of gateway.RequestSpan.
func (s *requestSpan) End(e *gateway.Event) {
	span := s.span
	if !span.IsRecording() {
		span.End()
		return
	}
	attrs := make([]attribute.KeyValue, 0, 16)
	attrs = append(attrs, keyRequestID.String(e.RequestID), keyStatus.Int(e.Status))
	op := operationOf(e.Surface)
	if op != "" {
		attrs = append(attrs, keyOperation.String(op), keyStream.Bool(e.Stream), keyAttempts.Int(sent(e.Attempts)))
		if len(e.RequestedModels) > 0 {
			model := e.RequestedModels[0]
			attrs = append(attrs, keyRequestModel.String(model))
			span.SetName(op + " " + model)
		}
	}
	if provider, model, ok := strings.Cut(e.ServedBy, ":"); ok {
		attrs = append(attrs, keyProvider.String(provider), keyResponseModel.String(model), keyServedBy.String(e.ServedBy))
	}
	if e.UsageReported {
		attrs = appendUsage(attrs, &e.Usage)
	}
	if p := e.Principal; p != nil {
		if p.KeyID != "" {
			attrs = append(attrs, keyPrincipalKeyID.String(p.KeyID))
		}
		if p.Account != "" {
			attrs = append(attrs, keyAccount.String(p.Account))
		}
	}
	if e.Err != nil {
		attrs = append(attrs, keyErrorType.String(e.Err.Code()))
		span.SetStatus(codes.Error, truncate(e.Err.Message, maxStatusDescription))
	}
	span.SetAttributes(attrs...)
	if !s.t.opts.OmitSkipped {
		for i := range e.Attempts {
			if a := &e.Attempts[i]; a.Skipped {
				span.AddEvent(eventSkipped, trace.WithAttributes(keyProvider.String(a.Provider), keyRequestModel.String(a.Model),
					keySkipReason.String(string(a.Error)), keySkipDetail.String(a.Reason)))
			}
		}
	}
	span.End()
}

// attemptSpan is the span of one upstream attempt.
type attemptSpan struct{ span trace.Span }

// End records the attempt's outcome (see the package documentation) and
// ends its span. Part of gateway.AttemptSpan.
func (s attemptSpan) End(a *gateway.Attempt, u *tokens.Usage) {
	span := s.span
	if !span.IsRecording() {
		span.End()
		return
	}
	attrs := make([]attribute.KeyValue, 0, 8)
	if a.Status != 0 {
		attrs = append(attrs, keyStatus.Int(a.Status))
	}
	if a.Error != gateway.AttemptOK {
		attrs = append(attrs, keyErrorType.String(attemptErrorType(a)))
		msg := a.Reason
		if msg == "" {
			msg = string(a.Error)
		}
		span.SetStatus(codes.Error, truncate(msg, maxStatusDescription))
	} else if a.Status >= 200 && a.Status < 300 {
		attrs = append(attrs, keyResponseModel.String(a.Model))
	}
	if u != nil {
		attrs = appendUsage(attrs, u)
	}
	span.SetAttributes(attrs...)
	span.End()
}

// attemptErrorType is an attempt's error.type: the upstream status of an
// HTTP error, as the HTTP conventions ask (and as package
// metrics/prommetrics labels it), else the attempt's error class.
func attemptErrorType(a *gateway.Attempt) string {
	if a.Error == gateway.AttemptStatus && a.Status != 0 {
		return strconv.Itoa(a.Status)
	}
	return string(a.Error)
}

// appendUsage appends the gen_ai.usage.* attributes of u; the cache counts
// only when not zero.
func appendUsage(attrs []attribute.KeyValue, u *tokens.Usage) []attribute.KeyValue {
	attrs = append(attrs, keyInputTokens.Int64(u.InputTokens), keyOutputTokens.Int64(u.OutputTokens))
	if u.CacheReadTokens != 0 {
		attrs = append(attrs, keyCacheRead.Int64(u.CacheReadTokens))
	}
	if u.CacheWriteTokens != 0 {
		attrs = append(attrs, keyCacheCreation.Int64(u.CacheWriteTokens))
	}
	return attrs
}

// operationOf is the gen_ai.operation.name of a surface, "" for none.
func operationOf(s providers.Surface) string {
	switch s {
	case providers.SurfaceChatCompletions, providers.SurfaceMessages, providers.SurfaceResponses:
		return operationChat
	case providers.SurfaceEmbeddings:
		return operationEmbedding
	}
	return ""
}

// routeOf returns the gateway route a path matches, "" for none.
func routeOf(path string) string {
	switch path {
	case "/v1/chat/completions", "/v1/messages", "/v1/responses", "/v1/embeddings", "/v1/models":
		return path
	}
	if id, ok := strings.CutPrefix(path, "/v1/models/"); ok && id != "" {
		return "/v1/models/{id}"
	}
	return ""
}

// methodOf returns the HTTP method as the conventions record it: a known
// method, or "_OTHER", so that a client cannot put what it likes in the
// span's name.
func methodOf(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete,
		http.MethodConnect, http.MethodOptions, http.MethodTrace, http.MethodPatch:
		return m
	}
	return "_OTHER"
}

// sent counts the attempts sent upstream.
func sent(as []gateway.Attempt) int {
	n := 0
	for i := range as {
		if !as[i].Skipped {
			n++
		}
	}
	return n
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

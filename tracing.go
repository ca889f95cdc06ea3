package gateway

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/tokens"
)

// Tracer traces requests: one span per client request and one per
// upstream attempt, for a tracing system of the host's choice (package
// tracing/oteltracing adapts OpenTelemetry; the gateway itself imports no
// tracing library). Set it with WithTracer; without one the gateway makes
// no call and no allocation for tracing.
//
// Implementations must be safe for concurrent use: every request calls
// StartRequest on its own goroutine.
type Tracer interface {
	// StartRequest is called once per client request as it arrives, before
	// authentication or routing. The context it returns becomes the
	// request's context (http.Request.Context) for the rest of the request:
	// the attempts' contexts derive from it, so spans a host's transport
	// starts for upstream calls nest under it, and event sinks see it. It
	// must derive from ctx (the request's own), and the returned RequestSpan
	// must not be nil. r must not be modified and must not be kept.
	StartRequest(ctx context.Context, r *http.Request) (context.Context, RequestSpan)
}

// RequestSpan is the span of one client request, from its arrival to the
// end of its response. Its methods are called on the request's goroutine,
// never concurrently.
type RequestSpan interface {
	// StartAttempt is called just before an upstream attempt is sent (not
	// for candidates skipped without a request: those are in the Event's
	// Attempts, with Skipped set). ctx is the attempt's context; the
	// context StartAttempt returns, which must derive from it, is the one
	// the attempt is sent with. The returned AttemptSpan must not be nil.
	StartAttempt(ctx context.Context, a *AttemptStart) (context.Context, AttemptSpan)
	// End is called exactly once, after the response is complete and the
	// request's credits are settled, whatever happened to it (success,
	// error, disconnect, panic), with the request's complete Event. e is
	// shared with the event sinks: it must not be modified or kept after
	// End returns.
	End(e *Event)
}

// AttemptSpan is the span of one upstream attempt.
type AttemptSpan interface {
	// End is called exactly once, when the attempt is over: its answer
	// relayed or its failure recorded. a is the attempt as recorded in the
	// Event (status, error class, durations). u is the usage the provider
	// reported, non-nil only for the attempt that answered the client and
	// when usage is known. Neither may be modified or kept.
	End(a *Attempt, u *tokens.Usage)
}

// AttemptStart describes an upstream attempt about to be sent, for
// RequestSpan.StartAttempt. It holds no secret.
type AttemptStart struct {
	// Attempt has the provider, the upstream model, the key's ID and
	// source, Translated and Start filled in; the rest is known only at
	// AttemptSpan.End.
	Attempt *Attempt
	// Surface is the upstream API surface the attempt calls (the client's,
	// or the one a translation calls instead).
	Surface providers.Surface
	// Stream reports whether the attempt asks for a stream.
	Stream bool
	// ServerAddress and ServerPort are the upstream's host and port, when
	// the provider tells its URL (the built-in providers do); "" and 0
	// otherwise.
	ServerAddress string
	ServerPort    int
	// Header receives the trace propagation headers to send upstream with
	// the attempt (for example W3C traceparent and tracestate): the
	// built-in providers send every header set in it (see
	// providers.Request.TraceHeader). It starts empty.
	Header http.Header
}

// WithTracer traces every request with t (see Tracer). Default: none.
// Last one wins.
func WithTracer(t Tracer) Option {
	return optionFunc(func(c *config) error {
		if t == nil {
			return optErr("WithTracer", "tracer is nil")
		}
		c.tracer = t
		return nil
	})
}

// startTrace starts the request's span, when a tracer is set, and makes
// its context the request's.
func (c *call) startTrace() {
	if c.cfg.tracer == nil {
		return
	}
	ctx, span := c.cfg.tracer.StartRequest(c.r.Context(), c.r)
	if ctx != nil && ctx != c.r.Context() {
		c.r = c.r.WithContext(ctx)
	}
	c.span = span
}

// startAttemptSpan starts the span of an attempt about to be sent with
// req, sets the propagation headers the tracer injects in req.TraceHeader
// and returns the attempt's context; span is nil without a tracer.
func (c *call) startAttemptSpan(ctx context.Context, a *Attempt, p *prepared, req *providers.Request) (context.Context, AttemptSpan) {
	if c.span == nil {
		return ctx, nil
	}
	as := &AttemptStart{Attempt: a, Surface: p.route.surface, Stream: c.parsed.stream, Header: make(http.Header, 2)}
	addr := p.cand.up.address(p.route.surface)
	as.ServerAddress, as.ServerPort = addr.host, addr.port
	actx, span := c.span.StartAttempt(ctx, as)
	if actx == nil {
		actx = ctx
	}
	if len(as.Header) > 0 {
		req.TraceHeader = as.Header
	}
	return actx, span
}

// hostPort is an upstream's address; zero when unknown.
type hostPort struct {
	host string
	port int
}

// address returns the host and port the upstream serves surface s at,
// parsed once per upstream.
func (up *upstream) address(s providers.Surface) hostPort {
	up.addrOnce.Do(func() {
		up.addrs = make(map[providers.Surface]hostPort, len(up.surfaces))
		for _, x := range up.surfaces {
			host, port := upstreamAddress(up.impl, x)
			up.addrs[x] = hostPort{host, port}
		}
	})
	return up.addrs[s]
}

// upstreamAddress returns the host and port of the URL a provider sends
// surface s to, when it tells it: the built-in OpenAI provider has
// URL(providers.Surface), the Anthropic one URL(). The port is the URL's,
// or the scheme's default.
func upstreamAddress(impl providers.Provider, s providers.Surface) (string, int) {
	var raw string
	switch p := impl.(type) {
	case interface {
		URL(providers.Surface) string
	}:
		raw = p.URL(s)
	case interface{ URL() string }:
		raw = p.URL()
	default:
		return "", 0
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", 0
	}
	port, _ := strconv.Atoi(u.Port())
	switch {
	case port != 0:
	case u.Scheme == "https":
		port = 443
	case u.Scheme == "http":
		port = 80
	}
	return u.Hostname(), port
}

package config

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/llmgate/gateway/internal/httpx"
	"github.com/llmgate/gateway/providers"
)

// DefaultServiceName is the default of tracing.service_name.
const DefaultServiceName = "llmgate"

// Tracing is tracing: OpenTelemetry traces of every request, sent over
// OTLP/HTTP (package tracing/oteltracing). Options ignores it: this
// package imports no OpenTelemetry module; the caller builds the
// exporter and the TracerProvider and adds gateway.WithTracer
// (cmd/llmgate does). Tracing is off unless OTLPEndpoint is set.
type Tracing struct {
	// OTLPEndpoint is the base URL of the OTLP/HTTP receiver, http or
	// https, for example "http://127.0.0.1:4318": spans are POSTed to its
	// path followed by /v1/traces (see TracesURL). It must hold no
	// credentials (use Headers), query or fragment.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// ServiceName is the service.name of the spans' resource; ""
	// means DefaultServiceName.
	ServiceName string `yaml:"service_name"`
	// SampleRatio is the share of new traces recorded, from 0 to 1; nil
	// means 1. A request whose client sent a trace context follows the
	// client's sampling decision (unless PublicEndpoint).
	SampleRatio *float64 `yaml:"sample_ratio"`
	// Headers are sent with every export request (for example a
	// collector's token); their values are never printed.
	Headers map[string]providers.Secret `yaml:"headers"`
	// PublicEndpoint starts a new trace for every request, linked to the
	// client's span instead of joining its trace
	// (oteltracing.Options.PublicEndpoint): for clients that are not
	// trusted to choose trace IDs and sampling.
	PublicEndpoint bool `yaml:"public_endpoint"`
}

// Enabled reports whether the file turns tracing on.
func (t *Tracing) Enabled() bool { return t.OTLPEndpoint != "" }

// ServiceNameOrDefault returns service_name, or DefaultServiceName.
func (t *Tracing) ServiceNameOrDefault() string {
	if t.ServiceName != "" {
		return t.ServiceName
	}
	return DefaultServiceName
}

// SampleRatioOrDefault returns sample_ratio, or 1.
func (t *Tracing) SampleRatioOrDefault() float64 {
	if t.SampleRatio != nil {
		return *t.SampleRatio
	}
	return 1
}

// TracesURL returns the URL spans are sent to: OTLPEndpoint with
// /v1/traces appended to its path, as OTEL_EXPORTER_OTLP_ENDPOINT is
// read; "" when tracing is off or the endpoint is not a valid URL.
func (t *Tracing) TracesURL() string {
	u, problem := parseOTLPEndpoint(t.OTLPEndpoint)
	if problem != "" {
		return ""
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	u.RawPath = ""
	return u.String()
}

// HeaderValues returns Headers with their values revealed, for the
// exporter; nil when there are none.
func (t *Tracing) HeaderValues() map[string]string {
	if len(t.Headers) == 0 {
		return nil
	}
	out := make(map[string]string, len(t.Headers))
	for k, v := range t.Headers {
		out[k] = v.Reveal()
	}
	return out
}

// parseOTLPEndpoint checks an otlp_endpoint and returns it parsed, or the
// problem (which never repeats the URL).
func parseOTLPEndpoint(raw string) (*url.URL, string) {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return nil, "is required"
	case err != nil:
		return nil, "is not a URL"
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return nil, "must be an absolute http or https URL, for example http://127.0.0.1:4318"
	case u.User != nil:
		return nil, "must not hold credentials: send them in tracing.headers"
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, "must have no query or fragment"
	}
	return u, ""
}

// checkTracing applies the rules of tracing.
func (d *decoder) checkTracing(f *File) {
	t := &f.Tracing
	if d.bad["tracing"] {
		return
	}
	if !t.Enabled() {
		for _, name := range []string{"service_name", "sample_ratio", "headers", "public_endpoint"} {
			if _, set := d.lines["tracing."+name]; set && !d.bad["tracing.otlp_endpoint"] {
				d.failAt("tracing."+name, "needs tracing.otlp_endpoint (tracing is off without it)")
			}
		}
	} else if _, problem := parseOTLPEndpoint(t.OTLPEndpoint); problem != "" && !d.bad["tracing.otlp_endpoint"] {
		d.failAt("tracing.otlp_endpoint", "%s", problem)
	}
	if r := t.SampleRatio; r != nil && !(*r >= 0 && *r <= 1) && !d.bad["tracing.sample_ratio"] {
		d.failAt("tracing.sample_ratio", "must be from 0 to 1, got %v", *r)
	}
	names := map[string]string{} // canonical → as written
	for _, name := range slices.Sorted(maps.Keys(t.Headers)) {
		hp := "tracing.headers." + name
		canon := http.CanonicalHeaderKey(name)
		switch other, dup := names[canon]; {
		case d.bad[hp]:
		case dup:
			d.failAt(hp, "is also headers.%s (header names are case-insensitive)", other)
		case !httpx.ValidHeaderName(name):
			d.failAt(hp, "%q is not a valid header name", name)
		case httpx.Reserved(canon):
			d.failAt(hp, "%s is set by the exporter", canon)
		case !httpx.ValidHeaderValue(t.Headers[name].Reveal()):
			d.failAt(hp, "the value must not contain control characters")
		}
		names[canon] = name
	}
}

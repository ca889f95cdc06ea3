// Package providers defines the contract between the gateway and an upstream
// model API, in the spirit of net/http.RoundTripper and database/sql/driver:
// a Provider is a thin transport that sends one prepared request with one
// credential and hands back the raw response. It does not retry, fail over,
// parse bodies or translate formats; the gateway does all of that.
//
// Implementations live in subpackages: providers/openai serves every
// OpenAI-compatible API (OpenAI, Google's OpenAI endpoint, Groq, DeepSeek,
// OpenRouter, Ollama, vLLM, Azure-style deployments, ...) and
// providers/anthropic serves the Anthropic Messages API. The package
// providers/providertest holds a scripted fake upstream and a conformance
// suite that any custom Provider can run.
//
// This package imports nothing else from llmgate, so custom providers depend
// only on it.
package providers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Format is a wire format: the JSON shapes a request and response use.
type Format string

// The wire formats llmgate speaks.
const (
	// FormatOpenAI is OpenAI's API family: chat completions, responses,
	// embeddings, with Bearer authentication.
	FormatOpenAI Format = "openai"
	// FormatAnthropic is Anthropic's Messages API, with x-api-key
	// authentication.
	FormatAnthropic Format = "anthropic"
)

// Valid reports whether f is one of the known formats.
func (f Format) Valid() bool { return f == FormatOpenAI || f == FormatAnthropic }

// Surface is one API operation of a wire format, such as OpenAI chat
// completions. The client's request path decides the surface.
type Surface string

// The surfaces llmgate serves.
const (
	// SurfaceChatCompletions is POST /v1/chat/completions (OpenAI format).
	SurfaceChatCompletions Surface = "chat-completions"
	// SurfaceResponses is POST /v1/responses (OpenAI format).
	SurfaceResponses Surface = "responses"
	// SurfaceEmbeddings is POST /v1/embeddings (OpenAI format).
	SurfaceEmbeddings Surface = "embeddings"
	// SurfaceMessages is POST /v1/messages (Anthropic format).
	SurfaceMessages Surface = "messages"
)

// Format returns the wire format the surface belongs to, or "" for an
// unknown surface.
func (s Surface) Format() Format {
	switch s {
	case SurfaceChatCompletions, SurfaceResponses, SurfaceEmbeddings:
		return FormatOpenAI
	case SurfaceMessages:
		return FormatAnthropic
	}
	return ""
}

// Path returns the request path of the surface relative to an API root that
// ends in "/v1/" (for example "chat/completions"), or "" for an unknown
// surface.
func (s Surface) Path() string {
	switch s {
	case SurfaceChatCompletions:
		return "chat/completions"
	case SurfaceResponses:
		return "responses"
	case SurfaceEmbeddings:
		return "embeddings"
	case SurfaceMessages:
		return "messages"
	}
	return ""
}

// Streams reports whether the surface can answer with a server-sent event
// stream.
func (s Surface) Streams() bool { return s != SurfaceEmbeddings && s != "" }

// Secret is a credential value. Its String, GoString, Format and MarshalJSON
// methods print a redacted form, so a Secret that reaches a log line, an
// error or an event never leaks; call Reveal to get the value for the one
// place that needs it (the upstream request header).
type Secret string

// Reveal returns the secret value. Only code that writes the credential to
// the upstream request should call it.
func (s Secret) Reveal() string { return string(s) }

// String returns "[redacted]" for a non-empty secret and "" for an empty one.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString implements fmt.GoStringer with the redacted form.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// Format implements fmt.Formatter so every verb (%s, %v, %q, %x, %#v, ...)
// prints the redacted form.
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q', 'v':
		if verb == 'q' || f.Flag('#') {
			_, _ = io.WriteString(f, strconv.Quote(s.String()))
			return
		}
	}
	_, _ = io.WriteString(f, s.String())
}

// MarshalJSON encodes the redacted form.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }

// MarshalText encodes the redacted form (used by encoding/json map keys,
// slog and YAML encoders).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Fingerprint returns a short, non-reversible identifier of the secret (the
// first 8 hex digits of its SHA-256), safe to log, or "" for an empty secret.
func (s Secret) Fingerprint() string {
	if s == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

// KeySource says where an upstream credential came from, which decides
// what the provider may do with it (for example, OpenAI-Organization and
// OpenAI-Project belong to the account that owns the key, so they are
// forwarded only with the client's own key).
type KeySource uint8

// The key sources.
const (
	// KeyConfigured: an operator key from the gateway's configuration. The
	// zero value, so a Key built by hand is a configured one.
	KeyConfigured KeySource = iota
	// KeyAttached: a provider key attached to the gateway API key the
	// client authenticated with (bring your own key, stored by the
	// operator).
	KeyAttached
	// KeyClient: the client's own credential, passed through from its
	// request (Authorization: Bearer or x-api-key).
	KeyClient
)

// String returns "configured", "attached" or "client".
func (s KeySource) String() string {
	switch s {
	case KeyConfigured:
		return "configured"
	case KeyAttached:
		return "attached"
	case KeyClient:
		return "client"
	}
	return "KeySource(" + strconv.Itoa(int(s)) + ")"
}

// Key is one upstream credential. The zero Key means "send no credential"
// (for unauthenticated local servers such as Ollama).
type Key struct {
	// ID identifies the key in attempts, events, errors and cooldowns. It is
	// never secret: the gateway sets it to a configured name or to
	// "key-<n>" for the n-th configured key, and to "client" for a
	// credential passed through from the client.
	ID string
	// Secret is the credential sent upstream in the provider's own
	// authentication scheme.
	Secret Secret
	// Source says where the credential came from.
	Source KeySource
}

// Request is one prepared upstream call. The gateway builds it once per
// attempt; a Provider must treat every field as read-only, because the same
// Body slice is replayed across attempts.
type Request struct {
	// Surface is the API operation (chat completions, messages, ...). The
	// Provider maps it to an upstream path.
	Surface Surface
	// Model is the upstream model ID; Body already carries it in its
	// "model" field.
	Model string
	// Body is the complete JSON request body to send, immutable.
	Body []byte
	// Stream reports whether the body asks for a server-sent event stream.
	Stream bool
	// Header holds the client's request headers with credentials and
	// hop-by-hop headers removed. A Provider forwards only the headers its
	// API defines (for example anthropic-version and anthropic-beta); it
	// must not modify the map.
	Header http.Header
	// ExtraHeader holds headers the operator set for this request (the
	// gateway's request policy of the provider and model), with canonical
	// names; nil when none. They replace the headers of the same name the
	// Provider would otherwise send, configured or forwarded from the
	// client, except those it manages (Content-Type, Accept, User-Agent,
	// Content-Length and, when the key is not empty, the key's header);
	// Anthropic-Beta values are added to the others. The built-in Providers
	// skip invalid names and values. A Provider must not modify the map.
	ExtraHeader http.Header
	// TraceHeader holds the trace propagation headers of this request (for
	// example W3C traceparent and tracestate), set by the gateway's tracer
	// for each attempt; nil without one. A Provider sends every one of them,
	// replacing a header of the same name from Header; ExtraHeader and the
	// headers the Provider manages (see ExtraHeader) still take precedence.
	// The built-in Providers skip invalid names and values. A Provider must
	// not modify the map.
	TraceHeader http.Header
	// ExtraQuery holds query parameters the operator added for this request,
	// merged into the request URL where they replace parameters of the same
	// name; nil when none. A Provider must not modify the map.
	ExtraQuery url.Values
	// BodyLease, set only for a Provider that implements LeasesBody, lets
	// the gateway reuse Body's memory for a later request: the Provider
	// calls Retain before it hands Body to anything that may still read it
	// after Do returns (an http.Transport writing the request body goes on
	// in the background when the upstream answers early) and Release once
	// that reader is done (the transport closed the request body). Body is
	// reused only after Do returned, the response body was closed and every
	// Retain was matched by a Release. Nil: Body is never reused.
	BodyLease BodyLease
}

// BodyLease counts the readers of a Request's Body still at work (see
// Request.BodyLease). Its methods are safe for concurrent use; Release is
// called once per Retain.
type BodyLease interface {
	Retain()
	Release()
}

// LeasesBody is an optional capability of a Provider: one that implements
// it honours Request.BodyLease, so the gateway may reuse the memory of
// large request bodies once the Provider is done with them. A Provider
// without it gets no lease and its bodies' memory is never reused, so it
// may keep Body as long as it likes.
type LeasesBody interface {
	Provider
	// LeasesBody does nothing; its presence is the capability.
	LeasesBody()
}

// Response is an upstream answer of any status. Body is unread; the caller
// must close it.
type Response struct {
	// StatusCode is the upstream HTTP status.
	StatusCode int
	// Header is the upstream response header.
	Header http.Header
	// Body is the raw response body: JSON, or text/event-stream for streams.
	Body io.ReadCloser
}

// Provider sends requests to one upstream API. Implementations must be safe
// for concurrent use.
//
// Do returns a non-nil error only when no response was obtained; any HTTP
// status, including 4xx and 5xx, is a Response with a nil error. When the
// request provably never reached the upstream (a dial failure, a refused
// connection, a bad URL), the error wraps ErrNotSent. Do must return
// promptly once ctx is done, and the returned Body must stop reading when
// ctx is done.
type Provider interface {
	// Name returns the provider ID (for example "openai"), used in attempts
	// and events.
	Name() string
	// Surfaces lists the surfaces the upstream serves natively.
	Surfaces() []Surface
	// Do sends req with key and returns the upstream response.
	Do(ctx context.Context, req *Request, key Key) (*Response, error)
}

// ErrNotSent reports that a request never reached the upstream, so it is
// safe to retry anywhere (like database/sql/driver.ErrBadConn). Test with
// errors.Is.
var ErrNotSent = errors.New("providers: request not sent")

// Serves reports whether p serves surface s natively.
func Serves(p Provider, s Surface) bool {
	for _, x := range p.Surfaces() {
		if x == s {
			return true
		}
	}
	return false
}

// ParseRetryAfter interprets a Retry-After header value (delay-seconds or an
// HTTP-date relative to now) and returns the delay, capped at max. It
// returns 0 and false for an empty or invalid value. Negative results are
// clamped to 0.
func ParseRetryAfter(v string, now time.Time, max time.Duration) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs != secs || secs < 0 { // NaN or negative
			return 0, false
		}
		if secs > max.Seconds() {
			return max, true
		}
		d = time.Duration(secs * float64(time.Second))
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	} else {
		return 0, false
	}
	if d < 0 {
		d = 0
	}
	if d > max {
		d = max
	}
	return d, true
}

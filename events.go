package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/llmgate/gateway/internal/jsonx"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/tokens"
)

// AttemptError classifies why an attempt failed or a candidate was skipped.
// The values are stable strings.
type AttemptError string

// The attempt error classes.
const (
	// AttemptOK: the attempt answered the client.
	AttemptOK AttemptError = ""
	// AttemptTimeout: the per-attempt timeout ran out.
	AttemptTimeout AttemptError = "timeout"
	// AttemptConnection: the upstream could not be reached (refused, DNS,
	// TLS, reset before any response).
	AttemptConnection AttemptError = "connection"
	// AttemptStatus: the upstream answered with a 4xx or 5xx status.
	AttemptStatus AttemptError = "http_status"
	// AttemptBadResponse: the upstream answered 2xx with a body that could
	// not be read or was not what the request asked for (for example JSON to
	// a streaming request).
	AttemptBadResponse AttemptError = "bad_response"
	// AttemptStreamError: the stream failed or reported an error before any
	// content reached the client.
	AttemptStreamError AttemptError = "stream_error"
	// AttemptStreamFailed: the stream failed after content reached the
	// client; the client received an in-stream error.
	AttemptStreamFailed AttemptError = "stream_failed"
	// AttemptCanceled: the client went away or the total timeout ran out
	// during the attempt.
	AttemptCanceled AttemptError = "canceled"
	// AttemptSkippedCooldown: not sent; the key is cooling down after an
	// authentication failure or a rate limit.
	AttemptSkippedCooldown AttemptError = "key_cooldown"
	// AttemptSkippedFormat: not sent; the provider cannot serve the request's
	// API surface.
	AttemptSkippedFormat AttemptError = "format_unsupported"
	// AttemptSkippedTranslation: not sent; the request would have to be
	// translated to the provider's format, and translating it would change
	// its meaning (for example n > 1 to Anthropic).
	AttemptSkippedTranslation AttemptError = "translation_refused"
	// AttemptSkippedCredential: not sent; the provider has no configured key
	// and the client's credential cannot be one of its keys (pass-through
	// is scoped; see WithPassThrough).
	AttemptSkippedCredential AttemptError = "credential_not_owned"
	// AttemptSkippedLimit: not sent; the request reached WithMaxAttempts.
	AttemptSkippedLimit AttemptError = "attempt_limit"
	// AttemptSkippedKeySelection: the provider's CEL key selection chose
	// none of its keys for this request.
	AttemptSkippedKeySelection AttemptError = "no_key_selected"
)

// Attempt records one upstream attempt, or one candidate skipped without a
// request (Skipped). It never holds a secret. Its JSON form (MarshalJSON,
// used in events and error bodies) is
// {"provider","model","key_id","key_source","skipped","translated","status","error","reason","ttfb_ms","duration_ms"},
// zero fields left out, durations in milliseconds.
type Attempt struct {
	Provider string
	Model    string
	KeyID    string
	Skipped  bool
	// Translated reports that the request and answer were translated
	// between the OpenAI and Anthropic formats.
	Translated bool
	Status     int          // upstream HTTP status, 0 if none arrived
	Error      AttemptError // "" for the attempt that served the request
	Reason     string       // human-readable detail, secrets removed
	// TTFB is the time from sending the request to the response headers.
	TTFB time.Duration
	// Duration is the time the attempt took, until its body was read or its
	// stream ended.
	Duration time.Duration
	// Start is when the attempt was sent (zero when skipped); not in the
	// JSON form, whose times are relative.
	Start time.Time
	// KeySource is where the attempt's key came from: "configured",
	// "attached" or "client"; "" without a key. In the JSON form with
	// detail only, like KeyID.
	KeySource string
}

// MarshalJSON encodes the attempt in its one JSON form (see Attempt).
func (a Attempt) MarshalJSON() ([]byte, error) { return a.appendJSON(make([]byte, 0, 160), true), nil }

// UnmarshalJSON decodes the JSON form of MarshalJSON (and of the attempts
// in error bodies).
func (a *Attempt) UnmarshalJSON(b []byte) error {
	var v struct {
		Provider   string       `json:"provider"`
		Model      string       `json:"model"`
		KeyID      string       `json:"key_id"`
		KeySource  string       `json:"key_source"`
		Skipped    bool         `json:"skipped"`
		Translated bool         `json:"translated"`
		Status     int          `json:"status"`
		Error      AttemptError `json:"error"`
		Reason     string       `json:"reason"`
		TTFB       float64      `json:"ttfb_ms"`
		Duration   float64      `json:"duration_ms"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*a = Attempt{Provider: v.Provider, Model: v.Model, KeyID: v.KeyID, KeySource: v.KeySource, Skipped: v.Skipped, Translated: v.Translated,
		Status: v.Status, Error: v.Error, Reason: v.Reason,
		TTFB: time.Duration(v.TTFB * float64(time.Millisecond)), Duration: time.Duration(v.Duration * float64(time.Millisecond))}
	return nil
}

// appendJSON appends the JSON form; without detail, the key ID and the
// reason are left out (what clients see unless WithErrorDetail).
func (a *Attempt) appendJSON(dst []byte, detail bool) []byte {
	dst = append(dst, `{"provider":`...)
	dst = jsonx.AppendQuote(dst, a.Provider)
	dst = append(dst, `,"model":`...)
	dst = jsonx.AppendQuote(dst, a.Model)
	if a.KeyID != "" && detail {
		dst = append(dst, `,"key_id":`...)
		dst = jsonx.AppendQuote(dst, a.KeyID)
	}
	if a.KeySource != "" && detail {
		dst = append(dst, `,"key_source":`...)
		dst = jsonx.AppendQuote(dst, a.KeySource)
	}
	if a.Skipped {
		dst = append(dst, `,"skipped":true`...)
	}
	if a.Translated {
		dst = append(dst, `,"translated":true`...)
	}
	if a.Status != 0 {
		dst = append(dst, `,"status":`...)
		dst = strconv.AppendInt(dst, int64(a.Status), 10)
	}
	if a.Error != "" {
		dst = append(dst, `,"error":`...)
		dst = jsonx.AppendQuote(dst, string(a.Error))
	}
	if a.Reason != "" && detail {
		dst = append(dst, `,"reason":`...)
		dst = jsonx.AppendQuote(dst, a.Reason)
	}
	if !a.Skipped {
		dst = append(dst, `,"ttfb_ms":`...)
		dst = strconv.AppendFloat(dst, float64(a.TTFB)/float64(time.Millisecond), 'f', 1, 64)
		dst = append(dst, `,"duration_ms":`...)
		dst = strconv.AppendFloat(dst, float64(a.Duration)/float64(time.Millisecond), 'f', 1, 64)
	}
	return append(dst, '}')
}

// Rejection is a requested model that was never tried, with the reason.
type Rejection struct {
	Model  string `json:"model"`
	Reason string `json:"reason"`
}

// Event describes one client request from arrival to the end of its
// response. The gateway emits exactly one per request to every EventSink,
// after the response is complete. It holds no secrets and no bodies.
type Event struct {
	RequestID string            `json:"request_id"`
	Time      time.Time         `json:"time"` // arrival
	Method    string            `json:"method"`
	Path      string            `json:"path"`
	Surface   providers.Surface `json:"surface,omitempty"`
	Format    providers.Format  `json:"format,omitempty"` // the client's wire format
	// Principal is who the request acted for; nil when nobody (no gateway
	// key, no host identity).
	Principal *Principal `json:"principal,omitempty"`
	Stream    bool       `json:"stream"`
	// RequestedModels is model followed by models, as the client sent them.
	RequestedModels []string `json:"requested_models,omitempty"`
	// Candidates is the failover plan, as "provider:model".
	Candidates []string    `json:"candidates,omitempty"`
	Rejected   []Rejection `json:"rejected,omitempty"`
	// Selection is the model selection trace: one step per strategy
	// evaluated (see WithModelSelection); empty without strategies.
	Selection []SelectionStep `json:"selection,omitempty"`
	Attempts  []Attempt       `json:"attempts,omitempty"`
	// ServedBy is the "provider:model" that produced the response, if any.
	ServedBy string `json:"served_by,omitempty"`
	// RemovedParams lists the request fields dropped when the request was
	// translated for the provider that served it, or removed by its request
	// policy (also sent as Llmgate-Removed-Params).
	RemovedParams []string `json:"removed_params,omitempty"`
	// Redactions counts the replacements WithRedaction made in the
	// request body and in the answer the client received, by rule name
	// (never what was matched); nil when none.
	Redactions map[string]int `json:"redactions,omitempty"`
	// Status is the HTTP status sent to the client (200 for a stream that
	// later failed in-stream; see Err).
	Status int `json:"status"`
	// Err is the failure, if any, including an in-stream failure after the
	// response was committed. Its JSON form carries the stable code (see
	// Error.MarshalJSON).
	Err *Error `json:"error,omitempty"`
	// Usage is the provider-reported usage; UsageReported is false when the
	// provider reported none.
	Usage         tokens.Usage `json:"usage"`
	UsageReported bool         `json:"usage_reported"`
	// Latency is the total time from arrival to the end of the response.
	Latency time.Duration `json:"latency_ns"`
	// GatewayLatency is Latency minus the time spent in upstream attempts:
	// what the gateway itself added.
	GatewayLatency time.Duration `json:"gateway_latency_ns"`
	// TimeToFirstByte is the time from arrival to the first response byte
	// written to the client.
	TimeToFirstByte time.Duration `json:"ttfb_ns"`
}

// EventSink receives one Event per request. HandleEvent is called
// synchronously on the request's goroutine after the response is complete,
// so it must be fast and must not block; it may be called concurrently and
// must not modify the Event. The context carries the request's values but
// may already be canceled.
type EventSink interface {
	HandleEvent(ctx context.Context, e *Event)
}

// EventSinkFunc adapts a function to EventSink.
type EventSinkFunc func(ctx context.Context, e *Event)

// HandleEvent calls f(ctx, e).
func (f EventSinkFunc) HandleEvent(ctx context.Context, e *Event) { f(ctx, e) }

// SlogSink logs each event as one structured record: level is used for
// successful requests, slog.LevelWarn for failed ones. A nil logger uses
// slog.Default(). The record holds no bodies and no secrets; redactions
// (Event.Redactions) appear as a "redactions" group of counts by rule
// name, sorted, and only when there are some.
type SlogSink struct {
	Logger *slog.Logger
	Level  slog.Level
}

// HandleEvent logs e.
func (s SlogSink) HandleEvent(ctx context.Context, e *Event) {
	l := s.Logger
	if l == nil {
		l = slog.Default()
	}
	level := s.Level
	if e.Err != nil {
		level = slog.LevelWarn
	}
	if !l.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs,
		slog.String("request_id", e.RequestID),
		slog.String("path", e.Path),
		slog.Int("status", e.Status),
		slog.Bool("stream", e.Stream),
		slog.Any("requested_models", e.RequestedModels),
		slog.String("served_by", e.ServedBy),
		slog.Int("attempts", countSent(e.Attempts)),
		slog.Duration("latency", e.Latency),
		slog.Duration("gateway_latency", e.GatewayLatency),
	)
	if e.UsageReported {
		attrs = append(attrs, slog.Group("usage",
			slog.Int64("input_tokens", e.Usage.InputTokens),
			slog.Int64("output_tokens", e.Usage.OutputTokens),
			slog.Int64("cache_read_tokens", e.Usage.CacheReadTokens),
			slog.Int64("cache_write_tokens", e.Usage.CacheWriteTokens)))
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("error_code", e.Err.Code()), slog.String("error", e.Err.Message))
	}
	if len(e.Redactions) > 0 {
		rs := make([]any, 0, len(e.Redactions))
		for _, name := range slices.Sorted(maps.Keys(e.Redactions)) {
			rs = append(rs, slog.Int(name, e.Redactions[name]))
		}
		attrs = append(attrs, slog.Group("redactions", rs...))
	}
	if len(e.Attempts) > 1 || e.Err != nil {
		as := make([]any, 0, len(e.Attempts))
		for i := range e.Attempts {
			a := &e.Attempts[i]
			as = append(as, slog.Group(strconv.Itoa(i+1),
				slog.String("provider", a.Provider), slog.String("model", a.Model), slog.String("key_id", a.KeyID),
				slog.Int("status", a.Status), slog.String("error", string(a.Error)), slog.String("reason", a.Reason),
				slog.Duration("duration", a.Duration)))
		}
		attrs = append(attrs, slog.Group("attempt", as...))
	}
	l.LogAttrs(ctx, level, "llmgate request", attrs...)
}

func countSent(as []Attempt) int {
	n := 0
	for i := range as {
		if !as[i].Skipped {
			n++
		}
	}
	return n
}

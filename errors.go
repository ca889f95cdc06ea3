package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/llmgate/gateway/internal/jsonx"
	"github.com/llmgate/gateway/internal/wire"
	"github.com/llmgate/gateway/providers"
)

// Kind classifies a gateway error by fault domain. The set is closed; each
// Kind has a stable machine-readable code and an HTTP status. Kinds added in
// later versions get new codes; existing codes never change meaning.
type Kind uint8

// The error kinds.
const (
	// KindInternal is a bug or an unexpected condition in the gateway (500,
	// internal_error).
	KindInternal Kind = iota
	// KindInvalidJSON: the request body is not a JSON object (400,
	// invalid_json).
	KindInvalidJSON
	// KindInvalidRequest: a field the gateway reads has the wrong type, for
	// example model not a string or models not an array of strings (400,
	// invalid_request).
	KindInvalidRequest
	// KindNotFound: no route for the path (404, not_found).
	KindNotFound
	// KindMethodNotAllowed: the route exists for another method (405,
	// method_not_allowed).
	KindMethodNotAllowed
	// KindInputTooLarge: the request body exceeds the configured limit (413,
	// input_too_large).
	KindInputTooLarge
	// KindModelUnknown: a requested model is neither in the catalog nor
	// prefixed with a known provider (422, model_unknown).
	KindModelUnknown
	// KindProviderUnknown: a "provider:" prefix names no known provider
	// (422, provider_unknown).
	KindProviderUnknown
	// KindFormatUnsupported: no candidate model can serve the API surface of
	// the request (422, format_unsupported).
	KindFormatUnsupported
	// KindProviderNotAllowed: only configured providers are allowed and the
	// request named another (403, provider_not_allowed).
	KindProviderNotAllowed
	// KindModelNotAllowed: only configured models are allowed and the request
	// named another (403, model_not_allowed).
	KindModelNotAllowed
	// KindUpstream: the provider rejected the request with a status
	// configured to fail fast; the status is the provider's
	// (upstream_error).
	KindUpstream
	// KindAllProvidersFailed: every candidate and key was tried and failed
	// (503, all_providers_failed).
	KindAllProvidersFailed
	// KindTotalTimeout: the total timeout ran out before any attempt
	// succeeded (504, total_timeout).
	KindTotalTimeout
	// KindStreamFailed: the upstream failed after the response was
	// committed; reported in-stream (stream_failed).
	KindStreamFailed
	// KindCanceled: the client went away (499, client_closed_request). No
	// response is written.
	KindCanceled
	// KindUnavailable: the gateway is closed (503, gateway_closed).
	KindUnavailable
	// KindRequestTimeout: the client was too slow: its body did not arrive
	// within the body read timeout, or it accepted no bytes of the response
	// within the write timeout (408, request_timeout). See
	// WithClientTimeouts.
	KindRequestTimeout
	// KindUnsupportedMediaType: a POST body is not declared as JSON
	// (415, unsupported_media_type). Requiring Content-Type:
	// application/json keeps web pages from making blind cross-site POSTs
	// to a gateway on localhost.
	KindUnsupportedMediaType
	// KindOriginNotAllowed: a CORS request from an origin WithCORS does not
	// list (403, origin_not_allowed).
	KindOriginNotAllowed
	// KindHostNotAllowed: the request's Host is not one WithAllowedHosts
	// lists (403, host_not_allowed).
	KindHostNotAllowed
	// KindModelSelectionFailed: a model or key selection strategy failed to
	// evaluate, or returned something other than models or keys (422,
	// model_selection_failed). The message names the strategy.
	KindModelSelectionFailed
	// KindNoModelSelected: every selection strategy yielded no usable model
	// once the client's own choice and the restrictions were applied (422,
	// no_model_selected).
	KindNoModelSelected
	// KindUnauthorized: the request carries no gateway API key where one is
	// required, or an unknown, deleted or expired one (401,
	// invalid_api_key). It never falls back to pass-through.
	KindUnauthorized
	// KindKeyWrongEndpoint: the gateway API key belongs to another
	// endpoint (403, key_endpoint_mismatch).
	KindKeyWrongEndpoint
	// KindAuthUnavailable: the key store or the host's authenticator
	// could not answer (503, auth_unavailable); retrying may succeed.
	KindAuthUnavailable
	// KindCreditsExhausted: the request's account cannot pay for even its
	// prompt and a minimum answer with credits (403, credits_exhausted).
	// Nothing was sent upstream.
	KindCreditsExhausted
	// KindModelNotPriced: the request would be paid with credits but no
	// candidate model has a price in the catalog (422, model_not_priced).
	KindModelNotPriced
	// KindCreditsUnavailable: the credits ledger could not answer (503,
	// credits_unavailable); retrying may succeed. Nothing was charged.
	KindCreditsUnavailable
	numKinds
)

var kindInfo = [numKinds]struct {
	code   string
	status int
}{
	KindInternal:             {"internal_error", http.StatusInternalServerError},
	KindInvalidJSON:          {"invalid_json", http.StatusBadRequest},
	KindInvalidRequest:       {"invalid_request", http.StatusBadRequest},
	KindNotFound:             {"not_found", http.StatusNotFound},
	KindMethodNotAllowed:     {"method_not_allowed", http.StatusMethodNotAllowed},
	KindInputTooLarge:        {"input_too_large", http.StatusRequestEntityTooLarge},
	KindModelUnknown:         {"model_unknown", http.StatusUnprocessableEntity},
	KindProviderUnknown:      {"provider_unknown", http.StatusUnprocessableEntity},
	KindFormatUnsupported:    {"format_unsupported", http.StatusUnprocessableEntity},
	KindProviderNotAllowed:   {"provider_not_allowed", http.StatusForbidden},
	KindModelNotAllowed:      {"model_not_allowed", http.StatusForbidden},
	KindUpstream:             {"upstream_error", http.StatusBadGateway},
	KindAllProvidersFailed:   {"all_providers_failed", http.StatusServiceUnavailable},
	KindTotalTimeout:         {"total_timeout", http.StatusGatewayTimeout},
	KindStreamFailed:         {"stream_failed", http.StatusBadGateway},
	KindCanceled:             {"client_closed_request", 499},
	KindUnavailable:          {"gateway_closed", http.StatusServiceUnavailable},
	KindRequestTimeout:       {"request_timeout", http.StatusRequestTimeout},
	KindUnsupportedMediaType: {"unsupported_media_type", http.StatusUnsupportedMediaType},
	KindOriginNotAllowed:     {"origin_not_allowed", http.StatusForbidden},
	KindHostNotAllowed:       {"host_not_allowed", http.StatusForbidden},
	KindModelSelectionFailed: {"model_selection_failed", http.StatusUnprocessableEntity},
	KindNoModelSelected:      {"no_model_selected", http.StatusUnprocessableEntity},
	KindUnauthorized:         {"invalid_api_key", http.StatusUnauthorized},
	KindKeyWrongEndpoint:     {"key_endpoint_mismatch", http.StatusForbidden},
	KindAuthUnavailable:      {"auth_unavailable", http.StatusServiceUnavailable},
	KindCreditsExhausted:     {"credits_exhausted", http.StatusForbidden},
	KindModelNotPriced:       {"model_not_priced", http.StatusUnprocessableEntity},
	KindCreditsUnavailable:   {"credits_unavailable", http.StatusServiceUnavailable},
}

// Code returns the stable machine-readable code of the kind, the value of
// the "code" field in error bodies.
func (k Kind) Code() string {
	if k >= numKinds {
		return kindInfo[KindInternal].code
	}
	return kindInfo[k].code
}

// Status returns the HTTP status the gateway answers with for the kind.
func (k Kind) Status() int {
	if k >= numKinds {
		return http.StatusInternalServerError
	}
	return kindInfo[k].status
}

// String returns the code.
func (k Kind) String() string { return k.Code() }

// Error is the error type of every failure the gateway reports. Go callers
// inspect it with errors.As (or KindOf); HTTP clients receive it in their
// own API's error shape. Error values are not modified after they are
// returned.
type Error struct {
	// Kind classifies the failure.
	Kind Kind
	// Status is the HTTP status sent to the client; zero means Kind.Status().
	Status int
	// Message is the human-readable explanation sent to the client. It never
	// contains a secret.
	Message string
	// Param names the request field at fault, if any (OpenAI's "param").
	Param string
	// Attempts lists the upstream attempts made (and candidates skipped)
	// before the failure, in order.
	Attempts []Attempt
	// RetryAfter, when positive, is sent as a Retry-After header.
	RetryAfter time.Duration
	// Err is the underlying cause, if any.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	msg := "llmgate: " + e.Kind.Code()
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's kind (see ErrModelUnknown
// and friends), so errors.Is(err, gateway.ErrTotalTimeout) works.
func (e *Error) Is(target error) bool {
	s, ok := target.(*sentinel)
	return ok && s.kind == e.Kind
}

// HTTPStatus returns the status sent to the client.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	return e.Kind.Status()
}

// Code returns the stable machine-readable code.
func (e *Error) Code() string { return e.Kind.Code() }

// MarshalJSON encodes the error as it appears in an Event's JSON form:
// {"code","status","message","param","retry_after_ms"}, where code is the
// Kind's stable code. Attempts and the cause are left out (the event has
// the attempts).
func (e *Error) MarshalJSON() ([]byte, error) {
	dst := append(make([]byte, 0, 128), `{"code":`...)
	dst = jsonx.AppendQuote(dst, e.Code())
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(e.HTTPStatus()), 10)
	dst = append(dst, `,"message":`...)
	dst = jsonx.AppendQuote(dst, e.Message)
	if e.Param != "" {
		dst = append(dst, `,"param":`...)
		dst = jsonx.AppendQuote(dst, e.Param)
	}
	if e.RetryAfter > 0 {
		dst = append(dst, `,"retry_after_ms":`...)
		dst = strconv.AppendInt(dst, e.RetryAfter.Milliseconds(), 10)
	}
	return append(dst, '}'), nil
}

type sentinel struct{ kind Kind }

func (s *sentinel) Error() string { return "llmgate: " + s.kind.Code() }

// Sentinels for errors.Is, one per kind that callers commonly branch on.
var (
	ErrInvalidRequest     error = &sentinel{KindInvalidRequest}
	ErrInputTooLarge      error = &sentinel{KindInputTooLarge}
	ErrModelUnknown       error = &sentinel{KindModelUnknown}
	ErrProviderUnknown    error = &sentinel{KindProviderUnknown}
	ErrFormatUnsupported  error = &sentinel{KindFormatUnsupported}
	ErrProviderNotAllowed error = &sentinel{KindProviderNotAllowed}
	ErrModelNotAllowed    error = &sentinel{KindModelNotAllowed}
	ErrAllProvidersFailed error = &sentinel{KindAllProvidersFailed}
	ErrTotalTimeout       error = &sentinel{KindTotalTimeout}
	ErrUpstream           error = &sentinel{KindUpstream}
	ErrStreamFailed       error = &sentinel{KindStreamFailed}
	ErrModelSelection     error = &sentinel{KindModelSelectionFailed}
	ErrNoModelSelected    error = &sentinel{KindNoModelSelected}
	ErrUnauthorized       error = &sentinel{KindUnauthorized}
	ErrCreditsExhausted   error = &sentinel{KindCreditsExhausted}
	ErrModelNotPriced     error = &sentinel{KindModelNotPriced}
)

// KindOf returns the Kind of err: the Kind of the first *Error in its chain,
// KindCanceled for context.Canceled, KindTotalTimeout for
// context.DeadlineExceeded, and KindInternal otherwise (including nil).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	var s *sentinel
	if errors.As(err, &s) {
		return s.kind
	}
	switch {
	case errors.Is(err, context.Canceled):
		return KindCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return KindTotalTimeout
	}
	return KindInternal
}

func errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// appendErrorBody appends e as a JSON error body in the given format:
// OpenAI {"error":{"message","type","param","code",...}} or Anthropic
// {"type":"error","error":{"type","message","code",...},"request_id"}. The
// attempts list leaves out key IDs and upstream reasons unless detail is
// set (WithErrorDetail).
func appendErrorBody(dst []byte, f providers.Format, e *Error, requestID string, detail bool) []byte {
	status := e.HTTPStatus()
	if f == providers.FormatAnthropic {
		dst = append(dst, `{"type":"error","error":{"type":`...)
		dst = jsonx.AppendQuote(dst, wire.AnthropicErrorType(status))
		dst = append(dst, `,"message":`...)
		dst = jsonx.AppendQuote(dst, e.Message)
		dst = append(dst, `,"code":`...)
		dst = jsonx.AppendQuote(dst, e.Code())
		dst = appendAttempts(dst, e.Attempts, detail)
		dst = append(dst, `},"request_id":`...)
		dst = jsonx.AppendQuote(dst, requestID)
		return append(dst, '}')
	}
	dst = append(dst, `{"error":{"message":`...)
	dst = jsonx.AppendQuote(dst, e.Message)
	dst = append(dst, `,"type":`...)
	dst = jsonx.AppendQuote(dst, wire.OpenAIErrorType(status))
	dst = append(dst, `,"param":`...)
	if e.Param != "" {
		dst = jsonx.AppendQuote(dst, e.Param)
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"code":`...)
	dst = jsonx.AppendQuote(dst, e.Code())
	dst = append(dst, `,"request_id":`...)
	dst = jsonx.AppendQuote(dst, requestID)
	dst = appendAttempts(dst, e.Attempts, detail)
	return append(dst, "}}"...)
}

// maxErrorAttempts bounds the attempts listed in an error body; the rest
// are counted in "attempts_omitted" (the event has them all).
const maxErrorAttempts = 32

func appendAttempts(dst []byte, attempts []Attempt, detail bool) []byte {
	if len(attempts) == 0 {
		return dst
	}
	dst = append(dst, `,"attempts":[`...)
	for i := range attempts[:min(len(attempts), maxErrorAttempts)] {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = attempts[i].appendJSON(dst, detail)
	}
	dst = append(dst, ']')
	if n := len(attempts) - maxErrorAttempts; n > 0 {
		dst = append(dst, `,"attempts_omitted":`...)
		dst = strconv.AppendInt(dst, int64(n), 10)
	}
	return dst
}

// writeError writes e as a complete HTTP error response in format f, and
// returns the body written.
func writeError(w http.ResponseWriter, f providers.Format, e *Error, requestID string, detail bool) []byte {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Del("Content-Length")
	if e.RetryAfter > 0 {
		secs := int64((e.RetryAfter + time.Second - 1) / time.Second)
		h.Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	if !retryable(e) {
		// Both official SDKs honour this header and skip their automatic
		// retries, which would only repeat a request that cannot succeed.
		h.Set("X-Should-Retry", "false")
	}
	body := appendErrorBody(make([]byte, 0, 256), f, e, requestID, detail)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.HTTPStatus())
	_, _ = w.Write(body)
	return body
}

// retryable reports whether repeating the same request could succeed.
func retryable(e *Error) bool {
	switch e.Kind {
	case KindAllProvidersFailed:
		// Retrying helps unless every attempt was refused as a bad request.
		for _, a := range e.Attempts {
			if a.Skipped || !clientFault(a.Status) {
				return true
			}
		}
		return len(e.Attempts) == 0
	case KindTotalTimeout, KindInternal, KindUnavailable, KindAuthUnavailable:
		return true
	case KindUpstream:
		return !clientFault(e.HTTPStatus())
	}
	return false
}

// clientFault reports whether an upstream status says the request itself is
// bad, so the same request would fail again anywhere.
func clientFault(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

package admin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/llmgate/gateway/keys"
)

// Error codes: the stable "code" of an error body. Validation errors (422)
// also use the Code of the keys.ValidationError the store returns
// ("description_too_long", "metadata_too_long", "invalid_allow_list_entry",
// "too_many_attached", "invalid_cursor", ...).
const (
	CodeUnauthorized         = "admin_unauthorized"     // 401: no or wrong admin token, or Authorize refused
	CodeNotFound             = "not_found"              // 404: no such route
	CodeKeyNotFound          = "key_not_found"          // 404: no gateway key with that ID
	CodeProviderKeyNotFound  = "provider_key_not_found" // 404: no attached provider key with that ID on that key
	CodeMethodNotAllowed     = "method_not_allowed"     // 405: the route exists for other methods (see Allow)
	CodeInvalidJSON          = "invalid_json"           // 400: malformed body, not an object, unknown field, wrong type
	CodeBodyTooLarge         = "body_too_large"         // 413: body over MaxBody
	CodeUnsupportedMedia     = "unsupported_media_type" // 415: POST/PATCH body not application/json
	CodeConflict             = "conflict"               // 409: the store already holds that ID or token
	CodeSealerNotConfigured  = "sealer_not_configured"  // 501: attaching without Options.Sealer
	CodeCreditsNotConfigured = "credits_not_configured" // 501: a credits or usage route without Options.Credits
	CodeStoreUnavailable     = "store_unavailable"      // 503: keys.ErrUnavailable; retry after Retry-After
	CodeInternal             = "internal_error"         // 500: anything else; details only in the log

	// 422 codes of the admin API's own checks.
	CodeInvalid           = "invalid"              // a store's ErrInvalid without a *keys.ValidationError
	CodeInvalidLimit      = "invalid_limit"        // limit not an integer from 1 to the list's maximum
	CodeInvalidTimestamp  = "invalid_timestamp"    // expires_at, from or to not an RFC 3339 timestamp (or to not after from)
	CodeExpiresInPast     = "expires_at_in_past"   // create with expires_at not after now
	CodeProviderRequired  = "provider_required"    // attach without provider
	CodeValueRequired     = "value_required"       // attach without value
	CodeInvalidValue      = "invalid_value"        // value with surrounding spaces, or too long
	CodeValueIsGatewayKey = "value_is_gateway_key" // value is a gateway token, not a provider key

	// Codes of the credits and usage routes. Their inputs are checked
	// before any store call, and a bad one answers 400 with the body
	// member, query parameter or header as field (invalid_limit,
	// invalid_timestamp and invalid_cursor too, which the keys routes
	// answer with 422), except a purchase below the minimum: 422.
	CodePurchaseBelowMinimum = "purchase_below_minimum" // 422: amount below credits.MinPurchase ($5.00)
	CodeInvalidParameter     = "invalid_parameter"      // 400: unknown or repeated query parameter, or a query too long
	CodeInvalidAmount        = "invalid_amount"         // 400: amount not a dollar string, amount_micros negative, both given, none, or above credits.MaxPurchase
	CodeInvalidAccount       = "invalid_account"        // 400: account missing, or not 1 to 128 printable ASCII bytes
	CodeInvalidKeyID         = "invalid_key_id"         // 400: key_id not 1 to 128 printable ASCII bytes
	CodeInvalidID            = "invalid_id"             // 400: purchase id or Idempotency-Key malformed, or the two differ
	CodeInvalidNote          = "invalid_note"           // 400: note over credits.MaxNote bytes
	CodeInvalidCursor        = "invalid_cursor"         // 400: cursor not one of this list
	CodeInvalidGroupBy       = "invalid_group_by"       // 400: group_by names an unknown dimension or one twice
)

// retryAfter is the Retry-After of a 503, in seconds.
const retryAfter = 1

// apiError is an error answer: status, code, message and the offending
// field (its JSON name, "" for none). Messages never contain a token, a
// provider key or a store's error text.
type apiError struct {
	status  int
	code    string
	message string
	field   string
}

var (
	errUnauthorized     = &apiError{http.StatusUnauthorized, CodeUnauthorized, "a valid admin token is required", ""}
	errNotFound         = &apiError{http.StatusNotFound, CodeNotFound, "no such route", ""}
	errKeyNotFound      = &apiError{http.StatusNotFound, CodeKeyNotFound, "no key with that ID", ""}
	errAttachedNotFound = &apiError{http.StatusNotFound, CodeProviderKeyNotFound, "no provider key with that ID on that key", ""}
	errMethodNotAllowed = &apiError{http.StatusMethodNotAllowed, CodeMethodNotAllowed, "method not allowed on this route", ""}
	errNoSealer         = &apiError{http.StatusNotImplemented, CodeSealerNotConfigured,
		"attaching provider keys needs a key-encryption key; none is configured", ""}
	errNoCredits = &apiError{http.StatusNotImplemented, CodeCreditsNotConfigured,
		"credits are not configured on this gateway (no credits store)", ""}
	errInternal = &apiError{http.StatusInternalServerError, CodeInternal, "internal error", ""}
)

// invalid returns a 422 for field.
func invalid(field, code, message string) *apiError {
	return &apiError{http.StatusUnprocessableEntity, code, message, field}
}

// badJSON returns a 400 invalid_json for field ("" for the whole body).
func badJSON(field, message string) *apiError {
	return &apiError{http.StatusBadRequest, CodeInvalidJSON, message, field}
}

// errorBody is the JSON of an error answer.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// writeError writes e as JSON, with Retry-After on a 503.
func writeError(w http.ResponseWriter, e *apiError) {
	if e.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	writeJSON(w, e.status, errorBody{errorDetail{e.code, e.message, e.field}})
}

// writeJSON writes v as the JSON body of a status answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // unreachable: every value written is a plain struct
		b = []byte(`{"error":{"code":"internal_error","message":"internal error"}}`)
		status = http.StatusInternalServerError
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// fail answers a store (or sealer) error: a validation error 422 with its
// Code and Field, ErrNotFound notFound, ErrConflict 409, ErrUnavailable
// (and a context that ended) 503 with Retry-After, anything else 500. A
// store's error text is logged (it names no secret), never sent.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error, notFound *apiError) {
	var ve *keys.ValidationError
	switch {
	case errors.As(err, &ve):
		writeError(w, invalid(ve.Field, ve.Code, ve.Message))
	case errors.Is(err, keys.ErrInvalid):
		writeError(w, invalid("", CodeInvalid, "the request breaks a rule of the store"))
	case errors.Is(err, keys.ErrNotFound):
		writeError(w, notFound)
	case errors.Is(err, keys.ErrConflict):
		writeError(w, &apiError{http.StatusConflict, CodeConflict, "the store already holds that ID or token; retry", ""})
	case errors.Is(err, keys.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		a.logFailure(r, slog.LevelWarn, "admin: store unavailable", err)
		writeError(w, &apiError{http.StatusServiceUnavailable, CodeStoreUnavailable, "the key store is unavailable; retry", ""})
	default:
		a.logFailure(r, slog.LevelError, "admin: internal error", err)
		writeError(w, errInternal)
	}
}

// logFailure logs err, a store's (or sealer's) error in answering r, at
// level with r's method and path.
func (a *api) logFailure(r *http.Request, level slog.Level, msg string, err error) {
	a.log.LogAttrs(r.Context(), level, msg,
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
}

// Package admin is the admin API of llmgate's gateway API keys and
// credits: an http.Handler that creates, lists, reads, updates and deletes
// the keys of a keys.KeyStore, attaches provider keys to them (BYOK, sealed
// with a keys.Sealer), buys credits for accounts and reads their balances,
// transactions and usage records from a credits.Store. It speaks JSON under
// /v1/keys, /v1/credits and /v1/usage; a host mounts it under any prefix:
//
//	h, err := admin.New(admin.Options{Store: store, Endpoint: "prod", Token: adminToken})
//	mux.Handle("/admin/", http.StripPrefix("/admin", h))
//
// A key's token is shown once, in the response that creates it; provider
// key values are write-only. Neither is ever written to a log, an error or
// another response.
//
// Routes (every one authenticated, see Options.Token and Options.Authorize):
//
//	POST   /v1/keys                             create a key (201, with "token")
//	GET    /v1/keys?limit=&cursor=&endpoint=    list keys, newest first
//	GET    /v1/keys/{id}                        read a key
//	PATCH  /v1/keys/{id}                        update a key (absent keeps, null clears)
//	DELETE /v1/keys/{id}                        delete a key and its provider keys (204)
//	POST   /v1/keys/{id}/provider_keys          attach a provider key (201)
//	GET    /v1/keys/{id}/provider_keys          list attached provider keys
//	DELETE /v1/keys/{id}/provider_keys/{pid}    detach a provider key (204)
//
//	POST   /v1/credits/purchases                buy credits (201; 200 for a replayed id)
//	GET    /v1/credits/balance?account=         one account's balance
//	GET    /v1/credits/accounts?limit=&cursor=  every account's balance, by account ID
//	GET    /v1/credits/transactions?account=&limit=&cursor=   an account's purchases, spends and expiries, newest first
//	GET    /v1/credits/lots?account=&limit=&cursor=           an account's lots, newest first
//	GET    /v1/usage?account=&key_id=&from=&to=&limit=&cursor=   usage records, newest first
//	GET    /v1/usage/summary?account=&key_id=&from=&to=&group_by=   usage totals by day, provider, model, key, account
//
// The credits and usage routes need Options.Credits (else 501
// credits_not_configured). Money is always written twice: as an exact
// dollar string ("amount": "10.50") and as integer micro-USD
// ("amount_micros": 10500000), never as a float. Times are RFC 3339 in UTC;
// from is inclusive and to exclusive. Query parameters are checked as
// strictly as bodies: an unknown or repeated parameter, or a malformed or
// out-of-range value, answers 400 with the parameter as field.
//
// Errors are {"error":{"code","message","field"}} with a stable code; see
// the Code constants.
//
// The package imports only packages keys and credits of llmgate's, so a
// host can serve it without the gateway (cmd/llmgate serves it on its own
// listener).
package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/llmgate/gateway/credits"
	"github.com/llmgate/gateway/keys"
)

// MinTokenLen is the shortest admin token New accepts, in bytes: the admin
// API mints credentials, so its own must not be guessable.
const MinTokenLen = 16

// ErrOptions is wrapped by every error New returns for its Options.
var ErrOptions = errors.New("admin: invalid options")

// Options configures the admin API. The zero Options is not valid: Store,
// Endpoint and one of Token or Authorize are required.
type Options struct {
	// Store holds the keys; required.
	Store keys.KeyStore
	// Endpoint is the endpoint new keys are created for when the create
	// request names none (see keys.Key.Endpoint); required.
	Endpoint string
	// Token is the admin bearer token every request must present
	// ("Authorization: Bearer <token>"); compared in constant time. At
	// least MinTokenLen bytes, without surrounding spaces. "" means the
	// host authenticates: Authorize must then be set.
	Token string
	// Authorize, when set, is called for every request after the Token
	// check (when Token is set, both must accept): a host hook for its own
	// authentication (mTLS identity, session, network policy). It must
	// not write to the response; false answers 401 admin_unauthorized. It
	// is called concurrently.
	Authorize func(r *http.Request) bool
	// Credits is the credits store the /v1/credits and /v1/usage routes
	// read and buy into (see credits.Store). Nil leaves those routes
	// answering 501 credits_not_configured.
	Credits credits.Store
	// Sealer seals attached provider keys. Nil disables attaching: POST
	// .../provider_keys answers 501 sealer_not_configured (listing and
	// detaching still work).
	Sealer *keys.Sealer
	// OnChange, when set, is called with the token hash of a key after it
	// is created, updated or deleted, or a provider key is attached to or
	// detached from it, so that the gateway of this replica drops its
	// cached answer (keys.Cache.Forget). It is called synchronously, after
	// the store has answered, and concurrently for different requests.
	OnChange func(hash [32]byte)
	// Now is the clock (create refuses an expires_at not after Now); nil
	// means time.Now.
	Now func() time.Time
	// Logger receives one record per change (key and provider-key IDs,
	// never a token or a provider key's value) and per store failure; nil
	// discards.
	Logger *slog.Logger
}

// api is the handler New returns. It is immutable after New and safe for
// concurrent use.
type api struct {
	store     keys.KeyStore
	endpoint  string
	tokenHash *[32]byte // nil when Token is ""
	authorize func(*http.Request) bool
	sealer    *keys.Sealer
	credits   credits.Store
	onChange  func([32]byte)
	now       func() time.Time
	log       *slog.Logger
	mux       *http.ServeMux
}

// route is a handler registered on the mux; its type tells a matched route
// from the mux's own 404, 405 and redirect answers.
type route func(w http.ResponseWriter, r *http.Request)

// ServeHTTP calls the route.
func (f route) ServeHTTP(w http.ResponseWriter, r *http.Request) { f(w, r) }

// New returns the admin API handler for o, or every problem with o at once
// (errors wrapping ErrOptions, joined). The handler is safe for concurrent
// use and holds no goroutine or resource: it needs no Close.
func New(o Options) (http.Handler, error) {
	var errs []error
	problem := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrOptions}, args...)...))
	}
	if o.Store == nil {
		problem("Store is required")
	}
	switch {
	case o.Endpoint == "":
		problem("Endpoint is required")
	case len(o.Endpoint) > keys.MaxDescription || !utf8.ValidString(o.Endpoint):
		problem("Endpoint must be valid UTF-8 of at most %d bytes", keys.MaxDescription)
	}
	switch {
	case o.Token == "" && o.Authorize == nil:
		problem("Token or Authorize is required (the admin API mints credentials)")
	case o.Token != "" && len(o.Token) < MinTokenLen:
		problem("Token must be at least %d bytes", MinTokenLen)
	case strings.TrimSpace(o.Token) != o.Token:
		problem("Token has surrounding spaces")
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	a := &api{
		store:     o.Store,
		endpoint:  o.Endpoint,
		authorize: o.Authorize,
		sealer:    o.Sealer,
		credits:   o.Credits,
		onChange:  o.OnChange,
		now:       o.Now,
		log:       o.Logger,
		mux:       http.NewServeMux(),
	}
	if o.Token != "" {
		h := sha256.Sum256([]byte(o.Token))
		a.tokenHash = &h
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.mux.Handle("POST /v1/keys", route(a.createKey))
	a.mux.Handle("GET /v1/keys", route(a.listKeys))
	a.mux.Handle("GET /v1/keys/{id}", route(a.getKey))
	a.mux.Handle("PATCH /v1/keys/{id}", route(a.updateKey))
	a.mux.Handle("DELETE /v1/keys/{id}", route(a.deleteKey))
	a.mux.Handle("POST /v1/keys/{id}/provider_keys", route(a.attach))
	a.mux.Handle("GET /v1/keys/{id}/provider_keys", route(a.listAttached))
	a.mux.Handle("DELETE /v1/keys/{id}/provider_keys/{pid}", route(a.detach))
	a.mux.Handle("POST /v1/credits/purchases", route(a.purchase))
	a.mux.Handle("GET /v1/credits/balance", route(a.balance))
	a.mux.Handle("GET /v1/credits/accounts", route(a.accounts))
	a.mux.Handle("GET /v1/credits/transactions", route(a.transactions))
	a.mux.Handle("GET /v1/credits/lots", route(a.lots))
	a.mux.Handle("GET /v1/usage", route(a.usage))
	a.mux.Handle("GET /v1/usage/summary", route(a.summary))
	return a, nil
}

// ServeHTTP authenticates the request, then routes it. Unknown paths answer
// 404 not_found and known paths with another method 405
// method_not_allowed (with Allow), both in JSON; so do paths the mux would
// redirect (unclean, or with a trailing slash), since a redirect would lose
// the host's mount prefix.
func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if !a.authenticate(r) {
		if a.tokenHash != nil {
			h.Set("WWW-Authenticate", `Bearer realm="llmgate-admin"`)
		}
		a.log.LogAttrs(r.Context(), slog.LevelWarn, "admin: unauthorized request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("remote", r.RemoteAddr))
		writeError(w, errUnauthorized)
		return
	}
	handler, _ := a.mux.Handler(r)
	if _, ok := handler.(route); ok {
		a.mux.ServeHTTP(w, r) // again, so that the mux sets the path values
		return
	}
	// Learn what the mux would answer (405 and its Allow, or not).
	p := &probe{header: http.Header{}}
	handler.ServeHTTP(p, r)
	if p.status == http.StatusMethodNotAllowed {
		h.Set("Allow", p.header.Get("Allow"))
		writeError(w, errMethodNotAllowed)
		return
	}
	writeError(w, errNotFound)
}

// authenticate reports whether r carries the admin token (when one is
// configured) and Authorize accepts it (when set). The token is compared as
// SHA-256 hashes in constant time, so neither its bytes nor its length leak
// through timing.
func (a *api) authenticate(r *http.Request) bool {
	if a.tokenHash != nil {
		got, ok := bearer(r)
		if !ok {
			return false
		}
		sum := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(sum[:], a.tokenHash[:]) != 1 {
			return false
		}
	}
	return a.authorize == nil || a.authorize(r)
}

// bearer returns the token of an "Authorization: Bearer <token>" header;
// the scheme is matched case-insensitively.
func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// probe is a ResponseWriter that keeps only the status and headers, to
// learn what the mux answers for a request no route matched.
type probe struct {
	header http.Header
	status int
}

func (p *probe) Header() http.Header { return p.header }

func (p *probe) WriteHeader(status int) {
	if p.status == 0 {
		p.status = status
	}
}

func (p *probe) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return len(b), nil
}

// changed calls OnChange for hash, when set.
func (a *api) changed(hash [32]byte) {
	if a.onChange != nil {
		a.onChange(hash)
	}
}

package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/llmgate/gateway/internal/httpx"
	"github.com/llmgate/gateway/keys"
	"github.com/llmgate/gateway/providers"
)

// Principal is who a request acts for, as authentication found it: a
// gateway API key (KeyID set), a host identity from an Authenticator
// (Subject set), or nobody (the zero Principal). Event sinks read it from
// Event.Principal; model strategies read request.key. A Principal never
// holds a token or a credential.
type Principal struct {
	// KeyID is the gateway key's ID, "" without one.
	KeyID string `json:"key_id,omitempty"`
	// Subject names a caller authenticated by the host's Authenticator
	// (a user, a service, a certificate); "" otherwise.
	Subject string `json:"subject,omitempty"`
	// Account is whose credits the request spends (step 6); "" for none.
	Account string `json:"account,omitempty"`
	// Metadata is the key's operator metadata, or the host's.
	Metadata string `json:"metadata,omitempty"`
	// AllowedProviders and AllowedModels, when not empty, restrict the
	// request to those providers and models (403 provider_not_allowed or
	// model_not_allowed otherwise).
	AllowedProviders []string `json:"allowed_providers,omitempty"`
	AllowedModels    []string `json:"allowed_models,omitempty"`
}

// IsZero reports whether the principal is nobody.
func (p *Principal) IsZero() bool { return p.KeyID == "" && p.Subject == "" }

// Authenticator authenticates requests in place of gateway API keys (see
// WithAuthenticator): a JWT, an mTLS identity, the host's session.
// Authenticate returns the request's principal; an *Error is sent to the
// client as it is (for example Kind KindUnauthorized), and any other error
// is a 503 auth_unavailable. Implementations must be safe for concurrent
// use and must not read the request body.
type Authenticator interface {
	Authenticate(r *http.Request) (Principal, error)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(r *http.Request) (Principal, error)

// Authenticate calls f(r).
func (f AuthenticatorFunc) Authenticate(r *http.Request) (Principal, error) { return f(r) }

// principal is the request's Principal and what the gateway keeps beside
// it: the client's credential, for pass-through (empty once the request
// authenticated: a gateway token or a host's credential never leaves),
// the gateway token, for redaction only, and the gateway key's attached
// provider keys.
type principal struct {
	Principal
	// credential is the client's Authorization: Bearer or x-api-key value.
	credential providers.Secret
	// token is the gateway token the request authenticated with. It is
	// never sent anywhere; it is redacted from what upstreams answer (a
	// client may have pasted it into a prompt an upstream echoes).
	token    providers.Secret
	attached []keys.AttachedKey
}

// clientKeyID is the key ID of a credential passed through from the
// client, in attempts and events.
const clientKeyID = "client"

// authenticate finds out who the request acts for: a gateway API key
// (WithKeyStore), the host's Authenticator, or, when neither is required,
// nobody, with the client's credential kept for pass-through.
func (c *call) authenticate() *Error {
	cred := clientCredential(c.r, c.format)
	a := c.rt.auth
	switch {
	case a == nil:
		c.principal.credential = cred
		return nil
	case a.host != nil:
		p, err := a.host.Authenticate(c.r)
		if err != nil {
			return authError(err)
		}
		c.principal.Principal = p
		return nil
	}
	token := gatewayToken(c.r)
	if token == "" {
		if a.optional {
			c.principal.credential = cred
			return nil
		}
		return &Error{Kind: KindUnauthorized, Message: "this gateway requires a gateway API key: send it as Authorization: Bearer " + keys.TokenPrefix + "… or x-api-key"}
	}
	hash := keys.Hash(token)
	k, attached, err := a.cache.Lookup(c.r.Context(), hash)
	now := c.now()
	switch {
	case errors.Is(err, keys.ErrNotFound):
		return &Error{Kind: KindUnauthorized, Message: "invalid gateway API key (unknown or deleted)"}
	case err != nil:
		if ce := c.r.Context().Err(); ce != nil {
			return &Error{Kind: KindCanceled, Message: "client closed the request", Err: ce}
		}
		a.logger.Warn("llmgate: gateway key store unavailable", "err", err.Error())
		return &Error{Kind: KindAuthUnavailable, RetryAfter: time.Second, Message: "the gateway key store is unavailable; retry shortly"}
	case !keys.Equal(k.Hash, hash):
		return &Error{Kind: KindUnauthorized, Message: "invalid gateway API key (unknown or deleted)"}
	case k.Expired(now):
		return &Error{Kind: KindUnauthorized, Message: "gateway API key " + k.ID + " expired at " + k.ExpiresAt.UTC().Format(time.RFC3339)}
	case k.Endpoint != a.endpoint:
		return &Error{Kind: KindKeyWrongEndpoint, Message: "gateway API key " + k.ID + " belongs to another endpoint"}
	}
	c.principal.Principal = Principal{KeyID: k.ID, Account: k.Account, Metadata: k.Metadata,
		AllowedProviders: k.AllowedProviders, AllowedModels: k.AllowedModels}
	c.principal.attached = attached
	c.principal.token = providers.Secret(token)
	a.toucher.Used(k.ID, now)
	return nil
}

// authError turns an Authenticator's error into the client's.
func authError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Kind: KindAuthUnavailable, RetryAfter: time.Second, Err: err, Message: "authentication is unavailable; retry shortly"}
}

// gatewayToken returns the gateway API key the request carries, in
// Authorization: Bearer or x-api-key, or "".
func gatewayToken(r *http.Request) string {
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		if t := strings.TrimSpace(a[7:]); keys.LooksLikeToken(t) {
			return t
		}
	}
	if t := strings.TrimSpace(r.Header.Get("X-Api-Key")); keys.LooksLikeToken(t) {
		return t
	}
	return ""
}

// clientCredential returns the credential the client sent, preferring the
// header of its own API format.
func clientCredential(r *http.Request, f providers.Format) providers.Secret {
	bearer := ""
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		bearer = strings.TrimSpace(a[7:])
	}
	xkey := strings.TrimSpace(r.Header.Get("X-Api-Key"))
	if f == providers.FormatAnthropic && xkey != "" || bearer == "" {
		return providers.Secret(xkey)
	}
	return providers.Secret(bearer)
}

// attachedTo reports whether the attached key a is one of up's.
func (c *call) attachedTo(a *keys.AttachedKey, up *upstream) bool {
	return strings.EqualFold(a.Provider, up.id) || slices.ContainsFunc(up.cat.Aliases, func(s string) bool { return strings.EqualFold(s, a.Provider) })
}

// keylessKey returns the credential for an upstream with no configured
// keys under the pass-through mode, or, when the upstream cannot take the
// client's credential and cannot work without one, the reason to skip it.
func (c *call) keylessKey(up *upstream) (key providers.Key, skip string) {
	cred := c.principal.credential
	if cred == "" {
		return providers.Key{}, "" // nothing to pass; local servers need none
	}
	client := providers.Key{ID: clientKeyID, Secret: cred, Source: providers.KeyClient}
	switch c.cfg.passThrough {
	case PassThroughAny:
		return client, ""
	case PassThroughOff:
		return providers.Key{}, ""
	}
	switch {
	case up.passThrough || c.rt.catalog.MayOwnKey(up.cat, cred.Reveal()):
		return client, ""
	case up.custom:
		// A custom provider that did not opt in is called without the
		// client's credential: the host's own tokens stay home.
		return providers.Key{}, ""
	}
	return providers.Key{}, "the client's credential is not a " + up.id + " key and " + up.id + " has no configured key"
}

// Client headers sent upstream: an allow-list per client format, plus the
// operator's additions (WithForwardHeaders). Nothing else of the client's
// request leaves the gateway.
var (
	forwardCommon    = []string{"User-Agent", "Idempotency-Key"}
	forwardOpenAI    = []string{"Openai-Organization", "Openai-Project", "Openai-Beta", "Http-Referer", "X-Title"}
	forwardAnthropic = []string{"Anthropic-Version", "Anthropic-Beta"}
)

// neverForwarded are headers no allow-list may name: credentials, cookies,
// and what the transport owns.
var neverForwarded = map[string]bool{
	"Authorization": true, "X-Api-Key": true, "Api-Key": true, "Cookie": true, "Proxy-Authorization": true,
	"Connection": true, "Keep-Alive": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Proxy-Connection": true, "Content-Length": true, "Host": true, "Content-Type": true, "Accept": true,
	"Accept-Encoding": true,
}

// headerAllowList holds, per client format, the canonical names of the
// client headers sent upstream.
type headerAllowList struct {
	openAI, anthropic []string
}

func newHeaderAllowList(extra []string) headerAllowList {
	var l headerAllowList
	l.openAI = append(append(append(l.openAI, forwardCommon...), forwardOpenAI...), extra...)
	l.anthropic = append(append(append(l.anthropic, forwardCommon...), forwardAnthropic...), extra...)
	return l
}

// filter returns the client headers of format f that may be sent upstream.
// Values are shared with in, read-only.
func (l headerAllowList) filter(in http.Header, f providers.Format) http.Header {
	names := l.openAI
	if f == providers.FormatAnthropic {
		names = l.anthropic
	}
	var out http.Header
	for _, n := range names {
		if vs := in[n]; len(vs) > 0 {
			if out == nil {
				out = make(http.Header, 4)
			}
			out[n] = vs
		}
	}
	return out
}

func validHeaderName(n string) bool { return httpx.ValidHeaderName(n) }

// authState is how a routing authenticates: the host's Authenticator, or
// gateway API keys with their lookup cache and last-used writer. The cache
// and the writer run goroutines, started by start and stopped by stop; a
// Reload that keeps the same store and options keeps the same state.
type authState struct {
	host     Authenticator
	store    keys.KeyStore
	opts     KeyStoreOptions
	endpoint string
	optional bool
	cache    *keys.Cache
	toucher  *keys.Toucher
	logger   *slog.Logger

	once   sync.Once
	cancel context.CancelFunc
	done   chan struct{}
}

// newAuthState builds the authentication of cfg, reusing prev's when it
// has the same store and options; nil when requests are not
// authenticated.
func newAuthState(cfg *config, prev *routing) *authState {
	switch {
	case cfg.authenticator != nil:
		return &authState{host: cfg.authenticator, logger: cfg.logger}
	case cfg.keyStore == nil:
		return nil
	}
	if prev != nil && prev.auth != nil && prev.auth.store == cfg.keyStore && prev.auth.opts.equal(&cfg.keyStoreOpts) {
		return prev.auth
	}
	o := cfg.keyStoreOpts
	co, to := o.Cache, o.Touch
	if co.Now == nil {
		co.Now = cfg.now
	}
	if to.Now == nil {
		to.Now = cfg.now
	}
	return &authState{store: cfg.keyStore, opts: o, endpoint: o.Endpoint, optional: o.Optional,
		cache: keys.NewCache(cfg.keyStore, co), toucher: keys.NewToucher(cfg.keyStore, to), logger: cfg.logger}
}

// start starts the cache's watch and the last-used writer, once.
func (a *authState) start() {
	if a == nil || a.cache == nil {
		return
	}
	a.once.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		a.cancel, a.done = cancel, make(chan struct{})
		a.toucher.Start()
		go func() {
			defer close(a.done)
			_ = a.cache.Run(ctx)
		}()
	})
}

// stop stops what start started and flushes the pending last-used times
// (bounded by ctx).
func (a *authState) stop(ctx context.Context) {
	if a == nil || a.cancel == nil {
		return
	}
	a.cancel()
	<-a.done
	if err := a.toucher.Close(ctx); err != nil {
		a.logger.Warn("llmgate: flushing gateway key last-used times", "err", err.Error())
	}
}

// Forget drops what the gateway caches about the gateway key whose token
// hashes to hash, so that a change made through this replica's admin API
// (an update, a revocation, an attached key) applies to the next request
// at once. Stores that watch (PostgreSQL) tell every replica by
// themselves. Safe for concurrent use; a no-op without WithKeyStore.
func (g *Gateway) Forget(hash [32]byte) {
	if a := g.routing.Load().auth; a != nil && a.cache != nil {
		a.cache.Forget(hash)
	}
}

// attachedKeys returns the provider keys attached to the request's gateway
// key for up, newest first, which replace up's configured keys; ok is
// false when none is attached. Keys that cannot be opened are left out;
// when none can, the provider is skipped with why.
func (c *call) attachedKeys(up *upstream) (ks []*keyState, skip string, ok bool) {
	for i := range c.principal.attached {
		a := &c.principal.attached[i]
		if !c.attachedTo(a, up) {
			continue
		}
		ok = true
		sealer := c.rt.auth.opts.Sealer
		if sealer == nil {
			skip = "provider keys are attached to gateway key " + c.principal.KeyID + " but no key-encryption key is configured to open them"
			continue
		}
		secret, err := sealer.OpenAttached(a)
		if err != nil {
			skip = "the provider key " + a.ID + " attached to gateway key " + c.principal.KeyID + " cannot be opened: " + err.Error()
			continue
		}
		k := providers.Key{ID: a.ID, Secret: providers.Secret(secret), Source: providers.KeyAttached}
		ks = append(ks, &keyState{key: k, series: c.rt.metrics.Key(up.id, a.ID)})
	}
	if len(ks) > 0 {
		skip = ""
	}
	return ks, skip, ok
}

// metadataMap returns the principal's metadata as request.key.metadata
// sees it: the object it holds when it is a JSON object, else nil.
func (p *principal) metadataMap() map[string]any {
	if len(p.Metadata) < 2 || p.Metadata[0] != '{' {
		return nil
	}
	var m map[string]any
	if json.Unmarshal([]byte(p.Metadata), &m) != nil {
		return nil
	}
	return m
}

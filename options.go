package gateway

import (
	"errors"
	"fmt"
	"github.com/llmgate/gateway/redaction"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/credits"
	"github.com/llmgate/gateway/keys"
	"github.com/llmgate/gateway/metrics"
	"github.com/llmgate/gateway/providers"
)

// Defaults of the options, as documented on each With* function.
const (
	DefaultPerAttemptTimeout = 3 * time.Minute
	DefaultTotalTimeout      = 6 * time.Minute
	DefaultMaxRequestBytes   = 32 << 20
	DefaultMaxResponseBytes  = 64 << 20
	DefaultMaxEventBytes     = 8 << 20
	DefaultHoldbackEvents    = 64
	DefaultHoldbackBytes     = 256 << 10
	DefaultAuthCooldown      = 5 * time.Minute
	DefaultRateLimitCooldown = 10 * time.Second
	DefaultMaxRetryAfter     = 2 * time.Minute
	DefaultStreamKeepAlive   = 15 * time.Second
	DefaultMaxModels         = 16
	DefaultMaxAttempts       = 20
	DefaultBodyReadTimeout   = time.Minute
	DefaultWriteTimeout      = 30 * time.Second
)

// PassThroughMode decides whether a client's own credential (its
// Authorization: Bearer or x-api-key header) may be sent to a provider that
// has no configured keys.
type PassThroughMode uint8

// The pass-through modes.
const (
	// PassThroughScoped (the default) sends a client credential only to a
	// provider that can own it: a catalog provider whose declared key
	// prefixes match it ("sk-ant-" for Anthropic, "gsk_" for Groq, ...; the
	// longest matching prefix decides), or a provider configured with
	// ProviderConfig.PassThrough. A keyless catalog provider that cannot
	// own the credential is skipped, with the reason in the attempt list; a
	// keyless custom provider without PassThrough is called with no
	// credential at all (local servers such as Ollama need none).
	PassThroughScoped PassThroughMode = iota
	// PassThroughOff never sends a client credential upstream: keyless
	// providers are called with no credential.
	PassThroughOff
	// PassThroughAny sends the client's credential to every keyless
	// provider in the request's plan. Unsafe: on failover an OpenAI key can
	// reach Anthropic, and a host's own session token can reach a custom
	// provider. It exists for gateways whose every provider trusts every
	// client credential.
	PassThroughAny
)

// String returns "scoped", "off" or "any".
func (m PassThroughMode) String() string {
	switch m {
	case PassThroughScoped:
		return "scoped"
	case PassThroughOff:
		return "off"
	case PassThroughAny:
		return "any"
	}
	return "PassThroughMode(" + strconv.Itoa(int(m)) + ")"
}

// ParsePassThroughMode parses "scoped", "off" or "any" (ASCII
// case-insensitive).
func ParsePassThroughMode(s string) (PassThroughMode, error) {
	for _, m := range [...]PassThroughMode{PassThroughScoped, PassThroughOff, PassThroughAny} {
		if strings.EqualFold(s, m.String()) {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown pass-through mode %q (want scoped, off or any)", s)
}

// Option configures a Gateway. Options are applied in order by New, but no
// option depends on another's position: repeated options either add up
// (documented as "additive") or the last one wins. An Option that receives
// an invalid argument does not panic; New reports the problem.
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

// OptionError is one problem with the options given to New or Reload: the
// option it came from, and for WithProvider the provider and the field of
// ProviderConfig. New and Reload return every problem at once, joined;
// OptionErrors lists them. A configuration layer (package config) maps
// them back to the lines of its file.
type OptionError struct {
	// Option is the option's constructor, such as "WithProvider" or
	// "WithTimeouts"; "" for a rule between options.
	Option string
	// Provider is the provider ID, for WithProvider problems.
	Provider string
	// Index is the position of the WithProvider option among the
	// WithProvider options given (0-based), for WithProvider problems, so
	// that entries sharing an ID can be told apart; 0 otherwise.
	Index int
	// Field is the path of the field at fault inside the option's argument,
	// such as "Keys[1].Value", "BaseURL" or "Models[2].ID"; "" for the
	// option as a whole.
	Field string
	// Err is the problem.
	Err error
}

// Error returns "Option(provider).Field: problem".
func (e *OptionError) Error() string {
	var b strings.Builder
	b.WriteString(e.Option)
	if e.Provider != "" {
		b.WriteString("(")
		b.WriteString(strconv.Quote(e.Provider))
		b.WriteString(")")
	}
	if e.Field != "" {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(e.Field)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns Err.
func (e *OptionError) Unwrap() error { return e.Err }

// OptionErrors returns every *OptionError in err's tree (as returned by New
// or Reload), in order.
func OptionErrors(err error) []*OptionError {
	var out []*OptionError
	var walk func(error)
	walk = func(err error) {
		switch x := err.(type) {
		case nil:
		case *OptionError:
			out = append(out, x)
		case interface{ Unwrap() []error }:
			for _, e := range x.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(x.Unwrap())
		}
	}
	walk(err)
	return out
}

// elemErr returns an *OptionError for element i of a list option.
func elemErr(option string, i int, format string, args ...any) *OptionError {
	return &OptionError{Option: option, Field: "[" + strconv.Itoa(i) + "]", Err: fmt.Errorf(format, args...)}
}

// fieldErr returns an *OptionError for one named argument of an option.
func fieldErr(option, field, format string, args ...any) *OptionError {
	return &OptionError{Option: option, Field: field, Err: fmt.Errorf(format, args...)}
}

// positive reports each of the named durations that is not positive.
func positive(option string, names []string, ds ...time.Duration) error {
	var errs []error
	for i, d := range ds {
		if d <= 0 {
			errs = append(errs, fieldErr(option, names[i], "must be positive, got %v", d))
		}
	}
	return errors.Join(errs...)
}

// optErr returns an *OptionError for option name.
func optErr(option, format string, args ...any) *OptionError {
	return &OptionError{Option: option, Err: fmt.Errorf(format, args...)}
}

// providerErr returns an *OptionError for a field of the index-th
// WithProvider option.
func providerErr(index int, id, field, format string, args ...any) *OptionError {
	return &OptionError{Option: "WithProvider", Provider: id, Index: index, Field: field, Err: fmt.Errorf(format, args...)}
}

// ProviderKey is one upstream credential of a provider.
type ProviderKey struct {
	// ID names the key in attempts, events and errors; "" means "key-<n>"
	// for the n-th key of the provider (1-based). It must not be secret.
	ID string
	// Value is the credential.
	Value providers.Secret
	// Weight is the key's share of the provider's traffic under the
	// "weighted" key selection (see WithKeySelection), relative to the
	// provider's other keys; 0 means 1. It must not be negative and is
	// ignored by the other selections.
	Weight int
}

// ProviderConfig configures one provider: a built-in catalog provider (ID
// "openai", "anthropic", ..., or one of their aliases), which it overrides,
// or a custom provider with a new ID, which it defines. Zero fields keep the
// catalog's values.
type ProviderConfig struct {
	// ID is the provider ID clients use as a "provider:" model prefix.
	// Required.
	ID string
	// Aliases are other names clients may use for the provider.
	Aliases []string
	// BaseURL is the API root (for example "https://api.openai.com/v1/" or
	// "http://localhost:11434/v1/"). Required for custom providers.
	BaseURL string
	// Format is the wire format of a custom provider; "" means
	// providers.FormatOpenAI.
	Format providers.Format
	// Surfaces lists the API surfaces the provider serves; nil means every
	// surface of its format (catalog providers keep the catalog's list).
	Surfaces []providers.Surface
	// Keys are the upstream credentials, tried in order on failover. With no
	// keys the client's own credential is passed through (pass-through
	// mode).
	Keys []ProviderKey
	// Models lists models for the provider: for a catalog provider they
	// override or extend its catalog entries; for a custom provider they are
	// its only models. With WithOnlyConfiguredModels, the models listed here
	// are the only ones clients may use.
	Models []catalog.Model
	// DefaultModel is the model used for "auto" requests; "" means the
	// catalog default, or the first listed model of a custom provider.
	DefaultModel string
	// Headers are extra headers sent upstream on every request.
	Headers map[string]string
	// QueryParams are extra query parameters on every upstream request (for
	// example Azure's "api-version").
	QueryParams map[string]string
	// AuthHeader names the header carrying the key: "" means the format's
	// default (OpenAI "Authorization: Bearer", Anthropic "x-api-key"); any
	// other name sends the raw key in that header (Azure: "api-key").
	AuthHeader string
	// StreamUsage, when set, says whether the provider accepts
	// stream_options.include_usage on streaming chat completions; nil keeps
	// the catalog value (true for custom OpenAI-format providers).
	StreamUsage *bool
	// Disabled removes the provider (and its models) from the gateway.
	Disabled bool
	// KeyPrefixes replace the catalog's declared key prefixes of the
	// provider when not empty: under PassThroughScoped a client credential
	// reaches a keyless provider only when it starts with one of them (and
	// no provider declares a longer prefix it starts with).
	KeyPrefixes []string
	// PassThrough lets the client's own credential reach this provider
	// when it has no Keys, under the default PassThroughScoped mode: the
	// opt-in of a custom provider that expects its users' own keys (see
	// WithPassThrough). Catalog providers take the credentials their key
	// prefixes match without it.
	PassThrough bool
	// KeySelection, when not empty, replaces WithKeySelection for this
	// provider's keys: a built-in balancing name or CEL key strategies.
	KeySelection []string
	// Policy changes every request sent to the provider: headers, query
	// parameters, body members set or removed, and a cap on the answer
	// (see RequestPolicy). Its Headers replace Headers of the same name.
	Policy RequestPolicy
	// ModelPolicies change the requests sent to one model of the
	// provider, keyed by the model's ID or alias (a catalog model or one
	// of Models; an unknown one is an error). A model's policy overrides
	// Policy field by field: Headers, QueryParams and Set are merged with
	// Policy's (the model's value wins for a name in both, and a member
	// the model denies is not set), Deny adds to Policy's (a member the
	// model sets is not denied), and MaxOutputTokens, when not 0, replaces
	// Policy's. Models passed through unknown ("openai:some-new-model")
	// get Policy only.
	ModelPolicies map[string]RequestPolicy
	// index is the position of the WithProvider option, set by New.
	index int

	// Provider, when non-nil, is a custom transport used instead of the
	// built-in OpenAI or Anthropic implementation; BaseURL, Headers,
	// QueryParams and AuthHeader are then ignored (Policy's headers and
	// query parameters reach it in providers.Request).
	Provider providers.Provider
}

type config struct {
	catalog           *catalog.Catalog
	providers         []ProviderConfig
	onlyProviders     bool
	onlyModels        bool
	perAttemptTimeout time.Duration
	totalTimeout      time.Duration
	streamIdleTimeout time.Duration
	keepAlive         time.Duration
	maxRequestBytes   int64
	maxResponseBytes  int64
	maxEventBytes     int
	holdbackEvents    int
	holdbackBytes     int
	failFast          map[int]bool
	authCooldown      time.Duration
	rateLimitCooldown time.Duration
	maxRetryAfter     time.Duration
	httpClient        *http.Client
	logger            *slog.Logger
	sinks             []EventSink
	defaultModels     []string
	now               func() time.Time
	passThrough       PassThroughMode
	errorDetail       bool
	corsOrigins       []string
	maxModels         int
	maxAttempts       int
	bodyReadTimeout   time.Duration
	writeTimeout      time.Duration
	forwardHeaders    []string // canonical names, beyond the built-in allow-list
	allowedHosts      []string // lower-case host names (no port); nil allows every Host
	modelSelection    []string // CEL model strategies, in order
	keySelection      []string // built-in key balancing name or CEL key strategies
	metrics           *metrics.Recorder
	keyStore          keys.KeyStore
	keyStoreOpts      KeyStoreOptions
	authenticator     Authenticator
	ledger            credits.Ledger
	metering          MeteringOptions
	maxInputTokens    int
	maxOutputTokens   int
	allowLists        map[providers.Surface][]string // WithParamAllowList
	redactor          *redaction.Redactor            // WithRedaction; nil when it has no rules
	redactMode        redaction.Mode
	inspector         InspectorSink // WithInspector; nil when off
	inspectorOpts     InspectorOptions
	tracer            Tracer // WithTracer; nil when off
}

func defaultConfig() config {
	return config{
		perAttemptTimeout: DefaultPerAttemptTimeout,
		totalTimeout:      DefaultTotalTimeout,
		maxRequestBytes:   DefaultMaxRequestBytes,
		maxResponseBytes:  DefaultMaxResponseBytes,
		maxEventBytes:     DefaultMaxEventBytes,
		holdbackEvents:    DefaultHoldbackEvents,
		holdbackBytes:     DefaultHoldbackBytes,
		authCooldown:      DefaultAuthCooldown,
		rateLimitCooldown: DefaultRateLimitCooldown,
		maxRetryAfter:     DefaultMaxRetryAfter,
		keepAlive:         DefaultStreamKeepAlive,
		now:               time.Now,
		maxModels:         DefaultMaxModels,
		maxAttempts:       DefaultMaxAttempts,
		bodyReadTimeout:   DefaultBodyReadTimeout,
		writeTimeout:      DefaultWriteTimeout,
	}
}

// WithProvider configures a provider (additive: one option per provider).
// Configuring the same ID twice is an error reported by New.
//
// The configuration is copied when WithProvider is called: later changes to
// the caller's slices and maps do not affect the option.
func WithProvider(p ProviderConfig) Option {
	p.Aliases = slices.Clone(p.Aliases)
	p.KeyPrefixes = slices.Clone(p.KeyPrefixes)
	p.Surfaces = slices.Clone(p.Surfaces)
	p.Keys = slices.Clone(p.Keys)
	p.KeySelection = slices.Clone(p.KeySelection)
	p.Models = slices.Clone(p.Models)
	for i := range p.Models {
		p.Models[i].Aliases = slices.Clone(p.Models[i].Aliases)
		p.Models[i].Metadata = maps.Clone(p.Models[i].Metadata)
	}
	p.Headers = maps.Clone(p.Headers)
	p.QueryParams = maps.Clone(p.QueryParams)
	p.Policy = p.Policy.clone()
	if p.ModelPolicies != nil {
		mp := make(map[string]RequestPolicy, len(p.ModelPolicies))
		for k, v := range p.ModelPolicies {
			mp[k] = v.clone()
		}
		p.ModelPolicies = mp
	}
	return optionFunc(func(c *config) error {
		if p.ID == "" {
			return providerErr(len(c.providers), "", "ID", "provider ID is empty")
		}
		p.index = len(c.providers)
		c.providers = append(c.providers, p)
		return nil
	})
}

// WithCatalog replaces the built-in catalog (catalog.Default) as the base
// that providers configured with WithProvider extend. Last one wins.
func WithCatalog(cat *catalog.Catalog) Option {
	return optionFunc(func(c *config) error {
		if cat == nil {
			return optErr("WithCatalog", "catalog is nil")
		}
		c.catalog = cat
		return nil
	})
}

// WithOnlyConfiguredProviders refuses (403 provider_not_allowed) every
// provider not configured with WithProvider. Default false: every catalog
// provider may be used.
func WithOnlyConfiguredProviders(only bool) Option {
	return optionFunc(func(c *config) error { c.onlyProviders = only; return nil })
}

// WithOnlyConfiguredModels refuses (403 model_not_allowed) every model not
// listed in some ProviderConfig.Models. Default false.
func WithOnlyConfiguredModels(only bool) Option {
	return optionFunc(func(c *config) error { c.onlyModels = only; return nil })
}

// WithTimeouts sets the per-attempt timeout (default 3m) and the total
// timeout over all attempts (default 6m). Both bound the time until the
// response is committed to the client: for a JSON response, until its body
// has arrived; for a stream, until its first content event. A committed
// stream then runs as long as events keep arriving (see
// WithStreamIdleTimeout). Both must be positive, and perAttempt must not
// exceed total.
func WithTimeouts(perAttempt, total time.Duration) Option {
	return optionFunc(func(c *config) error {
		if err := positive("WithTimeouts", []string{"perAttempt", "total"}, perAttempt, total); err != nil {
			return err
		}
		c.perAttemptTimeout, c.totalTimeout = perAttempt, total
		return nil
	})
}

// WithStreamIdleTimeout cuts a committed stream whose upstream sends
// nothing for d; the client receives an in-stream error. Default: the
// per-attempt timeout.
func WithStreamIdleTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d <= 0 {
			return optErr("WithStreamIdleTimeout", "must be positive, got %v", d)
		}
		c.streamIdleTimeout = d
		return nil
	})
}

// WithStreamKeepAlive sets how often a translated stream that the upstream
// leaves silent gets a keep-alive in the client's format (an Anthropic
// "ping" event, or an SSE comment for OpenAI clients), so proxies and
// clients do not drop it; 0 disables keep-alives. Default 15s. Streams in
// the client's own format carry the upstream's bytes only.
func WithStreamKeepAlive(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d < 0 {
			return optErr("WithStreamKeepAlive", "must not be negative, got %v", d)
		}
		c.keepAlive = d
		return nil
	})
}

// WithMaxRequestBytes limits the request body size (default 32 MiB); larger
// bodies get 413 input_too_large.
func WithMaxRequestBytes(n int64) Option {
	return optionFunc(func(c *config) error {
		if n <= 0 {
			return optErr("WithMaxRequestBytes", "must be positive, got %d", n)
		}
		c.maxRequestBytes = n
		return nil
	})
}

// WithMaxResponseBytes limits the size of a non-streaming upstream response
// body (default 64 MiB); a larger one fails the attempt.
func WithMaxResponseBytes(n int64) Option {
	return optionFunc(func(c *config) error {
		if n <= 0 {
			return optErr("WithMaxResponseBytes", "must be positive, got %d", n)
		}
		c.maxResponseBytes = n
		return nil
	})
}

// WithMaxEventBytes limits the size of one server-sent event read from an
// upstream (default 8 MiB); a larger event fails the stream.
func WithMaxEventBytes(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1024 {
			return optErr("WithMaxEventBytes", "must be at least 1024, got %d", n)
		}
		c.maxEventBytes = n
		return nil
	})
}

// WithStreamHoldback bounds how much of a stream's preamble (events before
// the first content, such as OpenAI's role-only chunk or Anthropic's
// message_start) the gateway holds back so that an upstream failure before
// any content can still fail over. Defaults: 64 events, 256 KiB. When either
// bound is reached the stream is committed.
func WithStreamHoldback(events, bytes int) Option {
	return optionFunc(func(c *config) error {
		var errs []error
		if events < 0 {
			errs = append(errs, fieldErr("WithStreamHoldback", "events", "must not be negative, got %d", events))
		}
		if bytes < 0 {
			errs = append(errs, fieldErr("WithStreamHoldback", "bytes", "must not be negative, got %d", bytes))
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		c.holdbackEvents, c.holdbackBytes = events, bytes
		return nil
	})
}

// WithFailFastStatuses lists upstream statuses that end the request at once
// instead of failing over: the client receives the provider's error. By
// default every 4xx and 5xx fails over (additive across calls).
func WithFailFastStatuses(statuses ...int) Option {
	return optionFunc(func(c *config) error {
		if c.failFast == nil {
			c.failFast = make(map[int]bool)
		}
		var errs []error
		for i, s := range statuses {
			if s < 400 || s > 599 {
				errs = append(errs, elemErr("WithFailFastStatuses", i, "%d is not a 4xx or 5xx status", s))
				continue
			}
			c.failFast[s] = true
		}
		return errors.Join(errs...)
	})
}

// WithKeyCooldowns sets how long a key is skipped after the upstream refused
// it (401, 402, 403; default 5m) and after a rate limit (429) without a
// Retry-After header (default 10s). A Retry-After header is honoured up to
// maxRetryAfter (default 2m).
func WithKeyCooldowns(auth, rateLimit, maxRetryAfter time.Duration) Option {
	return optionFunc(func(c *config) error {
		var errs []error
		for i, d := range [...]time.Duration{auth, rateLimit, maxRetryAfter} {
			if d < 0 {
				errs = append(errs, fieldErr("WithKeyCooldowns", [...]string{"auth", "rateLimit", "maxRetryAfter"}[i],
					"durations must not be negative, got %v", d))
			}
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		c.authCooldown, c.rateLimitCooldown, c.maxRetryAfter = auth, rateLimit, maxRetryAfter
		return nil
	})
}

// WithHTTPClient sets the client used for every upstream request by the
// built-in providers. The default is a dedicated client with a tuned
// transport whose idle connections Close releases. The client must not set
// Timeout, which would cut long streams (the gateway applies its own
// timeouts), and should not follow redirects (CheckRedirect returning
// http.ErrUseLastResponse), which would replay requests and credentials
// to another URL.
func WithHTTPClient(hc *http.Client) Option {
	return optionFunc(func(c *config) error {
		if hc == nil {
			return optErr("WithHTTPClient", "client is nil")
		}
		if hc.Timeout != 0 {
			return optErr("WithHTTPClient", "client.Timeout must be zero (it would cut streams); use WithTimeouts")
		}
		c.httpClient = hc
		return nil
	})
}

// WithLogger sets the logger for the gateway's own diagnostics (not request
// events; see WithEventSink). Default: slog.Default().
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) error {
		if l == nil {
			return optErr("WithLogger", "logger is nil")
		}
		c.logger = l
		return nil
	})
}

// WithEventSink adds a sink that receives one Event per request (additive).
func WithEventSink(s EventSink) Option {
	return optionFunc(func(c *config) error {
		if s == nil {
			return optErr("WithEventSink", "sink is nil")
		}
		c.sinks = append(c.sinks, s)
		return nil
	})
}

// WithDefaultModels sets the models tried, in order, for requests that name
// no model or the model "auto". Default: the default model of each
// configured provider in configuration order, or of OpenAI and Anthropic
// when none is configured. Last one wins.
func WithDefaultModels(models ...string) Option {
	return optionFunc(func(c *config) error {
		var errs []error
		for i, m := range models {
			if m == "" {
				errs = append(errs, elemErr("WithDefaultModels", i, "empty model name"))
			}
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		c.defaultModels = append([]string(nil), models...)
		return nil
	})
}

// WithClock sets the time source for cooldowns and for every timestamp and
// duration in events and attempts (default time.Now). Timeouts always use
// real timers.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) error {
		if now == nil {
			return optErr("WithClock", "nil function")
		}
		c.now = now
		return nil
	})
}

// WithPassThrough sets whether, and to which providers, a client's own
// credential is sent when the provider has no configured keys. Default
// PassThroughScoped. Last one wins.
func WithPassThrough(mode PassThroughMode) Option {
	return optionFunc(func(c *config) error {
		if mode > PassThroughAny {
			return optErr("WithPassThrough", "unknown mode %d", mode)
		}
		c.passThrough = mode
		return nil
	})
}

// WithErrorDetail, when on, puts the key IDs and the upstream reasons of
// each attempt in the error bodies sent to clients (and the last upstream
// reason in the message). Default off: clients see each attempt's
// provider, model, status and error class only. Events always carry
// everything. Upstream text is redacted either way.
func WithErrorDetail(on bool) Option {
	return optionFunc(func(c *config) error { c.errorDetail = on; return nil })
}

// WithCORS answers CORS preflight requests (OPTIONS) from the given origins
// and adds the CORS response headers to their requests, so browser
// applications on those origins may call the gateway. An origin is
// "scheme://host[:port]" or "*" for any origin. Additive. Default: no
// CORS; OPTIONS gets 405.
func WithCORS(origins ...string) Option {
	return optionFunc(func(c *config) error {
		var errs []error
		for i, o := range origins {
			if o != "*" && !validOrigin(o) {
				errs = append(errs, elemErr("WithCORS", i, "origin %q must be \"*\" or scheme://host[:port]", o))
				continue
			}
			c.corsOrigins = append(c.corsOrigins, strings.TrimSuffix(o, "/"))
		}
		return errors.Join(errs...)
	})
}

// WithMaxModels caps how many models one request may name in "model" and
// "models" together (default 16); a longer list gets 400 invalid_request
// naming the limit.
func WithMaxModels(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1 {
			return optErr("WithMaxModels", "must be at least 1, got %d", n)
		}
		c.maxModels = n
		return nil
	})
}

// WithMaxAttempts caps the upstream requests one client request may make
// across all its candidates and keys (default 20). When the cap is reached
// the request fails with 503 all_providers_failed.
func WithMaxAttempts(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1 {
			return optErr("WithMaxAttempts", "must be at least 1, got %d", n)
		}
		c.maxAttempts = n
		return nil
	})
}

// WithClientTimeouts bounds the gateway's waits on the client, so that
// slow or stalled clients cannot hold a handler forever: readBody bounds
// reading the whole request body (default 1m; 408 request_timeout), and
// write bounds each write to the client, such as one streamed event
// (default 30s; a stream whose client stops reading is cut and its
// upstream request canceled). They are set through http.ResponseController
// and cleared when the request ends; a ResponseWriter without deadline
// support is served without them.
func WithClientTimeouts(readBody, write time.Duration) Option {
	return optionFunc(func(c *config) error {
		if err := positive("WithClientTimeouts", []string{"readBody", "write"}, readBody, write); err != nil {
			return err
		}
		c.bodyReadTimeout, c.writeTimeout = readBody, write
		return nil
	})
}

// WithForwardHeaders adds client request headers that are sent upstream,
// beyond the built-in allow-list (User-Agent, Idempotency-Key,
// OpenAI-Organization, OpenAI-Project, OpenAI-Beta, HTTP-Referer, X-Title,
// Anthropic-Version, Anthropic-Beta). No other header of the client's
// request leaves the gateway; credentials, cookies and hop-by-hop headers
// never do. Additive. The built-in providers forward only the headers
// their API defines; a custom providers.Provider sees all of these in
// Request.Header.
func WithForwardHeaders(names ...string) Option {
	return optionFunc(func(c *config) error {
		var errs []error
		for i, n := range names {
			canon := http.CanonicalHeaderKey(n)
			switch {
			case !validHeaderName(n):
				errs = append(errs, elemErr("WithForwardHeaders", i, "%q is not a valid header name", n))
			case neverForwarded[canon]:
				errs = append(errs, elemErr("WithForwardHeaders", i, "%s is never forwarded", canon))
			default:
				c.forwardHeaders = append(c.forwardHeaders, canon)
			}
		}
		return errors.Join(errs...)
	})
}

// WithAllowedHosts refuses (403 host_not_allowed) requests whose Host
// header, without its port, is not one of hosts (ASCII case-insensitive).
// A gateway on a loopback address that runs on the operator's own provider
// keys should allow only loopback names ("localhost", "127.0.0.1", "::1"):
// a web page the operator visits could otherwise reach it through DNS
// rebinding. Additive. Default: every Host.
func WithAllowedHosts(hosts ...string) Option {
	return optionFunc(func(c *config) error {
		var errs []error
		for i, h := range hosts {
			h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
			if h == "" || strings.ContainsAny(h, "/@ ") || strings.Contains(h, ":") && net.ParseIP(h) == nil {
				errs = append(errs, elemErr("WithAllowedHosts", i, "%q is not a host name or IP address (no port, no scheme)", h))
				continue
			}
			c.allowedHosts = append(c.allowedHosts, strings.ToLower(h))
		}
		return errors.Join(errs...)
	})
}

// WithModelSelection sets the model selection strategies: CEL expressions
// over the candidate models (ai.models, ai.providers, ai.authors) and the
// request (request.headers, request.input_tokens, ...), tried in order
// until one yields at least one usable model. Each must evaluate to a model
// or a list of models. When the client names models, strategies can only
// remove them (the client's order is kept); for "auto", or with no model,
// strategies choose and order the candidates. Every expression is parsed,
// type-checked and cost-limited by New: a bad one is an *OptionError
// naming it and the position. An expression that fails when a request
// evaluates it fails that request (422 model_selection_failed). The last
// call wins; no expressions (the default) keeps the client's models in
// order. See the README's "Model selection" section for the language.
func WithModelSelection(exprs ...string) Option {
	exprs = slices.Clone(exprs)
	return optionFunc(func(c *config) error { c.modelSelection = exprs; return nil })
}

// WithKeySelection sets how each provider's keys are ordered for a
// request (ProviderConfig.KeySelection overrides it per provider). Either
// one built-in name:
//
//   - "ordered" (the default): keys in configured order; the first takes
//     all traffic while it works.
//   - "round_robin": each request starts at the next key.
//   - "weighted": random order, the first key drawn in proportion to
//     ProviderKey.Weight.
//   - "least_in_flight": fewest attempts in flight first.
//   - "least_latency": lowest average upstream latency in the metrics
//     window first (keys without history first, so they get measured).
//
// or CEL key strategies over ai.keys (id, weight, cooling_down, in_flight,
// metrics, error_rate) evaluated like model strategies: the first to yield
// a key wins, and keys it leaves out are tried after it only when
// failing over. Failover still reaches every key; the selection only
// orders them. The last call wins.
func WithKeySelection(exprs ...string) Option {
	exprs = slices.Clone(exprs)
	return optionFunc(func(c *config) error { c.keySelection = exprs; return nil })
}

// WithMetrics makes the gateway record its upstream traffic in rec instead
// of a recorder of its own (with metrics.Options defaults and the
// gateway's clock). A host passes one to read it (rec.Each) or to share
// live metrics between gateways. Metrics feed selection strategies
// (m.metrics, k.metrics) and the least_in_flight and least_latency key
// selections. A Reload without WithMetrics keeps the current recorder.
func WithMetrics(rec *metrics.Recorder) Option {
	return optionFunc(func(c *config) error {
		if rec == nil {
			return optErr("WithMetrics", "recorder is nil")
		}
		c.metrics = rec
		return nil
	})
}

// KeyStoreOptions configures gateway API keys (WithKeyStore).
type KeyStoreOptions struct {
	// Endpoint names this gateway: only keys created for it work here
	// (others get 403 key_endpoint_mismatch), so one store can serve
	// several gateways. Required.
	Endpoint string
	// Optional lets requests without a gateway token through as if there
	// were no key store: configured provider keys and scoped pass-through
	// (see WithPassThrough), which then need the host's own
	// authentication in front. A token that looks like a gateway key is
	// always checked, and an unknown one is refused (401), never passed
	// through. Default false: every request needs a key.
	Optional bool
	// Sealer opens the provider keys attached to gateway keys (BYOK),
	// which then replace the configured keys of their provider, newest
	// first. Nil: a request whose key has attached keys skips their
	// providers, saying why.
	Sealer *keys.Sealer
	// Cache configures the in-process lookup cache (TTL 30s, negative
	// TTL 5s by default): a revocation reaches this gateway within the
	// TTL, or at once through Gateway.Forget or a store that watches.
	Cache keys.CacheOptions
	// Touch configures the batched writer of last-used times (every 10s
	// by default).
	Touch keys.TouchOptions
}

func (o *KeyStoreOptions) equal(p *KeyStoreOptions) bool {
	return o.Endpoint == p.Endpoint && o.Optional == p.Optional && o.Sealer == p.Sealer &&
		o.Cache.TTL == p.Cache.TTL && o.Cache.NegativeTTL == p.Cache.NegativeTTL && o.Cache.MaxEntries == p.Cache.MaxEntries &&
		o.Touch.Interval == p.Touch.Interval && o.Touch.MaxPending == p.Touch.MaxPending
}

// WithKeyStore authenticates clients with gateway API keys from store (see
// package keys): a key sent as Authorization: Bearer or x-api-key is
// looked up by its hash (cached), must belong to o.Endpoint and not be
// expired, and restricts the request to its allowed providers and models.
// The key never goes upstream. Gateway.Close stops the cache's watch and
// flushes the last-used times. Not with WithAuthenticator.
func WithKeyStore(store keys.KeyStore, o KeyStoreOptions) Option {
	return optionFunc(func(c *config) error {
		var errs []error
		if store == nil {
			errs = append(errs, optErr("WithKeyStore", "store is nil"))
		}
		if o.Endpoint == "" {
			errs = append(errs, &OptionError{Option: "WithKeyStore", Field: "Endpoint", Err: errors.New("the endpoint name is required")})
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		c.keyStore, c.keyStoreOpts = store, o
		return nil
	})
}

// WithAuthenticator authenticates every request with the host's a (a JWT,
// an mTLS identity, a session) instead of gateway API keys. The client's
// credential is then never passed through upstream. Not with
// WithKeyStore.
func WithAuthenticator(a Authenticator) Option {
	return optionFunc(func(c *config) error {
		if a == nil {
			return optErr("WithAuthenticator", "authenticator is nil")
		}
		c.authenticator = a
		return nil
	})
}

// validate checks the rules between options, after every option applied.
func (c *config) validate() error {
	var errs []error
	if c.perAttemptTimeout > c.totalTimeout {
		errs = append(errs, optErr("WithTimeouts", "per-attempt timeout %v exceeds total timeout %v", c.perAttemptTimeout, c.totalTimeout))
	}
	seen := map[string]bool{}
	for pi, p := range c.providers {
		if seen[lower(p.ID)] {
			errs = append(errs, providerErr(pi, p.ID, "ID", "provider configured twice"))
		}
		seen[lower(p.ID)] = true
		if p.Disabled {
			continue
		}
		if p.Format != "" && !p.Format.Valid() {
			errs = append(errs, providerErr(pi, p.ID, "Format", "unknown format %q", p.Format))
		}
		keyIDs := map[string]bool{}
		for i, k := range p.Keys {
			field := fmt.Sprintf("Keys[%d]", i)
			if k.Value == "" {
				errs = append(errs, providerErr(pi, p.ID, field+".Value", "key %d has an empty value", i+1))
			}
			id := k.ID
			if id == "" {
				id = fmt.Sprintf("key-%d", i+1)
			}
			if keyIDs[id] {
				errs = append(errs, providerErr(pi, p.ID, field+".ID", "key ID %q used twice", id))
			}
			keyIDs[id] = true
			if k.Weight < 0 {
				errs = append(errs, providerErr(pi, p.ID, field+".Weight", "key weight %d is negative", k.Weight))
			}
			if id == clientKeyID {
				errs = append(errs, providerErr(pi, p.ID, field+".ID", "key ID %q is reserved for pass-through credentials", id))
			}
		}
		models := map[string]int{}
		for i, m := range p.Models {
			if j, dup := models[lower(m.ID)]; dup && m.ID != "" {
				errs = append(errs, providerErr(pi, p.ID, fmt.Sprintf("Models[%d].ID", i), "model %q is listed twice (also Models[%d])", m.ID, j))
			}
			models[lower(m.ID)] = i
		}
		errs = append(errs, validatePolicies(pi, &p)...)
		if p.Provider != nil && p.Provider.Name() == "" {
			errs = append(errs, providerErr(pi, p.ID, "Provider", "custom Provider has an empty Name"))
		}
	}
	if c.onlyModels {
		n := 0
		for _, p := range c.providers {
			n += len(p.Models)
		}
		if n == 0 {
			errs = append(errs, optErr("WithOnlyConfiguredModels", "only configured models are allowed but no provider lists any model"))
		}
	}
	if c.keyStore != nil && c.authenticator != nil {
		errs = append(errs, optErr("WithAuthenticator", "WithAuthenticator and WithKeyStore are exclusive: choose one way to authenticate"))
	}
	if c.onlyProviders && len(c.providers) == 0 {
		errs = append(errs, optErr("WithOnlyConfiguredProviders", "only configured providers are allowed but no provider is configured"))
	}
	return errors.Join(errs...)
}

// validOrigin reports whether o is "scheme://host[:port]" with no path.
func validOrigin(o string) bool {
	o = strings.TrimSuffix(o, "/")
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.Path == "" && u.RawQuery == "" && u.Fragment == "" && u.User == nil
}

// MeteringOptions configures usage records and credits (WithMetering). The
// zero value records usage and charges nothing.
type MeteringOptions struct {
	// Credits makes requests pay with credits: a request whose principal
	// has an account (a gateway key's Account, else the key's ID, or a
	// host Principal's Account) and that is served with the operator's
	// configured provider keys holds its worst-case cost before going
	// upstream and pays its actual cost (catalog prices plus the fee) when
	// it ends. Requests served with the client's own provider keys
	// (attached or passed through) never spend credits; they, and
	// requests without an account, are still recorded.
	Credits bool
	// FeeBasisPoints is the processing fee as a share of the model cost,
	// in basis points (1/100 of a percent): 250 is 2.5%. 0 to 100000.
	FeeBasisPoints int64
	// FeePerMillionTokens is the processing fee per million tokens
	// (prompt plus answer), e.g. 50_000 for $0.05.
	FeePerMillionTokens credits.Amount
	// MinOutputTokens is the smallest answer worth sending upstream: a
	// request whose account cannot pay for its prompt and this many output
	// tokens is refused with 403 credits_exhausted. Default 16.
	MinOutputTokens int
	// DefaultMaxOutputTokens bounds the answer of a credit-paid request
	// that names no maximum for a model whose catalog entry has none: the
	// gateway sets it in the request. Default 4096.
	DefaultMaxOutputTokens int
	// HoldTTL is how long a hold outlives a gateway that crashed before
	// ending it; the sweeper then releases it. It must exceed the longest
	// request. Default one hour, at least twice the total timeout.
	HoldTTL time.Duration
	// SweepInterval is how often the gateway asks the ledger (when it is
	// a credits.Sweeper) to release expired holds and expire lots. Default
	// one minute; negative: never (another process sweeps).
	SweepInterval time.Duration
}

// Defaults of MeteringOptions.
const (
	DefaultMinOutputTokens        = 16
	DefaultMeteredMaxOutputTokens = 4096
	DefaultHoldTTL                = time.Hour
	DefaultSweepInterval          = time.Minute
)

// WithMetering meters every API request into ledger: one usage record per
// request (tokens reported and estimated, cost, fee, attempts), and with
// o.Credits a hold before the first upstream attempt and a settlement when
// the request ends, on every path (success, failure, client disconnect,
// panic). Gateway.Close stops the sweeper. See MeteringOptions.
func WithMetering(ledger credits.Ledger, o MeteringOptions) Option {
	return optionFunc(func(c *config) error {
		var errs []error
		if ledger == nil {
			errs = append(errs, optErr("WithMetering", "ledger is nil"))
		}
		field := func(name, format string, args ...any) {
			errs = append(errs, &OptionError{Option: "WithMetering", Field: name, Err: fmt.Errorf(format, args...)})
		}
		if o.FeeBasisPoints < 0 || o.FeeBasisPoints > 100_000 {
			field("FeeBasisPoints", "fee of %d basis points is outside 0 to 100000", o.FeeBasisPoints)
		}
		if o.FeePerMillionTokens < 0 || o.FeePerMillionTokens > 1000*credits.Dollar {
			field("FeePerMillionTokens", "fee of $%s per million tokens is outside $0 to $1000", o.FeePerMillionTokens)
		}
		if o.MinOutputTokens < 0 {
			field("MinOutputTokens", "%d is negative", o.MinOutputTokens)
		}
		if o.DefaultMaxOutputTokens < 0 {
			field("DefaultMaxOutputTokens", "%d is negative", o.DefaultMaxOutputTokens)
		}
		if o.HoldTTL < 0 || o.HoldTTL > credits.MaxHoldTTL {
			field("HoldTTL", "%v is outside 0 to %v", o.HoldTTL, credits.MaxHoldTTL)
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		c.ledger, c.metering = ledger, o
		return nil
	})
}

// WithTokenLimits bounds every request's tokens: a prompt of more than
// maxInput tokens (counted with the model's tokenizer, see package tokens)
// is refused with 413 input_too_large before any upstream call, and the
// request's maximum output tokens are lowered to maxOutput (set when the
// client names none). Zero means no limit. The prompt is counted only when
// its size could exceed maxInput: a body of at most maxInput bytes never
// waits for counting.
func WithTokenLimits(maxInput, maxOutput int) Option {
	return optionFunc(func(c *config) error {
		if maxInput < 0 || maxOutput < 0 {
			return optErr("WithTokenLimits", "limits must not be negative (got %d and %d)", maxInput, maxOutput)
		}
		c.maxInputTokens, c.maxOutputTokens = maxInput, maxOutput
		return nil
	})
}

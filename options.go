package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/llmgate/gateway/catalog"
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
)

// Option configures a Gateway. Options are applied in order by New, but no
// option depends on another's position: repeated options either add up
// (documented as "additive") or the last one wins. An Option that receives
// an invalid argument does not panic; New reports the problem.
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

// ProviderKey is one upstream credential of a provider.
type ProviderKey struct {
	// ID names the key in attempts, events and errors; "" means "key-<n>"
	// for the n-th key of the provider (1-based). It must not be secret.
	ID string
	// Value is the credential.
	Value providers.Secret
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
	// Provider, when non-nil, is a custom transport used instead of the
	// built-in OpenAI or Anthropic implementation; BaseURL, Headers,
	// QueryParams and AuthHeader are then ignored.
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
	}
}

// WithProvider configures a provider (additive: one option per provider).
// Configuring the same ID twice is an error reported by New.
//
// The configuration is copied when WithProvider is called: later changes to
// the caller's slices and maps do not affect the option.
func WithProvider(p ProviderConfig) Option {
	p.Aliases = slices.Clone(p.Aliases)
	p.Surfaces = slices.Clone(p.Surfaces)
	p.Keys = slices.Clone(p.Keys)
	p.Models = slices.Clone(p.Models)
	for i := range p.Models {
		p.Models[i].Aliases = slices.Clone(p.Models[i].Aliases)
		p.Models[i].Metadata = maps.Clone(p.Models[i].Metadata)
	}
	p.Headers = maps.Clone(p.Headers)
	p.QueryParams = maps.Clone(p.QueryParams)
	return optionFunc(func(c *config) error {
		if p.ID == "" {
			return errors.New("WithProvider: ID is empty")
		}
		c.providers = append(c.providers, p)
		return nil
	})
}

// WithCatalog replaces the built-in catalog (catalog.Default) as the base
// that providers configured with WithProvider extend. Last one wins.
func WithCatalog(cat *catalog.Catalog) Option {
	return optionFunc(func(c *config) error {
		if cat == nil {
			return errors.New("WithCatalog: catalog is nil")
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
		if perAttempt <= 0 || total <= 0 {
			return fmt.Errorf("WithTimeouts: timeouts must be positive, got %v and %v", perAttempt, total)
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
			return fmt.Errorf("WithStreamIdleTimeout: must be positive, got %v", d)
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
			return fmt.Errorf("WithStreamKeepAlive: must not be negative, got %v", d)
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
			return fmt.Errorf("WithMaxRequestBytes: must be positive, got %d", n)
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
			return fmt.Errorf("WithMaxResponseBytes: must be positive, got %d", n)
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
			return fmt.Errorf("WithMaxEventBytes: must be at least 1024, got %d", n)
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
		if events < 0 || bytes < 0 {
			return fmt.Errorf("WithStreamHoldback: bounds must not be negative, got %d and %d", events, bytes)
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
		for _, s := range statuses {
			if s < 400 || s > 599 {
				return fmt.Errorf("WithFailFastStatuses: %d is not a 4xx or 5xx status", s)
			}
			c.failFast[s] = true
		}
		return nil
	})
}

// WithKeyCooldowns sets how long a key is skipped after the upstream refused
// it (401, 402, 403; default 5m) and after a rate limit (429) without a
// Retry-After header (default 10s). A Retry-After header is honoured up to
// maxRetryAfter (default 2m).
func WithKeyCooldowns(auth, rateLimit, maxRetryAfter time.Duration) Option {
	return optionFunc(func(c *config) error {
		if auth < 0 || rateLimit < 0 || maxRetryAfter < 0 {
			return errors.New("WithKeyCooldowns: durations must not be negative")
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
			return errors.New("WithHTTPClient: client is nil")
		}
		if hc.Timeout != 0 {
			return errors.New("WithHTTPClient: client.Timeout must be zero (it would cut streams); use WithTimeouts")
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
			return errors.New("WithLogger: logger is nil")
		}
		c.logger = l
		return nil
	})
}

// WithEventSink adds a sink that receives one Event per request (additive).
func WithEventSink(s EventSink) Option {
	return optionFunc(func(c *config) error {
		if s == nil {
			return errors.New("WithEventSink: sink is nil")
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
		for _, m := range models {
			if m == "" {
				return errors.New("WithDefaultModels: empty model name")
			}
		}
		c.defaultModels = append([]string(nil), models...)
		return nil
	})
}

// WithClock sets the time source used for cooldowns and events (default
// time.Now). Timeouts always use real timers.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) error {
		if now == nil {
			return errors.New("WithClock: nil function")
		}
		c.now = now
		return nil
	})
}

// validate checks the rules between options, after every option applied.
func (c *config) validate() error {
	var errs []error
	if c.perAttemptTimeout > c.totalTimeout {
		errs = append(errs, fmt.Errorf("per-attempt timeout %v exceeds total timeout %v", c.perAttemptTimeout, c.totalTimeout))
	}
	seen := map[string]bool{}
	for _, p := range c.providers {
		if seen[lower(p.ID)] {
			errs = append(errs, fmt.Errorf("provider %q configured twice", p.ID))
		}
		seen[lower(p.ID)] = true
		if p.Format != "" && !p.Format.Valid() {
			errs = append(errs, fmt.Errorf("provider %q: unknown format %q", p.ID, p.Format))
		}
		keyIDs := map[string]bool{}
		for i, k := range p.Keys {
			if k.Value == "" {
				errs = append(errs, fmt.Errorf("provider %q: key %d has an empty value", p.ID, i+1))
			}
			id := k.ID
			if id == "" {
				id = fmt.Sprintf("key-%d", i+1)
			}
			if keyIDs[id] {
				errs = append(errs, fmt.Errorf("provider %q: key ID %q used twice", p.ID, id))
			}
			keyIDs[id] = true
			if id == passThroughKeyID {
				errs = append(errs, fmt.Errorf("provider %q: key ID %q is reserved for pass-through credentials", p.ID, id))
			}
		}
		if p.Provider != nil && p.Provider.Name() == "" {
			errs = append(errs, fmt.Errorf("provider %q: custom Provider has an empty Name", p.ID))
		}
	}
	if c.onlyModels {
		n := 0
		for _, p := range c.providers {
			n += len(p.Models)
		}
		if n == 0 {
			errs = append(errs, errors.New("only configured models are allowed but no provider lists any model"))
		}
	}
	if c.onlyProviders && len(c.providers) == 0 {
		errs = append(errs, errors.New("only configured providers are allowed but no provider is configured"))
	}
	return errors.Join(errs...)
}

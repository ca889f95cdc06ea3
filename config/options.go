package config

import (
	"fmt"
	"strconv"
	"time"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/providers"
)

// Options returns the gateway options the file describes, as written:
// checking them is gateway.New's job (Explain maps its errors back to the
// file). Fields that Parse found faulty are left out, so that New reports
// the problems of the rest. Server settings (listen, max_connections, log,
// metrics, shutdown_timeout) have no option.
func (f *File) Options() []gateway.Option {
	var opts []gateway.Option
	add := func(o gateway.Option) { opts = append(opts, o) }

	// WithTimeouts has a rule between its two values: a faulty one would
	// turn into a default that may break it, so both are left out then.
	if (f.PerRequestTimeout != nil || f.TotalTimeout != nil) && !f.bad["per_request_timeout"] && !f.bad["total_timeout"] {
		add(gateway.WithTimeouts(or(f.PerRequestTimeout, gateway.DefaultPerAttemptTimeout), or(f.TotalTimeout, gateway.DefaultTotalTimeout)))
	}
	if f.StreamIdleTimeout != nil {
		add(gateway.WithStreamIdleTimeout(*f.StreamIdleTimeout))
	}
	if f.StreamKeepAlive != nil {
		add(gateway.WithStreamKeepAlive(*f.StreamKeepAlive))
	}
	if f.BodyReadTimeout != nil || f.WriteTimeout != nil {
		add(gateway.WithClientTimeouts(or(f.BodyReadTimeout, gateway.DefaultBodyReadTimeout), or(f.WriteTimeout, gateway.DefaultWriteTimeout)))
	}
	add(gateway.WithOnlyConfiguredProviders(f.OnlyConfiguredProviders()))
	if f.OnlyAllowConfiguredModels {
		add(gateway.WithOnlyConfiguredModels(true))
	}
	if len(f.DefaultModels) > 0 {
		add(gateway.WithDefaultModels(f.DefaultModels...))
	}
	if f.MaxRequestBytes != nil {
		add(gateway.WithMaxRequestBytes(*f.MaxRequestBytes))
	}
	if f.MaxResponseBytes != nil {
		add(gateway.WithMaxResponseBytes(*f.MaxResponseBytes))
	}
	if f.MaxEventBytes != nil {
		add(gateway.WithMaxEventBytes(*f.MaxEventBytes))
	}
	if h := f.StreamHoldback; h.Events != nil || h.Bytes != nil {
		add(gateway.WithStreamHoldback(or(h.Events, gateway.DefaultHoldbackEvents), or(h.Bytes, gateway.DefaultHoldbackBytes)))
	}
	if len(f.FailFastStatuses) > 0 {
		add(gateway.WithFailFastStatuses(f.FailFastStatuses...))
	}
	if k := f.KeyCooldowns; k.Auth != nil || k.RateLimit != nil || k.MaxRetryAfter != nil {
		add(gateway.WithKeyCooldowns(or(k.Auth, gateway.DefaultAuthCooldown), or(k.RateLimit, gateway.DefaultRateLimitCooldown),
			or(k.MaxRetryAfter, gateway.DefaultMaxRetryAfter)))
	}
	if l := f.Limits; (l.MaxInputTokens != nil || l.MaxOutputTokens != nil) &&
		!f.bad["limits.max_input_tokens"] && !f.bad["limits.max_output_tokens"] {
		add(gateway.WithTokenLimits(or(l.MaxInputTokens, 0), or(l.MaxOutputTokens, 0)))
	}
	if f.MaxModels != nil {
		add(gateway.WithMaxModels(*f.MaxModels))
	}
	if f.MaxAttempts != nil {
		add(gateway.WithMaxAttempts(*f.MaxAttempts))
	}
	if mode, err := gateway.ParsePassThroughMode(f.PassThrough); f.PassThrough != "" && err == nil {
		add(gateway.WithPassThrough(mode))
	}
	if f.ErrorDetail {
		add(gateway.WithErrorDetail(true))
	}
	if len(f.CORSOrigins) > 0 {
		add(gateway.WithCORS(f.CORSOrigins...))
	}
	if len(f.ForwardHeaders) > 0 {
		add(gateway.WithForwardHeaders(f.ForwardHeaders...))
	}
	if len(f.AllowedHosts) > 0 && !f.EveryHost() && !f.bad["allowed_hosts"] {
		add(gateway.WithAllowedHosts(f.AllowedHosts...))
	}
	if len(f.ModelSelection.Strategy) > 0 {
		add(gateway.WithModelSelection(f.ModelSelection.Strategy...))
	}
	if len(f.APIKeySelection.Strategy) > 0 {
		add(gateway.WithKeySelection(f.APIKeySelection.Strategy...))
	}
	opts = append(opts, f.allowOptions()...)
	if o := f.redactionOption(); o != nil {
		add(o)
	}
	for i := range f.Providers {
		if f.bad[fmt.Sprintf("providers[%d]", i)] {
			continue // not a mapping: nothing to configure
		}
		add(gateway.WithProvider(f.Providers[i].config()))
	}
	return opts
}

// EveryHost reports whether allowed_hosts is ["*"]: every Host is served,
// and a server adds no default restriction.
func (f *File) EveryHost() bool {
	return len(f.AllowedHosts) == 1 && f.AllowedHosts[0] == "*"
}

// OnlyConfiguredProviders reports whether the file restricts requests to
// its providers: only_allow_configured_providers, or its default, true
// when some provider is configured and enabled (a file without one can
// only pass clients' own keys through to the catalog's providers).
func (f *File) OnlyConfiguredProviders() bool {
	if f.OnlyAllowConfiguredProviders != nil {
		return *f.OnlyAllowConfiguredProviders
	}
	for i, p := range f.Providers {
		if !p.Disabled && !f.bad["providers["+strconv.Itoa(i)+"]"] {
			return true
		}
	}
	return false
}

func or[T int | int64 | time.Duration](p *T, def T) T {
	if p != nil {
		return *p
	}
	return def
}

// config returns the gateway's ProviderConfig for p, field for field.
func (p *Provider) config() gateway.ProviderConfig {
	out := gateway.ProviderConfig{
		ID: p.ID, Aliases: p.Aliases, BaseURL: p.BaseURL, Format: providers.Format(p.Format),
		Headers: p.Headers, QueryParams: p.QueryParams, AuthHeader: p.AuthHeader,
		DefaultModel: p.DefaultModel, StreamUsage: p.StreamUsage, Disabled: p.Disabled,
		KeyPrefixes: p.KeyPrefixes, PassThrough: p.PassThrough, KeySelection: p.APIKeySelection.Strategy,
		Policy: p.Policy.policy(),
	}
	for _, s := range p.Surfaces {
		out.Surfaces = append(out.Surfaces, providers.Surface(s))
	}
	for _, k := range p.APIKeys {
		out.Keys = append(out.Keys, gateway.ProviderKey{ID: k.ID, Value: k.Value, Weight: k.Weight})
	}
	for _, m := range p.Models {
		out.Models = append(out.Models, catalog.Model{
			ID: m.ID, Aliases: m.Aliases, Author: m.Author, DisplayName: m.DisplayName,
			ContextWindow: m.ContextWindow, MaxOutputTokens: m.MaxOutputTokens,
			InputModalities: m.InputModalities, OutputModalities: m.OutputModalities,
			Features: m.Features, Metadata: m.Metadata,
			Pricing: catalog.Pricing{Input: m.Pricing.Input, Output: m.Pricing.Output, CacheRead: m.Pricing.CacheRead, CacheWrite: m.Pricing.CacheWrite},
		})
		if mp := m.Policy.policy(); m.ID != "" && !mp.IsZero() {
			if out.ModelPolicies == nil {
				out.ModelPolicies = map[string]gateway.RequestPolicy{}
			}
			out.ModelPolicies[m.ID] = mp
		}
	}
	return out
}

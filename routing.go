package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/internal/strategy"
	"github.com/llmgate/gateway/metrics"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/anthropic"
	"github.com/llmgate/gateway/providers/openai"
)

// routing is everything a request routes with: the options, the catalog,
// the upstreams with their keys, the default plan and the redactor. It is
// built whole by New or Reload and never modified afterwards (only the
// keys' cooldown clocks tick); a request loads the current one once and
// keeps it to its end, so a reload never disturbs requests in flight.
type routing struct {
	cfg            *config
	catalog        *catalog.Catalog
	upstreams      map[string]*upstream // by lower-case provider ID
	ordered        []*upstream          // configured first (config order), then catalog order
	defaults       []catalog.Match      // the plan for "auto"
	configuredList string
	redact         *redactor
	forward        headerAllowList
	metrics        *metrics.Recorder                        // the gateway's: shared by every routing
	models         *strategy.Program                        // model selection strategies; nil without
	universes      map[providers.Surface]*strategy.Universe // what strategies choose from, per surface
	results        map[providers.Surface]*strategyResults   // cached request-free strategy results
	auth           *authState                               // nil: requests are not authenticated
	meter          *meter                                   // nil: requests are not metered (WithMetering)
	allow          map[providers.Surface]*allowList         // WithParamAllowList; nil: every member passes
}

// upstream is one provider as the gateway uses it: catalog entry,
// transport, credentials and restrictions.
type upstream struct {
	id          string
	cat         *catalog.Provider
	impl        providers.Provider
	format      providers.Format
	surfaces    []providers.Surface
	keys        []*keyState
	configured  bool            // listed with WithProvider
	custom      bool            // not a provider of the base catalog
	passThrough bool            // ProviderConfig.PassThrough
	listed      map[string]bool // lower-case IDs of models listed in its ProviderConfig
	streamUsage bool
	order       int // position among configured providers, or len(configured)+catalog position
	index       int // position of its WithProvider option, for errors
	keySel      keySelection
	rr          atomic.Uint64 // round-robin position of the next request
	// The request policies (policy.go): the provider's, and those of its
	// models that have their own (merged with the provider's). nil: none.
	policy        *policy
	modelPolicies map[*catalog.Model]*policy
	// The upstream's address per surface, for tracing (tracing.go): built
	// at the first traced attempt.
	addrOnce sync.Once
	addrs    map[providers.Surface]hostPort
}

// serves reports whether the provider serves surface s natively.
func (u *upstream) serves(s providers.Surface) bool {
	for _, x := range u.surfaces {
		if x == s {
			return true
		}
	}
	return false
}

// keyState is one configured key and its cooldown clock.
type keyState struct {
	key    providers.Key
	cool   *cooldown
	weight int             // ProviderKey.Weight
	series *metrics.Series // the key's live metrics
}

// cooldown is a key's cooldown clock: for the whole key (refused
// credentials, account-wide limits) and per model (rate limits, which
// providers count per model). A reload that keeps a key (same provider, ID
// and value) keeps its clock. Safe for concurrent use.
type cooldown struct {
	until  atomic.Int64 // UnixNano before which the whole key is skipped
	nModel atomic.Int32 // len(models), read without the lock
	mu     sync.Mutex
	models map[string]int64 // lower-case upstream model ID → UnixNano
}

// maxModelCooldowns bounds the per-model clocks of one key: model names
// come from clients ("openai:anything"), so the map must not grow without
// limit.
const maxModelCooldowns = 256

// remaining returns how long the key is still cooling for model at now
// (UnixNano), or 0.
func (c *cooldown) remaining(model string, now int64) time.Duration {
	u := c.until.Load()
	if c.nModel.Load() > 0 {
		c.mu.Lock()
		if m := c.models[lower(model)]; m > u {
			u = m
		}
		c.mu.Unlock()
	}
	if u > now {
		return time.Duration(u - now)
	}
	return 0
}

// coolKey skips the whole key until the given UnixNano.
func (c *cooldown) coolKey(until int64) {
	for {
		old := c.until.Load()
		if old >= until || c.until.CompareAndSwap(old, until) {
			return
		}
	}
}

// coolModel skips the key for model until the given UnixNano.
func (c *cooldown) coolModel(model string, until, now int64) {
	model = lower(model)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.models == nil {
		c.models = make(map[string]int64)
	}
	if _, ok := c.models[model]; !ok && len(c.models) >= maxModelCooldowns {
		for m, u := range c.models {
			if u <= now {
				delete(c.models, m)
			}
		}
		if len(c.models) >= maxModelCooldowns {
			// Still full of live clocks: cool the whole key instead, which
			// is what providers that see this many models rate limited
			// mean anyway.
			c.coolKey(until)
			return
		}
	}
	if until > c.models[model] {
		c.models[model] = until
	}
	c.nModel.Store(int32(len(c.models)))
}

// buildRouting assembles the catalog, the upstreams and the default plan
// of cfg. prev, when not nil, is the routing being replaced: keys it shares
// with the new one keep their cooldown clocks. Every problem is returned,
// joined; a routing is returned even then, for New to report the rest.
func buildRouting(cfg *config, hc *http.Client, rec *metrics.Recorder, prev *routing) (*routing, error) {
	rt := &routing{cfg: cfg, upstreams: map[string]*upstream{}, metrics: rec}
	base := cfg.catalog
	if base == nil {
		var err error
		if base, err = catalog.Default(); err != nil {
			return rt, fmt.Errorf("built-in catalog: %w", err)
		}
	}
	specs := make([]catalog.ProviderSpec, 0, len(cfg.providers))
	for _, p := range cfg.providers {
		specs = append(specs, catalog.ProviderSpec{
			ID: p.ID, Aliases: p.Aliases, BaseURL: p.BaseURL, Format: p.Format, Surfaces: p.Surfaces,
			StreamUsage: p.StreamUsage, DefaultModel: p.DefaultModel, Models: p.Models, Disabled: p.Disabled,
			KeyPrefixes: p.KeyPrefixes, OwnTransport: p.Provider != nil,
		})
	}
	cat, err := base.Extend(specs...)
	if err != nil {
		return rt, specErrors(cfg, err)
	}
	rt.catalog = cat
	rt.forward = newHeaderAllowList(cfg.forwardHeaders)
	rt.allow = newAllowLists(cfg.allowLists)

	var errs []error
	so := strategy.Options{MaxCost: strategy.NoCostLimit}
	globalKeys, err := compileKeySelection(cfg.keySelection, so)
	if err != nil {
		errs = append(errs, selectionErrors("WithKeySelection", -1, "", err)...)
	}
	if len(cfg.modelSelection) > 0 {
		rt.models, err = strategy.Compile(strategy.Models, cfg.modelSelection, so)
		if err != nil {
			errs = append(errs, selectionErrors("WithModelSelection", -1, "", err)...)
		}
	}
	configured := map[string]*ProviderConfig{}
	var names []string
	for i := range cfg.providers {
		p := &cfg.providers[i]
		if p.Disabled {
			continue
		}
		cp, ok := cat.Provider(p.ID)
		if !ok {
			errs = append(errs, providerErr(i, p.ID, "", "missing after catalog merge"))
			continue
		}
		configured[lower(cp.ID)] = p
		names = append(names, cp.ID)
	}
	rt.configuredList = strings.Join(names, ", ")
	var secrets []string
	pos := 0
	for _, cp := range cat.Providers() {
		pc := configured[lower(cp.ID)]
		_, inBase := base.Provider(cp.ID)
		up, err := newUpstream(cp, pc, hc, prev)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		up.keySel = globalKeys
		if pc != nil && len(pc.KeySelection) > 0 {
			if up.keySel, err = compileKeySelection(pc.KeySelection, so); err != nil {
				errs = append(errs, selectionErrors("WithProvider", pc.index, pc.ID, err)...)
			}
		}
		for _, ks := range up.keys {
			ks.series = rec.Key(up.id, ks.key.ID)
		}
		up.custom = !inBase
		for _, ks := range up.keys {
			secrets = append(secrets, ks.key.Secret.Reveal())
		}
		up.order = len(names) + pos
		pos++
		if pc != nil {
			for j, n := range names {
				if strings.EqualFold(n, cp.ID) {
					up.order = j
				}
			}
		}
		rt.upstreams[lower(cp.ID)] = up
		rt.ordered = append(rt.ordered, up)
	}
	sort.SliceStable(rt.ordered, func(i, j int) bool { return rt.ordered[i].order < rt.ordered[j].order })
	rt.redact = newRedactor(secrets)
	if len(errs) > 0 {
		return rt, errors.Join(errs...)
	}
	if rt.models != nil {
		rt.buildUniverses()
	}
	rt.auth = newAuthState(cfg, prev)
	var pm *meter
	if prev != nil {
		pm = prev.meter
	}
	rt.meter = newMeter(cfg, pm)
	return rt, rt.buildDefaults()
}

// selectionErrors turns the problems of compiling selection strategies
// into OptionErrors naming the option and the strategy's index. For a
// provider's KeySelection, index and provider name the WithProvider
// option.
func selectionErrors(option string, index int, provider string, err error) []error {
	var out []error
	for _, e := range flatten(err) {
		oe := &OptionError{Option: option, Provider: provider, Index: max(index, 0), Err: e}
		var ce *strategy.CompileError
		var prev *OptionError
		switch {
		case errors.As(e, &ce):
			oe.Field = "[" + strconv.Itoa(ce.Index) + "]"
		case errors.As(e, &prev):
			oe.Field, oe.Err = prev.Field, prev.Err
		}
		if provider != "" {
			oe.Field = "KeySelection" + oe.Field
		}
		out = append(out, oe)
	}
	return out
}

// flatten lists the leaves of a tree of joined errors.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

func newUpstream(cp *catalog.Provider, pc *ProviderConfig, hc *http.Client, prev *routing) (*upstream, error) {
	up := &upstream{id: cp.ID, cat: cp, format: cp.Format, surfaces: slices.Clone(cp.Surfaces), streamUsage: cp.StreamUsage, listed: map[string]bool{}}
	if pc == nil {
		return up, up.newTransport(nil, hc)
	}
	up.configured = true
	up.passThrough = pc.PassThrough
	up.index = pc.index
	for i, k := range pc.Keys {
		id := k.ID
		if id == "" {
			id = "key-" + strconv.Itoa(i+1)
		}
		ks := &keyState{key: providers.Key{ID: id, Secret: k.Value, Source: providers.KeyConfigured}, weight: k.Weight}
		ks.cool = prev.keptCooldown(cp.ID, ks.key)
		up.keys = append(up.keys, ks)
	}
	for _, m := range pc.Models {
		if mm, ok := cp.Model(m.ID); ok {
			up.listed[lower(mm.ID)] = true
		}
	}
	if err := up.compilePolicies(cp, pc); err != nil {
		return up, err
	}
	if pc.Provider != nil {
		up.impl = pc.Provider
		if pc.Surfaces == nil {
			up.surfaces = pc.Provider.Surfaces()
		}
		return up, nil
	}
	return up, up.newTransport(pc, hc)
}

// newTransport builds the built-in provider of the upstream's format.
func (up *upstream) newTransport(pc *ProviderConfig, hc *http.Client) error {
	h := http.Header{}
	q := map[string][]string{}
	var authHeader string
	if pc != nil {
		for k, v := range pc.Headers {
			h.Set(k, v)
		}
		for k, v := range pc.QueryParams {
			q[k] = []string{v}
		}
		for k, v := range pc.Policy.QueryParams {
			if k != "" { // validatePolicies reports it
				q[k] = []string{v}
			}
		}
		authHeader = pc.AuthHeader
	}
	var err error
	switch up.format {
	case providers.FormatAnthropic:
		up.impl, err = anthropic.New(anthropic.Config{Name: up.id, BaseURL: up.cat.BaseURL, Header: h, Query: q, AuthHeader: authHeader, Client: hc})
	default:
		up.impl, err = openai.New(openai.Config{Name: up.id, BaseURL: up.cat.BaseURL, Surfaces: up.surfaces, Header: h, Query: q, AuthHeader: authHeader, Client: hc})
	}
	if err != nil {
		return providerErr(up.index, up.id, "", "%w", err)
	}
	return nil
}

// specErrors turns the catalog's problems with the providers' specs into
// OptionErrors naming the WithProvider option and field they came from.
func specErrors(cfg *config, err error) error {
	var errs []error
	for _, e := range flatten(err) {
		var se *catalog.SpecError
		if !errors.As(e, &se) {
			errs = append(errs, &OptionError{Option: "WithProvider", Err: e})
			continue
		}
		id := se.Provider
		if se.Index >= 0 && se.Index < len(cfg.providers) {
			id = cfg.providers[se.Index].ID
		}
		msg := se.Err
		if se.Model != "" {
			msg = fmt.Errorf("model %q: %w", se.Model, se.Err)
		}
		errs = append(errs, &OptionError{Option: "WithProvider", Provider: id, Index: max(se.Index, 0), Field: se.Field, Err: msg})
	}
	return errors.Join(errs...)
}

// keptCooldown returns the cooldown clock of the key with the same
// provider, ID and value in rt, or a new one. rt may be nil.
func (rt *routing) keptCooldown(provider string, k providers.Key) *cooldown {
	if rt != nil {
		if up := rt.upstreams[lower(provider)]; up != nil {
			for _, ks := range up.keys {
				if ks.key.ID == k.ID && ks.key.Secret == k.Secret {
					return ks.cool
				}
			}
		}
	}
	return new(cooldown)
}

// buildDefaults resolves the plan used for "auto".
func (rt *routing) buildDefaults() error {
	names := rt.cfg.defaultModels
	if len(names) == 0 {
		for _, up := range rt.ordered {
			if !up.configured || up.cat.DefaultModel == "" {
				continue
			}
			names = append(names, up.id+":"+up.cat.DefaultModel)
		}
	}
	if len(names) == 0 {
		for _, id := range []string{"openai", "anthropic"} {
			if up := rt.upstreams[id]; up != nil && up.cat.DefaultModel != "" {
				names = append(names, up.id+":"+up.cat.DefaultModel)
			}
		}
	}
	var errs []error
	for i, n := range names {
		ms, err := rt.catalog.Resolve(n)
		if err != nil {
			errs = append(errs, &OptionError{Option: "WithDefaultModels", Field: "[" + strconv.Itoa(i) + "]",
				Err: fmt.Errorf("default model %q: %w", n, err)})
			continue
		}
		rt.defaults = append(rt.defaults, ms...)
	}
	return errors.Join(errs...)
}

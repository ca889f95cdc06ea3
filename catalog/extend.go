package catalog

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// ProviderSpec is an operator's definition of, or change to, a provider, for
// [Catalog.Extend]. The zero ProviderSpec is invalid (it has no ID). Extend
// copies everything it keeps from a spec, so the spec may be reused or
// modified afterwards.
type ProviderSpec struct {
	// ID names the provider. An ID equal to a catalog provider's ID or
	// alias (ASCII case-insensitive) changes that provider; any other ID
	// defines a custom provider with that ID.
	ID string
	// Aliases are added to the provider's aliases.
	Aliases []string
	// DisplayName replaces the display name when set; a custom provider
	// defaults to its ID.
	DisplayName string
	// BaseURL replaces the upstream root when set; required for a custom
	// provider. It must be an absolute http(s) URL; a trailing "/" is added.
	BaseURL string
	// Format replaces the wire format when set ("openai" or "anthropic").
	// A custom provider defaults to "openai".
	Format string
	// Surfaces replace the served API surfaces when non-empty. When empty, a
	// custom provider, or a catalog provider whose Format the spec changes,
	// gets every surface of its format: chat-completions, responses and
	// embeddings for "openai", messages for "anthropic".
	Surfaces []string
	// StreamUsage overrides Provider.StreamUsage when non-nil. When nil a
	// catalog provider keeps its value and a custom provider gets true for
	// the "openai" format (false for "anthropic").
	StreamUsage *bool
	// DefaultModel replaces the default model when set; it must name one of
	// the provider's models (ID or alias).
	DefaultModel string
	// Models are operator models. For a catalog provider, a model whose ID
	// matches an existing model's ID or alias updates that model: each
	// non-zero field of the spec model replaces the catalog value (slices
	// when non-empty, Deprecated when true, each Pricing field when
	// non-zero), Aliases are added, and a non-nil Metadata replaces the
	// metadata. Every other model is added with Custom set. Model.Provider
	// is ignored and set to the provider's ID.
	Models []Model
	// Disabled removes the provider from the new catalog entirely; the other
	// fields are then ignored. Disabling an ID that names no provider is a
	// no-op, so a configuration can keep a switched-off custom provider.
	Disabled bool
}

// Extend returns a new catalog: a deep copy of c with the specs applied in
// order. c itself is never modified and shares no provider, model, slice or
// map with the result (Metadata maps are copied one level deep).
//
// A spec whose ID matches a provider ID or alias (ASCII case-insensitive,
// including aliases added by earlier specs) updates that provider; an
// unknown ID creates a custom provider, which needs a BaseURL. Two specs for
// the same provider are an error. Models with no Encoding get o200k_base when
// the ID looks like an OpenAI GPT-4o/4.1/4.5/5, o-series or gpt-oss model
// (ignoring any "author/" prefix) and cl100k_base otherwise.
//
// The result is validated like [Parse]; every problem is returned at once,
// joined with errors.Join, and the catalog is then nil.
func (c *Catalog) Extend(specs ...ProviderSpec) (*Catalog, error) {
	var src []*Provider
	if c != nil {
		src = c.providers
	}
	provs := make([]*Provider, 0, len(src)+len(specs))
	for _, p := range src {
		provs = append(provs, cloneProvider(p))
	}

	var errs []error
	done := make(map[string]int) // lower-cased names of providers already changed -> spec index
	for i, s := range specs {
		id := strings.TrimSpace(s.ID)
		if id == "" {
			errs = append(errs, fmt.Errorf("catalog: provider spec %d: empty id", i))
			continue
		}
		if j, dup := done[toLower(id)]; dup {
			errs = append(errs, fmt.Errorf("catalog: provider spec %d (%q): provider already configured by spec %d", i, id, j))
			continue
		}
		k := slices.IndexFunc(provs, func(p *Provider) bool { return p.hasName(id) })
		if s.Disabled {
			if k >= 0 {
				markDone(done, provs[k], i)
				provs = slices.Delete(provs, k, k+1)
			} else {
				done[toLower(id)] = i
			}
			continue
		}
		var p *Provider
		if k >= 0 {
			p = provs[k]
			updateProvider(p, s)
		} else {
			p = newProvider(id, s)
			provs = append(provs, p)
		}
		for _, m := range s.Models {
			mergeModel(p, m)
		}
		markDone(done, p, i)
	}
	out, err := build(provs)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func markDone(done map[string]int, p *Provider, spec int) {
	done[toLower(p.ID)] = spec
	for _, a := range p.Aliases {
		done[toLower(a)] = spec
	}
}

// hasName reports whether n is p's ID or one of its aliases.
func (p *Provider) hasName(n string) bool {
	if equalFold(p.ID, n) {
		return true
	}
	for _, a := range p.Aliases {
		if equalFold(a, n) {
			return true
		}
	}
	return false
}

func newProvider(id string, s ProviderSpec) *Provider {
	p := &Provider{
		ID:           id,
		DisplayName:  s.DisplayName,
		BaseURL:      s.BaseURL,
		Format:       toLower(strings.TrimSpace(s.Format)),
		Aliases:      slices.Clone(s.Aliases),
		Surfaces:     slices.Clone(s.Surfaces),
		DefaultModel: s.DefaultModel,
		Custom:       true,
	}
	if p.DisplayName == "" {
		p.DisplayName = id
	}
	if p.Format == "" {
		p.Format = FormatOpenAI
	}
	if len(p.Surfaces) == 0 {
		p.Surfaces, _ = formatSurfaces(p.Format)
	}
	p.StreamUsage = p.Format == FormatOpenAI
	if s.StreamUsage != nil {
		p.StreamUsage = *s.StreamUsage
	}
	return p
}

func updateProvider(p *Provider, s ProviderSpec) {
	if s.DisplayName != "" {
		p.DisplayName = s.DisplayName
	}
	if s.BaseURL != "" {
		p.BaseURL = s.BaseURL
	}
	if f := toLower(strings.TrimSpace(s.Format)); f != "" && f != p.Format {
		p.Format = f
		if len(s.Surfaces) == 0 {
			p.Surfaces, _ = formatSurfaces(f)
		}
	}
	if len(s.Surfaces) > 0 {
		p.Surfaces = slices.Clone(s.Surfaces)
	}
	for _, a := range s.Aliases {
		if !p.hasName(a) {
			p.Aliases = append(p.Aliases, a)
		}
	}
	if s.StreamUsage != nil {
		p.StreamUsage = *s.StreamUsage
	}
	if s.DefaultModel != "" {
		p.DefaultModel = s.DefaultModel
	}
}

// mergeModel overrides the model of p that spec names, or adds spec as a
// custom model.
func mergeModel(p *Provider, spec Model) {
	var m *Model
	for _, x := range p.Models {
		if x.hasName(spec.ID) {
			m = x
			break
		}
	}
	if m == nil {
		n := cloneModel(&spec)
		n.Provider = p.ID
		n.Custom = true
		p.Models = append(p.Models, n)
		return
	}
	for _, a := range spec.Aliases {
		if !m.hasName(a) {
			m.Aliases = append(m.Aliases, a)
		}
	}
	setString(&m.Author, spec.Author)
	setString(&m.DisplayName, spec.DisplayName)
	setString(&m.DeprecationDate, spec.DeprecationDate)
	setString(&m.Replacement, spec.Replacement)
	setString(&m.Encoding, spec.Encoding)
	if spec.ContextWindow != 0 {
		m.ContextWindow = spec.ContextWindow
	}
	if spec.MaxOutputTokens != 0 {
		m.MaxOutputTokens = spec.MaxOutputTokens
	}
	setSlice(&m.InputModalities, spec.InputModalities)
	setSlice(&m.OutputModalities, spec.OutputModalities)
	setSlice(&m.Features, spec.Features)
	if spec.Deprecated {
		m.Deprecated = true
	}
	setInt64(&m.Pricing.Input, spec.Pricing.Input)
	setInt64(&m.Pricing.Output, spec.Pricing.Output)
	setInt64(&m.Pricing.CacheRead, spec.Pricing.CacheRead)
	setInt64(&m.Pricing.CacheWrite, spec.Pricing.CacheWrite)
	if spec.Metadata != nil {
		m.Metadata = maps.Clone(spec.Metadata)
	}
}

// hasName reports whether n is m's ID or one of its aliases.
func (m *Model) hasName(n string) bool {
	n = strings.TrimSpace(n)
	if equalFold(m.ID, n) {
		return true
	}
	for _, a := range m.Aliases {
		if equalFold(a, n) {
			return true
		}
	}
	return false
}

func setString(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

func setInt64(dst *int64, v int64) {
	if v != 0 {
		*dst = v
	}
}

func setSlice(dst *[]string, v []string) {
	if len(v) > 0 {
		*dst = slices.Clone(v)
	}
}

// cloneProvider deep-copies p, its slices and its models; the model index is
// left for build to recreate.
func cloneProvider(p *Provider) *Provider {
	n := *p
	n.index = nil
	n.Aliases = slices.Clone(p.Aliases)
	n.Surfaces = slices.Clone(p.Surfaces)
	n.Models = make([]*Model, len(p.Models))
	for i, m := range p.Models {
		n.Models[i] = cloneModel(m)
	}
	return &n
}

// cloneModel deep-copies m (Metadata one level deep).
func cloneModel(m *Model) *Model {
	n := *m
	n.Aliases = slices.Clone(m.Aliases)
	n.InputModalities = slices.Clone(m.InputModalities)
	n.OutputModalities = slices.Clone(m.OutputModalities)
	n.Features = slices.Clone(m.Features)
	n.Metadata = maps.Clone(m.Metadata)
	return &n
}

package catalog

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/llmgate/gateway/providers"
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
	// provider unless OwnTransport is set. It must be an absolute http(s)
	// URL with a host and without credentials or fragment (the rule of the
	// built-in provider implementations); a "/" is added to its path.
	BaseURL string
	// OwnTransport declares that the gateway reaches this provider through
	// a providers.Provider implementation of its own (a hand-written
	// transport), not the built-in HTTP one, so a custom provider needs no
	// BaseURL. It sets [Provider.OwnTransport]; false keeps a catalog
	// provider's value.
	OwnTransport bool
	// Format replaces the wire format when set
	// ([providers.FormatOpenAI] or [providers.FormatAnthropic], ASCII
	// case-insensitive). A custom provider defaults to FormatOpenAI.
	Format providers.Format
	// Surfaces replace the served API surfaces when non-empty. When empty, a
	// custom provider, or a catalog provider whose Format the spec changes,
	// gets every surface of its format: chat-completions, responses and
	// embeddings for "openai", messages for "anthropic".
	Surfaces []providers.Surface
	// KeyPrefixes replace the provider's API key prefixes when non-empty
	// (see [Provider.KeyPrefixes] and [Catalog.MayOwnKey]); a custom
	// provider has none unless set here.
	KeyPrefixes []string
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
	// is ignored and set to the provider's ID. Two entries naming the same
	// model (the same ID, or one's ID being the other's alias or a name of
	// the same catalog model) are an error.
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
// unknown ID creates a custom provider, which needs a BaseURL unless it has
// OwnTransport. Two specs for the same provider are an error. Models with no
// Encoding get o200k_base when the ID looks like an OpenAI GPT-4o/4.1/4.5/5,
// o-series or gpt-oss model (ignoring any "author/" prefix) and cl100k_base
// otherwise.
//
// The result is validated like [Parse]; every problem is returned at once,
// joined with errors.Join, and the catalog is then nil. Each problem is a
// [*SpecError] whose Index is the position of the spec in specs and whose
// Field is a path within that ProviderSpec ("BaseURL", "Models[2].ID"), so
// a configuration layer can map it to its own source.
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
	fail := func(i int, id, field, model string, err error) {
		errs = append(errs, &SpecError{Index: i, Provider: id, Field: field, Model: model, Err: err, inSpec: true})
	}
	done := make(map[string]int) // lower-cased names of providers already changed -> spec index
	origins := make(map[*Provider]*origin, len(specs))
	for i := range specs {
		s := &specs[i]
		id := strings.TrimSpace(s.ID)
		if id == "" {
			fail(i, "", "ID", "", errors.New("empty id"))
			continue
		}
		if j, dup := done[toLower(id)]; dup {
			fail(i, id, "ID", "", fmt.Errorf("provider spec %d: provider already configured by spec %d", i, j))
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
		o := &origin{index: i, spec: s, models: make(map[*Model]int, len(s.Models))}
		origins[p] = o
		for j := range s.Models {
			sm := &s.Models[j]
			if k, dup := o.models[p.modelNamed(sm.ID)]; dup {
				fail(i, id, fmt.Sprintf("Models[%d].ID", j), sm.ID,
					fmt.Errorf("names the same model as Models[%d] (%q): list each model once", k, s.Models[k].ID))
				continue
			}
			o.models[mergeModel(p, sm)] = j
		}
		markDone(done, p, i)
	}
	out, berrs := build(provs, origins)
	errs = append(errs, berrs...)
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

func newProvider(id string, s *ProviderSpec) *Provider {
	p := &Provider{
		ID:           id,
		DisplayName:  s.DisplayName,
		BaseURL:      s.BaseURL,
		OwnTransport: s.OwnTransport,
		Format:       normFormat(s.Format),
		Aliases:      slices.Clone(s.Aliases),
		Surfaces:     slices.Clone(s.Surfaces),
		KeyPrefixes:  slices.Clone(s.KeyPrefixes),
		DefaultModel: s.DefaultModel,
		Custom:       true,
	}
	if p.DisplayName == "" {
		p.DisplayName = id
	}
	if p.Format == "" {
		p.Format = providers.FormatOpenAI
	}
	if len(p.Surfaces) == 0 {
		p.Surfaces = formatSurfaces(p.Format)
	}
	p.StreamUsage = p.Format == providers.FormatOpenAI
	if s.StreamUsage != nil {
		p.StreamUsage = *s.StreamUsage
	}
	return p
}

func updateProvider(p *Provider, s *ProviderSpec) {
	if s.DisplayName != "" {
		p.DisplayName = s.DisplayName
	}
	if s.BaseURL != "" {
		p.BaseURL = s.BaseURL
	}
	if s.OwnTransport {
		p.OwnTransport = true
	}
	if f := normFormat(s.Format); f != "" && f != p.Format {
		p.Format = f
		if len(s.Surfaces) == 0 {
			p.Surfaces = formatSurfaces(f)
		}
	}
	if len(s.Surfaces) > 0 {
		p.Surfaces = slices.Clone(s.Surfaces)
	}
	if len(s.KeyPrefixes) > 0 {
		p.KeyPrefixes = slices.Clone(s.KeyPrefixes)
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

// modelNamed returns the model of p whose ID or alias is n, or nil. Unlike
// Model it works before the provider is indexed.
func (p *Provider) modelNamed(n string) *Model {
	for _, x := range p.Models {
		if x.hasName(n) {
			return x
		}
	}
	return nil
}

// mergeModel overrides the model of p that spec names, or adds spec as a
// custom model, and returns the model changed or added.
func mergeModel(p *Provider, spec *Model) *Model {
	m := p.modelNamed(spec.ID)
	if m == nil {
		n := cloneModel(spec)
		n.Provider = p.ID
		n.Custom = true
		p.Models = append(p.Models, n)
		return n
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
	return m
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
	n.KeyPrefixes = slices.Clone(p.KeyPrefixes)
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

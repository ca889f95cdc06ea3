package catalog

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/llmgate/gateway/internal/httpx"
	"github.com/llmgate/gateway/providers"
)

// knownEncoding reports whether enc is a tiktoken encoding the tokens package
// can load.
func knownEncoding(enc string) bool {
	switch enc {
	case EncodingCL100K, EncodingO200K, "p50k_base", "p50k_edit", "r50k_base":
		return true
	}
	return false
}

// formatSurfaces returns the surfaces of a wire format, which are also the
// default surfaces of a custom provider of that format; nil for an unknown
// format. The slice is new.
func formatSurfaces(f providers.Format) []providers.Surface {
	switch f {
	case providers.FormatOpenAI:
		return []providers.Surface{providers.SurfaceChatCompletions, providers.SurfaceResponses, providers.SurfaceEmbeddings}
	case providers.FormatAnthropic:
		return []providers.Surface{providers.SurfaceMessages}
	}
	return nil
}

// normFormat canonicalises a format as written: trimmed, lower-cased.
func normFormat(f providers.Format) providers.Format {
	return providers.Format(toLower(strings.TrimSpace(string(f))))
}

// origin records where a provider of an Extend result came from, so that a
// problem found in the merged provider is reported against the spec field
// that caused it.
type origin struct {
	index  int           // position of the spec in Extend's arguments
	spec   *ProviderSpec // the spec, read only
	models map[*Model]int
}

// builder validates providers and collects their problems as *SpecError.
type builder struct {
	errs []error
	// origins is nil for Parse; for Extend it maps every provider a spec
	// changed or added to that spec.
	origins map[*Provider]*origin
}

// at locates a problem within a provider.
type at struct {
	m     *Model // the model concerned; nil for a provider field
	mi    int    // m's position in the provider's Models
	field string // the field: "BaseURL", "Aliases", "Pricing.Input", ...
	idx   int    // the position in the field's slice; -1 for none
}

// provField locates a provider field; idx is -1 unless the field is a slice.
func provField(field string, idx int) at { return at{field: field, idx: idx} }

// path returns the field's Go path relative to the Provider (or the
// ProviderSpec, given mi and idx counted there).
func (a at) path(mi, idx int) string {
	var b strings.Builder
	if a.m != nil {
		fmt.Fprintf(&b, "Models[%d]", mi)
		if a.field != "" {
			b.WriteByte('.')
		}
	}
	b.WriteString(a.field)
	if idx >= 0 {
		fmt.Fprintf(&b, "[%d]", idx)
	}
	return b.String()
}

// problem records one problem with provider p, at position pos of the
// providers being built. Under Extend the position, the model and the field
// are mapped back to the spec that introduced them.
func (b *builder) problem(p *Provider, pos int, a at, err error) {
	e := &SpecError{Index: pos, Provider: p.ID, Field: a.path(a.mi, a.idx), Err: err, inSpec: b.origins != nil}
	if a.m != nil {
		e.Model = a.m.ID
	}
	o := b.origins[p]
	switch {
	case b.origins == nil:
	case o == nil:
		e.Index = -1 // a catalog provider that no spec changed
	case a.m == nil:
		e.Index, e.Provider = o.index, strings.TrimSpace(o.spec.ID)
		if a.field == "Aliases" {
			e.Field = a.path(0, slices.Index(o.spec.Aliases, p.Aliases[a.idx]))
		}
	default:
		e.Index, e.Provider = o.index, strings.TrimSpace(o.spec.ID)
		if k, ok := o.models[a.m]; ok {
			sm := &o.spec.Models[k]
			e.Model = sm.ID
			idx := a.idx
			if a.field == "Aliases" {
				idx = slices.Index(sm.Aliases, a.m.Aliases[a.idx])
			}
			e.Field = a.path(k, idx)
		}
	}
	b.errs = append(b.errs, e)
}

// from reports whether a spec changed or added p; always true for Parse.
func (b *builder) from(p *Provider) bool { return b.origins == nil || b.origins[p] != nil }

// fromModel reports whether a spec defined or changed m of p; always true
// for Parse.
func (b *builder) fromModel(p *Provider, m *Model) bool {
	if b.origins == nil {
		return true
	}
	o := b.origins[p]
	if o == nil {
		return false
	}
	_, ok := o.models[m]
	return ok
}

// build normalises and validates providers and builds the catalog indexes.
// It takes ownership of providers (and their models) and mutates them: it
// sets Model.Provider, fills empty encodings, canonicalises Format, Surfaces,
// BaseURL and DefaultModel, and attaches each provider's model index. Every
// problem found is returned (the catalog is then nil); each is a *SpecError.
// origins is nil for Parse and maps providers to the specs that changed them
// for Extend.
func build(provs []*Provider, origins map[*Provider]*origin) (*Catalog, []error) {
	b := &builder{origins: origins}
	c := &Catalog{
		providers: provs,
		byName:    make(map[string]*Provider, len(provs)*2),
	}
	pos := make(map[*Provider]int, len(provs))
	for i, p := range provs {
		if p == nil {
			b.errs = append(b.errs, &SpecError{Index: i, Err: errors.New("nil provider"), inSpec: origins != nil})
			continue
		}
		pos[p] = i
		b.names(c, p, pos)
		b.wire(p, i)
		if p.BaseURL != "" || !p.OwnTransport {
			if u, err := checkBaseURL(p.BaseURL); err != nil {
				b.problem(p, i, provField("BaseURL", -1), err)
			} else {
				p.BaseURL = u
			}
		}
		for j, k := range p.KeyPrefixes {
			switch {
			case k == "":
				b.problem(p, i, provField("KeyPrefixes", j), errors.New("empty key prefix"))
			case strings.TrimSpace(k) != k || hasControl(k):
				b.problem(p, i, provField("KeyPrefixes", j), fmt.Errorf("key prefix %q has white space or control characters", k))
			case slices.Contains(p.KeyPrefixes[:j], k):
				b.problem(p, i, provField("KeyPrefixes", j), fmt.Errorf("duplicate key prefix %q", k))
			}
		}
		b.models(p, i)
		c.models = append(c.models, p.Models...)
	}
	if len(b.errs) > 0 {
		return nil, b.errs
	}

	// The cross-provider model index, each entry sorted by provider ID.
	sorted := slices.Clone(provs)
	slices.SortFunc(sorted, func(a, b *Provider) int { return compareFold(a.ID, b.ID) })
	c.byModel = make(map[string][]Match, len(c.models)*2)
	for _, p := range sorted {
		for key, m := range p.index {
			c.byModel[key] = append(c.byModel[key], Match{Provider: p, Model: m, UpstreamID: m.ID})
		}
	}
	c.keyPrefixes = indexKeyPrefixes(provs)
	return c, nil
}

// names checks p's ID and aliases and adds them to c.byName. A name already
// used by another provider is reported against whichever of the two a spec
// introduced (p, when both or neither).
func (b *builder) names(c *Catalog, p *Provider, pos map[*Provider]int) {
	for j, n := range append([]string{p.ID}, p.Aliases...) {
		field, what := provField("ID", -1), "id"
		if j > 0 {
			field, what = provField("Aliases", j-1), "alias"
		}
		if err := checkProviderName(n); err != nil {
			b.problem(p, pos[p], field, fmt.Errorf("%s %q: %w", what, n, err))
			continue
		}
		key := toLower(n)
		other, dup := c.byName[key]
		switch {
		case !dup:
			c.byName[key] = p
		case other == p:
		case !b.from(p) && b.from(other):
			ofield, owhat := provField("ID", -1), "id"
			if k := slices.IndexFunc(other.Aliases, func(a string) bool { return equalFold(a, n) }); k >= 0 {
				ofield, owhat = provField("Aliases", k), "alias"
			}
			b.problem(other, pos[other], ofield, fmt.Errorf("%s %q is already used by provider %q", owhat, n, p.ID))
		default:
			b.problem(p, pos[p], field, fmt.Errorf("%s %q is already used by provider %q", what, n, other.ID))
		}
	}
}

// wire checks and canonicalises p's Format and Surfaces.
func (b *builder) wire(p *Provider, pos int) {
	p.Format = normFormat(p.Format)
	known := p.Format.Valid()
	if !known {
		b.problem(p, pos, provField("Format", -1), fmt.Errorf("unknown format %q (want %q or %q)", p.Format, providers.FormatOpenAI, providers.FormatAnthropic))
	}
	if len(p.Surfaces) == 0 {
		b.problem(p, pos, provField("Surfaces", -1), errors.New("no API surfaces"))
	}
	for j, s := range p.Surfaces {
		s = providers.Surface(toLower(strings.TrimSpace(string(s))))
		p.Surfaces[j] = s
		field := provField("Surfaces", j)
		switch {
		case s.Format() == "":
			b.problem(p, pos, field, fmt.Errorf("unknown surface %q", s))
		case known && s.Format() != p.Format:
			b.problem(p, pos, field, fmt.Errorf("surface %q is not served in format %q", s, p.Format))
		case slices.Contains(p.Surfaces[:j], s):
			b.problem(p, pos, field, fmt.Errorf("duplicate surface %q", s))
		}
	}
}

// models validates and indexes p's models.
func (b *builder) models(p *Provider, pos int) {
	p.index = make(map[string]*Model, len(p.Models)*3)
	for i, m := range p.Models {
		if m == nil {
			b.problem(p, pos, provField("Models", i), fmt.Errorf("model %d: nil", i))
			continue
		}
		fail := func(field string, idx int, format string, args ...any) {
			b.problem(p, pos, at{m: m, mi: i, field: field, idx: idx}, fmt.Errorf(format, args...))
		}
		m.Provider = p.ID
		for j, n := range append([]string{m.ID}, m.Aliases...) {
			field, idx, what := "ID", -1, "id"
			if j > 0 {
				field, idx, what = "Aliases", j-1, "alias"
			}
			if err := checkModelName(n); err != nil {
				fail(field, idx, "%s %q: %w", what, n, err)
				continue
			}
			key := toLower(n)
			other, dup := p.index[key]
			switch {
			case !dup:
				p.index[key] = m
			case other == m:
			case !b.fromModel(p, m) && b.fromModel(p, other):
				oi := slices.Index(p.Models, other)
				oa := at{m: other, mi: oi, field: "ID", idx: -1}
				owhat := "id"
				if k := slices.IndexFunc(other.Aliases, func(a string) bool { return equalFold(a, n) }); k >= 0 {
					oa.field, oa.idx, owhat = "Aliases", k, "alias"
				}
				b.problem(p, pos, oa, fmt.Errorf("%s %q is already used by model %q", owhat, n, m.ID))
			default:
				fail(field, idx, "%s %q is already used by model %q", what, n, other.ID)
			}
		}
		if m.ContextWindow < 0 {
			fail("ContextWindow", -1, "negative context_window %d", m.ContextWindow)
		}
		if m.MaxOutputTokens < 0 {
			fail("MaxOutputTokens", -1, "negative max_output_tokens %d", m.MaxOutputTokens)
		}
		for _, f := range [...]struct {
			field, name string
			v           int64
		}{
			{"Input", "input", m.Pricing.Input}, {"Output", "output", m.Pricing.Output},
			{"CacheRead", "cache_read", m.Pricing.CacheRead}, {"CacheWrite", "cache_write", m.Pricing.CacheWrite},
		} {
			if f.v < 0 {
				fail("Pricing."+f.field, -1, "negative %s price %d", f.name, f.v)
			}
		}
		if m.Encoding == "" {
			m.Encoding = defaultEncoding(m.ID)
		}
		if !knownEncoding(m.Encoding) {
			fail("Encoding", -1, "unknown encoding %q", m.Encoding)
		}
		if m.DeprecationDate != "" {
			if _, err := time.Parse(time.DateOnly, m.DeprecationDate); err != nil {
				fail("DeprecationDate", -1, "deprecation_date %q is not YYYY-MM-DD", m.DeprecationDate)
			}
		}
	}
	// References to models: checked once every name is indexed.
	for i, m := range p.Models {
		if m == nil || m.Replacement == "" {
			continue
		}
		if r := p.index[toLower(m.Replacement)]; r == nil {
			b.problem(p, pos, at{m: m, mi: i, field: "Replacement", idx: -1}, fmt.Errorf("replacement %q is not a model of this provider", m.Replacement))
		} else {
			m.Replacement = r.ID
		}
	}
	if p.DefaultModel != "" {
		if m := p.index[toLower(strings.TrimSpace(p.DefaultModel))]; m == nil {
			b.problem(p, pos, provField("DefaultModel", -1), fmt.Errorf("default_model %q is not a model of this provider", p.DefaultModel))
		} else {
			p.DefaultModel = m.ID
		}
	}
}

// checkProviderName rejects names the grammar cannot carry: empty, with
// surrounding or inner white space, with ':' or '/', or control characters.
func checkProviderName(n string) error {
	if n == "" {
		return errors.New("empty")
	}
	for i := 0; i < len(n); i++ {
		switch c := n[i]; {
		case c == ':' || c == '/':
			return fmt.Errorf("contains %q", c)
		case c <= ' ' || c == 0x7f:
			return errors.New("contains white space or a control character")
		}
	}
	return nil
}

// checkModelName rejects empty names, surrounding white space and control
// characters; ':' and '/' are allowed ("llama3.2:latest", "qwen/qwen3-32b").
func checkModelName(n string) error {
	if n == "" {
		return errors.New("empty")
	}
	if strings.TrimSpace(n) != n {
		return errors.New("has surrounding white space")
	}
	if hasControl(n) {
		return errors.New("contains a control character")
	}
	return nil
}

// checkBaseURL checks a base URL with the rule every provider implementation
// applies (httpx.ParseBaseURL, after trimming surrounding spaces) and
// returns it with a path ending in "/".
func checkBaseURL(s string) (string, error) {
	u, err := httpx.ParseBaseURL(strings.TrimSpace(s))
	if err != nil {
		return "", err
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
	return u.String(), nil
}

// defaultEncoding picks the token encoding for a model with none: o200k_base
// for IDs shaped like OpenAI's GPT-4o/4.1/5, o-series and gpt-oss models (an
// "author/" prefix is ignored, so "openai/gpt-oss-20b" counts), cl100k_base
// for everything else, as an estimate.
func defaultEncoding(id string) string {
	id = toLower(id)
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		id = id[i+1:]
	}
	o200k := [...]string{"gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "gpt-oss", "chatgpt-4o", "o1", "o3", "o4", "codex-"}
	for _, p := range o200k {
		if strings.HasPrefix(id, p) {
			return EncodingO200K
		}
	}
	return EncodingCL100K
}

// hasControl reports whether s contains an ASCII control character.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f {
			return true
		}
	}
	return false
}

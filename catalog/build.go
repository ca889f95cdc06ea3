package catalog

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
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

// formatSurfaces returns the surfaces a wire format can serve, which are also
// the default surfaces of a custom provider of that format. The slice is new.
func formatSurfaces(format string) ([]string, bool) {
	switch format {
	case FormatOpenAI:
		return []string{SurfaceChatCompletions, SurfaceResponses, SurfaceEmbeddings}, true
	case FormatAnthropic:
		return []string{SurfaceMessages}, true
	}
	return nil, false
}

// build normalises and validates providers and builds the catalog indexes.
// It takes ownership of providers (and their models) and mutates them: it
// sets Model.Provider, fills empty encodings, canonicalises Format, Surfaces,
// BaseURL and DefaultModel, and attaches each provider's model index. Every
// problem found is returned, joined.
func build(providers []*Provider) (*Catalog, error) {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("catalog: "+format, args...))
	}

	c := &Catalog{
		providers: providers,
		byName:    make(map[string]*Provider, len(providers)*2),
	}
	for i, p := range providers {
		if p == nil {
			fail("provider %d: nil", i)
			continue
		}
		where := fmt.Sprintf("provider %q", p.ID)
		if p.ID == "" {
			where = fmt.Sprintf("provider %d", i)
		}
		// Names: ID and aliases, unique across providers.
		names := append([]string{p.ID}, p.Aliases...)
		for j, n := range names {
			what := "alias"
			if j == 0 {
				what = "id"
			}
			if err := checkProviderName(n); err != nil {
				fail("%s: %s %q: %v", where, what, n, err)
				continue
			}
			key := toLower(n)
			switch other, dup := c.byName[key]; {
			case !dup:
				c.byName[key] = p
			case other != p:
				fail("%s: %s %q is already used by provider %q", where, what, n, other.ID)
			}
		}
		p.Format = toLower(strings.TrimSpace(p.Format))
		allowed, ok := formatSurfaces(p.Format)
		if !ok {
			fail("%s: unknown format %q (want %q or %q)", where, p.Format, FormatOpenAI, FormatAnthropic)
		}
		if len(p.Surfaces) == 0 {
			fail("%s: no API surfaces", where)
		}
		for j, s := range p.Surfaces {
			s = toLower(strings.TrimSpace(s))
			p.Surfaces[j] = s
			switch {
			case !knownSurface(s):
				fail("%s: unknown surface %q", where, s)
			case ok && !slices.Contains(allowed, s):
				fail("%s: surface %q is not served in format %q", where, s, p.Format)
			case slices.Contains(p.Surfaces[:j], s):
				fail("%s: duplicate surface %q", where, s)
			}
		}
		if u, err := checkBaseURL(p.BaseURL); err != nil {
			fail("%s: base_url: %v", where, err)
		} else {
			p.BaseURL = u
		}
		buildModels(p, where, fail)
		c.models = append(c.models, p.Models...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	// The cross-provider model index, each entry sorted by provider ID.
	sorted := slices.Clone(providers)
	slices.SortFunc(sorted, func(a, b *Provider) int { return compareFold(a.ID, b.ID) })
	c.byModel = make(map[string][]Match, len(c.models)*2)
	for _, p := range sorted {
		for key, m := range p.index {
			c.byModel[key] = append(c.byModel[key], Match{Provider: p, Model: m, UpstreamID: m.ID})
		}
	}
	return c, nil
}

// buildModels validates and indexes p's models.
func buildModels(p *Provider, where string, fail func(string, ...any)) {
	p.index = make(map[string]*Model, len(p.Models)*3)
	for i, m := range p.Models {
		if m == nil {
			fail("%s: model %d: nil", where, i)
			continue
		}
		mwhere := fmt.Sprintf("%s: model %q", where, m.ID)
		m.Provider = p.ID
		names := append([]string{m.ID}, m.Aliases...)
		for j, n := range names {
			what := "alias"
			if j == 0 {
				what = "id"
			}
			if err := checkModelName(n); err != nil {
				fail("%s: %s %q: %v", mwhere, what, n, err)
				continue
			}
			key := toLower(n)
			switch other, dup := p.index[key]; {
			case !dup:
				p.index[key] = m
			case other != m:
				fail("%s: %s %q is already used by model %q", mwhere, what, n, other.ID)
			}
		}
		if m.ContextWindow < 0 {
			fail("%s: negative context_window %d", mwhere, m.ContextWindow)
		}
		if m.MaxOutputTokens < 0 {
			fail("%s: negative max_output_tokens %d", mwhere, m.MaxOutputTokens)
		}
		for _, f := range []struct {
			name string
			v    int64
		}{
			{"input", m.Pricing.Input}, {"output", m.Pricing.Output},
			{"cache_read", m.Pricing.CacheRead}, {"cache_write", m.Pricing.CacheWrite},
		} {
			if f.v < 0 {
				fail("%s: negative %s price %d", mwhere, f.name, f.v)
			}
		}
		if m.Encoding == "" {
			m.Encoding = defaultEncoding(m.ID)
		}
		if !knownEncoding(m.Encoding) {
			fail("%s: unknown encoding %q", mwhere, m.Encoding)
		}
		if m.DeprecationDate != "" {
			if _, err := time.Parse(time.DateOnly, m.DeprecationDate); err != nil {
				fail("%s: deprecation_date %q is not YYYY-MM-DD", mwhere, m.DeprecationDate)
			}
		}
	}
	// References to models: checked once every name is indexed.
	for _, m := range p.Models {
		if m == nil || m.Replacement == "" {
			continue
		}
		if r := p.index[toLower(m.Replacement)]; r == nil {
			fail("%s: model %q: replacement %q is not a model of this provider", where, m.ID, m.Replacement)
		} else {
			m.Replacement = r.ID
		}
	}
	if p.DefaultModel != "" {
		if m := p.index[toLower(strings.TrimSpace(p.DefaultModel))]; m == nil {
			fail("%s: default_model %q is not a model of this provider", where, p.DefaultModel)
		} else {
			p.DefaultModel = m.ID
		}
	}
}

func knownSurface(s string) bool {
	switch s {
	case SurfaceChatCompletions, SurfaceResponses, SurfaceEmbeddings, SurfaceMessages:
		return true
	}
	return false
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

// checkBaseURL requires an absolute http(s) URL without query or fragment
// and returns it with a trailing "/".
func checkBaseURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return "", fmt.Errorf("%q: no host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(s, "?#") {
		return "", fmt.Errorf("%q: must not have a query or fragment", s)
	}
	if !strings.HasSuffix(s, "/") {
		s += "/"
	}
	return s, nil
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

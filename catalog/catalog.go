// Package catalog is llmgate's model catalog: the providers the gateway knows
// (base URL, wire format, API surfaces), their models (aliases, limits,
// modalities, features, token encoding, prices) and the grammar clients use to
// name a model.
//
// The built-in catalog is the embedded file catalog.json; [Default] parses it
// and [Parse] parses any file of the same shape. A [Catalog] is immutable once
// built: [Catalog.Extend] returns a new catalog with operator providers and
// models merged in, leaving the receiver untouched. Every lookup index is
// built when the catalog is built, so [Catalog.Resolve], which the gateway
// calls on every request, only reads maps.
//
// # Model names
//
// A client names a model as
//
//	[provider ":"] [author "/"] model
//
// matched case-insensitively (ASCII case folding). A provider prefix pins the
// provider; without one every provider serving the name matches. See
// [Catalog.Resolve] for the exact rules.
//
// # Errors
//
// [Parse] and [Catalog.Extend] report every problem at once, joined with
// errors.Join; each problem with a provider is a [*SpecError] naming the
// provider and the field, so a configuration layer can point at the line
// that caused it.
//
// # Money
//
// Prices are int64 micro-USD per one million tokens: $2.50 per 1M tokens is
// 2_500_000. The cost of n tokens in micro-USD is n*price/1_000_000.
//
// This package imports only the leaf package providers (for the wire format
// and API surface vocabulary) and internal/httpx (for the one base URL check
// the provider implementations share), so stores can depend on it.
package catalog

import (
	_ "embed"
	"strings"

	"github.com/llmgate/gateway/providers"
)

// embedded is catalog.json; a string, so nothing can modify it.
//
//go:embed catalog.json
var embedded string

// Token encodings ([Model.Encoding]) understood by the tokens package.
const (
	// EncodingCL100K is tiktoken's cl100k_base: GPT-4, GPT-3.5, GPT-4 Turbo,
	// OpenAI embeddings, and the estimate used for non-OpenAI models.
	EncodingCL100K = "cl100k_base"
	// EncodingO200K is tiktoken's o200k_base: GPT-4o, GPT-4.1, GPT-5, the
	// o-series and gpt-oss.
	EncodingO200K = "o200k_base"
)

// Well-known [Model.Features] values. Features are free-form strings; these
// are the ones the built-in catalog uses.
const (
	FeatureToolCalling   = "tool-calling"
	FeatureVision        = "vision"
	FeatureReasoning     = "reasoning"
	FeatureJSONMode      = "json-mode"
	FeaturePromptCaching = "prompt-caching"
	FeatureEmbeddings    = "embeddings"
	FeatureModeration    = "moderation"
	// FeatureResponsesOnly marks an OpenAI model that the upstream serves on
	// the Responses API only (not on chat completions), such as the -pro,
	// -codex and deep-research models.
	FeatureResponsesOnly = "responses-only"
)

// Pricing is the list price of a model in micro-USD (1e-6 US dollars) per
// 1,000,000 tokens; $2.50 per million tokens is Input: 2_500_000.
//
// Input is uncached prompt tokens, Output is completion tokens (reasoning
// tokens included), CacheRead is prompt tokens served from the provider's
// prompt cache and CacheWrite is prompt tokens written to it (Anthropic's
// 5-minute cache write rate; zero where the provider does not charge extra).
// A zero field means "no price known or no charge"; the zero Pricing means the
// model is unpriced. Where a provider has tiered prices (for example for long
// prompts) the catalog holds the base tier. Pricing is a plain value, safe to
// copy and to use from any goroutine.
type Pricing struct {
	Input, Output, CacheRead, CacheWrite int64
}

// IsZero reports whether no price is set at all.
func (p Pricing) IsZero() bool { return p == Pricing{} }

// Model is one model as one provider serves it. The same upstream model
// served by two providers is two Models.
//
// The zero Model is an empty, unpriced model with no limits. Models returned
// by a [Catalog] are shared by every caller and must not be modified; they are
// safe to read from any goroutine.
type Model struct {
	// ID is the model name the upstream expects, e.g. "gpt-4o" or
	// "meta-llama/llama-4-scout-17b-16e-instruct".
	ID string
	// Provider is the ID of the provider serving this model.
	Provider string
	// Author is the model's author or namespace ("openai", "meta-llama",
	// ...), used by the author/model name form. Empty when unknown.
	Author string
	// DisplayName is a human-readable name.
	DisplayName string
	// Aliases are other names that resolve to this model: dated snapshots
	// ("gpt-4o-2024-08-06"), marketing spellings ("claude-opus-4.1").
	Aliases []string
	// ContextWindow is the maximum number of tokens (prompt plus
	// completion) the model accepts; 0 means unknown.
	ContextWindow int
	// MaxOutputTokens is the maximum number of completion tokens; 0 means
	// unknown or not applicable (embeddings).
	MaxOutputTokens int
	// InputModalities and OutputModalities list "text", "image", "audio",
	// "video", "file" or "embedding".
	InputModalities, OutputModalities []string
	// Features lists capabilities such as [FeatureToolCalling].
	Features []string
	// Deprecated reports that the provider has announced the model's
	// retirement or already retired it; DeprecationDate is the shutdown date
	// (YYYY-MM-DD) when known and Replacement the ID of a catalog model of
	// the same provider to move to, when one is suggested.
	Deprecated      bool
	DeprecationDate string
	Replacement     string
	// Encoding is the tiktoken encoding used to estimate token counts, such
	// as [EncodingO200K]. A catalog never holds an empty Encoding.
	Encoding string
	// Pricing is the model's list price.
	Pricing Pricing
	// Custom reports that the operator defined the model; it is false for
	// built-in models, including built-ins the operator overrode.
	Custom bool
	// Metadata is free-form operator metadata, nil for built-ins. It is never
	// sent upstream.
	Metadata map[string]any
}

// HasFeature reports whether the model lists feature f (ASCII
// case-insensitive). It is safe on a nil *Model, which has no features.
func (m *Model) HasFeature(f string) bool {
	if m == nil {
		return false
	}
	for _, x := range m.Features {
		if equalFold(x, f) {
			return true
		}
	}
	return false
}

// Provider is an upstream API: where it lives, which wire format and API
// surfaces it speaks, and which models it serves.
//
// The zero Provider serves nothing. Providers returned by a [Catalog] are
// shared by every caller and must not be modified; they are safe to read from
// any goroutine.
type Provider struct {
	// ID is the provider's identifier, e.g. "openai" or "my-ollama". It
	// never contains ':'.
	ID string
	// DisplayName and Website are informational.
	DisplayName string
	Website     string
	// BaseURL is the upstream API root, an absolute http(s) URL whose path
	// in a catalog always ends in "/", e.g. "https://api.openai.com/v1/". It
	// may carry a query, which the provider implementations keep on every
	// request URL. Empty only for a provider with OwnTransport.
	BaseURL string
	// OwnTransport reports that the gateway reaches the provider through a
	// providers.Provider implementation of its own rather than the built-in
	// HTTP one, so BaseURL is optional (see [ProviderSpec.OwnTransport]).
	// Always false in a catalog built by [Parse].
	OwnTransport bool
	// Format is the wire format the provider speaks:
	// [providers.FormatOpenAI] or [providers.FormatAnthropic].
	Format providers.Format
	// Aliases are other names clients may use for the provider.
	Aliases []string
	// Surfaces lists the API surfaces served, such as
	// [providers.SurfaceChatCompletions]; each belongs to Format.
	Surfaces []providers.Surface
	// KeyPrefixes are the documented prefixes of the provider's API keys
	// ("sk-ant-" for Anthropic), used to tell which provider a client's own
	// credential may belong to; see [Catalog.MayOwnKey]. Empty when the
	// provider documents no key format.
	KeyPrefixes []string
	// StreamUsage reports that the provider accepts
	// stream_options: {"include_usage": true} on streaming chat completions
	// (meaningful for the OpenAI format only).
	StreamUsage bool
	// DefaultModel is the ID of the model the gateway uses when the client
	// expresses no preference; empty when the provider has no catalog
	// models.
	DefaultModel string
	// Custom reports that the operator defined the provider.
	Custom bool
	// Models are the provider's models in catalog order.
	Models []*Model

	// index maps lower-cased model IDs and aliases to models; built by the
	// catalog. Nil for a Provider built by hand, in which case Model scans.
	index map[string]*Model
}

// Serves reports whether the provider serves the API surface (ASCII
// case-insensitive). It is safe on a nil *Provider, which serves nothing.
func (p *Provider) Serves(surface providers.Surface) bool {
	if p == nil {
		return false
	}
	for _, s := range p.Surfaces {
		if equalFold(string(s), string(surface)) {
			return true
		}
	}
	return false
}

// Model finds one of the provider's models by ID or alias, ASCII
// case-insensitively, also accepting the "author/model" form where author is
// the model's Author ("openai/gpt-4o"). Surrounding spaces are ignored. It is
// safe on a nil *Provider, which has no models.
func (p *Provider) Model(nameOrAlias string) (*Model, bool) {
	if p == nil {
		return nil, false
	}
	m := p.lookup(toLower(strings.TrimSpace(nameOrAlias)))
	return m, m != nil
}

// lookup finds a model by an already lower-cased name: exact ID or alias,
// else author/model.
func (p *Provider) lookup(key string) *Model {
	if key == "" {
		return nil
	}
	if m := p.find(key); m != nil {
		return m
	}
	if i := strings.IndexByte(key, '/'); i > 0 && i < len(key)-1 {
		if m := p.find(key[i+1:]); m != nil && equalFold(m.Author, key[:i]) {
			return m
		}
	}
	return nil
}

// find looks up an exact lower-cased ID or alias.
func (p *Provider) find(key string) *Model {
	if p.index != nil {
		return p.index[key]
	}
	for _, m := range p.Models {
		if m == nil {
			continue
		}
		if equalFold(m.ID, key) {
			return m
		}
		for _, a := range m.Aliases {
			if equalFold(a, key) {
				return m
			}
		}
	}
	return nil
}

// Catalog is an immutable set of providers and models with the indexes the
// name grammar needs. Build one with [Default], [Parse] or [Catalog.Extend].
//
// The zero Catalog is empty: it has no providers and resolves no name. A
// Catalog is safe for concurrent use by any number of goroutines; the
// providers and models it returns are shared and must not be modified.
type Catalog struct {
	providers []*Provider
	models    []*Model
	// byName maps lower-cased provider IDs and aliases to providers.
	byName map[string]*Provider
	// byModel maps lower-cased model IDs and aliases to one Match per
	// provider serving that name, sorted by provider ID.
	byModel map[string][]Match
	// keyPrefixes holds every distinct provider key prefix with the
	// providers declaring it, longest prefix first (see MayOwnKey).
	keyPrefixes []keyPrefix
}

// Default parses the catalog embedded in this package (catalog.json). It
// builds a fresh Catalog on every call; there is no package-level cache, so
// callers that need it often should keep the result. An error means the
// embedded file is broken, which the package tests rule out.
func Default() (*Catalog, error) {
	return Parse([]byte(embedded))
}

// Providers returns the providers in catalog order (built-ins in file order,
// then providers added by Extend in spec order). The slice and the providers
// are shared: callers must not modify them.
func (c *Catalog) Providers() []*Provider {
	if c == nil {
		return nil
	}
	return c.providers
}

// Provider finds a provider by ID or alias, ASCII case-insensitively;
// surrounding spaces are ignored.
func (c *Catalog) Provider(idOrAlias string) (*Provider, bool) {
	if c == nil {
		return nil, false
	}
	p, ok := c.byName[toLower(strings.TrimSpace(idOrAlias))]
	return p, ok
}

// Models returns every model, in provider order and then model order. The
// slice and the models are shared: callers must not modify them.
func (c *Catalog) Models() []*Model {
	if c == nil {
		return nil
	}
	return c.models
}

// toLower lower-cases ASCII letters only, so byte offsets are preserved (the
// resolver slices the original and the lowered name at the same indexes). It
// returns s itself, without allocating, when s has no upper-case ASCII letter.
func toLower(s string) string {
	i := 0
	for ; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			break
		}
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// equalFold reports whether a and b are equal under ASCII case folding.
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// compareFold compares a and b under ASCII case folding, like strings.Compare.
func compareFold(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

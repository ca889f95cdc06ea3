package catalog_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/providers"
)

func ptr[T any](v T) *T { return &v }

func TestExtendOverrideProvider(t *testing.T) {
	base := defaultCatalog(t)
	tests := []struct {
		name  string
		spec  catalog.ProviderSpec
		check func(t *testing.T, p *catalog.Provider)
	}{
		{
			"base url by alias",
			catalog.ProviderSpec{ID: "Open-AI", BaseURL: "https://eu.api.openai.com/v1"},
			func(t *testing.T, p *catalog.Provider) {
				require.Equal(t, "openai", p.ID)
				require.Equal(t, "https://eu.api.openai.com/v1/", p.BaseURL)
				require.Equal(t, providers.FormatOpenAI, p.Format)
				require.Len(t, p.Surfaces, 3)
				require.False(t, p.Custom)
			},
		},
		{
			"aliases, display name, stream usage, default model",
			catalog.ProviderSpec{ID: "groq", Aliases: []string{"fast", "GroqCloud"}, DisplayName: "Groq EU", StreamUsage: ptr(false), DefaultModel: "LLAMA-3.3-70B"},
			func(t *testing.T, p *catalog.Provider) {
				require.Equal(t, []string{"groqcloud", "fast"}, p.Aliases)
				require.Equal(t, "Groq EU", p.DisplayName)
				require.False(t, p.StreamUsage)
				require.Equal(t, "llama-3.3-70b-versatile", p.DefaultModel)
			},
		},
		{
			"format change resets surfaces",
			catalog.ProviderSpec{ID: "deepseek", Format: "Anthropic", BaseURL: "https://api.deepseek.com/anthropic/"},
			func(t *testing.T, p *catalog.Provider) {
				require.Equal(t, providers.FormatAnthropic, p.Format)
				require.Equal(t, []providers.Surface{"messages"}, p.Surfaces)
			},
		},
		{
			"explicit surfaces",
			catalog.ProviderSpec{ID: "google", Surfaces: []providers.Surface{"chat-completions"}},
			func(t *testing.T, p *catalog.Provider) {
				require.Equal(t, []providers.Surface{"chat-completions"}, p.Surfaces)
				require.False(t, p.Serves("embeddings"))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := base.Extend(tt.spec)
			require.NoError(t, err)
			p, ok := c.Provider(tt.spec.ID)
			require.True(t, ok)
			tt.check(t, p)
		})
	}
}

func TestExtendCustomProvider(t *testing.T) {
	base := defaultCatalog(t)
	c, err := base.Extend(
		catalog.ProviderSpec{
			ID:      "my-ollama",
			BaseURL: "http://localhost:11434/v1",
			Models: []catalog.Model{
				{ID: "llama3.2:latest", Aliases: []string{"llama3.2"}, ContextWindow: 131072, Metadata: map[string]any{"tier": "cheap"}},
				{ID: "qwen3:32b", Author: "qwen"},
				{ID: "gpt-oss:20b", Provider: "ignored"},
			},
			DefaultModel: "llama3.2",
		},
		catalog.ProviderSpec{
			ID:      "claude-proxy",
			Format:  "anthropic",
			BaseURL: "https://claude.internal.test/v1/",
			Models:  []catalog.Model{{ID: "claude-haiku-4-5", Pricing: catalog.Pricing{Input: 1_000_000, Output: 5_000_000}}},
		},
	)
	require.NoError(t, err)

	t.Run("openai-format defaults", func(t *testing.T) {
		p, ok := c.Provider("MY-OLLAMA")
		require.True(t, ok)
		require.True(t, p.Custom)
		require.Equal(t, "my-ollama", p.DisplayName)
		require.Equal(t, providers.FormatOpenAI, p.Format)
		require.Equal(t, []providers.Surface{"chat-completions", "responses", "embeddings"}, p.Surfaces)
		require.True(t, p.StreamUsage)
		require.Equal(t, "http://localhost:11434/v1/", p.BaseURL)
		require.Equal(t, "llama3.2:latest", p.DefaultModel)
		require.Len(t, p.Models, 3)
		for _, m := range p.Models {
			require.True(t, m.Custom)
			require.Equal(t, "my-ollama", m.Provider)
		}
		require.Equal(t, catalog.EncodingCL100K, p.Models[0].Encoding)
		require.Equal(t, catalog.EncodingO200K, p.Models[2].Encoding, "gpt-oss ids get o200k_base")
		require.Equal(t, map[string]any{"tier": "cheap"}, p.Models[0].Metadata)
	})
	t.Run("anthropic-format defaults", func(t *testing.T) {
		p, ok := c.Provider("claude-proxy")
		require.True(t, ok)
		require.Equal(t, []providers.Surface{"messages"}, p.Surfaces)
		require.False(t, p.StreamUsage)
	})
	t.Run("ollama colon names", func(t *testing.T) {
		tests := []struct{ name, provider, upstream string }{
			{"my-ollama:llama3.2:latest", "my-ollama", "llama3.2:latest"},
			{"my-ollama:LLAMA3.2", "my-ollama", "llama3.2:latest"},
			{"llama3.2:latest", "my-ollama", "llama3.2:latest"},
			{"qwen/qwen3:32b", "my-ollama", "qwen3:32b"},
			{"my-ollama:mistral:7b-Instruct", "my-ollama", "mistral:7b-Instruct"},
		}
		for _, tt := range tests {
			ms, err := c.Resolve(tt.name)
			require.NoError(t, err, tt.name)
			require.Len(t, ms, 1, tt.name)
			require.Equal(t, tt.provider, ms[0].Provider.ID, tt.name)
			require.Equal(t, tt.upstream, ms[0].UpstreamID, tt.name)
		}
	})
	t.Run("same model at a custom and a catalog provider", func(t *testing.T) {
		ms, err := c.Resolve("claude-haiku-4-5")
		require.NoError(t, err)
		require.Len(t, ms, 2)
		require.Equal(t, "anthropic", ms[0].Provider.ID)
		require.Equal(t, "claude-proxy", ms[1].Provider.ID)
	})
	t.Run("custom providers come after the catalog ones", func(t *testing.T) {
		ps := c.Providers()
		require.Equal(t, "my-ollama", ps[len(ps)-2].ID)
		require.Equal(t, "claude-proxy", ps[len(ps)-1].ID)
	})
}

func TestExtendModels(t *testing.T) {
	base := defaultCatalog(t)
	c, err := base.Extend(catalog.ProviderSpec{
		ID: "openai",
		Models: []catalog.Model{
			{ // override by alias: non-zero fields win, aliases are added
				ID:       "GPT-4o-2024-08-06",
				Aliases:  []string{"4o"},
				Pricing:  catalog.Pricing{Input: 2_000_000, CacheWrite: 7},
				Features: []string{"vision"},
				Metadata: map[string]any{"team": "research"},
			},
			{ID: "gpt-5-preview", ContextWindow: 400000, Pricing: catalog.Pricing{Input: 1, Output: 2}},
		},
	})
	require.NoError(t, err)
	p, _ := c.Provider("openai")

	m, ok := p.Model("4o")
	require.True(t, ok)
	require.Equal(t, "gpt-4o", m.ID)
	require.False(t, m.Custom)
	require.Equal(t, catalog.Pricing{Input: 2_000_000, Output: 10_000_000, CacheRead: 1_250_000, CacheWrite: 7}, m.Pricing)
	require.Equal(t, []string{"vision"}, m.Features)
	require.Equal(t, 128000, m.ContextWindow, "zero fields keep the catalog value")
	require.Equal(t, map[string]any{"team": "research"}, m.Metadata)
	require.Equal(t, []string{"gpt-4o-2024-08-06", "gpt-4o-2024-11-20", "4o"}, m.Aliases)

	n, ok := p.Model("gpt-5-preview")
	require.True(t, ok)
	require.True(t, n.Custom)
	require.Equal(t, "openai", n.Provider)
	require.Equal(t, catalog.EncodingO200K, n.Encoding)
	require.Equal(t, p.Models[len(p.Models)-1], n, "added models go last")

	ms, err := c.Resolve("gpt-5-preview")
	require.NoError(t, err)
	require.True(t, ms[0].Known())
	require.Len(t, c.Models(), len(base.Models())+1)
}

func TestExtendDisable(t *testing.T) {
	base := defaultCatalog(t)
	c, err := base.Extend(
		catalog.ProviderSpec{ID: "gemini", Disabled: true},
		catalog.ProviderSpec{ID: "never-defined", Disabled: true},
	)
	require.NoError(t, err)
	_, ok := c.Provider("google")
	require.False(t, ok)
	_, ok = c.Provider("gemini")
	require.False(t, ok)
	require.Len(t, c.Providers(), len(base.Providers())-1)
	_, err = c.Resolve("gemini-2.5-pro")
	require.ErrorIs(t, err, catalog.ErrUnknownModel)
	_, err = c.Resolve("google:gemini-2.5-pro")
	require.ErrorIs(t, err, catalog.ErrUnknownProvider)
	for _, m := range c.Models() {
		require.NotEqual(t, "google", m.Provider)
	}
}

func TestExtendLeavesReceiverUnchanged(t *testing.T) {
	base := defaultCatalog(t)
	before := snapshot(base)

	meta := map[string]any{"k": "v"}
	spec := catalog.ProviderSpec{
		ID:       "openai",
		BaseURL:  "https://proxy.test/v1/",
		Aliases:  []string{"oai"},
		Surfaces: []providers.Surface{"chat-completions"},
		Models: []catalog.Model{
			{ID: "gpt-4o", Aliases: []string{"four-oh"}, Features: []string{"x"}, Metadata: meta, Pricing: catalog.Pricing{Input: 1}},
		},
	}
	c, err := base.Extend(spec, catalog.ProviderSpec{ID: "anthropic", Disabled: true})
	require.NoError(t, err)
	require.Equal(t, before, snapshot(base))

	// Mutating the new catalog, or the spec, reaches neither the receiver
	// nor each other.
	p, _ := c.Provider("openai")
	m, _ := p.Model("gpt-4o")
	m.Aliases[0] = "mutated"
	m.Metadata["k"] = "changed"
	p.Surfaces[0] = "mutated"
	spec.Models[0].Aliases[0] = "mutated-spec"
	o3, _ := p.Model("o3") // not touched by the spec
	o3.Aliases[0] = "mutated"
	o3.Features[0] = "mutated"
	o3.InputModalities[0] = "mutated"
	o3.OutputModalities[0] = "mutated"
	g, _ := c.Provider("groq")
	g.Aliases[0] = "mutated"
	g.Surfaces[0] = "mutated"
	g.Models[0] = nil
	require.Equal(t, before, snapshot(base))
	require.Equal(t, "v", meta["k"])

	_, ok := base.Provider("oai")
	require.False(t, ok)
	ms, err := base.Resolve("anthropic:claude-haiku-4-5")
	require.NoError(t, err)
	require.Equal(t, "claude-haiku-4-5", ms[0].UpstreamID)

	// Extending again from the same receiver starts from the original.
	c2, err := base.Extend()
	require.NoError(t, err)
	require.Equal(t, before, snapshot(c2))
}

// snapshot renders everything observable about a catalog into comparable values.
func snapshot(c *catalog.Catalog) []any {
	var out []any
	for _, p := range c.Providers() {
		out = append(out, p.ID, p.DisplayName, p.BaseURL, p.Format, slices.Clone(p.Aliases), slices.Clone(p.Surfaces), p.StreamUsage, p.DefaultModel, p.Custom, len(p.Models))
		for _, m := range p.Models {
			mc := *m
			mc.Aliases = slices.Clone(m.Aliases)
			mc.InputModalities = slices.Clone(m.InputModalities)
			mc.OutputModalities = slices.Clone(m.OutputModalities)
			mc.Features = slices.Clone(m.Features)
			mc.Metadata = maps.Clone(m.Metadata)
			out = append(out, mc)
		}
	}
	return out
}

func TestExtendErrors(t *testing.T) {
	base := defaultCatalog(t)
	tests := []struct {
		name  string
		specs []catalog.ProviderSpec
		want  []string
	}{
		{"empty id", []catalog.ProviderSpec{{}}, []string{"provider spec 0: empty id"}},
		{"custom provider without base url", []catalog.ProviderSpec{{ID: "lab"}}, []string{`provider "lab": base URL is required`}},
		{"custom provider with a bad format", []catalog.ProviderSpec{{ID: "lab", BaseURL: "https://lab.test/", Format: "grpc"}}, []string{`unknown format "grpc"`}},
		{"custom provider with colon id", []catalog.ProviderSpec{{ID: "lab:1", BaseURL: "https://lab.test/"}}, []string{`id "lab:1": contains ':'`}},
		{"alias taken by another provider", []catalog.ProviderSpec{{ID: "lab", BaseURL: "https://lab.test/", Aliases: []string{"Gemini"}}}, []string{`alias "Gemini" is already used by provider "google"`}},
		{"two specs for one provider", []catalog.ProviderSpec{{ID: "openai"}, {ID: "open-ai"}}, []string{"provider already configured by spec 0"}},
		{"unknown default model", []catalog.ProviderSpec{{ID: "openai", DefaultModel: "gpt-9"}}, []string{`default_model "gpt-9"`}},
		{"surface of another format", []catalog.ProviderSpec{{ID: "anthropic", Surfaces: []providers.Surface{"responses"}}}, []string{`surface "responses" is not served in format "anthropic"`}},
		{"duplicate model names", []catalog.ProviderSpec{{ID: "lab", BaseURL: "https://lab.test/", Models: []catalog.Model{{ID: "a"}, {ID: "b", Aliases: []string{"A"}}}}}, []string{`alias "A" is already used by model "a"`}},
		{"bad model values", []catalog.ProviderSpec{{ID: "lab", BaseURL: "https://lab.test/", Models: []catalog.Model{{ID: ""}, {ID: "x", ContextWindow: -1, Encoding: "bogus", Pricing: catalog.Pricing{Output: -5}}}}}, []string{`id "": empty`, "negative context_window -1", `unknown encoding "bogus"`, "negative output price -5"}},
		{"negative override", []catalog.ProviderSpec{{ID: "openai", Models: []catalog.Model{{ID: "gpt-4o", Pricing: catalog.Pricing{Input: -1}}}}}, []string{`model "gpt-4o": negative input price -1`}},
		{
			"every problem at once",
			[]catalog.ProviderSpec{
				{ID: "lab"},
				{ID: "openai", BaseURL: "not a url"},
				{ID: "", BaseURL: "https://x.test/"},
				{ID: "OpenAI", Disabled: true},
				{ID: "lab2", BaseURL: "https://lab2.test/", Format: "anthropic", Surfaces: []providers.Surface{"embeddings"}},
			},
			[]string{"provider spec 2: empty id", "provider spec 3", `provider "lab": base URL is required`, `provider "openai": base URL "not%20a%20url": scheme must be http or https`, `surface "embeddings" is not served in format "anthropic"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := base.Extend(tt.specs...)
			require.Error(t, err)
			require.Nil(t, c)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestExtendNilAndZeroCatalog(t *testing.T) {
	for _, base := range []*catalog.Catalog{nil, {}} {
		c, err := base.Extend(catalog.ProviderSpec{ID: "solo", BaseURL: "https://solo.test", Models: []catalog.Model{{ID: "m"}}})
		require.NoError(t, err)
		require.Len(t, c.Providers(), 1)
		ms, err := c.Resolve("m")
		require.NoError(t, err)
		require.Equal(t, "solo", ms[0].Provider.ID)
	}
}

func TestExtendOwnTransport(t *testing.T) {
	base := defaultCatalog(t)
	t.Run("custom provider without a base URL", func(t *testing.T) {
		c, err := base.Extend(catalog.ProviderSpec{ID: "echo", OwnTransport: true, Models: []catalog.Model{{ID: "echo-1"}}})
		require.NoError(t, err)
		p, ok := c.Provider("echo")
		require.True(t, ok)
		require.True(t, p.OwnTransport)
		require.Empty(t, p.BaseURL)
		ms, err := c.Resolve("echo:echo-1")
		require.NoError(t, err)
		require.Same(t, p, ms[0].Provider)
	})
	t.Run("a base URL given is still checked and normalised", func(t *testing.T) {
		c, err := base.Extend(catalog.ProviderSpec{ID: "echo", OwnTransport: true, BaseURL: "https://echo.test/v1"})
		require.NoError(t, err)
		p, _ := c.Provider("echo")
		require.Equal(t, "https://echo.test/v1/", p.BaseURL)
		_, err = base.Extend(catalog.ProviderSpec{ID: "echo", OwnTransport: true, BaseURL: "custom://echo"})
		require.EqualError(t, err, `catalog: provider "echo": base URL "custom://echo": scheme must be http or https`)
	})
	t.Run("without OwnTransport the base URL is required", func(t *testing.T) {
		_, err := base.Extend(catalog.ProviderSpec{ID: "echo"})
		require.EqualError(t, err, `catalog: provider "echo": base URL is required`)
	})
	t.Run("catalog provider keeps its base URL", func(t *testing.T) {
		c, err := base.Extend(catalog.ProviderSpec{ID: "openai", OwnTransport: true})
		require.NoError(t, err)
		p, _ := c.Provider("openai")
		require.True(t, p.OwnTransport)
		require.Equal(t, "https://api.openai.com/v1/", p.BaseURL)
		q, _ := base.Provider("openai")
		require.False(t, q.OwnTransport, "the receiver is unchanged")
	})
}

func TestExtendBaseURL(t *testing.T) {
	base := defaultCatalog(t)
	tests := []struct{ in, want string }{
		{"https://lab.test", "https://lab.test/"},
		{" https://lab.test/v1 ", "https://lab.test/v1/"},
		{"http://localhost:11434/v1/", "http://localhost:11434/v1/"},
		// A query is kept (the provider implementations merge it into every
		// request URL); the "/" goes on the path.
		{"https://res.openai.azure.com/openai/deployments/gpt-4o?api-version=2024-10-21", "https://res.openai.azure.com/openai/deployments/gpt-4o/?api-version=2024-10-21"},
		{"https://lab.test/a%2Fb/v1", "https://lab.test/a%2Fb/v1/"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			c, err := base.Extend(catalog.ProviderSpec{ID: "lab", BaseURL: tt.in})
			require.NoError(t, err)
			p, _ := c.Provider("lab")
			require.Equal(t, tt.want, p.BaseURL)
		})
	}
}

func TestExtendKeyPrefixes(t *testing.T) {
	base := defaultCatalog(t)
	spec := catalog.ProviderSpec{ID: "lab", BaseURL: "https://lab.test", KeyPrefixes: []string{"lab-"}}
	c, err := base.Extend(spec)
	require.NoError(t, err)
	spec.KeyPrefixes[0] = "mutated"
	p, _ := c.Provider("lab")
	require.Equal(t, []string{"lab-"}, p.KeyPrefixes, "the spec's slice is copied")

	c, err = base.Extend(catalog.ProviderSpec{ID: "groq", DisplayName: "Groq"})
	require.NoError(t, err)
	p, _ = c.Provider("groq")
	require.Equal(t, []string{"gsk_"}, p.KeyPrefixes, "an empty KeyPrefixes keeps the catalog's")

	_, err = base.Extend(catalog.ProviderSpec{ID: "lab", BaseURL: "https://lab.test", KeyPrefixes: []string{"a", "", " b", "a", "c\x00"}})
	require.Error(t, err)
	require.Equal(t, []string{
		`catalog: provider "lab": empty key prefix`,
		`catalog: provider "lab": key prefix " b" has white space or control characters`,
		`catalog: provider "lab": duplicate key prefix "a"`,
		`catalog: provider "lab": key prefix "c\x00" has white space or control characters`,
	}, strings.Split(err.Error(), "\n"))
}

// TestExtendDuplicateModels: two entries of one spec naming the same model
// are an error naming both, whether the provider is custom or from the
// catalog.
func TestExtendDuplicateModels(t *testing.T) {
	base := defaultCatalog(t)
	tests := []struct {
		name  string
		spec  catalog.ProviderSpec
		field string
		want  string
	}{
		{
			"same id", catalog.ProviderSpec{ID: "lab", BaseURL: "https://lab.test", Models: []catalog.Model{{ID: "a"}, {ID: "b"}, {ID: "A", ContextWindow: 5}}},
			"Models[2].ID", `catalog: provider "lab": model "A": names the same model as Models[0] ("a"): list each model once`,
		},
		{
			"id is an earlier alias", catalog.ProviderSpec{ID: "lab", BaseURL: "https://lab.test", Models: []catalog.Model{{ID: "a", Aliases: []string{"alpha"}}, {ID: "alpha"}}},
			"Models[1].ID", `catalog: provider "lab": model "alpha": names the same model as Models[0] ("a"): list each model once`,
		},
		{
			"two names of one catalog model", catalog.ProviderSpec{ID: "openai", Models: []catalog.Model{{ID: "gpt-4o", Pricing: catalog.Pricing{Input: 1}}, {ID: "gpt-4o-2024-08-06", Pricing: catalog.Pricing{Input: 2}}}},
			"Models[1].ID", `catalog: provider "openai": model "gpt-4o-2024-08-06": names the same model as Models[0] ("gpt-4o"): list each model once`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := base.Extend(tt.spec)
			require.Nil(t, c)
			require.EqualError(t, err, tt.want)
			var se *catalog.SpecError
			require.ErrorAs(t, err, &se)
			require.Equal(t, tt.field, se.Field)
		})
	}
	t.Run("distinct models are fine", func(t *testing.T) {
		_, err := base.Extend(catalog.ProviderSpec{ID: "openai", Models: []catalog.Model{{ID: "gpt-4o"}, {ID: "gpt-4o-mini"}, {ID: "my-model"}}})
		require.NoError(t, err)
	})
}

// FuzzExtend: Extend never panics, and every problem it reports is a
// *SpecError that points at one of the specs given.
func FuzzExtend(f *testing.F) {
	base := defaultCatalog(f)
	f.Add("lab", "alias", "https://lab.test", "m", "gpt-4o", "chat-completions", "sk-")
	f.Add("openai", "groqcloud", "ftp://x", "gpt-4o", "gpt-4o-mini", "messages", "")
	f.Add("Open-AI", "Gemini", "", "GPT-4O", "GPT-4O-2024-08-06", "bogus", "sk-")
	f.Fuzz(func(t *testing.T, id, alias, baseURL, model, modelAlias, surface, keyPrefix string) {
		specs := []catalog.ProviderSpec{
			{ID: id, Aliases: []string{alias}, BaseURL: baseURL, Surfaces: []providers.Surface{providers.Surface(surface)}, KeyPrefixes: []string{keyPrefix},
				Models: []catalog.Model{{ID: model, Aliases: []string{modelAlias}}, {ID: modelAlias, Replacement: model}}},
			{ID: "anthropic", Aliases: []string{alias}, Models: []catalog.Model{{ID: modelAlias, Aliases: []string{model}}}},
		}
		c, err := base.Extend(specs...)
		if err == nil {
			require.NotNil(t, c)
			return
		}
		require.Nil(t, c)
		for _, se := range specErrors(t, err) {
			require.True(t, se.Index >= -1 && se.Index < len(specs), "index %d", se.Index)
			require.NotEmpty(t, se.Field)
			require.True(t, strings.HasPrefix(se.Error(), "catalog: provider "))
		}
	})
}

package catalog_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/providers"
)

func defaultCatalog(t testing.TB) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Default()
	require.NoError(t, err)
	return c
}

func TestDefaultProviders(t *testing.T) {
	c := defaultCatalog(t)
	tests := []struct {
		id, baseURL string
		format      providers.Format
		aliases     []string
		surfaces    []providers.Surface
		streamUsage bool
		hasModels   bool
	}{
		{"openai", "https://api.openai.com/v1/", "openai", []string{"openAI", "open-ai", "OPEN-AI"}, []providers.Surface{"chat-completions", "responses", "embeddings"}, true, true},
		{"anthropic", "https://api.anthropic.com/v1/", "anthropic", []string{"Anthropic"}, []providers.Surface{"messages"}, false, true},
		{"google", "https://generativelanguage.googleapis.com/v1beta/openai/", "openai", []string{"gemini", "Google"}, []providers.Surface{"chat-completions", "embeddings"}, true, true},
		{"groq", "https://api.groq.com/openai/v1/", "openai", []string{"groqcloud"}, []providers.Surface{"chat-completions"}, true, true},
		{"deepseek", "https://api.deepseek.com/v1/", "openai", []string{"deep-seek", "DeepSeek"}, []providers.Surface{"chat-completions"}, true, true},
		{"openrouter", "https://openrouter.ai/api/v1/", "openai", []string{"open-router"}, []providers.Surface{"chat-completions"}, true, false},
		{"hyperbolic", "https://api.hyperbolic.xyz/v1/", "openai", nil, []providers.Surface{"chat-completions"}, true, false},
		{"inceptionlabs", "https://api.inceptionlabs.ai/v1/", "openai", []string{"inception-labs", "inception"}, []providers.Surface{"chat-completions"}, true, false},
		{"inference-net", "https://api.inference.net/v1/", "openai", []string{"inference.net", "inference_net"}, []providers.Surface{"chat-completions"}, true, false},
	}
	var ids []string
	for _, p := range c.Providers() {
		ids = append(ids, p.ID)
	}
	require.Len(t, ids, len(tests), "providers: %v", ids)
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			p, ok := c.Provider(tt.id)
			require.True(t, ok)
			require.Equal(t, tt.id, p.ID)
			require.Equal(t, tt.baseURL, p.BaseURL)
			require.Equal(t, tt.format, p.Format)
			require.Equal(t, tt.surfaces, p.Surfaces)
			require.Equal(t, tt.streamUsage, p.StreamUsage)
			require.NotEmpty(t, p.DisplayName)
			require.NotEmpty(t, p.Website)
			require.False(t, p.Custom)
			for _, a := range append(tt.aliases, tt.id) {
				q, ok := c.Provider(a)
				require.True(t, ok, "alias %q", a)
				require.Same(t, p, q, "alias %q", a)
			}
			require.Equal(t, tt.hasModels, len(p.Models) > 0)
			if tt.hasModels {
				m, ok := p.Model(p.DefaultModel)
				require.True(t, ok, "default model %q", p.DefaultModel)
				require.False(t, m.Deprecated, "default model %q is deprecated", m.ID)
			} else {
				require.Empty(t, p.DefaultModel)
			}
		})
	}
}

func TestDefaultModels(t *testing.T) {
	c := defaultCatalog(t)
	n := 0
	for _, p := range c.Providers() {
		for _, m := range p.Models {
			n++
			t.Run(p.ID+"/"+m.ID, func(t *testing.T) {
				require.Equal(t, p.ID, m.Provider)
				require.NotEmpty(t, m.Author)
				require.NotEmpty(t, m.DisplayName)
				require.Positive(t, m.ContextWindow)
				require.GreaterOrEqual(t, m.MaxOutputTokens, 0)
				require.LessOrEqual(t, m.MaxOutputTokens, m.ContextWindow)
				require.Contains(t, []string{catalog.EncodingO200K, catalog.EncodingCL100K}, m.Encoding)
				require.NotEmpty(t, m.InputModalities)
				require.NotEmpty(t, m.OutputModalities)
				require.False(t, m.Custom)
				require.Nil(t, m.Metadata)
				require.Positive(t, m.Pricing.Input, "input price")
				if m.HasFeature(catalog.FeatureEmbeddings) {
					require.Zero(t, m.MaxOutputTokens)
					require.Equal(t, []string{"embedding"}, m.OutputModalities)
				} else {
					require.Positive(t, m.MaxOutputTokens)
					require.Positive(t, m.Pricing.Output, "output price")
					require.Greater(t, m.Pricing.Output, m.Pricing.CacheRead)
					require.Contains(t, m.OutputModalities, "text")
				}
				require.LessOrEqual(t, m.Pricing.CacheRead, m.Pricing.Input, "cache reads cost less than input")
				if m.Replacement != "" {
					r, ok := p.Model(m.Replacement)
					require.True(t, ok)
					require.False(t, r.Deprecated, "replacement %q is deprecated", r.ID)
					require.True(t, m.Deprecated)
				}
				if m.DeprecationDate != "" {
					require.True(t, m.Deprecated)
				}
				got, ok := p.Model(m.ID)
				require.True(t, ok)
				require.Same(t, m, got)
			})
		}
	}
	require.Len(t, c.Models(), n)
	require.Greater(t, n, 60)
}

// TestAppendixB checks that every model of SPEC Appendix B is present, with
// the limits given there (except where the catalog documents a deviation).
func TestAppendixB(t *testing.T) {
	c := defaultCatalog(t)
	type lim struct{ ctx, out int }
	want := map[string]map[string]lim{
		"openai": {
			"gpt-5.4-pro": {1050000, 128000}, "gpt-5.4": {1050000, 128000},
			"gpt-5.3-codex": {400000, 128000}, "gpt-5.2-codex": {400000, 128000}, "gpt-5.2": {400000, 128000},
			"gpt-5.2-chat-latest": {400000, 128000}, "gpt-5.1": {400000, 128000}, "gpt-5": {400000, 128000},
			"gpt-5-mini": {400000, 128000}, "gpt-5-nano": {400000, 128000}, "gpt-5-chat-latest": {400000, 128000},
			"gpt-5.2-pro": {400000, 100000}, "gpt-5.1-chat-latest": {256000, 32768},
			"gpt-4.1": {1000000, 0}, "gpt-4.1-mini": {1000000, 0}, "gpt-4.1-nano": {1000000, 0},
			"gpt-4o": {128000, 16384}, "gpt-4o-mini": {128000, 16384},
			"o4-mini": {200000, 100000}, "o4-mini-deep-research": {200000, 100000}, "o3-mini": {200000, 100000},
			"o3-deep-research": {200000, 100000}, "o1-pro": {200000, 100000},
			// Appendix B says 128,000 for these three; OpenAI documents 200,000.
			"o3-pro": {200000, 100000}, "o3": {200000, 100000}, "o1": {200000, 100000},
			"gpt-4-turbo": {128000, 4096}, "gpt-4": {8192, 8192}, "gpt-3.5-turbo": {16385, 4096},
		},
		"anthropic": {
			"claude-opus-4-6": {1000000, 128000}, "claude-sonnet-4-6": {1000000, 64000},
			"claude-sonnet-4-5": {1000000, 64000}, "claude-sonnet-4-0": {1000000, 64000},
			"claude-haiku-4-5": {200000, 64000}, "claude-opus-4-5": {200000, 64000},
			"claude-opus-4-1": {200000, 32000}, "claude-opus-4-0": {200000, 32000},
			"claude-3-haiku-20240307": {200000, 4096},
		},
		"google": {
			"gemini-2.5-pro": {1048576, 65535}, "gemini-2.5-flash": {1048576, 65535}, "gemini-2.5-flash-lite": {1048576, 65535},
			"gemini-2.0-flash": {1048576, 8192}, "gemini-2.0-flash-lite": {1048576, 8192},
			"gemini-3-pro-preview": {1000000, 65536},
		},
		"deepseek": {"deepseek-reasoner": {128000, 64000}, "deepseek-chat": {128000, 8192}},
		"groq": {
			"llama-3.1-8b-instant": {0, 0}, "llama-3.3-70b-versatile": {0, 0},
			"meta-llama/llama-guard-4-12b": {0, 0}, "meta-llama/llama-4-maverick-17b-128e-instruct": {0, 0},
			"meta-llama/llama-4-scout-17b-16e-instruct": {0, 0}, "meta-llama/llama-prompt-guard-2-22m": {0, 0},
			"meta-llama/llama-prompt-guard-2-86m": {0, 0}, "moonshotai/kimi-k2-instruct-0905": {0, 0},
			"openai/gpt-oss-120b": {0, 0}, "openai/gpt-oss-20b": {0, 0}, "openai/gpt-oss-safeguard-20b": {0, 0},
			"qwen/qwen3-32b": {0, 0},
		},
	}
	for pid, models := range want {
		p, ok := c.Provider(pid)
		require.True(t, ok)
		for id, l := range models {
			t.Run(pid+"/"+id, func(t *testing.T) {
				m, ok := p.Model(id)
				require.True(t, ok)
				require.Equal(t, id, m.ID)
				if l.ctx != 0 {
					require.Equal(t, l.ctx, m.ContextWindow)
				}
				if l.out != 0 {
					require.Equal(t, l.out, m.MaxOutputTokens)
				}
			})
		}
	}
	for _, id := range []string{"text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"} {
		m, ok := must(c.Provider("openai")).Model(id)
		require.True(t, ok, id)
		require.True(t, m.HasFeature(catalog.FeatureEmbeddings))
	}
	_, ok := must(c.Provider("google")).Model("gemini-embedding-001")
	require.True(t, ok)
}

func TestDefaultPricesAndEncodings(t *testing.T) {
	c := defaultCatalog(t)
	tests := []struct {
		name     string
		price    catalog.Pricing
		encoding string
	}{
		{"openai:gpt-4o", catalog.Pricing{Input: 2_500_000, Output: 10_000_000, CacheRead: 1_250_000}, catalog.EncodingO200K},
		{"openai:gpt-4.1-mini", catalog.Pricing{Input: 400_000, Output: 1_600_000, CacheRead: 100_000}, catalog.EncodingO200K},
		{"openai:o3", catalog.Pricing{Input: 2_000_000, Output: 8_000_000, CacheRead: 500_000}, catalog.EncodingO200K},
		{"openai:gpt-5-nano", catalog.Pricing{Input: 50_000, Output: 400_000, CacheRead: 5_000}, catalog.EncodingO200K},
		{"openai:gpt-4", catalog.Pricing{Input: 30_000_000, Output: 60_000_000}, catalog.EncodingCL100K},
		{"openai:gpt-3.5-turbo", catalog.Pricing{Input: 500_000, Output: 1_500_000}, catalog.EncodingCL100K},
		{"openai:text-embedding-3-small", catalog.Pricing{Input: 20_000}, catalog.EncodingCL100K},
		{"anthropic:claude-sonnet-4-5", catalog.Pricing{Input: 3_000_000, Output: 15_000_000, CacheRead: 300_000, CacheWrite: 3_750_000}, catalog.EncodingCL100K},
		{"anthropic:claude-haiku-4-5", catalog.Pricing{Input: 1_000_000, Output: 5_000_000, CacheRead: 100_000, CacheWrite: 1_250_000}, catalog.EncodingCL100K},
		{"google:gemini-2.5-pro", catalog.Pricing{Input: 1_250_000, Output: 10_000_000, CacheRead: 125_000}, catalog.EncodingCL100K},
		{"deepseek:deepseek-v4-flash", catalog.Pricing{Input: 140_000, Output: 280_000, CacheRead: 2_800}, catalog.EncodingCL100K},
		{"groq:llama-3.3-70b-versatile", catalog.Pricing{Input: 590_000, Output: 790_000}, catalog.EncodingCL100K},
		{"groq:openai/gpt-oss-120b", catalog.Pricing{Input: 150_000, Output: 600_000, CacheRead: 75_000}, catalog.EncodingO200K},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := c.Resolve(tt.name)
			require.NoError(t, err)
			require.Len(t, ms, 1)
			require.Equal(t, tt.price, ms[0].Model.Pricing)
			require.Equal(t, tt.encoding, ms[0].Model.Encoding)
		})
	}
}

func TestDefaultAliases(t *testing.T) {
	c := defaultCatalog(t)
	tests := []struct{ provider, alias, id string }{
		{"openai", "gpt-4o-2024-08-06", "gpt-4o"},
		{"openai", "gpt-4o-2024-11-20", "gpt-4o"},
		{"openai", "o3-2025-04-16", "o3"},
		{"openai", "gpt-5-mini-2025-08-07", "gpt-5-mini"},
		{"openai", "gpt-5 mini", "gpt-5-mini"},
		{"openai", "gpt-4.1-2025-04-14", "gpt-4.1"},
		{"anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5"},
		{"anthropic", "claude-opus-4.1", "claude-opus-4-1"},
		{"anthropic", "claude-haiku-4-5-20251001", "claude-haiku-4-5"},
		{"anthropic", "claude-sonnet-4-20250514", "claude-sonnet-4-0"},
		{"google", "gemini-3", "gemini-3-pro-preview"},
		{"google", "gemini-2.0-flash-001", "gemini-2.0-flash"},
		{"groq", "llama-3.3-70b", "llama-3.3-70b-versatile"},
		{"groq", "kimi-k2-instruct", "moonshotai/kimi-k2-instruct-0905"},
		{"groq", "gpt-oss-120b", "openai/gpt-oss-120b"},
		{"groq", "qwen3-32b", "qwen/qwen3-32b"},
	}
	for _, tt := range tests {
		t.Run(tt.alias, func(t *testing.T) {
			p, ok := c.Provider(tt.provider)
			require.True(t, ok)
			m, ok := p.Model(tt.alias)
			require.True(t, ok)
			require.Equal(t, tt.id, m.ID)
			require.Contains(t, m.Aliases, tt.alias)
		})
	}
}

func TestDefaultIsFreshEachCall(t *testing.T) {
	a := defaultCatalog(t)
	b := defaultCatalog(t)
	require.NotSame(t, a.Providers()[0], b.Providers()[0])
	pa, _ := a.Provider("openai")
	pa.Models[0].Aliases = append(pa.Models[0].Aliases, "scribble")
	pa.BaseURL = "https://example.invalid/"
	pb, _ := b.Provider("openai")
	require.Equal(t, "https://api.openai.com/v1/", pb.BaseURL)
	require.NotContains(t, pb.Models[0].Aliases, "scribble")
	require.Equal(t, "https://api.openai.com/v1/", must(defaultCatalog(t).Provider("openai")).BaseURL)
}

func TestProviderAccessors(t *testing.T) {
	c := defaultCatalog(t)
	openai := must(c.Provider("OpenAI"))
	anthropic := must(c.Provider(" anthropic "))

	t.Run("Serves", func(t *testing.T) {
		require.True(t, openai.Serves("responses"))
		require.True(t, openai.Serves("Chat-Completions"))
		require.False(t, openai.Serves("messages"))
		require.True(t, anthropic.Serves(providers.SurfaceMessages))
		require.False(t, anthropic.Serves(providers.SurfaceChatCompletions))
		var nilP *catalog.Provider
		require.False(t, nilP.Serves("messages"))
	})
	t.Run("Model", func(t *testing.T) {
		for _, name := range []string{"gpt-4o", "GPT-4O", " gpt-4o ", "openai/gpt-4o", "OpenAI/gpt-4o-2024-08-06"} {
			m, ok := openai.Model(name)
			require.True(t, ok, name)
			require.Equal(t, "gpt-4o", m.ID)
		}
		for _, name := range []string{"", "gpt-9", "anthropic/gpt-4o", "/gpt-4o", "openai/", "claude-haiku-4-5"} {
			_, ok := openai.Model(name)
			require.False(t, ok, name)
		}
		var nilP *catalog.Provider
		_, ok := nilP.Model("gpt-4o")
		require.False(t, ok)
	})
	t.Run("hand-built provider", func(t *testing.T) {
		p := &catalog.Provider{ID: "x", Models: []*catalog.Model{{ID: "Big-Model", Aliases: []string{"big"}, Author: "acme"}}}
		for _, name := range []string{"big-model", "BIG", "acme/big"} {
			m, ok := p.Model(name)
			require.True(t, ok, name)
			require.Equal(t, "Big-Model", m.ID)
		}
	})
	t.Run("HasFeature", func(t *testing.T) {
		m := must(openai.Model("gpt-4o"))
		require.True(t, m.HasFeature("vision"))
		require.True(t, m.HasFeature("Tool-Calling"))
		require.False(t, m.HasFeature("reasoning"))
		require.True(t, must(openai.Model("gpt-5.4-pro")).HasFeature(catalog.FeatureResponsesOnly))
		var nilM *catalog.Model
		require.False(t, nilM.HasFeature("vision"))
	})
	t.Run("Pricing.IsZero", func(t *testing.T) {
		require.True(t, catalog.Pricing{}.IsZero())
		require.False(t, catalog.Pricing{CacheWrite: 1}.IsZero())
	})
	t.Run("unknown provider", func(t *testing.T) {
		_, ok := c.Provider("nope")
		require.False(t, ok)
		_, ok = c.Provider("")
		require.False(t, ok)
	})
	t.Run("nil and zero catalog", func(t *testing.T) {
		for _, c := range []*catalog.Catalog{nil, {}} {
			require.Empty(t, c.Providers())
			require.Empty(t, c.Models())
			_, ok := c.Provider("openai")
			require.False(t, ok)
			_, err := c.Resolve("gpt-4o")
			require.ErrorIs(t, err, catalog.ErrUnknownModel)
		}
	})
	t.Run("Models order", func(t *testing.T) {
		var want []*catalog.Model
		for _, p := range c.Providers() {
			want = append(want, p.Models...)
		}
		require.True(t, slices.Equal(want, c.Models()))
	})
}

// must returns v, panicking on !ok; for test set-up only.
func must[T any](v T, ok bool) T {
	if !ok {
		panic("must: not found")
	}
	return v
}

// BenchmarkDefault measures building the embedded catalog, which every
// gateway does once at New and on reload.
func BenchmarkDefault(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := catalog.Default(); err != nil {
			b.Fatal(err)
		}
	}
}

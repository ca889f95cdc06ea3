package catalog_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/catalog"
)

func TestSuggest(t *testing.T) {
	base := defaultCatalog(t)
	c, err := base.Extend(catalog.ProviderSpec{
		ID: "my-ollama", BaseURL: "http://localhost:11434/v1",
		Models: []catalog.Model{{ID: "llama3.2:latest"}},
	})
	require.NoError(t, err)
	tests := []struct {
		name, want string // want "" = no suggestion
	}{
		// Plain model names: IDs and aliases of every provider.
		{"gpt-4o-mnii", "gpt-4o-mini"},            // transposition
		{"claude-sonet-4-5", "claude-sonnet-4-5"}, // deletion
		{"gtp4o", "gpt-4o"},                       // transposition and deletion
		{"gpt5", "gpt-5"},
		{"GPT-4O-MNII", "gpt-4o-mini"}, // case-insensitive, catalog spelling
		{"gemini-2.5-flsh", "gemini-2.5-flash"},
		{"deepseek-chta", "deepseek-chat"},
		{"claude sonnet 4.5", "claude-sonnet-4.5"},           // an alias
		{"gpt-4o-mini-2024-07-19", "gpt-4o-mini-2024-07-18"}, // a dated alias
		{"  gpt-4o-mnii  ", "gpt-4o-mini"},                   // trimmed
		{"gpt-4o", "gpt-4o"},                                 // exact names come back as they are
		{"o3", "o3"},                                         // short names only match exactly
		{"o5", ""},
		{"gpt", ""},
		{"completely-different-thing", ""},
		{"", ""},
		{"llama3.2:latst", "llama3.2:latest"}, // a model ID with ':' and no provider prefix

		// Author form.
		{"openai/gpt-4o-mnii", "openai/gpt-4o-mini"},
		{"meta-llama/llama-3.3-70b-versatil", "meta-llama/llama-3.3-70b-versatile"},

		// Provider prefix: the provider as written, then its nearest model.
		{"openai:gpt4o", "openai:gpt-4o"},
		{"OpenAI:gpt4o", "OpenAI:gpt-4o"},
		{"open-ai : gpt4o", "open-ai:gpt-4o"},
		{"anthropic:claude-haiku-45", "anthropic:claude-haiku-4-5"},
		{"anthropic:gpt-4o-mnii", ""}, // only the pinned provider's models count
		{"openai:x", ""},
		{"openai:", ""},
		// Unknown provider: the nearest provider, its nearest model or the
		// model part as written.
		{"opnai:gpt-4o", "openai:gpt-4o"},
		{"opnai:gpt4o", "openai:gpt-4o"},
		{"openrouterr:anthropic/claude-x", "openrouter:anthropic/claude-x"},
		{"zzz:gpt-4o", ""},
		{"opnai:", ""}, // "openai:" would be invalid
		{"x:y", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := c.Suggest(tt.name)
			require.Equal(t, tt.want != "", ok)
			require.Equal(t, tt.want, got)
		})
	}
	t.Run("long names are not considered", func(t *testing.T) {
		long := "gpt-4o-mini" + strings.Repeat("x", catalog.MaxSuggestLen)
		_, ok := c.Suggest(long)
		require.False(t, ok)
		// At the limit a name is still compared (and here too far away).
		_, ok = c.Suggest(long[:catalog.MaxSuggestLen])
		require.False(t, ok)
		got, ok := c.Suggest(strings.Repeat(" ", 200) + "gpt-4o-mnii")
		require.True(t, ok, "surrounding spaces do not count")
		require.Equal(t, "gpt-4o-mini", got)
	})
	t.Run("control characters", func(t *testing.T) {
		_, ok := c.Suggest("gpt-4o\x00")
		require.False(t, ok)
	})
	t.Run("nil and empty catalogs", func(t *testing.T) {
		var nilCat *catalog.Catalog
		_, ok := nilCat.Suggest("gpt-4o")
		require.False(t, ok)
		_, ok = (&catalog.Catalog{}).Suggest("gpt-4o")
		require.False(t, ok)
	})
}

// TestSuggestTies: at equal distance the first name in catalog order wins,
// and a model's ID before its aliases.
func TestSuggestTies(t *testing.T) {
	c, err := (&catalog.Catalog{}).Extend(
		catalog.ProviderSpec{ID: "a", BaseURL: "https://a.test", Models: []catalog.Model{{ID: "model-b", Aliases: []string{"model-c"}}}},
		catalog.ProviderSpec{ID: "b", BaseURL: "https://b.test", Models: []catalog.Model{{ID: "model-a"}}},
	)
	require.NoError(t, err)
	got, ok := c.Suggest("model-x")
	require.True(t, ok)
	require.Equal(t, "model-b", got)
	got, ok = c.Suggest("b:model-x")
	require.True(t, ok)
	require.Equal(t, "b:model-a", got)
}

func BenchmarkSuggest(b *testing.B) {
	c := defaultCatalog(b)
	for _, name := range []string{"gpt-4o-mnii", "openai:gpt4o", "completely-different-thing"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.Suggest(name)
			}
		})
	}
}

// FuzzSuggest: Suggest never panics, and whatever it suggests is a name the
// catalog resolves.
func FuzzSuggest(f *testing.F) {
	c := defaultCatalog(f)
	for _, s := range []string{"gpt-4o-mnii", "openai:gpt4o", "opnai:gpt-4o", "openai/gpt-4o-mnii", "x:y", ":gpt-4o", "a/", "/b", "openai:", "Ω:ß/ü", strings.Repeat("a", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		s, ok := c.Suggest(name)
		if !ok {
			require.Empty(t, s)
			return
		}
		_, err := c.Resolve(s)
		require.NoError(t, err, "suggestion %q for %q", s, name)
	})
}

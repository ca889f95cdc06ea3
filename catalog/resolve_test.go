package catalog_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/catalog"
)

// hit is one expected Match: provider ID, upstream model ID, and whether the
// model is a catalog model.
type hit struct {
	provider, upstream string
	known              bool
}

func hits(ms []catalog.Match) []hit {
	var out []hit
	for _, m := range ms {
		out = append(out, hit{m.Provider.ID, m.UpstreamID, m.Known()})
	}
	return out
}

func TestResolve(t *testing.T) {
	c := defaultCatalog(t)
	tests := []struct {
		name string
		want []hit
	}{
		// Unpinned catalog names.
		{"gpt-4o", []hit{{"openai", "gpt-4o", true}}},
		{"  gpt-4o\t", []hit{{"openai", "gpt-4o", true}}},
		{"gpt-4o\n", []hit{{"openai", "gpt-4o", true}}},
		{"GPT-4O", []hit{{"openai", "gpt-4o", true}}},
		{"gpt-4o-2024-08-06", []hit{{"openai", "gpt-4o-2024-08-06", true}}}, // dated snapshots are sent as themselves
		{"claude-opus-4.1", []hit{{"anthropic", "claude-opus-4-1", true}}},
		{"gemini-3", []hit{{"google", "gemini-3-pro-preview", true}}},
		// Author form, and Groq IDs that contain their author.
		{"openai/gpt-4o", []hit{{"openai", "gpt-4o", true}}},
		{"OpenAI/GPT-4o-2024-11-20", []hit{{"openai", "gpt-4o-2024-11-20", true}}},
		{"anthropic/claude-sonnet-4-5", []hit{{"anthropic", "claude-sonnet-4-5", true}}},
		{"meta-llama/llama-3.3-70b-versatile", []hit{{"groq", "llama-3.3-70b-versatile", true}}},
		{"meta-llama/llama-4-scout-17b-16e-instruct", []hit{{"groq", "meta-llama/llama-4-scout-17b-16e-instruct", true}}},
		{"openai/gpt-oss-120b", []hit{{"groq", "openai/gpt-oss-120b", true}}},
		{"gpt-oss-120b", []hit{{"groq", "openai/gpt-oss-120b", true}}},
		{"qwen/qwen3-32b", []hit{{"groq", "qwen/qwen3-32b", true}}},
		// Pinned, known.
		{"openai:gpt-4o", []hit{{"openai", "gpt-4o", true}}},
		{"OpenAI:GPT-4o-2024-08-06", []hit{{"openai", "gpt-4o-2024-08-06", true}}},
		{"open-ai:gpt-4o", []hit{{"openai", "gpt-4o", true}}},
		{"openai : gpt-4o ", []hit{{"openai", "gpt-4o", true}}},
		{"openai:openai/gpt-4o", []hit{{"openai", "gpt-4o", true}}},
		{"gemini:gemini-2.5-flash", []hit{{"google", "gemini-2.5-flash", true}}},
		{"groqcloud:llama-3.3-70b", []hit{{"groq", "llama-3.3-70b-versatile", true}}},
		{"groq:meta-llama/llama-3.1-8b-instant", []hit{{"groq", "llama-3.1-8b-instant", true}}},
		{"groq:openai/gpt-oss-20b", []hit{{"groq", "openai/gpt-oss-20b", true}}},
		{"deep-seek:deepseek-v4-flash", []hit{{"deepseek", "deepseek-v4-flash", true}}},
		// Pinned, unknown: passed through verbatim, case preserved.
		{"openai:gpt-5-Preview", []hit{{"openai", "gpt-5-Preview", false}}},
		{"openai:anthropic/claude-sonnet-4-5", []hit{{"openai", "anthropic/claude-sonnet-4-5", false}}},
		{"openrouter:anthropic/claude-3.5-sonnet", []hit{{"openrouter", "anthropic/claude-3.5-sonnet", false}}},
		{"OpenRouter:Anthropic/Claude-3.5-Sonnet", []hit{{"openrouter", "Anthropic/Claude-3.5-Sonnet", false}}},
		{"open-router:openai/gpt-4o", []hit{{"openrouter", "openai/gpt-4o", false}}},
		{"hyperbolic:meta-llama/Llama-3.3-70B-Instruct", []hit{{"hyperbolic", "meta-llama/Llama-3.3-70B-Instruct", false}}},
		{"inference.net:meta-llama/llama-3.2-3b-instruct/fp-16", []hit{{"inference-net", "meta-llama/llama-3.2-3b-instruct/fp-16", false}}},
		{"inception:mercury-2", []hit{{"inceptionlabs", "mercury-2", false}}},
		{"groq:llama3.2:latest", []hit{{"groq", "llama3.2:latest", false}}},
		{"anthropic::x", []hit{{"anthropic", ":x", false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := c.Resolve(tt.name)
			require.NoError(t, err)
			require.Equal(t, tt.want, hits(ms))
			for _, m := range ms {
				if m.Known() {
					if m.UpstreamID != m.Model.ID {
						require.Contains(t, m.Model.Aliases, m.UpstreamID, "only a dated snapshot alias is sent instead of the ID")
					}
					require.Equal(t, m.Provider.ID, m.Model.Provider)
				}
			}
		})
	}
}

func TestResolveSeveralProvidersSortedByID(t *testing.T) {
	c, err := defaultCatalog(t).Extend(
		catalog.ProviderSpec{ID: "zeta", BaseURL: "https://zeta.test/", Models: []catalog.Model{{ID: "gpt-4o", Author: "openai"}}},
		catalog.ProviderSpec{ID: "Alpha", BaseURL: "https://alpha.test/", Models: []catalog.Model{{ID: "openai/gpt-4o", Aliases: []string{"gpt-4o"}, Author: "openai"}}},
		catalog.ProviderSpec{ID: "openrouter", Models: []catalog.Model{{ID: "openai/gpt-4o", Author: "openai"}}},
	)
	require.NoError(t, err)
	tests := []struct {
		name string
		want []hit
	}{
		{"gpt-4o", []hit{{"Alpha", "openai/gpt-4o", true}, {"openai", "gpt-4o", true}, {"zeta", "gpt-4o", true}}},
		// Exact "openai/gpt-4o" at Alpha and openrouter; author form at openai and zeta.
		{"openai/gpt-4o", []hit{{"Alpha", "openai/gpt-4o", true}, {"openai", "gpt-4o", true}, {"openrouter", "openai/gpt-4o", true}, {"zeta", "gpt-4o", true}}},
		{"alpha:gpt-4o", []hit{{"Alpha", "openai/gpt-4o", true}}},
		{"zeta:openai/gpt-4o", []hit{{"zeta", "gpt-4o", true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := c.Resolve(tt.name)
			require.NoError(t, err)
			require.Equal(t, tt.want, hits(ms))
		})
	}
}

func TestResolveErrors(t *testing.T) {
	c := defaultCatalog(t)
	tests := []struct {
		name     string
		sentinel error
		provider string
		message  string
	}{
		{"", catalog.ErrInvalidName, "", `catalog: model name "": invalid model name: empty`},
		{"   ", catalog.ErrInvalidName, "", `catalog: model name "": invalid model name: empty`},
		{":", catalog.ErrInvalidName, "", `catalog: model name ":": invalid model name: empty provider before ':'`},
		{":gpt-4o", catalog.ErrInvalidName, "", `empty provider before ':'`},
		{"openai:", catalog.ErrInvalidName, "openai", `catalog: model name "openai:" (provider "openai"): invalid model name: empty model after the provider prefix`},
		{"OpenAI:  ", catalog.ErrInvalidName, "openai", `empty model after the provider prefix`},
		{"gpt\x00-4o", catalog.ErrInvalidName, "", `contains a control character`},
		{strings.Repeat("x", catalog.MaxNameLen+1), catalog.ErrInvalidName, "", "longer than 1024 bytes"},
		{"gpt-9", catalog.ErrUnknownModel, "", `catalog: model name "gpt-9": unknown model`},
		{"anthropic/claude-3.5-sonnet", catalog.ErrUnknownModel, "", "unknown model"},
		{"foo:bar", catalog.ErrUnknownProvider, "foo", `catalog: model name "foo:bar" (provider "foo"): unknown provider`},
		{"My-Ollama:llama3.2:latest", catalog.ErrUnknownProvider, "My-Ollama", "unknown provider"},
		{"llama3.2:latest", catalog.ErrUnknownProvider, "llama3.2", "unknown provider"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := c.Resolve(tt.name)
			require.Nil(t, ms)
			require.ErrorIs(t, err, tt.sentinel)
			for _, other := range []error{catalog.ErrInvalidName, catalog.ErrUnknownModel, catalog.ErrUnknownProvider} {
				if other != tt.sentinel {
					require.NotErrorIs(t, err, other)
				}
			}
			var ne *catalog.NameError
			require.True(t, errors.As(err, &ne))
			require.Equal(t, tt.provider, ne.Provider)
			require.True(t, strings.HasPrefix(err.Error(), "catalog: "), err.Error())
			require.Contains(t, err.Error(), tt.message)
		})
	}
}

func TestResolveAllocations(t *testing.T) {
	c := defaultCatalog(t)
	tests := []struct {
		name string
		max  float64
	}{
		{"gpt-4o", 1},
		{"openai:gpt-4o", 1},
		{"meta-llama/llama-3.3-70b-versatile", 1},
		{"openrouter:anthropic/claude-sonnet-4.5", 1},
		{"OpenAI:GPT-4o", 2}, // plus the lower-cased copy
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := testing.AllocsPerRun(100, func() {
				if _, err := c.Resolve(tt.name); err != nil {
					t.Fatal(err)
				}
			})
			require.LessOrEqual(t, got, tt.max)
		})
	}
}

func BenchmarkResolve(b *testing.B) {
	c := defaultCatalog(b)
	for _, name := range []string{
		"gpt-4o",
		"openai:gpt-4o",
		"OpenAI:GPT-4o-2024-08-06",
		"meta-llama/llama-3.3-70b-versatile",
		"openrouter:anthropic/claude-sonnet-4.5",
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Resolve(name); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func FuzzResolve(f *testing.F) {
	c, err := defaultCatalog(f).Extend(catalog.ProviderSpec{
		ID: "my-ollama", BaseURL: "http://localhost:11434/v1/",
		Models: []catalog.Model{{ID: "llama3.2:latest", Author: "meta"}},
	})
	require.NoError(f, err)
	for _, s := range []string{
		"", ":", "::", "openai:", "openai:gpt-4o", "gpt-4o", "openai/gpt-4o", "/", "a/", "/b",
		"openrouter:anthropic/claude-3.5-sonnet", "my-ollama:llama3.2:latest", "meta/llama3.2:latest",
		"GROQ:Meta-Llama/LLAMA-3.3-70B-VERSATILE", " \t", "x:y:z", "İstanbul:gpt-4o", "openai:\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		ms, err := c.Resolve(name)
		if err != nil {
			var ne *catalog.NameError
			if !errors.As(err, &ne) {
				t.Fatalf("Resolve(%q): error %T is not a *NameError", name, err)
			}
			if ms != nil || !strings.HasPrefix(err.Error(), "catalog: ") {
				t.Fatalf("Resolve(%q) = %v, %v", name, ms, err)
			}
			return
		}
		if len(ms) == 0 {
			t.Fatalf("Resolve(%q): no matches and no error", name)
		}
		for _, m := range ms {
			if m.Provider == nil || m.UpstreamID == "" {
				t.Fatalf("Resolve(%q): bad match %+v", name, m)
			}
			if m.Known() && (m.UpstreamID != m.Model.ID || m.Model.Provider != m.Provider.ID) {
				t.Fatalf("Resolve(%q): inconsistent match %+v", name, m)
			}
			if !m.Known() && !strings.Contains(name, m.UpstreamID) {
				t.Fatalf("Resolve(%q): pass-through %q is not the client's text", name, m.UpstreamID)
			}
		}
	})
}

func TestResolveDatedSnapshots(t *testing.T) {
	c, err := catalog.Default()
	require.NoError(t, err)
	for name, want := range map[string]string{
		"gpt-4o-2024-08-06":                     "gpt-4o-2024-08-06",
		"openai:GPT-4O-2024-08-06":              "gpt-4o-2024-08-06",
		"claude-sonnet-4-5-20250929":            "claude-sonnet-4-5-20250929",
		"anthropic:claude-sonnet-4.5":           "claude-sonnet-4-5",
		"gpt-4o":                                "gpt-4o",
		"openai/gpt-4o-2024-08-06":              "gpt-4o-2024-08-06",
		"anthropic:anthropic/claude-sonnet-4.5": "claude-sonnet-4-5",
	} {
		t.Run(name, func(t *testing.T) {
			ms, err := c.Resolve(name)
			require.NoError(t, err)
			require.NotEmpty(t, ms)
			require.Equal(t, want, ms[0].UpstreamID)
		})
	}
}
